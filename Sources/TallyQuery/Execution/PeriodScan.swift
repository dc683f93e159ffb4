import TallyStorage

/// The work of one query over one period: unions of stored block bitmaps, with scratch sets
/// reused across apps. Each dimension's aggregation is in its own extension file.
final class PeriodScan {
    let scope: Scope
    let index: UsageIndex
    let range: DayRange
    /// Day offsets of the range inside the index.
    let lo: Int, hi: Int
    /// The aligned blocks covering the range, as raw views (no reference counting in loops).
    let blocks: [Block]

    struct Block {
        let view: ArenaView
        /// The block's level and its index in that level.
        let level: Int
        let starts: LevelStarts
        let stride: Int
        let block: Int
        /// Every entity's cardinality in this block, `cards[entity]`, when the index keeps them.
        let cards: CardinalityRow?
        /// Every entity's department mask in this block, when the index keeps them: a row of
        /// masks, entity `e`'s at ``UsageIndex/maskPosition(_:)``.
        let masks: UnsafePointer<UInt64>?
        /// The index's tail when this block holds one of its days (the last block of its
        /// level, or the block past them that holds its next day): each entity's stored bitmap
        /// here lacks the tail's users of those days (``UsageTail``).
        let tail: UsageTail?
        /// Which of the tail's days the block holds (``UsageTail/days(inBlock:size:)``).
        let tailDays: UInt8

        /// Where the block's bitmaps are in `starts`: `block`, or 0 for a block past the stored
        /// ones, which only a tail's days reach (no stored bitmaps: `starts` empty, `stride` 0).
        let slot: Int

        @inline(__always) func bitmap(_ entity: Int) -> BitmapRef {
            let i = entity &* stride &+ slot
            return starts.bitmap(i)
        }

        /// The cardinality of `entity`'s bitmap in this block: its row, or its headers.
        /// ORs the users of `entity` in this block into `set`.
        @inline(__always) func formUnion(_ entity: Int, into set: UserSet) {
            view.formUnion(bitmap(entity), into: set)
            if let tail { tail.forEachUsers(entity, days: tailDays) { set.insert($0, count: $1) } }
        }

        /// Whether `entity` has a user of `set` in this block.
        @inline(__always) func intersects(_ entity: Int, _ set: UserSet) -> Bool {
            if view.intersects(bitmap(entity), set) { return true }
            guard let tail else { return false }
            var any = false
            tail.forEachUsers(entity, days: tailDays) { any = any || set.containsAny($0, count: $1) }
            return any
        }

        @inline(__always) func cardinality(_ entity: Int) -> Int {
            if let cards { return Int(cards[entity]) }
            return view.cardinality(bitmap(entity))
        }
    }
    let domain: Int
    /// Scratch sets (the query's), cleared between uses.
    let a: UserSet, b: UserSet
    /// Which apps have activity in the range (ignoring the department filter): two contiguous
    /// rows of the day-major sums, read once (a lazy property here cost an exclusivity check
    /// per read, tripling a 53-bucket trend).
    let activeApps: UnsafeMutablePointer<Bool>

    /// Whether app `app` has activity in the range, ignoring the department filter.
    @inline(__always) func appIsActive(_ app: Int) -> Bool { activeApps[app] }

    /// Whether `entity` (an app or a class) has activity in the range, ignoring the department filter.
    @inline(__always) func hasActivity(_ entity: Int) -> Bool {
        entity < index.appCount ? activeApps[entity] : index.isActive(entity: entity, range)
    }

    /// With a department filter read from the masks: each block's mask row, and the filter's
    /// bits (``Scope/departmentBits``), as raw buffers (``isActive(entity:)``).
    let departmentMasks: (rows: UnsafeMutableBufferPointer<UnsafePointer<UInt64>>, bits: UnsafeMutableBufferPointer<UInt64>)?

    deinit {
        activeApps.deallocate()
        departmentMasks?.rows.deallocate()
        departmentMasks?.bits.deallocate()
    }

