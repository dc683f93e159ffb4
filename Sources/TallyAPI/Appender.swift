import Foundation
import TallyQuery
import TallyStorage

/// Durable appends (SPEC §6): batches of usage events are checked against the served data,
/// written to the write-ahead log by one commit thread — every batch waiting when a write
/// starts goes into the same write and the same `fdatasync` (group commit) — then applied (the
/// clients they touch are rebuilt with their new rows and swapped in) and only then
/// acknowledged, so an acknowledged row is both durable and visible to the next query.
///
/// The same thread also swaps in reloaded data (replaying the log's records onto it) and writes
/// snapshots (then drops the log records the snapshot holds), so the three never interleave.
public final class Appender: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<Outcome, APIError>) -> Void

    public struct Outcome: Sendable {
        /// Events accepted (duplicates of rows already held included).
        public var accepted: Int
        /// The log record that holds them.
        public var sequence: UInt64
    }

    enum Job {
        case append(AppendBatch, Completion)
        case swap(Store, @Sendable (Result<Store, Error>) -> Void)
        case snapshot(String, @Sendable (Result<Snapshot.Report, Error>) -> Void)
    }

    let holder: StoreHolder
    let wal: WriteAheadLog
    let condition = NSCondition()
    var jobs: [Job] = []
    var stopped = false
    /// The commit thread has exited: jobs are refused.
    var finished = false
    /// Every record in the log (since its last truncation), to replay onto reloaded data.
    var records: [(sequence: UInt64, batch: AppendBatch)]
    /// Largest batch accepted.
    public static let maxEvents = 10_000
    /// The last snapshot this process wrote and truncated the log after (named when stale data
    /// is refused).
    var lastSnapshot: String?

    /// Opens the appender on a recovered log; ``prepare(_:)`` replays it onto loaded data.
    /// Where appends, refusals, fsync latency and log size are reported.
    let observability: Observability

    public init(holder: StoreHolder, wal: WriteAheadLog, observability: Observability = .quiet) {
        self.holder = holder
        self.wal = wal
        self.observability = observability
        records = wal.recovered
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "tally-commit"
        thread.start()
    }

    /// Signalled when the commit thread has finished its last job and closed the log.
    let exited = DispatchSemaphore(value: 0)

    /// Stops taking jobs: the commit thread finishes what is queued (every batch submitted is
    /// answered), closes the log and exits.
    public func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    /// ``stop()``, then waits until the last queued batch is durable and answered and the log closed.
    public func stopAndWait() {
        stop()
        exited.wait()
        exited.signal()  // a second caller does not wait forever
    }

    // MARK: Submitting

    /// Parses and checks a batch (`{"events": [{"user_id", "application_id", "activity_date"}, …]}`
    /// or the bare array) for `client`, then queues it; `completion` runs on the commit thread
    /// once the batch is durable and visible, or at once with the error that refused it (a 400
    /// listing every refused event: nothing of a refused batch is applied).
    ///
    /// The parse runs on a queue of its own, not the caller's thread: a batch of thousands of
    /// events takes milliseconds to parse, which on an event loop would hold up every other
    /// connection of that loop.
    public func submit(client: UUID128, body: [UInt8], completion: @escaping Completion) {
        Self.parsing.async { [self] in
            do throws(APIError) {
                let batch = try parse(client: client, body: body)
                enqueue(.append(batch, completion))
            } catch {
                observability.metrics.appendRefused(rows: error.rows?.count ?? 0)
                observability.data.notice("append refused", metadata: ["client": "\(client)", "status": "\(error.status)",
                                                                       "code": "\(error.code)", "message": "\(error.message)"])
                completion(.failure(error))
            }
        }
    }

    /// Where batches are parsed and checked (concurrently; the commit thread then takes them in
    /// the order they are ready).
    static let parsing = DispatchQueue(label: "tally.append-parse", qos: .default, attributes: .concurrent)

    func parse(client: UUID128, body: [UInt8]) throws(APIError) -> AppendBatch {
        try Self.parse(client: client, body: body, store: holder.store)
    }

    /// Parses and checks a batch for `client` against `store` (the served data) without queueing
    /// it: what ``submit(client:body:completion:)`` does first, for tools that check a batch
    /// before sending it (and the append-body fuzzer).
    public static func parse(client: UUID128, body: [UInt8], store: Store?) throws(APIError) -> AppendBatch {
        guard let store else { throw .notReady }
        guard let c = store.client(client) else { throw .clientNotFound }
        let json = try? JSONSerialization.jsonObject(with: Data(body))
        guard let events = (json as? [Any]) ?? ((json as? [String: Any])?["events"] as? [Any]) else {
            throw .invalid("events", "the body must be {\"events\": [{\"user_id\", \"application_id\", \"activity_date\"}, …]}")
        }
        guard !events.isEmpty else { throw .invalid("events", "events must not be empty") }
        guard events.count <= Self.maxEvents else {
            throw .invalid("events", "at most \(Self.maxEvents) events per batch; this one has \(events.count)")
        }
        // Dates: from 2000-01-01 to the day after the newest of today (UTC) and the client's data.
        let today = Day(raw: Int32(Date().timeIntervalSince1970 / 86_400))
        let latest = max(today, c.usage?.newestDay ?? today).adding(1), earliest = Day("2000-01-01")!
        var rows: [AppendBatch.Row] = []
        var refused: [APIError.RefusedRow] = []
        for (i, e) in events.enumerated() {
            guard let o = e as? [String: Any] else {
                refused.append(.init(index: i, field: "", message: "an event must be an object"))
                continue
            }
            func id(_ field: String, _ index: [UUID128: UInt32], _ what: String) -> UUID128? {
                guard let s = o[field] as? String else {
                    refused.append(.init(index: i, field: field, message: "\(field) is required (a UUID)"))
                    return nil
                }
                guard let u = UUID128(s) else {
                    refused.append(.init(index: i, field: field, message: "\(field) must be a UUID; got \"\(s.prefix(60))\""))
                    return nil
                }
                guard index[u] != nil else {
                    refused.append(.init(index: i, field: field, message: "no \(what) \(u) in this client"))
                    return nil
                }
                return u
            }
            let user = id("user_id", c.userIndex, "user")
            let app = id("application_id", c.appIndex, "app")
            var day: Day?
            if let s = o["activity_date"] as? String, let d = Day(s) {
                if d < earliest || d > latest {
                    refused.append(.init(index: i, field: "activity_date", message: "activity_date must be from \(earliest) to \(latest)"))
                } else {
                    day = d
                }
            } else {
                refused.append(.init(index: i, field: "activity_date", message: "activity_date must be a date in YYYY-MM-DD form"))
            }
            if let user, let app, let day { rows.append(.init(user: user, app: app, day: day)) }
        }
        if !refused.isEmpty {
            throw APIError(status: 400, code: "invalid_events", parameter: "events",
                           message: "\(Set(refused.map(\.index)).count) of \(events.count) events are refused; nothing was applied",
                           rows: refused)
        }
        return AppendBatch(client: client, rows: rows)
    }

    /// Swaps in freshly loaded data with the log's records replayed onto it (serialized with
    /// appends); blocks until it is served. Throws, and the data served before stays, when the
    /// log cannot complete the data: it is older than the log's last truncation (a snapshot
    /// took the rows appended before it, and this data does not hold them).
    public func swapIn(_ base: Store) throws -> Store {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        enqueue(.swap(base) { served in
            result.swapped = served
            done.signal()
        })
        done.wait()
        return try result.swapped!.get()
    }

    /// Why loaded data cannot be served with this log.
    public struct StaleData: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes the served data as a snapshot (serialized with appends), then drops the log
    /// records it holds.
    public func snapshot(to path: String) throws -> Snapshot.Report {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        enqueue(.snapshot(path) { r in
            result.report = r
            done.signal()
        })
        done.wait()
        return try result.report!.get()
    }

    final class ResultBox: @unchecked Sendable {
        var swapped: Result<Store, Error>?
        var report: Result<Snapshot.Report, Error>?
    }

    func enqueue(_ job: Job) {
        condition.lock()
        guard !finished else {
            // The commit thread has closed the log (a batch whose parse ended after shutdown).
            condition.unlock()
            let e = APIError(status: 503, code: "shutting_down", message: "the server is shutting down")
            switch job {
            case .append(_, let done): done(.failure(e))
            case .swap(_, let done): done(.failure(e))
            case .snapshot(_, let done): done(.failure(e))
            }
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    // MARK: The commit thread

    func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty && stopped {
                finished = true
                condition.unlock()
                wal.closeFile()
                observability.data.notice("write-ahead log closed", metadata: ["path": "\(wal.path)", "sequence": "\(wal.lastSequence)"])
                exited.signal()
                return
            }
            // Appends waiting now share one write; a swap or snapshot runs on its own.
            var group: [(AppendBatch, Completion)] = []
            var other: Job?
            while let first = jobs.first {
                if case .append(let b, let c) = first {
                    group.append((b, c))
                    jobs.removeFirst()
                } else {
                    if group.isEmpty { other = jobs.removeFirst() }
                    break
                }
            }
            condition.unlock()
            if !group.isEmpty { commit(group) }
            switch other {
            case .swap(let base, let done)?:
                if base.walSequence < wal.baseSequence {
                    // The log was truncated through baseSequence by a snapshot: the rows appended up
                    // to there are in that snapshot only. Serving this data would lose them.
                    let from = lastSnapshot.map { " (\($0))" } ?? ""
                    done(.failure(StaleData(description: "the data holds appends up to sequence \(base.walSequence), but the write-ahead log \(wal.path) "
                        + "was truncated through sequence \(wal.baseSequence) by a snapshot\(from): the rows appended before it are only in that "
                        + "snapshot, and serving this data would lose them. Load that snapshot instead")))
                    break
                }
                if base.walSequence > wal.lastSequence {
                    // Data newer than the log (a snapshot taken with another log): continue after it,
                    // so that no later record can be taken for one the data already holds. If the
                    // log cannot be moved on, the data is refused: later records would reuse
                    // sequences the data claims to hold, and be skipped at the next start.
                    do {
                        try wal.truncate(through: base.walSequence)
                    } catch {
                        done(.failure(error))
                        break
                    }
                    records.removeAll()
                }
                let served = Self.apply(records.filter { $0.sequence > base.walSequence }, onto: base)
                holder.replace(with: served)
                done(.success(served))
            case .snapshot(let path, let done)?:
                guard let store = holder.store else {
                    done(.failure(APIError.notReady))
                    break
                }
                do {
                    let report = try Snapshot.write(store, to: path)
                    try wal.truncate(through: store.walSequence)
                    records.removeAll { $0.sequence <= store.walSequence }
                    lastSnapshot = path
                    observability.metrics.walBytes.record(wal.byteCount)
                    observability.data.notice("snapshot written; log truncated", metadata: ["path": "\(path)", "sequence": "\(store.walSequence)"])
                    done(.success(report))
                } catch {
                    observability.data.error("snapshot failed", metadata: ["path": "\(path)", "error": "\(error)"])
                    done(.failure(error))
                }
            default:
                break
            }
        }
    }

    func commit(_ group: [(AppendBatch, Completion)]) {
        var bytes: [UInt8] = []
        var sequences: [UInt64] = []
        for (batch, _) in group {
            let (s, b) = wal.record(batch)
            sequences.append(s)
            bytes += b
        }
        do {
            let clock = ContinuousClock(), start = clock.now
            try wal.write(bytes)
            let d = clock.now - start
            observability.metrics.synced(nanoseconds: d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
            observability.metrics.walBytes.record(wal.byteCount)
        } catch {
            // Not durable: refuse the whole group. The log has cut its tail back and takes nothing
            // more (a later batch gets this answer too) until the server restarts.
            observability.data.error("write-ahead log write failed; the batches are refused",
                                     metadata: ["path": "\(wal.path)", "batches": "\(group.count)", "error": "\(error)"])
            let e = APIError(status: 503, code: "not_durable", message: "the batch could not be made durable: \(error)")
            for (_, done) in group { done(.failure(e)) }
            return
        }
        for (i, (batch, _)) in group.enumerated() { records.append((sequences[i], batch)) }
        if let store = holder.store {
            holder.replace(with: Self.apply(zip(sequences, group.map(\.0)).map { ($0, $1) }, onto: store))
        }
        for (i, (batch, done)) in group.enumerated() {
            observability.metrics.appended(rows: batch.rows.count)
            done(.success(Outcome(accepted: batch.rows.count, sequence: sequences[i])))
        }
    }

    /// `store` with the rows of `records` added (each client touched rebuilt once); rows whose
    /// client, user or app the store does not hold are skipped. Also how the log is replayed onto
    /// loaded data, at start and after a reload.
    public static func apply(_ records: [(sequence: UInt64, batch: AppendBatch)], onto store: Store) -> Store {
        guard let last = records.map(\.sequence).max() else { return store }
        var byClient: [UUID128: (users: [UInt32], apps: [UInt32], days: [Int32])] = [:]
        for (_, batch) in records {
            guard let c = store.client(batch.client) else { continue }
            var acc = byClient[batch.client] ?? ([], [], [])
            for r in batch.rows {
                guard let u = c.userIndex[r.user], let a = c.appIndex[r.app] else { continue }
                acc.users.append(u)
                acc.apps.append(a)
                acc.days.append(r.day.raw)
            }
            byClient[batch.client] = acc
        }
        let rebuilt = byClient.compactMap { id, rows -> ClientStore? in
            guard !rows.users.isEmpty, let c = store.client(id) else { return nil }
            return c.appending(users: rows.users, apps: rows.apps, days: rows.days)
        }
        return store.replacing(rebuilt, walSequence: max(last, store.walSequence))
    }
}
