/// Fixed app sets whose unions are precomputed like an app's, so that the commonest filters
/// (none, approval, AI) cost one bitmap per block instead of one per app.
public enum AppClass: Int, CaseIterable, Sendable {
    case all, approved, unapproved, ai, aiApproved, aiUnapproved

    public func contains(_ app: AppInfo) -> Bool {
        switch self {
        case .all: return true
        case .approved: return app.isApproved
        case .unapproved: return !app.isApproved
        case .ai: return app.isAI
        case .aiApproved: return app.isAI && app.isApproved
        case .aiUnapproved: return app.isAI && !app.isApproved
        }
    }
}

/// The usage index of one client: for every app (and every ``AppClass``), the bitmap of its
/// users per day, plus the unions over aligned power-of-two blocks of days (the levels), so
/// that any range is the union of O(log n) stored bitmaps per app. Alongside: per-day
/// cardinality prefix sums (user-days, "any activity" tests), first-seen days, the user-major
/// pair index (the rows themselves are kept only there and in the per-day bitmaps: a rebuild
/// reads them from the pairs, ``PairIndex/forEachRow(_:)``). Immutable after
/// `init` (the raw level offsets are written once there), hence `@unchecked Sendable`.
public final class UsageIndex: @unchecked Sendable {
    /// Day offset 0. Block `b` of level `k` covers offsets `b·size ..< (b+1)·size`.
    public let firstDay: Day
    public let dayCount: Int
    /// The newest activity date of the client.
    public var newestDay: Day { firstDay.adding(dayCount - 1) }
    /// Distinct usage rows (duplicates counted once), the tail's included.
    public let rowCount: Int
    /// The apps this version serves: its client's apps (the base's, and those a tail added).
    public let appCount: Int
    /// App entities the index has room for: the apps it was built with and, on clients whose
    /// batches go into a tail, ``ClientStore/spareApps`` more with no row (empty bitmaps, zero
    /// sums and counts, no range table), which apps added later take without a rebuild — a new
    /// app is a new entity, and the classes' entities follow the apps' (docs/APPENDS.md, "New
    /// apps in the tail"). The classes are entities `appSlots…`.
    public let appSlots: Int
    /// The categories with a class entity (the union of their apps), in entity order after the
    /// fixed classes; `nil` stands for the apps without a category.
    public let categoryClasses: [Int32?]
    /// Entity of each category's class by category index (-1: none), and of the apps without one.
    let categoryEntity: [Int]
    let uncategorizedEntity: Int?
    public var entityCount: Int { appSlots + AppClass.allCases.count + categoryClasses.count }
    /// Block size in days of each level; level 0 is single days.
    public let levelSizes: [Int]
    /// One arena per level.
    public let levels: [BitmapArena]
    /// Per level, `entityCount × blockCount + 1` header offsets (owned, freed in `deinit`).
    @usableFromInline let levelStarts: [LevelStarts]
    @usableFromInline let levelBlockCounts: [Int]
    /// Per level, for each (entity, block) bitmap, the OR of its users' department bits in
    /// ``departmentMaskWords`` words, block-major: a row of ``maskRowWords`` words per block,
    /// entity `e`'s mask at ``maskPosition(_:)`` (packed ``maskLaneBits`` bits wide). Masks of
    /// several words are laid out word by word in the row (``maskWordStride``): every entity's
    /// word 0, then every entity's word 1, … — a department filter's departments are usually in
    /// one word, and that word of every app is then a contiguous run, ORed over a range's blocks
    /// at once (``PeriodScan`` `appsReachedFromMasks`; docs/BENCHMARKS.md, "Masks word by word").
    /// The departments an app reached over a range are then the OR of a few masks, without
    /// touching its users, and every app's over a range is a few contiguous rows. Snapshots and
    /// the builder hand them over entity-major. Kept for clients with enough rows and at most
    /// ``ClientStore/maxMaskDepartments`` departments (past one word, only while they cost at most
    /// half a byte a row: ``ClientStoreBuilder/buildUsage(departmentMasks:maskWords:renumber:)``).
    let departmentMaskRows: [UnsafeMutablePointer<UInt64>]?
    /// Words of one bitmap's department mask.
    public let departmentMaskWords: Int
    /// Bits of one bitmap's mask in the rows: the fewest of 8, 16, 32 and 64 that hold the
    /// client's departments (``maskLaneBits(departments:)``). Masks narrower than a word are
    /// packed side by side, `64 / maskLaneBits` entities a word (``maskPosition(_:)``): at scale M
    /// (2 to 27 departments a client) the masks took 0.54 of 6.70 bytes a usage row as 64-bit
    /// words (docs/BENCHMARKS.md, "Where the bytes go at scale M"). The ORs of the readers work
    /// on the packed words as they are, lane by lane.
    public let maskLaneBits: Int
    /// Words of one block's row of masks: every entity's, packed.
    public var maskRowWords: Int { maskWords(entities: entityCount) }
    /// Words between an entity's mask word `w` and word `w + 1` in a row: every entity's word
    /// `w` comes before every entity's word `w + 1` (one word a mask: unused).
    public var maskWordStride: Int { entityCount }
    /// The mask width for `departments` departments (see ``maskLaneBits``).
    public static func maskLaneBits(departments: Int) -> Int {
        departments <= 8 ? 8 : departments <= 16 ? 16 : departments <= 32 ? 32 : 64
    }
    static func maskRowWords(entities: Int, laneBits: Int, words: Int) -> Int {
        laneBits == 64 ? entities &* words : (entities &+ 64 / laneBits &- 1) / (64 / laneBits)
    }
    /// Per level, block-major like the masks: the cardinality of each (entity, block) bitmap, so
    /// that bounds on every app's users over a range are a few contiguous rows, not a header
    /// read per app and block. Kept for clients of at least ``cardinalityRowsMinRows`` usage rows
    /// (`nil` otherwise): on the many small clients of scale M, dense over every (entity, block),
    /// they took 0.87 of the 2.33 bytes a row that the offsets took there (docs/BENCHMARKS.md,
    /// "Where the bytes go at scale M"); such a client reads a bitmap's headers instead.
    /// In 16 bits when the client has at most 65,535 users (``cardinalitiesAreNarrow``), else 32.
    @usableFromInline let cardinalityRows: [UnsafeMutableRawPointer]?
    /// Whether ``cardinalityRows`` are 16-bit: a bitmap's cardinality is at most the client's
    /// users. At scale M the 32-bit rows took 0.27 bytes a usage row (docs/BENCHMARKS.md).
    @usableFromInline let cardinalitiesAreNarrow: Bool
    /// Clients with fewer usage rows keep no ``cardinalityRows`` (the builder's default for its
    /// other extras, ``ClientStoreBuilder/extrasMinRows``).
    public static let cardinalityRowsMinRows = 200_000
    /// Running sums of per-day user counts, day-major: `(dayCount + 1) × entityCount`, the sum
    /// before day `d` of entity `e` at `d · entityCount + e`. Any entity's user-days over a range
    /// are two reads, and which apps are active over a range is two contiguous rows (snapshots
    /// and the builder hand them over entity-major). Kept in 16 bits (``prefixByDay16``, this one
    /// then empty) when every entity's sum over all days is below 65,536, as on most clients of
    /// under 100,000 usage rows: at scale M the sums were 5.0 bytes a row on clients under 10k
    /// rows, and 2.1 on those of 10k–100k.
    /// With ``prefixOffsets16``, only every 16th day's row: the checkpoints.
    let prefixByDay: UnsafeMutableBufferPointer<UInt32>
    /// The running sums in 16 bits, or empty (see ``prefixByDay``). With ``sumsFromDays``,
    /// only every 16th day's row: the checkpoints (row `g` the sums before day `16·g`).
    let prefixByDay16: UnsafeMutableBufferPointer<UInt16>
    /// Whether ``prefixByDay16`` holds only the checkpoints, the sums between them read from the
    /// day bitmaps (level 0): the sum before day `d` is checkpoint `d / 16` plus the users of
    /// the days from `16·(d / 16)` to `d - 1` (or the next checkpoint less the days from `d` to
    /// it, whichever is nearer: at most 8 days), each a bitmap's cardinality — a start and
    /// at most one word of its payload. Which apps are active over a range is still two reads an
    /// app: an entity's day bitmaps are consecutive, so the range is empty when the starts of its
    /// first day and of the day after its last are equal. Kept for clients whose sums fit in 16
    /// bits: at scale M (seed 5) their sums as bytes from each checkpoint took 1.32 and 0.75
    /// bytes a row of the clients under 10k and of 10k–100k rows, 2.2 MB in all
    /// (docs/BENCHMARKS.md, "Running sums read from the day bitmaps").
    let sumsFromDays: Bool
    /// The 32-bit running sums as 16-bit offsets from their checkpoint (``prefixByDay``), the
    /// 32-bit checkpoints every 16th day's row. Kept when some sum passes 65,535 but every
    /// entity's sums grow by at most 65,535 within each 16 days (at most 4,369 users a day),
    /// else empty: at scale M (seed 5) the 32-bit sums of the clients of 100k rows and more were
    /// 0.27 and 0.32 bytes a row of them (docs/BENCHMARKS.md, "Running sums from 32-bit
    /// checkpoints").
    let prefixOffsets16: UnsafeMutableBufferPointer<UInt16>
    /// Per app, the first day offset with activity, or -1.
    public let firstSeenOffset: [Int32]
    /// The base's rows, user-major: apps and days per user.
    let basePairs: PairIndex
    /// The same rows, user-major: apps and days per user, the base's with the tail's read beside
    /// them (``PairView``).
    public var pairs: PairView { PairView(base: basePairs, tail: tail) }
    /// Rows appended on the last day, beside this index's buffers (which are its base's, shared):
    /// ``UsageTail``. `nil` for an index built or loaded whole.
    public let tail: UsageTail?
    /// The index whose buffers this one reads (and keeps alive), when it has a tail.
    public let base: UsageIndex?
    /// Exact distinct users over every range, for the busiest entities.
    public let rangeCounts: RangeCounts
    /// The region the raw buffers are in (``StoreMemory``), or `nil` for the heap.
    let memory: StoreMemory?

