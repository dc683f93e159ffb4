/// Collects one client's entities and usage rows (already mapped to dense ids), then builds an
/// immutable ``ClientStore``. Ingest feeds it; nothing reads it until ``build()`` returns.
public struct ClientStoreBuilder {
    public var info: ClientInfo
    public private(set) var users: [UserInfo] = []
    public private(set) var userIndex: [UUID128: UInt32] = [:]
    public private(set) var apps: [AppInfo] = []
    public private(set) var appIndex: [UUID128: UInt32] = [:]
    public private(set) var departments: [DepartmentInfo] = []
    public private(set) var departmentIndex: [UUID128: UInt32] = [:]
    var memberships: [(user: UInt32, department: UInt32)] = []
    var rowUser: [UInt32] = []
    var rowApp: [UInt32] = []
    var rowDay: [Int32] = []

    /// Block sizes of the levels, in days. Level 0 (single days) is always kept; the coarsest
    /// (256) is enough for a 366-day range — deeper levels would only serve ranges the API refuses.
    /// Every other power of two is skipped: on the benchmark client the levels of 2, 8, 32 and 128
    /// days held 34% of the store's bytes (5.46 → 3.59 B/row without them) and saved about a
    /// fifth of a 366-day per-app query (0.99 → 1.25 ms p50); see docs/BENCHMARKS.md.
    public static let defaultLevelSizes = [1, 4, 16, 64, 256]
    /// The levels of clients of fewer than ``smallClientMaxRows`` usage rows: no 4-day blocks.
    /// At scale M they were 0.80 of the store's 8.29 bytes a usage row (2.6 on clients under 10k
    /// rows). Without them, a 30-day range takes up to 30 single days and one 16-day block, not
    /// 13 bitmaps; on a client of 466 users the dashboard mix's A went from 0.145 to 0.206 ms
    /// (docs/BENCHMARKS.md, "Where the bytes go at scale M"). The 20,000-user client keeps them.
    public static let smallClientLevelSizes = [1, 16, 64, 256]
    public static let smallClientMaxRows = 1_000_000
    /// The levels of a client of `rows` usage rows.
    public static func levelSizes(rows: Int) -> [Int] { rows < smallClientMaxRows ? smallClientLevelSizes : defaultLevelSizes }
    /// The level block sizes this builder uses, each a multiple of the one before; `nil`: by
    /// the client's usage rows (``levelSizes(rows:)``).
    public var levelSizes: [Int]?
    /// Clients with fewer usage rows get neither per-category class unions nor per-bitmap
    /// department masks: their category and department lists are cheap without them, and both
    /// cost dense per-(entity, day) tables (a class: offsets, counts and masks, about 16 bytes a
    /// day; the masks: 8 bytes per app-day), which dominate a small client's bytes.
    public var extrasMinRows = 200_000
    /// The layout of the client's arenas (``BitmapArena/headerless``): `nil` lets the user
    /// domain decide (headerless up to 65,536 users); tests choose either.
    public var headerlessArenas: Bool?
    /// Whether headerless arenas pack bitmaps where that is shorter (``BitmapArena``'s packed
    /// arrays): `nil` packs; tests and `tally synth --unpacked` turn it off to compare.
    public var packedArrays: Bool?
    /// Usage rows an entity needs for a range table (``RangeCounts``): `nil` takes the default,
    /// or every entity when ``extrasMinRows`` is 0 (tests); tests set it to keep the default
    /// tables beside every other extra, so that bounds are read from the cardinality rows.
    public var rangeCountsMinRowsPerEntry: Int?
    /// Usage rows a client needs for its AI apps' tables at a sixteenth of the rows
    /// (``RangeCounts/listedMinClientRows``); tests lower it.
    public var listedTablesMinRows = RangeCounts.listedMinClientRows
    /// Whether the running sums may be kept in 16 bits where they fit (``UsageIndex/prefixByDay``);
    /// tests turn it off to read the 32-bit sums on small data.
    public var narrowRunningSums = true
    /// Whether running sums may be kept as checkpoints every 16 days: 16-bit ones with the days
    /// between read from the day bitmaps (``UsageIndex/sumsFromDays``), 32-bit ones with 16-bit
    /// offsets where those fit (``UsageIndex/prefixOffsets16``); tests turn it off to read
    /// every day's row.
    public var checkpointRunningSums = true
    /// Clients of at least this many usage rows get ``ClientStore/spareApps`` app entities with
    /// no row beyond their apps (``UsageIndex/appSlots``), which apps added later take without a
    /// rebuild (``ClientStore/spareAppsMinRows``; a writer whose tail threshold is lower gives
    /// that).
    public var spareAppsMinRows = ClientStore.spareAppsMinRows

