import Testing
import TallyStorage

@Suite struct DayTests {
    @Test func civilRoundTripAcrossFourCenturies() {
        var d = Day(year: 1900, month: 1, day: 1)!
        var (y, m, dd) = (1900, 1, 1)
        while y < 2300 {
            #expect(d.civil == (y, m, dd))
            #expect(Day(d.description) == d)
            d = d.adding(1)
            dd += 1
            if dd > Day.daysIn(year: y, month: m) { dd = 1; m += 1 }
            if m > 12 { m = 1; y += 1 }
        }
    }

    @Test func parsing() {
        #expect(Day("2024-02-29") != nil)
        #expect(Day("2025-02-29") == nil)
        #expect(Day("2100-02-29") == nil && Day("2000-02-29") != nil)
        #expect(Day("2025-13-01") == nil && Day("2025-00-10") == nil && Day("2025-01-32") == nil)
        #expect(Day("20250101") == nil && Day("2025-1-01") == nil && Day("2025/01/01") == nil)
        #expect(Day("1970-01-01")?.raw == 0 && Day("1970-01-01")?.isoWeekday == 4)
        #expect(Day("2026-03-02")?.isoWeekday == 1)
    }

    @Test func uuids() {
        let u = UUID128("A1B2C3D4-0001-4000-8000-00000000000F")
        #expect(u?.description == "a1b2c3d4-0001-4000-8000-00000000000f")
        #expect(UUID128("a1b2c3d4-0001-4000-8000-00000000000g") == nil)
        #expect(UUID128("a1b2c3d4000140008000000000000000") == nil)
        #expect(UUID128("a1b2c3d4-0001-4000-8000-00000000000") == nil)
    }
}
