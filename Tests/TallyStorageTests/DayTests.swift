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

    /// Every byte value at every position of random UUIDs in mixed case: the parse succeeds
    /// exactly when the byte is a hex digit where a digit goes, or the dash where one goes, and
    /// then reads the digit's value.
    @Test func uuidsByteByByte() {
        var rng = SystemRandomNumberGenerator()
        func digit(_ c: UInt8) -> UInt64? {
            switch c {
            case 48...57: return UInt64(c - 48)
            case 65...70: return UInt64(c - 55)
            case 97...102: return UInt64(c - 87)
            default: return nil
            }
        }
        for _ in 0..<20 {
            let u = UUID128(high: rng.next(), low: rng.next())
            var text = Array(u.description.utf8)
            for i in text.indices where (97...102).contains(text[i]) && Bool.random(using: &rng) { text[i] -= 32 }  // upper case
            #expect(text.withUnsafeBufferPointer { UUID128(bytes: $0) } == u)
            for i in text.indices {
                let dash = i == 8 || i == 13 || i == 18 || i == 23
                // The digit at i is digit k of the 32 (from the left): bits 4·(31 − k) of the 128.
                let k = i - [8, 13, 18, 23].filter { $0 < i }.count
                let nibble = 4 * (31 - k)
                for c in UInt8(0)...UInt8(255) {
                    var t = text
                    t[i] = c
                    let got = t.withUnsafeBufferPointer { UUID128(bytes: $0) }
                    if dash {
                        #expect((got != nil) == (c == 45), "byte \(c) at \(i)")
                    } else if let d = digit(c) {
                        let bit = UInt64(nibble % 64)
                        var want = u
                        if nibble >= 64 { want.high = want.high & ~(0xF << bit) | d << bit } else { want.low = want.low & ~(0xF << bit) | d << bit }
                        #expect(got == want, "byte \(c) at \(i)")
                    } else {
                        #expect(got == nil, "byte \(c) at \(i)")
                    }
                }
            }
        }
    }
}