    /// - Parameters:
    ///   - levelStarts: made in the current region (``StoreMemory/current``), adopted.
    ///   - levelDepartmentMasks, dayCardPrefix: read once, transposed into buffers of its own.
    init<Masks: RandomAccessCollection<UInt64>, Prefix: RandomAccessCollection<UInt32>>(
         firstDay: Day, dayCount: Int, rowCount: Int, appCount: Int, appSlots: Int? = nil, categoryClasses: [Int32?], levelSizes: [Int], levels: [BitmapArena],
         levelStarts: [LevelStarts], levelDepartmentMasks: [Masks]?, departmentMaskWords: Int = 1, maskLaneBits: Int = 64, levelBlockCounts: [Int],
         dayCardPrefix: Prefix, firstSeenOffset: [Int32], pairs: PairIndex,
         aiApps: [Bool], rangeCountsMinRowsPerEntry: Int = RangeCounts.defaultMinRowsPerEntry,
         listedTablesMinRows: Int = RangeCounts.listedMinClientRows,
         keepsCardinalityRows: Bool? = nil, narrowSums: Bool = true, checkpointSums: Bool = true) where Masks.Index == Int, Prefix.Index == Int {
        let memory = StoreMemory.current
        self.memory = memory
        self.firstDay = firstDay
        self.dayCount = dayCount
        self.rowCount = rowCount
        self.appCount = appCount
        let appSlots = appSlots ?? appCount
        precondition(appSlots >= appCount && firstSeenOffset.count == appSlots, "every app slot has a first day (-1: none)")
        self.appSlots = appSlots
        self.categoryClasses = categoryClasses
        let classEntities = categoryClasses.enumerated().map { ($1, appSlots + AppClass.allCases.count + $0) }
        var byIndex = [Int](repeating: -1, count: (categoryClasses.compactMap { $0 }.max().map(Int.init) ?? -1) + 1)
        for case let (c?, e) in classEntities where c >= 0 { byIndex[Int(c)] = e }
        categoryEntity = byIndex
        uncategorizedEntity = classEntities.first { $0.0 == nil }?.1
        self.levelSizes = levelSizes
        self.levels = levels
        self.levelStarts = levelStarts
        self.levelBlockCounts = levelBlockCounts
        let entities = appSlots + AppClass.allCases.count + categoryClasses.count
        let W = departmentMaskWords
        self.departmentMaskWords = W
        precondition(W == 1 || maskLaneBits == 64, "masks of several words are whole words")
        self.maskLaneBits = maskLaneBits
        let rowWords = Self.maskRowWords(entities: entities, laneBits: maskLaneBits, words: W)
        departmentMaskRows = levelDepartmentMasks.map { masks in
            zip(masks, levelBlockCounts).map { m, blocks in
                let rows = StoreMemory.allocate(UInt64.self, capacity: max(1, blocks &* rowWords), in: memory)
                rows.initialize(repeating: 0)
                for e in 0..<entities {
                    let (at, shift) = Self.maskPosition(e, laneBits: maskLaneBits)
                    for b in 0..<blocks {
                        for w in 0..<W { rows[b &* rowWords &+ at &+ w &* entities] |= m[(e &* blocks &+ b) &* W &+ w] << UInt64(shift) }
                    }
                }
                return rows.baseAddress!
            }
        }
        let narrowCards = (levels.first?.domain ?? 0) <= Int(UInt16.max)  // a full bitmap of 65,536 users would not fit
        cardinalitiesAreNarrow = narrowCards
        cardinalityRows = !(keepsCardinalityRows ?? (rowCount >= Self.cardinalityRowsMinRows)) ? nil
            : zip(zip(levels, self.levelStarts), levelBlockCounts).map { arenaStarts, blocks in
            let (arena, starts) = arenaStarts
            let view = arena.view
            func fill<T: FixedWidthInteger>(_: T.Type) -> UnsafeMutableRawPointer {
                let rows = StoreMemory.allocate(T.self, capacity: max(1, entities &* blocks), in: memory).baseAddress!
                for e in 0..<entities {
                    for b in 0..<blocks {
                        rows[b &* entities &+ e] = T(view.cardinality(starts.bitmap(e &* blocks &+ b)))
                    }
                }
                return UnsafeMutableRawPointer(rows)
            }
            return narrowCards ? fill(UInt16.self) : fill(UInt32.self)
        }
        self.firstSeenOffset = firstSeenOffset
        self.basePairs = pairs
        self.tail = nil
        self.base = nil
        let totals = (0..<entities).map { Int(dayCardPrefix[$0 * (dayCount + 1) + dayCount]) }
        // Day-major, in 16 bits when every sum fits (the other buffer then empty).
        let narrow = narrowSums && totals.allSatisfy { $0 <= Int(UInt16.max) }
        func byDay<T: FixedWidthInteger>(_: T.Type) -> UnsafeMutableBufferPointer<T> {
            let rows = StoreMemory.allocate(T.self, capacity: (dayCount + 1) * entities, in: memory)
            for e in 0..<entities {
                for d in 0...dayCount { rows[d * entities + e] = T(dayCardPrefix[e * (dayCount + 1) + d]) }
            }
            return rows
        }
        // 16-bit checkpoints alone, the days between read from the day bitmaps.
        sumsFromDays = narrow && checkpointSums
        if sumsFromDays {
            let checkpoints = StoreMemory.allocate(UInt16.self, capacity: ((dayCount >> 4) + 1) * entities, in: memory)
            for e in 0..<entities {
                for g in 0...(dayCount >> 4) { checkpoints[g * entities + e] = UInt16(dayCardPrefix[e * (dayCount + 1) + (g << 4)]) }
            }
            prefixByDay16 = checkpoints
        } else {
            prefixByDay16 = narrow ? byDay(UInt16.self) : StoreMemory.allocate(UInt16.self, capacity: 0, in: memory)
        }
        // 32-bit checkpoints with 16-bit offsets when every sum grows by at most 65,535 from its checkpoint.
        let halves = !narrow && checkpointSums && (0..<entities).allSatisfy { e in
            (0...dayCount).allSatisfy { d in
                dayCardPrefix[e * (dayCount + 1) + d] - dayCardPrefix[e * (dayCount + 1) + (d & ~15)] <= UInt32(UInt16.max)
            }
        }
        if halves {
            let checkpoints = StoreMemory.allocate(UInt32.self, capacity: ((dayCount >> 4) + 1) * entities, in: memory)
            let offsets = StoreMemory.allocate(UInt16.self, capacity: (dayCount + 1) * entities, in: memory)
            for e in 0..<entities {
                for d in 0...dayCount {
                    let sum = dayCardPrefix[e * (dayCount + 1) + d], base = dayCardPrefix[e * (dayCount + 1) + (d & ~15)]
                    if d & 15 == 0 { checkpoints[(d >> 4) * entities + e] = sum }
                    offsets[d * entities + e] = UInt16(sum - base)
                }
            }
            prefixByDay = checkpoints
            prefixOffsets16 = offsets
        } else {
            prefixByDay = narrow ? StoreMemory.allocate(UInt32.self, capacity: 0, in: memory) : byDay(UInt32.self)
            prefixOffsets16 = StoreMemory.allocate(UInt16.self, capacity: 0, in: memory)
        }
        let level0 = levels[0], starts0 = self.levelStarts[0]
        rangeCounts = RangeCounts(
            dayCount: dayCount, userCount: levels[0].domain,
            entityRows: totals, entityUsers: Self.lifetimeUsers(levels: levels, starts: self.levelStarts, blockCounts: levelBlockCounts,
                                                                  entities: entities, appCount: appSlots, pairs: pairs),
            minRowsPerEntry: rangeCountsMinRowsPerEntry,
            listed: rowCount >= listedTablesMinRows ? aiApps + repeatElement(false, count: appSlots - aiApps.count) : []) { e, d, users in
                let i = e * dayCount + d
                level0.appendValues(of: BitmapRef(start: starts0[i], end: starts0[i + 1]), to: &users)
            }
    }

