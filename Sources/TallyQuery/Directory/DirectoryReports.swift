import TallyStorage

/// The directory and insight endpoints K–R of SPEC §3b over one client: who the users are,
/// what one user did, teams, active users, champions, churn, re-engagement and licence use.
/// Parameters arrive validated (the API layer's); every answer is written as JSON or compact.
public struct DirectoryReports {
    public let store: Store
    public let client: ClientStore
    public let format: ResultFormat
    /// Turns the next page's key into the opaque `next_cursor`.
    public let cursor: (PageKey) -> String

    public init(store: Store, client: ClientStore, format: ResultFormat = .json,
                cursor: @escaping (PageKey) -> String = { Cursor.encode($0, fingerprint: 0) }) {
        self.store = store
        self.client = client
        self.format = format
        self.cursor = cursor
    }

    /// The day reports are taken on when none is given: the client's newest activity date.
    public var defaultAsOf: Day? { client.usage?.newestDay }

    var directory: UserDirectory { UserDirectory.of(client) }

    // MARK: - Activity

    /// Day offsets `lo…hi` of `range` in the client's index, or `nil` when they do not overlap.
    func offsets(_ range: DayRange) -> (lo: Int, hi: Int)? { client.usage?.offsets(range) }

    /// Users with activity of `scope`'s apps in `range`.
    func activeUsers(_ scope: Scope, _ range: DayRange) -> UserSet {
        let set = UserSet(domain: client.users.count)
        guard range.start <= range.end, let scan = PeriodScan(scope: scope, range: range) else { return set }
        scan.unionOfApps(.all, into: set)
        return set
    }

    /// Number of users with any activity in `range`.
    func activeCount(_ range: DayRange) -> Int { distinctUsers(client, catalog: store.catalog, range) }

    func scope(_ f: Filters) -> Scope { Scope(client: client, catalog: store.catalog, filters: f) }

    /// The app mask of a filtered scope, `nil` when every app counts.
    func mask(_ s: Scope) -> [Bool]? { s.appClass == .all ? nil : s.appMask }

    /// A user's last day with activity (of the masked apps) within `range`.
    func lastDay(_ u: UInt32, _ range: DayRange, mask: [Bool]?) -> Day? {
        guard let index = client.usage, range.start <= range.end, let (lo, hi) = offsets(range) else { return nil }
        if mask == nil {
            // Whole-history bounds first: most answers are there without a scan.
            let last = Int(client.activity.lastOffset[Int(u)]), first = Int(client.activity.firstOffset[Int(u)])
            if last < 0 || last < lo || first > hi { return nil }
            if last <= hi { return index.firstDay.adding(last) }
        }
        return index.pairs.lastDay(user: Int(u), lo, hi, mask: mask).map { index.firstDay.adding($0) }
    }

    /// A user's first day with activity (of the masked apps) within `range`.
    func firstDay(_ u: UInt32, _ range: DayRange, mask: [Bool]?) -> Day? {
        guard let index = client.usage, range.start <= range.end, let (lo, hi) = offsets(range) else { return nil }
        if mask == nil {
            let last = Int(client.activity.lastOffset[Int(u)]), first = Int(client.activity.firstOffset[Int(u)])
            if last < 0 || last < lo || first > hi { return nil }
            if first >= lo { return index.firstDay.adding(first) }
        }
        return index.pairs.firstDay(user: Int(u), lo, hi, mask: mask).map { index.firstDay.adding($0) }
    }

    /// Distinct apps (of `scope`) and distinct active days of user `u` within `range`.
    func userMetrics(_ u: UInt32, _ range: DayRange, _ scope: Scope) -> Metrics {
        PeriodScan(scope: scope, range: range)?.userRows([Int(u)]).first?.metrics ?? Metrics()
    }

    /// The part of `range` up to `asOf`, or `nil` when none is.
    func upTo(_ range: DayRange, _ asOf: Day?) -> DayRange? { asOf.flatMap { span(range.start, min(range.end, $0)) } }

    /// The days `a…b`, or `nil` when `b` is before `a` (an `as_of` before the client's history).
    func span(_ a: Day, _ b: Day) -> DayRange? { a <= b ? DayRange(a, b) : nil }

