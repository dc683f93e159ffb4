import Testing
import TallyGenerate
import TallyQuery
import TallyStorage

/// The comparison period is computed only for the rows of the page, by probing when that is
/// cheaper: on a client dense enough for probing to be chosen, every page's comparison values
/// must equal those of the full list.
@Suite struct PageComparisonTests {
    @Test(arguments: [Dimension.user, .app, .category])
    func pageComparisonEqualsFullComparison(_ dim: Dimension) throws {
        let (catalog, builder) = SyntheticClient.make(SyntheticShape(users: 3000, apps: 40, days: 120, seed: 5))
        let client = builder.build()
        let ex = Executor(store: Store(catalog: catalog, clients: [client]))
        let end = client.usage!.newestDay
        for (len, approved) in [(7, nil), (30, nil), (90, false as Bool?), (119, nil)] {
            let period = DayRange(end.adding(-(len - 1)), end)
            let cmp = DayRange(period.start.adding(-len), period.start.adding(-1))
            var q = Query(client: client.info.id, period: period, comparison: cmp,
                          filters: Filters(approved: approved), dimension: dim,
                          sort: dim == .user ? .apps : .users, order: .desc)
            let full = try ex.run(q)
            var byKey: [RowKey: Metrics?] = [:]
            for row in full.rows { byKey[row.key] = row.compare }
            q.pageSize = 7
            var seen = 0
            while true {
                let page = try ex.run(q)
                for row in page.rows {
                    #expect(byKey[row.key] == row.compare, "\(dim) \(len) days \(row.key)")
                    seen += 1
                }
                guard let next = page.next else { break }
                q.after = next
            }
            #expect(seen == full.rows.count && seen > 0)
        }
    }
}
