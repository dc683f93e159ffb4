/// A mutable dense bitset over a client's user domain, reset in O(touched chunks).
///
/// Queries OR stored containers into it, intersect it with a filter, and count it. Only the
/// 16-bit chunks that were written are cleared again, so on a sparse million-user domain a
/// query costs what it touches, not the size of the domain.
public final class UserSet: @unchecked Sendable {
    /// Number of values the set can hold: `0..<domain`.
    public let domain: Int
    public let wordCount: Int
    public let words: UnsafeMutablePointer<UInt64>
    let chunkCount: Int
    // Raw storage: these are touched for every container a query ORs, and Swift arrays in a
    // class would add a uniqueness check and retain/release on each access.
    @usableFromInline let touchedList: UnsafeMutablePointer<Int>
    @usableFromInline var touchedCount = 0
    @usableFromInline let isTouched: UnsafeMutablePointer<Bool>

    /// The chunks written since the last ``clear()``, in the order first written.
    public var touched: UnsafeBufferPointer<Int> { UnsafeBufferPointer(start: touchedList, count: touchedCount) }

    /// - Complexity: O(domain / 64) to allocate and zero.
    public init(domain: Int) {
        self.domain = domain
        wordCount = max(1, (domain + 63) >> 6)
        words = .allocate(capacity: wordCount)
        words.initialize(repeating: 0, count: wordCount)
        chunkCount = (wordCount + 1023) >> 10
        isTouched = .allocate(capacity: chunkCount)
        isTouched.initialize(repeating: false, count: chunkCount)
        touchedList = .allocate(capacity: chunkCount)
    }

    deinit {
        words.deallocate()
        isTouched.deallocate()
        touchedList.deallocate()
    }

    /// Words that chunk `key` spans in this domain (1024 except maybe for the last chunk).
    @inlinable @inline(__always)
    public func wordsInChunk(_ key: Int) -> Int { min(1024, wordCount &- (key &<< 10)) }

    @usableFromInline @inline(__always) func touch(_ key: Int) {
        if !isTouched[key] {
            isTouched[key] = true
            touchedList[touchedCount] = key
            touchedCount &+= 1
        }
    }

    /// Marks every chunk touched; used before filling from an external dense source.
    public func touchAll() {
        for k in 0..<chunkCount { touch(k) }
    }

    /// Clears every touched chunk.
    /// - Complexity: O(touched chunks × 1024).
    public func clear() {
        for k in touched {
            let base = k &<< 10
            (words + base).update(repeating: 0, count: wordsInChunk(k))
            isTouched[k] = false
        }
        touchedCount = 0
    }

    @inlinable @inline(__always)
    public func insert(_ v: UInt32) {
        let i = Int(v &>> 6)
        words[i] |= 1 &<< UInt64(v & 63)
    }

    /// Inserts a value and marks its chunk touched.
    public func add(_ v: UInt32) {
        touch(Int(v &>> 16))
        insert(v)
    }

    /// Inserts `count` values (any order) and marks their chunks touched.
    public func insert(_ values: UnsafePointer<UInt32>, count: Int) {
        for i in 0..<count { add(values[i]) }
    }

    /// Whether any of `count` values is in the set.
    public func containsAny(_ values: UnsafePointer<UInt32>, count: Int) -> Bool {
        for i in 0..<count where contains(values[i]) { return true }
        return false
    }

    @inlinable @inline(__always)
    public func contains(_ v: UInt32) -> Bool {
        (words[Int(v &>> 6)] &>> UInt64(v & 63)) & 1 != 0
    }

    /// Number of values in the touched chunks.
    /// - Complexity: O(touched chunks × 1024).
    public var count: Int {
        var n = 0
        for k in touched {
            let p = words + (k &<< 10)
            for i in 0..<wordsInChunk(k) { n &+= p[i].nonzeroBitCount }
        }
        return n
    }

    /// Whether any touched chunk holds a value.
    public var isEmpty: Bool {
        for k in touched {
            let p = words + (k &<< 10)
            for i in 0..<wordsInChunk(k) where p[i] != 0 { return false }
        }
        return true
    }

