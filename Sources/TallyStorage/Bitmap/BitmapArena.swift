/// Immutable storage for many roaring-style bitmaps over one user domain, allocated once. A
/// store's per-app, per-level bitmaps all live in one arena, so a bitmap costs no allocation of
/// its own. Two layouts:
///
/// - **Headers** (domains past 65,536 users, and snapshots of format 1): container headers (12
///   bytes each) plus two payload pools; a ``BitmapRef`` is a range of headers.
/// - **Headerless** (``headerless``; a domain of at most 65,536 users, which is one chunk, so
///   that a bitmap has at most one container): `pool16` alone, and a ``BitmapRef`` is the range
///   of its payload there, whose length says its kind. Fewer than `4·W + 2` entries (`W` the
///   domain's words): an array of its values, ascending. At least that many: a bitset — its
///   count in two entries (low half first), padding up to the next multiple of four entries
///   (8 bytes: the pool starts 16-byte aligned), then its `W` words. No run containers. At
///   scale M, headers were 2.72 of the store's 10.54 bytes a usage row, and 6.0 of 15.1 on
///   clients of 10k–100k rows (`tally load --bitmaps`, docs/BENCHMARKS.md).
///
///   **Packed arrays** (``packable``: headerless, at most 32,768 users, so that no value has its
///   top bit). A range shorter than `4·W + 2` entries whose first entry has its top bit set is
///   packed: that entry is `0x8000 | count`, the next the first value, then a byte per later
///   value (in address order), its difference from the one before, 1…255. A last odd byte is
///   padding. The builder packs an array whose differences all fit when that is shorter
///   (``BitmapArenaBuilder``): `2 + ⌈(n − 1) / 2⌉` entries against `n`.
public final class BitmapArena: @unchecked Sendable {
    public let domain: Int
    public let wordCount: Int
    /// Whether bitmaps are payload ranges of `pool16` with no headers (see the type's notes).
    public let headerless: Bool
    public let headers: UnsafeMutableBufferPointer<ContainerHeader>
    public let pool16: UnsafeMutableBufferPointer<UInt16>
    public let pool64: UnsafeMutableBufferPointer<UInt64>
    /// The region the buffers are in (``StoreMemory``), or `nil` for the heap.
    let memory: StoreMemory?

    /// The largest domain a headerless arena can have: one chunk.
    public static let headerlessMaxDomain = 1 << BitmapTuning.chunkBits
    /// The largest domain whose headerless arenas may hold packed arrays: no value has bit 15.
    public static let packableMaxDomain = 1 << 15

    /// Whether ranges may be packed arrays (see the type's notes).
    public var packable: Bool { Self.packable(headerless: headerless, wordCount: wordCount) }

    /// The one rule for ``packable``, by the domain's words: at most 32,768 users.
    @inlinable public static func packable(headerless: Bool, wordCount: Int) -> Bool {
        headerless && wordCount <= packableMaxDomain >> 6
    }

    convenience init(domain: Int, headerless: Bool, headers: [ContainerHeader], pool16: [UInt16], pool64: [UInt64]) {
        let memory = StoreMemory.current
        self.init(domain: domain, headerless: headerless, adopting: frozenCopy(headers, in: memory),
                  pool16: frozenCopy(pool16, in: memory), pool64: frozenCopy(pool64, in: memory), memory: memory)
    }

    /// Takes buffers allocated from `memory` (``StoreMemory/allocate(_:capacity:in:)``) and frees them with itself.
    init(domain: Int, headerless: Bool, adopting headers: UnsafeMutableBufferPointer<ContainerHeader>,
         pool16: UnsafeMutableBufferPointer<UInt16>, pool64: UnsafeMutableBufferPointer<UInt64>, memory: StoreMemory?) {
        precondition(!headerless || (domain <= Self.headerlessMaxDomain && headers.isEmpty && pool64.isEmpty
                                     && Int(bitPattern: pool16.baseAddress!) & 7 == 0), "a headerless arena's layout")
        self.domain = domain
        wordCount = max(1, (domain + 63) >> 6)
        self.headerless = headerless
        self.memory = memory
        self.headers = headers
        self.pool16 = pool16
        self.pool64 = pool64
    }

    deinit {
        release(headers, in: memory)
        release(pool16, in: memory)
        release(pool64, in: memory)
    }

    /// Bytes held by headers and pools.
    public var byteCount: Int {
        headers.count * MemoryLayout<ContainerHeader>.stride + pool16.count * 2 + pool64.count * 8
    }

    /// A pointer-only view for hot loops (no reference counting); valid while the arena lives.
    public var view: ArenaView {
        ArenaView(headers: UnsafePointer(headers.baseAddress!), pool16: UnsafePointer(pool16.baseAddress!),
                  pool64: UnsafePointer(pool64.baseAddress!), wordCount: wordCount, headerless: headerless)
    }

