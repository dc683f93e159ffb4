import Testing
import TallyStorage

@Suite struct UsageIndexTests {
    /// One app; on day d exactly user d is active. The union of the blocks covering a range must
    /// then be exactly the users lo…hi, whatever the level sizes.
    @Test(arguments: [[1, 2, 4, 8, 16, 32, 64, 128, 256], [1, 4, 16, 64, 256], [1, 8, 64], [1]])
    func blocksCoverExactlyTheRange(sizes: [Int]) throws {
        let days = 700
        var b = ClientStoreBuilder(info: ClientInfo(id: UUID128(high: 1, low: 1), name: "c", timezone: "UTC", licensedSeats: nil))
        b.levelSizes = sizes
        for u in 0..<days {
            _ = b.addUser(UserInfo(id: UUID128(high: 2, low: UInt64(u)), email: "\(u)", displayName: nil, isActive: true,
                                   role: nil, createdAt: nil))
        }
        _ = b.addApp(AppInfo(id: UUID128(high: 3, low: 0), catalogIndex: 0, isApproved: true, isFavorite: false,
                             category: nil, vendor: nil, isAI: false))
        let first = Day("2023-12-20")!
        for d in 0..<days { b.addUsage(user: UInt32(d), app: 0, day: first.adding(d)) }
        b.addUsage(user: 5, app: 0, day: first.adding(5))  // a duplicate counts once
        let index = try #require(b.build().usage)
        #expect(index.rowCount == days)
        let set = UserSet(domain: days)
        var state: UInt64 = 99
        for trial in 0..<400 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let lo = Int(state >> 40) % days
            let len = trial % 4 == 0 ? 366 : 1 + Int(state >> 20) % 366
            let range = DayRange(first.adding(lo - 3), first.adding(lo + len - 1))
            set.clear()
            let blocks = index.blocks(range)
            for (k, blk) in blocks {
                index.levels[k].formUnion(index.bitmap(entity: 0, level: k, block: blk), into: set)
            }
            let hi = min(days - 1, lo + len - 1)
            #expect(set.sortedValues() == (0...hi).filter { $0 >= lo - 3 }.map(UInt32.init))
            #expect(index.userDays(entity: 0, range) == hi - max(0, lo - 3) + 1)
            // O(log n) blocks: at most (ratio − 1) per level on each side, plus one.
            if sizes.count > 1 {
                let ratio = sizes[1] / sizes[0]
                #expect(blocks.count <= 2 * (ratio - 1) * sizes.count + 1)
            } else {
                #expect(blocks.count == hi - max(0, lo - 3) + 1)
            }
        }
    }
}
