import TallyStorage

/// Per catalog category, the users of its apps of one ``AppClass`` (approved, unapproved, AI…)
/// in every block of every level of the usage index: the index's category classes restricted to
/// one class. What lets the category list under an approval or AI filter read one bitmap per
/// category and block, as the unfiltered list reads its category's class, instead of one per app
/// of the category (on the 20,000-user client, 90 days: 1.09 ms p50 and 3.56 ms p99 in process
/// by the apps' unions, 0.054 and 0.091 ms with these: `tally synth --filter approved --only
/// categories --period 90`, docs/BENCHMARKS.md).
///
/// Derived on first use per base index and class (``ClientStore/baseDerived``), in the background
/// while that first request answers from the apps' unions (``available(_:_:_:)``), and only for
/// clients whose index keeps category classes (``ClientStoreBuilder/extrasMinRows``): a client
/// never asked pays nothing. Merges, rebuilds and reloads make them again for the new base when
/// the old one had them (``DerivedSlot/warm(from:client:)``). A version with a tail reads its
/// base's unions and ORs the tail's users of the row's apps into the blocks that hold the tail's
/// day (``userCount(row:_:filter:set:index:client:)``):
/// derived per version, as before, the category list under an approval filter over 90 days had
/// p50 88 ms and p99 468 ms with appends streaming in, and held the appends to 42,437 events/s
/// (`tools/load/append_today.py --probe`, docs/BENCHMARKS.md). On the 20,000-user client: 57 ms and 23.3 MB for the approved apps,
/// 43 ms and 18.5 MB for the unapproved ones (8–10% of its store each).
final class CategoryClassUnions: @unchecked Sendable {
    /// Rows: category index `c` for `c < categoryRows`, then one row for the apps without one.
    let categoryRows: Int
    /// Per level, the rows' bitmaps, row-major: row `r`'s bitmap of block `b` is
    /// `starts[level][r · blocks + b] ..< starts[level][r · blocks + b + 1]` in `levels[level]`.
    let levels: [BitmapArena]
    let starts: [UnsafeMutableBufferPointer<UInt32>]
    deinit { for s in starts { s.deallocate() } }

    static func of(_ client: ClientStore, _ index: UsageIndex, _ appClass: AppClass) -> CategoryClassUnions {
        client.baseDerived.get(variant: appClass.rawValue) { CategoryClassUnions(client, index.base ?? index, appClass) }
    }

    /// The class's unions if they are derived; if not, `nil`, and they are derived on a
    /// background queue (``DerivedSlot/madeOrStarted(variant:_:)``): the category list answers
    /// from its apps' unions meanwhile. The first such request on the 20,000-user client took
    /// 100–125 ms over HTTP when it derived them (docs/BENCHMARKS.md, "The first request after a
    /// merge or a reload").
    static func available(_ client: ClientStore, _ index: UsageIndex, _ appClass: AppClass) -> CategoryClassUnions? {
        let base = index.base ?? index
        return client.baseDerived.madeOrStarted(variant: appClass.rawValue) { CategoryClassUnions(client, base, appClass) }
    }

    /// The class's apps of each row: `rowApps[rowStart[r] ..< rowStart[r + 1]]`.
    private let rowStart: [Int], rowApps: [Int]

    /// The row of category `category` (`nil`: apps without a category), or `nil` when no app of
    /// the client is in it.
    func row(category: Int32?) -> Int? {
        guard let c = category else { return categoryRows }
        return c >= 0 && Int(c) < categoryRows ? Int(c) : nil
    }

    /// Row `row`'s users in block `block` of level `level`.
    @inline(__always) func bitmap(row: Int, level: Int, block: Int) -> BitmapRef {
        let blocks = blockCounts[level]
        let s = starts[level]
        let i = row &* blocks &+ block
        return BitmapRef(start: s[i], end: s[i &+ 1])
    }

