import Testing
@testable import TallyQuery
@testable import TallyStorage
import TallyTestSupport

/// A client merged (or rebuilt) with more rows is served with the values its base had derived on
/// first use, made again for the new base (``DerivedSlot/warm(from:client:)``, called by the
/// writer's merges and rebuilds): per-category unions of a class, user days of a class or a
/// category, pair recency. Each is there before any query, equals the value derived from scratch
/// from the new base, and the queries that read them answer as the brute-force reference.
@Suite struct MergeWarmTests {
    @Test(arguments: [UInt64(4), 8])
    func aMergedClientHasWhatItsBaseHadDerived(seed: UInt64) throws {
        var (dump, store) = try Fixtures.randomStore(seed: seed, allClasses: true)
        var r = SeededRandom(seed: seed &* 7)
        var merged: [ClientStore] = []
        var checked = 0
        for c in store.clients {
            guard let index = c.usage else { continue }
            // Derive on the base: every class's unions and user days, two categories' user days,
            // and pair recency of a class and a category (variants as the query layer numbers them).
            let classes = AppClass.allCases.count
            var variants: [(type: String, variant: Int)] = []
            for cls in AppClass.allCases where r.chance(0.7) {
                _ = CategoryClassUnions.of(c, index, cls)
                _ = UserDays.of(c, index, cls)
                variants += [("unions", cls.rawValue), ("days", cls.rawValue)]
            }
            let categories = Set(c.apps.compactMap { index.entity(category: $0.category) })
            for e in categories.sorted().prefix(2) {
                let v = classes + e
                _ = UserDays.of(c, index, categoryEntity: e, apps: UserDays.apps(ofVariant: v, c, index))
                _ = c.baseDerived.get(variant: v) { PairRecency(c, index, keeps: UserDays.apps(ofVariant: v, c, index)) }
                variants += [("days", v), ("recency", v)]
            }
            let v = AppClass.approved.rawValue
            _ = c.baseDerived.get(variant: v) { PairRecency(c, index, keeps: UserDays.apps(ofVariant: v, c, index)) }
            variants.append(("recency", v))
            // Newest-day rows into a tail, then the client rebuilt whole with them, as a merge does.
            let day = index.newestDay
            var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
            for _ in 0..<Int.random(in: 5...60, using: &r) {
                let u = UInt32.random(in: 0..<UInt32(c.users.count), using: &r), a = UInt32.random(in: 0..<UInt32(c.apps.count), using: &r)
                us.append(u)
                ap.append(a)
                ds.append(day.raw)
                dump.usage.append(RandomDump.Usage(client: c.info.id, user: c.users[Int(u)].id, app: c.apps[Int(a)].id, day: day))
            }
            let next = c.appending(users: us, apps: ap, days: ds, tailMinRows: 0)
            let m = next.merged(extrasMinRows: 0)
            #expect(m.baseDerived.warm(from: next.baseDerived, client: m) == Set(variants.map { "\($0.type) \($0.variant)" }).count)
            #expect(m.baseDerived.warm(from: next.baseDerived, client: m) == 0, "values made are not made twice")
            let mi = try #require(m.usage)
            for (type, v) in variants {
                switch type {
                case "unions":
                    let warm = try #require(m.baseDerived.existing(CategoryClassUnions.self, variant: v))
                    Self.expectSame(warm, CategoryClassUnions(m, mi, AppClass(rawValue: v)!), mi, users: m.users.count, "\(c.info.name) unions \(v)")
                case "days":
                    let warm = try #require(m.baseDerived.existing(UserDays.self, variant: v))
                    let fresh = UserDays(m, mi, keeps: UserDays.apps(ofVariant: v, m, mi), days: v < classes)
                    #expect(warm.width == fresh.width && warm.words == fresh.words && warm.pairCount == fresh.pairCount
                            && warm.byPairCount == fresh.byPairCount, "\(c.info.name) user days \(v)")
                default:
                    let warm = try #require(m.baseDerived.existing(PairRecency.self, variant: v))
                    let fresh = PairRecency(m, mi, keeps: UserDays.apps(ofVariant: v, m, mi))
                    #expect(warm.start == fresh.start && warm.lastDays == fresh.lastDays, "\(c.info.name) recency \(v)")
                }
                checked += 1
            }
            merged.append(m)
        }
        #expect(checked > 20, "only \(checked) values checked")
        // The queries that read them (approval, AI and category filters; D by active days and app
        // count) answer as the reference over all rows.
        store = store.replacing(merged, walSequence: 0)
        try EquivalenceTests().check(dump, store, seed: seed &* 1_001, queries: 250)
        let s = seed &* 13
        let paged = try UserPagesTests.checkPagesToTheNewestDay(dump, store, seed: s, queries: 25)
            + UserPagesTests.checkPages(dump, store, seed: s, sort: .activeDays, queries: 25)
        #expect(paged > 100, "only \(paged) rows paged through")
    }

    /// Every bitmap of two derivations of the same class's per-category unions holds the same users.
    static func expectSame(_ a: CategoryClassUnions, _ b: CategoryClassUnions, _ index: UsageIndex, users: Int, _ what: String) {
        #expect(a.categoryRows == b.categoryRows, "\(what): rows")
        let x = UserSet(domain: users), y = UserSet(domain: users)
        var differ = 0
        for level in 0..<index.levelSizes.count {
            for row in 0...a.categoryRows {
                for block in 0..<index.starts(level: level).blockCount {
                    x.clear()
                    y.clear()
                    a.levels[level].formUnion(a.bitmap(row: row, level: level, block: block), into: x)
                    b.levels[level].formUnion(b.bitmap(row: row, level: level, block: block), into: y)
                    if x.sortedValues() != y.sortedValues() { differ += 1 }
                }
            }
        }
        #expect(differ == 0, "\(what): \(differ) bitmaps differ")
    }
}
