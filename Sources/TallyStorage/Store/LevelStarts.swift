/// Where each bitmap of one level begins in its arena (a header index, or, headerless, a pool
/// offset): bitmap `i` spans `self[i] ..< self[i + 1]`, `count` entries in all (bitmaps + 1).
///
/// Grouped when it fits, as it does for every arena of up to 65,408 users: a 32-bit base per 16
/// bitmaps and a 16-bit offset from it per bitmap, 2.25 bytes a bitmap instead of 4. (A
/// headerless bitmap spans at most `4·W + 5` entries, `W ≤ 1022` words: 16 of them fewer than
/// 65,536.) The offsets are dense over every (entity, block), empty or not; at scale M, flat,
/// they (with the cardinality rows of clients of 200k rows and more) were 1.24 of the store's
/// 7.13 bytes a usage row, and 5.39 on clients under 10k rows; grouped, 0.82 and 3.04.
/// Narrower still when every group of the level spans at most 255 entries, as the levels of
/// small clients do (bitmaps of a few users each): an 8-bit offset per bitmap, 1.25 bytes. At
/// scale M that took the offsets from 0.68 to 0.49 bytes a usage row (clients of 10k–100k rows:
/// 1.26 to 0.70; docs/BENCHMARKS.md, "8-bit level offsets").
/// Otherwise flat. A view: the ``UsageIndex`` that made it owns the buffers.
@frozen public struct LevelStarts: @unchecked Sendable {
    @usableFromInline let flat: UnsafePointer<UInt32>?
    @usableFromInline let bases: UnsafePointer<UInt32>?
    /// Grouped: each bitmap's offset from its group's base, 16 or 8 bits.
    @usableFromInline let offsets: UnsafePointer<UInt16>?
    @usableFromInline let offsets8: UnsafePointer<UInt8>?
    public let count: Int

    /// Bitmaps per group.
    public static let groupShift = 4

    @inlinable public subscript(i: Int) -> UInt32 {
        // 16-bit offsets first, as before the 8-bit ones came: the 20,000-user client's levels
        // (16-bit) read with one test, as they did. With the 8-bit test first, or one path for
        // both widths (a 16-bit read masked), its queries under a vendor filter were 8–13%
        // slower (`tally synth --filter vendor`, docs/BENCHMARKS.md).
        if let offsets { return bases.unsafelyUnwrapped[i &>> Self.groupShift] &+ UInt32(offsets[i]) }
        if let flat { return flat[i] }
        return bases.unsafelyUnwrapped[i &>> Self.groupShift] &+ UInt32(offsets8.unsafelyUnwrapped[i])
    }

    /// Bitmap `i`.
    @inlinable @inline(__always) public func bitmap(_ i: Int) -> BitmapRef { BitmapRef(start: self[i], end: self[i &+ 1]) }

    /// Bytes held.
    public var byteCount: Int {
        let groups = ((count + (1 << Self.groupShift) - 1) >> Self.groupShift) * 4
        return flat != nil ? count * 4 : offsets8 != nil ? count + groups : count * 2 + groups
    }

    /// Every entry, as snapshots store them.
    public var values: [UInt32] { (0..<count).map { self[$0] } }

    /// A copy of `starts` (ascending) into `memory`: grouped with 8-bit offsets when every group
    /// spans at most 255 entries, with 16-bit ones when every group spans at most 65,535, else flat.
    static func make(_ starts: UnsafeBufferPointer<UInt32>, in memory: StoreMemory?) -> LevelStarts {
        let n = starts.count, g = 1 << groupShift
        let groups = (n + g - 1) >> groupShift
        var widest = 0
        for k in 0..<groups { widest = max(widest, Int(starts[min(n, (k + 1) * g) - 1]) - Int(starts[k * g])) }
        guard widest <= Int(UInt16.max) else {
            let flat = StoreMemory.allocate(UInt32.self, capacity: n, in: memory)
            _ = flat.initialize(from: starts)
            return LevelStarts(flat: UnsafePointer(flat.baseAddress!), bases: nil, offsets: nil, offsets8: nil, count: n)
        }
        let bases = StoreMemory.allocate(UInt32.self, capacity: groups, in: memory)
        for k in 0..<groups { bases[k] = starts[k * g] }
        if widest <= Int(UInt8.max) {
            let offsets8 = StoreMemory.allocate(UInt8.self, capacity: n, in: memory)
            for i in 0..<n { offsets8[i] = UInt8(starts[i] - bases[i >> groupShift]) }
            return LevelStarts(flat: nil, bases: UnsafePointer(bases.baseAddress!), offsets: nil,
                               offsets8: UnsafePointer(offsets8.baseAddress!), count: n)
        }
        let offsets = StoreMemory.allocate(UInt16.self, capacity: n, in: memory)
        for i in 0..<n { offsets[i] = UInt16(starts[i] - bases[i >> groupShift]) }
        return LevelStarts(flat: nil, bases: UnsafePointer(bases.baseAddress!), offsets: UnsafePointer(offsets.baseAddress!),
                           offsets8: nil, count: n)
    }

    @usableFromInline init(flat: UnsafePointer<UInt32>?, bases: UnsafePointer<UInt32>?, offsets: UnsafePointer<UInt16>?,
                           offsets8: UnsafePointer<UInt8>?, count: Int) {
        self.flat = flat
        self.bases = bases
        self.offsets = offsets
        self.offsets8 = offsets8
        self.count = count
    }

    /// Two entries of zero: bitmap 0 is empty. For a block with no stored bitmaps (read with
    /// stride 0): one past its level's blocks, which only a tail's days after the base's reach.
    public static let empty: LevelStarts = {
        let zeros = UnsafeMutablePointer<UInt32>.allocate(capacity: 2)  // never freed: one for the process
        zeros.initialize(repeating: 0, count: 2)
        return LevelStarts(flat: UnsafePointer(zeros), bases: nil, offsets: nil, offsets8: nil, count: 2)
    }()

    /// The offsets' width in bits: 8 or 16, or 32 when flat (tests, diagnostics).
    public var offsetBits: Int { flat != nil ? 32 : offsets8 != nil ? 8 : 16 }

    /// Frees the buffers (heap only: a region's go with it).
    func release(in memory: StoreMemory?) {
        if let flat { StoreMemory.release(UnsafeMutablePointer(mutating: flat), in: memory) }
        if let bases { StoreMemory.release(UnsafeMutablePointer(mutating: bases), in: memory) }
        if let offsets { StoreMemory.release(UnsafeMutablePointer(mutating: offsets), in: memory) }
        if let offsets8 { StoreMemory.release(UnsafeMutablePointer(mutating: offsets8), in: memory) }
    }
}
