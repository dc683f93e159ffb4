import Foundation
import TallyStorage

// MARK: Rebuilds off the commit thread

/// A batch in the write-ahead log and whom to answer: applied at once, or parked for a rebuild
/// off the commit thread and not yet acknowledged.
struct LoggedBatch {
    let sequence: UInt64
    let batch: AppendBatch
    let done: StoreWriter.Completion
}

/// A client rebuilt off the commit thread: `from` (the version served when the rebuild began)
/// with the first `count` batches parked for it, and the served tail's rows from `from`'s first
/// on to the `rows`-th (events let past the rebuild: ``StoreWriter/passesRebuild(_:in:nextDays:newApps:)``)
/// caught up as its own tail.
struct Rebuilt: @unchecked Sendable {
    let id: UUID128
    let from: ClientStore
    let client: ClientStore
    let count: Int
    let rows: Int
}

extension StoreWriter {
    /// Whether `batch` would rebuild a large client (one of ``tailMinRows`` usage rows or more)
    /// on the commit thread: anything but events of its base's last day or its tail's next day
    /// (the day after, or up to a week on) that fit its tail (beside rows of other days it holds
    /// already, which change nothing) — events of a third day or backdated before its base,
    /// directory rows that add an entity or a membership or change an app's classes.
    /// Such a rebuild takes about 8.5 s on
    /// the 47.6 M-row client, and held every client's acknowledgements meanwhile; it now runs on
    /// the merge queue while only that client's batches wait (``park(_:)``). Batches with
    /// catalog rows stay on the commit thread (they change other clients too); so do small
    /// clients', whose rebuild takes milliseconds.
    /// Commit thread only.
    /// `nextDays`: the next day the group's batches before this one put in each client's tail
    /// (they are applied together, as one append): a batch naming another is rebuilt.
    /// `newApps`: the apps the group's batches before this one add to each client; together
    /// they must fit its spare app slots (``ClientStore/appRoom``), or this batch is rebuilt.
    func rebuildsLargeClient(_ batch: AppendBatch, in store: Store, nextDays: inout [UUID128: Int32],
                             newApps: inout [UUID128: Set<UUID128>]) -> Bool {
        guard batch.directory.catalogApps.isEmpty, let c = store.client(batch.client), let usage = c.usage else { return false }
        let base = usage.base ?? usage
        guard base.rowCount >= tailMinRows else { return false }
        guard let fit = tailFit(batch, to: c, catalog: store.catalog) else { return true }
        if fit.named {
            if let earlier = nextDays[batch.client], earlier != fit.nextDay { return true }
            nextDays[batch.client] = fit.nextDay
        }
        guard newAppsFit(batch, c, pending: &newApps) else { return true }
        return (usage.tail?.rowCount ?? 0) + batch.rows.count > tailCap(of: base)
    }

    /// Whether the apps `batch` adds to client version `c` fit its spare app slots
    /// (``ClientStore/appRoom``) beside those the group's batches before it add (`pending`, which
    /// then takes them): the group is applied as one append.
    func newAppsFit(_ batch: AppendBatch, _ c: ClientStore, pending: inout [UUID128: Set<UUID128>]) -> Bool {
        let added = batch.directory.apps.lazy.map(\.id).filter { c.appIndex[$0] == nil }
        guard !added.isEmpty else { return true }
        let all = pending[batch.client, default: []].union(added)
        guard all.count <= c.appRoom else { return false }
        pending[batch.client] = all
        return true
    }

    /// How `batch` goes into client `c`'s tail (``ClientStore/tailFit(days:holds:)``), or `nil`
    /// when it does not: all it adds must be rows of the tail's days — its base's last day and
    /// its next day (the day after, or the first after days without rows: docs/APPENDS.md, "Two
    /// days in the tail") — its directory rows change at most attributes the usage index does
    /// not read (names, activity flags, favourites: ``DirectoryRows/effect(on:catalog:)``), and
    /// its rows of other days are held already (a batch sent again:
    /// ``ClientStore/holds(user:app:day:)``). Only those rows' ids are looked up.
    func tailFit(_ batch: AppendBatch, to c: ClientStore, catalog: Catalog) -> (nextDay: Int32, named: Bool)? {
        guard batch.directory.isEmpty || batch.directory.effect(on: c, catalog: catalog) != .more else { return nil }
        return c.tailFit(days: batch.rows.map(\.day.raw)) { i in
            let r = batch.rows[i]
            guard let u = c.userIndex[r.user], let a = c.appIndex[r.app] else { return false }
            return c.holds(user: u, app: a, day: r.day.raw)
        }
    }

    /// The most rows `base`'s tail holds: ``tailMaxRows`` if given, else ``ClientStore/tailMaxRows(baseRows:)``.
    func tailCap(of base: UsageIndex) -> Int { tailMaxRows ?? ClientStore.tailMaxRows(baseRows: base.rowCount) }

