import TallyStorage

extension PeriodScan {
    /// Per app of the scope (or of `only`): users and user-days.
    func byApp(only: [UInt32]? = nil) -> [(app: UInt32, metrics: Metrics)] {
        var out: [(UInt32, Metrics)] = []
        for app in only ?? scope.apps {
            let n = userCount(entity: Int(app))
            if n == 0 { continue }
            var m = Metrics()
            m.users = n
            m.apps = 1
            m.userDays = userDays(entity: Int(app))
            if scope.client.apps[Int(app)].isApproved { m.approvedUsers = n; m.approvedApps = 1 } else {
                m.unapprovedUsers = n
                m.unapprovedApps = 1
            }
            out.append((app, m))
        }
        return out
    }

    /// Per department: users, apps and the approval splits of users.
    /// - Complexity: O(Σ over apps of their users in the range × departments per user).
    func byDepartment() -> [Metrics] {
        let client = scope.client
        var m = [Metrics](repeating: Metrics(), count: client.departments.count)
        if m.isEmpty { return m }
        var lastApp = [Int](repeating: -1, count: m.count)
        for app in scope.apps {
            if users(entity: Int(app), into: a) == 0 { continue }
            a.forEach { u in
                for d in client.departments(ofUser: u) where lastApp[Int(d)] != Int(app) {
                    lastApp[Int(d)] = Int(app)
                    m[Int(d)].apps += 1
                    if client.apps[Int(app)].isApproved { m[Int(d)].approvedApps += 1 } else { m[Int(d)].unapprovedApps += 1 }
                }
            }
        }
        a.clear()
        for split in Split.allCases {
            unionOfApps(split, into: b)
            b.forEach { u in
                for d in client.departments(ofUser: u) {
                    switch split {
                    case .all: m[Int(d)].users += 1
                    case .approved: m[Int(d)].approvedUsers += 1
                    case .unapproved: m[Int(d)].unapprovedUsers += 1
                    }
                }
            }
        }
        b.clear()
        return m
    }

    /// Per catalog category (`nil`: apps without one): users and apps.
    func byCategory() -> [Int32?: Metrics] {
        var groups: [Int32?: [UInt32]] = [:]
        for app in scope.apps { groups[scope.client.apps[Int(app)].category, default: []].append(app) }
        var out: [Int32?: Metrics] = [:]
        for (cat, apps) in groups {
            var m = Metrics()
            b.clear()
            for app in apps where users(entity: Int(app), into: a) > 0 {
                m.apps += 1
                b.formUnion(a)
            }
            a.clear()
            m.users = b.count
            b.clear()
            if m.users > 0 { out[cat] = m }
        }
        return out
    }

    /// Per user: distinct apps and distinct active days. Arrays are indexed by dense user.
    func byUser() -> (apps: [Int32], activeDays: [Int32]) {
        let n = domain
        var apps = [Int32](repeating: 0, count: n)
        var days = [Int32](repeating: 0, count: n)
        for app in scope.apps {
            if users(entity: Int(app), into: a) == 0 { continue }
            apps.withUnsafeMutableBufferPointer { p in a.forEach { p[Int($0)] &+= 1 } }
        }
        a.clear()
        if let c = scope.appClass {
            for u in 0..<n where apps[u] > 0 { days[u] = Int32(index.activeDays(user: u, cls: c, range)) }
        } else {
            // No class covers these apps: mark (user, day) pairs from the daily bitmaps.
            let width = (hi - lo + 64) / 64
            var bits = [UInt64](repeating: 0, count: n * width)
            let arena = index.levels[0]
            let f = scope.users
            bits.withUnsafeMutableBufferPointer { p in
                for app in scope.apps where index.isActive(entity: Int(app), range) {
                    for d in lo...hi {
                        let w = (d - lo) >> 6, bit = UInt64(1) << UInt64((d - lo) & 63)
                        arena.forEach(index.bitmap(entity: Int(app), level: 0, block: d)) { u in
                            if let f, !f.contains(u) { return }
                            p[Int(u) * width + w] |= bit
                        }
                    }
                }
                for u in 0..<n where apps[u] > 0 {
                    var c = 0
                    for w in 0..<width { c += p[u * width + w].nonzeroBitCount }
                    days[u] = Int32(c)
                }
            }
        }
        return (apps, days)
    }

    /// Totals over the scope. `full` adds the approval splits and users of any app.
    func totals(full: Bool) -> Metrics {
        var m = Metrics()
        let apps = scope.client.apps
        for app in scope.apps where isActive(entity: Int(app)) {
            m.apps += 1
            if apps[Int(app)].isApproved { m.approvedApps += 1 } else { m.unapprovedApps += 1 }
        }
        unionOfApps(.all, into: b)
        m.users = b.count
        if full {
            unionOfApps(.approved, into: b)
            m.approvedUsers = b.count
            unionOfApps(.unapproved, into: b)
            m.unapprovedUsers = b.count
            b.clear()
            union(entity: index.entity(.all), into: b)
            if let f = scope.users { b.formIntersection(f) }
            m.anyAppUsers = b.count
        }
        b.clear()
        return m
    }
}
