import Testing
import TallyQuery
import TallyStorage

@Suite struct DerivedTests {
    @Test func changePctRoundsHalfAwayFromZero() {
        #expect(Derived.changePctTenths(value: 52, compare: 46) == 130)
        #expect(Derived.changePctTenths(value: 34, compare: 31) == 97)
        #expect(Derived.changePctTenths(value: 35, compare: 36) == -28)
        #expect(Derived.changePctTenths(value: 3, compare: 0) == nil)
        #expect(Derived.changePctTenths(value: 3, compare: nil) == nil)
        // 1/8 = 12.5% → exactly half a tenth: 0.0125 × 1000 = 12.5 tenths → 13 (away from zero).
        #expect(Derived.changePctTenths(value: 2025, compare: 2000) == 13)
        #expect(Derived.changePctTenths(value: 1975, compare: 2000) == -13)
        #expect(Derived.changePctTenths(value: 0, compare: 7) == -1000)
        // Exhaustive check against a rational computation.
        for v in 0...60 {
            for c in 1...60 {
                let n = (v - c) * 1000, twice = 2 * abs(n)
                let q = (twice + c) / (2 * c)
                #expect(Derived.changePctTenths(value: v, compare: c) == (n < 0 ? -q : q))
            }
        }
    }

    @Test func usageLevelIsDecidedExactly() {
        let t = UsageLevelThresholds()
        // 28 days = 4 weeks: heavy ⇔ user_days ≥ 12 per user; medium ⇔ ≥ 4.
        #expect(t.level(userDays: 12 * 52, users: 52, days: 28) == "heavy")
        #expect(t.level(userDays: 12 * 52 - 1, users: 52, days: 28) == "medium")
        #expect(t.level(userDays: 4 * 35, users: 35, days: 28) == "medium")
        #expect(t.level(userDays: 4 * 35 - 1, users: 35, days: 28) == "light")
        // 3 days/week over 7 days with 10 users: exactly 30 user-days is heavy (no float rounding).
        #expect(t.level(userDays: 30, users: 10, days: 7) == "heavy")
        #expect(t.level(userDays: 29, users: 10, days: 7) == "medium")
        let custom = UsageLevelThresholds(heavyTenths: 45, mediumTenths: 25)
        #expect(custom.level(userDays: 45, users: 10, days: 7) == "heavy")
        #expect(custom.level(userDays: 44, users: 10, days: 7) == "medium")
    }

    @Test func cursorsRoundTrip() {
        let u = UUID128(high: 0xA1B2, low: 7)
        for key in [PageKey(value: .int(42), id: u), PageKey(value: .name("Éclair|x"), id: u),
                    PageKey(value: .text(nil), id: UUID128(high: 0, low: 0)), PageKey(value: .day(.init(raw: 20000)), id: u)] {
            let token = Cursor.encode(key, fingerprint: 0xABC)
            let back = Cursor.decode(token)
            #expect(back?.key == key && back?.fingerprint == 0xABC)
        }
        #expect(Cursor.decode("not a cursor!") == nil)
    }
}