    /// Answers a batch whose rows are served: acknowledged.
    func acknowledge(_ p: LoggedBatch) {
        observer.appended(rows: p.batch.rows.count)
        p.done(.success(AppendOutcome(accepted: p.batch.rows.count, directoryRows: p.batch.directory.count, sequence: p.sequence)))
    }

    /// Answers every parked batch with `answer` and forgets them.
    func answerParked(_ answer: (LoggedBatch) -> Void) {
        for (_, batches) in parked { batches.forEach(answer) }
        parked = [:]
        parkedIds = [:]
        parkedNewestDay = [:]
        rebuildingStrictly = []
    }

    /// Forgets client `id`'s parked batches (answered, or none left).
    func unpark(_ id: UUID128) {
        parked[id] = nil
        parkedIds[id] = nil
        parkedNewestDay[id] = nil
        rebuildingStrictly.remove(id)
    }

    /// Whether `batch`, of a client whose batches are parked for a rebuild, is applied now to the
    /// served version instead of waiting behind them: a batch of events only (no directory row),
    /// each naming a user and an app the served version holds, on its newest day (its tail's next
    /// day if it has rows, else its base's last day) or of an older day its base holds already,
    /// that goes into its tail (``rebuildsLargeClient(_:in:nextDays:newApps:)`` says no rebuild) —
    /// and no parked batch names a later day. The rebuild then ends on that same day, so its
    /// install takes these rows into the rebuilt client's tail (``catchingUp(_:from:rows:to:)``).
    /// Events commute with every parked batch (they add rows; the parked ones upsert directory
    /// rows or add rows): the data served in between is the log without the parked batches, none
    /// of them acknowledged yet. What this spares: an app's approval changed on the 47.6 M-row
    /// client rebuilds it for 6.5–7.3 s, during which the client's every batch waited
    /// (docs/BENCHMARKS.md, "An app's approval changed during the trickle", "Events past a rebuild").
    /// Commit thread only.
    func passesRebuild(_ batch: AppendBatch, in store: Store, nextDays: inout [UUID128: Int32],
                       newApps: inout [UUID128: Set<UUID128>]) -> Bool {
        guard batch.directory.isEmpty, !rebuildingStrictly.contains(batch.client), let c = store.client(batch.client),
              let usage = c.usage else { return false }
        let newest = usage.newestDay.raw  // the tail's next day if it has rows on one, else the base's last day
        guard parkedNewestDay[batch.client].map({ $0 <= newest }) ?? true else { return false }
        for r in batch.rows {
            guard let u = c.userIndex[r.user], let a = c.appIndex[r.app] else { return false }
            if r.day.raw != newest && !(r.day.raw < newest && c.holds(user: u, app: a, day: r.day.raw)) { return false }
        }
        return !rebuildsLargeClient(batch, in: store, nextDays: &nextDays, newApps: &newApps)
    }

    /// `client` — rebuilt from `from` with parked batches — with the rows `now` (the version
    /// served since, of the same client) added to its tail from `from`'s `rows`-th tail row on:
    /// the events ``passesRebuild(_:in:nextDays:newApps:)`` let past it. Also the rows taken so
    /// far. `nil` when `now` changed otherwise (another base: a merge, a reload, a catalog change;
    /// users, departments, memberships, apps or their attributes) or the rows do not all go into
    /// `client`'s tail, or past its cap (appending them would rebuild it).
    /// - Complexity: O(the rows taken + users + apps).
    static func catchingUp(_ client: ClientStore, from: ClientStore, rows: Int, to now: ClientStore) -> (client: ClientStore, rows: Int)? {
        guard let fu = from.usage, let nu = now.usage, (nu.base ?? nu) === (fu.base ?? fu), now.sameOrganization(as: from),
              now.users == from.users, now.departments == from.departments, now.apps == from.apps else { return nil }
        let count = nu.tail?.rowCount ?? 0
        guard count > rows else { return count == rows ? (client, rows) : nil }
        // Apps keep their numbers in a rebuild (added in order, new ones after), so the rows' apps
        // are the rebuilt client's; users are renumbered by id.
        guard client.apps.count >= now.apps.count, zip(now.apps, client.apps).allSatisfy({ $0.id == $1.id }) else { return nil }
        let taken = client.tailRows(of: now, from: rows)
        guard let cu = client.usage, client.takesInTail(users: taken.users, apps: taken.apps, days: taken.days),
              (cu.tail?.rowCount ?? 0) + taken.users.count <= ClientStore.tailMaxRows(baseRows: (cu.base ?? cu).rowCount) else { return nil }
        return (client.appendingTailRows(taken), count)
    }