    /// Number of values in `b`.
    @inlinable public func cardinality(_ b: BitmapRef) -> Int { view.cardinality(b) }

    /// ORs every value of `b` into `set`.
    @inlinable public func formUnion(_ b: BitmapRef, into set: UserSet) { view.formUnion(b, into: set) }

    /// Number of values of `b` that are also in `set`.
    @inlinable public func intersectionCount(_ b: BitmapRef, _ set: UserSet) -> Int { view.intersectionCount(b, set) }

    /// Calls `body` with each value of `b`, ascending.
    public func forEach(_ b: BitmapRef, _ body: (UInt32) -> Void) { decode(b, body) }

    /// Appends the values of `b` to `out`, ascending: the decoding loop with the append inlined
    /// (no call per value).
    public func appendValues(of b: BitmapRef, to out: inout [UInt32]) {
        out.reserveCapacity(out.count + cardinality(b))
        decode(b) { out.append($0) }
    }

    /// The kinds of `b`'s containers, in order (tests, diagnostics).
    public func containerKinds(_ b: BitmapRef) -> [ContainerKind] {
        let v = view
        return (0..<v.containerCount(b)).map { v.slot(b, $0).kind }
    }

    @inline(__always)
    private func decode(_ b: BitmapRef, _ body: (UInt32) -> Void) {
        let v = view
        for k in 0..<v.containerCount(b) {
            let c = v.slot(b, k)
            let base = UInt32(c.key) &<< 16
            switch c.kind {
            case .array:
                for j in 0..<c.cardinality { body(base | UInt32(c.values[j])) }
            case .bitset:
                for j in 0..<v.chunkWords(c.key) {
                    var w = c.words[j]
                    while w != 0 {
                        body(base | UInt32((j &<< 6) &+ w.trailingZeroBitCount))
                        w &= w &- 1
                    }
                }
            case .run:
                for r in 0..<Int(c.values[0]) {
                    let s = UInt32(c.values[1 &+ 2 &* r]), l = UInt32(c.values[2 &+ 2 &* r])
                    for x in s...(s &+ l) { body(base | x) }
                }
            case .packed:
                ArenaView.forEachPacked(c.values, c.cardinality) { body(UInt32(truncatingIfNeeded: $0)) }
            }
        }
    }

    /// The values of `b`, ascending.
    public func values(_ b: BitmapRef) -> [UInt32] {
        var out: [UInt32] = []
        appendValues(of: b, to: &out)
        return out
    }
}

extension UserSet {
    /// Sets bits `s…e` (inclusive) in `words`.
    @inlinable @inline(__always)
    public static func setRange(_ words: UnsafeMutablePointer<UInt64>, _ s: Int, _ e: Int) {
        let ws = s &>> 6, we = e &>> 6
        let first = ~UInt64(0) &<< UInt64(s & 63)
        let last = ~UInt64(0) &>> UInt64(63 &- (e & 63))
        if ws == we {
            words[ws] |= first & last
            return
        }
        words[ws] |= first
        var w = ws &+ 1
        while w < we { words[w] = ~0; w &+= 1 }
        words[we] |= last
    }

    /// Counts set bits `s…e` (inclusive) in `words`.
    @inlinable @inline(__always)
    public static func countRange(_ words: UnsafeMutablePointer<UInt64>, _ s: Int, _ e: Int) -> Int {
        let ws = s &>> 6, we = e &>> 6
        let first = ~UInt64(0) &<< UInt64(s & 63)
        let last = ~UInt64(0) &>> UInt64(63 &- (e & 63))
        if ws == we { return (words[ws] & first & last).nonzeroBitCount }
        var n = (words[ws] & first).nonzeroBitCount &+ (words[we] & last).nonzeroBitCount
        var w = ws &+ 1
        while w < we { n &+= words[w].nonzeroBitCount; w &+= 1 }
        return n
    }
}

/// The container kernels over an arena's raw storage. Beside each operation that builds a
/// result sits its cardinality-only twin: COUNT DISTINCT rarely needs the union itself.
public struct ArenaView: @unchecked Sendable {
    public let headers: UnsafePointer<ContainerHeader>
    public let pool16: UnsafePointer<UInt16>
    public let pool64: UnsafePointer<UInt64>
    public let wordCount: Int
    /// The arena's layout (``BitmapArena/headerless``).
    public let headerless: Bool
    /// In a headerless arena, the fewest entries a bitset's range has (`4·W + 2`); an array's
    /// range is shorter.
    public let bitsetMin: Int
    /// Whether an array's range may be packed (``BitmapArena/packable``).
    public let packable: Bool

