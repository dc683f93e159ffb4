import CLZ4

/// One day of one client's usage rows, column by column, compressed.
///
/// Rows are sorted by (app, user) and deduplicated. The app column is run-length encoded
/// (`app delta, row count` per app); the user column holds, per app run, the first user and then
/// the gaps minus one between consecutive users, all as LEB128 varints. Sorted dense ids turn
/// into small gaps, which is what makes the columns compressible at all: LZ4 does nothing for
/// raw 32-bit ids. The encoded columns are then LZ4-compressed when that saves bytes.
public struct Segment: Sendable {
    public let day: Day
    public let rowCount: Int
    /// Size of the encoded columns before LZ4.
    public let encodedByteCount: Int
    public let isCompressed: Bool
    public let bytes: [UInt8]

    public init(day: Day, rowCount: Int, encodedByteCount: Int, isCompressed: Bool, bytes: [UInt8]) {
        self.day = day
        self.rowCount = rowCount
        self.encodedByteCount = encodedByteCount
        self.isCompressed = isCompressed
        self.bytes = bytes
    }

    /// Encodes rows given as ascending `(app << 32 | user)` keys, unique.
    /// - Complexity: O(rows).
    public static func encode(day: Day, keys: UnsafeBufferPointer<UInt64>) -> Segment {
        var out: [UInt8] = []
        out.reserveCapacity(keys.count * 2 + 16)
        // App column.
        var runs: [(app: UInt32, count: Int)] = []
        for k in keys {
            let a = UInt32(k >> 32)
            if let last = runs.last, last.app == a { runs[runs.count - 1].count += 1 } else { runs.append((a, 1)) }
        }
        putVarint(&out, UInt64(runs.count))
        var prevApp: UInt32 = 0
        for r in runs {
            putVarint(&out, UInt64(r.app - prevApp))
            putVarint(&out, UInt64(r.count))
            prevApp = r.app
        }
        // User column.
        var i = 0
        for r in runs {
            var prev = UInt32(truncatingIfNeeded: keys[i])
            putVarint(&out, UInt64(prev))
            for j in 1..<max(r.count, 1) where r.count > 1 {
                let u = UInt32(truncatingIfNeeded: keys[i + j])
                putVarint(&out, UInt64(u - prev - 1))
                prev = u
            }
            i += r.count
        }
        let bound = Int(LZ4_compressBound(Int32(out.count)))
        var compressed = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeBufferPointer { src in
            compressed.withUnsafeMutableBufferPointer { dst in
                src.withMemoryRebound(to: CChar.self) { s in
                    dst.withMemoryRebound(to: CChar.self) { d in
                        LZ4_compress_default(s.baseAddress, d.baseAddress, Int32(out.count), Int32(bound))
                    }
                }
            }
        }
        if n > 0 && Int(n) < out.count {
            compressed.removeSubrange(Int(n)...)
            return Segment(day: day, rowCount: keys.count, encodedByteCount: out.count, isCompressed: true,
                           bytes: compressed)
        }
        return Segment(day: day, rowCount: keys.count, encodedByteCount: out.count, isCompressed: false, bytes: out)
    }

    /// Decodes the rows as `(app << 32 | user)` keys, ascending.
    /// - Complexity: O(rows).
    public func decode() -> [UInt64] {
        var raw = bytes
        if isCompressed {
            raw = [UInt8](repeating: 0, count: encodedByteCount)
            let n = bytes.withUnsafeBufferPointer { src in
                raw.withUnsafeMutableBufferPointer { dst in
                    src.withMemoryRebound(to: CChar.self) { s in
                        dst.withMemoryRebound(to: CChar.self) { d in
                            LZ4_decompress_safe(s.baseAddress, d.baseAddress, Int32(bytes.count), Int32(encodedByteCount))
                        }
                    }
                }
            }
            precondition(Int(n) == encodedByteCount, "corrupt segment")
        }
        var pos = 0
        let runCount = Int(Segment.getVarint(raw, &pos))
        var runs: [(UInt32, Int)] = []
        var app: UInt32 = 0
        for _ in 0..<runCount {
            app += UInt32(Segment.getVarint(raw, &pos))
            runs.append((app, Int(Segment.getVarint(raw, &pos))))
        }
        var keys: [UInt64] = []
        keys.reserveCapacity(rowCount)
        for (a, count) in runs {
            var u = UInt32(Segment.getVarint(raw, &pos))
            keys.append(UInt64(a) << 32 | UInt64(u))
            for _ in 1..<max(count, 1) where count > 1 {
                u += UInt32(Segment.getVarint(raw, &pos)) + 1
                keys.append(UInt64(a) << 32 | UInt64(u))
            }
        }
        return keys
    }

    static func putVarint(_ out: inout [UInt8], _ v0: UInt64) {
        var v = v0
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func getVarint(_ b: [UInt8], _ pos: inout Int) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let x = b[pos]
            pos += 1
            v |= UInt64(x & 0x7F) << shift
            if x < 0x80 { return v }
            shift += 7
        }
    }
}
