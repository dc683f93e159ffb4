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
    func topApps(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> ([Metrics], [Entry], Int)? {
        guard q.dimension == .app, q.sort == .users, !q.firstSeenInPeriod, scope.users == nil,
              let size = q.pageSize, let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let index = scan.index
        let desc = q.order == .desc
        var candidates: [(app: UInt32, lb: Int, ub: Int)] = []
        for app in scope.apps where index.isActive(entity: Int(app), q.period) {
            var lb = 0, ub = 0
            for b in scan.blocks {
                let c = b.view.cardinality(b.bitmap(Int(app)))
                lb = max(lb, c)
                ub += c
            }
            candidates.append((app, lb, min(ub, index.pairs.lifetimeUsers(app: Int(app)))))
        }
        let total = candidates.count
        // Best bound first: for descending order the highest upper bound, for ascending the lowest lower one.
        candidates.sort { desc ? ($0.ub, $1.app) > ($1.ub, $0.app) : ($0.lb, $0.app) < ($1.lb, $1.app) }
        var metrics = [Metrics](repeating: Metrics(), count: rows.count)
        var best = BestRows(keep: size + 1, descending: desc)
        let after = numericCursor(q)
        for c in candidates {
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
    /// Activity (for `total_count`) stops at a user's first active pair. `nil` when it does not
    /// apply (another sort, order or dimension, no page).
    func topUsers(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> ([Metrics], [Entry], Int)? {
        guard q.dimension == .user, q.sort == .apps, q.order == .desc, let size = q.pageSize,
              let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let pairs = scan.index.pairs
        let lo = scan.lo, hi = scan.hi
        let f = scope.users
        var candidates: [(user: UInt32, ub: Int)] = []
        if scope.appClass == .all {
            // Every app is in scope: the active users are the class union over the range (the
            // department filter applied), and a user's bound is simply their number of pairs.
            scan.unionOfApps(.all, into: scan.b)
            candidates.reserveCapacity(scan.b.count)
            scan.b.forEach { u in candidates.append((u, Int(pairs.userStart[Int(u) &+ 1] &- pairs.userStart[Int(u)]))) }
            scan.b.clear()
        } else {
            scope.appMask.withUnsafeBufferPointer { mask in
                for u in 0..<scan.domain {
                    if let f, !f.contains(UInt32(u)) { continue }
                    var ub = 0
                    var active = false
                    for p in Int(pairs.userStart[u])..<Int(pairs.userStart[u &+ 1]) where mask[Int(pairs.pairApp[p])] {
                        ub &+= 1
                        if !active && pairs.hasDay(pair: p, lo, hi) { active = true }
                    }
                    if active { candidates.append((UInt32(u), ub)) }
                }
            }
        }
        let total = candidates.count
        // Highest bound first: a counting sort, bounds being at most the number of apps.
        var byBound = [Int](repeating: 0, count: scope.client.apps.count + 2)
        for c in candidates { byBound[scope.client.apps.count - c.ub + 1] += 1 }
        for i in 1..<byBound.count { byBound[i] += byBound[i - 1] }
        var sorted = candidates
        for c in candidates {
            let slot = scope.client.apps.count - c.ub
            sorted[byBound[slot]] = c
            byBound[slot] += 1
        }
        candidates = sorted
        let after = numericCursor(q)
        var best = BestRows(keep: size + 1, descending: true)
        var metrics = [Metrics](repeating: Metrics(), count: rows.count)
        let width = (hi - lo + 64) / 64
        let acc = UnsafeMutablePointer<UInt64>.allocate(capacity: width)
        defer { acc.deallocate() }
        for c in candidates {
            if let worst = best.worstIfFull, c.ub < worst.value { break }
            let (exact, days) = scope.appMask.withUnsafeBufferPointer {
                scan.userMetrics(Int(c.user), mask: $0, acc: acc, width: width)
            }
            let id = rows.id(Int(c.user))
            if let after, !after.precedes(exact, id, descending: true) { continue }
            var m = Metrics()
            m.users = 1
            m.apps = exact
            m.activeDays = days
            metrics[Int(c.user)] = m
            best.offer(Entry(index: Int32(c.user), value: exact, id: id, key: nil))
        }
        return (metrics, best.rows, total)
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

    mutating func offer(_ e: Executor.Entry) {
        let at = rows.firstIndex { r in
            e.value != r.value ? (descending ? e.value > r.value : e.value < r.value) : e.id < r.id
        } ?? rows.count
        guard at < keep else { return }
        rows.insert(e, at: at)
        if rows.count > keep { rows.removeLast() }
    }
}
