import Testing
@testable import TallyStorage

/// Running sums kept as 16-bit checkpoints every 16 days, the days between read from the day
/// bitmaps (``UsageIndex/sumsFromDays``), against the rows counted by hand: every day's users,
/// every range's user-days, which apps are active over every range, and an app's first and last
/// active day in it. The days hold no users (an empty bitmap), a few (arrays or packed ones) or
/// most of the client's 300 (bitsets); 45 days, so that sums are read forward from a checkpoint,
/// back from the next one, and forward past the last checkpoint with none after it. The same
/// client with every day's sum kept reads the same.
@Suite struct RunningSumsTests {
    static let days = 45, users = 300

    /// Two apps: app 0 used on day `d` by users `0..<perDay[d]`, app 1 by user 299 on `rare` days.
    static func client(perDay: [Int], rare: Set<Int>, checkpoints: Bool) -> ClientStore {
        var b = ClientStoreBuilder(info: ClientInfo(id: UUID128(high: 1, low: 1), name: "sums", timezone: "UTC", licensedSeats: nil))
        b.checkpointRunningSums = checkpoints
        for u in 0..<users {
            _ = b.addUser(UserInfo(id: UUID128(high: 2, low: UInt64(u)), email: "u\(u)@example.com", displayName: nil,
                                   isActive: true, role: nil, createdAt: nil))
        }
        for a in 0..<2 {
            _ = b.addApp(AppInfo(id: UUID128(high: 3, low: UInt64(a)), catalogIndex: Int32(a), isApproved: a == 0, isFavorite: false,
                                 category: nil, vendor: nil, isAI: false))
        }
        let first = Day("2025-01-01")!
        for (d, n) in perDay.enumerated() {
            for u in 0..<n { b.addUsage(user: UInt32(u), app: 0, day: first.adding(d)) }
            if rare.contains(d) { b.addUsage(user: UInt32(users - 1), app: 1, day: first.adding(d)) }
        }
        return b.build()
    }

    @Test func checkpointsAndTheDayBitmapsBetween() {
        let pattern = [0, 1, 3, 17, 250, 0, 120, 40, 299, 2]
        // The first and last days hold rows, so that they are the client's.
        let perDay = (0..<Self.days).map { d in d == 0 ? 3 : d == Self.days - 1 ? 5 : pattern[(d * 7 + d / 10) % pattern.count] }
        let rare: Set<Int> = [5, 20, 29, 33, 41]
        // Per entity and day, the users by hand: app 0, app 1, every app, approved, unapproved.
        let app0 = perDay, app1 = (0..<Self.days).map { rare.contains($0) ? 1 : 0 }
        let all = (0..<Self.days).map { app0[$0] + app1[$0] }  // user 299 is never among app 0's
        for checkpoints in [true, false] {
            let c = Self.client(perDay: perDay, rare: rare, checkpoints: checkpoints)
            let usage = c.usage!
            let what = checkpoints ? "checkpoints" : "every day's sums"
            #expect(usage.sumsFromDays == checkpoints)
            // Three checkpoint rows (sums before days 0, 16 and 32) or 46, for each entity.
            #expect(usage.prefixByDay16.count == (checkpoints ? 3 : Self.days + 1) * usage.entityCount, "\(what)")
            let expected: [(Int, [Int])] = [(0, app0), (1, app1), (usage.entity(.all), all), (usage.entity(.approved), app0),
                                             (usage.entity(.unapproved), app1)]
            for (e, counts) in expected {
                for d in 0..<Self.days {
                    #expect(usage.dayCardinality(entity: e, offset: d) == counts[d], "\(what): entity \(e) day \(d)")
                }
                for lo in 0..<Self.days {
                    for hi in lo..<Self.days {
                        let range = DayRange(usage.firstDay.adding(lo), usage.firstDay.adding(hi))
                        let sum = counts[lo...hi].reduce(0, +)
                        #expect(usage.userDays(entity: e, range) == sum, "\(what): entity \(e) \(lo)…\(hi)")
                        let firstActive = (lo...hi).first { counts[$0] > 0 }, lastActive = (lo...hi).last { counts[$0] > 0 }
                        #expect(usage.firstActiveDay(entity: e, range) == firstActive.map { usage.firstDay.adding($0) })
                        #expect(usage.lastActiveDay(entity: e, range) == lastActive.map { usage.firstDay.adding($0) })
                    }
                }
            }
            var active = [Bool](repeating: false, count: usage.appCount)
            for lo in 0..<Self.days {
                for hi in lo..<Self.days {
                    active.withUnsafeMutableBufferPointer { usage.activeApps(lo, hi, into: $0.baseAddress!) }
                    #expect(active == [app0[lo...hi].contains { $0 > 0 }, app1[lo...hi].contains { $0 > 0 }], "\(what): \(lo)…\(hi)")
                }
            }
        }
    }
}