    /// Intersects in place with `other` (same domain).
    public func formIntersection(_ other: UserSet) {
        for k in touched {
            let base = k &<< 10
            let p = words + base, q = other.words + base
            for i in 0..<wordsInChunk(k) { p[i] &= q[i] }
        }
    }

    /// Unions `other` (same domain) into this set.
    public func formUnion(_ other: UserSet) {
        for k in other.touched {
            touch(k)
            let base = k &<< 10
            let p = words + base, q = other.words + base
            for i in 0..<wordsInChunk(k) { p[i] |= q[i] }
        }
    }

    /// Number of values also in `other`.
    public func intersectionCount(_ other: UserSet) -> Int {
        var n = 0
        for k in touched {
            let base = k &<< 10
            let p = words + base, q = other.words + base
            for i in 0..<wordsInChunk(k) { n &+= (p[i] & q[i]).nonzeroBitCount }
        }
        return n
    }

    /// Unions the dense bitset `other` (this set's domain, `wordCount` words) into this set.
    public func formUnion(words other: UnsafePointer<UInt64>) {
        formUnion(words: other, count: wordCount)
    }

    /// ORs the dense bitset `other` of `count` words (a domain of its own) into this set: its
    /// first `min(count, wordCount)` words; values of `other` past this domain must be absent.
    public func formUnion(words other: UnsafePointer<UInt64>, count: Int) {
        touchAll()
        for i in 0..<min(count, wordCount) { words[i] |= other[i] }
    }

    /// Number of values also in the dense bitset `other`, reading only words `range` (where
    /// `other` has all its values). Words of untouched chunks are zero, so any range is exact.
    /// - Complexity: O(range.count).
    public func intersectionCount(words other: UnsafePointer<UInt64>, in range: Range<Int>) -> Int {
        var n = 0
        for i in range { n &+= (words[i] & other[i]).nonzeroBitCount }
        return n
    }

    /// How many of `values` are in the set (branch-free: a bit read per value).
    public func count(of values: [UInt32]) -> Int {
        var n = 0
        values.withUnsafeBufferPointer { v in
            for u in v { n &+= Int(truncatingIfNeeded: (words[Int(u &>> 6)] &>> UInt64(u & 63)) & 1) }
        }
        return n
    }

    /// Whether this set shares a value with the dense bitset `other` within words `range`
    /// (where `other` has all its values); stops at the first shared word.
    public func intersects(words other: UnsafePointer<UInt64>, in range: Range<Int>) -> Bool {
        for i in range where words[i] & other[i] != 0 { return true }
        return false
    }


    /// Whether the two sets share a value; stops at the first shared word.
    public func intersects(_ other: UserSet) -> Bool {
        for k in touched {
            let base = k &<< 10
            let p = words + base, q = other.words + base
            for i in 0..<wordsInChunk(k) where p[i] & q[i] != 0 { return true }
        }
        return false
    }

    /// Calls `body` with every value, ascending within each chunk, chunks in touch order.
    @inlinable
    public func forEach(_ body: (UInt32) -> Void) {
        for k in touched {
            let base = k &<< 10
            for i in 0..<wordsInChunk(k) {
                var w = words[base &+ i]
                while w != 0 {
                    let t = w.trailingZeroBitCount
                    body(UInt32(truncatingIfNeeded: ((base &+ i) &<< 6) &+ t))
                    w &= w &- 1
                }
            }
        }
    }

    /// The values in ascending order.
    public func sortedValues() -> [UInt32] {
        var out: [UInt32] = []
        for k in Array(touched).sorted() {
            let base = k &<< 10
            for i in 0..<wordsInChunk(k) {
                var w = words[base &+ i]
                while w != 0 {
                    out.append(UInt32(truncatingIfNeeded: ((base &+ i) &<< 6) &+ w.trailingZeroBitCount))
                    w &= w &- 1
                }
            }
        }
        return out
    }
}