    /// The first day of the client's history (day 0, 1970-01-01, for a client without usage).
    var historyStart: Day { client.usage?.firstDay ?? Day(raw: 0) }

    // MARK: - Writing

    func document(_ capacity: Int, _ body: (inout AnyWriter) -> Void) -> [UInt8] {
        var w = AnyWriter(format, capacity: capacity)
        body(&w)
        return w.bytes
    }

    /// `UserRow` (SPEC §3b) as an object value; first/last active dates without filters, up to `asOf`.
    func userRow(_ w: inout AnyWriter, _ u: UInt32, asOf: Day?) {
        let user = client.users[Int(u)], dir = directory
        w.beginObject()
        w.key("id"); w.uuid(user.id)
        w.key("email"); w.string(user.email)
        w.key("display_name"); w.string(user.displayName)
        w.key("is_active"); w.bool(user.isActive)
        w.key("role"); w.string(user.role)
        w.key("created_at"); w.string(dir.created[Int(u)])
        w.key("departments")
        w.beginArray()
        for d in client.departments(ofUser: u).sorted(by: { dir.departmentRank[Int($0)] < dir.departmentRank[Int($1)] }) {
            writeDepartmentRef(&w, d, client: client)
        }
        w.endArray()
        let upTo = asOf.flatMap { span(historyStart, $0) }
        w.key("first_active_date"); w.day(upTo.flatMap { firstDay(u, $0, mask: nil) })
        w.key("last_active_date"); w.day(upTo.flatMap { lastDay(u, $0, mask: nil) })
        w.endObject()
    }

    /// `data`, `total_count` and `next_cursor` of a page, each row written by `row`.
    func writePage<Row>(_ w: inout AnyWriter, _ p: Paged<Row>, _ row: (inout AnyWriter, Row) -> Void) {
        w.key("data")
        w.beginArray()
        for r in p.rows { row(&w, r.row) }
        w.endArray()
        w.key("total_count"); w.int(p.total)
        w.key("next_cursor"); w.string(p.next.map(cursor))
    }
}

// MARK: - K, L

/// K's filters (SPEC §3b).
public struct UserListFilter: Sendable {
    /// Unicode lower case of `q`, as scalars.
    public var q: [UInt32]?
    public var departmentId: UUID128?
    public var hasDepartment: Bool?
    public var isActive: Bool?
    public var role: String?
    public init(q: String? = nil, departmentId: UUID128? = nil, hasDepartment: Bool? = nil, isActive: Bool? = nil, role: String? = nil) {
        self.q = q.map { $0.lowercased().unicodeScalars.map(\.value) }
        self.departmentId = departmentId
        self.hasDepartment = hasDepartment
        self.isActive = isActive
        self.role = role
    }
}

extension DirectoryReports {
    public static let userSorts = ["email", "display_name", "created_at", "last_active_date"]

