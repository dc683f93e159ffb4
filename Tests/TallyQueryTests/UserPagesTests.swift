import Testing
import TallyQuery
import TallyStorage
import TallyTestSupport

/// D pays for its page in every sort (issue 16): by email the users are walked in the stored
/// email order from the cursor on; by active days they are read from the class's user-day
/// bitsets, or visited by an upper bound under other app filters; by apps under an approval or AI
/// filter they are visited in the class's pair-count order. Paging through every page, in both
/// orders, with random filters (departments, approval, categories, apps, AI only), random page
/// sizes and periods, gives the rows, metrics, order and total of the unpaged list (the
/// whole-list path, which EquivalenceTests checks against the brute force), and the brute-force
/// reference's users, metrics and total.
@Suite struct UserPagesTests {
    @Test(arguments: [UInt64(3), 4], [SortKey.name, .activeDays, .apps])
    func pagesEqualTheWholeListAndTheReference(seed: UInt64, sort: SortKey) throws {
        let (dump, store) = try Fixtures.randomStore(seed: seed, allClasses: seed == 4)  // 4: category classes (whole-category scopes)
        let pagedRows = try Self.checkPages(dump, store, seed: seed, sort: sort, queries: 120)
        #expect(pagedRows > 500, "only \(pagedRows) rows paged through")
    }

