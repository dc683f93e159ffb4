/// Appends bitmaps to growing pools, choosing for each container the smallest encoding, then
/// freezes them into a ``BitmapArena``.
public struct BitmapArenaBuilder {
    public let domain: Int
    let wordCount: Int
    var headers: [ContainerHeader] = []
    var pool16: [UInt16] = []
    var pool64: [UInt64] = []
    /// The layout (``BitmapArena/headerless``).
    public let headerless: Bool
    /// Whether bitmaps are packed where that is shorter (``BitmapArena``'s packed arrays).
    public let packs: Bool
    /// A bitmap's values while its encoding is chosen.
    var scratch16: [UInt16] = []
    /// Headerless: the fewest entries a bitset takes (``ArenaView/bitsetMin``); shorter is an array.
    var bitsetMin: Int { 4 * wordCount + 2 }

    /// - Parameter headerless: the layout; by default headerless when the domain allows it (tests
    ///   choose either).
    /// - Parameter packed: whether to pack arrays where the arena may hold them
    ///   (``BitmapArena/packable``); by default it does (tests choose either).
    public init(domain: Int, headerless: Bool? = nil, packed: Bool? = nil) {
        self.domain = domain
        wordCount = max(1, (domain + 63) >> 6)
        let allowed = domain <= BitmapArena.headerlessMaxDomain
        precondition(headerless != true || allowed, "a headerless arena holds one chunk")
        self.headerless = headerless ?? allowed
        packs = BitmapArena.packable(headerless: self.headerless, wordCount: wordCount) && packed != false
    }

    /// Where the next bitmap starts: headers appended so far, or, headerless, the 16-bit pool's length.
    public var position: Int { headerless ? pool16.count : headers.count }

    /// Headerless: appends one bitmap of `count` values, an array, a packed array or a bitset
    /// (whichever is shortest, ``BitmapArena``), `values(write)` writing them ascending through
    /// `write`.
    mutating func appendSingle(count: Int, _ values: (_ write: (UInt16) -> Void) -> Void) -> BitmapRef {
        let start = pool16.count
        guard count > 0 else { return BitmapRef(start: UInt32(start), end: UInt32(start)) }
        if packs && count >= 3 && (count < bitsetMin || wordCount <= BitmapTuning.packedInsteadOfBitsetMaxWords) {
            scratch16.removeAll(keepingCapacity: true)
            values { scratch16.append($0) }
            if !appendPacked(shorterThan: min(count, bitsetMin)) {
                let v = scratch16
                appendUnpacked(count: count) { write in for x in v { write(x) } }
            }
        } else {
            appendUnpacked(count: count, values)
        }
        return BitmapRef(start: UInt32(start), end: UInt32(pool16.count))
    }

    /// Headerless: appends one bitmap of `count > 0` values as an array or a bitset.
    mutating func appendUnpacked(count: Int, _ values: (_ write: (UInt16) -> Void) -> Void) {
        let start = pool16.count
        if count < bitsetMin {
            values { pool16.append($0) }
        } else {
            let at = ArenaView.bitsetWords(from: start)
            pool16.append(UInt16(truncatingIfNeeded: count))
            pool16.append(UInt16(truncatingIfNeeded: count >> 16))
            pool16.append(contentsOf: repeatElement(0, count: at + 4 * wordCount - pool16.count))
            pool16.withUnsafeMutableBufferPointer { p in
                values { v in p[at + Int(v >> 4)] |= 1 << (v & 15) }
            }
        }
    }

    func chunkWords(_ key: Int) -> Int { min(1024, wordCount - (key << 10)) }

