import TallyStorage

/// Why a query cannot run.
public enum QueryError: Error, Equatable, Sendable {
    case unknownClient(UUID128)
}

/// Runs ``Query`` values against one immutable ``Store`` version.
public struct Executor: Sendable {
    public let store: Store
    /// How department filters are read (``DepartmentScan``): the cheaper way unless told.
    public var departmentScan: DepartmentScan = .cheaper
    /// Rows of a dimension up to which a cursor page evaluates the list whole to keep it, even
    /// where a bounded path exists (tests set 0 to page through the bounded paths).
    public var shortList = 2_000
    /// Whether a long list's cursor page may still be evaluated whole and kept where its bounded
    /// path would cost more (``keepsLongList(_:_:)``); tests turn it off to page through those paths.
    public var keepsLongLists = true

    public init(store: Store) { self.store = store }

    public func run(_ q: Query) throws -> QueryResult {
        guard let client = store.client(q.client) else { throw QueryError.unknownClient(q.client) }
        let scope = Scope(client: client, catalog: store.catalog, filters: q.filters, departmentScan: departmentScan)
        if case .time(let g) = q.dimension {
            let newest = client.usage?.newestDay
            let primaryBuckets = g.buckets(q.period), compareBuckets = q.comparison.map(g.buckets)
            if scope.readsMembers, let index = client.usage {
                // The members' activity over every bucket of both periods, made once when that
                // is cheaper: each bucket's users and active apps are then a few words per
                // member and per app.
                let spans = ([q.period] + (q.comparison.map { [$0] } ?? [])).compactMap(index.offsets)
                let buckets = primaryBuckets.count + (compareBuckets?.count ?? 0)
                if let lo = spans.map(\.lo).min(), let hi = spans.map(\.hi).max(),
                   scope.trendReadsMembers(buckets: buckets, lo, hi) {
                    scope.scratch.makeActivity(scope, lo, hi)
                }
            }
            func series(_ buckets: [(calendar: DayRange, clipped: DayRange)]) -> [Bucket] {
                buckets.map { cal, clipped in
                    let m = PeriodScan(scope: scope, range: clipped)?.totals(full: false) ?? Metrics()
                    let complete = cal == clipped && newest.map { cal.end <= $0 } == true
                    return Bucket(range: clipped, complete: complete, value: m)
                }
            }
            let s = series(primaryBuckets)
            return QueryResult(rows: [], totalCount: s.count, next: nil, series: s,
                               compareSeries: compareBuckets.map(series))
        }
        let rows = RowSpace(dimension: q.dimension, client: client, catalog: store.catalog)
        if q.dimension == .app, scope.readsMembers, let c = q.comparison, let o = client.usage?.offsets(c) {
            scope.scratch.companion = o  // counted beside the period where that is free
        }
        let keep = q.dimension == .none
        let primary: MetricsTable, ordered: [Entry], total: Int
        // A paged list evaluated whole for a cursor page is kept for its next pages
        // (``ListCache``). A cursor page of a short list not kept yet evaluates it whole and
        // keeps it; a long one takes its bounded path when it has one (evaluating and ordering
        // the 20,000-user client's users whole made a first cursor page cost up to 22 ms over
        // HTTP, against at most 3.9 ms bounded: `tools/load/first_time.py` over the realistic
        // paths of docs/BENCHMARKS.md).
        let lists = ListCache.shared
        let listKey = q.pageSize == nil || keep || lists.budget == 0 ? nil
            : ListCache.Key(client: client, catalog: store.catalog, query: q, scan: departmentScan)
        let kept = listKey.flatMap { lists.list($0, client: client, catalog: store.catalog) }
        if let kept, !kept.counted {
            (ordered, total) = page(kept, q, rows)
            primary = MetricsTable(dense: kept.metrics)
        } else if let listKey, q.after != nil, keepsLongLists, let counted = usersCounted(scope, q, rows, listKey, kept: kept) {
            (primary, ordered, total) = counted
        } else if q.after == nil || listKey == nil || (rows.count > shortList && !(keepsLongLists && keepsLongList(scope, q))),
                  let top = topApps(scope, q, rows) ?? appsByName(scope, q, rows) ?? topUsers(scope, q, rows) ?? usersByEmail(scope, q, rows)
            ?? usersByActiveDays(scope, q, rows) ?? usersByCount(scope, q, rows) {
            (primary, ordered, total) = top
        } else {
            let all = evaluate(scope, q.period, rows, q)
            primary = MetricsTable(dense: all)
            if let listKey, q.after != nil {
                var whole = q
                whole.after = nil
                whole.pageSize = nil
                let list = order(all, keep: keep, whole, rows).0.map(\.index)
                (ordered, total) = page(lists.keep(all, order: list, listKey, client: client, catalog: store.catalog), q, rows)
            } else {
                (ordered, total) = order(all, keep: keep, q, rows)
            }
        }
        // The comparison period is only ever shown beside the rows of the page: compute just those.
        let shown = ordered.prefix(q.pageSize ?? ordered.count).map { Int($0.index) }
        let compare = q.comparison.map {
            keep ? MetricsTable(dense: evaluate(scope, $0, rows, q)) : evaluate(scope, $0, rows, q, only: shown)
        }
        var page: [ResultRow] = []
        for e in ordered.prefix(q.pageSize ?? ordered.count) {
            let i = Int(e.index)
            var c: Metrics?
            if let compare { c = keep || compare[i].isActive ? compare[i] : nil }
            page.append(ResultRow(key: rows.key(i), value: primary[i], compare: c))
        }
        if q.dimension == .app && scope.users != nil && !scope.readsMembers {
            // With a department filter read app-major, user-days are counted from the
            // department's users' pairs: only for the rows shown.
            let apps = page.compactMap { row -> UInt32? in if case .app(let a) = row.key { return a } else { return nil } }
            func userDays(_ range: DayRange) -> [UInt32: Int] {
                let rows = PeriodScan(scope: scope, range: range)?.byAppOfMembers(only: apps) ?? []
                return Dictionary(uniqueKeysWithValues: rows.map { ($0.app, $0.metrics.userDays) })
            }
            let p = userDays(q.period)
            let c = q.comparison.map(userDays)
            for i in page.indices {
                guard case .app(let a) = page[i].key else { continue }
                page[i].value.userDays = p[a] ?? 0
                if page[i].compare != nil { page[i].compare!.userDays = c?[a] ?? 0 }
            }
        }
        // A next page exists when more rows follow the page: its cursor is the page's last row.
        var next: PageKey?
        if let size = q.pageSize, ordered.count > size, let last = ordered.prefix(size).last {
            next = sortKey(index: Int(last.index), primary[Int(last.index)], q.sort, rows)
        }
        return QueryResult(rows: page, totalCount: total, next: next)
    }

