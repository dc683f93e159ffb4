import TallyStorage

extension PeriodScan {
    /// Per app of the scope (or of `only`): users, and user-days when they cost O(1) (no
    /// department filter); otherwise the executor fills them in for the rows of the page only.
    func byApp(only: [UInt32]? = nil) -> [(app: UInt32, metrics: Metrics)] {
        if scope.readsMembers { return byAppOfMembers(only: only) }
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
        if departmentsReadMembers { return byDepartmentOfMembers() }
        let client = scope.client
        let deptCount = client.departments.count
        var m = [Metrics](repeating: Metrics(), count: deptCount)
        if deptCount == 0 { return m }
        // Members as dense bitsets: the client's own when it keeps them, else built here.
        let built: [UserSet] = client.memberWords != nil ? [] : (0..<deptCount).map { d -> UserSet in
            let s = UserSet(domain: domain)
            client.addMembers(of: d, into: s)
            return s
        }
        let members: [UnsafePointer<UInt64>] = client.memberWords.map { w in
            (0..<deptCount).map { UnsafePointer(w.baseAddress! + $0 * client.memberWordCount) }
        } ?? built.map { UnsafePointer($0.words) }
        defer { withExtendedLifetime(built) {} }
        // Where each department's members are: a span of words and a few others (all words
        // for built sets).
        let spans = client.memberWords != nil ? client.memberSpans
            : [(words: Range<Int>, outside: [UInt32])](repeating: (0..<a.wordCount, []), count: deptCount)
        func shared(_ set: UserSet, _ d: Int) -> Int {
            set.intersectionCount(words: members[d], in: spans[d].words) + set.count(of: spans[d].outside)
        }
        // Iterating an app's users costs about one step per user; testing costs up to the
        // department's span and members outside it, usually a quarter of them before the first
        // shared word.
        let denseFrom = max(1, deptCount * a.wordCount / 4)
        // Sparse apps without masks (past ``ClientStore/maxMaskDepartments`` departments): the
        // last app that counted each department, and the counts of approved and unapproved apps,
        // as raw memory the per-user loop below writes directly (with captured arrays and a list
        // of hits B took 65.3 ms p50 on the enterprise client, 30 days, before it had masks;
        // 55.4 ms so: `tally synth --shape enterprise`, docs/BENCHMARKS.md). The loop is bound by
        // its random reads of each user's departments, one per user of every app.
        let useMasks = scope.users == nil && index.hasDepartmentMasks
        let maskWords = client.departmentMaskWords
        let sparseDepartments = useMasks || client.userDepartmentMasks != nil ? 0 : deptCount  // 0: that path is not taken
        let lastApp = UnsafeMutablePointer<Int32>.allocate(capacity: sparseDepartments)
        lastApp.initialize(repeating: -1, count: sparseDepartments)
        let sparseCounts = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * sparseDepartments)  // approved, then unapproved
        sparseCounts.initialize(repeating: 0, count: 2 * sparseDepartments)
        defer {
            lastApp.deallocate()
            sparseCounts.deallocate()
        }
        if useMasks { countAppsFromMasks(into: &m) }
        for app in scope.apps where !useMasks {
            let n = users(entity: Int(app), into: a)
            if n == 0 { continue }
            let approved = client.apps[Int(app)].isApproved
            func count(_ d: Int) {
                m[d].apps += 1
                if approved { m[d].approvedApps += 1 } else { m[d].unapprovedApps += 1 }
            }
            if n >= denseFrom {
                for d in 0..<deptCount where a.intersects(words: members[d], in: spans[d].words)
                    || spans[d].outside.contains(where: { a.contains($0) }) { count(d) }
            } else if let masks = client.userDepartmentMasks {
                withUnsafeTemporaryAllocation(of: UInt64.self, capacity: maskWords) { seen in
                    seen.initialize(repeating: 0)
                    masks.withUnsafeBufferPointer { mp in
                        a.forEach { u in
                            let at = Int(u) &* maskWords
                            for w in 0..<maskWords { seen[w] |= mp[at &+ w] }
                        }
                    }
                    for w in 0..<maskWords {
                        var x = seen[w]
                        while x != 0 {
                            count(w << 6 | x.trailingZeroBitCount)
                            x &= x &- 1
                        }
                    }
                }
            } else {
                let stamp = Int32(truncatingIfNeeded: app), counts = approved ? sparseCounts : sparseCounts + sparseDepartments
                client.userDepartmentStart.withUnsafeBufferPointer { start in
                    client.userDepartments.withUnsafeBufferPointer { list in
                        let s = start.baseAddress!, l = list.baseAddress!
                        a.forEach { u in
                            var j = Int(s[Int(u)])
                            let end = Int(s[Int(u) &+ 1])
                            while j < end {
                                let d = Int(l[j])
                                if lastApp[d] != stamp {
                                    lastApp[d] = stamp
                                    counts[d] &+= 1
                                }
                                j &+= 1
                            }
                        }
                    }
                }
            }
        }
        for d in 0..<sparseDepartments {
            let approved = Int(sparseCounts[d]), unapproved = Int(sparseCounts[sparseDepartments &+ d])
            m[d].apps += approved + unapproved
            m[d].approvedApps += approved
            m[d].unapprovedApps += unapproved
        }
        a.clear()
        for split in Split.allCases {
            unionOfApps(split, into: b)
            for d in 0..<deptCount {
                let n = shared(b, d)
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

    /// Apps per department (all, approved, unapproved) from the precomputed department bits of
    /// the stored bitmaps: every app's over the range is the OR of a few contiguous rows, and
    /// the counts are 64 counters side by side in bit planes per mask word (plane k holds bit k
    /// of the count of each of the word's departments), each app's mask word added with a ripple
    /// carry that usually stops after a plane or two, instead of one increment per department bit.
    private func countAppsFromMasks(into m: inout [Metrics]) {
        let W = index.departmentMaskWords, words = index.maskWords(entities: index.appCount), lane = index.maskLaneMask
        let stride = index.maskWordStride
        let reached = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, words))
        defer { reached.deallocate() }
        reached.initialize(repeating: 0, count: words)
        for b in blocks {
            let row = b.masks!
            for i in 0..<words { reached[i] |= row[i] }  // packed masks OR lane by lane
        }
        let approvedBit = UInt8(1) << UInt8(AppClass.approved.rawValue)
        // Word w's planes: 128·w ..< 128·w + 64 unapproved apps, the next 64 approved.
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 128 &* W) { planes in
            planes.initialize(repeating: 0)
            var height = 0  // planes in use: bits of the largest count
            scope.client.appClassBits.withUnsafeBufferPointer { bits in
                for app in scope.apps where appIsActive(Int(app)) {
                    let split = bits[Int(app)] & approvedBit != 0 ? 64 : 0
                    let (at, shift) = index.maskPosition(Int(app))
                    for w in 0..<W {
                        var carry = reached[at &+ w &* stride] >> UInt64(shift) & lane
                        let base = w &* 128 &+ split
                        var k = 0
                        while carry != 0 {
                            let next = planes[base &+ k] & carry
                            planes[base &+ k] ^= carry
                            carry = next
                            k &+= 1
                        }
                        height = max(height, k)
                    }
                }
            }
            func count(_ split: Int, _ d: Int) -> Int {
                let base = (d >> 6) &* 128 &+ split, bit = UInt64(d & 63)
                var c = 0
                for k in 0..<height { c |= Int((planes[base &+ k] >> bit) & 1) << k }
                return c
            }
            for d in m.indices {
                m[d].approvedApps = count(64, d)
                m[d].unapprovedApps = count(0, d)
                m[d].apps = m[d].approvedApps + m[d].unapprovedApps
            }
        }
    }

    /// Per catalog category: users and apps, one row per category index and a last row for the
    /// apps without one (the category dimension's rows). `only`, when given, says which rows to
    /// compute; the others stay zero.
    ///
    /// When the filters keep every app, each category's users are its precomputed class union
    /// (one bitmap per block, like one app); otherwise the union of its apps kept by the filters.
    /// Apps are counted by an O(1) activity test each (a bitmap test under a department filter).
    func byCategory(rowCount: Int, only: [Bool]? = nil) -> [Metrics] {
        if scope.readsMembers && scope.appClass != .all { return byCategoryOfMembers(rowCount: rowCount, only: only) }
        var out = [Metrics](repeating: Metrics(), count: rowCount)
        // The scope's apps grouped by row: a counting sort (no dictionary per query).
        let clientApps = scope.client.apps
        @inline(__always) func row(_ app: UInt32) -> Int { clientApps[Int(app)].category.map(Int.init) ?? rowCount - 1 }
        var start = [Int](repeating: 0, count: rowCount + 1)
        for app in scope.apps { start[row(app) &+ 1] &+= 1 }
        for r in 0..<rowCount { start[r + 1] += start[r] }
        var grouped = [UInt32](repeating: 0, count: scope.apps.count)
        var next = start
        for app in scope.apps {
            let r = row(app)
            grouped[next[r]] = app
            next[r] &+= 1
        }
        let classes = scope.appClass == .all
        // Under a class filter (approval, AI), each category's apps of the class have their own
        // unions once derived: only for clients that keep category classes (the large ones). The
        // first request starts their derivation in the background and answers from the apps.
        let classUnions = scope.appClass.flatMap { c -> CategoryClassUnions? in
            c == .all || index.categoryClasses.isEmpty ? nil : CategoryClassUnions.available(scope.client, index, c)
        }
        for r in 0..<rowCount where start[r] < start[r + 1] && only?[r] != false {
            let apps = grouped[start[r]..<start[r + 1]]
            let category = r == rowCount - 1 ? nil : Int32(r)
            var m = Metrics()
            if classes, let e = index.entity(category: category) {
                for app in apps where isActive(entity: Int(app)) { m.apps += 1 }
                if m.apps > 0 { m.users = userCount(entity: e) }
            } else if let u = classUnions, let row = u.row(category: category) {
                for app in apps where isActive(entity: Int(app)) { m.apps += 1 }
                if m.apps > 0 { m.users = u.userCount(row: row, blocks, filter: scope.users, set: b, index: index, client: scope.client) }
            } else {
                // Each active app's blocks straight into one set, the department filter applied
                // once at the end (not a set cleared, filtered and counted per app).
                b.clear()
                for app in apps where isActive(entity: Int(app)) {
                    m.apps += 1
                    union(entity: Int(app), into: b)
                }
                if let f = scope.users { b.formIntersection(f) }
                m.users = b.count
            }
            b.clear()
            if m.users > 0 { out[r] = m }
        }
        return out
    }

    /// Per user: distinct apps and distinct active days, from the user-major pair index: one
    /// pass over each user's (user, app) pairs of the scope's apps, reading only the words of the
    /// range. Arrays are indexed by dense user.
    /// - Complexity: O(Σ over users of pairs × range words).
    func byUser() -> (apps: [Int32], activeDays: [Int32]) {
        let n = domain
        var apps = [Int32](repeating: 0, count: n)
        var days = [Int32](repeating: 0, count: n)
        if let c = scope.appClass {
            // The scope is a class: each user's active days are a popcount of the class's
            // user-day bitsets (``UserDays``, derived once per client version and class), and
            // their apps a day test per pair, instead of OR-ing every pair's days of the range.
            let userDays = UserDays.of(scope.client, index, c)
            let pairs = index.pairs, f = scope.users, everyApp = c == .all
            scope.appMask.withUnsafeBufferPointer { mask in
                userDays.words.withUnsafeBufferPointer { w in
                    for u in 0..<n {
                        if let f, !f.contains(UInt32(u)) { continue }
                        let a = everyApp ? pairs.appCount(user: u, lo, hi) : pairs.appCount(user: u, lo, hi, mask: mask)
                        if a == 0 { continue }
                        apps[u] = Int32(a)
                        days[u] = Int32(userDays.days(user: u, lo, hi, w.baseAddress!))
                    }
                }
            }
            return (apps, days)
        }
        let width = (hi - lo + 64) / 64
        let acc = UnsafeMutablePointer<UInt64>.allocate(capacity: width)
        defer { acc.deallocate() }
        scope.appMask.withUnsafeBufferPointer { mask in
            for u in 0..<n {
                let (a, d) = userMetrics(u, mask: mask, acc: acc, width: width)
                apps[u] = Int32(a)
                days[u] = Int32(d)
            }
        }
        return (apps, days)
    }

    /// Metrics of the active ones among `users` (a page's rows), one scratch buffer for all.
    func userRows(_ users: [Int]) -> [(user: Int, metrics: Metrics)] {
        // Under a class whose user-day words (``UserDays``) were derived already — by the class's
        // bound order or a sort by active days — active days are a popcount of them and apps a day
        // test per pair, not an OR of every pair's days: D's full list of the scale-M seed-5
        // client over 30 days, `is_approved=false`, with a comparison 0.27 → 0.22 ms in process
        // (`tally bench`, docs/BENCHMARKS.md). Not derived for this: a page's rows would take
        // hundreds of pages to pay back its cost (a fresh server's first page of D on the
        // 20,000-user client 0.8 → 5.5–6.0 ms when it did).
        if let c = scope.appClass, let days = scope.client.derived.existing(UserDays.self, variant: c.rawValue) {
            let pairs = index.pairs
            let everyApp = c == .all
            return days.words.withUnsafeBufferPointer { w in
                scope.appMask.withUnsafeBufferPointer { mask in
                    users.compactMap { u in
                        if let f = scope.users, !f.contains(UInt32(u)) { return nil }
                        let apps = everyApp ? pairs.appCount(user: u, lo, hi) : pairs.appCount(user: u, lo, hi, mask: mask)
                        guard apps > 0 else { return nil }
                        var m = Metrics()
                        m.users = 1
                        m.apps = apps
                        m.activeDays = days.days(user: u, lo, hi, w.baseAddress!)
                        return (u, m)
                    }
                }
            }
        }
        let width = (hi - lo + 64) / 64
        let acc = UnsafeMutablePointer<UInt64>.allocate(capacity: width)
        defer { acc.deallocate() }
        return scope.appMask.withUnsafeBufferPointer { mask in
            users.compactMap { u in
                let (apps, days) = userMetrics(u, mask: mask, acc: acc, width: width)
                guard apps > 0 else { return nil }
                var m = Metrics()
                m.users = 1
                m.apps = apps
                m.activeDays = days
                return (u, m)
            }
        }
    }

    /// Distinct apps (of the mask) and active days of user `u` over the range, using `acc`
    /// (`width` words) as scratch; (0, 0) for a user the department filter drops.
    @inline(__always)
    func userMetrics(_ u: Int, mask: UnsafeBufferPointer<Bool>, acc: UnsafeMutablePointer<UInt64>,
                     width: Int) -> (apps: Int, days: Int) {
        if let f = scope.users, !f.contains(UInt32(u)) { return (0, 0) }
        let view = index.pairs, pairs = view.base
        acc.update(repeating: 0, count: width)
        var count = 0
        for p in Int(pairs.userStart[u])..<Int(pairs.userStart[u &+ 1]) where mask[Int(pairs.pairApp[p])] {
            if pairs.days(pair: p, lo, hi, into: acc) { count &+= 1 }
        }
        if view.tailOverlaps(lo, hi) {
            count &+= view.tailApps(user: u, lo, hi, mask: mask)
            let lo = self.lo, hi = self.hi
            view.forEachTailPair(user: u) { row in
                guard row.isIn(lo, hi), mask[Int(row.app)] else { return }
                let x = Int(row.day) &- lo
                acc[x &>> 6] |= 1 << UInt64(x & 63)
            }
        }
        if count == 0 { return (0, 0) }
        var d = 0
        for w in 0..<width { d &+= acc[w].nonzeroBitCount }
        return (count, d)
    }

    /// Under a department filter read from the masks (``departmentMasks``): for every app,
    /// whether a user of the filter used it in the range — the blocks' rows of masks ORed word by
    /// word (only the words that hold the filter's departments), then each app's lanes tested.
    /// `nil` without masks.
    ///
    /// Why not ``isActive(entity:)`` per app: a trend asks it of every app in every bucket, and
    /// that one call an app and bucket, reading each block's word, was half of a 366-day weekly
    /// trend under a department of the enterprise client (docs/BENCHMARKS.md, "Masks word by word").
    func appsReachedFromMasks() -> [Bool]? {
        guard let (rows, bits) = departmentMasks else { return nil }
        let n = index.appCount, W = index.departmentMaskWords, stride = index.maskWordStride
        let lane = index.maskLaneMask, laneBits = index.maskLaneBits
        // Words of one word's plane that hold the apps: packed lanes when a mask is under a word.
        let planeWords = W > 1 ? n : index.maskWords(entities: n)
        var flags = [Bool](repeating: false, count: n)
        let reached = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, planeWords))
        defer { reached.deallocate() }
        for w in 0..<bits.count where bits[w] != 0 {
            let start = w &* stride  // w is 0 when masks are one word
            reached.initialize(repeating: 0, count: planeWords)
            for i in 0..<rows.count {
                let row = rows[i] + start
                for k in 0..<planeWords { reached[k] |= row[k] }
            }
            let want = bits[w]
            if laneBits == 64 {
                for a in 0..<n where reached[a] & want != 0 { flags[a] = true }
            } else {
                // Lanes a word: a power of two, so a shift and a mask, not a division an app.
                let lanes = 64 / laneBits, laneShift = lanes.trailingZeroBitCount
                for a in 0..<n where (reached[a &>> laneShift] >> UInt64((a & (lanes &- 1)) &* laneBits)) & lane & want != 0 {
                    flags[a] = true
                }
            }
        }
        return flags
    }

    /// Totals over the scope. `full` adds the approval splits and users of any app.
    func totals(full: Bool) -> Metrics {
        var m = Metrics()
        if scope.users == nil {
            // Active apps of the scope, and its approved ones: byte loops over every app (a
            // 53-week trend runs this per bucket and period).
            let n = index.appCount
            let approvedBit = UInt8(1) << UInt8(AppClass.approved.rawValue)
            var active = 0, approved = 0
            scope.appMask.withUnsafeBufferPointer { mask in
                scope.client.appClassBits.withUnsafeBufferPointer { bits in
                    for a in 0..<n where activeApps[a] && mask[a] {
                        active &+= 1
                        approved &+= Int((bits[a] & approvedBit) >> UInt8(AppClass.approved.rawValue))
                    }
                }
            }
            m.apps = active
            m.approvedApps = approved
            m.unapprovedApps = active - approved
        } else {
            // The members' activity, when the query made it (a trend), else every app's masks
            // at once, else each app's bitmaps.
            let act = scope.scratch.activity(covering: lo, hi)
            let reached = act == nil ? appsReachedFromMasks() : nil
            scope.client.appClassBits.withUnsafeBufferPointer { bits in
                let approvedBit = UInt8(1) << UInt8(AppClass.approved.rawValue)
                for app in scope.apps where appIsActive(Int(app)) {
                    guard act?.appIsActive(Int(app), lo, hi) ?? reached?[Int(app)] ?? isActive(entity: Int(app)) else { continue }
                    m.apps &+= 1
                    if bits[Int(app)] & approvedBit != 0 { m.approvedApps &+= 1 } else { m.unapprovedApps &+= 1 }
                }
            }
        }
        m.users = countOfApps(.all)
        if full {
            m.approvedUsers = countOfApps(.approved)
            m.unapprovedUsers = countOfApps(.unapproved)
            m.anyAppUsers = userCount(entity: index.entity(.all))
        }
        return m
    }
}