    /// Runs `queries` random D lists sorted by `sort` on `store` against the reference, and pages
    /// through each; the rows paged through.
    static func checkPages(_ dump: RandomDump, _ store: Store, seed: UInt64, sort: SortKey, queries: Int) throws -> Int {
        let ref = Reference(dump)
        var ex = Executor(store: store)
        var r = SeededRandom(seed: seed * 104_729)
        var pagedRows = 0
        for n in 0..<queries {
            let client = dump.clients.randomElement(using: &r)!.id
            let c = store.client(client)!
            let span = RandomDump.firstDay.distance(to: RandomDump.lastDay)
            let start = RandomDump.firstDay.adding(Int.random(in: -10...span, using: &r))
            let f = Self.randomFilters(dump, client, &r, appIds: true)
            let whole = Query(client: client, period: DayRange(start, start.adding(Int.random(in: 0..<366, using: &r))),
                              comparison: r.chance(0.3) ? DayRange(start.adding(-60), start.adding(-1)) : nil, filters: f,
                              dimension: .user, sort: sort, order: r.chance(0.5) ? .asc : .desc)
            let all = try ex.run(whole)
            let want = ref.evaluate(whole, whole.period).filter { $0.value.users + $0.value.apps > 0 }
            #expect(all.totalCount == want.count && Set(all.rows.map { ex.sortKey($0, .users, c).id.description }) == Set(want.keys),
                    "query \(n): the whole list against the reference")
            for row in all.rows {
                let id = ex.sortKey(row, .users, c).id.description
                #expect(want[id]?.apps == row.value.apps && want[id]?.activeDays == row.value.activeDays,
                        "query \(n): user \(id): \(row.value) against the reference's \(String(describing: want[id]))")
            }
            var q = whole
            q.pageSize = Int.random(in: 1...6, using: &r)
            // Cursor pages through the bounded paths (as past 2,000 users), or the kept list
            // (for a short list, or a long one whose bounded path would cost more).
            ex.shortList = r.chance(0.5) ? 0 : 2_000
            ex.keepsLongLists = r.chance(0.5)
            pagedRows += try Self.pageThrough(q, ex, all, "query \(n)")
        }
        return pagedRows
    }

    /// D by app count over periods that end on the client's newest day counts each user by the
    /// last days of their pairs (``PairRecency``), on the bounded paths at every cursor position
    /// or, for half the lists, through the list counted whole and kept by its counts
    /// (``Executor/usersCounted(_:_:_:_:kept:)``, every cursor page past ``Executor/shortList``
    /// users): every page, in both orders, with random filters, gives the unpaged list and the
    /// reference.
    @Test(arguments: [UInt64(7), 8])
    func pagesByAppCountToTheNewestDayEqualTheReference(seed: UInt64) throws {
        let (dump, store) = try Fixtures.randomStore(seed: seed, allClasses: seed == 8)
        let pagedRows = try Self.checkPagesToTheNewestDay(dump, store, seed: seed, queries: 60)
        #expect(pagedRows > 300, "only \(pagedRows) rows paged through")
    }

    /// Runs `queries` random D lists by app count over periods that end on or after the client's
    /// newest day on `store` against the reference, and pages through each on the bounded paths;
    /// the rows paged through.
    static func checkPagesToTheNewestDay(_ dump: RandomDump, _ store: Store, seed: UInt64, queries: Int) throws -> Int {
        let ref = Reference(dump)
        var ex = Executor(store: store)
        ex.shortList = 0
        var r = SeededRandom(seed: seed * 7_919)
        var pagedRows = 0
        for n in 0..<queries {
            let client = dump.clients.randomElement(using: &r)!.id
            guard let newest = store.client(client)!.usage?.newestDay else { continue }
            let end = newest.adding(Int.random(in: 0...3, using: &r))
            let whole = Query(client: client, period: DayRange(end.adding(-Int.random(in: 0..<366, using: &r)), end),
                              filters: Self.randomFilters(dump, client, &r, appIds: false),
                              dimension: .user, sort: .apps, order: r.chance(0.5) ? .asc : .desc)
            let all = try ex.run(whole)
            let want = ref.evaluate(whole, whole.period).filter { $0.value.users + $0.value.apps > 0 }
            let c = store.client(client)!
            #expect(all.totalCount == want.count, "query \(n): total \(all.totalCount) against the reference's \(want.count)")
            for row in all.rows {
                let id = ex.sortKey(row, .users, c).id.description
                #expect(want[id]?.apps == row.value.apps, "query \(n): user \(id): \(row.value.apps) apps, the reference \(String(describing: want[id]?.apps))")
            }
            var q = whole
            q.pageSize = Int.random(in: 1...5, using: &r)
            ex.keepsLongLists = r.chance(0.5)
            pagedRows += try Self.pageThrough(q, ex, all, "query \(n)")
        }
        return pagedRows
    }

    /// A pays for its page too: by users through the block bounds (``Executor/topApps``), by name
    /// through the stored name order (``Executor/appsByName``). Every page, in both orders, with
    /// random filters, page sizes and periods, and cursor pages through the bounded paths or the
    /// kept list, gives the whole list (checked against the brute force by EquivalenceTests), and
    /// the reference's apps and users.
    @Test(arguments: [UInt64(5), 6], [SortKey.name, .users])
    func appPagesEqualTheWholeList(seed: UInt64, sort: SortKey) throws {
        let (dump, store) = try Fixtures.randomStore(seed: seed, allClasses: seed == 6)
        let ref = Reference(dump)
        var ex = Executor(store: store)
        var r = SeededRandom(seed: seed * 7_927)
        var pagedRows = 0
        for n in 0..<150 {
            let client = dump.clients.randomElement(using: &r)!.id
            let c = store.client(client)!
            let span = RandomDump.firstDay.distance(to: RandomDump.lastDay)
            let start = RandomDump.firstDay.adding(Int.random(in: -10...span, using: &r))
            let f = Self.randomFilters(dump, client, &r, appIds: false)
            ex.departmentScan = DepartmentScan.allCases.randomElement(using: &r)!
            let whole = Query(client: client, period: DayRange(start, start.adding(Int.random(in: 0..<366, using: &r))),
                              comparison: r.chance(0.3) ? DayRange(start.adding(-60), start.adding(-1)) : nil, filters: f,
                              dimension: .app, sort: sort, order: r.chance(0.5) ? .asc : .desc)
            let all = try ex.run(whole)
            let want = ref.evaluate(whole, whole.period).filter { $0.value.users > 0 }
            #expect(all.totalCount == want.count && Set(all.rows.map { ex.sortKey($0, .users, c).id.description }) == Set(want.keys),
                    "query \(n): the whole list against the reference")
            for row in all.rows {
                let id = ex.sortKey(row, .users, c).id.description
                #expect(want[id]?.users == row.value.users, "query \(n): app \(id): \(row.value) against \(String(describing: want[id]))")
            }
            var q = whole
            q.pageSize = Int.random(in: 1...4, using: &r)
            ex.shortList = r.chance(0.5) ? 0 : 2_000
            pagedRows += try Self.pageThrough(q, ex, all, "query \(n)")
        }
        #expect(pagedRows > 150, "only \(pagedRows) rows paged through")
    }

    /// Pages through `q` (a page size, no cursor) from first to last: every page's total is the
    /// whole list's, no page is longer than the page size, and the pages together are the whole
    /// list's rows in order. Returns the rows paged through.
    static func pageThrough(_ first: Query, _ ex: Executor, _ all: QueryResult, _ what: String) throws -> Int {
        var q = first
        var rows: [ResultRow] = []
        var pages = 0
        while true {
            let page = try ex.run(q)
            #expect(page.totalCount == all.totalCount, "\(what) page \(pages): total \(page.totalCount), whole \(all.totalCount)")
            #expect(page.rows.count <= q.pageSize!)
            rows += page.rows
            pages += 1
            guard let next = page.next, pages < 2000 else { break }
            q.after = next
        }
        #expect(rows == all.rows, "\(what): \(rows.count) rows over \(pages) pages of \(q.pageSize!), whole list \(all.rows.count)")
        return rows.count
    }

    /// Random filters of `client`: departments, approval, categories, its apps (with `appIds`), AI only.
    static func randomFilters(_ dump: RandomDump, _ client: UUID128, _ r: inout SeededRandom, appIds: Bool) -> Filters {
        var f = Filters()
        func pick<T>(_ xs: [T], _ k: Int, _ r: inout SeededRandom) -> [T] { Array(xs.shuffled(using: &r).prefix(k)) }
        if r.chance(0.35) { f.departmentIds = pick(dump.departments.filter { $0.client == client }.map(\.id), Int.random(in: 1...2, using: &r), &r) }
        if r.chance(0.3) { f.approved = r.chance(0.5) }
        if r.chance(0.2) { f.categoryIds = pick(dump.categories.map(\.id), Int.random(in: 1...3, using: &r), &r) }
        if appIds && r.chance(0.15) { f.appIds = pick(dump.apps.filter { $0.client == client }.map(\.id), Int.random(in: 1...4, using: &r), &r) }
        if r.chance(0.1) { f.aiOnly = true }
        return f
    }
}
