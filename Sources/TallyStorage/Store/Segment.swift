/// One usage row inside a month segment.
public struct SegmentRow: Hashable, Sendable {
    public var app: UInt32
    public var user: UInt32
    /// Day of the month, 0-based.
    public var day: UInt8
    public init(app: UInt32, user: UInt32, day: UInt8) {
        self.app = app
        self.user = user
        self.day = day
    }
}

/// One calendar month of one client's usage rows, column by column, compressed.
///
/// Rows are sorted by (app, user, day) and deduplicated, then stored as three columns: app runs
/// (`app delta, pairs` per app), users (per (app, user) pair the gap to the previous user of the
/// app minus one, LEB128) and days (per pair a 32-bit mask of its days in the month). Sorted
/// dense ids become small gaps and a month of one user's use of one app becomes four bytes.
///
/// Then compressed (``Codec/deflate``): the day column's bytes are laid out in four planes
/// (every mask's first byte, then every mask's second, …), and the whole is deflated (zlib).
/// A plane holds the same week days of every pair, so weekly routines repeat in it; deflate's
/// Huffman codes then take the masks close to their entropy by day of the month. On scale L's
/// largest client a month took 0.437 bytes a row with LZ4 over interleaved masks, 0.359 with
/// deflate, 0.331 with deflate over planes: the masks' entropy by day (0.265) plus the deflated
/// user column (0.066) (docs/BENCHMARKS.md, "Segments in planes, deflated").
public struct Segment: Sendable {
    /// How a segment's bytes hold its encoded columns.
    public enum Codec: UInt8, Sendable {
        /// The encoded columns as they are (compression would not make them smaller).
        case stored = 0
        /// An LZ4 block of the encoded columns: segments of snapshots written before deflate.
        case lz4 = 1
        /// The encoded columns with the day column in four byte planes, deflated (zlib format).
        case deflate = 2
    }

    /// First day of the month.
    public let month: Day
    public let rowCount: Int
    /// Size of the encoded columns before compression.
    public let encodedByteCount: Int
    public let codec: Codec
    public let bytes: [UInt8]

    public init(month: Day, rowCount: Int, encodedByteCount: Int, codec: Codec, bytes: [UInt8]) {
        self.month = month
        self.rowCount = rowCount
        self.encodedByteCount = encodedByteCount
        self.codec = codec
        self.bytes = bytes
    }

    /// The zlib level of ``Codec/deflate``.
    static let deflateLevel: Int32 = 6

    /// Encodes rows sorted by (app, user, day), unique, days below 31.
    /// - Complexity: O(rows).
    public static func encode(month: Day, rows: UnsafeBufferPointer<SegmentRow>) -> Segment {
        // Pairs: (app, user, day mask).
        var pairs: [(app: UInt32, user: UInt32, mask: UInt32)] = []
        for r in rows {
            if let last = pairs.last, last.app == r.app, last.user == r.user {
                pairs[pairs.count - 1].mask |= 1 << UInt32(r.day)
            } else {
                pairs.append((r.app, r.user, 1 << UInt32(r.day)))
            }
        }
        var appColumn: [UInt8] = [], userColumn: [UInt8] = []
        var runs = 0
        var i = 0
        var prevApp: UInt32 = 0
        while i < pairs.count {
            let a = pairs[i].app
            var j = i
            while j < pairs.count && pairs[j].app == a { j += 1 }
            putVarint(&appColumn, UInt64(a - prevApp))
            putVarint(&appColumn, UInt64(j - i))
            prevApp = a
            runs += 1
            var prevUser: UInt32 = 0
            for k in i..<j {
                let u = pairs[k].user
                putVarint(&userColumn, UInt64(k == i ? u : u - prevUser - 1))
                prevUser = u
            }
            i = j
        }
        var out: [UInt8] = []
        putVarint(&out, UInt64(runs))
        putVarint(&out, UInt64(appColumn.count))
        putVarint(&out, UInt64(userColumn.count))
        out += appColumn
        out += userColumn
        // The day column in planes: byte b of mask k at plane b, place k.
        let dayStart = out.count, n = pairs.count
        out += repeatElement(0, count: 4 * n)
        for (k, p) in pairs.enumerated() {
            for b in 0..<4 { out[dayStart + b * n + k] = UInt8(truncatingIfNeeded: p.mask >> UInt32(8 * b)) }
        }
        if let compressed = out.withUnsafeBufferPointer({ Deflate.compress($0, level: deflateLevel) }) {
            return Segment(month: month, rowCount: rows.count, encodedByteCount: out.count, codec: .deflate, bytes: compressed)
        }
        // Stored as encoded: the day column back in place, mask by mask. An exact-size copy:
        // `out` grew by doubling.
        var stored = Array(out[..<dayStart])
        stored.reserveCapacity(out.count)
        for p in pairs { for b in 0..<4 { stored.append(UInt8(truncatingIfNeeded: p.mask >> UInt32(8 * b))) } }
        return Segment(month: month, rowCount: rows.count, encodedByteCount: out.count, codec: .stored, bytes: stored)
    }