    public init(info: ClientInfo) { self.info = info }

    /// Adds a user; returns its dense index, or `nil` if the id is already present.
    public mutating func addUser(_ u: UserInfo) -> UInt32? {
        guard userIndex[u.id] == nil else { return nil }
        let i = UInt32(users.count)
        userIndex[u.id] = i
        users.append(u)
        return i
    }

    public mutating func addApp(_ a: AppInfo) -> UInt32? {
        guard appIndex[a.id] == nil else { return nil }
        let i = UInt32(apps.count)
        appIndex[a.id] = i
        apps.append(a)
        return i
    }

    public mutating func addDepartment(_ d: DepartmentInfo) -> UInt32? {
        guard departmentIndex[d.id] == nil else { return nil }
        let i = UInt32(departments.count)
        departmentIndex[d.id] = i
        departments.append(d)
        return i
    }

    public mutating func addMembership(user: UInt32, department: UInt32) {
        memberships.append((user, department))
    }

    /// Adds one usage row; duplicates are allowed and count once.
    @inlinable
    public mutating func addUsage(user: UInt32, app: UInt32, day: Day) {
        appendRow(user, app, day.raw)
    }

    @usableFromInline mutating func appendRow(_ u: UInt32, _ a: UInt32, _ d: Int32) {
        rowUser.append(u)
        rowApp.append(a)
        rowDay.append(d)
    }

    public var usageRowCount: Int { rowUser.count }

    /// Appends many usage rows at once (dense indexes; the three arrays have equal length).
    public mutating func appendUsage(users: [UInt32], apps: [UInt32], days: [Int32]) {
        rowUser += users
        rowApp += apps
        rowDay += days
    }

    /// Calls `body` with every usage row added so far, in insertion order.
    public func forEachUsageRow(_ body: (_ user: UInt32, _ app: UInt32, _ day: Day) -> Void) {
        for i in 0..<rowUser.count { body(rowUser[i], rowApp[i], Day(raw: rowDay[i])) }
    }

    /// Department memberships added so far, as (user, department) dense indexes.
    public var membershipPairs: [(user: UInt32, department: UInt32)] { memberships }

    /// Builds the immutable store.
    /// - Complexity: O(rows × (1 + levels)) plus a radix sort.
    public func build() -> ClientStore {
        // Its buffers in a region of its own (``StoreMemory``): freed whole with the client.
        StoreMemory.building { buildInRegion() }
    }

    func buildInRegion() -> ClientStore {
        // Users are numbered department by department (by their first department, then in the
        // order added; users without one last): each department's members are then mostly one
        // run of ids, and per-department counts read a few words of a user set instead of all.
        // Dense ids never leave the store (answers, cursors and the log name users by UUID).
        let firstDepartment = memberships.reduce(into: [Int](repeating: departments.count, count: users.count)) {
            $0[Int($1.user)] = min($0[Int($1.user)], Int($1.department))
        }
        var runStart = [Int](repeating: 0, count: departments.count + 2)
        for d in firstDepartment { runStart[d + 1] += 1 }
        for d in 0...departments.count { runStart[d + 1] += runStart[d] }
        var renumber = [UInt32](repeating: 0, count: users.count)
        for (u, d) in firstDepartment.enumerated() {
            renumber[u] = UInt32(runStart[d])
            runStart[d] += 1
        }
        var users = self.users, userIndex = self.userIndex
        for (u, info) in self.users.enumerated() {
            users[Int(renumber[u])] = info
            userIndex[info.id] = renumber[u]
        }
        // Department membership, deduplicated.
        var perUser = [[UInt32]](repeating: [], count: users.count)
        for m in memberships where !perUser[Int(renumber[Int(m.user)])].contains(m.department) {
            perUser[Int(renumber[Int(m.user)])].append(m.department)
        }
        var start: [UInt32] = [0]
        var list: [UInt32] = []
        var memberLists = [[UInt32]](repeating: [], count: departments.count)
        for (u, ds) in perUser.enumerated() {
            for d in ds.sorted() {
                list.append(d)
                memberLists[Int(d)].append(UInt32(u))
            }
            start.append(UInt32(list.count))
        }
        var mb = BitmapArenaBuilder(domain: users.count, headerless: headerlessArenas, packed: packedArrays)
        let members = memberLists.map { mb.append(sorted: $0) }
        // Each user's departments as bits, `maskWords` words a user.
        let maskWords = ClientStore.departmentMaskWords(departments: departments.count)
        var masks: [UInt64]?
        if departments.count <= ClientStore.maxMaskDepartments {
            var m = [UInt64](repeating: 0, count: users.count * maskWords)
            for (u, ds) in perUser.enumerated() {
                for d in ds { m[u * maskWords + Int(d) >> 6] |= 1 << UInt64(d & 63) }
            }
            masks = m
        }
        let usage = rowUser.isEmpty ? nil : buildUsage(departmentMasks: rowUser.count >= extrasMinRows ? masks : nil,
                                                       maskWords: maskWords, renumber: renumber)
        return ClientStore(info: info, users: users, userIndex: userIndex, apps: apps, appIndex: appIndex,
                           departments: departments, departmentIndex: departmentIndex,
                           userDepartmentStart: start, userDepartments: list, userDepartmentMasks: masks,
                           members: members,
                           membersArena: mb.finish(), usage: usage)
    }