    /// `nil` when the client has no usage in the range. The scratch sets are the query's
    /// (``Scope/scratch``): its scans run one after another and leave them cleared.
    init?(scope: Scope, range: DayRange) {
        guard let index = scope.index, let (lo, hi) = index.offsets(range) else { return nil }
        self.scope = scope
        self.index = index
        self.range = range
        self.lo = lo
        self.hi = hi
        func block(_ k: Int, _ b: Int) -> Block {
            let (starts, stride) = index.starts(level: k)
            let days = index.tail?.days(inBlock: b, size: index.levelSizes[k]) ?? 0
            // A block past the stored ones (a tail's next day, or days without rows before it): no
            // stored bitmap (an empty one for every entity: offsets of zeros, stride 0).
            let stored = b < stride
            return Block(view: index.levels[k].view, level: k, starts: stored ? starts : LevelStarts.empty, stride: stored ? stride : 0,
                         block: b, cards: index.cardinalityRow(level: k, block: b), masks: index.departmentMaskRow(level: k, block: b),
                         tail: days != 0 ? index.tail : nil, tailDays: days, slot: stored ? b : 0)
        }
        blocks = index.blocks(range).map { block($0.level, $0.block) }
        domain = scope.client.users.count
        (a, b) = scope.scratch.sets
        activeApps = .allocate(capacity: max(1, index.appCount))
        index.activeApps(lo, hi, into: activeApps)
        let blocks = self.blocks
        departmentMasks = scope.departmentBits.map { bits in
            let rows = UnsafeMutableBufferPointer<UnsafePointer<UInt64>>.allocate(capacity: blocks.count)
            for (i, b) in blocks.enumerated() { rows[i] = b.masks! }
            let copy = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: bits.count)
            _ = copy.initialize(from: bits)
            return (rows, copy)
        }
    }

    /// ORs the users of `entity` over the range into `set`.
    @inline(__always)
    func union(entity: Int, into set: UserSet) {
        // Through a raw buffer: a loop over `blocks` copies each block, retaining what it holds
        // (see ``isActive(entity:)``).
        blocks.withUnsafeBufferPointer { bs in
            for i in 0..<bs.count { bs[i].formUnion(entity, into: set) }
        }
    }

    /// Users of `entity` over the range (after the department filter), left in `set`, which is
    /// cleared first. Returns their number.
    @discardableResult
    func users(entity: Int, into set: UserSet) -> Int {
        set.clear()
        if scope.users == nil && !hasActivity(entity) { return 0 }
        union(entity: entity, into: set)
        if let f = scope.users { set.formIntersection(f) }
        return set.count
    }

    /// Number of users of `entity` over the range (after the department filter).
    func userCount(entity: Int) -> Int {
        if scope.users == nil {
            if let n = index.rangeCount(entity: entity, lo, hi) { return n }
            if !hasActivity(entity) { return 0 }
            if blocks.count == 1 { return blocks[0].cardinality(entity) }
        }
        let n = users(entity: entity, into: a)
        a.clear()
        return n
    }

    /// Whether `entity` has activity in the range (after the department filter).
    ///
    /// Reads the blocks through raw pointers: a loop over `blocks` copies each ``Block`` and
    /// retains what it holds, and a 366-day weekly trend under a department filter asks this of
    /// every app in every bucket — refcounting was more than half of that query's time (`perf`
    /// on `tally synth --filter department --filter-departments 6 --only trend --period 366`).
    func isActive(entity: Int) -> Bool {
        guard scope.users != nil else { return hasActivity(entity) }
        if !hasActivity(entity) { return false }
        if let (rows, bits) = departmentMasks {
            // The filter's bits are below the lane's width: the AND ignores the other lanes.
            // Only the words that hold a department of the filter are read.
            let (at, shift) = index.maskPosition(entity)
            let stride = index.maskWordStride
            for w in 0..<bits.count where bits[w] != 0 {
                var m: UInt64 = 0
                let position = at &+ w &* stride
                for i in 0..<rows.count { m |= rows[i][position] }
                if m >> UInt64(shift) & bits[w] != 0 { return true }
            }
            return false
        }
        guard let f = scope.users else { return false }
        return blocks.withUnsafeBufferPointer { bs in
            for i in 0..<bs.count where bs[i].intersects(entity, f) { return true }
            return false
        }
    }

    /// Distinct (user, day) pairs of `entity` over the range, without a department filter (a
    /// department filter's are counted from its members' pairs: ``byAppOfMembers(only:)``).
    func userDays(entity: Int) -> Int { index.userDays(entity: entity, range) }

    /// Number of users of the scope's apps (or of one split of them) over the range, after the
    /// department filter: a class's range table when there is one, else the union's size.
    func countOfApps(_ split: Split) -> Int {
        if split == .all, scope.users != nil, let act = scope.scratch.activity(covering: lo, hi) {
            return act.users(lo, hi)
        }
        if scope.users == nil, let es = scope.splitEntities[split.rawValue], es.count == 1 {
            if let n = index.rangeCount(entity: es[0], lo, hi) { return n }
            if blocks.count == 1 { return blocks[0].cardinality(es[0]) }
        }
        unionOfApps(split, into: b)
        let n = b.count
        b.clear()
        return n
    }

    /// Users of the scope's apps (or of one split of them) over the range, unioned into `set`
    /// (cleared first), after the department filter. A matching class union (a fixed class's or
    /// a category's) stands in for the apps.
    func unionOfApps(_ split: Split, into set: UserSet) {
        set.clear()
        if let es = scope.splitEntities[split.rawValue] {
            for e in es { union(entity: e, into: set) }
        } else {
            let apps = scope.client.apps
            for app in scope.apps where split.keeps(apps[Int(app)]) && appIsActive(Int(app)) {
                union(entity: Int(app), into: set)
            }
        }
        if let f = scope.users { set.formIntersection(f) }
    }
}
