/// Immutable storage for many roaring-style bitmaps over one user domain: container headers
/// plus two payload pools, allocated once. A store's per-app, per-level bitmaps all live in one
/// arena, so a bitmap costs 12 bytes of header per container and no allocation of its own.
public final class BitmapArena: @unchecked Sendable {
    public let domain: Int
    public let wordCount: Int
    public let headers: UnsafeMutableBufferPointer<ContainerHeader>
    public let pool16: UnsafeMutableBufferPointer<UInt16>
    public let pool64: UnsafeMutableBufferPointer<UInt64>
    /// The region the buffers are in (``StoreMemory``), or `nil` for the heap.
    let memory: StoreMemory?

    convenience init(domain: Int, headers: [ContainerHeader], pool16: [UInt16], pool64: [UInt64]) {
        let memory = StoreMemory.current
        self.init(domain: domain, adopting: frozenCopy(headers, in: memory), pool16: frozenCopy(pool16, in: memory),
                  pool64: frozenCopy(pool64, in: memory), memory: memory)
    }

    /// Takes buffers allocated from `memory` (``StoreMemory/allocate(_:capacity:in:)``) and frees them with itself.
    init(domain: Int, adopting headers: UnsafeMutableBufferPointer<ContainerHeader>, pool16: UnsafeMutableBufferPointer<UInt16>,
         pool64: UnsafeMutableBufferPointer<UInt64>, memory: StoreMemory?) {
        self.domain = domain
        wordCount = max(1, (domain + 63) >> 6)
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
                  pool64: UnsafePointer(pool64.baseAddress!), wordCount: wordCount)
    }

    @inlinable @inline(__always)
    func chunkWords(_ key: Int) -> Int { min(1024, wordCount &- (key &<< 10)) }

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

    @inline(__always)
    private func decode(_ b: BitmapRef, _ body: (UInt32) -> Void) {
        var i = Int(b.start)
        while i < Int(b.end) {
            let h = headers[i]
            let base = UInt32(h.key) &<< 16
            let off = Int(h.offset)
            switch h.kind {
            case .array:
                for j in 0..<Int(h.cardinality) { body(base | UInt32(pool16[off &+ j])) }
            case .bitset:
                for j in 0..<chunkWords(Int(h.key)) {
                    var w = pool64[off &+ j]
                    while w != 0 {
                        body(base | UInt32((j &<< 6) &+ w.trailingZeroBitCount))
                        w &= w &- 1
                    }
                }
            case .run:
                for r in 0..<Int(pool16[off]) {
                    let s = UInt32(pool16[off &+ 1 &+ 2 &* r]), l = UInt32(pool16[off &+ 2 &+ 2 &* r])
                    for v in s...(s &+ l) { body(base | v) }
                }
            }
            i &+= 1
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

    @inlinable
    public init(headers: UnsafePointer<ContainerHeader>, pool16: UnsafePointer<UInt16>, pool64: UnsafePointer<UInt64>,
                wordCount: Int) {
        self.headers = headers
        self.pool16 = pool16
        self.pool64 = pool64
        self.wordCount = wordCount
    }

    @inlinable @inline(__always)
    func chunkWords(_ key: Int) -> Int { min(1024, wordCount &- (key &<< 10)) }

    /// Number of values in `b`.
    /// - Complexity: O(containers).
    @inlinable
    public func cardinality(_ b: BitmapRef) -> Int {
        var n = 0
        var i = Int(b.start)
        while i < Int(b.end) { n &+= Int(headers[i].cardinality); i &+= 1 }
        return n
    }

    /// ORs every value of `b` into `set`.
    /// - Complexity: O(values) for arrays, O(words) for bitsets, O(runs + covered words) for runs.
    @inlinable
    public func formUnion(_ b: BitmapRef, into set: UserSet) {
        var i = Int(b.start)
        let words = set.words
        while i < Int(b.end) {
            let h = headers[i]
            let key = Int(h.key)
            set.touch(key)
            let off = Int(h.offset)
            switch h.kind {
            case .array:
                let base = UInt32(h.key) &<< 16
                let p = pool16 + off
                for j in 0..<Int(h.cardinality) {
                    let v = base | UInt32(p[j])
                    words[Int(v &>> 6)] |= 1 &<< UInt64(v & 63)
                }
            case .bitset:
                let dst = words + (key &<< 10)
                let src = pool64 + off
                for j in 0..<chunkWords(key) { dst[j] |= src[j] }
            case .run:
                let p = pool16 + off
                let base = key &<< 16
                for r in 0..<Int(p[0]) {
                    let s = base &+ Int(p[1 &+ 2 &* r]), e = s &+ Int(p[2 &+ 2 &* r])
                    UserSet.setRange(words, s, e)
                }
            }
            i &+= 1
        }
    }

    /// Number of values of `b` that are also in `set`.
    @inlinable
    public func intersectionCount(_ b: BitmapRef, _ set: UserSet) -> Int {
        var n = 0
        var i = Int(b.start)
        let words = set.words
        while i < Int(b.end) {
            let h = headers[i]
            let key = Int(h.key)
            let off = Int(h.offset)
            switch h.kind {
            case .array:
                let base = UInt32(h.key) &<< 16
                let p = pool16 + off
                for j in 0..<Int(h.cardinality) {
                    let v = base | UInt32(p[j])
                    n &+= Int((words[Int(v &>> 6)] &>> UInt64(v & 63)) & 1)
                }
            case .bitset:
                let dst = words + (key &<< 10)
                let src = pool64 + off
                for j in 0..<chunkWords(key) { n &+= (dst[j] & src[j]).nonzeroBitCount }
            case .run:
                let p = pool16 + off
                let base = key &<< 16
                for r in 0..<Int(p[0]) {
                    let s = base &+ Int(p[1 &+ 2 &* r]), e = s &+ Int(p[2 &+ 2 &* r])
                    n &+= UserSet.countRange(words, s, e)
                }
            }
            i &+= 1
        }
        return n
    }


    /// Whether `b` shares a value with `set`; stops at the first one.
    @inlinable
    public func intersects(_ b: BitmapRef, _ set: UserSet) -> Bool {
        var i = Int(b.start)
        let words = set.words
        while i < Int(b.end) {
            let h = headers[i]
            let key = Int(h.key)
            let off = Int(h.offset)
            switch h.kind {
            case .array:
                let base = UInt32(h.key) &<< 16
                let p = pool16 + off
                for j in 0..<Int(h.cardinality) {
                    let v = base | UInt32(p[j])
                    if (words[Int(v &>> 6)] &>> UInt64(v & 63)) & 1 != 0 { return true }
                }
            case .bitset:
                let dst = words + (key &<< 10)
                let src = pool64 + off
                for j in 0..<chunkWords(key) where dst[j] & src[j] != 0 { return true }
            case .run:
                let p = pool16 + off
                let base = key &<< 16
                for r in 0..<Int(p[0]) {
                    let s = base &+ Int(p[1 &+ 2 &* r]), e = s &+ Int(p[2 &+ 2 &* r])
                    if UserSet.countRange(words, s, e) > 0 { return true }
                }
            }
            i &+= 1
        }
        return false
    }

    /// Whether `b` holds `v`.
    /// - Complexity: O(containers + log(values in the container)).
    @inlinable
    public func contains(_ b: BitmapRef, _ v: UInt32) -> Bool {
        let key = UInt16(truncatingIfNeeded: v &>> 16), low = UInt16(truncatingIfNeeded: v)
        var i = Int(b.start)
        while i < Int(b.end) {
            let h = headers[i]
            if h.key < key { i &+= 1; continue }
            if h.key > key { return false }
            let off = Int(h.offset)
            switch h.kind {
            case .array:
                let p = pool16 + off
                var lo = 0, hi = Int(h.cardinality)
                while lo < hi {
                    let mid = (lo &+ hi) &>> 1
                    if p[mid] < low { lo = mid &+ 1 } else { hi = mid }
                }
                return lo < Int(h.cardinality) && p[lo] == low
            case .bitset:
                return (pool64[off &+ Int(low &>> 6)] &>> UInt64(low & 63)) & 1 != 0
            case .run:
                let p = pool16 + off
                for r in 0..<Int(p[0]) {
                    let s = p[1 &+ 2 &* r]
                    if low < s { return false }
                    if Int(low) <= Int(s) &+ Int(p[2 &+ 2 &* r]) { return true }
                }
                return false
            }
        }
        return false
    }
}
