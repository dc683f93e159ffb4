import TallyStorage

/// Threshold pruning for first pages: when a list is sorted by a count and only a page is
/// wanted, rows are visited by an upper bound of that count, best first, and counted exactly
/// only while they can still reach the page.
extension Executor {
    /// A page of apps by distinct users without counting every app exactly (threshold
    /// pruning): each app's users over the range lie between its largest block's cardinality and
    /// the smaller of the sum of its blocks' (read from container headers) and its users over the
    /// whole history; apps are visited best bound first, and the visit stops once no unvisited
    /// app can reach the page. Only the apps visited get exact metrics; the others are counted for
    /// `total_count` (an O(1) activity test) and left zero. `nil` when it does not apply (another
    /// sort or dimension, a department filter, no page).
    func topApps(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> (MetricsTable, [Entry], Int)? {
        guard q.dimension == .app, q.sort == .users, !q.firstSeenInPeriod, scope.users == nil,
              let size = q.pageSize, let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let index = scan.index
        let desc = q.order == .desc
        // Every app's block bounds at once: a few contiguous rows of cardinalities, read in order.
        let appCount = index.appCount
        let lower = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, appCount))
        let upper = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, appCount))
        defer { lower.deallocate(); upper.deallocate() }
        lower.initialize(repeating: 0, count: appCount)
        upper.initialize(repeating: 0, count: appCount)
        for b in scan.blocks {
            if let row = b.cards {
                // One loop per width, each vectorized.
                func bound<T: FixedWidthInteger>(_ row: UnsafePointer<T>) {
                    for a in 0..<appCount {
                        let c = UInt32(truncatingIfNeeded: row[a])
                        lower[a] = max(lower[a], c)
                        upper[a] &+= c
                    }
                }
                switch row {
                case .narrow(let p): bound(p)
                case .wide(let p): bound(p)
                }
            } else {
                // A small client keeps no cardinality rows: a header read per app.
                for a in 0..<appCount {
                    let c = UInt32(truncatingIfNeeded: b.view.cardinality(b.bitmap(a)))
                    lower[a] = max(lower[a], c)
                    upper[a] &+= c
                }
            }
        }
        // Candidates as packed keys, best bound first: for descending order the highest upper
        // bound (then the lowest app), for ascending the lowest lower bound (then the lowest app).
        // A heap, not a sort: the visit usually stops after about a page of the ~600 apps.
        var keys: [UInt64] = []
        keys.reserveCapacity(scope.apps.count)
        for app in scope.apps where scan.appIsActive(Int(app)) {
            if let n = index.rangeCount(entity: Int(app), scan.lo, scan.hi) {
                lower[Int(app)] = UInt32(n)
                upper[Int(app)] = UInt32(n)
            } else {
                upper[Int(app)] = UInt32(min(Int(upper[Int(app)]), index.lifetimeUsers(app: Int(app))))
            }
            keys.append(desc ? UInt64(upper[Int(app)]) << 32 | UInt64(UInt32.max - app)
                             : ~(UInt64(lower[Int(app)]) << 32 | UInt64(app)))
        }
        let total = keys.count
        var heap = MaxHeap(keys)
        var metrics = MetricsTable()
        var best = BestRows(keep: size + 1, descending: desc)
        let after = numericCursor(q)
        while let key = heap.pop() {
            let app = desc ? UInt32.max - UInt32(truncatingIfNeeded: key) : UInt32(truncatingIfNeeded: ~key)
            let c = (app: app, lb: Int(lower[Int(app)]), ub: Int(upper[Int(app)]))
            if let worst = best.worstIfFull {
                // No later candidate can come before the worst kept row.
                if desc ? c.ub < worst.value : c.lb > worst.value { break }
            }
            // Provably at or before the cursor: skip without counting.
            if let v = after?.value, desc ? c.lb > v : c.ub < v { continue }
            let id = rows.id(Int(c.app))
            let exact = scan.userCount(entity: Int(c.app))
            let e = Entry(index: Int32(c.app), value: exact, id: id, key: nil)
            if let after, !after.precedes(exact, id, descending: desc) { continue }
            var m = Metrics()
            m.users = exact
            m.apps = 1
            m.userDays = scan.userDays(entity: Int(c.app))
            if scope.client.apps[Int(c.app)].isApproved { m.approvedUsers = exact; m.approvedApps = 1 } else {
                m.unapprovedUsers = exact
                m.unapprovedApps = 1
            }
            metrics[Int(c.app)] = m
            best.offer(e)
        }
        return (metrics, best.rows, total)
    }

    /// A page of users by distinct apps, descending, without counting every user exactly: a
    /// user's apps in the range are at most their apps in the scope over the whole history (their
    /// pairs), so users are visited by that bound, highest first, until none can reach the page.
    /// Only the apps are counted on the visit; active days are counted for the rows kept. `nil`
    /// when it does not apply (another sort, order or dimension, no page).
    func topUsers(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> (MetricsTable, [Entry], Int)? {
        guard q.dimension == .user, q.sort == .apps, q.order == .desc, let size = q.pageSize,
              let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let pairs = scan.index.pairs
        let lo = scan.lo, hi = scan.hi
        let after = numericCursor(q)
        var best = BestRows(keep: size + 1, descending: true)
        func visit(_ u: UInt32, _ exact: Int) { best.offer(Int(u), exact, after: after, id: rows.id) }
        let total: Int
        if let (order, bound) = pairCountOrder(scope, scan.index) {
            // The scope's apps are one entity (``pairCountOrder(_:_:)``): the active users are
            // counted by it (its range table or its union, after the department filter), and
            // visited by their number of pairs in its apps.
            total = scan.countOfApps(.all)
            let users = scope.client.users
            let f = scope.users
            // A first page visits a few users: it derives nothing for them.
            appCounter(scope, scan, derive: q.after != nil) { exact in
                for u in order {
                    let ub = bound(Int(u))
                    if ub == 0 { break }
                    if let worst = best.worstIfFull {
                        // Ties are kept by id: past the worst kept row's id, no later user can enter.
                        if ub < worst.value || (ub == worst.value && users[Int(u)].id > worst.id) { break }
                    }
                    if let f, !f.contains(u) { continue }
                    let n = exact(Int(u))
                    if n > 0 { visit(u, n) }
                }
            }
        } else {
            let f = scope.users
            var candidates: [(user: UInt32, ub: Int)] = []
            scope.appMask.withUnsafeBufferPointer { mask in
                for u in 0..<scan.domain {
                    if let f, !f.contains(UInt32(u)) { continue }
                    var ub = 0
                    var active = false
                    let base = pairs.base
                    for p in Int(base.userStart[u])..<Int(base.userStart[u &+ 1]) where mask[Int(base.pairApp[p])] {
                        ub &+= 1
                        if !active && base.hasDay(pair: p, lo, hi) { active = true }
                    }
                    pairs.forEachTailPair(user: u) { if $0.basePair < 0 && !$0.twin && mask[Int($0.app)] { ub &+= 1 } }
                    if !active && pairs.hasTailDay(user: u, lo, hi, mask: mask) { active = true }
                    if active { candidates.append((UInt32(u), ub)) }
                }
            }
            total = candidates.count
            // Highest bound first, bounds being at most the number of apps (every candidate has one).
            let sorted = Self.byBoundDescending(candidates.count, most: scope.client.apps.count) { candidates[$0].ub }
            scope.appMask.withUnsafeBufferPointer { mask in
                for i in sorted {
                    let c = candidates[Int(i)]
                    if let worst = best.worstIfFull, c.ub < worst.value { break }
                    visit(c.user, pairs.appCount(user: Int(c.user), lo, hi, mask: mask))
                }
            }
        }
        return userPage(scan, best, total)
    }

    /// D sorted by active days (SPEC §3, `sort_by=active_days`), either order: each user's active
    /// days in the range read from the class's user-day bitsets (``UserDays``: a popcount of the
    /// range's words), the page kept by a bounded insertion, metrics counted for its rows only.
    /// Under a category, vendor or app filter (no class) and descending, users are visited by
    /// their active days in any app (an upper bound), most first, and counted exactly until none
    /// can reach the page. `nil` when it does not apply (another sort, no page; ascending without
    /// a class: every user is counted).
    func usersByActiveDays(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> (MetricsTable, [Entry], Int)? {
        guard q.dimension == .user, q.sort == .activeDays, let size = q.pageSize,
              scope.appClass != nil || q.order == .desc,
              let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let desc = q.order == .desc
        let after = numericCursor(q)
        let lo = scan.lo, hi = scan.hi
        let f = scope.users
        var best = BestRows(keep: size + 1, descending: desc)
        let total: Int
        if let appClass = scope.appClass {
            let days = UserDays.of(scope.client, scan.index, appClass)
            var active = 0
            days.words.withUnsafeBufferPointer { w in
                for u in 0..<scan.domain {
                    if let f, !f.contains(UInt32(u)) { continue }
                    let d = days.days(user: u, lo, hi, w.baseAddress!)
                    if d == 0 { continue }
                    active &+= 1
                    best.offer(u, d, after: after, id: rows.id)
                }
            }
            total = active
        } else {
            // A user's active days in some apps are at most their active days in any app.
            total = scan.totals(full: false).users
            let any = UserDays.of(scope.client, scan.index, .all)
            var bound = [Int32](repeating: 0, count: scan.domain)
            any.words.withUnsafeBufferPointer { w in
                for u in 0..<scan.domain {
                    if let f, !f.contains(UInt32(u)) { continue }
                    bound[u] = Int32(any.days(user: u, lo, hi, w.baseAddress!))
                }
            }
            let order = Self.byBoundDescending(scan.domain, most: hi - lo + 1) { Int(bound[$0]) }
            let width = (hi - lo + 64) / 64
            let acc = UnsafeMutablePointer<UInt64>.allocate(capacity: width)
            defer { acc.deallocate() }
            scope.appMask.withUnsafeBufferPointer { mask in
                for u in order {
                    if let worst = best.worstIfFull, Int(bound[Int(u)]) < worst.value { break }
                    let (_, d) = scan.userMetrics(Int(u), mask: mask, acc: acc, width: width)
                    if d > 0 { best.offer(Int(u), d, after: after, id: rows.id) }
                }
            }
        }
        return userPage(scan, best, total)
    }

    /// D by app count or active days where no bound helps (ascending app counts; ascending active
    /// days under a category, vendor or app filter): every user of the scope counted, but only
    /// the sort's own number (app counts test each pair for a day in the range, without
    /// gathering its days), the page kept by a bounded insertion, and the metrics counted for
    /// the page's rows only — not every user's metrics kept, ordered and copied.
    ///
    /// Ascending app counts under one entity (``pairCountOrder(_:_:)``) skip the users whose
    /// pairs of it (an upper bound of their count) are fewer than the cursor's value, or none:
    /// they come before the cursor. Users are still read in index order, not the bound's: the
    /// pair index is user-major, and walking the bound order cost 3.75 ms p99 unfiltered in the
    /// pages benchmark against 0.97 ms this way (docs/BENCHMARKS.md).
    func usersByCount(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> (MetricsTable, [Entry], Int)? {
        guard q.dimension == .user, q.sort == .apps || q.sort == .activeDays, let size = q.pageSize,
              let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let desc = q.order == .desc
        let after = numericCursor(q)
        let lo = scan.lo, hi = scan.hi
        let pairs = scan.index.pairs
        let f = scope.users
        let everyApp = scope.appClass == .all
        var best = BestRows(keep: size + 1, descending: desc)
        if q.sort == .apps, !desc, let (_, bound) = pairCountOrder(scope, scan.index) {
            // A loop of its own: folded into the one below (an optional bound tested per user),
            // the pages benchmark measured it twice as slow under a department filter (0.28
            // against 0.13 ms p50, two runs each; the other filters were within a noisy hour).
            let least = max(1, after?.value ?? 1)
            appCounter(scope, scan, derive: true) { exact in
                for u in 0..<scan.domain where bound(u) >= least {
                    if let f, !f.contains(UInt32(u)) { continue }
                    let v = exact(u)
                    if v > 0 { best.offer(u, v, after: after, id: rows.id) }
                }
            }
            // Skipped users are not counted: the entity's active users are (its range table or union).
            return userPage(scan, best, scan.countOfApps(.all))
        }
        var total = 0
        let width = (hi - lo + 64) / 64
        let acc = UnsafeMutablePointer<UInt64>.allocate(capacity: width)
        defer { acc.deallocate() }
        scope.appMask.withUnsafeBufferPointer { mask in
            for u in 0..<scan.domain {
                if let f, !f.contains(UInt32(u)) { continue }
                let v: Int
                if q.sort == .apps {
                    v = everyApp ? pairs.appCount(user: u, lo, hi) : pairs.appCount(user: u, lo, hi, mask: mask)
                } else {
                    v = scan.userMetrics(u, mask: mask, acc: acc, width: width).days
                }
                if v == 0 { continue }
                total &+= 1
                best.offer(u, v, after: after, id: rows.id)
            }
        }
        return userPage(scan, best, total)
    }

    /// A users page: the kept rows with their metrics (counted for them only), and the total.
    func userPage(_ scan: PeriodScan, _ best: BestRows, _ total: Int) -> (MetricsTable, [Entry], Int) {
        var metrics = MetricsTable(capacity: best.rows.count)
        for (u, m) in scan.userRows(best.rows.map { Int($0.index) }) { metrics[u] = m }
        return (metrics, best.rows, total)
    }

    /// Indexes `0..<n` with a bound of 1…`most`, highest bound first, ascending index within a
    /// bound (a counting sort; bounds are day or app counts). Indexes with bound 0 are left out.
    static func byBoundDescending(_ n: Int, most: Int, _ bound: (Int) -> Int) -> [Int32] {
        var start = [Int](repeating: 0, count: most + 2)
        for i in 0..<n where bound(i) > 0 { start[most - bound(i) + 1] += 1 }
        for k in 1..<start.count { start[k] += start[k - 1] }
        var order = [Int32](repeating: 0, count: start[most + 1])
        for i in 0..<n where bound(i) > 0 {
            let k = most - bound(i)
            order[start[k]] = Int32(i)
            start[k] += 1
        }
        return order
    }

    /// Whether a cursor page of a list longer than ``shortList`` evaluates the list once and keeps
    /// it (``ListCache``) rather than taking its bounded path: D by app count descending under a
    /// class or one whole category, once more than ``shortList`` users' bounds reach the cursor's
    /// value — each such page visits and counts all of them, so the pages get dearer with depth
    /// (up to 9.2 ms p99 in process on the 20,000-user client, the Engine pages benchmark of
    /// docs/BENCHMARKS.md), while the whole list costs 12–19 ms over HTTP once; but not when the
    /// users are counted by ``PairRecency`` (a range that ends on the newest day): each page then
    /// costs 0.5–0.7 ms over HTTP at any depth (`tools/load/walk_pages.py`). Ascending, and
    /// without a class, a page costs about the same at any depth (every user counted, 3–5 ms over
    /// HTTP) and a fifth of the whole list: those keep their bounded paths.
    func keepsLongList(_ scope: Scope, _ q: Query) -> Bool {
        guard q.dimension == .user, q.sort == .apps, q.order == .desc, let after = numericCursor(q),
              let index = scope.index, let (order, bound) = pairCountOrder(scope, index) else { return false }
        // Counted by ``PairRecency``, every user the bounded path visits costs a short loop over
        // 2-byte days: the page costs little at any depth.
        if let range = index.offsets(q.period), PairRecency.answers(index, range.hi),
           PairRecency.of(scope, index, derive: true) != nil { return false }
        return Self.reaching(order, bound, after.value) > shortList
    }

    /// The users of a bound order (most first) whose bound is at least `value`: those the
    /// bounded paths of D by app count visit for a cursor of that value, either order.
    static func reaching(_ order: [UInt32], _ bound: (Int) -> Int, _ value: Int) -> Int {
        var lo = 0, hi = order.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if bound(Int(order[mid])) >= value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// A cursor page of D by app count, either order, over a range that ends on the client's
    /// newest day (counted by ``PairRecency``), once the bounded path would visit more than
    /// ``shortList`` users: every user of the scope is counted once, in index order, the list
    /// ordered and kept by its counts alone (``ListCache/Kept/values``), and each page of it is
    /// a binary search and its rows' metrics. `nil` when it does not apply.
    ///
    /// Why: the bounded path visits the users in their bound order, and past the first pages
    /// that is nearly every user, read at random — the deepest pages of the 20,000-user client's
    /// year cost 1.0 ms p99 alone and 3.2–3.5 ms p99 in full runs of the Engine pages benchmark
    /// (docs/BENCHMARKS.md), while counting everyone in index order is one pass over the recency.
    /// `kept`: what the list cache holds for `key` (looked up once by the caller).
    func usersCounted(_ scope: Scope, _ q: Query, _ rows: RowSpace, _ key: ListCache.Key,
                      kept held: ListCache.Kept?) -> (MetricsTable, [Entry], Int)? {
        guard q.dimension == .user, q.sort == .apps, let size = q.pageSize, let after = numericCursor(q),
              let scan = PeriodScan(scope: scope, range: q.period), PairRecency.answers(scan.index, scan.hi) else { return nil }
        let kept: ListCache.Kept
        if let held, held.counted {
            kept = held
        } else {
            guard let (order, bound) = pairCountOrder(scope, scan.index),
                  Self.reaching(order, bound, max(1, after.value)) > shortList,
                  PairRecency.of(scope, scan.index, derive: true) != nil else { return nil }
            kept = ListCache.shared.keep(countedUsers(scope, scan, descending: q.order == .desc), key)
        }
        // The first listed row after the cursor.
        let desc = q.order == .desc
        var lo = 0, hi = kept.order.count
        kept.order.withUnsafeBufferPointer { order in
            kept.values.withUnsafeBufferPointer { values in
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if after.precedes(Int(values[mid]), rows.id(Int(order[mid])), descending: desc) { hi = mid } else { lo = mid + 1 }
                }
            }
        }
        let end = min(kept.order.count, lo + size + 1)
        let shown = (lo..<end).map { Entry(index: kept.order[$0], value: Int(kept.values[$0]), id: rows.id(Int(kept.order[$0])), key: nil) }
        var metrics = MetricsTable(capacity: shown.count)
        for (u, m) in scan.userRows(shown.map { Int($0.index) }) { metrics[u] = m }
        return (metrics, shown, kept.order.count)
    }

    /// Every active user of the scope (after its department filter) with their apps in the
    /// scan's range, ordered by that count (`descending` or not), ties by id.
    func countedUsers(_ scope: Scope, _ scan: PeriodScan, descending: Bool) -> ListCache.Kept {
        let f = scope.users
        var users: [Int32] = [], counts: [Int32] = []
        var most = 0
        appCounter(scope, scan, derive: true) { exact in
            for u in 0..<scan.domain {
                if let f, !f.contains(UInt32(u)) { continue }
                let v = exact(u)
                if v == 0 { continue }
                users.append(Int32(u))
                counts.append(Int32(v))
                most = max(most, v)
            }
        }
        // A counting sort by count, then each count's users by id.
        var start = [Int](repeating: 0, count: most + 2)
        for v in counts { start[descending ? most - Int(v) + 1 : Int(v)] += 1 }
        for k in 1..<start.count { start[k] += start[k - 1] }
        var order = [Int32](repeating: 0, count: users.count)
        var values = [Int32](repeating: 0, count: users.count)
        var next = start
        for (i, u) in users.enumerated() {
            let k = descending ? most - Int(counts[i]) : Int(counts[i]) - 1
            order[next[k]] = u
            values[next[k]] = counts[i]
            next[k] += 1
        }
        let client = scope.client
        for k in 0..<(start.count - 1) where start[k + 1] - start[k] > 1 {
            order[start[k]..<start[k + 1]].sort { client.users[Int($0)].id < client.users[Int($1)].id }
        }
        return ListCache.Kept(client: client, catalog: store.catalog, order: order, values: values)
    }

    /// When the scope's apps are one entity — a class (every app, or an approval or AI filter) or
    /// one whole category (a category filter) — the users with a pair of them, by their number of
    /// such pairs, most first (ties by id), and that number as a function: the bound order of D
    /// by app count (stored for every app; derived once per client version for the other classes
    /// and for categories, ``UserDays``). `nil` otherwise.
    func pairCountOrder(_ scope: Scope, _ index: UsageIndex) -> (order: [UInt32], bound: (Int) -> Int)? {
        if scope.appClass == .all {
            let pairs = index.pairs
            return (scope.client.usersByPairCount, { pairs.pairCount(user: $0) })
        }
        let days: UserDays
        if let c = scope.appClass {
            days = UserDays.of(scope.client, index, c)
        } else if let es = scope.splitEntities[Split.all.rawValue], es.count == 1 {
            days = UserDays.of(scope.client, index, categoryEntity: es[0], apps: scope.appMask)
        } else {
            return nil
        }
        return (days.byPairCount, { Int(days.pairCount[$0]) })
    }

    /// Runs `body` with a function that counts a user's apps of the scope in the scan's range
    /// (before a department filter): by ``PairRecency`` when the range ends on the index's last
    /// day and the scope's apps are one entity (a loop over the user's pairs' last days), else by
    /// testing each of the user's pairs. Without `derive`, only a ``PairRecency`` derived already
    /// is read.
    func appCounter(_ scope: Scope, _ scan: PeriodScan, derive: Bool, _ body: ((Int) -> Int) -> Void) {
        let index = scan.index, pairs = index.pairs, lo = scan.lo, hi = scan.hi
        if PairRecency.answers(index, hi), let recency = PairRecency.of(scope, index, derive: derive) {
            recency.lastDays.withUnsafeBufferPointer { days in
                let d = days.baseAddress ?? UnsafePointer(bitPattern: 8)!  // no pairs: never read
                guard pairs.tailDay != nil else {
                    body { recency.appCount(user: $0, from: lo, d) }
                    return
                }
                // The base's recency, and the apps the tail makes active beside it.
                if scope.appClass == .all {
                    body { recency.appCount(user: $0, from: lo, d) &+ pairs.tailApps(user: $0, lo, hi) }
                    return
                }
                scope.appMask.withUnsafeBufferPointer { mask in
                    body { recency.appCount(user: $0, from: lo, d) &+ pairs.tailApps(user: $0, lo, hi, mask: mask) }
                }
            }
            return
        }
        if scope.appClass == .all {
            body { pairs.appCount(user: $0, lo, hi) }
            return
        }
        scope.appMask.withUnsafeBufferPointer { mask in body { pairs.appCount(user: $0, lo, hi, mask: mask) } }
    }

    /// The cursor's numeric sort value and id, when it has one.
    func numericCursor(_ q: Query) -> NumericCursor? {
        guard let key = q.after, case .int(let v) = key.value else { return nil }
        return NumericCursor(value: v, id: key.id)
    }
}

/// A keyset position on a numeric sort.
struct NumericCursor {
    let value: Int
    let id: UUID128

    /// Whether a row with `value` and `id` comes after this position.
    func precedes(_ v: Int, _ rowId: UUID128, descending: Bool) -> Bool {
        v != value ? (descending ? v < value : v > value) : rowId > id
    }
}

/// The best `keep` rows offered so far, in order (`keep` is a page plus one, so a sorted
/// insertion is cheaper than a heap).
struct BestRows {
    let keep: Int
    let descending: Bool
    private(set) var rows: [Executor.Entry] = []

    init(keep: Int, descending: Bool) {
        self.keep = keep
        self.descending = descending
    }

    /// The worst kept row once `keep` rows are kept.
    var worstIfFull: Executor.Entry? { rows.count == keep ? rows.last : nil }

    /// Offers row `index` with `value` unless the kept rows are full of rows before it or
    /// `after` (a cursor) is not before it; its id is read only then.
    @inline(__always)
    mutating func offer(_ index: Int, _ value: Int, after: NumericCursor?, id: (Int) -> UUID128) {
        if let worst = worstIfFull, descending ? value < worst.value : value > worst.value { return }
        let rowId = id(index)
        if let after, !after.precedes(value, rowId, descending: descending) { return }
        offer(Executor.Entry(index: Int32(index), value: value, id: rowId, key: nil))
    }

    mutating func offer(_ e: Executor.Entry) {
        let at = rows.firstIndex { r in
            e.value != r.value ? (descending ? e.value > r.value : e.value < r.value) : e.id < r.id
        } ?? rows.count
        guard at < keep else { return }
        rows.insert(e, at: at)
        if rows.count > keep { rows.removeLast() }
    }
}

/// A binary max-heap of packed keys, built in O(n); each pop is O(log n).
struct MaxHeap {
    private var items: [UInt64]

    init(_ items: [UInt64]) {
        self.items = items
        var i = items.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    private mutating func siftDown(_ start: Int) {
        items.withUnsafeMutableBufferPointer { h in
            let n = h.count
            var i = start
            let v = h[i]
            while true {
                var c = 2 &* i &+ 1
                if c >= n { break }
                if c &+ 1 < n && h[c &+ 1] > h[c] { c &+= 1 }
                if h[c] <= v { break }
                h[i] = h[c]
                i = c
            }
            h[i] = v
        }
    }

    /// The largest key, removed.
    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        siftDown(0)
        return top
    }
}
