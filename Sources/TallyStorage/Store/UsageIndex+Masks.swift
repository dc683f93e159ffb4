/// The department masks' rows (``UsageIndex/departmentMaskRows``): where an entity's mask is in
/// a block's row, and the rows as snapshots store them.
extension UsageIndex {
    /// Whether the index keeps department masks per bitmap (see ``departmentMaskRows``) that
    /// hold for its client version: not once its tail's memberships moved past the base's
    /// (``UsageTail/masksStale``).
    public var hasDepartmentMasks: Bool { departmentMaskRows != nil && tail?.masksStale != true }

    /// The department masks of every entity's bitmap of one block, ``maskRowWords`` words:
    /// entity `e`'s are read with ``mask(_:entity:word:)``.
    public func departmentMaskRow(level: Int, block: Int) -> UnsafePointer<UInt64>? {
        if let tail, tail.masksStale { return nil }
        if let tail, let rows = tail.lastMasks {
            if block == tail.day / levelSizes[level] { return UnsafePointer(rows[level].baseAddress!) }
            if block >= levelBlockCounts[level] {
                if block == tail.nextDay / levelSizes[level], let row = tail.nextMasks[level] { return UnsafePointer(row.baseAddress!) }
                return UnsafePointer(tail.zeroMasks.baseAddress!)  // a block of days without rows
            }
        }
        return departmentMaskRows.map { UnsafePointer($0[level] + block &* maskRowWords) }
    }

    /// Where entity `e`'s mask is in a row of masks: word `word + w · entities` holds its word
    /// `w` (``maskWordStride``), in the lane at `shift` (0 for whole words).
    @inline(__always) static func maskPosition(_ e: Int, laneBits: Int) -> (word: Int, shift: Int) {
        if laneBits == 64 { return (e, 0) }
        let lanes = 64 / laneBits
        return (e / lanes, (e % lanes) &* laneBits)
    }

    /// Where entity `e`'s mask is in a row of masks (``departmentMaskRow(level:block:)``): its
    /// word `w` is lane `shift` of word `word + w · maskWordStride`, read as
    /// `row[word + w · maskWordStride] >> shift & maskLaneMask`.
    @inline(__always) public func maskPosition(_ e: Int) -> (word: Int, shift: Int) {
        Self.maskPosition(e, laneBits: maskLaneBits)
    }

    /// Words from the start of a row of masks to the end of the last word of entities `0..<n`
    /// (the apps: `n` = ``appCount``): with masks of several words, every entity's words before
    /// the last (``maskWordStride``) and the first `n` of the last.
    public func maskWords(entities n: Int) -> Int {
        let W = departmentMaskWords
        if W > 1 { return (W &- 1) &* entityCount &+ n }
        return Self.maskRowWords(entities: n, laneBits: maskLaneBits, words: W)
    }

    /// The bits of one lane (every bit for whole words).
    public var maskLaneMask: UInt64 { maskLaneBits == 64 ? ~0 : (1 << UInt64(maskLaneBits)) &- 1 }

    /// Word `w` of entity `e`'s mask in `row`, a row of masks.
    @inline(__always) public func mask(_ row: UnsafePointer<UInt64>, entity e: Int, word w: Int) -> UInt64 {
        let (at, shift) = maskPosition(e)
        return row[at &+ w &* maskWordStride] >> UInt64(shift) & maskLaneMask
    }

    /// The masks entity-major, as snapshots store them.
    var levelDepartmentMasks: [[UInt64]]? {
        let W = departmentMaskWords
        return departmentMaskRows.map { rows in
            zip(rows, levelBlockCounts).map { m, blocks in
                (0..<entityCount).flatMap { e in
                    (0..<blocks).flatMap { b in (0..<W).map { mask(UnsafePointer(m + b &* maskRowWords), entity: e, word: $0) } }
                }
            }
        }
    }
}
