import Testing
import TallyGenerate
@testable import TallyStorage

/// Range tables as wide as their entity: in a generated client of 4,500 users, the entities
/// with fewer than 4,096 users over the whole history keep counts of 12 bits or fewer and the
/// others 13 bits, and every count of every table (apps and fixed classes, every range) equals the distinct
/// users of the client's raw rows over that range.
@Suite struct RangeTableWidthTests {
    @Test func everyTableCountsItsRawRowsAtItsOwnWidth() throws {
        var shape = SyntheticShape(users: 4_500, apps: 30, days: 40, seed: 17)
        shape.portfolio = 3
        let (_, builder) = SyntheticClient.make(shape)
        let client = builder.build()
        let usage = try #require(client.usage)
        let widths = usage.rangeCounts.tablesByBits
        #expect(widths[13] > 0 && widths[..<13].contains { $0 > 0 } && widths[14...].allSatisfy { $0 == 0 }, "tables by bits: \(widths)")

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

    /// AI apps' tables at a sixteenth of the rows only in clients of a million rows or more
    /// (``RangeCounts/listedMinClientRows``): in a small client an AI app under a row per entry
    /// has none; with the bar lowered the same app has one (so the check is not empty), and its
    /// every count equals its raw rows' distinct users.
    @Test func smallClientsKeepNoTablesForAIAppsUnderTheBusyBar() throws {
        var shape = SyntheticShape(users: 300, apps: 40, days: 60, seed: 23)
        shape.categories = 4  // a tenth of the apps in the AI category
        shape.portfolio = 5
        let (_, builder) = SyntheticClient.make(shape)
        var lowered = builder
        lowered.listedTablesMinRows = 0
        let client = builder.build(), other = lowered.build()
        let usage = try #require(client.usage), low = try #require(other.usage)
        #expect(usage.rowCount < RangeCounts.listedMinClientRows)
        let entries = RangeCounts.entries(dayCount: usage.dayCount, span: usage.rangeCounts.span)
        let rows = client.storedRows()
        var appRows = [Int](repeating: 0, count: usage.appCount)
        var byDay = [[Set<UInt32>]](repeating: [Set<UInt32>](repeating: [], count: usage.dayCount), count: usage.appCount)
        for i in rows.users.indices {
            let a = Int(rows.apps[i])
            appRows[a] += 1
            byDay[a][usage.firstDay.distance(to: Day(raw: rows.days[i]))].insert(rows.users[i])
        }
        let thin = client.apps.indices.filter { client.apps[$0].isAI && appRows[$0] < entries && appRows[$0] * RangeCounts.listedRowsDivisor >= entries }
        #expect(!thin.isEmpty, "AI apps under a row per entry but over a sixteenth: none in this shape")
        for a in thin {
            #expect(!usage.rangeCounts.has(entity: a), "AI app \(a) (\(appRows[a]) rows, \(entries) entries) has a table")
            #expect(low.rangeCounts.has(entity: a))
            for lo in 0..<usage.dayCount {
                var seen = Set<UInt32>()
                for hi in lo..<usage.dayCount {
                    seen.formUnion(byDay[a][hi])
                    if low.rangeCount(entity: a, lo, hi) != seen.count { Issue.record("app \(a) \(lo)…\(hi)"); return }
                }
            }
        }
    }
}
