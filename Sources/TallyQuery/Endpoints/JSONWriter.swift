import TallyStorage

/// Writes JSON straight into one growing byte buffer: no tree of values, no `String` per id or
/// date (UUIDs and days are formatted in place).
///
/// Each token is written with one capacity check and raw stores (``OutputBytes``). Commas are
/// tracked with one "has a member" bit per open object or array, innermost lowest.
/// Measured against Foundation's `JSONEncoder` in `Benchmarks/JSONWriting`.
public struct JSONWriter: DocumentWriter {
    var out: OutputBytes
    /// Bit i: whether the container i levels out from the innermost has a member yet.
    var members: UInt64 = 0
    var depth = 0
    /// A key was just written: the next value must not separate again.
    var pendingValue = false

    /// Deepest nesting the writer tracks (Tally's documents nest at most six levels).
    public static let maxDepth = 64

    public init(capacity: Int = 1024) { out = OutputBytes(capacity: capacity) }

    /// The document written so far.
    public var bytes: [UInt8] { out.bytes }

    /// The document, taken without a copy; the writer is left empty.
    public mutating func take() -> [UInt8] { out.take() }

    /// Writes one key or value: its comma when one is needed, then what `body` writes (at most
    /// `n` bytes, from the pointer it gets; it returns how many).
    @inline(__always)
    mutating func token(atMost n: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        let comma = needsComma()
        out.write(atMost: n &+ 1) { p in
            guard comma else { return body(p) }
            p[0] = UInt8(ascii: ",")
            return 1 &+ body(p + 1)
        }
    }

    /// Whether a value (or key) starting now needs a comma before it; records the member.
    @inline(__always) mutating func needsComma() -> Bool {
        if pendingValue { pendingValue = false; return false }
        if depth == 0 { return false }
        if members & 1 != 0 { return true }
        members |= 1
        return false
    }

    @inline(__always) mutating func open(_ bracket: UInt8) {
        precondition(depth < Self.maxDepth, "JSONWriter: nesting deeper than \(Self.maxDepth)")
        token(atMost: 1) { p in p[0] = bracket; return 1 }
        members <<= 1
        depth &+= 1
    }

    @inline(__always) mutating func close(_ bracket: UInt8) {
        members >>= 1
        depth &-= 1
        out.append(bracket)
    }

