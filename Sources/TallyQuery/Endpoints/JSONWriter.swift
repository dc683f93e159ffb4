import TallyStorage

/// Writes JSON straight into one growing byte buffer: no tree of values, no `String` per id or
/// date (UUIDs and days are formatted in place). Commas are tracked with a small stack of "has
/// a member" flags, one per open object or array.
/// Measured against Foundation's `JSONEncoder` in `Benchmarks/JSONWriting`.
public struct JSONWriter: DocumentWriter {
    public private(set) var bytes: [UInt8] = []
    var hasMember: [Bool] = []

    public init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    @inline(__always) mutating func separate() {
        if let last = hasMember.last {
            if last { bytes.append(UInt8(ascii: ",")) } else { hasMember[hasMember.count - 1] = true }
        }
    }

    public mutating func beginObject() { valueStart(); bytes.append(UInt8(ascii: "{")); hasMember.append(false) }
    public mutating func endObject() { hasMember.removeLast(); bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { valueStart(); bytes.append(UInt8(ascii: "[")); hasMember.append(false) }
    public mutating func endArray() { hasMember.removeLast(); bytes.append(UInt8(ascii: "]")) }

    /// An object key; the next value written is its value (which must not separate again).
    public mutating func key(_ k: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        k.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        // The value follows the colon: suppress its separator.
        pendingValue = true
    }

    var pendingValue = false

    @inline(__always) mutating func valueStart() {
        if pendingValue { pendingValue = false } else { separate() }
    }

    public mutating func null() { valueStart(); bytes.append(contentsOf: "null".utf8) }
    public mutating func bool(_ b: Bool) { valueStart(); bytes.append(contentsOf: (b ? "true" : "false").utf8) }

    public mutating func int(_ v: Int) {
        valueStart()
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(ascii: "0") + UInt8(m % 10)
                m /= 10
                n += 1
            } while m > 0
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    /// A number with one decimal, given in tenths (`130` writes `13.0`).
    public mutating func tenths(_ t: Int) {
        valueStart()
        if t < 0 { bytes.append(UInt8(ascii: "-")) }
        let a = t.magnitude
        pendingValue = true
        int(Int(a / 10))
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(a % 10))
    }


    public mutating func string(_ s: String) {
        valueStart()
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [92, 92])
            case 10: bytes.append(contentsOf: [92, UInt8(ascii: "n")])
            case 13: bytes.append(contentsOf: [92, UInt8(ascii: "r")])
            case 9: bytes.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<32: bytes.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, Self.hex[Int(b >> 4)], Self.hex[Int(b & 15)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A UUID in lower case, formatted in place.
    public mutating func uuid(_ u: UUID128) {
        valueStart()
        bytes.append(UInt8(ascii: "\""))
        var n = 0
        for i in 0..<36 {
            if i == 8 || i == 13 || i == 18 || i == 23 { bytes.append(UInt8(ascii: "-")); continue }
            let word = n < 16 ? u.high : u.low
            bytes.append(Self.hex[Int((word >> UInt64(60 - 4 * (n % 16))) & 0xF)])
            n += 1
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// A date as `"YYYY-MM-DD"`, formatted in place.
    public mutating func day(_ d: Day) {
        valueStart()
        let (y, m, dd) = d.civil
        bytes.append(UInt8(ascii: "\""))
        for (v, w) in [(y, 4), (m, 2), (dd, 2)] {
            if w == 2 { bytes.append(UInt8(ascii: "-")) }
            var div = w == 4 ? 1000 : 10
            while div > 0 { bytes.append(UInt8(ascii: "0") + UInt8((v / div) % 10)); div /= 10 }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
