import Dispatch
import Glibc

// MARK: Appending

extension UsageTail {
    /// A row's key in ``rows``: `user << 32`, bit 31 set for the next day, then the app.
    @inline(__always) static func key(_ u: UInt32, _ e: Int, next: Bool) -> UInt64 {
        UInt64(u) << 32 | (next ? 1 << 31 : 0) | UInt64(e)
    }

    /// The user, app and whether on the next day of a row of ``rows``.
    @inline(__always) static func row(_ r: UInt64) -> (user: UInt32, app: UInt32, next: Bool) {
        (UInt32(truncatingIfNeeded: r >> 32), UInt32(truncatingIfNeeded: r) & 0x7FFF_FFFF, r & (1 << 31) != 0)
    }

    /// Calls `body` with the user, app, day (days since 1970) and whether on the next day of each
    /// of the tail's rows from the `from`-th on, in arrival order.
    public func forEachRow(from: Int = 0, _ body: (_ user: UInt32, _ app: UInt32, _ day: Int32, _ next: Bool) -> Void) {
        for i in from..<rows.count {
            let r = Self.row(rows[i])
            body(r.user, r.app, r.next ? nextDayRaw : dayRaw, r.next)
        }
    }

    /// `previous` (or nothing) with the rows `users[i]`, `apps[i]`, each on the base's last day
    /// `B` or, where `next[i]`, on the next day `nextDay` (`next` empty: all on `B`; `previous`'s
    /// next day if it has rows on one), that neither the base nor `previous` holds; with those
    /// rows (``key(_:_:next:)``) and the users they gave a new pair. `nil` when no row is new.
    /// - Complexity: O(rows × (the user's pairs + days)) — the batch, not the client.
    /// `masksStale`: the client's memberships no longer match the base's department masks
    /// (``masksStale``); a tail whose previous version's do not match stays so.
    static func appending(to previous: UsageTail?, base: UsageIndex, client: ClientStore,
                          users: [UInt32], apps: [UInt32], next: [Bool] = [], nextDay: Int? = nil, masksStale: Bool = false)
        -> (tail: UsageTail, added: [UInt64], newPairUsers: [UInt32])? {
        let stale = masksStale || previous?.masksStale == true
        let keepsMasks = base.hasDepartmentMasks && !stale
        let L = base.dayCount - 1, E = base.entityCount, W = base.departmentMaskWords, dayCount = base.dayCount
        let D = previous.flatMap { $0.hasNext ? $0.nextDay : nil } ?? nextDay ?? L + 1
        precondition(D > L && D - L <= maxGap && D < Int(UInt16.max), "the next day is after the base's last, within a week")
        // The base's pairs over the client's users: users added since the base was built (a new
        // employee) have none (docs/APPENDS.md, "New users, departments and memberships in the tail").
        let N = client.users.count
        let pairs: PairIndex
        if base.basePairs.userCount == N {
            pairs = base.basePairs
        } else if let p = previous?.pairs, p.userCount == N {
            pairs = p
        } else {
            pairs = PairIndex(padding: base.basePairs, users: N)
        }
        // The writer's state: the previous tail's if it is the newest of its chain, else rebuilt.
        let state: WriterState
        if let previous, previous.state.serial == previous.serial {
            state = previous.state
            if state.pairCounts.count < N { state.pairCounts += repeatElement(0, count: N - state.pairCounts.count) }
        } else {
            state = WriterState(pairs: pairs, userCount: N, entities: E)
            if let previous {
                for e in 0..<E {
                    previous.users(e)?.forEach { state.held.insert($0, e, next: false) }
                    previous.nextUsers(e)?.forEach { state.held.insert($0, e, next: true) }
                }
                for i in 0..<previous.rows.count {
                    let r = row(previous.rows[i]), p = previous.links[i].pair
                    state.held.insert(r.user, Int(r.app), next: r.next)
                    if p.basePair < 0 && !p.twin { state.pairCounts[Int(r.user)] += 1 }
                }
            }
        }
        var entities = previous?.entities ?? [EntityTail?](repeating: nil, count: E)
        var rows: [UInt64] = []
        var links: [PairLink] = []
        // Users added since the previous version (or the base): a version of its own, even
        // without a row, so that every per-user array read with it covers them.
        // Apps added since (they take the base's spare slots) likewise: the version's index serves them.
        let grew = N > (previous?.pairHead.count ?? base.basePairs.userCount) || client.apps.count > (previous?.appCount ?? base.appCount)
        var head = previous?.pairHead ?? []
        if head.count < N { head += repeatElement(-1, count: N - head.count) }
        let rowBase = previous?.rows.count ?? 0
        var newPairUsers: [UInt32] = []
        var added: [[UInt32]] = .init(repeating: [], count: E), addedNext: [[UInt32]] = .init(repeating: [], count: E)
        var nextRows = previous?.nextRows ?? 0, lastDayRows = 0
        let classBits = client.appClassBits
        let masks = client.userDepartmentMasks
        // The row's classes the user is not settled in yet: one array for every row (made per
        // row, with a filter, it was 6% of a 1,000-row batch's apply under `perf`).
        var classes: [(entity: Int, last: Int)] = []
        classes.reserveCapacity(AppClass.allCases.count + 1)
        /// User `u` joins entity `e`'s users of the day (`onNext`), their last base day with it `baseLast`.
        func add(_ u: UInt32, _ e: Int, baseLast: Int, onNext: Bool) {
            if entities[e] == nil {
                entities[e] = EntityTail(users: .empty, before: [UInt32](repeating: 0, count: base.dayCount + 1),
                                         mask: [UInt64](repeating: 0, count: keepsMasks ? W : 0))
            }
            // Counted once over both days: not when the user is settled on the other day already
            // (in the tail, or, for the base's last day, active in the base that day: then their
            // last base day is `B`, which no count over a range `lo…` with `lo ≤ B` reads).
            let either = !state.held.contains(u, e, next: !onNext)
            if onNext && entities[e]!.beforeEither == nil { entities[e]!.beforeEither = entities[e]!.before }
            // One more user from day `baseLast + 1` on: through a pointer, to a bound held in a
            // local (read from `base` in the loop's test, the bound was loaded again each step and
            // the loop was not vectorized: this function had 477 of the apply's 2,281 samples in
            // `perf` of `tally bench --tail-fraction 0.01`, now 286; docs/BENCHMARKS.md, "Merges
            // under `SCHED_IDLE`, and the log written beside the apply").
            func count(_ b: inout UnsafeMutableBufferPointer<UInt32>) {
                guard let p = b.baseAddress, baseLast + 1 <= dayCount else { return }
                for j in (baseLast + 1)...dayCount { p[j] &+= 1 }
            }
            if !onNext { entities[e]!.before.withUnsafeMutableBufferPointer(count) }
            if either, entities[e]!.beforeEither != nil { entities[e]!.beforeEither!.withUnsafeMutableBufferPointer(count) }
            if keepsMasks, let masks {
                if onNext {
                    if entities[e]!.nextMask.isEmpty { entities[e]!.nextMask = [UInt64](repeating: 0, count: W) }
                    for w in 0..<W { entities[e]!.nextMask[w] |= masks[Int(u) * W + w] }
                } else {
                    for w in 0..<W { entities[e]!.mask[w] |= masks[Int(u) * W + w] }
                }
            }
            if onNext { addedNext[e].append(u) } else { added[e].append(u) }
        }
        state.warmed &+= warm(users: users, apps: apps, held: state.held, pairs: pairs, classEntity: base.entity(AppClass.allCases[0]))
        for i in users.indices {
            let u = users[i], a = apps[i], ai = Int(a), onNext = next.isEmpty ? false : next[i]
            let key = Self.key(u, ai, next: onNext)
            guard !state.held.contains(u, ai, next: onNext) else { continue }
            let pair = pairs.pair(user: Int(u), app: ai)
            let last = pair.flatMap { pairs.lastDay(pair: $0, 0, L) } ?? -1
            if !onNext && last >= L {  // the base holds the row
                state.held.insert(u, ai, next: onNext)
                continue
            }
            // The pair's row of the other day, if the tail has one (not a base row of `B`).
            let twin = state.held.contains(u, ai, next: !onNext) && (onNext ? last < L : true)
            let day = onNext ? D : L
            if pair == nil && !twin {
                state.pairCounts[Int(u)] += 1
                newPairUsers.append(u)
            }
            if onNext { nextRows += 1 } else { lastDayRows += 1 }
            links.append(PairLink(pair: TailPair(app: a, basePair: pair.map { Int32($0) } ?? -1, baseLast: Int32(last),
                                                 day: UInt16(day), firstDay: UInt16(twin ? (onNext ? L : D) : day)), next: head[Int(u)]))
            head[Int(u)] = Int32(rowBase + rows.count)
            rows.append(key)
            add(u, ai, baseLast: last, onNext: onNext)
            state.held.insert(u, ai, next: onNext)  // after `add`, which reads whether the other day holds it
            // Each class with the app the user is not settled in yet on the row's day: the user's
            // last base day over the class's apps, all such classes in one pass over the user's
            // pairs; on the base's last day the user is new to a class when that is before it.
            classes.removeAll(keepingCapacity: true)
            for c in AppClass.allCases where classBits[ai] & (1 << UInt8(c.rawValue)) != 0 {
                let e = base.entity(c)
                if !state.held.contains(u, e, next: onNext) { classes.append((e, -1)) }
            }
            if let e = base.entity(category: client.apps[ai].category), !state.held.contains(u, e, next: onNext) {
                classes.append((e, -1))
            }
            guard !classes.isEmpty else { continue }
            for p in Int(pairs.userStart[Int(u)])..<Int(pairs.userStart[Int(u) + 1]) {
                let x = Int(pairs.pairApp[p])
                var d: Int?? = .none  // the pair's last day, read once if some class needs it
                for j in classes.indices where Self.app(x, isIn: classes[j].entity, base: base, client: client) {
                    if d == nil { d = .some(pairs.lastDay(pair: p, 0, L)) }
                    if let day = d!, day > classes[j].last { classes[j].last = day }
                }
            }
            for (e, classLast) in classes {
                // On the base's last day, a user active in the class that day already adds nothing.
                if onNext || classLast < L { add(u, e, baseLast: classLast, onNext: onNext) }
                state.held.insert(u, e, next: onNext)
            }
        }
        guard !rows.isEmpty || grew || stale != (previous?.masksStale ?? false) else { return nil }
        for e in 0..<E {
            if !added[e].isEmpty { entities[e]!.users = entities[e]!.users.appending(added[e]) }
            if !addedNext[e].isEmpty { entities[e]!.next = entities[e]!.next.appending(addedNext[e]) }
        }
        state.serial += 1
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let seconds = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        let allRows = (previous?.rows ?? .empty).appending(rows), allLinks = (previous?.links ?? .empty).appending(links)
        var grouped = previous?.grouped ?? .empty
        if let made = state.regrouped.withLock({ r in defer { r.made = nil }; return r.made }), made.count > grouped.count { grouped = made }
        let recent = allRows.count - grouped.count
        if recent > min(regroupRows, max(16, grouped.count / 4)) {
            // A large tail is grouped again off the commit thread, taken by a later version
            // (3–10 ms on the commit thread at 476,537 rows with one run, every eighth 1,000-row
            // batch: a tenth of the acknowledgements, in `tally bench --tail-fraction 0.01` timed
            // per batch); a small one here, and so is the young run of one whose regrouping fell
            // far behind.
            if allRows.count <= 65_536 || recent > 4 * regroupRows {
                // (Past 65,536 rows only the young run: the old one waits for the background.)
                grouped = grouped.adding(allLinks, rows: allRows, userCount: N, mayRemakeOld: allRows.count <= 65_536)
            } else if state.regrouped.withLock({ r in defer { r.running = true }; return !r.running }) {
                let from = grouped, users = N
                DispatchQueue.global(qos: .utility).async {
                    let made = from.adding(allLinks, rows: allRows, userCount: users)
                    state.regrouped.withLock { $0 = (made, false) }
                }
            }
        }
        let tail = UsageTail(day: L, nextDay: D, since: previous?.since ?? seconds,
                             nextSince: previous?.nextSince ?? (nextRows > 0 ? seconds : nil),
                             lateAt: lastDayRows > 0 && (previous?.hasNext ?? false) ? seconds : previous?.lateAt, nextRows: nextRows,
                             entities: entities, rows: allRows, links: allLinks, pairHead: head, grouped: grouped, base: base,
                             pairs: pairs, masksStale: stale, state: state, serial: state.serial, appCount: client.apps.count)
        return (tail, rows, newPairUsers)
    }