    /// K `users`: the client's users, filtered, sorted and paged.
    /// - Complexity: O(users) filter tests, then the page from a stored order (O(users) keys for
    ///   `last_active_date`).
    public func users(_ f: UserListFilter, asOf: Day?, page: DirectoryPage) -> [UInt8] {
        let dir = directory
        // An unknown department matches nobody.
        let department = f.departmentId.flatMap { client.departmentIndex[$0] }
        let unfiltered = f.isActive == nil && f.role == nil && f.hasDepartment == nil && f.departmentId == nil && f.q == nil
        var keep = [Bool](repeating: unfiltered, count: client.users.count)
        var total = unfiltered ? client.users.count : 0
        let byDepartment = f.hasDepartment != nil || f.departmentId != nil
        let starts = client.userDepartmentStart, memberships = client.userDepartments
        for u in client.users.indices where !unfiltered {
            let user = client.users[u]
            if let want = f.isActive, user.isActive != want { continue }
            if let role = f.role, user.role != role { continue }
            if byDepartment {
                // Bounds into the membership list, not a slice per user (a slice retains the list).
                let a = Int(starts[u]), b = Int(starts[u + 1])
                if let want = f.hasDepartment, (a == b) == want { continue }
                if f.departmentId != nil {
                    guard let department, (a..<b).contains(where: { memberships[$0] == department }) else { continue }
                }
            }
            if let q = f.q {
                guard Self.contains(dir.email[u], q) || dir.displayName[u].map({ Self.contains($0, q) }) == true else { continue }
            }
            keep[u] = true
            total += 1
        }
        let sortBy = page.sortBy ?? "email"
        let order = page.order ?? (sortBy == "last_active_date" || sortBy == "created_at" ? .desc : .asc)
        let upTo = asOf.flatMap { span(historyStart, $0) }
        func key(_ u: UInt32) -> PageKey {
            let value: SortValue
            switch sortBy {
            case "display_name": value = .text(dir.displayName[Int(u)])
            case "created_at": value = .text(dir.createdKey[Int(u)])
            case "last_active_date": value = upTo.flatMap { lastDay(u, $0, mask: nil) }.map { .day($0) } ?? .text(nil)
            default: value = .text(dir.email[Int(u)])
            }
            return PageKey(value: value, id: client.users[Int(u)].id)
        }
        var rows: [UInt32] = []
        var next: PageKey?
        if sortBy == "last_active_date" {
            let users = (0..<UInt32(client.users.count)).filter { keep[Int($0)] }
            // Every user's last day up to as_of at once (stored bounds, then a walk back over
            // the days for those active after as_of), paged by packed integers.
            var last: [Int32] = []
            if let upTo, let scan = ActivityScan(client), let (_, hi) = offsets(upTo) { last = scan.lastActive(users, upTo: hi) }
            let first = client.usage?.firstDay ?? Day(raw: 0)
            if let p = RankedPage(users: users, key: { u in last.isEmpty || last[Int(u)] < 0 ? nil : Int(first.adding(Int(last[Int(u)])).raw) },
                                  kind: .day, order: order, after: page.after, size: page.size, directory: dir, client: client) {
                rows = p.rows.map(\.user)
                next = p.next
            } else {
                let items = users.map { (key: key($0), row: $0) }
                let p = Paged(items, order: order, after: page.after, size: page.size)
                rows = p.rows.map(\.row)
                next = p.next
            }
        } else {
            // A stored order (ascending by key, then id): walk it from the cursor's place, either way.
            let orders = sortBy == "display_name" ? dir.byDisplayName : sortBy == "created_at" ? dir.byCreated : dir.byEmail
            let sorted = order == .asc ? orders.asc : orders.desc
            var lo = 0
            if let after = page.after {
                // The first position whose key comes after the cursor in this order.
                var a = 0, b = sorted.count
                while a < b {
                    let m = (a + b) / 2
                    if Executor.compare(key(sorted[m]), after, order) > 0 { b = m } else { a = m + 1 }
                }
                lo = a
            }
            var i = lo
            while i < sorted.count {
                let u = sorted[i]
                i += 1
                guard keep[Int(u)] else { continue }
                if rows.count == page.size {
                    next = key(rows.last!)
                    break
                }
                rows.append(u)
            }
        }
        return document(512 + 600 * rows.count) { w in
            w.beginObject()
            w.key("as_of"); w.day(asOf)
            w.key("data")
            w.beginArray()
            for u in rows { userRow(&w, u, asOf: asOf) }
            w.endArray()
            w.key("total_count"); w.int(total)
            w.key("next_cursor"); w.string(next.map(cursor))
            w.endObject()
        }
    }

    /// Whether `needle` occurs in `hay`, scalar by scalar (no wildcards).
    static func contains(_ hay: [UInt32], _ needle: [UInt32]) -> Bool {
        if needle.isEmpty { return true }
        if needle.count > hay.count { return false }
        for start in 0...(hay.count - needle.count) {
            var k = 0
            while k < needle.count && hay[start + k] == needle[k] { k += 1 }
            if k == needle.count { return true }
        }
        return false
    }