    /// A row to order: numeric sorts compare `value` then `id` (cheap, no enum or array per row);
    /// name sorts carry their key.
    struct Entry {
        var index: Int32
        var value: Int
        var id: UUID128
        var key: PageKey?
    }

    /// The rows after the cursor, in order, at most one more than a page (the extra one tells
    /// that a next page exists); and the number of rows over all pages.
    /// - Complexity: O(n log k) for a page of k rows out of n (a bounded heap), not a full sort.
    func order(_ m: [Metrics], keep: Bool, _ q: Query, _ rows: RowSpace) -> ([Entry], Int) {
        let numeric = q.sort != .name
        var entries: [Entry] = []
        var total = 0
        for i in 0..<m.count where keep || m[i].isActive {
            total += 1
            let key = sortKey(index: i, m[i], q.sort, rows)
            var e = Entry(index: Int32(i), value: 0, id: key.id, key: numeric ? nil : key)
            if numeric {
                switch key.value {
                case .int(let v): e.value = v
                case .day(let d): e.value = Int(d.raw)
                case .text: e.key = key
                }
            }
            if let after = q.after, Self.compare(key, after, q.order) <= 0 { continue }
            entries.append(e)
        }
        let asc = q.order == .asc, order = q.order
        func numericBefore(_ a: Entry, _ b: Entry) -> Bool {
            if a.value != b.value { return asc ? a.value < b.value : a.value > b.value }
            return a.id < b.id
        }
        func keyBefore(_ a: Entry, _ b: Entry) -> Bool { Self.compare(a.key!, b.key!, order) < 0 }
        let before: (Entry, Entry) -> Bool = numeric ? numericBefore : keyBefore
        guard let size = q.pageSize, entries.count > 4 * (size + 1) else {
            entries.sort(by: before)
            return (entries, total)
        }
        return (Self.smallest(size + 1, of: entries, by: before), total)
    }