    /// Each entity's distinct users over the whole history, for the widths of the range tables:
    /// an app's from the pair index (its pairs), a class's the union of its blocks of the top
    /// level; `nil` for clients under 256 users, whose tables are all 8-bit.
    /// - Complexity: O(apps + classes × (top blocks' bitmaps + users / 64)).
    static func lifetimeUsers(levels: [BitmapArena], starts: [LevelStarts], blockCounts: [Int], entities: Int, appCount: Int,
                              pairs: PairIndex) -> [Int]? {
        guard let top = levels.last, top.domain >= 1 << 8, let topStarts = starts.last, let blocks = blockCounts.last else { return nil }
        let set = UserSet(domain: top.domain), view = top.view
        return (0..<entities).map { e in
            if e < appCount { return pairs.lifetimeUsers(app: e) }
            set.clear()
            for b in 0..<blocks { view.formUnion(topStarts.bitmap(e &* blocks &+ b), into: set) }
            return set.count
        }
    }

    /// `base` (itself without a tail) read with `tail`'s rows: shares every buffer of `base`.
    /// - Complexity: O(apps + levels), the tail's corrections having been made with it.
    init(base: UsageIndex, tail: UsageTail) {
        precondition(base.tail == nil)
        self.base = base
        self.tail = tail
        memory = base.memory
        firstDay = base.firstDay
        dayCount = tail.hasNext ? tail.nextDay + 1 : base.dayCount
        rowCount = base.rowCount + tail.rowCount
        appCount = tail.appCount
        appSlots = base.appSlots
        categoryClasses = base.categoryClasses
        categoryEntity = base.categoryEntity
        uncategorizedEntity = base.uncategorizedEntity
        levelSizes = base.levelSizes
        levels = base.levels
        levelStarts = base.levelStarts
        levelBlockCounts = base.levelBlockCounts
        departmentMaskRows = base.departmentMaskRows
        departmentMaskWords = base.departmentMaskWords
        maskLaneBits = base.maskLaneBits
        cardinalityRows = base.cardinalityRows
        cardinalitiesAreNarrow = base.cardinalitiesAreNarrow
        prefixByDay = base.prefixByDay
        prefixByDay16 = base.prefixByDay16
        sumsFromDays = base.sumsFromDays
        prefixOffsets16 = base.prefixOffsets16
        firstSeenOffset = tail.firstSeenOffset
        basePairs = tail.pairs  // the base's, over the version's users
        rangeCounts = base.rangeCounts
    }

