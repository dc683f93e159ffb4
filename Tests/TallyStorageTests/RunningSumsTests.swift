import Testing
@testable import TallyStorage

/// Running sums kept as bytes from 16-bit checkpoints (``UsageIndex/prefixOffsets8``) read back
/// every day's users and every range's user-days, and are kept exactly while every entity's sum
/// grows by at most 255 from its checkpoint: 255 user-days in a group's first 15 days keep bytes,
/// 256 do not (the 16th day starts the next checkpoint, so 255 more there change nothing).
@Suite struct RunningSumsTests {
    /// One app of `users` users over 40 days; `perDay[d]` users on day `d` (users 0 up).
    static func client(users: Int, perDay: [Int], bytes: Bool = true) -> ClientStore {
        var b = ClientStoreBuilder(info: ClientInfo(id: UUID128(high: 1, low: 1), name: "sums", timezone: "UTC", licensedSeats: nil))
        b.byteRunningSums = bytes
        for u in 0..<users {
            _ = b.addUser(UserInfo(id: UUID128(high: 2, low: UInt64(u)), email: "u\(u)@example.com", displayName: nil,
                                   isActive: true, role: nil, createdAt: nil))
        }
        _ = b.addApp(AppInfo(id: UUID128(high: 3, low: 0), catalogIndex: 0, isApproved: true, isFavorite: false,
                             category: nil, vendor: nil, isAI: false))
        let first = Day("2025-01-01")!
        for (d, n) in perDay.enumerated() {
            for u in 0..<n { b.addUsage(user: UInt32(u), app: 0, day: first.adding(d)) }
        }
        return b.build()
    }

    static func check(_ c: ClientStore, _ perDay: [Int], _ what: String) {
        let usage = c.usage!
        for e in [0, usage.entity(.all), usage.entity(.approved)] {
            for d in perDay.indices {
                #expect(usage.dayCardinality(entity: e, offset: d) == perDay[d], "\(what): entity \(e) day \(d)")
            }
            for lo in perDay.indices {
                for hi in lo..<perDay.count {
                    let range = DayRange(usage.firstDay.adding(lo), usage.firstDay.adding(hi))
                    #expect(usage.userDays(entity: e, range) == perDay[lo...hi].reduce(0, +), "\(what): entity \(e) \(lo)…\(hi)")
                }
            }
            #expect(usage.userDays(entity: usage.entity(.unapproved), DayRange(usage.firstDay, usage.newestDay)) == 0)
        }
    }

    @Test func bytesFromCheckpointsAtTheirEdge() {
        // Days 0–14 sum to 255 (then 256); day 15 has 255 more, day 16 starts the next group.
        for (extra, bytes) in [(0, true), (1, false)] {
            var perDay = [Int](repeating: 17, count: 40)
            for d in 0..<15 { perDay[d] = 17 }  // 15 × 17 = 255
            perDay[14] += extra
            perDay[15] = 255
            perDay[39] = 3
            let c = Self.client(users: 300, perDay: perDay)
            #expect(c.usage!.prefixOffsets8.isEmpty == !bytes, "\(255 + extra) user-days in a group's first 15 days")
            Self.check(c, perDay, "\(255 + extra)")
            let whole = Self.client(users: 300, perDay: perDay, bytes: false)
            #expect(whole.usage!.prefixOffsets8.isEmpty)
            Self.check(whole, perDay, "16-bit rows, \(255 + extra)")
            if bytes {
                // Checkpoints every 16 days (three for 41 sums) and a byte a sum, for each of the
                // client's entities.
                let e = c.usage!.entityCount
                #expect(c.usage!.prefixByDay16.count == 3 * e && c.usage!.prefixOffsets8.count == 41 * e)
            }
        }
    }
}
