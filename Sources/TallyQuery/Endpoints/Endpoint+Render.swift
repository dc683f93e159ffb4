import TallyStorage

/// How an answer's document is written: JSON text, or the compact binary encoding of the
/// binary protocol (docs/PROTOCOL.md §4). Both carry the same document.
public enum ResultFormat: UInt8, Sendable, CaseIterable {
    case json = 0
    case compact = 1
}

extension Endpoint {
    /// Runs the endpoint and writes its body exactly as SPEC §3 shapes it, in `format`. `cursor`
    /// turns the next page's key into the opaque `next_cursor` string.
    public func respond(_ r: EndpointRequest, executor: Executor, levels: UsageLevelThresholds = .init(),
                        format: ResultFormat = .json,
                        cursor: (PageKey) -> String = { Cursor.encode($0, fingerprint: 0) }) throws -> [UInt8] {
        let q = query(r)
        let result = try executor.run(q)
        let client = executor.store.client(r.client)!
        // Rows and buckets to write: a per-app row with its app, category and vendor objects is
        // about 400 bytes of JSON and 200 compact, so most documents fit without growing.
        let rows = result.rows.count &+ result.series.count &+ (result.compareSeries?.count ?? 0)
        switch format {
        case .json:
            var w = RowWriter(out: JSONWriter(capacity: 1024 &+ 400 &* rows), catalog: executor.store.catalog, client: client,
                              levels: levels, days: r.period.length, compared: q.comparison != nil)
            write(r, q, result, into: &w, cursor: cursor)
            return w.out.take()
        case .compact:
            var w = RowWriter(out: CompactWriter(capacity: 512 &+ 200 &* rows), catalog: executor.store.catalog, client: client,
                              levels: levels, days: r.period.length, compared: q.comparison != nil)
            write(r, q, result, into: &w, cursor: cursor)
            return w.out.finish()
        }
    }

    func write<W: DocumentWriter>(_ r: EndpointRequest, _ q: Query, _ result: QueryResult, into w: inout RowWriter<W>,
                                  cursor: (PageKey) -> String) {
        w.out.beginObject()
        if self != .aiUsers {
            w.out.key("period")
            w.out.beginObject()
            w.out.key("start_date"); w.out.day(r.period.start)
            w.out.key("end_date"); w.out.day(r.period.end)
            w.out.key("compare_start_date"); w.out.day(q.comparison?.start)
            w.out.key("compare_end_date"); w.out.day(q.comparison?.end)
            w.out.endObject()
        }
        switch self {
        case .summary, .aiSummary:
            w.summary(result.rows.first ?? ResultRow(key: .total, value: Metrics(), compare: nil), ai: self == .aiSummary)
        case .trend:
            w.out.key("granularity"); w.out.string((r.granularity ?? .monthly).rawValue)
            w.out.key("series"); w.series(result.series)
            w.out.key("compare_series")
            if let c = result.compareSeries { w.series(c) } else { w.out.null() }
        default:
            w.out.key("data")
            w.out.beginArray()
            for row in result.rows { w.row(row, for: self) }
            w.out.endArray()
            w.out.key("total_count"); w.out.int(result.totalCount)
            w.out.key("next_cursor"); w.out.string(result.next.map(cursor))
        }
        w.out.endObject()
    }
}

/// Writes result rows as the objects of SPEC §3.
struct RowWriter<W: DocumentWriter> {
    var out: W
    let catalog: Catalog
    let client: ClientStore
    let levels: UsageLevelThresholds
    let days: Int
    let compared: Bool

    init(out: W, catalog: Catalog, client: ClientStore, levels: UsageLevelThresholds, days: Int, compared: Bool) {
        self.out = out
        self.catalog = catalog
        self.client = client
        self.levels = levels
        self.days = days
        self.compared = compared
    }

    /// `MetricWithDelta`.
    mutating func metric(_ key: StaticString, _ value: Int, _ compare: Int?) { writeMetric(&out, key, value, compare) }

    mutating func appRef(_ a: UInt32) { writeAppRef(&out, a, client: client, catalog: catalog) }

    mutating func categoryRef(_ key: StaticString, _ c: Int32?) {
        out.key(key)
        guard let c else { out.null(); return }
        let x = catalog.categories[Int(c)]
        out.beginObject()
        out.key("id"); out.uuid(x.id)
        out.key("name"); out.string(x.name)
        out.key("is_ai"); out.bool(x.isAI)
        out.endObject()
    }

    mutating func vendorRef(_ v: Int32?) {
        out.key("vendor")
        guard let v else { out.null(); return }
        let x = catalog.vendors[Int(v)]
        out.beginObject()
        out.key("id"); out.uuid(x.id)
        out.key("name"); out.string(x.name)
        out.endObject()
    }

    /// A `DepartmentRef` as an object value (in an array or after a key).
    mutating func departmentRef(_ d: UInt32) { writeDepartmentRef(&out, d, client: client) }

    mutating func level(_ m: Metrics) {
        out.key("usage_level"); out.string(levels.level(userDays: m.userDays, users: m.users, days: days))
    }

    /// D's department refs as JSON (``JSONRows``), made on the first row that needs them.
    var departmentJSON: DepartmentRefJSON?

