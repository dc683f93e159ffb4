import TallyStorage

/// The department filter read user-major (``Scope/readsMembers``): the filter's users' pairs in
/// the pair index answer what the app-major bitmaps would answer after one intersection per app
/// and block. Each dimension reads the members' pairs once per period.
extension PeriodScan {
    /// Per app of the scope (or of `only`), for the filter's members: users and user-days, in
    /// one pass over the members' pairs (a pair with a day in the range is one user of its app,
    /// its days in the range that user's user-days).
    /// - Complexity: O(Σ over members of pairs × range words).
    func byAppOfMembers(only: [UInt32]?) -> [(app: UInt32, metrics: Metrics)] {
        let n = index.appCount
        var users = [Int32](repeating: 0, count: n)
        var days = [Int](repeating: 0, count: n)
        var wanted = scope.appMask
        if let only {
            wanted = [Bool](repeating: false, count: n)
            for a in only where scope.appMask[Int(a)] { wanted[Int(a)] = true }
        }
        let view = index.pairs, pairs = view.base
        let lo = self.lo, hi = self.hi
        let tailDay = view.tailDay.flatMap { lo <= $0 && $0 <= hi ? $0 : nil }
        wanted.withUnsafeBufferPointer { wanted in
            users.withUnsafeMutableBufferPointer { users in
                days.withUnsafeMutableBufferPointer { days in
                    for u in scope.members {
                        for p in Int(pairs.userStart[Int(u)])..<Int(pairs.userStart[Int(u) &+ 1]) {
                            let a = Int(pairs.pairApp[p])
                            guard wanted[a] else { continue }
                            let d = pairs.dayCount(pair: p, lo, hi)
                            if d > 0 {
                                users[a] &+= 1
                                days[a] &+= d
                            }
                        }
                        // The tail's rows: one more day of the pair, and a user when the base
                        // pair had no day in the range.
                        if tailDay != nil {
                            view.forEachTailPair(user: Int(u)) { a, _, baseLast in
                                guard wanted[a] else { return }
                                if baseLast < lo { users[a] &+= 1 }
                                days[a] &+= 1
                            }
                        }
                    }
                }
            }
        }
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
        let tailDay = view.tailDay.flatMap { lo <= $0 && $0 <= hi ? $0 : nil }
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
                if tailDay != nil {
                    view.forEachTailPair(user: Int(u)) { a, _, _ in
                        let r = Int(rowOf[a])
                        guard r >= 0 else { return }
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
