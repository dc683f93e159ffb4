import Glibc

/// The activity dates a dump load accepts (`--date-range`, issue 15). Every per-day table of a
/// client spans its first to its last activity date, so one typo — a row dated 9999-12-31 —
/// would stretch them over eight thousand years (8.7 s and 2.7 GB to load the 4 MB sample, where
/// the clean sample takes 0.09 s and 40 MB). A row outside the window is refused with its file,
/// line and column, or skipped and counted in lenient mode.
public struct DateWindow: Sendable, Equatable, CustomStringConvertible {
    public var first: Day
    public var last: Day

    public init(first: Day, last: Day) {
        self.first = first
        self.last = last
    }

    /// 2000-01-01 to a year after today (UTC): no usage report of a SaaS app is older, and a
    /// dump made today holds nothing later than the clock skew of its sources.
    public static func standard(today: Day = .today) -> DateWindow {
        DateWindow(first: Day(year: 2000, month: 1, day: 1)!, last: today.adding(366))
    }

    /// `FIRST..LAST`, both `YYYY-MM-DD`, FIRST not after LAST.
    public init?(parsing text: String) {
        guard let dots = text.firstRange(of: ".."), let a = Day(String(text[..<dots.lowerBound])),
              let b = Day(String(text[dots.upperBound...])), a <= b else { return nil }
        self.init(first: a, last: b)
    }

    @inlinable public func contains(_ d: Day) -> Bool { d >= first && d <= last }

    public var description: String { "\(first)..\(last)" }
}

extension Day {
    /// Today in UTC.
    public static var today: Day { Day(raw: Int32(time(nil) / 86_400)) }
}
