import TallyStorage

/// The derived numbers of SPEC §2, computed exactly in integers.
public enum Derived {
    /// `(value − compare) / compare × 100` in tenths, rounded half away from zero; `nil` when
    /// `compare` is `nil` or 0.
    public static func changePctTenths(value: Int, compare: Int?) -> Int? {
        guard let c = compare, c != 0 else { return nil }
        return roundedTenths(numerator: (value - c) * 1000, denominator: c)
    }

    /// `part / whole × 100` in tenths, rounded half away from zero; `nil` when `whole` is 0.
    public static func percentTenths(_ part: Int, of whole: Int) -> Int? {
        whole == 0 ? nil : roundedTenths(numerator: part * 1000, denominator: whole)
    }

    /// `n / d` rounded to the nearest integer, halves away from zero. Without intermediate
    /// products (`2 × d` overflowed for a client's licensed seats above `Int.max / 2`, which a
    /// dump or a snapshot may hold): the remainder rounds up when it is at least half of `d`.
    static func roundedTenths(numerator n: Int, denominator d: Int) -> Int {
        let sign = (n < 0) != (d < 0) ? -1 : 1
        let (q, r) = n.magnitude.quotientAndRemainder(dividingBy: d.magnitude)
        return sign * Int(q + (r >= d.magnitude - r ? 1 : 0))
    }
}

/// Usage level thresholds, in days per week; server settings (SPEC §2).
public struct UsageLevelThresholds: Sendable, Hashable {
    /// Tenths of a day per week: 30 = 3 days.
    public var heavyTenths: Int
    public var mediumTenths: Int

    public init(heavyTenths: Int = 30, mediumTenths: Int = 10) {
        self.heavyTenths = heavyTenths
        self.mediumTenths = mediumTenths
    }

    /// `heavy` ⇔ user_days / users / (days / 7) ≥ heavy, decided as 70·user_days ≥ heavyTenths·users·days.
    public func level(userDays: Int, users: Int, days: Int) -> String {
        if users == 0 || days == 0 { return "light" }
        if 70 * userDays >= heavyTenths * users * days { return "heavy" }
        if 70 * userDays >= mediumTenths * users * days { return "medium" }
        return "light"
    }
}