    deinit {
        guard base == nil else { return }  // the buffers are the base's
        for s in levelStarts { s.release(in: memory) }
        for p in departmentMaskRows ?? [] { StoreMemory.release(p, in: memory) }
        for p in cardinalityRows ?? [] {
            if cardinalitiesAreNarrow { StoreMemory.release(p.assumingMemoryBound(to: UInt16.self), in: memory) }
            else { StoreMemory.release(p.assumingMemoryBound(to: UInt32.self), in: memory) }
        }
        release(prefixByDay, in: memory)
        release(prefixByDay16, in: memory)
        release(prefixOffsets16, in: memory)
    }

    /// The entity index of a class.
    @inlinable public func entity(_ c: AppClass) -> Int { appSlots + c.rawValue }

    /// The entity of a category's class (`nil`: apps without a category), if the client has
    /// apps in it.
    public func entity(category: Int32?) -> Int? {
        guard let c = category else { return uncategorizedEntity }
        return c >= 0 && Int(c) < categoryEntity.count && categoryEntity[Int(c)] >= 0 ? categoryEntity[Int(c)] : nil
    }

    /// The header offsets of `level`: bitmap of (entity, block) spans `[e·blocks + b, e·blocks + b + 1]`.
    @inlinable public func starts(level: Int) -> (pointer: LevelStarts, blockCount: Int) {
        (levelStarts[level], levelBlockCounts[level])
    }

