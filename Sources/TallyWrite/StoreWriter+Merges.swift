import Foundation
import TallyStorage

// MARK: Merges

extension StoreWriter {
    /// Backpressure: when `batch` would go into its client's tail (nothing but rows of its
    /// tail's days: ``tailFit(_:to:catalog:)``) but take the tail past ``ClientStore/tailMaxRows(baseRows:)`` while the
    /// client's merge runs, the tail's rows (the cap that is reached); else `nil`. Without this
    /// the apply rebuilds the client on the commit thread — about 8.5 s on the 47.6 M-row client
    /// (a merge's time, docs/BENCHMARKS.md) during which no client's batch is acknowledged; with
    /// it only this client's batches wait, refused (503 `merge_behind`, `Retry-After: 1`) until
    /// the merge is installed. `pending` counts the rows of the group's batches let through.
    /// Commit thread only.
    func tailCap(_ batch: AppendBatch, in store: Store, pending: inout [UUID128: Int]) -> Int? {
        guard merging.contains(batch.client), parked[batch.client] == nil, let c = store.client(batch.client), let usage = c.usage,
              let tail = usage.tail, let base = usage.base, tailFit(batch, to: c, catalog: store.catalog) != nil else { return nil }
        let rows = pending[batch.client, default: tail.rowCount] + batch.rows.count
        if rows > tailCap(of: base) { return pending[batch.client, default: tail.rowCount] }
        pending[batch.client] = rows
        return nil
    }

    /// Backpressure for new apps: when `batch` adds apps to a large client (one of
    /// ``tailMinRows`` rows or more) whose merge runs, and they do not fit its spare app slots
    /// with those the group's batches before it add (`pending`), the slots left (the batch is
    /// refused: 503 `merge_behind`, `Retry-After: 1`); else `nil`. Without this such a batch is
    /// parked for a rebuild, which waits for the merge on the merge queue and then drops it:
    /// 14.5 s for a batch of 3 new apps on the 47.6 M-row client (docs/BENCHMARKS.md, "New apps
    /// in the tail"); the merge, installed, brings 16 slots, and takes the apps added meanwhile.
    /// Commit thread only.
    func appRoomCap(_ batch: AppendBatch, in store: Store, pending: inout [UUID128: Set<UUID128>]) -> Int? {
        guard merging.contains(batch.client), parked[batch.client] == nil, batch.directory.catalogApps.isEmpty,
              let c = store.client(batch.client), let usage = c.usage, (usage.base ?? usage).rowCount >= tailMinRows else { return nil }
        let left = max(0, c.appRoom - pending[batch.client, default: []].count)
        return newAppsFit(batch, c, pending: &pending) ? nil : left
    }

    /// Whether client version `c` has taken half its base's spare app slots or more
    /// (``ClientStore/appRoom``): its merge starts then, so that a burst of new apps finds slots
    /// again (past the last, a batch with a new app rebuilds the client: docs/APPENDS.md, "New
    /// apps in the tail").
    func takesSpareApps(_ c: ClientStore, _ base: UsageIndex) -> Bool {
        base.appSlots > base.appCount && c.appRoom <= ClientStore.spareApps / 2
    }

    /// Starts, off the commit thread, the merge of every client whose tail has grown past its
    /// threshold, or began ``mergeAfterSeconds`` ago, has taken half its spare app slots, or whose base's department masks went stale
    /// (a user joined a department, or one was added: until the merge, the department list
    /// counts without them — on the 47.6 M-row client 2.5 ms over HTTP instead of 0.11, docs/BENCHMARKS.md,
    /// "New users in the tail"). Merges run one at a time; a client already merging waits for
    /// its install.
    /// Commit thread only.
    func startMerges(_ store: Store, all: Bool = false) {
        for c in store.clients {
            guard let usage = c.usage, let tail = usage.tail, let base = usage.base, !merging.contains(c.info.id), parked[c.info.id] == nil,
                  all || tail.masksStale || takesSpareApps(c, base) || tail.rowCount >= mergeMinRows ?? Self.mergeRows(baseRows: base.rowCount)
                    || Date().timeIntervalSince1970 - tail.since >= mergeAfterSeconds else { continue }
            merging.insert(c.info.id)
            mergeQueue.async { [self] in
                merge(c, base: base)
            }
        }
    }

    /// Starts merging every client's tail now, whatever its size and age (tests); the merges
    /// run and are installed as the others are.
    public func mergeNow() { enqueue(.mergeAll) }

