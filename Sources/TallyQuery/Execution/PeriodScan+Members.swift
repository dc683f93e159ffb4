import TallyStorage

/// The department filter read user-major (``Scope/readsMembers``): the filter's users' pairs in
/// the pair index answer what the app-major bitmaps would answer after one intersection per app
/// and block. Each dimension reads the members' pairs once per period.
extension PeriodScan {
    /// Per app of the scope (or of `only`), for the filter's members: users and user-days, in
    /// one pass over the members' pairs (a pair with a day in the range is one user of its app,
    /// its days in the range that user's user-days).
    /// - Complexity: O(Σ over members of pairs × range words).
    ///
    /// A whole pass (`only` nil) whose range and the query's other range (``Scratch/companion``,
    /// a list's comparison period) both lie in the pairs' recent days counts both in the same
    /// reads (``byAppOfMembersWithCompanion(_:)``), and leaves the other's counts for its own
    /// call.
    func byAppOfMembers(only: [UInt32]?) -> [(app: UInt32, metrics: Metrics)] {
        let n = index.appCount
        if let kept = scope.scratch.companionCounts(lo, hi) { return memberRows(kept.users, kept.days, only: only) }
        if only == nil, let companion = scope.scratch.companion, let rows = byAppOfMembersWithCompanion(companion) { return rows }
        var users = [Int32](repeating: 0, count: n)
        var days = [Int](repeating: 0, count: n)
        let view = index.pairs, pairs = view.base
        var wanted = scope.appMask
        if let only {
            wanted = [Bool](repeating: false, count: n)
            for a in only where scope.appMask[Int(a)] { wanted[Int(a)] = true }
        }
        let lo = self.lo, hi = self.hi
        let tailInRange = view.tailOverlaps(lo, hi)
        wanted.withUnsafeBufferPointer { wanted in
            users.withUnsafeMutableBufferPointer { users in
                days.withUnsafeMutableBufferPointer { days in
                    // The range's kind is decided once for the pass, not per pair: `dayCount`
                    // tests it per pair, and was not inlined here (a call a pair under `perf`).
                    let window = pairs.recentWindow(lo, hi)
                    for u in scope.members {
                        let from = Int(pairs.userStart[Int(u)]), to = Int(pairs.userStart[Int(u) &+ 1])
                        if let (shift, mask) = window {
                            // The range is inside the pairs' recent days: a word a pair.
                            for p in from..<to {
                                let a = Int(pairs.pairApp[p])
                                guard wanted[a] else { continue }
                                // No branch on the pair's days (about half the pairs of a
                                // month are idle: a branch mispredicted that often).
                                let d = (pairs.recent[p] &>> shift & mask).nonzeroBitCount
                                users[a] &+= d != 0 ? 1 : 0
                                days[a] &+= d
                            }
                        } else if lo <= 0 && hi >= pairs.lastDayOffset {
                            // The range holds every day: each pair's count, no day read.
                            for p in from..<to {
                                let a = Int(pairs.pairApp[p])
                                guard wanted[a] else { continue }
                                users[a] &+= 1
                                days[a] &+= PairIndex.dayCount(info: pairs.pairInfo[p])
                            }
                        } else {
                            for p in from..<to {
                                let a = Int(pairs.pairApp[p])
                                guard wanted[a] else { continue }
                                let d = pairs.dayCount(pair: p, lo, hi)
                                if d > 0 {
                                    users[a] &+= 1
                                    days[a] &+= d
                                }
                            }
                        }
                        // The tail's rows: one more day of the pair each, and a user when
                        // neither the base pair nor the pair's other tail row was in the range.
                        if tailInRange {
                            view.forEachTailPair(user: Int(u)) { row in
                                guard wanted[Int(row.app)] else { return }
                                Self.count(row, lo, hi, users, days)
                            }
                        }
                    }
                }
            }
        }
        return memberRows(users, days, only: only)
    }

