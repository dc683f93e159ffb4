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

    /// The deepest level: blocks of 2⁸ = 256 days, enough for a 366-day range to need at most
    /// two blocks per level. Deeper levels would only serve ranges the API refuses.
    public static let maxLevel = 8

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

    /// Builds the immutable store.
    /// - Complexity: O(rows × (1 + levels)) plus a radix sort.
    public func build() -> ClientStore {
        // Department membership, deduplicated.
        var perUser = [[UInt32]](repeating: [], count: users.count)
        for m in memberships where !perUser[Int(m.user)].contains(m.department) {
            perUser[Int(m.user)].append(m.department)
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
        var mb = BitmapArenaBuilder(domain: users.count)
        let members = memberLists.map { mb.append(sorted: $0) }
        let usage = rowUser.isEmpty ? nil : buildUsage()
        return ClientStore(info: info, users: users, userIndex: userIndex, apps: apps, appIndex: appIndex,
                           departments: departments, departmentIndex: departmentIndex,
                           userDepartmentStart: start, userDepartments: list, members: members,
                           membersArena: mb.finish(), usage: usage)
    }

    static func bits(_ n: Int) -> Int { n <= 1 ? 1 : Int.bitWidth - (n - 1).leadingZeroBitCount }

    func buildUsage() -> UsageIndex {
        let minDay = rowDay.min()!, maxDay = rowDay.max()!
        let firstDay = Day(raw: minDay)
        let dayCount = Int(maxDay - minDay) + 1
        let userBits = Self.bits(users.count), dayBits = Self.bits(dayCount), appBits = Self.bits(apps.count)
        precondition(userBits + dayBits + appBits <= 64, "client too large to pack a usage row in 64 bits")
        // Sort rows by (app, day, user) and drop duplicates.
        var keys = [UInt64](repeating: 0, count: rowUser.count)
        for i in 0..<keys.count {
            keys[i] = UInt64(rowApp[i]) << UInt64(dayBits + userBits)
                | UInt64(rowDay[i] - minDay) << UInt64(userBits) | UInt64(rowUser[i])
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
        @inline(__always) func day(_ k: UInt64) -> Int { Int((k >> UInt64(userBits)) & dayMask) }
        @inline(__always) func user(_ k: UInt64) -> UInt32 { UInt32(k & userMask) }

        let classes = AppClass.allCases
        let entityCount = apps.count + classes.count
        let userDayWords = (dayCount + 63) / 64
        var userDays = [[UInt64]](repeating: [UInt64](repeating: 0, count: users.count * userDayWords),
                                  count: classes.count)
        let appClasses: [[Int]] = apps.map { a in classes.filter { $0.contains(a) }.map(\.rawValue) }

        // Level 0: apps, app-major, from the sorted rows; classes from per-user day bits.
        var b0 = BitmapArenaBuilder(domain: users.count)
        var starts0 = [UInt32](repeating: 0, count: entityCount * dayCount + 1)
        var prefix = [UInt32](repeating: 0, count: entityCount * (dayCount + 1))
        var firstSeen = [Int32](repeating: -1, count: apps.count)
        var scratch: [UInt32] = []
        var slot = 0
        var i = 0
        while i < n {
            let a = app(keys[i]), d = day(keys[i])
            let s = a * dayCount + d
            while slot <= s { starts0[slot] = UInt32(b0.headerCount); slot += 1 }
            scratch.removeAll(keepingCapacity: true)
            while i < n && app(keys[i]) == a && day(keys[i]) == d {
                let u = user(keys[i])
                scratch.append(u)
                for c in appClasses[a] { userDays[c][Int(u) * userDayWords + d >> 6] |= 1 << UInt64(d & 63) }
                i += 1
            }
            _ = b0.append(sorted: scratch)
            prefix[a * (dayCount + 1) + d + 1] = UInt32(scratch.count)
            if firstSeen[a] < 0 { firstSeen[a] = Int32(d) }
        }
        while slot <= apps.count * dayCount { starts0[slot] = UInt32(b0.headerCount); slot += 1 }
        for c in classes {
            // Transpose the per-user day bits into per-day user lists (users ascending).
            var perDay = [[UInt32]](repeating: [], count: dayCount)
            userDays[c.rawValue].withUnsafeBufferPointer { bits in
                for u in 0..<users.count {
                    for w in 0..<userDayWords {
                        var x = bits[u * userDayWords + w]
                        while x != 0 {
                            perDay[w * 64 + x.trailingZeroBitCount].append(UInt32(u))
                            x &= x &- 1
                        }
                    }
                }
            }
            let e = apps.count + c.rawValue
            for d in 0..<dayCount {
                starts0[e * dayCount + d] = UInt32(b0.headerCount)
                _ = b0.append(sorted: perDay[d])
                prefix[e * (dayCount + 1) + d + 1] = UInt32(perDay[d].count)
            }
        }
        starts0[entityCount * dayCount] = UInt32(b0.headerCount)
        for e in 0..<entityCount {
            let base = e * (dayCount + 1)
            for d in 0..<dayCount { prefix[base + d + 1] += prefix[base + d] }
        }

        // Levels 1…max: each block is the union of its two halves one level down.
        var levels = [b0.finish()]
        var levelStarts = [starts0]
        var blockCounts = [dayCount]
        let maxLevel = min(Self.maxLevel, Self.bits(dayCount) - 1)
        let set = UserSet(domain: users.count)
        if maxLevel >= 1 {
            for k in 1...maxLevel {
                let below = levels[k - 1], belowStarts = levelStarts[k - 1], belowCount = blockCounts[k - 1]
                let count = (dayCount + (1 << k) - 1) >> k
                var b = BitmapArenaBuilder(domain: users.count)
                var starts = [UInt32](repeating: 0, count: entityCount * count + 1)
                for e in 0..<entityCount {
                    for blk in 0..<count {
                        starts[e * count + blk] = UInt32(b.headerCount)
                        for child in [2 * blk, 2 * blk + 1] where child < belowCount {
                            let j = e * belowCount + child
                            below.formUnion(BitmapRef(start: belowStarts[j], end: belowStarts[j + 1]), into: set)
                        }
                        _ = b.append(set, scratch: &scratch)
                        set.clear()
                    }
                }
                starts[entityCount * count] = UInt32(b.headerCount)
                levels.append(b.finish())
                levelStarts.append(starts)
                blockCounts.append(count)
            }
        }

        // Column segments, one per day: a stable counting sort by day keeps (app, user) order.
        var dayStart = [Int](repeating: 0, count: dayCount + 1)
        for k in keys { dayStart[day(k) + 1] += 1 }
        for d in 0..<dayCount { dayStart[d + 1] += dayStart[d] }
        var byDay = [UInt64](repeating: 0, count: n)
        var fill = dayStart
        for k in keys {
            let d = day(k)
            byDay[fill[d]] = UInt64(app(k)) << 32 | UInt64(user(k))
            fill[d] += 1
        }
        var segments: [Segment] = []
        byDay.withUnsafeBufferPointer { p in
            for d in 0..<dayCount where dayStart[d + 1] > dayStart[d] {
                let slice = UnsafeBufferPointer(rebasing: p[dayStart[d]..<dayStart[d + 1]])
                segments.append(Segment.encode(day: firstDay.adding(d), keys: slice))
            }
        }

        return UsageIndex(firstDay: firstDay, dayCount: dayCount, rowCount: n, appCount: apps.count,
                          maxLevel: maxLevel, levels: levels, levelStarts: levelStarts,
                          levelBlockCounts: blockCounts, dayCardPrefix: prefix, userDayWords: userDayWords,
                          userDays: userDays, firstSeenOffset: firstSeen, segments: segments)
    }
}