    /// Users of row `row` over a scan's `blocks`, after `filter` (a department filter): the one
    /// block's cardinality, or the size of the blocks' union, made in `set` (left filled).
    /// `index` is the version's: with a tail, the blocks holding its day add the tail's users of
    /// the row's apps — and of the apps of the row and class that `client` (the version's) added
    /// after the client these were derived from (apps added into a tail take spare slots, whose
    /// base bitmaps are empty: docs/APPENDS.md, "New apps in the tail").
    func userCount(row: Int, _ blocks: [PeriodScan.Block], filter: UserSet?, set: UserSet, index: UsageIndex,
                   client: ClientStore) -> Int {
        let tail = index.tail
        if filter == nil && blocks.count == 1 && (tail == nil || tail!.days(inBlock: blocks[0].block, size: index.levelSizes[blocks[0].level]) == 0) {
            let k = blocks[0]
            return levels[k.level].cardinality(bitmap(row: row, level: k.level, block: k.block))
        }
        set.clear()
        for k in blocks {
            // A block past the stored ones (a tail's days after the base's) has only the tail's users.
            if k.block < blockCounts[k.level] { levels[k.level].formUnion(bitmap(row: row, level: k.level, block: k.block), into: set) }
            guard tail != nil else { continue }
            for i in rowStart[row]..<rowStart[row + 1] {
                index.forEachTailUsers(entity: rowApps[i], level: k.level, block: k.block) { set.insert($0, count: $1) }
            }
            for a in derivedApps..<max(derivedApps, index.appCount) where client.appClassBits[a] & classBit != 0
                && self.row(category: client.apps[a].category) == row {
                index.forEachTailUsers(entity: a, level: k.level, block: k.block) { set.insert($0, count: $1) }
            }
        }
        if let filter { set.formIntersection(filter) }
        return set.count
    }

    /// Blocks per level (the index's).
    private let blockCounts: [Int]
    /// The apps of the client these were derived from, and the class's bit.
    private let derivedApps: Int, classBit: UInt8

    /// - Complexity: O(the class's apps' day bitmaps + the rows' bitmaps of every level), once.
    init(_ client: ClientStore, _ index: UsageIndex, _ appClass: AppClass) {
        precondition(index.tail == nil, "derived from a base: a tail's users are read beside it")
        blockCounts = (0..<index.levelSizes.count).map { index.starts(level: $0).blockCount }
        let bit = UInt8(1) << UInt8(appClass.rawValue)
        classBit = bit
        derivedApps = client.apps.count
        let classBits = client.appClassBits
        let categories = (client.apps.compactMap { $0.category.map(Int.init) }.max() ?? -1) + 1
        categoryRows = categories
        // The class's apps grouped by row (a counting sort).
        let rowCount = categories + 1
        var start = [Int](repeating: 0, count: rowCount + 1)
        @inline(__always) func rowOf(_ a: AppInfo) -> Int { a.category.map(Int.init) ?? categories }
        for (i, a) in client.apps.enumerated() where classBits[i] & bit != 0 { start[rowOf(a) + 1] += 1 }
        for r in 0..<rowCount { start[r + 1] += start[r] }
        var grouped = [Int](repeating: 0, count: start[rowCount])
        var next = start
        for (i, a) in client.apps.enumerated() where classBits[i] & bit != 0 {
            grouped[next[rowOf(a)]] = i
            next[rowOf(a)] += 1
        }
        // The base's users: users added to the client since hold no day of it.
        let domain = index.levels[0].domain
        let set = UserSet(domain: domain)
        var scratch: [UInt32] = []
        var levels: [BitmapArena] = [], starts: [UnsafeMutableBufferPointer<UInt32>] = []
        for level in 0..<index.levelSizes.count {
            let blocks = blockCounts[level]
            var builder = BitmapArenaBuilder(domain: domain)
            let s = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: rowCount * blocks + 1)
            // Days from the apps' bitmaps; each coarser block from the blocks one level down that
            // it covers, as the index builds its own levels (levels 1… then cost a fraction).
            let (appStarts, _) = index.starts(level: level)
            let view = level == 0 ? index.levels[0].view : levels[level - 1].view
            let ratio = level == 0 ? 1 : index.levelSizes[level] / index.levelSizes[level - 1]
            let below = level == 0 ? 0 : blockCounts[level - 1]
            var at = 0
            for r in 0..<rowCount {
                for b in 0..<blocks {
                    set.clear()
                    if level == 0 {
                        for k in start[r]..<start[r + 1] {
                            let i = grouped[k] &* blocks &+ b
                            view.formUnion(BitmapRef(start: appStarts[i], end: appStarts[i &+ 1]), into: set)
                        }
                    } else {
                        let children = starts[level - 1]
                        for child in (b * ratio)..<min((b + 1) * ratio, below) {
                            let j = r * below + child
                            view.formUnion(BitmapRef(start: children[j], end: children[j + 1]), into: set)
                        }
                    }
                    s[at] = builder.append(set, scratch: &scratch).start
                    at += 1
                }
            }
            s[at] = UInt32(builder.position)
            levels.append(builder.finish())
            starts.append(s)
        }
        self.levels = levels
        self.starts = starts
        rowStart = start
        rowApps = grouped
    }
}

extension CategoryClassUnions: UsageDerived {
    static func remade(for client: ClientStore, variant: Int) -> (any UsageDerived)? {
        guard let index = client.usage, let appClass = AppClass(rawValue: variant) else { return nil }
        return CategoryClassUnions(client, index.base ?? index, appClass)
    }
}
