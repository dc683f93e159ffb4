import Testing
import TallyGenerate
@testable import TallyStorage

/// Range tables as wide as their entity: in a generated client of 4,500 users, the entities
/// with fewer than 4,096 users over the whole history keep 12-bit counts and the others 16-bit,
/// and every count of every table (apps and fixed classes, every range) equals the distinct
/// users of the client's raw rows over that range.
@Suite struct RangeTableWidthTests {
    @Test func everyTableCountsItsRawRowsAtItsOwnWidth() throws {
        var shape = SyntheticShape(users: 4_500, apps: 30, days: 40, seed: 17)
        shape.portfolio = 3
        let (_, builder) = SyntheticClient.make(shape)
        let client = builder.build()
        let usage = try #require(client.usage)
        let widths = usage.rangeCounts.tablesByWidth
        #expect(widths.twelve > 0 && widths.sixteen > 0 && widths.thirtyTwo == 0,
                "tables of 12, 16 and 32 bits: \(widths.twelve), \(widths.sixteen), \(widths.thirtyTwo)")

        // Per entity (apps, then the fixed classes) and day, its users, from the raw rows.
        let rows = client.storedRows()
        let classes = AppClass.allCases
        let entities = usage.appCount + classes.count
        var byDay = [[Set<UInt32>]](repeating: [Set<UInt32>](repeating: [], count: usage.dayCount), count: entities)
        for i in rows.users.indices {
            let d = usage.firstDay.distance(to: Day(raw: rows.days[i])), a = Int(rows.apps[i])
            byDay[a][d].insert(rows.users[i])
            for c in classes where c.contains(client.apps[a]) { byDay[usage.appCount + c.rawValue][d].insert(rows.users[i]) }
        }
        var checked = 0, wide = 0
        for e in 0..<entities where usage.rangeCounts.has(entity: e) {
            var lifetime = Set<UInt32>()
            for d in byDay[e] { lifetime.formUnion(d) }
            if lifetime.count >= 4_096 { wide += 1 }
            for lo in 0..<usage.dayCount {
                var seen = Set<UInt32>()
                for hi in lo..<usage.dayCount {
                    seen.formUnion(byDay[e][hi])
                    let got = usage.rangeCount(entity: e, lo, hi)
                    if got != seen.count {
                        Issue.record("entity \(e) (\(lifetime.count) users) over \(lo)…\(hi): \(String(describing: got)) against \(seen.count)")
                        return
                    }
                }
            }
            checked += 1
        }
        // Both sides of 4,096 occur among the entities checked.
        #expect(wide > 0 && checked > wide, "\(checked) tables checked, \(wide) of entities with 4,096 users or more")
    }
}
