import Foundation
import TallyIngest
import TallyStorage

/// Reloads: fresh data loaded beside the served data and swapped in, with the log's records
/// replayed onto it on the commit thread.
extension StoreWriter {
    /// Loads `request` (or the configured source) beside the served data and swaps it in —
    /// through the commit thread when there is a log, which replays the log's records onto it
    /// first; requests in flight keep the store they started with. A failed load leaves the old
    /// data serving and says why. One reload at a time.
    public func reload(_ request: ReloadSource?) throws(WriteError) -> ReloadOutcome {
        guard let source else { throw WriteError(.noSource, "this server was started without a source to reload from") }
        let started = reloading.withLock { busy -> Bool in
            if busy { return false }
            busy = true
            return true
        }
        guard started else { throw WriteError(.reloadInProgress, "a reload is already running; try again when it has finished") }
        defer { reloading.withLock { $0 = false } }
        let clock = ContinuousClock(), start = clock.now
        func seconds() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        do {
            let (loaded, description) = try source.load(request)
            let before = store
            let served = try swapIn(loaded)
            // What the clients served before had derived from their usage on first use, made
            // again for the ones served now (as merges do), on this thread: the first dashboard
            // requests after a reload do not pay for it, unless they come first (a value a
            // request made meanwhile is kept). After the swap, so that a client the log's
            // records rebuilt gets them too.
            if let before {
                for c in served.clients {
                    if let old = before.client(c.info.id) { c.baseDerived.warm(from: old.baseDerived, client: c) }
                }
            }
            let s = seconds()
            observer.reloaded(ReloadRecord(finishedAt: Date(), source: description, seconds: s, error: nil))
            return ReloadOutcome(source: description, clients: served.clients.count, usageRows: served.usageRowCount, seconds: s)
        } catch {
            observer.reloaded(ReloadRecord(finishedAt: Date(), source: Self.describe(request), seconds: seconds(), error: "\(error)"))
            let kept = store != nil ? "; the data loaded before is still served" : ""
            throw WriteError(.loadFailed, "\(error)\(kept)")
        }
    }

    static func describe(_ source: ReloadSource?) -> String {
        switch source {
        case .dump(let d)?: return d
        case .snapshot(let s)?: return s
        case nil: return "the configured source"
        }
    }

    /// Swaps in freshly loaded data with the log's records replayed onto it (serialized with
    /// appends); blocks until it is served. Throws, and the data served before stays, when the
    /// log cannot complete the data: it is older than the log's last truncation (a snapshot
    /// took the rows appended before it, and this data does not hold them).
    public func swapIn(_ base: Store) throws -> Store {
        guard log != nil else {
            publish(base, replacesData: true)
            return base
        }
        return try onCommitThread { done in .swap(base, done) }.get()
    }

    /// Commit thread only.
    func swap(_ base: Store, log: WriteAheadLog, done: @Sendable (Result<Store, Error>) -> Void) {
        if base.walSequence < log.baseSequence {
            // The log was truncated through baseSequence by a snapshot: the rows appended up
            // to there are in that snapshot only. Serving this data would lose them.
            let from = lastSnapshot.map { " (\($0))" } ?? ""
            done(.failure(StaleData(description: "the data holds appends up to sequence \(base.walSequence), but the write-ahead log \(log.path) "
                + "was truncated through sequence \(log.baseSequence) by a snapshot\(from): the rows appended before it are only in that "
                + "snapshot, and serving this data would lose them. Load that snapshot instead")))
            return
        }
        if base.walSequence > log.lastSequence {
            // Data newer than the log (a snapshot taken with another log): continue after it, so
            // that no later record can be taken for one the data already holds. If the log
            // cannot be moved on, the data is refused: later records would reuse sequences the
            // data claims to hold, and be skipped at the next start.
            do {
                try log.truncate(through: base.walSequence)
            } catch {
                done(.failure(error))
                return
            }
        }
        // The records to replay are read from the log, not kept in memory since they were
        // appended: memory stays flat under a sustained append rate, whatever the time since
        // the last snapshot.
        let records: [(sequence: UInt64, batch: AppendBatch)]
        do {
            records = try log.readRecords(after: base.walSequence)
        } catch {
            done(.failure(error))
            return
        }
        let (served, skipped) = AppendBody.applyCounting(records, onto: base, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows)
        if skipped > 0 {
            // Acknowledged rows the loaded data cannot hold (it lacks their client, user, app or
            // department): said, not dropped silently (docs/APPENDS.md §12.4).
            observer.dataLog.warning("logged appends name what the loaded data does not hold; those rows are not served",
                                     metadata: ["rows": "\(skipped)", "log": "\(log.path)"])
        }
        publish(served, replacesData: true)
        acknowledgeParked()
        done(.success(served))
    }
}