    /// ``byAppOfMembers(only:)`` of every app of the scope, its range and `other`'s counted from
    /// each member pair's one word of recent days, when both ranges lie in them (else `nil`);
    /// `other`'s counts are kept for its own call (``Scratch/keepCompanion(_:_:users:days:)``).
    /// The comparison of a page of A under a department filter was a second pass over every
    /// member's pairs, 38% of the query on the enterprise client; with one, A at 30 days took
    /// 0.62–1.00 ms p50 against 0.92–1.36 in four alternated pairs, lower in each (docs/BENCHMARKS.md,
    /// "Hardware popcount").
    private func byAppOfMembersWithCompanion(_ other: (lo: Int, hi: Int)) -> [(app: UInt32, metrics: Metrics)]? {
        let view = index.pairs, pairs = view.base
        guard let window = pairs.recentWindow(lo, hi), let otherWindow = pairs.recentWindow(other.lo, other.hi) else { return nil }
        let n = index.appCount, lo = self.lo, hi = self.hi
        // Raw counters, freed here: the rows are made from arrays of them at the end.
        let users = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n), days = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        let otherUsers = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n), otherDays = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        defer { users.deallocate(); days.deallocate(); otherUsers.deallocate(); otherDays.deallocate() }
        users.initialize(repeating: 0); days.initialize(repeating: 0)
        otherUsers.initialize(repeating: 0); otherDays.initialize(repeating: 0)
        let tailInRange = view.tailOverlaps(min(lo, other.lo), max(hi, other.hi))
        scope.appMask.withUnsafeBufferPointer { wanted in
            for u in scope.members {
                for p in Int(pairs.userStart[Int(u)])..<Int(pairs.userStart[Int(u) &+ 1]) {
                    let a = Int(pairs.pairApp[p])
                    guard wanted[a] else { continue }
                    let r = pairs.recent[p]
                    let d = (r &>> window.shift & window.mask).nonzeroBitCount
                    let e = (r &>> otherWindow.shift & otherWindow.mask).nonzeroBitCount
                    users[a] &+= d != 0 ? 1 : 0
                    days[a] &+= d
                    otherUsers[a] &+= e != 0 ? 1 : 0
                    otherDays[a] &+= e
                }
                if tailInRange {
                    view.forEachTailPair(user: Int(u)) { row in
                        guard wanted[Int(row.app)] else { return }
                        Self.count(row, lo, hi, users, days)
                        Self.count(row, other.lo, other.hi, otherUsers, otherDays)
                    }
                }
            }
        }
        scope.scratch.keepCompanion(other.lo, other.hi, users: Array(otherUsers), days: Array(otherDays))
        return memberRows(Array(users), Array(days), only: nil)
    }

    /// Counts a member's tail row (``PairView/forEachTailPair(user:_:)``) for its app within
    /// `lo…hi`: one more day of the pair, and a user when neither the base pair nor the pair's
    /// other tail row was in the range (``UsageTail/TailPair/isNew(_:_:)``).
    @inline(__always)
    private static func count(_ row: UsageTail.TailPair, _ lo: Int, _ hi: Int,
                              _ users: UnsafeMutableBufferPointer<Int32>, _ days: UnsafeMutableBufferPointer<Int>) {
        guard row.isIn(lo, hi) else { return }
        let a = Int(row.app)
        if row.isNew(lo, hi) { users[a] &+= 1 }
        days[a] &+= 1
    }

    /// The rows of ``byAppOfMembers(only:)`` from its counts per app.
    private func memberRows(_ users: [Int32], _ days: [Int], only: [UInt32]?) -> [(app: UInt32, metrics: Metrics)] {
        var out: [(UInt32, Metrics)] = []
        let apps = scope.client.apps
        for app in only ?? scope.apps where users[Int(app)] > 0 {
            let k = Int(users[Int(app)])
            var m = Metrics()
            m.users = k
            m.apps = 1
            m.userDays = days[Int(app)]
            if apps[Int(app)].isApproved { m.approvedUsers = k; m.approvedApps = 1 } else {
                m.unapprovedUsers = k
                m.unapprovedApps = 1
            }
            out.append((app, m))
        }
        return out
    }

    /// Whether ``byDepartment()`` reads the members' pairs rather than every app's unions: when
    /// asked to (``DepartmentScan/members``), or, left to choose, when the members' pairs plus 40
    /// a member (a member's fixed cost, in pairs) are at most 2,000 per app of the scope, or a
    /// tenth of the client's users per app past 20,000 users (an app's unions grow with the
    /// users: H under a department of 13,220 of the enterprise client's 100,000 users took
    /// 1.45 ms from the members' pairs against 1.75 from the unions, 30 days, `tally synth
    /// --shape enterprise --filter department --only aiDepartments --department-scan …`).
    /// Measured on the 20,000-user client (`tally synth --filter department --filter-departments
    /// N`, 30 days, p50): B reading pairs took 0.13 ms for one department of 24 and 0.93 ms for
    /// six, against 1.9 and 2.8 ms from the unions; H (the AI apps, a few of them) 0.07 against
    /// 0.21 ms for one department, but 0.67 against 0.25 ms for six, where the members are many
    /// and the apps few (docs/BENCHMARKS.md, "B and H under a department filter").
    var departmentsReadMembers: Bool {
        guard scope.readsMembers else { return false }
        if scope.departmentScan == .members { return true }
        return scope.members.count &* 40 &+ scope.memberPairs <= scope.apps.count &* max(2_000, scope.client.users.count / 10)
    }

    /// Per department of the client, for the filter's members (B, H under a department
    /// filter): users of the scope's apps (all, approved, unapproved) and apps, in one pass over
    /// the members' pairs. A member with a day in the range counts in each of their
    /// departments, and the apps they used there join the department's set of apps. The
    /// bitmaps' way (every app's users over the range, intersected with each department) took
    /// 1.9 ms p50 on the 20,000-user client, 30 days, one department of 24 (`tally synth
    /// --filter department --only departments`).
    /// - Complexity: O(Σ over members of pairs × range words + members × their departments ×
    ///   app words).
    func byDepartmentOfMembers() -> [Metrics] {
        let client = scope.client
        let deptCount = client.departments.count
        var m = [Metrics](repeating: Metrics(), count: deptCount)
        guard deptCount > 0 else { return m }
        let n = index.appCount, words = (n + 63) >> 6
        let approved = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, words))
        let mine = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, words))
        let deptApps = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, deptCount &* words))
        defer {
            approved.deallocate()
            mine.deallocate()
            deptApps.deallocate()
        }
        approved.initialize(repeating: 0, count: words)
        deptApps.initialize(repeating: 0, count: deptCount &* words)
        for (a, app) in client.apps.enumerated() where app.isApproved { approved[a >> 6] |= 1 << UInt64(a & 63) }
        let view = index.pairs, pairs = view.base
        let lo = self.lo, hi = self.hi
        let tailInRange = view.tailOverlaps(lo, hi)
        scope.appMask.withUnsafeBufferPointer { wanted in
            let window = pairs.recentWindow(lo, hi)
            for u in scope.members {
                mine.initialize(repeating: 0, count: words)
                var any = false
                let from = Int(pairs.userStart[Int(u)]), to = Int(pairs.userStart[Int(u) &+ 1])
                if let (shift, mask) = window {
                    // The range is inside the pairs' recent days: a word a pair.
                    for p in from..<to {
                        let a = Int(pairs.pairApp[p])
                        guard wanted[a], pairs.recent[p] &>> shift & mask != 0 else { continue }
                        mine[a >> 6] |= 1 << UInt64(a & 63)
                        any = true
                    }
                } else {
                    for p in from..<to {
                        let a = Int(pairs.pairApp[p])
                        guard wanted[a], pairs.hasDay(pair: p, lo, hi) else { continue }
                        mine[a >> 6] |= 1 << UInt64(a & 63)
                        any = true
                    }
                }
                // The tail's rows are on its days: in the range when their day is.
                if tailInRange {
                    view.forEachTailPair(user: Int(u)) { row in
                        let a = Int(row.app)
                        guard wanted[a], row.isIn(lo, hi) else { return }
                        mine[a >> 6] |= 1 << UInt64(a & 63)
                        any = true
                    }
                }
                guard any else { continue }
                // Without a branch a word (the loop vectorizes): with `||` it was the hottest
                // branch of B under a department filter on the enterprise client.
                var yes: UInt64 = 0, no: UInt64 = 0
                for w in 0..<words {
                    yes |= mine[w] & approved[w]
                    no |= mine[w] & ~approved[w]
                }
                let anyApproved = yes != 0, anyUnapproved = no != 0
                for d in client.departments(ofUser: u) {
                    let d = Int(d)
                    m[d].users &+= 1
                    if anyApproved { m[d].approvedUsers &+= 1 }
                    if anyUnapproved { m[d].unapprovedUsers &+= 1 }
                    let row = deptApps + d &* words
                    for w in 0..<words { row[w] |= mine[w] }
                }
            }
        }
        for d in 0..<deptCount {
            let row = deptApps + d &* words
            var all = 0, yes = 0
            for w in 0..<words {
                all &+= row[w].nonzeroBitCount
                yes &+= (row[w] & approved[w]).nonzeroBitCount
            }
            m[d].apps = all
            m[d].approvedApps = yes
            m[d].unapprovedApps = all &- yes
        }
        return m
    }

    /// Per category row (``byCategory(rowCount:only:)``'s rows), for the filter's members: users
    /// and apps, in one pass over the members' pairs.
    /// - Complexity: O(Σ over members of pairs × range words).
    func byCategoryOfMembers(rowCount: Int, only: [Bool]?) -> [Metrics] {
        let n = index.appCount
        let clientApps = scope.client.apps
        // Each app's row, −1 for an app out of scope or in a row not asked for.
        var rowOf = [Int32](repeating: -1, count: n)
        for app in scope.apps {
            let r = clientApps[Int(app)].category.map(Int.init) ?? rowCount - 1
            if only?[r] != false { rowOf[Int(app)] = Int32(r) }
        }
        var users = [Int](repeating: 0, count: rowCount)
        var lastMember = [Int](repeating: -1, count: rowCount)
        var active = [Bool](repeating: false, count: n)
        let view = index.pairs, pairs = view.base
        let lo = self.lo, hi = self.hi
        let tailInRange = view.tailOverlaps(lo, hi)
        rowOf.withUnsafeBufferPointer { rowOf in
            for (m, u) in scope.members.enumerated() {
                for p in Int(pairs.userStart[Int(u)])..<Int(pairs.userStart[Int(u) &+ 1]) {
                    let a = Int(pairs.pairApp[p])
                    let r = Int(rowOf[a])
                    guard r >= 0, pairs.hasDay(pair: p, lo, hi) else { continue }
                    active[a] = true
                    if lastMember[r] != m {
                        lastMember[r] = m
                        users[r] &+= 1
                    }
                }
                if tailInRange {
                    view.forEachTailPair(user: Int(u)) { row in
                        let a = Int(row.app), r = Int(rowOf[a])
                        guard r >= 0, row.isIn(lo, hi) else { return }
                        active[a] = true
                        if lastMember[r] != m {
                            lastMember[r] = m
                            users[r] &+= 1
                        }
                    }
                }
            }
        }
        var out = [Metrics](repeating: Metrics(), count: rowCount)
        for r in 0..<rowCount { out[r].users = users[r] }
        for a in 0..<n where active[a] { out[Int(rowOf[a])].apps += 1 }
        return out
    }
}