    /// The rows of a kept list after the query's cursor (binary search: the list is in the
    /// query's order), at most one more than a page, and the list's length.
    func page(_ kept: ListCache.Kept, _ q: Query, _ rows: RowSpace) -> ([Entry], Int) {
        let list = kept.order, m = kept.metrics
        var lo = 0, hi = list.count
        if let after = q.after {
            while lo < hi {
                let mid = (lo + hi) / 2, i = Int(list[mid])
                if Self.compare(sortKey(index: i, m[i], q.sort, rows), after, q.order) <= 0 { lo = mid + 1 } else { hi = mid }
            }
        }
        let end = q.pageSize.map { min(list.count, lo + $0 + 1) } ?? list.count
        return (list[lo..<end].map { Entry(index: $0, value: 0, id: UUID128(high: 0, low: 0), key: nil) }, list.count)
    }

    /// The `k` first elements in `order`, sorted, with a bounded max-heap.
    static func smallest<T>(_ k: Int, of items: [T], by before: (T, T) -> Bool) -> [T] {
        var heap: [T] = []
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var top = i
                if l < heap.count && before(heap[top], heap[l]) { top = l }
                if r < heap.count && before(heap[top], heap[r]) { top = r }
                if top == i { return }
                heap.swapAt(i, top)
                i = top
            }
        }
        for x in items {
            if heap.count < k {
                heap.append(x)
                var i = heap.count - 1
                while i > 0 {
                    let p = (i - 1) / 2
                    if !before(heap[p], heap[i]) { break }
                    heap.swapAt(p, i)
                    i = p
                }
            } else if before(x, heap[0]) {
                heap[0] = x
                siftDown(0)
            }
        }
        heap.sort(by: before)
        return heap
    }

    /// Metrics of every row of the dimension, indexed like ``RowSpace``.
    func evaluate(_ scope: Scope, _ range: DayRange, _ rows: RowSpace, _ q: Query) -> [Metrics] {
        var out = [Metrics](repeating: Metrics(), count: rows.count)
        guard let scan = PeriodScan(scope: scope, range: range) else { return out }
        switch q.dimension {
        case .app:
            var apps: [UInt32]?
            if q.firstSeenInPeriod, let index = scope.index {
                apps = scope.apps.filter { index.firstSeen(app: Int($0)).map(q.period.contains) ?? false }
            }
            for (app, m) in scan.byApp(only: apps) { out[Int(app)] = m }
        case .department:
            out = scan.byDepartment()
        case .category:
            out = scan.byCategory(rowCount: rows.count)
        case .user:
            let (apps, days) = scan.byUser()
            for u in 0..<apps.count where apps[u] > 0 {
                out[u].users = 1
                out[u].apps = Int(apps[u])
                out[u].activeDays = Int(days[u])
            }
        case .none:
            out[0] = scan.totals(full: true)
        case .time:
            break
        }
        return out
    }

    /// Metrics of the rows at indexes `only` (a page); every other row reads as zero. Costs what
    /// the page costs, not what the dimension has (20,000 users are not allocated for 20).
    func evaluate(_ scope: Scope, _ range: DayRange, _ rows: RowSpace, _ q: Query, only: [Int]) -> MetricsTable {
        var out = MetricsTable(capacity: only.count)
        guard let scan = PeriodScan(scope: scope, range: range) else { return out }
        switch q.dimension {
        case .app:
            let apps = only.filter { scope.appMask[$0] }.map { UInt32($0) }
            for (app, m) in scan.byApp(only: apps) { out[Int(app)] = m }
        case .department:
            let all = scan.byDepartment()
            for i in only where all[i].users > 0 { out[i] = all[i] }
        case .category:
            var wanted = [Bool](repeating: false, count: rows.count)
            for i in only { wanted[i] = true }
            let all = scan.byCategory(rowCount: rows.count, only: wanted)
            for i in only where all[i].users > 0 { out[i] = all[i] }
        case .user:
            for (u, m) in scan.userRows(only) { out[u] = m }
        case .none:
            out[0] = scan.totals(full: true)
        case .time:
            break
        }
        return out
    }

    // MARK: - Order and pages

    /// The sort value and id of a row.
    public func sortKey(_ row: ResultRow, _ sort: SortKey, _ client: ClientStore) -> PageKey {
        let rows = RowSpace(key: row.key, client: client, catalog: store.catalog)
        return sortKey(index: rows.index(row.key), row.value, sort, rows)
    }

    func sortKey(index i: Int, _ m: Metrics, _ sort: SortKey, _ rows: RowSpace) -> PageKey {
        let value: SortValue
        switch sort {
        case .users: value = .int(m.users)
        case .apps: value = .int(m.apps)
        case .activeDays: value = .int(m.activeDays)
        case .approvedUsers: value = .int(m.approvedUsers)
        case .unapprovedUsers: value = .int(m.unapprovedUsers)
        case .firstSeen: value = rows.firstSeen(i).map { .day($0) } ?? .int(0)
        case .name: value = .name(rows.name(i))
        }
        return PageKey(value: value, id: rows.id(i))
    }

    /// Negative when `x` comes before `y` in `order`; ties break by id ascending.
    @inline(__always)
    public static func compare(_ x: PageKey, _ y: PageKey, _ order: SortOrder) -> Int {
        let c = compareValues(x.value, y.value)
        if c != 0 { return order == .asc ? c : -c }
        return x.id < y.id ? -1 : (x.id == y.id ? 0 : 1)
    }

    /// Ascending comparison; a `nil` text sorts after every text (so first when descending).
    @inline(__always)
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
}

