import Testing
@testable import TallyQuery
import TallyStorage
import TallyTestSupport

/// Paged lists evaluated whole are kept for their next pages (``ListCache``): the pages served
/// from a kept list must be the whole list's, a replaced client must never be served its old
/// list, and the budget must hold.
@Suite struct ListCacheTests {
    /// Random list queries, paged through twice (the second time every page after the first
    /// can come from a kept list): both times the pages, joined, are the unpaged list, row for
    /// row, and its rows match the brute force.
    @Test(arguments: [UInt64(3), 4])
    func pagesFromKeptListsAreTheWholeList(seed: UInt64) throws {
        let (dump, store) = try Fixtures.randomStore(seed: seed, allClasses: seed == 4)
        let ref = Reference(dump)
        var ex = Executor(store: store)
        var r = SeededRandom(seed: seed &* 104_729)
        var paged = 0, kept = 0
        for n in 0..<240 {
            var q = EquivalenceTests().randomQuery(dump, &r)
            if case .time = q.dimension { q.dimension = .category }
            if q.dimension == .none { q.dimension = .app }
            q.sort = [.app: [.users, .name], .department: [.users, .apps, .name], .category: [.users, .apps, .name],
                      .user: [.apps, .activeDays, .name]][q.dimension]!.randomElement(using: &r)!
            ex.departmentScan = DepartmentScan.allCases.randomElement(using: &r)!
            try check(q, n)
            // The same list but for one thing (its filters, period or way of reading a
            // department), right after: it must not be served the first one's kept list.
            switch Int.random(in: 0..<4, using: &r) {
            case 0: q.filters = Filters()
            case 1: q.filters.approved = !(q.filters.approved ?? false)
            case 2: q.period = DayRange(q.period.start, max(q.period.start, q.period.end.adding(-1)))  // one day: unchanged
            default: ex.departmentScan = ex.departmentScan == .bitmaps ? .members : .bitmaps
            }
            try check(q, n)
        }
        // Enough lists paged, and enough of them served from a kept list on the second pass.
        #expect(paged > 40 && kept > 20, "\(paged) paged, \(kept) kept")

        func check(_ q: Query, _ n: Int) throws {
            var q = q
            let whole = try ex.run(q)
            let want = ref.evaluate(q, q.period)
            for row in whole.rows {
                let id = ex.sortKey(row, .users, store.client(q.client)!).id.description
                if let w = want[id] {
                    #expect(EquivalenceTests().relevant(row.value, q.dimension) == EquivalenceTests().relevant(w, q.dimension),
                            "query \(n) row \(id)")
                }
            }
            q.pageSize = Int.random(in: 1...6, using: &r)
            for pass in 0..<2 {
                var p = q
                var rows: [ResultRow] = []
                while true {
                    let page = try ex.run(p)
                    #expect(page.totalCount == whole.totalCount, "query \(n) pass \(pass)")
                    rows += page.rows
                    guard let next = page.next, rows.count <= whole.rows.count else { break }
                    p.after = next
                }
                #expect(rows.map(\.key) == whole.rows.map(\.key), "query \(n) pass \(pass): \(q)")
                #expect(rows.map(\.value) == whole.rows.map(\.value), "query \(n) pass \(pass)")
                #expect(rows.map(\.compare) == whole.rows.map(\.compare), "query \(n) pass \(pass)")
            }
            if whole.rows.count > q.pageSize! { paged += 1 }
            let key = ListCache.Key(client: store.client(q.client)!, catalog: store.catalog, query: q, scan: ex.departmentScan)
            if ListCache.shared.list(key, client: store.client(q.client)!, catalog: store.catalog) != nil { kept += 1 }
        }
    }

    /// A list kept for one version of a client is not served for the next: the same query
    /// paged on a store whose client lost half its rows gives that store's list.
    @Test func aReplacedClientGetsItsOwnList() throws {
        let seed: UInt64 = 5
        var dump = RandomDump(seed: seed, clientCount: 3, maxRowsPerClient: 2500)
        let before = try Fixtures.store(of: dump, seed: seed)
        let client = dump.usage.map(\.client).max { a, b in
            dump.usage.lazy.filter { $0.client == a }.count < dump.usage.lazy.filter { $0.client == b }.count
        }!
        var k = 0
        dump.usage.removeAll { u in
            guard u.client == client else { return false }
            k += 1
            return k % 2 == 0
        }
        let after = try Fixtures.store(of: dump, seed: seed)
        let days = dump.usage.filter { $0.client == client }.map(\.day)
        var q = Query(client: client, period: DayRange(days.min()!, days.max()!), dimension: .app, sort: .name, order: .asc)
        func paged(_ store: Store) throws -> [ResultRow] {
            var p = q
            p.pageSize = 3
            var rows: [ResultRow] = []
            while true {
                let page = try Executor(store: store).run(p)
                rows += page.rows
                guard let next = page.next else { return rows }
                p.after = next
            }
        }
        let old = try paged(before)
        _ = try paged(before)  // kept now
        let new = try paged(after)
        q.pageSize = nil
        #expect(old.map(\.value) == (try Executor(store: before).run(q)).rows.map(\.value))
        #expect(new.map(\.value) == (try Executor(store: after).run(q)).rows.map(\.value))
        #expect(old.map(\.value) != new.map(\.value))
    }

    /// Least recently used lists go first, and the bytes kept stay within the budget.
    @Test func theBudgetHolds() throws {
        let (_, store) = try Fixtures.randomStore(seed: 6, clients: 2, rows: 300)
        let client = store.clients[0]
        let cache = ListCache(budget: 4 * ListCache.Kept.bytes(50, 0))
        let metrics = [Metrics](repeating: Metrics(), count: 50)
        func key(_ days: Int) -> ListCache.Key {
            let q = Query(client: client.info.id, period: DayRange(Day("2024-01-01")!, Day("2024-01-01")!.adding(days)),
                          dimension: .app)
            return ListCache.Key(client: client, catalog: store.catalog, query: q, scan: .cheaper)
        }
        for d in 0..<4 { cache.keep(metrics, order: [], key(d), client: client, catalog: store.catalog) }
        #expect(cache.usage.lists == 4)
        _ = cache.list(key(0), client: client, catalog: store.catalog)  // 0 used again: 1 is the oldest
        cache.keep(metrics, order: [], key(4), client: client, catalog: store.catalog)
        #expect(cache.usage.lists == 4 && cache.usage.bytes <= cache.budget)
        #expect(cache.list(key(1), client: client, catalog: store.catalog) == nil)
        #expect(cache.list(key(0), client: client, catalog: store.catalog) != nil)
        #expect(cache.list(key(4), client: client, catalog: store.catalog) != nil)
        // Another client object (a replaced version) is not served the list.
        let other = store.clients[1]
        #expect(cache.list(key(4), client: other, catalog: store.catalog) == nil)
    }
}
