/// A UUID held as 128 bits. Parsing accepts any case; formatting writes lower case (SPEC §1).
public struct UUID128: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses the 36-character `8-4-4-4-12` form, hex digits in any case.
    /// - Complexity: O(1).
    @inlinable
    public init?(bytes p: UnsafeBufferPointer<UInt8>) {
        guard p.count == 36, p[8] == 45, p[13] == 45, p[18] == 45, p[23] == 45 else { return nil }
        var hi: UInt64 = 0, lo: UInt64 = 0
        var n = 0
        for i in 0..<36 {
            if i == 8 || i == 13 || i == 18 || i == 23 { continue }
            let c = p[i]
            var v: UInt8
            if c >= 48 && c <= 57 { v = c &- 48 }
            else if c >= 97 && c <= 102 { v = c &- 87 }
            else if c >= 65 && c <= 70 { v = c &- 55 }
            else { return nil }
            if n < 16 { hi = hi << 4 | UInt64(v) } else { lo = lo << 4 | UInt64(v) }
            n += 1
        }
        high = hi
        low = lo
    }

    public init?(_ string: String) {
        var s = string
        guard let u = s.withUTF8({ UUID128(bytes: $0) }) else { return nil }
        self = u
    }

    public static func < (a: UUID128, b: UUID128) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// Lower-case canonical form.
    public var description: String {
        var out = [UInt8](repeating: 45, count: 36)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var n = 0
        for i in 0..<36 {
            if i == 8 || i == 13 || i == 18 || i == 23 { continue }
            let word = n < 16 ? high : low
            let shift = UInt64(60 - 4 * (n % 16))
            out[i] = hex[Int((word >> shift) & 0xF)]
            n += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
