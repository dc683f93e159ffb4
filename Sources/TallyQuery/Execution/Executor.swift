import TallyStorage

/// Why a query cannot run.
public enum QueryError: Error, Equatable, Sendable {
    case unknownClient(UUID128)
}

/// Runs ``Query`` values against one immutable ``Store`` version.
public struct Executor: Sendable {
    public let store: Store

    public init(store: Store) { self.store = store }

    public func run(_ q: Query) throws -> QueryResult {
        guard let client = store.client(q.client) else { throw QueryError.unknownClient(q.client) }
        let scope = Scope(client: client, catalog: store.catalog, filters: q.filters)
        if case .time(let g) = q.dimension {
            let newest = client.usage?.newestDay
            func series(_ r: DayRange) -> [Bucket] {
                g.buckets(r).map { cal, clipped in
                    let m = PeriodScan(scope: scope, range: clipped)?.totals(full: false) ?? Metrics()
                    let complete = cal == clipped && newest.map { cal.end <= $0 } == true
                    return Bucket(range: clipped, complete: complete, value: m)
                }
            }
            let s = series(q.period)
            return QueryResult(rows: [], totalCount: s.count, next: nil, series: s,
                               compareSeries: q.comparison.map(series))
        }
        let primary = evaluate(scope, q.period, q.dimension, q)
        let compare = q.comparison.map { evaluate(scope, $0, q.dimension, q) }
        var rows: [ResultRow] = []
        rows.reserveCapacity(primary.count)
        for (key, m) in primary where m.isActive || q.dimension == .none {
            var c: Metrics?
            if let compare {
                let cm = compare[key] ?? Metrics()
                c = cm.isActive || q.dimension == .none ? cm : nil
            }
            rows.append(ResultRow(key: key, value: m, compare: c))
        }
        return page(rows, q, client)
    }

    func evaluate(_ scope: Scope, _ range: DayRange, _ dim: Dimension, _ q: Query) -> [RowKey: Metrics] {
        let scan = PeriodScan(scope: scope, range: range)
        var out: [RowKey: Metrics] = [:]
        switch dim {
        case .app:
            var only: [UInt32]?
            if q.firstSeenInPeriod, let index = scope.index {
                only = scope.apps.filter { index.firstSeen(app: Int($0)).map(q.period.contains) ?? false }
            }
            for (app, m) in scan?.byApp(only: only) ?? [] { out[.app(app)] = m }
        case .department:
            for (d, m) in (scan?.byDepartment() ?? []).enumerated() where m.isActive { out[.department(UInt32(d))] = m }
        case .category:
            for (c, m) in scan?.byCategory() ?? [:] { out[.category(c)] = m }
        case .user:
            if let (apps, days) = scan?.byUser() {
                for u in 0..<apps.count where apps[u] > 0 {
                    var m = Metrics()
                    m.users = 1
                    m.apps = Int(apps[u])
                    m.activeDays = Int(days[u])
                    out[.user(UInt32(u))] = m
                }
            }
        case .none:
            out[.total] = scan?.totals(full: true) ?? Metrics()
        case .time:
            break
        }
        return out
    }

    // MARK: - Order and pages

    /// The sort value and id of a row.
    public func sortKey(_ row: ResultRow, _ sort: SortKey, _ client: ClientStore) -> PageKey {
        let m = row.value
        let value: SortValue
        switch sort {
        case .users: value = .int(m.users)
        case .apps: value = .int(m.apps)
        case .activeDays: value = .int(m.activeDays)
        case .approvedUsers: value = .int(m.approvedUsers)
        case .unapprovedUsers: value = .int(m.unapprovedUsers)
        case .firstSeen:
            if case .app(let a) = row.key, let d = client.usage?.firstSeen(app: Int(a)) { value = .day(d) } else {
                value = .int(0)
            }
        case .name: value = .name(name(of: row.key, client))
        }
        return PageKey(value: value, id: id(of: row.key, client))
    }

    func name(of key: RowKey, _ client: ClientStore) -> String? {
        switch key {
        case .app(let a): return store.catalog.applications[Int(client.apps[Int(a)].catalogIndex)].canonicalName
        case .department(let d): return client.departments[Int(d)].name
        case .category(let c): return c.map { store.catalog.categories[Int($0)].name }
        case .user(let u): return client.users[Int(u)].email
        case .total: return nil
        case .bucket(let r): return r.start.description
        }
    }

    func id(of key: RowKey, _ client: ClientStore) -> String {
        switch key {
        case .app(let a): return client.apps[Int(a)].id.description
        case .department(let d): return client.departments[Int(d)].id.description
        case .category(let c): return c.map { store.catalog.categories[Int($0)].id.description } ?? ""
        case .user(let u): return client.users[Int(u)].id.description
        case .total: return ""
        case .bucket(let r): return r.start.description
        }
    }

    /// Negative when `x` comes before `y` in `order`; ties break by id ascending.
    public static func compare(_ x: PageKey, _ y: PageKey, _ order: SortOrder) -> Int {
        let c = compareValues(x.value, y.value)
        if c != 0 { return order == .asc ? c : -c }
        return x.id < y.id ? -1 : (x.id == y.id ? 0 : 1)
    }

    /// Ascending comparison; a `nil` text sorts after every text (so first when descending).
    static func compareValues(_ x: SortValue, _ y: SortValue) -> Int {
        switch (x, y) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.day(let a), .day(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.text(let a), .text(let b)):
            switch (a, b) {
            case (nil, nil): return 0
            case (nil, _): return 1
            case (_, nil): return -1
            case (let a?, let b?): return a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
            }
        case (.int, _): return -1
        case (_, .int): return 1
        case (.day, _): return -1
        case (_, .day): return 1
        }
    }

    func page(_ rows: [ResultRow], _ q: Query, _ client: ClientStore) -> QueryResult {
        var keyed = rows.map { (row: $0, key: sortKey($0, q.sort, client)) }
        keyed.sort { Self.compare($0.key, $1.key, q.order) < 0 }
        var start = 0
        if let after = q.after {
            // First row strictly after the key (binary search on the total order).
            var lo = 0, hi = keyed.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if Self.compare(keyed[mid].key, after, q.order) <= 0 { lo = mid + 1 } else { hi = mid }
            }
            start = lo
        }
        let size = q.pageSize ?? keyed.count
        let end = min(keyed.count, start + size)
        let pageRows = start < end ? keyed[start..<end].map(\.row) : []
        let next = end < keyed.count && end > start ? keyed[end - 1].key : nil
        return QueryResult(rows: pageRows, totalCount: keyed.count, next: next)
    }
}
