import TallyStorage

// Lists walked in an order stored once per client version (D by email, A by name): a page starts
// at its cursor by a binary search and counts its own rows.

extension Executor {
    /// The position in `order` (a stored order sorted by the query's own comparison of `key`)
    /// of the first row after the query's cursor: a binary search; 0 without a cursor.
    static func firstAfter(_ q: Query, in order: [UInt32], key: (Int) -> PageKey) -> Int {
        guard let after = q.after else { return 0 }
        var lo = 0, hi = order.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if compare(key(Int(order[mid])), after, q.order) <= 0 { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

extension Executor {
    /// D sorted by email (SPEC §3, `sort_by=email`): the users walked in the client's stored email
    /// order (``UserDirectory/byEmail``, derived once per client version), from the cursor on (a
    /// binary search), each counted only until the page and one more row are found; the total is
    /// the scope's active users, from its unions. A page costs its rows and the inactive users
    /// between them, not a count of every user and a sort of their emails (26 ms for a year of the
    /// 20,000-user client before, docs/BENCHMARKS.md "The realistic mix").
    func usersByEmail(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> (MetricsTable, [Entry], Int)? {
        guard q.dimension == .user, q.sort == .name, let size = q.pageSize,
              let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let directory = UserDirectory.of(scope.client)
        let order = q.order == .asc ? directory.byEmail.asc : directory.byEmail.desc
        func key(_ u: Int) -> PageKey { PageKey(value: .text(directory.email[u]), id: rows.id(u)) }
        // The first user after the cursor: the stored order is sorted by this very comparison.
        var next = Self.firstAfter(q, in: order, key: key)
        var table = MetricsTable()
        var entries: [Entry] = []
        entries.reserveCapacity(size + 1)
        while entries.count <= size && next < order.count {
            // A few users at a time: most are active over a dashboard's periods.
            let chunk = order[next..<min(next + max(16, size + 1), order.count)].map { Int($0) }
            next += chunk.count
            for (u, m) in scan.userRows(chunk) where entries.count <= size {
                table[u] = m
                entries.append(Entry(index: Int32(u), value: 0, id: rows.id(u), key: key(u)))
            }
        }
        return (table, entries, scan.totals(full: false).users)
    }
}

/// A client's apps in canonical-name order (SPEC §3 `sort_by=canonical_name`: case-folded, then
/// id), both directions, derived once per client version for the catalog it was made with.
final class AppNameOrder: DirectoryDerived {
    weak let catalog: Catalog?
    /// Each app's case-folded name (the sort key ``SortValue/name(_:)`` makes).
    let folded: [[UInt32]?]
    let asc: [UInt32], desc: [UInt32]

    init(_ c: ClientStore, _ catalog: Catalog) {
        self.catalog = catalog
        let rows = RowSpace(dimension: .app, client: c, catalog: catalog)
        let keys = (0..<c.apps.count).map { PageKey(value: .name(rows.name($0)), id: rows.id($0)) }
        folded = keys.map { if case .text(let t) = $0.value { return t } else { return nil } }
        asc = (0..<UInt32(c.apps.count)).sorted { Executor.compare(keys[Int($0)], keys[Int($1)], .asc) < 0 }
        desc = (0..<UInt32(c.apps.count)).sorted { Executor.compare(keys[Int($0)], keys[Int($1)], .desc) < 0 }
    }

    /// The client's kept order when it was made with `catalog`; otherwise one made for this
    /// query (the catalog changed under a client that was not rebuilt).
    static func of(_ c: ClientStore, _ catalog: Catalog) -> AppNameOrder {
        let kept = c.derived.get { AppNameOrder(c, catalog) }
        return kept.catalog === catalog ? kept : AppNameOrder(c, catalog)
    }
}

extension Executor {
    /// A sorted by name (`sort_by=canonical_name`): the apps walked in the client's stored name
    /// order (``AppNameOrder``) from the cursor on (a binary search), each tested for activity in
    /// O(1) (a mask or bitmap test under a department filter), and only the page's rows counted —
    /// not every app's users over the period, which took 3.0–3.6 ms for 90 days of the
    /// 20,000-user client's 600 apps (`tools/load/profile_paths.py`, docs/BENCHMARKS.md).
    func appsByName(_ scope: Scope, _ q: Query, _ rows: RowSpace) -> (MetricsTable, [Entry], Int)? {
        guard q.dimension == .app, q.sort == .name, !q.firstSeenInPeriod, let size = q.pageSize,
              let scan = PeriodScan(scope: scope, range: q.period) else { return nil }
        let names = AppNameOrder.of(scope.client, store.catalog)
        let order = q.order == .asc ? names.asc : names.desc
        func key(_ a: Int) -> PageKey { PageKey(value: .text(names.folded[a]), id: rows.id(a)) }
        let next = Self.firstAfter(q, in: order, key: key)
        var entries: [Entry] = []
        entries.reserveCapacity(size + 1)
        var total = 0
        let mask = scope.appMask
        for (i, a) in order.enumerated() where mask[Int(a)] && scan.isActive(entity: Int(a)) {
            total &+= 1
            if i >= next && entries.count <= size {
                entries.append(Entry(index: Int32(a), value: 0, id: rows.id(Int(a)), key: key(Int(a))))
            }
        }
        return (evaluate(scope, q.period, rows, q, only: entries.map { Int($0.index) }), entries, total)
    }
}