    mutating func row(_ row: ResultRow, for endpoint: Endpoint) {
        let m = row.value, c = row.compare
        if W.self == JSONWriter.self, endpoint == .users, case .user(let u) = row.key, JSONRows.enabled {
            if departmentJSON == nil { departmentJSON = DepartmentRefJSON.of(client) }
            let refs = departmentJSON!, client = client
            withUnsafeMutablePointer(to: &out) { w in
                w.withMemoryRebound(to: JSONWriter.self, capacity: 1) { $0.pointee.userRow(client, user: Int(u), m, c, departments: refs) }
            }
            return
        }
        out.beginObject()
        switch (endpoint, row.key) {
        case (.utilization, .app(let a)):
            let app = client.apps[Int(a)]
            appRef(a)
            categoryRef("category", app.category)
            vendorRef(app.vendor)
            metric("unique_users", m.users, c?.users)
            level(m)
        case (.aiUsers, .app(let a)):
            appRef(a)
            metric("user_count", m.users, c?.users)
            level(m)
        case (.aiNew, .app(let a)):
            appRef(a)
            out.key("first_seen_date"); out.day(client.usage?.firstSeen(app: Int(a)))
            out.key("unique_users"); out.int(m.users)
        case (.departments, .department(let d)):
            out.key("department"); departmentRef(d)
            metric("user_count", m.users, c?.users)
            metric("app_count", m.apps, c?.apps)
        case (.aiDepartments, .department(let d)):
            out.key("department"); departmentRef(d)
            metric("user_count", m.users, c?.users)
            metric("approved_user_count", m.approvedUsers, c?.approvedUsers)
            metric("unapproved_user_count", m.unapprovedUsers, c?.unapprovedUsers)
        case (.categories, .category(let cat)):
            categoryRef("category", cat)
            metric("user_count", m.users, c?.users)
            metric("app_count", m.apps, c?.apps)
        case (.users, .user(let u)):
            // Fields read in place, not the whole row copied (its four strings retained and
            // released for each row: with the copies, 15% of a page of D's samples under `perf`
            // were reference counting).
            let i = Int(u)
            out.key("user")
            out.beginObject()
            out.key("id"); out.uuid(client.users[i].id)
            out.key("email"); out.string(client.users[i].email)
            out.key("display_name"); out.string(client.users[i].displayName)
            out.key("departments")
            out.beginArray()
            for k in Int(client.userDepartmentStart[i])..<Int(client.userDepartmentStart[i &+ 1]) {
                departmentRef(client.userDepartments[k])
            }
            out.endArray()
            out.endObject()
            metric("app_count", m.apps, c?.apps)
            metric("active_days", m.activeDays, c?.activeDays)
        default:
            break
        }
        out.endObject()
    }

    /// Summary cards: with a comparison, an inactive comparison period gives 0, not null.
    mutating func summary(_ row: ResultRow, ai: Bool) {
        let m = row.value
        let c: Metrics? = compared ? (row.compare ?? Metrics()) : nil
        if ai {
            metric("ai_app_count", m.apps, c?.apps)
            metric("ai_user_count", m.users, c?.users)
            metric("unapproved_ai_app_count", m.unapprovedApps, c?.unapprovedApps)
            metric("unapproved_ai_user_count", m.unapprovedUsers, c?.unapprovedUsers)
            out.key("ai_user_share_pct"); out.tenths(Derived.percentTenths(m.users, of: m.anyAppUsers))
        } else {
            metric("unique_users", m.users, c?.users)
            metric("app_count", m.apps, c?.apps)
            metric("approved_app_count", m.approvedApps, c?.approvedApps)
            metric("unapproved_app_count", m.unapprovedApps, c?.unapprovedApps)
            metric("unapproved_user_count", m.unapprovedUsers, c?.unapprovedUsers)
        }
    }

    mutating func series(_ s: [Bucket]) {
        out.beginArray()
        for b in s {
            out.beginObject()
            out.key("bucket_start"); out.day(b.range.start)
            out.key("bucket_end"); out.day(b.range.end)
            out.key("unique_users"); out.int(b.value.users)
            out.key("app_count"); out.int(b.value.apps)
            out.key("complete"); out.bool(b.complete)
            out.endObject()
        }
        out.endArray()
    }
}

/// `"app": AppRef` of app `a` (SPEC §3).
func writeAppRef<W: DocumentWriter>(_ out: inout W, _ a: UInt32, client: ClientStore, catalog: Catalog) {
    let app = client.apps[Int(a)]
    let cat = catalog.applications[Int(app.catalogIndex)]
    out.key("app")
    out.beginObject()
    out.key("id"); out.uuid(app.id)
    out.key("canonical_name"); out.string(cat.canonicalName)
    out.key("logo"); out.string(cat.logo)
    out.key("type"); out.string(cat.type)
    out.key("is_favorite"); out.bool(app.isFavorite)
    out.key("is_approved"); out.bool(app.isApproved)
    out.endObject()
}

/// `key: MetricWithDelta` (SPEC §3).
func writeMetric<W: DocumentWriter>(_ out: inout W, _ key: StaticString, _ value: Int, _ compare: Int?) {
    out.key(key)
    out.beginObject()
    out.key("value"); out.int(value)
    out.key("change_pct"); out.tenths(Derived.changePctTenths(value: value, compare: compare))
    out.key("compare_value"); out.int(compare)
    out.endObject()
}

/// A `DepartmentRef` of department `d` as an object value (in an array or after a key).
func writeDepartmentRef<W: DocumentWriter>(_ out: inout W, _ d: UInt32, client: ClientStore) {
    let i = Int(d)
    out.beginObject()
    out.key("id"); out.uuid(client.departments[i].id)
    out.key("name"); out.string(client.departments[i].name)
    out.key("description"); out.string(client.departments[i].description)
    out.endObject()
}
