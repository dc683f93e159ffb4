/// Where each bitmap of one level begins in its arena (a header index, or, headerless, a pool
/// offset): bitmap `i` spans `self[i] ..< self[i + 1]`, `count` entries in all (bitmaps + 1).
///
/// Grouped when it fits, as it does for every arena of up to 65,408 users: a 32-bit base per 16
/// bitmaps and a 16-bit offset from it per bitmap, 2.25 bytes a bitmap instead of 4. (A
/// headerless bitmap spans at most `4·W + 5` entries, `W ≤ 1022` words: 16 of them fewer than
/// 65,536.) The offsets are dense over every (entity, block), empty or not; at scale M, flat,
/// they (with the cardinality rows of clients of 200k rows and more) were 1.24 of the store's
/// 7.13 bytes a usage row, and 5.39 on clients under 10k rows; grouped, 0.82 and 3.04.
/// Otherwise flat. A view: the ``UsageIndex`` that made it owns the buffers.
@frozen public struct LevelStarts: @unchecked Sendable {
    @usableFromInline let flat: UnsafePointer<UInt32>?
    @usableFromInline let bases: UnsafePointer<UInt32>?
    @usableFromInline let offsets: UnsafePointer<UInt16>?
    public let count: Int

    /// Bitmaps per group.
    public static let groupShift = 4

    @inlinable public subscript(i: Int) -> UInt32 {
        if let flat { return flat[i] }
        return bases.unsafelyUnwrapped[i &>> Self.groupShift] &+ UInt32(offsets.unsafelyUnwrapped[i])
    }

    /// Bitmap `i`.
    @inlinable @inline(__always) public func bitmap(_ i: Int) -> BitmapRef { BitmapRef(start: self[i], end: self[i &+ 1]) }

    /// Bytes held.
    public var byteCount: Int { flat != nil ? count * 4 : count * 2 + ((count + (1 << Self.groupShift) - 1) >> Self.groupShift) * 4 }

    /// Every entry, as snapshots store them.
    public var values: [UInt32] { (0..<count).map { self[$0] } }

    /// A copy of `starts` (ascending) into `memory`: grouped when every group spans fewer than
    /// 65,536, else flat.
    static func make(_ starts: UnsafeBufferPointer<UInt32>, in memory: StoreMemory?) -> LevelStarts {
        let n = starts.count, g = 1 << groupShift
        let groups = (n + g - 1) >> groupShift
        var fits = true
        for k in 0..<groups where Int(starts[min(n, (k + 1) * g) - 1]) - Int(starts[k * g]) > Int(UInt16.max) {
            fits = false
            break
        }
        guard fits else {
            let flat = StoreMemory.allocate(UInt32.self, capacity: n, in: memory)
            _ = flat.initialize(from: starts)
            return LevelStarts(flat: UnsafePointer(flat.baseAddress!), bases: nil, offsets: nil, count: n)
        }
        let bases = StoreMemory.allocate(UInt32.self, capacity: groups, in: memory)
        let offsets = StoreMemory.allocate(UInt16.self, capacity: n, in: memory)
        for k in 0..<groups { bases[k] = starts[k * g] }
        for i in 0..<n { offsets[i] = UInt16(starts[i] - bases[i >> groupShift]) }
        return LevelStarts(flat: nil, bases: UnsafePointer(bases.baseAddress!), offsets: UnsafePointer(offsets.baseAddress!), count: n)
    }

    @usableFromInline init(flat: UnsafePointer<UInt32>?, bases: UnsafePointer<UInt32>?, offsets: UnsafePointer<UInt16>?, count: Int) {
        self.flat = flat
        self.bases = bases
        self.offsets = offsets
        self.count = count
    }

    /// Frees the buffers (heap only: a region's go with it).
    func release(in memory: StoreMemory?) {
        if let flat { StoreMemory.release(UnsafeMutablePointer(mutating: flat), in: memory) }
        if let bases { StoreMemory.release(UnsafeMutablePointer(mutating: bases), in: memory) }
        if let offsets { StoreMemory.release(UnsafeMutablePointer(mutating: offsets), in: memory) }
    }
}