    /// The categories of `apps` that get a class entity, in entity order: catalog categories
    /// ascending, then `nil` (apps without one) if any app has none.
    static func categoryClasses(_ apps: [AppInfo]) -> [Int32?] {
        let present = Set(apps.map(\.category))
        return present.compactMap { $0 }.sorted() + (present.contains(nil) ? [nil] : [])
    }

    static func bits(_ n: Int) -> Int { n <= 1 ? 1 : Int.bitWidth - (n - 1).leadingZeroBitCount }

    /// - Parameters:
    ///   - departmentMasks: each user's department bits, `maskWords` words a user, when the
    ///     index is to keep the masks of its bitmaps (they may still be left out: see below).
    ///   - renumber: each user's dense id in the built store, by the id it was added with.
    func buildUsage(departmentMasks userMasks: [UInt64]?, maskWords: Int, renumber: [UInt32]) -> UsageIndex {
        let minDay = rowDay.min()!, maxDay = rowDay.max()!
        let firstDay = Day(raw: minDay)
        let dayCount = Int(maxDay - minDay) + 1
        let userBits = Self.bits(users.count), dayBits = Self.bits(dayCount), appBits = Self.bits(apps.count)
        precondition(userBits + dayBits + appBits <= 64, "client too large to pack a usage row in 64 bits")
        // Sort rows by (app, user, day) and drop duplicates.
        var keys = [UInt64](repeating: 0, count: rowUser.count)
        for i in 0..<keys.count {
            keys[i] = UInt64(rowApp[i]) << UInt64(dayBits + userBits)
                | UInt64(renumber[Int(rowUser[i])]) << UInt64(dayBits) | UInt64(rowDay[i] - minDay)
        }
        radixSort(&keys, significantBits: userBits + dayBits + appBits)
        var n = 0
        for i in 0..<keys.count where n == 0 || keys[i] != keys[n - 1] {
            keys[n] = keys[i]
            n += 1
        }
        keys.removeSubrange(n...)
        let userMask = (UInt64(1) << UInt64(userBits)) - 1, dayMask = (UInt64(1) << UInt64(dayBits)) - 1
        @inline(__always) func app(_ k: UInt64) -> Int { Int(k >> UInt64(dayBits + userBits)) }
        @inline(__always) func day(_ k: UInt64) -> Int { Int(k & dayMask) }
        @inline(__always) func user(_ k: UInt64) -> UInt32 { UInt32((k >> UInt64(dayBits)) & userMask) }

        // Class entities after the apps: the fixed classes, then one per catalog category the
        // client's apps have (and one for apps without a category).
        let fixed = AppClass.allCases
        let categories = rowUser.count >= extrasMinRows ? Self.categoryClasses(apps) : []
        let categorySlot = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
        let classCount = fixed.count + categories.count
        // Spare app entities (no row) between the apps and the classes, for apps added later.
        let slots = apps.count + (rowUser.count >= spareAppsMinRows ? ClientStore.spareApps : 0)
        let entityCount = slots + classCount
        let userDayWords = (dayCount + 63) / 64
        // Per class, each user's days with a row of one of the class's apps (`userDayWords` words a
        // user), the classes one after another in one array: written once for each row and class
        // of its app, through a pointer. (An array of arrays, each write checking that the inner
        // array was unique: `swift_isUniquelyReferenced` was 4.8% of a merge's samples; with this
        // and the transposition below the 47.6 M-row client builds in 4.3–5.7 s against 5.2–6.1,
        // docs/BENCHMARKS.md, "A faster builder".)
        let classStride = users.count * userDayWords
        var userDays = [UInt64](repeating: 0, count: classCount * classStride)
        // Bitmap masks past one word are kept only while they cost at most half a byte a usage
        // row (every extra, for tests, keeps them whatever they cost): W words for each
        // (entity, block) bitmap of every level.
        let W = maskWords
        let levelSizes = self.levelSizes ?? Self.levelSizes(rows: n)
        let bitmapCount = entityCount * levelSizes.filter { $0 == 1 || $0 <= dayCount }.reduce(0) { $0 + (dayCount + $1 - 1) / $1 }
        let departmentMasks = W == 1 || extrasMinRows == 0 || 8 * W * bitmapCount <= n / 2 ? userMasks : nil
        let appClasses: [[Int]] = apps.map { a in
            fixed.filter { $0.contains(a) }.map(\.rawValue) + (categorySlot[a.category].map { [fixed.count + $0] } ?? [])
        }

        // Level 0 for apps: per app, a counting sort of its rows by day keeps users ascending.
        var b0 = BitmapArenaBuilder(domain: users.count, headerless: headerlessArenas, packed: packedArrays)
        var starts0 = [UInt32](repeating: 0, count: entityCount * dayCount + 1)
        var masks0: [UInt64] = departmentMasks == nil ? [] : [UInt64](repeating: 0, count: entityCount * dayCount * W)
        var prefix = [UInt32](repeating: 0, count: entityCount * (dayCount + 1))
        var firstSeen = [Int32](repeating: -1, count: slots)
        var byDay: [UInt32] = []
        var dayStart = [Int](repeating: 0, count: dayCount + 1)
        var i = 0
        userDays.withUnsafeMutableBufferPointer { ud in
            for a in 0..<apps.count {
                let lo = i
                let classes = appClasses[a]
                while i < n && app(keys[i]) == a { i += 1 }
                for d in 0...dayCount { dayStart[d] = 0 }
                for j in lo..<i { dayStart[day(keys[j]) + 1] += 1 }
                for d in 0..<dayCount { dayStart[d + 1] += dayStart[d] }
                byDay.removeAll(keepingCapacity: true)
                byDay.append(contentsOf: repeatElement(0, count: i - lo))
                for j in lo..<i {
                    let d = day(keys[j]), u = user(keys[j])
                    byDay[dayStart[d]] = u
                    dayStart[d] += 1
                    let word = Int(u) &* userDayWords &+ d >> 6, bit = UInt64(1) << UInt64(d & 63)
                    for c in classes { ud[c &* classStride &+ word] |= bit }
                }
                // dayStart[d] is now the end of day d.
                var from = 0
                byDay.withUnsafeBufferPointer { p in
                    for d in 0..<dayCount {
                        starts0[a * dayCount + d] = UInt32(b0.position)
                        let to = dayStart[d]
                        if to > from {
                            _ = b0.append(sorted: UnsafeBufferPointer(rebasing: p[from..<to]))
                            if firstSeen[a] < 0 { firstSeen[a] = Int32(d) }
                            if let dm = departmentMasks {
                                let at = (a * dayCount + d) * W
                                for u in p[from..<to] { for w in 0..<W { masks0[at + w] |= dm[Int(u) * W + w] } }
                            }
                        }
                        prefix[a * (dayCount + 1) + d + 1] = UInt32(to - from)
                        from = to
                    }
                }
            }
        }
        // The spare apps' days: empty bitmaps.
        for i in (apps.count &* dayCount)..<(slots &* dayCount) { starts0[i] = UInt32(b0.position) }
        // Each class's per-user day bits transposed into per-day user lists (users ascending):
        // counted by day, then placed, in one array reused by every class (it was an array a day,
        // each append checking that it was unique).
        var dayStarts = [Int](repeating: 0, count: dayCount + 1), placed: [UInt32] = []
        for c in 0..<classCount {
            for d in 0...dayCount { dayStarts[d] = 0 }
            userDays.withUnsafeBufferPointer { all in
                let bits = UnsafeBufferPointer(rebasing: all[(c * classStride)..<((c + 1) * classStride)])
                dayStarts.withUnsafeMutableBufferPointer { starts in
                    for k in 0..<bits.count {
                        var x = bits[k]
                        let d0 = (k % userDayWords) &* 64 &+ 1
                        while x != 0 {
                            starts[d0 &+ x.trailingZeroBitCount] &+= 1
                            x &= x &- 1
                        }
                    }
                    for d in 0..<dayCount { starts[d + 1] &+= starts[d] }  // now day d's users are starts[d]..<starts[d + 1]
                }
                placed.removeAll(keepingCapacity: true)
                placed.append(contentsOf: repeatElement(0, count: dayStarts[dayCount]))
                var next = dayStarts
                placed.withUnsafeMutableBufferPointer { out in
                    next.withUnsafeMutableBufferPointer { at in
                        for u in 0..<users.count {
                            for w in 0..<userDayWords {
                                var x = bits[u &* userDayWords &+ w]
                                while x != 0 {
                                    let d = w &* 64 &+ x.trailingZeroBitCount
                                    out[at[d]] = UInt32(u)
                                    at[d] &+= 1
                                    x &= x &- 1
                                }
                            }
                        }
                    }
                }
            }
            let e = slots + c
            placed.withUnsafeBufferPointer { p in
                for d in 0..<dayCount {
                    let onDay = UnsafeBufferPointer(rebasing: p[dayStarts[d]..<dayStarts[d + 1]])
                    starts0[e * dayCount + d] = UInt32(b0.position)
                    _ = b0.append(sorted: onDay)
                    if let dm = departmentMasks {
                        let at = (e * dayCount + d) * W
                        for u in onDay { for w in 0..<W { masks0[at + w] |= dm[Int(u) * W + w] } }
                    }
                    prefix[e * (dayCount + 1) + d + 1] = UInt32(onDay.count)
                }
            }
        }
        starts0[entityCount * dayCount] = UInt32(b0.position)
        for e in 0..<entityCount {
            let base = e * (dayCount + 1)
            for d in 0..<dayCount { prefix[base + d + 1] += prefix[base + d] }
        }

        // Coarser levels: each block is the union of the blocks one level down that it covers.
        let sizes = levelSizes.filter { $0 == 1 || $0 <= dayCount }
        var levels = [b0.finish()]
        var levelStarts = [starts0]
        var levelMasks = [masks0]
        var blockCounts = [dayCount]
        let set = UserSet(domain: users.count)
        var scratch: [UInt32] = []
        for k in sizes.indices.dropFirst() {
            let below = levels[k - 1].view, belowStarts = levelStarts[k - 1], belowCount = blockCounts[k - 1]
            let ratio = sizes[k] / sizes[k - 1]
            let count = (dayCount + sizes[k] - 1) / sizes[k]
            var b = BitmapArenaBuilder(domain: users.count, headerless: headerlessArenas, packed: packedArrays)
            var starts = [UInt32](repeating: 0, count: entityCount * count + 1)
            var masks = departmentMasks == nil ? [] : [UInt64](repeating: 0, count: entityCount * count * W)
            for e in 0..<entityCount {
                for blk in 0..<count {
                    starts[e * count + blk] = UInt32(b.position)
                    for child in (blk * ratio)..<min((blk + 1) * ratio, belowCount) {
                        let j = e * belowCount + child
                        below.formUnion(BitmapRef(start: belowStarts[j], end: belowStarts[j + 1]), into: set)
                        if !masks.isEmpty { for w in 0..<W { masks[(e * count + blk) * W + w] |= levelMasks[k - 1][j * W + w] } }
                    }
                    _ = b.append(set, scratch: &scratch)
                    set.clear()
                }
            }
            starts[entityCount * count] = UInt32(b.position)
            levels.append(b.finish())
            levelStarts.append(starts)
            levelMasks.append(masks)
            blockCounts.append(count)
        }

        let pairs = keys.withUnsafeBufferPointer { k in
            PairIndex.build(rowCount: n, userCount: users.count, dayCount: dayCount,
                            recentMinRows: extrasMinRows == 0 ? 0 : PairIndex.recentMinRows) { (app(k[$0]), user(k[$0]), day(k[$0])) }
        }
        return UsageIndex(firstDay: firstDay, dayCount: dayCount, rowCount: n, appCount: apps.count, appSlots: slots,
                          categoryClasses: categories, levelSizes: sizes, levels: levels,
                          levelStarts: levelStarts.map { s in s.withUnsafeBufferPointer { LevelStarts.make($0, in: StoreMemory.current) } },
                          levelDepartmentMasks: departmentMasks == nil ? nil : levelMasks, departmentMaskWords: W,
                          maskLaneBits: UsageIndex.maskLaneBits(departments: departments.count), levelBlockCounts: blockCounts, dayCardPrefix: prefix,
                          firstSeenOffset: firstSeen, pairs: pairs, aiApps: apps.map(\.isAI),
                          // "Every extra" (tests) also gives every entity a range table.
                          rangeCountsMinRowsPerEntry: rangeCountsMinRowsPerEntry ?? (extrasMinRows == 0 ? 0 : RangeCounts.defaultMinRowsPerEntry),
                          listedTablesMinRows: listedTablesMinRows,
                          keepsCardinalityRows: n >= extrasMinRows, narrowSums: narrowRunningSums, checkpointSums: checkpointRunningSums)
    }
}
