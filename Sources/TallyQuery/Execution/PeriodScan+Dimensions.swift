import TallyStorage

extension PeriodScan {
    /// Per app of the scope (or of `only`): users, and user-days when they cost O(1) (no
    /// department filter); otherwise the executor fills them in for the rows of the page only.
    func byApp(only: [UInt32]? = nil) -> [(app: UInt32, metrics: Metrics)] {
        var out: [(UInt32, Metrics)] = []
        for app in only ?? scope.apps {
            let n = userCount(entity: Int(app))
            if n == 0 { continue }
            var m = Metrics()
            m.users = n
            m.apps = 1
            if scope.users == nil { m.userDays = userDays(entity: Int(app)) }
            if scope.client.apps[Int(app)].isApproved { m.approvedUsers = n; m.approvedApps = 1 } else {
                m.unapprovedUsers = n
                m.unapprovedApps = 1
            }
            out.append((app, m))
        }
        return out
    }

    /// Per department: users, apps and the approval splits of users.
    ///
    /// Users per department are intersection counts of the scope's union with each department's
    /// members. Apps per department take, per app, the cheaper of two ways: iterate the app's
    /// users and collect their departments (sparse apps), or test the app's users against each
    /// department's members, stopping at the first shared word (dense apps).
    /// - Complexity: O(Σ over apps of min(users, departments × words to first overlap)).
    func byDepartment() -> [Metrics] {
        let client = scope.client
        let deptCount = client.departments.count
        var m = [Metrics](repeating: Metrics(), count: deptCount)
        if deptCount == 0 { return m }
        let members = (0..<deptCount).map { d -> UserSet in
            let s = UserSet(domain: domain)
            client.membersArena.formUnion(client.members[d], into: s)
            return s
        }
        // Iterating an app's users costs about one step per user; testing costs up to the set's
        // words per department, usually a quarter of them before the first shared word.
        let denseFrom = max(1, deptCount * a.wordCount / 4)
        var lastApp = [Int](repeating: -1, count: deptCount)
        let useMasks = scope.users == nil && index.levelDepartmentMasks != nil
        for app in scope.apps {
            if useMasks {
                // Precomputed department bits per stored bitmap: no need to touch the users.
                guard index.isActive(entity: Int(app), range),
                      var seen = index.departmentMask(entity: Int(app), blocks: blockList) else { continue }
                let approved = client.apps[Int(app)].isApproved
                while seen != 0 {
                    let d = seen.trailingZeroBitCount
                    m[d].apps += 1
                    if approved { m[d].approvedApps += 1 } else { m[d].unapprovedApps += 1 }
                    seen &= seen &- 1
                }
                continue
            }
            let n = users(entity: Int(app), into: a)
            if n == 0 { continue }
            let approved = client.apps[Int(app)].isApproved
            func count(_ d: Int) {
                m[d].apps += 1
                if approved { m[d].approvedApps += 1 } else { m[d].unapprovedApps += 1 }
            }
            if n >= denseFrom {
                for d in 0..<deptCount where a.intersects(members[d]) { count(d) }
            } else if let masks = client.userDepartmentMasks {
                var seen: UInt64 = 0
                masks.withUnsafeBufferPointer { mp in PeriodScan.forEachValue(a) { seen |= mp[Int($0)] } }
                while seen != 0 {
                    count(seen.trailingZeroBitCount)
                    seen &= seen &- 1
                }
            } else {
                var hit: [Int] = []
                client.userDepartmentStart.withUnsafeBufferPointer { start in
                    client.userDepartments.withUnsafeBufferPointer { list in
                        PeriodScan.forEachValue(a) { u in
                            for j in Int(start[Int(u)])..<Int(start[Int(u) &+ 1]) where lastApp[Int(list[j])] != Int(app) {
                                lastApp[Int(list[j])] = Int(app)
                                hit.append(Int(list[j]))
                            }
                        }
                    }
                }
                for d in hit { count(d) }
            }
        }
        a.clear()
        for split in Split.allCases {
            unionOfApps(split, into: b)
            for d in 0..<deptCount {
                let n = b.intersectionCount(members[d])
                switch split {
                case .all: m[d].users = n
                case .approved: m[d].approvedUsers = n
                case .unapproved: m[d].unapprovedUsers = n
                }
            }
        }
        b.clear()
        return m
    }

    /// Calls `body` with each value of `set` (chunks in touch order), without a closure context
    /// that escapes: the hot loops of the department and user dimensions.
    @inline(__always)
    static func forEachValue(_ set: UserSet, _ body: (UInt32) -> Void) {
        let words = set.words
        for k in set.touched {
            let base = k &<< 10
            for i in 0..<set.wordsInChunk(k) {
                var w = words[base &+ i]
                while w != 0 {
                    body(UInt32(truncatingIfNeeded: ((base &+ i) &<< 6) &+ w.trailingZeroBitCount))
                    w &= w &- 1
                }
            }
        }
    }

    /// Per catalog category (`nil`: apps without one): users and apps.
    func byCategory(only: Set<Int32?>? = nil) -> [Int32?: Metrics] {
        var groups: [Int32?: [UInt32]] = [:]
        for app in scope.apps {
            let c = scope.client.apps[Int(app)].category
            if let only, !only.contains(c) { continue }
            groups[c, default: []].append(app)
        }
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
            apps.withUnsafeMutableBufferPointer { p in PeriodScan.forEachValue(a) { p[Int($0)] &+= 1 } }
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
                        arena.forEach(BitmapRef(start: level0.starts[Int(app) * level0.stride + d],
                                                end: level0.starts[Int(app) * level0.stride + d + 1])) { u in
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

    /// Distinct apps and active days of the listed users only. Per app, the cheaper of: probe
    /// its block bitmaps for each listed user, or build its union and test the users' bits.
    /// Needs a class covering the scope's apps (for the active days); otherwise `nil`.
    /// - Complexity: O(Σ over apps of min(blocks × users × probe, values in its blocks)).
    func byUser(only users: [UInt32]) -> [(user: UInt32, apps: Int, activeDays: Int)]? {
        guard let c = scope.appClass else { return nil }
        var counts = [Int](repeating: 0, count: users.count)
        let kept = users.map { u in scope.users.map { $0.contains(u) } ?? true }
        // A probe into an array (a binary search, usually a cache miss) costs about as much as
        // OR-ing 40 values into a set; into a bitset, about 4.
        for app in scope.apps where index.isActive(entity: Int(app), range) {
            var unionCost = 0, probeCost = 0
            for b in blocks {
                let ref = b.bitmap(Int(app))
                unionCost += b.view.cardinality(ref)
                for h in Int(ref.start)..<Int(ref.end) { probeCost += b.view.headers[h].kind == .array ? 40 : 4 }
            }
            probeCost *= users.count
            if probeCost < unionCost {
                for (i, u) in users.enumerated() where kept[i] {
                    for b in blocks where b.view.contains(b.bitmap(Int(app)), u) {
                        counts[i] += 1
                        break
                    }
                }
            } else {
                self.users(entity: Int(app), into: a)
                for (i, u) in users.enumerated() where kept[i] && a.contains(u) { counts[i] += 1 }
                a.clear()
            }
        }
        return users.indices.map { i in
            (users[i], counts[i], counts[i] > 0 ? index.activeDays(user: Int(users[i]), cls: c, range) : 0)
        }
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