    @inlinable
    public init(headers: UnsafePointer<ContainerHeader>, pool16: UnsafePointer<UInt16>, pool64: UnsafePointer<UInt64>,
                wordCount: Int, headerless: Bool = false) {
        self.headers = headers
        self.pool16 = pool16
        self.pool64 = pool64
        self.wordCount = wordCount
        self.headerless = headerless
        bitsetMin = 4 &* wordCount &+ 2
        packable = BitmapArena.packable(headerless: headerless, wordCount: wordCount)
    }

    /// Whether the headerless range of `n` entries at `p`, shorter than a bitset's, is a packed
    /// array: its first entry has the top bit no value of a packable domain has.
    @inlinable @inline(__always)
    public func isPacked(_ p: UnsafePointer<UInt16>, _ n: Int) -> Bool { packable && n != 0 && p[0] & 0x8000 != 0 }

    /// Calls `body` with each value of the packed array at `p` (its range) of `n` values, ascending.
    /// The differences are all one byte, so the loads are independent of each other and only
    /// the running sum is carried: with escapes for wider differences (a branch and a pointer
    /// carried from value to value), or with values grouped by their high byte (a loop per
    /// group), unions on the 20,000-user client took up to ×1.9 as long as with plain arrays.
    @inlinable @inline(__always)
    public static func forEachPacked(_ p: UnsafePointer<UInt16>, _ n: Int, _ body: (Int) -> Void) {
        var v = Int(p[1])
        body(v)
        let q = UnsafeRawPointer(p + 2).assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i < n &- 1 {
            v &+= Int(q[i])
            body(v)
            i &+= 1
        }
    }

    @inlinable @inline(__always)
    public func chunkWords(_ key: Int) -> Int { min(1024, wordCount &- (key &<< 10)) }

    /// In a headerless arena, where the words of the bitset whose range starts at `start` begin:
    /// after its two count entries, at the next multiple of four entries (8 bytes).
    @inlinable @inline(__always)
    public static func bitsetWords(from start: Int) -> Int { (start &+ 5) & ~3 }

    /// Number of containers of `b`.
    @inlinable @inline(__always)
    public func containerCount(_ b: BitmapRef) -> Int {
        headerless ? (b.start == b.end ? 0 : 1) : Int(b.end &- b.start)
    }

    /// Container `k` of `b` (`k < containerCount(b)`).
    @inlinable @inline(__always)
    public func slot(_ b: BitmapRef, _ k: Int) -> ContainerSlot {
        if headerless {
            let s = Int(b.start), n = Int(b.end &- b.start)
            let p = pool16 + s
            if n < bitsetMin {
                if isPacked(p, n) {
                    return ContainerSlot(key: 0, kind: .packed, cardinality: Int(p[0] & 0x7FFF), values: p, words: pool64)
                }
                return ContainerSlot(key: 0, kind: .array, cardinality: n, values: p, words: pool64)
            }
            let words = UnsafeRawPointer(pool16 + Self.bitsetWords(from: s)).assumingMemoryBound(to: UInt64.self)
            return ContainerSlot(key: 0, kind: .bitset, cardinality: Int(p[0]) | Int(p[1]) &<< 16, values: p, words: words)
        }
        let h = headers[Int(b.start) &+ k]
        let off = Int(h.offset)
        return ContainerSlot(key: Int(h.key), kind: h.kind, cardinality: Int(h.cardinality), values: pool16 + off, words: pool64 + off)
    }

    /// Number of values in `b`.
    /// - Complexity: O(containers).
    @inlinable
    public func cardinality(_ b: BitmapRef) -> Int {
        if headerless {
            let n = Int(b.end &- b.start)
            let p = pool16 + Int(b.start)
            if n < bitsetMin {
                if isPacked(p, n) { return Int(p[0] & 0x7FFF) }
                return n
            }
            return Int(p[0]) | Int(p[1]) &<< 16
        }
        var n = 0
        var i = Int(b.start)
        while i < Int(b.end) { n &+= Int(headers[i].cardinality); i &+= 1 }
        return n
    }