    /// The cardinalities of every entity's bitmap of one block: `row[entity]`, when the index
    /// keeps them (``cardinalityRows``).
    public func cardinalityRow(level: Int, block: Int) -> CardinalityRow? {
        if let tail {
            if block == tail.day / levelSizes[level] { return .wide(UnsafePointer(tail.lastCards[level].baseAddress!)) }
            if block >= levelBlockCounts[level] {
                if block == tail.nextDay / levelSizes[level], let row = tail.nextCards[level] { return .wide(UnsafePointer(row.baseAddress!)) }
                return .wide(UnsafePointer(tail.zeroCards.baseAddress!))  // a block of days without rows
            }
        }
        guard let rows = cardinalityRows else { return nil }
        return cardinalitiesAreNarrow
            ? .narrow(UnsafePointer(rows[level].assumingMemoryBound(to: UInt16.self)) + block &* entityCount)
            : .wide(UnsafePointer(rows[level].assumingMemoryBound(to: UInt32.self)) + block &* entityCount)
    }

    /// The stored bitmap of `entity` for block `block` of `level`: empty for a block past the
    /// stored ones (a tail's days after the base's last: ``UsageTail/nextDay``).
    /// - Complexity: O(1).
    @inlinable @inline(__always)
    public func bitmap(entity: Int, level: Int, block: Int) -> BitmapRef {
        let blocks = levelBlockCounts[level]
        guard block < blocks else { return BitmapRef(start: 0, end: 0) }
        return levelStarts[level].bitmap(entity &* blocks &+ block)
    }