    /// Rows a merge leaves for the commit thread to apply at its install: its catch-up off the
    /// commit thread goes on until fewer are left (or after ``mergeCatchUpRounds`` rounds, when
    /// the stream outruns it). Each left row is about a microsecond of the commit thread (a
    /// 1,000-row batch's apply); 20,000 until 2026-12-04. (The batches acknowledged across an
    /// install took 10–72 ms then; lowering this alone did not change that — freeing the
    /// replaced index on the commit thread did it: ``releaseLater(_:)``.)
    static let mergeInstallRows = 4_096
    static let mergeCatchUpRounds = 32

    /// Rebuilds `client` with its tail's rows, then catches up — off the commit thread — on
    /// the rows appended meanwhile (as a tail of the rebuilt client), until fewer than
    /// ``mergeInstallRows`` are left for the commit thread to take at the install.
    func merge(_ client: ClientStore, base: UsageIndex) {
        let start = ContinuousClock.now
        // A tail with rows of its base's last day and of the day after: while the next day's
        // rows are recent (a day just turned) or late rows of the last day still come, only the
        // last day's are folded in, so that the base still ends on that day and its late rows
        // still go into the tail; once the next day's rows are `mergeAfterSeconds` old and the
        // late rows have stopped as long (or the next day's rows are many), everything is
        // (docs/APPENDS.md, "Two days in the tail").
        let tail = client.usage!.tail!, now = Date().timeIntervalSince1970
        let keepNext = tail.hasNext && tail.nextRows < (mergeMinRows ?? Self.mergeRows(baseRows: base.rowCount)) / 2
            && (now - (tail.nextSince ?? 0) < mergeAfterSeconds || now - (tail.lateAt ?? 0) < mergeAfterSeconds)
        var merged = client.merged(keepingNextDay: keepNext)
        // What the served version had derived from its base (per-category unions of a class, user
        // days, pair recency), made again for the merged base here rather than by the first
        // request that needs it after the swap.
        merged.baseDerived.warm(from: client.baseDerived, client: merged)
        var rows = client.usage!.tail!.rowCount
        mergeBuilt.withLock { $0 }?()
        // (Not once users, departments or memberships were added meanwhile: the merged client
        // lacks them, and the install drops it. Apps added meanwhile it takes into its spare slots.)
        var rounds = 0
        while rounds < Self.mergeCatchUpRounds, let now = store?.client(client.info.id), let usage = now.usage, usage.base === base,
              let tail = usage.tail, client.sameOrganization(as: now), tail.rowCount - rows >= Self.mergeInstallRows,
              let withApps = merged.addingApps(of: now) {
            merged = withApps.appendingTailRows(withApps.tailRows(of: now, from: rows))
            rows = tail.rowCount
            rounds += 1
        }
        enqueue(.merge(Merge(id: client.info.id, base: base, from: client, client: merged, rows: rows, started: start)))
    }

    /// Serves a merged client in place of the one with the tail, with the rows appended since the
    /// merge's last catch-up as its tail — unless the client was rebuilt or reloaded meanwhile.
    /// Commit thread only.
    func install(_ m: Merge) {
        merging.remove(m.id)
        let seconds = (ContinuousClock.now - m.started).seconds
        // A client with batches parked is being rebuilt whole: that rebuild takes its tail too.
        // Users, departments or memberships added while it ran
        // (``ClientStore/withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``) are not in
        // the merged client: it is dropped, and runs again. Apps added meanwhile it takes into its
        // spare slots (dropped when they do not fit).
        guard parked[m.id] == nil, let store, let now = store.client(m.id), let usage = now.usage, usage.base === m.base, let tail = usage.tail,
              tail.rowCount >= m.rows, m.from.sameOrganization(as: now), let merged = m.client.addingApps(of: now) else {
            observer.merged(installed: false, rows: m.rows, seconds: seconds)
            return
        }
        // Rows appended since the last catch-up that the merged client's tail cannot take (late
        // rows of a day the merge moved the base past) would rebuild it here, on the commit
        // thread: the merge is dropped instead, and runs again. The merged client numbers users
        // added before the merge with their departments: the rows are renumbered to it.
        let rows = merged.tailRows(of: now, from: m.rows)
        guard merged.takesInTail(users: rows.users, apps: rows.apps, days: rows.days) else {
            observer.merged(installed: false, rows: m.rows, seconds: seconds)
            return
        }
        var next = merged.appendingTailRows(rows)
        // Attributes changed while the merge ran (names, activity flags, favourites: they keep
        // the base, ``ClientStore/withAttributes(_:catalog:)``): the merged client takes them.
        // Unchanged versions share their arrays, so the comparison is that of their buffers.
        if now.users != m.from.users || now.departments != m.from.departments || now.apps != m.from.apps {
            next = next.takingAttributes(of: now)
        }
        publish(store.replacing([next], walSequence: store.walSequence), replacesData: false)
        observer.merged(installed: true, rows: m.rows, seconds: seconds)
        startMerges(self.store!)
    }
}