    public mutating func beginObject() { open(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { open(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    /// The bytes of `text` as one value.
    @inline(__always) mutating func literal(_ text: StaticString) {
        let n = text.utf8CodeUnitCount
        token(atMost: n) { p in p.update(from: text.utf8Start, count: n); return n }
    }

    /// An object key; the next value written is its value (which must not separate again).
    public mutating func key(_ k: StaticString) {
        let n = k.utf8CodeUnitCount
        token(atMost: n &+ 3) { p in
            p[0] = UInt8(ascii: "\"")
            (p + 1).update(from: k.utf8Start, count: n)
            p[n &+ 1] = UInt8(ascii: "\"")
            p[n &+ 2] = UInt8(ascii: ":")
            return n &+ 3
        }
        pendingValue = true
    }

    public mutating func null() { literal("null") }
    public mutating func bool(_ b: Bool) { if b { literal("true") } else { literal("false") } }

    /// Writes the decimal digits of `m` at `p`; returns how many.
    @inline(__always) static func digits(_ m: UInt, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var n = 1
        var t = m
        while t >= 10 { t /= 10; n &+= 1 }
        var v = m
        var i = n
        repeat {
            i &-= 1
            p[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
            v /= 10
        } while i > 0
        return n
    }

    public mutating func int(_ v: Int) { token(atMost: 21) { Self.put(int: v, at: $0) } }

    /// Writes `v` in decimal at `p` (at most 21 bytes); returns how many.
    @inline(__always) static func put(int v: Int, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var i = 0
        if v < 0 { p[i] = UInt8(ascii: "-"); i &+= 1 }
        return i &+ digits(v.magnitude, at: p + i)
    }

    /// A floating-point number, shortest form that reads back the same; `null` when not finite
    /// (service figures, not query answers).
    public mutating func double(_ v: Double) {
        guard v.isFinite else { return null() }
        if v == v.rounded(), abs(v) < 1e15 { return int(Int(v)) }
        var s = v.description
        s.withUTF8 { u in token(atMost: u.count) { p in (p).update(from: u.baseAddress!, count: u.count); return u.count } }
    }

    /// A number with one decimal, given in tenths (`130` writes `13.0`).
    public mutating func tenths(_ t: Int) { token(atMost: 23) { Self.put(tenths: t, at: $0) } }

    /// Writes `t` tenths with one decimal at `p` (at most 23 bytes); returns how many.
    @inline(__always) static func put(tenths t: Int, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var i = 0
        if t < 0 { p[i] = UInt8(ascii: "-"); i &+= 1 }
        let a = t.magnitude
        i &+= digits(a / 10, at: p + i)
        p[i] = UInt8(ascii: ".")
        p[i &+ 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: a % 10)
        return i &+ 2
    }

    public mutating func string(_ s: String) {
        // A native string's bytes are read where they are; only another kind is copied first.
        if s.utf8.withContiguousStorageIfAvailable({ u in writeString(u) }) == nil {
            var s = s
            s.withUTF8 { writeString($0) }
        }
    }

    @inline(__always)
    mutating func writeString(_ u: UnsafeBufferPointer<UInt8>) {
        // Room for the worst case: every byte as a six-byte \u escape.
        token(atMost: 6 &* u.count &+ 2) { Self.put(string: u, at: $0) }
    }

    /// Writes the UTF-8 bytes `u` as a quoted JSON string at `p` (at most 6·n + 2 bytes);
    /// returns how many.
    @inline(__always) static func put(string u: UnsafeBufferPointer<UInt8>, at p: UnsafeMutablePointer<UInt8>) -> Int {
        let n = u.count
        p[0] = UInt8(ascii: "\"")
        var i = 1
        var plain = true
        for b in u where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { plain = false; break }
        if plain, n > 0 {
            (p + i).update(from: u.baseAddress!, count: n)
            i &+= n
        } else {
            i &+= escaped(u, at: p + i)
        }
        p[i] = UInt8(ascii: "\"")
        return i &+ 1
    }

    /// ``put(string:at:)`` of a `String` (its bytes read in place when it is native).
    @inline(__always) static func put(string s: String, at p: UnsafeMutablePointer<UInt8>) -> Int {
        if let n = s.utf8.withContiguousStorageIfAvailable({ put(string: $0, at: p) }) { return n }
        var s = s
        return s.withUTF8 { put(string: $0, at: p) }
    }

    /// Writes `text` as it is at `p`; returns how many bytes.
    @inline(__always) static func put(_ text: StaticString, at p: UnsafeMutablePointer<UInt8>) -> Int {
        let n = text.utf8CodeUnitCount
        p.update(from: text.utf8Start, count: n)
        return n
    }

    /// Writes `u` with JSON's escapes at `p`; returns how many bytes.
    static func escaped(_ u: UnsafeBufferPointer<UInt8>, at p: UnsafeMutablePointer<UInt8>) -> Int {
        let hex = hexDigits
        var i = 0
        func put(_ a: UInt8, _ b: UInt8) { p[i] = a; p[i &+ 1] = b; i &+= 2 }
        for b in u {
            switch b {
            case UInt8(ascii: "\""): put(92, 34)
            case UInt8(ascii: "\\"): put(92, 92)
            case 10: put(92, UInt8(ascii: "n"))
            case 13: put(92, UInt8(ascii: "r"))
            case 9: put(92, UInt8(ascii: "t"))
            case 0..<32:
                put(92, UInt8(ascii: "u"))
                put(48, 48)
                put(hex[Int(b >> 4)], hex[Int(b & 15)])
            default:
                p[i] = b
                i &+= 1
            }
        }
        return i
    }

    static var hexDigits: UnsafePointer<UInt8> { ("0123456789abcdef" as StaticString).utf8Start }

    /// The two lower-case hex digits of every byte, byte `b`'s at `2·b`.
    static var hexPairs: UnsafePointer<UInt8> { ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff" as StaticString).utf8Start }

    /// A UUID in lower case, formatted in place: two digits per byte from a table.
    public mutating func uuid(_ u: UUID128) { token(atMost: 38) { Self.put(uuid: u, at: $0) } }

    /// Writes `u` quoted, in lower case, at `p` (38 bytes); returns 38.
    @inline(__always) static func put(uuid u: UUID128, at p: UnsafeMutablePointer<UInt8>) -> Int {
        let pairs = hexPairs
        p[0] = UInt8(ascii: "\"")
        var i = 1
        // Byte k of the 16 (high word first); dashes after bytes 4, 6, 8 and 10.
        for k in 0..<16 {
            if k == 4 || k == 6 || k == 8 || k == 10 { p[i] = UInt8(ascii: "-"); i &+= 1 }
            let word = k < 8 ? u.high : u.low
            let byte = Int(truncatingIfNeeded: (word >> UInt64(56 &- 8 &* (k & 7))) & 0xFF)
            p[i] = pairs[2 &* byte]
            p[i &+ 1] = pairs[2 &* byte &+ 1]
            i &+= 2
        }
        p[i] = UInt8(ascii: "\"")
        return i &+ 1
    }

    /// A date as `"YYYY-MM-DD"`, formatted in place.
    public mutating func day(_ d: Day) {
        let (y, m, dd) = d.civil
        token(atMost: 12) { p in
            var i = 0
            @inline(__always) func put(_ v: Int, _ width: Int) {
                var v = v
                var k = width
                repeat {
                    k &-= 1
                    p[i &+ k] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
                    v /= 10
                } while k > 0
                i &+= width
            }
            p[i] = UInt8(ascii: "\"")
            i &+= 1
            put(y, 4)
            p[i] = UInt8(ascii: "-")
            i &+= 1
            put(m, 2)
            p[i] = UInt8(ascii: "-")
            i &+= 1
            put(dd, 2)
            p[i] = UInt8(ascii: "\"")
            return i &+ 1
        }
    }
}