    /// Decodes the rows, sorted by (app, user, day).
    /// - Complexity: O(rows).
    public func decode() -> [SegmentRow] {
        guard let raw = encoded(), let columns = Self.columns(raw) else { preconditionFailure("corrupt segment") }
        let runs = Int(columns.runs)
        var pos = columns.apps, userPos = columns.users, dayPos = columns.days
        var out: [SegmentRow] = []
        out.reserveCapacity(rowCount)
        var app: UInt32 = 0
        for _ in 0..<runs {
            app += UInt32(Segment.getVarint(raw, &pos))
            let pairs = Int(Segment.getVarint(raw, &pos))
            var user: UInt32 = 0
            for k in 0..<pairs {
                let g = UInt32(Segment.getVarint(raw, &userPos))
                user = k == 0 ? g : user + g + 1
                var m = UInt32(raw[dayPos]) | UInt32(raw[dayPos + 1]) << 8 | UInt32(raw[dayPos + 2]) << 16
                    | UInt32(raw[dayPos + 3]) << 24
                dayPos += 4
                while m != 0 {
                    out.append(SegmentRow(app: app, user: user, day: UInt8(m.trailingZeroBitCount)))
                    m &= m - 1
                }
            }
        }
        return out
    }

    /// The encoded columns, the day column mask by mask: the bytes as stored, or decompressed
    /// (and, for ``Codec/deflate``, the planes put back in place); `nil` when they are not
    /// `encodedByteCount` bytes or their columns do not leave a whole number of masks.
    func encoded() -> [UInt8]? {
        switch codec {
        case .stored:
            return bytes.count == encodedByteCount ? bytes : nil
        case .lz4:
            var raw = [UInt8](repeating: 0, count: encodedByteCount)
            let ok = bytes.withUnsafeBytes { src in raw.withUnsafeMutableBytes { LZ4Block.decompress(src, into: $0) } }
            return ok ? raw : nil
        case .deflate:
            var planes = [UInt8](repeating: 0, count: encodedByteCount)
            let ok = bytes.withUnsafeBytes { src in planes.withUnsafeMutableBytes { Deflate.decompress(src, into: $0) } }
            guard ok, let dayStart = Self.columns(planes)?.days, (planes.count - dayStart) % 4 == 0 else { return nil }
            let n = (planes.count - dayStart) / 4
            var raw = planes
            planes.withUnsafeBufferPointer { p in
                raw.withUnsafeMutableBufferPointer { r in
                    for k in 0..<n {
                        for b in 0..<4 { r[dayStart &+ 4 &* k &+ b] = p[dayStart &+ b &* n &+ k] }
                    }
                }
            }
            return raw
        }
    }

    /// Where the encoded columns are: the number of app runs, then where the app, user and day
    /// columns start (after the three sizes, one after another); `nil` when the sizes overrun `raw`.
    static func columns(_ raw: [UInt8]) -> (runs: UInt64, apps: Int, users: Int, days: Int)? {
        var pos = 0
        guard let runs = varint(raw, &pos), let appBytes = varint(raw, &pos), let userBytes = varint(raw, &pos),
              appBytes <= UInt64(raw.count), userBytes <= UInt64(raw.count),
              pos + Int(appBytes) + Int(userBytes) <= raw.count else { return nil }
        return (runs, pos, pos + Int(appBytes), pos + Int(appBytes) + Int(userBytes))
    }