    /// L `users/{user_id}`: one user's activity in `period` (up to `asOf`), per app and per bucket.
    /// - Complexity: O(the user's pairs × the period's words × buckets).
    public func user(_ u: UInt32, period: DayRange?, granularity: Granularity?, asOf: Day?) -> [UInt8] {
        let effective = period.flatMap { upTo($0, asOf) }, all = scope(Filters())
        struct AppRow { var app: UInt32; var days: Int; var first: Day; var last: Day; var name: SortValue }
        var apps: [AppRow] = []
        if let index = client.usage, let r = effective, let (lo, hi) = offsets(r) {
            let view = index.pairs, pairs = view.base
            func add(_ app: Int, days n: Int, _ a: Int, _ b: Int) {
                let name = store.catalog.applications[Int(client.apps[app].catalogIndex)].canonicalName
                apps.append(AppRow(app: UInt32(app), days: n, first: index.firstDay.adding(a), last: index.firstDay.adding(b), name: .name(name)))
            }
            // The tail's rows (on the index's last days) first: their pairs get those days.
            var tailPairs: [Int: (basePair: Int, days: Int, first: Int, last: Int)] = [:]
            if view.tailOverlaps(lo, hi) {
                view.forEachTailPair(user: Int(u)) { row in
                    guard row.isIn(lo, hi) else { return }
                    let d = Int(row.day)
                    if let t = tailPairs[Int(row.app)] {
                        tailPairs[Int(row.app)] = (t.basePair, t.days + 1, min(t.first, d), max(t.last, d))
                    } else {
                        tailPairs[Int(row.app)] = (Int(row.basePair), 1, d, d)
                    }
                }
                for (app, t) in tailPairs {
                    let p = t.basePair
                    let n = p < 0 ? 0 : pairs.dayCount(pair: p, lo, hi)
                    add(app, days: n + t.days, p < 0 ? t.first : pairs.firstDay(pair: p, lo, hi) ?? t.first, t.last)
                }
            }
            for p in Int(pairs.userStart[Int(u)])..<Int(pairs.userStart[Int(u) + 1]) where tailPairs[Int(pairs.pairApp[p])] == nil {
                let n = pairs.dayCount(pair: p, lo, hi)
                guard n > 0, let a = pairs.firstDay(pair: p, lo, hi), let b = pairs.lastDay(pair: p, lo, hi) else { continue }
                add(Int(pairs.pairApp[p]), days: n, a, b)
            }
        }
        apps.sort { x, y in
            if x.days != y.days { return x.days > y.days }
            let c = Executor.compareValues(x.name, y.name)
            return c != 0 ? c < 0 : client.apps[Int(x.app)].id < client.apps[Int(y.app)].id
        }
        let total = effective.map { userMetrics(u, $0, all).activeDays } ?? 0
        return document(1024 + 300 * apps.count) { w in
            w.beginObject()
            w.key("user"); userRow(&w, u, asOf: asOf)
            w.key("period")
            if let period {
                w.beginObject()
                w.key("start_date"); w.day(period.start)
                w.key("end_date"); w.day(period.end)
                w.endObject()
            } else {
                w.null()
            }
            w.key("active_days"); w.int(total)
            w.key("app_count"); w.int(apps.count)
            w.key("apps")
            w.beginArray()
            for a in apps {
                w.beginObject()
                writeAppRef(&w, a.app, client: client, catalog: store.catalog)
                w.key("active_days"); w.int(a.days)
                w.key("first_date"); w.day(a.first)
                w.key("last_date"); w.day(a.last)
                w.endObject()
            }
            w.endArray()
            w.key("series")
            if let granularity {
                // Without a period (a client with no usage and no dates given) there are no buckets.
                w.beginArray()
                for (cal, clipped) in period.map({ granularity.buckets($0) }) ?? [(calendar: DayRange, clipped: DayRange)]() {
                    let m = upTo(clipped, asOf).map { userMetrics(u, $0, all) } ?? Metrics()
                    w.beginObject()
                    w.key("bucket_start"); w.day(clipped.start)
                    w.key("bucket_end"); w.day(clipped.end)
                    w.key("active_days"); w.int(m.activeDays)
                    w.key("app_count"); w.int(m.apps)
                    w.key("complete"); w.bool(cal == clipped && asOf.map { cal.end <= $0 } == true)
                    w.endObject()
                }
                w.endArray()
            } else {
                w.null()
            }
            w.endObject()
        }
    }
}
