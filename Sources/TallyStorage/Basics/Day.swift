/// A calendar date, stored as the number of days since 1970-01-01 (proleptic Gregorian).
///
/// Usage rows carry client-local dates with no time of day, so a plain day number is exact and
/// makes ranges, buckets and bitmap block arithmetic integer operations.
public struct Day: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: Int32

    @inlinable public init(raw: Int32) { self.raw = raw }

    /// Builds a day from a civil date; `nil` when the month or day is out of range.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...12).contains(month), day >= 1, day <= Day.daysIn(year: year, month: month) else { return nil }
        raw = Int32(Day.daysFromCivil(year, month, day))
    }

    /// Parses `YYYY-MM-DD` exactly (ten ASCII bytes).
    /// - Complexity: O(1).
    @inlinable
    public init?(iso p: UnsafeBufferPointer<UInt8>) {
        guard p.count == 10, p[4] == 45, p[7] == 45 else { return nil }
        var bad = false
        @inline(__always) func digits(_ from: Int, _ n: Int) -> Int {
            var v = 0
            for i in from..<(from &+ n) {
                let d = p[i] &- 48
                bad = bad || d > 9
                v = v &* 10 &+ Int(d)
            }
            return v
        }
        let y = digits(0, 4), m = digits(5, 2), d = digits(8, 2)
        if bad { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// Parses `YYYY-MM-DD`.
    public init?(_ string: String) {
        var s = string
        guard let d = s.withUTF8({ Day(iso: $0) }) else { return nil }
        self = d
    }

    public static func < (a: Day, b: Day) -> Bool { a.raw < b.raw }

    @inlinable public func adding(_ days: Int) -> Day { Day(raw: raw + Int32(days)) }
    @inlinable public func distance(to other: Day) -> Int { Int(other.raw) - Int(raw) }

    /// The civil (year, month, day).
    public var civil: (year: Int, month: Int, day: Int) { Day.civilFromDays(Int(raw)) }

    /// ISO weekday, 1 = Monday … 7 = Sunday.
    public var isoWeekday: Int {
        let r = (Int(raw) + 3) % 7  // 1970-01-01 was a Thursday
        return (r < 0 ? r + 7 : r) + 1
    }

    public var description: String {
        let c = civil
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))"
    }

    public static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

/// An inclusive range of days, `start ≤ end`.
public struct DayRange: Hashable, Sendable, CustomStringConvertible {
    public var start: Day
    public var end: Day

    public init(_ start: Day, _ end: Day) {
        precondition(start <= end, "DayRange start after end")
        self.start = start
        self.end = end
    }

    /// Number of calendar days, both ends included.
    public var length: Int { start.distance(to: end) + 1 }

    public func contains(_ d: Day) -> Bool { d >= start && d <= end }

    /// The overlap with `other`, or `nil` when they are disjoint.
    public func clamped(to other: DayRange) -> DayRange? {
        let s = max(start, other.start), e = min(end, other.end)
        return s <= e ? DayRange(s, e) : nil
    }

    public var description: String { "\(start)..\(end)" }
}