    /// Appends `scratch16`'s values (ascending, at least three) packed if every difference fits
    /// a byte and that takes fewer than `limit` entries; returns whether it did.
    mutating func appendPacked(shorterThan limit: Int) -> Bool {
        let v = scratch16
        guard 2 + v.count / 2 < limit else { return false }  // 2 + ⌈(n − 1) / 2⌉
        for i in 1..<v.count where v[i] &- v[i - 1] > 255 { return false }
        pool16.append(0x8000 | UInt16(v.count))
        pool16.append(v[0])
        var i = 1
        while i < v.count {
            let lo = v[i] - v[i - 1], hi = i + 1 < v.count ? v[i + 1] - v[i] : 0
            pool16.append(lo | hi << 8)  // bytes in address order (little-endian)
            i += 2
        }
        return true
    }

    /// Appends the bitmap of `values`, which must be ascending, unique and below `domain`.
    /// - Complexity: O(values).
    public mutating func append(sorted values: UnsafeBufferPointer<UInt32>) -> BitmapRef {
        if headerless {
            precondition(values.last.map { Int($0) < domain } ?? true, "a value outside the domain")
            return appendSingle(count: values.count) { write in for v in values { write(UInt16(truncatingIfNeeded: v)) } }
        }
        let start = UInt32(headers.count)
        var i = 0
        let n = values.count
        while i < n {
            let key = values[i] >> 16
            var j = i
            var runs = 1
            while j + 1 < n && values[j + 1] >> 16 == key {
                if values[j + 1] != values[j] + 1 { runs += 1 }
                j += 1
            }
            let card = j - i + 1
            let words = chunkWords(Int(key))
            let arrayBytes = 2 * card, bitsetBytes = 8 * words, runBytes = 2 + 4 * runs
            if runBytes < arrayBytes && runBytes < bitsetBytes {
                let off = pool16.count
                pool16.append(UInt16(runs))
                var s = values[i]
                var prev = s
                var k = i + 1
                while k <= j {
                    if values[k] != prev + 1 {
                        pool16.append(UInt16(truncatingIfNeeded: s))
                        pool16.append(UInt16(prev - s))
                        s = values[k]
                    }
                    prev = values[k]
                    k += 1
                }
                pool16.append(UInt16(truncatingIfNeeded: s))
                pool16.append(UInt16(prev - s))
                headers.append(ContainerHeader(key: UInt16(key), kind: .run, cardinality: UInt32(card),
                                               offset: UInt32(off)))
            } else if bitsetBytes < arrayBytes {
                let off = pool64.count
                pool64.append(contentsOf: repeatElement(0, count: words))
                for k in i...j {
                    let low = Int(values[k] & 0xFFFF)
                    pool64[off + (low >> 6)] |= 1 << UInt64(low & 63)
                }
                headers.append(ContainerHeader(key: UInt16(key), kind: .bitset, cardinality: UInt32(card),
                                               offset: UInt32(off)))
            } else {
                let off = pool16.count
                for k in i...j { pool16.append(UInt16(truncatingIfNeeded: values[k])) }
                headers.append(ContainerHeader(key: UInt16(key), kind: .array, cardinality: UInt32(card),
                                               offset: UInt32(off)))
            }
            i = j + 1
        }
        return BitmapRef(start: start, end: UInt32(headers.count))
    }

    /// Appends the bitmap of `values` (ascending, unique).
    public mutating func append(sorted values: [UInt32]) -> BitmapRef {
        values.withUnsafeBufferPointer { append(sorted: $0) }
    }