    /// A LEB128 value at `pos` (moved past it), or `nil` when it runs past `end` (the end of
    /// `raw` if not given) or 64 bits.
    static func varint(_ raw: [UInt8], _ pos: inout Int, below end: Int? = nil) -> UInt64? {
        var v: UInt64 = 0, shift: UInt64 = 0
        let end = end ?? raw.count
        while pos < end && shift < 64 {
            let x = raw[pos]
            pos += 1
            v |= UInt64(x & 0x7F) << shift
            if x < 0x80 { return v }
            shift += 7
        }
        return nil
    }

    /// Why this segment cannot be decoded safely as a month of a client of `appCount` apps and
    /// `userCount` users whose days are `days` (a snapshot written by another build, or
    /// crafted), or `nil`: its bytes decompress to their stated size, its columns lie inside
    /// them and are used up exactly, every app and user is the client's, every day is in the
    /// month and in `days`, and it holds `rowCount` rows. ``decode()`` traps on what this
    /// refuses, and a merge or an append decodes a client's segments to rebuild it.
    /// - Complexity: O(rows); no row is materialized.
    public func problem(appCount: Int, userCount: Int, days: ClosedRange<Day>) -> String? {
        guard abs(Int(month.raw)) < 1 << 28, month.civil.day == 1 else { return "a segment's month does not start on its first day" }
        // FuzzSnapshot (2026-12-02): a crafted row count overflowed `24 * rowCount` (a trap).
        guard rowCount >= 0, rowCount <= Int(Int32.max), encodedByteCount >= 0,
              // LZ4 expands at most about 255×, deflate about 1,032×; the encoding takes at most 24
              // bytes a row plus its header.
              encodedByteCount <= max(1, bytes.count) * (codec == .deflate ? 1_032 : 256), encodedByteCount <= 24 * rowCount + 32 else {
            return "a segment's sizes are implausible"
        }
        guard let raw = encoded() else { return "a segment does not decompress, or is stored, at its stated size" }
        guard let columns = Self.columns(raw) else { return "a segment's columns overrun it" }
        func varint(_ p: inout Int, below end: Int) -> UInt64? { Self.varint(raw, &p, below: end) }
        let runs = columns.runs, userStart = columns.users, dayStart = columns.days
        var pos = columns.apps, userPos = userStart, dayPos = dayStart
        let (y, m, _) = month.civil
        let monthDays = Day.daysIn(year: y, month: m)
        var app: UInt64 = 0, rows = 0
        for _ in 0..<runs {
            guard let delta = varint(&pos, below: userStart), let pairs = varint(&pos, below: userStart) else {
                return "a segment's app column overruns it"
            }
            let (next, overflow) = app.addingReportingOverflow(delta)
            app = next
            guard !overflow, app < UInt64(appCount), pairs <= UInt64(raw.count) else { return "a segment names an app the client does not have" }
            var user: UInt64 = 0
            for k in 0..<Int(pairs) {
                guard let g = varint(&userPos, below: dayStart) else { return "a segment's user column overruns it" }
                user = k == 0 ? g : user &+ g &+ 1
                guard user < UInt64(userCount), g < UInt64(userCount) else { return "a segment names a user the client does not have" }
                guard dayPos + 4 <= raw.count else { return "a segment's day column overruns it" }
                let m = UInt32(raw[dayPos]) | UInt32(raw[dayPos + 1]) << 8 | UInt32(raw[dayPos + 2]) << 16 | UInt32(raw[dayPos + 3]) << 24
                dayPos += 4
                guard m != 0, m >> UInt32(monthDays) == 0 else { return "a segment has a pair without days, or a day past its month" }
                let first = month.adding(m.trailingZeroBitCount), last = month.adding(31 - m.leadingZeroBitCount)
                guard days.contains(first), days.contains(last) else { return "a segment has a day outside the client's days" }
                rows += m.nonzeroBitCount
            }
        }
        guard pos == userStart, userPos == dayStart, dayPos == raw.count else { return "a segment's columns are not used up exactly" }
        guard rows == rowCount else { return "a segment holds \(rows) rows, not the \(rowCount) it states" }
        return nil
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