    /// Whether app `a` is in class entity `e` (a fixed class or a category's).
    @inline(__always)
    static func app(_ a: Int, isIn e: Int, base: UsageIndex, client: ClientStore) -> Bool {
        let fixed = e - base.appSlots
        if fixed < AppClass.allCases.count { return client.appClassBits[a] & (1 << UInt8(fixed)) != 0 }
        return base.entity(category: client.apps[a].category) == e
    }
}

extension UsageTail {
    /// Reads what the apply of these rows reads first — each row's held bits (its app's word and
    /// its classes'), its user's place in the pairs, their middle app and first recent word — in
    /// a loop whose loads do not wait on each other, so that the batch's cache misses overlap
    /// instead of coming one row at a time behind the last row's work: the first held test of a
    /// row was 55% of the apply's own `perf` samples. `perf` samples in `ClientStore.appending`
    /// during `tally bench --tail-fraction 0.01` on the 47.6 M-row client, alternated on a noisy
    /// host: fewer in each of 8 pairs, medians 985 against 1,441 in 6 of them (2026-12-04). The
    /// same reads made 16 rows ahead of each row instead were no better than none.
    static func warm(users: [UInt32], apps: [UInt32], held: HeldBits, pairs: PairIndex, classEntity: Int) -> UInt64 {
        var x: UInt64 = 0
        let hasRecent = !pairs.recent.isEmpty
        for i in users.indices {
            let u = users[i]
            x &+= held.word(u, Int(apps[i])) &+ held.word(u, classEntity)
            let s = Int(pairs.userStart[Int(u)]), e = Int(pairs.userStart[Int(u) &+ 1])
            if s < e {
                x &+= UInt64(pairs.pairApp[(s &+ e) >> 1])
                if hasRecent { x &+= pairs.recent[s] }
            }
        }
        return x
    }
}

extension PairIndex {
    /// The pair of user `u` and app `a`, if the user ever used the app: a binary search of the
    /// user's apps (ascending).
    public func pair(user u: Int, app a: Int) -> Int? {
        var lo = Int(userStart[u]), hi = Int(userStart[u + 1])
        while lo < hi {
            let m = (lo + hi) >> 1
            let x = Int(pairApp[m])
            if x == a { return m }
            if x < a { lo = m + 1 } else { hi = m }
        }
        return nil
    }
}