    /// Appends the contents of `set`, then leaves `set` unchanged: the same containers as
    /// ``append(sorted:)`` of its values, chosen and written from the set's words (a bitset
    /// container is a copy of them). Through the sorted values, deriving the approved apps'
    /// category unions of the 20,000-user client (`CategoryClassUnions`) took 290 ms, 260 of them
    /// in appends; from the words it takes 57 ms (docs/BENCHMARKS.md).
    /// - Complexity: O(touched chunks × 1024 + containers' values).
    public mutating func append(_ set: UserSet, scratch: inout [UInt32]) -> BitmapRef {
        guard set.wordCount == wordCount else {
            // Another domain's set (not done by any caller): through its values, ascending.
            scratch = set.sortedValues()
            return scratch.withUnsafeBufferPointer { append(sorted: $0) }
        }
        if headerless {
            let w = set.words, W = wordCount
            var card = 0
            guard set.touched.count > 0 else { return BitmapRef(start: UInt32(pool16.count), end: UInt32(pool16.count)) }
            for i in 0..<W { card &+= w[i].nonzeroBitCount }
            return appendSingle(count: card) { write in
                for i in 0..<W {
                    var x = w[i]
                    while x != 0 {
                        write(UInt16(truncatingIfNeeded: (i << 6) | x.trailingZeroBitCount))
                        x &= x &- 1
                    }
                }
            }
        }
        let start = UInt32(headers.count)
        for k in Array(set.touched).sorted() {
            let words = chunkWords(k)
            let w = set.words + (k << 10)
            // Values, and runs: a run starts at each set bit whose lower neighbour is clear.
            var card = 0, runs = 0
            var carry: UInt64 = 0
            for i in 0..<words {
                let x = w[i]
                card &+= x.nonzeroBitCount
                runs &+= (x & ~((x << 1) | carry)).nonzeroBitCount
                carry = x >> 63
            }
            guard card > 0 else { continue }
            let arrayBytes = 2 * card, bitsetBytes = 8 * words, runBytes = 2 + 4 * runs
            let key = UInt16(k)
            if runBytes < arrayBytes && runBytes < bitsetBytes {
                let off = pool16.count
                pool16.append(UInt16(runs))
                // Walk the runs: the next set bit from `p`, then the next clear one.
                var p = 0
                let end = words << 6
                while p < end {
                    guard let s = Self.next(w, words, from: p, set: true) else { break }
                    let e = Self.next(w, words, from: s, set: false) ?? end
                    pool16.append(UInt16(truncatingIfNeeded: s))
                    pool16.append(UInt16(e - 1 - s))
                    p = e
                }
                headers.append(ContainerHeader(key: key, kind: .run, cardinality: UInt32(card), offset: UInt32(off)))
            } else if bitsetBytes < arrayBytes {
                let off = pool64.count
                pool64.append(contentsOf: UnsafeBufferPointer(start: w, count: words))
                headers.append(ContainerHeader(key: key, kind: .bitset, cardinality: UInt32(card), offset: UInt32(off)))
            } else {
                let off = pool16.count
                for i in 0..<words {
                    var x = w[i]
                    while x != 0 {
                        pool16.append(UInt16(truncatingIfNeeded: (i << 6) | x.trailingZeroBitCount))
                        x &= x &- 1
                    }
                }
                headers.append(ContainerHeader(key: key, kind: .array, cardinality: UInt32(card), offset: UInt32(off)))
            }
        }
        return BitmapRef(start: start, end: UInt32(headers.count))
    }

    /// The first bit position `≥ p` among `count` words at `w` that is set (`set`) or clear,
    /// or `nil` when there is none.
    @inline(__always)
    static func next(_ w: UnsafeMutablePointer<UInt64>, _ count: Int, from p: Int, set: Bool) -> Int? {
        var i = p >> 6
        guard i < count else { return nil }
        var x = (set ? w[i] : ~w[i]) & (~0 << UInt64(p & 63))
        while x == 0 {
            i += 1
            guard i < count else { return nil }
            x = set ? w[i] : ~w[i]
        }
        return (i << 6) | x.trailingZeroBitCount
    }

    /// Freezes everything appended into an immutable arena.
    public func finish() -> BitmapArena {
        if headerless {
            // 16-byte aligned in either home (a region's allocations, or the heap's), as the
            // bitsets' words need; checked by the arena.
            return BitmapArena(domain: domain, headerless: true, headers: [], pool16: pool16, pool64: [])
        }
        return BitmapArena(domain: domain, headerless: false, headers: headers, pool16: pool16, pool64: pool64)
    }
}