    /// Day offsets `lo…hi` of `range` inside the index, or `nil` when they do not overlap.
    public func offsets(_ range: DayRange) -> (lo: Int, hi: Int)? {
        let lo = max(0, firstDay.distance(to: range.start))
        let hi = min(dayCount - 1, firstDay.distance(to: range.end))
        return lo <= hi ? (lo, hi) : nil
    }

    /// The aligned blocks whose union is exactly the days of `range`: greedily the largest block
    /// that starts at the next day and ends inside the range.
    /// - Complexity: O(blocks) = O(levels × size ratio).
    public func blocks(_ range: DayRange) -> [(level: Int, block: Int)] {
        guard let (lo0, hi) = offsets(range) else { return [] }
        var out: [(Int, Int)] = []
        var lo = lo0
        while lo <= hi {
            var k = levelSizes.count - 1
            while k > 0 && (lo % levelSizes[k] != 0 || lo + levelSizes[k] - 1 > hi) { k -= 1 }
            out.append((k, lo / levelSizes[k]))
            lo += levelSizes[k]
        }
        return out
    }

    /// Exact distinct users of `entity` over day offsets `lo…hi` from its range table, if it has
    /// one (with the tail's users new to it over the range); over the tail's days after the
    /// base's last alone, from the tail, table or not.
    @inline(__always) public func rangeCount(entity: Int, _ lo: Int, _ hi: Int) -> Int? {
        guard let tail, hi >= tail.day else { return rangeCounts.count(entity: entity, lo, hi) }
        // A range on the next day alone: its users are the tail's.
        if lo > tail.day { return tail.novel(entity: entity, lo, hi) }
        guard let n = rangeCounts.count(entity: entity, lo, tail.day) else { return nil }
        return n &+ tail.novel(entity: entity, lo, hi)
    }

