import TallyStorage

/// The admin reports over clients of SPEC §3c: client churn, re-engagement, growth and
/// attrition, and the chart metrics. Each client's figures come from its running sums (is it
/// active in a range, its first or last active day: O(log days)), its range tables or block
/// unions (distinct users in a range) and its sorted first-activity days (users new in a range:
/// O(log users)), never from its rows.
public struct AdminReports {
    public let store: Store
    public let format: ResultFormat
    public let cursor: (PageKey) -> String

    public init(store: Store, format: ResultFormat = .json, cursor: @escaping (PageKey) -> String = { Cursor.encode($0, fingerprint: 0) }) {
        self.store = store
        self.format = format
        self.cursor = cursor
    }

    /// The newest activity date of the whole store.
    public var defaultAsOf: Day? { store.clients.compactMap { $0.usage?.newestDay }.max() }

    static func all(_ u: UsageIndex) -> Int { u.entity(.all) }

    func distinctUsers(_ c: ClientStore, _ range: DayRange) -> Int { TallyQuery.distinctUsers(c, catalog: store.catalog, range) }

    func isActive(_ u: UsageIndex, _ range: DayRange) -> Bool {
        range.start <= range.end && u.isActive(entity: Self.all(u), range)
    }

    /// Users of `c` whose first activity (whole history) falls in `range`.
    func newUsers(_ c: ClientStore, _ range: DayRange) -> Int {
        guard let u = c.usage, range.start <= range.end else { return 0 }
        return UserActivity.count(c.activity.sortedFirst, u.firstDay.distance(to: range.start), u.firstDay.distance(to: range.end))
    }

    struct ClientRow { var client: ClientStore; var a: Int = 0; var b: Int = 0; var d1: Day?; var d2: Day? }

    public enum Report: String, Sendable, CaseIterable { case churn, reengagement, growth, attrition }

    /// One report for the window of `days` days ending on `asOf` (the store's newest date by default).
    public func report(_ kind: Report, days n: Int, interval: String, asOf: Day?, pageSize: Int, after: PageKey?) -> [UInt8] {
        var items: [(key: PageKey, row: ClientRow)] = []
        if let asOf {
            let window = DayRange(asOf.adding(1 - n), asOf)
            for c in store.clients {
                guard let u = c.usage else { continue }
                let start = u.firstDay
                switch kind {
                case .churn:
                    guard start < window.start, !isActive(u, window),
                          let last = u.lastActiveDay(entity: Self.all(u), DayRange(start, window.start.adding(-1))) else { continue }
                    items.append((PageKey(value: .day(last), id: c.info.id), ClientRow(client: c, d1: last)))
                case .reengagement:
                    let w0 = DayRange(asOf.adding(1 - 2 * n), asOf.adding(-n))
                    guard start < w0.start else { continue }
                    let before = DayRange(start, w0.start.adding(-1))
                    guard !isActive(u, w0), isActive(u, before), let back = u.firstActiveDay(entity: Self.all(u), window),
                          let previous = u.lastActiveDay(entity: Self.all(u), before) else { continue }
                    items.append((PageKey(value: .day(back), id: c.info.id), ClientRow(client: c, d1: back, d2: previous)))
                case .growth, .attrition:
                    let added = newUsers(c, window)
                    // Last activity up to as_of in the n days before the window: active in those
                    // days or the window, less those active in the window.
                    let removed = distinctUsers(c, DayRange(window.start.adding(-n), asOf)) - distinctUsers(c, window)
                    if kind == .growth ? (added == 0 && removed == 0) : removed == 0 { continue }
                    let key = kind == .growth ? added - removed : removed
                    items.append((PageKey(value: .int(key), id: c.info.id), ClientRow(client: c, a: added, b: removed)))
                }
            }
        }
        let p = Paged(items, order: .desc, after: after, size: pageSize)
        var w = AnyWriter(format, capacity: 512 + 200 * p.rows.count)
        w.beginObject()
        w.key("as_of"); w.day(asOf)
        w.key("report_interval"); w.string(interval)
        w.key("data")
        w.beginArray()
        for (_, r) in p.rows {
            w.beginObject()
            w.key("client")
            w.beginObject()
            w.key("id"); w.uuid(r.client.info.id)
            w.key("name"); w.string(r.client.info.name)
            w.endObject()
            w.key("num_users"); w.int(r.client.users.count)
            switch kind {
            case .churn:
                w.key("last_active_date"); w.day(r.d1)
            case .reengagement:
                w.key("reengaged_on"); w.day(r.d1)
                w.key("previous_active_date"); w.day(r.d2)
            case .growth, .attrition:
                w.key("num_users_added"); w.int(r.a)
                w.key("num_users_removed"); w.int(r.b)
                w.key("net_growth"); w.int(r.a - r.b)
            }
            w.endObject()
        }
        w.endArray()
        w.key("total_count"); w.int(p.total)
        w.key("next_cursor"); w.string(p.next.map(cursor))
        w.endObject()
        return w.bytes
    }