/// Metrics by row index: a dense array for a whole dimension, a dictionary for a page of rows
/// (zero for the rows it does not hold).
struct MetricsTable {
    private var dense: [Metrics]?
    private var sparse: [Int: Metrics] = [:]

    init(dense: [Metrics]) { self.dense = dense }
    /// A sparse table with room for `capacity` rows (a page's: growing it as rows arrived was
    /// a tenth of D's 200-row pages with a comparison under `perf`).
    init(capacity: Int = 0) {
        dense = nil
        sparse.reserveCapacity(capacity)
    }

    subscript(i: Int) -> Metrics {
        get { dense?[i] ?? sparse[i] ?? Metrics() }
        set {
            if dense != nil { dense![i] = newValue } else { sparse[i] = newValue }
        }
    }
}

/// The rows a dimension can have, as dense indexes: apps, departments, users, categories (the
/// last index is "no category"), or the single totals row.
struct RowSpace {
    let dimension: Dimension
    let client: ClientStore
    let catalog: Catalog

    init(dimension: Dimension, client: ClientStore, catalog: Catalog) {
        self.dimension = dimension
        self.client = client
        self.catalog = catalog
    }

    init(key: RowKey, client: ClientStore, catalog: Catalog) {
        let d: Dimension
        switch key {
        case .app: d = .app
        case .department: d = .department
        case .category: d = .category
        case .user: d = .user
        case .total, .bucket: d = .none
        }
        self.init(dimension: d, client: client, catalog: catalog)
    }

    var count: Int {
        switch dimension {
        case .app: return client.apps.count
        case .department: return client.departments.count
        case .user: return client.users.count
        case .category: return catalog.categories.count + 1
        case .none, .time: return 1
        }
    }

    func key(_ i: Int) -> RowKey {
        switch dimension {
        case .app: return .app(UInt32(i))
        case .department: return .department(UInt32(i))
        case .user: return .user(UInt32(i))
        case .category: return .category(i == count - 1 ? nil : Int32(i))
        case .none, .time: return .total
        }
    }

    func index(_ key: RowKey) -> Int {
        switch key {
        case .app(let a): return Int(a)
        case .department(let d): return Int(d)
        case .user(let u): return Int(u)
        case .category(let c): return c.map(Int.init) ?? count - 1
        case .total, .bucket: return 0
        }
    }

    func name(_ i: Int) -> String? {
        switch dimension {
        case .app: return catalog.applications[Int(client.apps[i].catalogIndex)].canonicalName
        case .department: return client.departments[i].name
        case .user: return client.users[i].email
        case .category: return i == count - 1 ? nil : catalog.categories[i].name
        case .none, .time: return nil
        }
    }

    func id(_ i: Int) -> UUID128 {
        switch dimension {
        case .app: return client.apps[i].id
        case .department: return client.departments[i].id
        case .user: return client.users[i].id
        // The no-category row's id is null, and null sorts as the largest value (as its name does):
        // last among ties ascending by id.
        case .category: return i == count - 1 ? UUID128.noCategory : catalog.categories[i].id
        case .none, .time: return UUID128(high: 0, low: 0)
        }
    }

    func firstSeen(_ i: Int) -> Day? {
        dimension == .app ? client.usage?.firstSeen(app: i) : nil
    }
}

extension UUID128 {
    /// The tie-break id of the no-category row: after every real id.
    static let noCategory = UUID128(high: .max, low: .max)
}
