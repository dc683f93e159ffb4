/// A UUID held as 128 bits. Parsing accepts any case; formatting writes lower case (SPEC §1).
public struct UUID128: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses the 36-character `8-4-4-4-12` form, hex digits in any case.
    /// - Complexity: O(1); branch-light, as every usage row has three of these.
    @inlinable
    public init?(bytes p: UnsafeBufferPointer<UInt8>) {
        guard p.count == 36, p[8] == 45, p[13] == 45, p[18] == 45, p[23] == 45 else { return nil }
        var bad: UInt8 = 0
        @inline(__always) func hex(_ from: Int, _ count: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in from..<(from &+ count) {
                let c = p[i]
                let d = c &- 48, l = (c | 0x20) &- 97
                let isDigit = d < 10, isLetter = l < 6
                bad |= (isDigit || isLetter) ? 0 : 1
                v = v &<< 4 | UInt64(isDigit ? d : l &+ 10)
            }
            return v
        }
        let hi = hex(0, 8) &<< 32 | hex(9, 4) &<< 16 | hex(14, 4)
        let lo = hex(19, 4) &<< 48 | hex(24, 12)
        if bad != 0 { return nil }
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
