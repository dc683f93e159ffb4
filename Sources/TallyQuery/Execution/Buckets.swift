import TallyStorage

extension Granularity {
    /// The calendar bucket containing `d`.
    public func bucket(containing d: Day) -> DayRange {
        let (y, m, _) = d.civil
        switch self {
        case .daily:
            return DayRange(d, d)
        case .weekly:
            let start = d.adding(-(d.isoWeekday - 1))
            return DayRange(start, start.adding(6))
        case .monthly:
            let s = Day(year: y, month: m, day: 1)!
            return DayRange(s, Day(year: y, month: m, day: Day.daysIn(year: y, month: m))!)
        case .quarterly:
            let qm = (m - 1) / 3 * 3 + 1
            let s = Day(year: y, month: qm, day: 1)!
            return DayRange(s, Day(year: y, month: qm + 2, day: Day.daysIn(year: y, month: qm + 2))!)
        }
    }

    /// Every calendar bucket that overlaps `range`, in order, each with its part inside the range.
    public func buckets(_ range: DayRange) -> [(calendar: DayRange, clipped: DayRange)] {
        var out: [(DayRange, DayRange)] = []
        var d = range.start
        while d <= range.end {
            let cal = bucket(containing: d)
            out.append((cal, cal.clamped(to: range)!))
            d = cal.end.adding(1)
        }
        return out
    }
}