    /// Calls `body` with the tail's users of `entity` in block `block` of `level` (lists of
    /// the tail's days that block holds): what its stored bitmap lacks.
    @inline(__always) public func forEachTailUsers(entity: Int, level: Int, block: Int, _ body: (UnsafePointer<UInt32>, Int) -> Void) {
        guard let tail else { return }
        let days = tail.days(inBlock: block, size: levelSizes[level])
        if days != 0 { tail.forEachUsers(entity, days: days, body) }
    }

    /// Distinct users of app `a` over the whole history, the tail's new ones included.
    @inline(__always) public func lifetimeUsers(app a: Int) -> Int {
        basePairs.lifetimeUsers(app: a) &+ (tail?.novelUsers(entity: a) ?? 0)
    }

    /// ORs the users of `entity` in block `block` of `level` into `set`, the tail's included.
    public func formUnion(entity: Int, level: Int, block: Int, into set: UserSet) {
        levels[level].view.formUnion(bitmap(entity: entity, level: level, block: block), into: set)
        forEachTailUsers(entity: entity, level: level, block: block) { set.insert($0, count: $1) }
    }

    /// The running sums entity-major, as snapshots store them.
    var entityMajorPrefix: [UInt32] {
        (0..<entityCount).flatMap { e in (0...dayCount).map { UInt32(prefixSum(e, $0)) } }
    }

    /// Whether the base's pairs hold a row of dense user `user` and app `app` on `day` (days
    /// since 1970); a tail's rows are not looked at.
    /// - Complexity: O(log pairs of the user + log days of the pair).
    public func holds(user: UInt32, app: UInt32, day: Int32) -> Bool {
        let o = Int(day) - Int(firstDay.raw)
        guard o >= 0, o < dayCount, Int(user) + 1 < basePairs.userStart.count,
              let p = basePairs.pair(user: Int(user), app: Int(app)) else { return false }
        return basePairs.hasDay(pair: p, o, o)
    }

    /// Whether `entity` has any activity in `range`.
    @inlinable public func isActive(entity: Int, _ range: DayRange) -> Bool { userDays(entity: entity, range) > 0 }

    /// Users of `entity` on the day at `offset`.
    public func dayCardinality(entity: Int, offset: Int) -> Int {
        prefixSum(entity, offset + 1) - prefixSum(entity, offset)
    }

    /// The first activity day of app `a` in the whole history, or `nil`.
    public func firstSeen(app a: Int) -> Day? {
        let o = firstSeenOffset[a]
        return o < 0 ? nil : firstDay.adding(Int(o))
    }

    public var byteCount: Int {
        let p = byteParts
        return p.unionBitmaps + p.unionOffsets + p.unionMasks + p.daySums + p.pairs + p.ranges
    }

    /// ``byteCount`` by structure: the per-block unions (the level
    /// arenas' bitmaps, their header offsets and starts, the department masks of every bitmap);
    /// the per-day running sums and first days; the pair index; the range tables.
    public var byteParts: (unionBitmaps: Int, unionOffsets: Int, unionMasks: Int, daySums: Int, pairs: Int, ranges: Int) {
        let bitmaps = levelBlockCounts.reduce(0, +) * entityCount
        return (levels.reduce(0) { $0 + $1.byteCount },
                levelStarts.reduce(0) { $0 + $1.byteCount } + (cardinalityRows == nil ? 0 : bitmaps * (cardinalitiesAreNarrow ? 2 : 4)),
                departmentMaskRows == nil ? 0 : levelBlockCounts.reduce(0, +) * maskRowWords * 8, prefixByDay.count * 4 + prefixByDay16.count * 2 + prefixOffsets16.count * 2
                    + firstSeenOffset.count * 4,
                basePairs.byteCount + (tail?.byteCount ?? 0), rangeCounts.byteCount)
    }

    /// Bytes per level arena, level 0 first.
    public var levelByteCounts: [Int] { levels.map(\.byteCount) }
}

/// One block's row of cardinalities, entity by entity (``UsageIndex/cardinalityRow(level:block:)``):
/// 16-bit for clients of at most 65,535 users, 32-bit otherwise and for a tail's corrected rows.
public enum CardinalityRow {
    case narrow(UnsafePointer<UInt16>)
    case wide(UnsafePointer<UInt32>)

    @inline(__always) public subscript(entity: Int) -> UInt32 {
        switch self {
        case .narrow(let p): return UInt32(p[entity])
        case .wide(let p): return p[entity]
        }
    }
}