    /// ORs every value of `b` into `set`.
    /// - Complexity: O(values) for arrays, O(words) for bitsets, O(runs + covered words) for runs.
    @inlinable
    public func formUnion(_ b: BitmapRef, into set: UserSet) {
        let words = set.words
        for k in 0..<containerCount(b) {
            let c = slot(b, k)
            set.touch(c.key)
            switch c.kind {
            case .array:
                let base = UInt32(c.key) &<< 16
                let p = c.values
                for j in 0..<c.cardinality {
                    let v = base | UInt32(p[j])
                    words[Int(v &>> 6)] |= 1 &<< UInt64(v & 63)
                }
            case .bitset:
                let dst = words + (c.key &<< 10)
                let src = c.words
                for j in 0..<chunkWords(c.key) { dst[j] |= src[j] }
            case .run:
                let p = c.values
                let base = c.key &<< 16
                for r in 0..<Int(p[0]) {
                    let s = base &+ Int(p[1 &+ 2 &* r]), e = s &+ Int(p[2 &+ 2 &* r])
                    UserSet.setRange(words, s, e)
                }
            case .packed:
                Self.forEachPacked(c.values, c.cardinality) { v in words[v &>> 6] |= 1 &<< UInt64(v & 63) }
            }
        }
    }

    /// Number of values of `b` that are also in `set`.
    @inlinable
    public func intersectionCount(_ b: BitmapRef, _ set: UserSet) -> Int {
        var n = 0
        let words = set.words
        for k in 0..<containerCount(b) {
            let c = slot(b, k)
            switch c.kind {
            case .array:
                let base = UInt32(c.key) &<< 16
                let p = c.values
                for j in 0..<c.cardinality {
                    let v = base | UInt32(p[j])
                    n &+= Int((words[Int(v &>> 6)] &>> UInt64(v & 63)) & 1)
                }
            case .bitset:
                let dst = words + (c.key &<< 10)
                let src = c.words
                for j in 0..<chunkWords(c.key) { n &+= (dst[j] & src[j]).nonzeroBitCount }
            case .run:
                let p = c.values
                let base = c.key &<< 16
                for r in 0..<Int(p[0]) {
                    let s = base &+ Int(p[1 &+ 2 &* r]), e = s &+ Int(p[2 &+ 2 &* r])
                    n &+= UserSet.countRange(words, s, e)
                }
            case .packed:
                Self.forEachPacked(c.values, c.cardinality) { v in n &+= Int((words[v &>> 6] &>> UInt64(v & 63)) & 1) }
            }
        }
        return n
    }

    /// Whether `b` shares a value with `set`; stops at the first one.
    @inlinable
    public func intersects(_ b: BitmapRef, _ set: UserSet) -> Bool {
        let words = set.words
        for k in 0..<containerCount(b) {
            let c = slot(b, k)
            switch c.kind {
            case .array:
                let base = UInt32(c.key) &<< 16
                let p = c.values
                for j in 0..<c.cardinality {
                    let v = base | UInt32(p[j])
                    if (words[Int(v &>> 6)] &>> UInt64(v & 63)) & 1 != 0 { return true }
                }
            case .bitset:
                let dst = words + (c.key &<< 10)
                let src = c.words
                for j in 0..<chunkWords(c.key) where dst[j] & src[j] != 0 { return true }
            case .run:
                let p = c.values
                let base = c.key &<< 16
                for r in 0..<Int(p[0]) {
                    let s = base &+ Int(p[1 &+ 2 &* r]), e = s &+ Int(p[2 &+ 2 &* r])
                    if UserSet.countRange(words, s, e) > 0 { return true }
                }
            case .packed:
                // Counted, not stopped at the first: the decoding loop stays branch-light, and a
                // packed array is short (fewer entries than a bitset's words × 4).
                var hits: UInt64 = 0
                Self.forEachPacked(c.values, c.cardinality) { v in hits |= words[v &>> 6] &>> UInt64(v & 63) }
                if hits & 1 != 0 { return true }
            }
        }
        return false
    }

    /// Whether `b` holds `v`.
    /// - Complexity: O(containers + log(values in the container)).
    @inlinable
    public func contains(_ b: BitmapRef, _ v: UInt32) -> Bool {
        let key = Int(v &>> 16), low = UInt16(truncatingIfNeeded: v)
        for k in 0..<containerCount(b) {
            let c = slot(b, k)
            if c.key < key { continue }
            if c.key > key { return false }
            switch c.kind {
            case .array:
                let p = c.values
                var lo = 0, hi = c.cardinality
                while lo < hi {
                    let mid = (lo &+ hi) &>> 1
                    if p[mid] < low { lo = mid &+ 1 } else { hi = mid }
                }
                return lo < c.cardinality && p[lo] == low
            case .bitset:
                return (c.words[Int(low &>> 6)] &>> UInt64(low & 63)) & 1 != 0
            case .run:
                let p = c.values
                for r in 0..<Int(p[0]) {
                    let s = p[1 &+ 2 &* r]
                    if low < s { return false }
                    if Int(low) <= Int(s) &+ Int(p[2 &+ 2 &* r]) { return true }
                }
                return false
            case .packed:
                var found = false
                Self.forEachPacked(c.values, c.cardinality) { x in found = found || x == Int(low) }
                return found
            }
        }
        return false
    }
}