    /// Parks a logged batch for its client, with the ids its directory rows add (later batches
    /// may name them): it is acknowledged once the client, rebuilt with it,
    /// is served (``installRebuilt(_:)``). The group's other batches are applied first, then
    /// ``startRebuilds()`` starts the rebuilds from what they left (a batch of the same client
    /// earlier in the group is in it).
    /// Commit thread only.
    func park(_ p: LoggedBatch) {
        // Without its rows' dense indexes: they keep the version it was parsed against alive,
        // and the rebuild that takes it numbers ids anew.
        var batch = p.batch
        batch.dense = nil
        let p = LoggedBatch(sequence: p.sequence, batch: batch, done: p.done)
        parked[p.batch.client, default: []].append(p)
        parkedIds[p.batch.client, default: AppendBody.AddedIds()].add(p.batch)
        if let day = p.batch.rows.lazy.map(\.day.raw).max() {
            parkedNewestDay[p.batch.client] = max(day, parkedNewestDay[p.batch.client] ?? day)
        }
    }

    /// Starts the rebuild of every client with parked batches and none under way.
    /// Commit thread only.
    func startRebuilds() {
        for id in parked.keys where !rebuilding.contains(id) { startRebuild(id) }
    }

    /// Rebuilds `id` with its parked batches on the merge queue (after any merge already queued).
    /// Commit thread only.
    func startRebuild(_ id: UUID128) {
        guard let store, let batches = parked[id], !batches.isEmpty else { return }
        guard let from = store.client(id) else {
            // Not reached (a reload, which could drop the client, serves parked batches itself):
            // answered rather than left waiting.
            for p in batches { p.done(.failure(WriteError(.conflict, "the served data no longer holds client \(id)"))) }
            unpark(id)
            return
        }
        rebuilding.insert(id)
        let records = batches.map { (sequence: $0.sequence, batch: $0.batch) }
        let catalog = store.catalog
        mergeQueue.async { [self] in
            rebuildStarted.withLock { $0 }?()
            let one = Store(catalog: catalog, clients: [from])
            var next = AppendBody.apply(records, onto: one, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows).clients[0]
            next.baseDerived.warm(from: from.baseDerived, client: next)  // as a merge does
            // Events let past the rebuild meanwhile are caught up here, off the commit thread,
            // until fewer than ``mergeInstallRows`` are left for the install (as a merge does).
            var rows = from.usage?.tail?.rowCount ?? 0, rounds = 0
            while rounds < Self.mergeCatchUpRounds, let now = self.store?.client(id),
                  (now.usage?.tail?.rowCount ?? 0) - rows >= Self.mergeInstallRows,
                  let caught = Self.catchingUp(next, from: from, rows: rows, to: now) {
                (next, rows) = caught
                rounds += 1
            }
            enqueue(.rebuilt(Rebuilt(id: id, from: from, client: next, count: records.count, rows: rows)))
        }
    }

    /// Serves a client rebuilt off the commit thread, with the events let past it meanwhile
    /// (``catchingUp(_:from:rows:to:)``), and acknowledges the batches it holds — unless the
    /// client changed otherwise meanwhile (a reload, or a catalog change that rebuilt it) or its
    /// tail cannot take those events: then it is rebuilt again from what is served, with every
    /// batch parked for it, and the client's later batches all wait behind that rebuild
    /// (``rebuildingStrictly``), so that it ends.
    /// Commit thread only.
    func installRebuilt(_ r: Rebuilt) {
        rebuilding.remove(r.id)
        guard let store, let batches = parked[r.id], !batches.isEmpty else { return }
        guard batches.count >= r.count, let now = store.client(r.id),
              let client = now === r.from ? r.client : Self.catchingUp(r.client, from: r.from, rows: r.rows, to: now)?.client else {
            // Rebuilt from data no longer served, or for batches a reload has served since, or
            // events let past it that it cannot take.
            rebuildingStrictly.insert(r.id)
            startRebuild(r.id)
            return
        }
        let done = batches.prefix(r.count)
        let rest = Array(batches.dropFirst(r.count))
        if rest.isEmpty { unpark(r.id) } else { parked[r.id] = rest }
        let acked = max(freshness.ackedSequence, done.map(\.sequence).max()!)
        publish(store.replacing([client], walSequence: store.walSequence), acked: acked, replacesData: false)
        done.forEach(acknowledge)
        if !rest.isEmpty { startRebuild(r.id) }
        startMerges(self.store!)
    }

    /// The newest log record a snapshot may claim to hold: the served data's, or, while batches
    /// are parked, the one before the oldest of them (a start replays the records after it, and
    /// replaying what the data already holds changes nothing: events count once, directory rows
    /// are upserts). The log is truncated through it, never past a parked batch.
    /// Commit thread only.
    func snapshotSequence(_ store: Store) -> UInt64 {
        guard let oldest = parked.values.lazy.flatMap({ $0 }).map(\.sequence).min() else { return store.walSequence }
        return min(store.walSequence, oldest - 1)
    }

    /// A reload replayed the whole log onto its data, parked batches included: they are served
    /// now. Commit thread only.
    func acknowledgeParked() { answerParked(acknowledge) }

    /// The commit thread is exiting: parked batches are in the log (the next start applies them)
    /// but will not be served by this process.
    func refuseParked() {
        answerParked { p in
            p.done(.failure(WriteError(.shuttingDown, "the server is shutting down: the batch is in the write-ahead log and is served "
                + "after the restart (sending it again changes nothing)")))
        }
    }
}