    public enum Chart: String, Sendable, CaseIterable { case activeUsers = "active_users", activeClients = "active_clients", newUsers = "new_users" }

    /// A chart: one entry per calendar bucket of `cadence` overlapping `period`.
    public func chart(_ chart: Chart, cadence: Granularity, period: DayRange) -> [UInt8] {
        let newest = defaultAsOf
        let buckets = cadence.buckets(period)
        var w = AnyWriter(format, capacity: 256 + 80 * buckets.count)
        w.beginObject()
        w.key("chart_type"); w.string(chart.rawValue)
        w.key("cadence"); w.string(cadence.rawValue)
        w.key("metrics")
        w.beginArray()
        // Client by client (one scratch set each), bucket by bucket.
        var results = [Int](repeating: 0, count: buckets.count)
        for c in store.clients {
            guard let u = c.usage else { continue }
            switch chart {
            case .activeUsers:
                let counts = TallyQuery.distinctUsers(c, buckets.map(\.clipped))
                for i in counts.indices { results[i] += counts[i] }
            case .activeClients:
                for (i, b) in buckets.enumerated() where isActive(u, b.clipped) { results[i] += 1 }
            case .newUsers:
                for (i, b) in buckets.enumerated() { results[i] += newUsers(c, b.clipped) }
            }
        }
        for ((cal, clipped), result) in zip(buckets, results) {
            w.beginObject()
            w.key("date"); w.day(clipped.start)
            w.key("result"); w.int(result)
            w.key("cadence_completed"); w.bool(cal == clipped && newest.map { cal.end <= $0 } == true)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }
}

/// Users of `c` with any activity in each of `ranges`: a day's cardinality, a range table, or
/// the union of the `all` class's stored blocks in one scratch set reused across the ranges
/// (the admin charts: 120 clients × 26 weekly buckets took 6.9 ms with a scan set up per
/// client and bucket, at scale M).
func distinctUsers(_ c: ClientStore, _ ranges: [DayRange]) -> [Int] {
    guard let u = c.usage else { return ranges.map { _ in 0 } }
    let all = u.entity(.all)
    var set: UserSet?
    return ranges.map { range in
        guard range.start <= range.end, let (lo, hi) = u.offsets(range) else { return 0 }
        if lo == hi { return u.dayCardinality(entity: all, offset: lo) }
        if let n = u.rangeCount(entity: all, lo, hi) { return n }
        let s = set ?? UserSet(domain: c.users.count)
        set = s
        s.clear()
        for (level, block) in u.blocks(DayRange(u.firstDay.adding(lo), u.firstDay.adding(hi))) {
            u.formUnion(entity: all, level: level, block: block, into: s)
        }
        return s.count
    }
}

/// Users of `c` with any activity in `range`.
func distinctUsers(_ c: ClientStore, catalog: Catalog, _ range: DayRange) -> Int { distinctUsers(c, [range])[0] }
