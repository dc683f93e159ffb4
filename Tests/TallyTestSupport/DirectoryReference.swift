import Foundation
import TallyStorage

// A brute-force reading of SPEC §3b (endpoints K–R) and §3c (admin reports and charts), written
// from the SPEC alone: Swift Sets and loops over the dump's rows, nothing shared with the engine.
//
// Where the SPEC is ambiguous, this reference reads it as follows:
//  1. Error precedence: unknown path (404) → admin path without an all-clients token (403) →
//     client unknown or not a UUID (404 to an all-clients token, else 403) → user/department of
//     the path not a UUID or not the client's (404) → parameters, in the order of the SPEC's
//     table (as_of first, then the endpoint's own parameters, sort_by, sort_order).
//     For a restricted token (`readsAllClients: false`) a known client is assumed readable.
//     `/v2/analytics/clients/<unknown>` is an unknown path (404 first); `/v2/analytics/charts/
//     <unknown>` matches the chart route, so a restricted token gets 403 before the chart's 404.
//     A trailing slash or extra segment is an unknown path.
//  2. Period pairs follow A–J's error naming (ErrorTests): a missing start names `start_date`, a
//     missing end `end_date` (for L's optional pair: the one that is absent); start after end and
//     a span over 366 days name `end_date` (`compare_end_date` for the comparison). Charts alike.
//  3. L without an as_of (client without usage) and without dates: `period` null, counts 0,
//     `apps` [], and `series` [] when `granularity` is given (the buckets of no period), null
//     otherwise. L with dates but no as_of: the period as requested, no activity, every bucket
//     `complete` false. L's body has no `as_of` (the SPEC lists K, M1, O, P, Q, R2 only).
//  4. M2 takes B's parameters only: `as_of`, `app_ids`, `department_ids` are ignored, and so are
//     `sort_by`/`sort_order` (M2 is a single object). Nothing after as_of can exist there anyway
//     since as_of defaults to the client's newest date. L, N, R1, R2 also ignore sort parameters.
//  5. R2 is not paged: its body is exactly `{as_of, data}` (no total_count / next_cursor). With
//     no as_of (client without usage), `start_month` is checked for its form only.
//  6. `window_days` accepts ASCII digits only (no sign, no spaces); leading zeros are allowed
//     ("007" is 7, echoed as the number 7).
//  7. Id lists (`app_ids`, `category_ids`, `vendor_ids`): split on ",", every item must be a UUID,
//     so an empty value or an empty item ("a,,b", "a,") is a 400 for that parameter.
//     K's `department_id` is one UUID; a malformed one is a 400, an unknown one matches nobody.
//  8. `q`: an empty `q=` is a 400 (fewer than 1 code point). Matching is a byte substring of the
//     UTF-8 of `String.lowercased()` of both sides (no normalisation, no trimming); a null
//     display_name never matches.
//  9. `role=` (empty) matches users whose role is the empty string; null roles never match.
// 10. Names and emails: compared as the code points of `String.lowercased()`; strings equal after
//     lower-casing tie and fall to the id (no case-sensitive second key).
// 11. Ids order: lowercase string form (= 128-bit unsigned order).
// 12. created_at: the fraction is rounded to the microsecond half away from zero on its decimal
//     digits (digit 7 ≥ 5 rounds up; carries reach seconds, minutes, days). PostgreSQL itself
//     parses the fraction as a double and uses rint(), which can differ on exact halves such as
//     ".1234565"; this reference follows the brief's "half away from zero". Seconds = 60 carry
//     into the next minute. `HH:MM` without seconds is allowed. The sort by created_at is by
//     that rounded instant; a null created_at is a null sort value.
// 13. K's sort `created_at` and `last_active_date` default to desc (dates), `display_name` and
//     `email` to asc. O accepts only `sort_by=num_active_days`.
// 14. P's and Q's `sort_by=days_inactive` and `reengaged_on` default to desc.
// 15. §3c: growth's "first activity over the whole history" may be after as_of (then it is not
//     in the window); "last activity (up to as_of)" ignores later rows. Users counted there are
//     users with usage rows. The chart `new_users` uses the whole history (charts take no as_of);
//     `active_*` count every row in the bucket. Admin `as_of` is null on a store without usage.
// 16. M1 `active_member_count` and R1 `active_users_30d` use the 30 days ending on as_of; with
//     no as_of they are 0. R2 months before any data are listed with 0 users.
// 17. `utilization_pct` may exceed 100 (more active users than seats).
// 18. Percentages are exact: tenths = round_half_away(1000·a / b), as a Double tenths/10.

/// The answer of ``DirectoryReference``: a JSON document (a Foundation object tree) or an error.
public enum ReferenceAnswer {
    case document(Any)
    case error(status: Int, parameter: String?)
}

/// The reference for the directory and insight endpoints (SPEC §3b) and the admin reports
/// (SPEC §3c): every answer recomputed from the dump's rows.
public struct DirectoryReference: Sendable {
    public let dump: RandomDump
    typealias Usage = RandomDump.Usage

    let clientById: [UUID128: RandomDump.Client]
    let userById: [UUID128: RandomDump.User]
    let appById: [UUID128: RandomDump.App]
    let catalogById: [UUID128: RandomDump.CatalogApp]
    let departmentById: [UUID128: RandomDump.Department]
    let departmentsOfUser: [UUID128: Set<UUID128>]
    let membersOfDepartment: [UUID128: Set<UUID128>]
    let usageOfClient: [UUID128: [Usage]]
    let usageOfUser: [UUID128: [Usage]]

    public init(_ dump: RandomDump) {
        self.dump = dump
        func index<T>(_ xs: [T], _ id: (T) -> UUID128) -> [UUID128: T] {
            Dictionary(xs.map { (id($0), $0) }, uniquingKeysWith: { a, _ in a })
        }
        clientById = index(dump.clients, \.id)
        userById = index(dump.users, \.id)
        appById = index(dump.apps, \.id)
        catalogById = index(dump.catalog, \.id)
        departmentById = index(dump.departments, \.id)
        var du: [UUID128: Set<UUID128>] = [:], md: [UUID128: Set<UUID128>] = [:]
        for (u, d) in dump.memberships {
            du[u, default: []].insert(d)
            md[d, default: []].insert(u)
        }
        departmentsOfUser = du
        membersOfDepartment = md
        usageOfClient = Dictionary(grouping: dump.usage, by: \.client)
        usageOfUser = Dictionary(grouping: dump.usage, by: \.user)
    }

    struct Refusal: Error {
        let status: Int
        let parameter: String?
    }

    /// The answer to `GET path?query` (query without `cursor` and `page_size`); list endpoints
    /// give every row in `data`, `total_count` = their number, `next_cursor` null.
    public func answer(path: String, query: [String: String], readsAllClients: Bool = true) -> ReferenceAnswer {
        do {
            return .document(try route(path, Params(q: query), readsAllClients))
        } catch let r as Refusal {
            return .error(status: r.status, parameter: r.parameter)
        } catch {
            return .error(status: 500, parameter: nil)
        }
    }

    func route(_ path: String, _ p: Params, _ all: Bool) throws -> Any {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let notFound = Refusal(status: 404, parameter: nil)
        guard parts.count >= 3, parts[0] == "", parts[1] == "v2" else { throw notFound }
        if parts[2] == "analytics" {
            guard parts.count == 5, ["clients", "charts"].contains(parts[3]) else { throw notFound }
            let known = parts[3] == "clients" ? ["churn", "reengagement", "growth", "attrition"]
                                              : ["active_users", "active_clients", "new_users"]
            if parts[3] == "clients" && !known.contains(parts[4]) { throw notFound }
            guard all else { throw Refusal(status: 403, parameter: nil) }
            guard known.contains(parts[4]) else { throw notFound }
            return parts[3] == "clients" ? try clientReport(parts[4], p) : try chart(parts[4], p)
        }
        guard parts[2] == "clients", parts.count >= 5 else { throw notFound }
        let rest = Array(parts[4...])
        enum Route { case k, l, m1, m2, n, o, p, q, r1, r2 }
        let r: Route
        switch rest.count {
        case 1 where rest[0] == "users": r = .k
        case 2 where rest[0] == "users": r = .l
        case 1 where rest[0] == "departments": r = .m1
        case 2 where rest[0] == "departments": r = .m2
        case 2 where rest == ["usage-statistics", "active-users"]: r = .n
        case 3 where rest == ["analytics", "users", "champions"]: r = .o
        case 3 where rest == ["analytics", "users", "churn"]: r = .p
        case 3 where rest == ["analytics", "users", "reengagement"]: r = .q
        case 1 where rest[0] == "license": r = .r1
        case 2 where rest == ["license", "utilization"]: r = .r2
        default: throw notFound
        }
        guard let cid = UUID128(parts[3]), let client = clientById[cid] else {
            throw Refusal(status: all ? 404 : 403, parameter: nil)
        }
        switch r {
        case .k: return try users(client, p)
        case .l:
            guard let uid = UUID128(rest[1]), let u = userById[uid], u.client == cid else { throw notFound }
            return try user(client, u, p)
        case .m1: return try departments(client, p)
        case .m2:
            guard let did = UUID128(rest[1]), let d = departmentById[did], d.client == cid else { throw notFound }
            return try department(client, d, p)
        case .n: return try activeUsers(client, p)
        case .o: return try champions(client, p)
        case .p: return try churn(client, p)
        case .q: return try reengagement(client, p)
        case .r1: return try license(client, p)
        case .r2: return try licenseUtilization(client, p)
        }
    }

    // MARK: - Parameters

    struct Params {
        let q: [String: String]
        subscript(_ name: String) -> String? { q[name] }
        func bad(_ name: String) -> Refusal { Refusal(status: 400, parameter: name) }

        func date(_ name: String) throws -> Day? {
            guard let s = q[name] else { return nil }
            guard let d = Day(s) else { throw bad(name) }
            return d
        }
        func bool(_ name: String) throws -> Bool? {
            guard let s = q[name] else { return nil }
            switch s {
            case "true": return true
            case "false": return false
            default: throw bad(name)
            }
        }
        func uuid(_ name: String) throws -> UUID128? {
            guard let s = q[name] else { return nil }
            guard let u = UUID128(s) else { throw bad(name) }
            return u
        }
        func ids(_ name: String) throws -> Set<UUID128>? {
            guard let s = q[name] else { return nil }
            var out: Set<UUID128> = []
            for item in s.split(separator: ",", omittingEmptySubsequences: false) {
                guard let u = UUID128(String(item)) else { throw bad(name) }
                out.insert(u)
            }
            return out
        }
        func oneOf(_ name: String, _ values: [String]) throws -> String? {
            guard let s = q[name] else { return nil }
            guard values.contains(s) else { throw bad(name) }
            return s
        }
        func required(_ name: String, _ values: [String]) throws -> String {
            guard let s = try oneOf(name, values) else { throw bad(name) }
            return s
        }
        /// `sort_by` among `keys` (default the first), then `sort_order`; true = descending.
        func sort(_ keys: [String], descending: Set<String>) throws -> (String, Bool) {
            let by = try oneOf("sort_by", keys) ?? keys[0]
            let order = try oneOf("sort_order", ["asc", "desc"])
            return (by, order.map { $0 == "desc" } ?? descending.contains(by))
        }
        /// A date pair with A–J's rules; nil when both are absent and not required.
        func range(_ start: String, _ end: String, required: Bool) throws -> DayRange? {
            let s = try date(start), e = try date(end)
            if s == nil && e == nil && !required { return nil }
            guard let s else { throw bad(start) }
            guard let e else { throw bad(end) }
            guard s <= e, s.distance(to: e) + 1 <= 366 else { throw bad(end) }
            return DayRange(s, e)
        }
        func activityFilter(vendors: Bool = false, apps: Bool = true) throws -> ActivityFilter {
            var f = ActivityFilter()
            if apps { f.appIds = try ids("app_ids") }
            f.categoryIds = try ids("category_ids")
            if vendors { f.vendorIds = try ids("vendor_ids") }
            f.approved = try bool("is_approved")
            return f
        }
    }

    struct ActivityFilter {
        var appIds: Set<UUID128>?
        var categoryIds: Set<UUID128>?
        var vendorIds: Set<UUID128>?
        var approved: Bool?
    }

    func passes(_ app: UUID128, _ f: ActivityFilter) -> Bool {
        guard let a = appById[app], let c = catalogById[a.catalog] else { return false }
        if let ids = f.appIds, !ids.contains(app) { return false }
        if let ids = f.categoryIds { guard let cat = c.category, ids.contains(cat) else { return false } }
        if let ids = f.vendorIds { guard let v = c.vendor, ids.contains(v) else { return false } }
        if let want = f.approved, a.approved != want { return false }
        return true
    }

    /// The client's rows up to `asOf` that pass `f` (none without an as_of).
    func activity(_ client: UUID128, upTo asOf: Day?, _ f: ActivityFilter = ActivityFilter()) -> [Usage] {
        guard let asOf else { return [] }
        return (usageOfClient[client] ?? []).filter { $0.day <= asOf && passes($0.app, f) }
    }

    func asOf(_ client: UUID128, _ p: Params) throws -> Day? {
        if let d = try p.date("as_of") { return d }
        return usageOfClient[client]?.map(\.day).max()
    }

    /// `[asOf − n + 1, asOf]`.
    static func window(_ asOf: Day, _ n: Int) -> DayRange { DayRange(asOf.adding(1 - n), asOf) }

    // MARK: - JSON pieces

    static func day(_ d: Day?) -> Any { d.map { $0.description } ?? NSNull() }
    static func opt(_ v: Any?) -> Any { v ?? NSNull() }

    func departmentRef(_ d: RandomDump.Department) -> [String: Any] {
        ["id": d.id.description, "name": d.name, "description": Self.opt(d.description)]
    }

    func userRow(_ u: RandomDump.User, asOf: Day?) -> [String: Any] {
        let days = asOf.map { a in (usageOfUser[u.id] ?? []).map(\.day).filter { $0 <= a } } ?? []
        let depts = Self.sorted((departmentsOfUser[u.id] ?? []).compactMap { departmentById[$0] }, descending: false,
                                key: { Self.nameKey($0.name) }, id: \.id)
        return ["id": u.id.description, "email": u.email, "display_name": Self.opt(u.displayName),
                "is_active": u.isActive, "role": Self.opt(u.role),
                "created_at": Self.opt(u.createdAt.map { Self.normalizedTimestamp($0) ?? "<unparsable \($0)>" }),
                "departments": depts.map(departmentRef),
                "first_active_date": Self.day(days.min()), "last_active_date": Self.day(days.max())]
    }

    func appRef(_ id: UUID128) -> [String: Any] {
        let a = appById[id]!, c = catalogById[a.catalog]!
        return ["id": id.description, "canonical_name": c.name, "logo": Self.opt(c.logo), "type": c.type,
                "is_favorite": a.favorite, "is_approved": a.approved]
    }

    func clientRef(_ c: RandomDump.Client) -> [String: Any] { ["id": c.id.description, "name": c.name] }

    static func list(_ rows: [Any], _ extra: [String: Any]) -> [String: Any] {
        var out = extra
        out["data"] = rows
        out["total_count"] = rows.count
        out["next_cursor"] = NSNull()
        return out
    }

    /// `num / den × 100`, one decimal, half away from zero, exactly; `den` > 0.
    static func percent(_ num: Int, _ den: Int) -> Double {
        let x = 1000 * num
        let t = (2 * abs(x) + den) / (2 * den)
        return Double(x < 0 ? -t : t) / 10
    }

    static func metric(_ value: Int, _ compare: Int?) -> [String: Any] {
        let change: Any = compare.flatMap { $0 == 0 ? nil : percent(value - $0, $0) } ?? NSNull()
        return ["value": value, "change_pct": change, "compare_value": opt(compare)]
    }

    // MARK: - Ordering

    /// Code points of the Unicode lower case.
    static func nameKey(_ s: String) -> [Int64] { s.lowercased().unicodeScalars.map { Int64($0.value) } }

    static func idLess(_ a: UUID128, _ b: UUID128) -> Bool {
        a.description.utf8.lexicographicallyPrecedes(b.description.utf8)
    }

    /// Sorted by `key` (nil last ascending, first descending), ties by id ascending.
    static func sorted<T>(_ xs: [T], descending: Bool, key: (T) -> [Int64]?, id: (T) -> UUID128) -> [T] {
        xs.sorted { a, b in
            let ka = key(a), kb = key(b)
            if ka != kb {
                switch (ka, kb) {
                case (nil, _): return descending
                case (_, nil): return !descending
                case let (x?, y?): return descending ? y.lexicographicallyPrecedes(x) : x.lexicographicallyPrecedes(y)
                }
            }
            return idLess(id(a), id(b))
        }
    }

    // MARK: - Calendar buckets

    /// The calendar bucket (`daily`, `weekly` from Monday, `monthly`, `quarterly`) holding `d`.
    static func bucket(_ d: Day, _ g: String) -> DayRange {
        let (y, m, _) = d.civil
        switch g {
        case "weekly":
            let s = d.adding(1 - d.isoWeekday)
            return DayRange(s, s.adding(6))
        case "monthly":
            return DayRange(Day(year: y, month: m, day: 1)!, Day(year: y, month: m, day: Day.daysIn(year: y, month: m))!)
        case "quarterly":
            let qm = (m - 1) / 3 * 3 + 1
            return DayRange(Day(year: y, month: qm, day: 1)!,
                            Day(year: y, month: qm + 2, day: Day.daysIn(year: y, month: qm + 2))!)
        default:
            return DayRange(d, d)
        }
    }

    /// Every calendar bucket overlapping `period`: (calendar bucket, bucket clipped to the period).
    static func buckets(_ period: DayRange, _ g: String) -> [(full: DayRange, clipped: DayRange)] {
        var out: [(DayRange, DayRange)] = []
        var d = period.start
        while d <= period.end {
            let b = bucket(d, g)
            out.append((b, DayRange(max(b.start, period.start), min(b.end, period.end))))
            d = b.end.adding(1)
        }
        return out
    }

    /// J's `complete`: not cut by the period, and the calendar end not after `newest`.
    static func complete(_ b: (full: DayRange, clipped: DayRange), _ newest: Day?) -> Bool {
        guard let newest else { return false }
        return b.full == b.clipped && b.full.end <= newest
    }
}

// MARK: - Endpoints K–R

extension DirectoryReference {
    /// K: `users`.
    func users(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        if let q = p["q"], !(1...100).contains(q.unicodeScalars.count) { throw p.bad("q") }
        let dept = try p.uuid("department_id")
        let hasDept = try p.bool("has_department")
        let active = try p.bool("is_active")
        let role = p["role"]
        let (by, desc) = try p.sort(["email", "display_name", "created_at", "last_active_date"],
                                    descending: ["created_at", "last_active_date"])
        func contains(_ hay: String?, _ needle: String) -> Bool {
            guard let hay else { return false }
            let h = Array(hay.lowercased().utf8), n = Array(needle.lowercased().utf8)
            if n.count > h.count { return false }
            for i in 0...(h.count - n.count) where Array(h[i..<(i + n.count)]) == n { return true }
            return false
        }
        var list: [RandomDump.User] = []
        for u in dump.users where u.client == c.id {
            let depts = departmentsOfUser[u.id] ?? []
            if let q = p["q"], !contains(u.email, q) && !contains(u.displayName, q) { continue }
            if let dept, !depts.contains(dept) { continue }
            if let hasDept, hasDept == depts.isEmpty { continue }
            if let active, u.isActive != active { continue }
            if let role, u.role != role { continue }
            list.append(u)
        }
        let sorted = Self.sorted(list, descending: desc, key: { u -> [Int64]? in
            switch by {
            case "display_name": return u.displayName.map(Self.nameKey)
            case "created_at": return u.createdAt.flatMap(Self.instant).map { [$0] }
            case "last_active_date":
                guard let asOf else { return nil }
                return (usageOfUser[u.id] ?? []).map(\.day).filter { $0 <= asOf }.max().map { [Int64($0.raw)] }
            default: return Self.nameKey(u.email)
            }
        }, id: \.id)
        return Self.list(sorted.map { userRow($0, asOf: asOf) }, ["as_of": Self.day(asOf)])
    }

    /// L: `users/{user_id}`.
    func user(_ c: RandomDump.Client, _ u: RandomDump.User, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        let given = try p.range("start_date", "end_date", required: false)
        let granularity = try p.oneOf("granularity", ["daily", "weekly", "monthly", "quarterly"])
        let period = given ?? asOf.map { Self.window($0, 30) }
        let rows = activity(c.id, upTo: asOf).filter { $0.user == u.id && period?.contains($0.day) == true }
        var apps: [(id: UUID128, days: Set<Day>)] = []
        for (app, g) in Dictionary(grouping: rows, by: \.app) { apps.append((app, Set(g.map(\.day)))) }
        apps.sort { a, b in
            if a.days.count != b.days.count { return a.days.count > b.days.count }
            let na = Self.nameKey(catalogById[appById[a.id]!.catalog]!.name)
            let nb = Self.nameKey(catalogById[appById[b.id]!.catalog]!.name)
            if na != nb { return na.lexicographicallyPrecedes(nb) }
            return Self.idLess(a.id, b.id)
        }
        var series: Any = NSNull()
        if let granularity {
            series = (period.map { Self.buckets($0, granularity) } ?? []).map { b -> Any in
                let inB = rows.filter { b.clipped.contains($0.day) }
                return ["bucket_start": b.clipped.start.description, "bucket_end": b.clipped.end.description,
                        "active_days": Set(inB.map(\.day)).count, "app_count": Set(inB.map(\.app)).count,
                        "complete": Self.complete(b, asOf)] as [String: Any]
            }
        }
        let periodJSON: Any = period.map { ["start_date": $0.start.description, "end_date": $0.end.description] }
            ?? NSNull()
        return ["user": userRow(u, asOf: asOf), "period": periodJSON, "active_days": Set(rows.map(\.day)).count,
                "app_count": apps.count,
                "apps": apps.map { a -> Any in
                    ["app": appRef(a.id), "active_days": a.days.count, "first_date": a.days.min()!.description,
                     "last_date": a.days.max()!.description] as [String: Any]
                },
                "series": series] as [String: Any]
    }

    /// M1: `departments`.
    func departments(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        let (by, desc) = try p.sort(["name", "member_count", "active_member_count"],
                                    descending: ["member_count", "active_member_count"])
        let recent = Set(activity(c.id, upTo: asOf).filter { Self.window(asOf!, 30).contains($0.day) }.map(\.user))
        var rows: [(d: RandomDump.Department, members: Int, active: Int)] = []
        for d in dump.departments where d.client == c.id {
            let m = membersOfDepartment[d.id] ?? []
            rows.append((d, m.count, m.intersection(recent).count))
        }
        let sorted = Self.sorted(rows, descending: desc, key: { r -> [Int64]? in
            switch by {
            case "member_count": return [Int64(r.members)]
            case "active_member_count": return [Int64(r.active)]
            default: return Self.nameKey(r.d.name)
            }
        }, id: \.d.id)
        return Self.list(sorted.map { r -> Any in
            ["department": departmentRef(r.d), "member_count": r.members, "active_member_count": r.active] as [String: Any]
        }, ["as_of": Self.day(asOf)])
    }

    /// M2: `departments/{department_id}` — B's figures for one department.
    func department(_ c: RandomDump.Client, _ d: RandomDump.Department, _ p: Params) throws -> Any {
        _ = try p.required("granularity", ["daily", "weekly", "monthly", "quarterly"])
        let period = try p.range("start_date", "end_date", required: true)!
        let compare = try p.range("compare_start_date", "compare_end_date", required: false)
        let f = try p.activityFilter(vendors: true, apps: false)
        let members = membersOfDepartment[d.id] ?? []
        func rows(_ r: DayRange) -> [Usage] {
            (usageOfClient[c.id] ?? []).filter { r.contains($0.day) && members.contains($0.user) && passes($0.app, f) }
        }
        let now = rows(period), before = compare.map(rows)
        return ["department": departmentRef(d), "member_count": members.count,
                "period": ["start_date": period.start.description, "end_date": period.end.description,
                           "compare_start_date": Self.opt(compare?.start.description),
                           "compare_end_date": Self.opt(compare?.end.description)] as [String: Any],
                "user_count": Self.metric(Set(now.map(\.user)).count, before.map { Set($0.map(\.user)).count }),
                "app_count": Self.metric(Set(now.map(\.app)).count, before.map { Set($0.map(\.app)).count }),
        ] as [String: Any]
    }

    /// N: `usage-statistics/active-users`.
    func activeUsers(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        var n = 30
        if let s = p["window_days"] {
            guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int(s), (1...366).contains(v) else {
                throw p.bad("window_days")
            }
            n = v
        }
        let users = Set(activity(c.id, upTo: asOf).filter { Self.window(asOf!, n).contains($0.day) }.map(\.user))
        return ["active_users": users.count, "window_days": n, "as_of": Self.day(asOf)] as [String: Any]
    }

    /// O: `analytics/users/champions`.
    func champions(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        let interval = try p.required("report_interval", ["30", "60", "90"])
        let f = try p.activityFilter()
        let (_, desc) = try p.sort(["num_active_days"], descending: ["num_active_days"])
        var days: [UUID128: Set<Day>] = [:]
        for r in activity(c.id, upTo: asOf, f) where Self.window(asOf!, Int(interval)!).contains(r.day) {
            days[r.user, default: []].insert(r.day)
        }
        let sorted = Self.sorted(Array(days), descending: desc, key: { [Int64($0.value.count)] }, id: \.key)
        return Self.list(sorted.map { e -> Any in
            ["user": userRow(userById[e.key]!, asOf: asOf), "num_active_days": e.value.count] as [String: Any]
        }, ["as_of": Self.day(asOf), "report_interval": interval])
    }

    /// P: `analytics/users/churn`.
    func churn(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        let interval = try p.required("report_interval", ["7", "14", "30"])
        let f = try p.activityFilter()
        let (by, desc) = try p.sort(["last_active_date", "days_inactive"], descending: ["last_active_date", "days_inactive"])
        var rows: [(user: UUID128, last: Day)] = []
        for (u, g) in Dictionary(grouping: activity(c.id, upTo: asOf, f), by: \.user) {
            let w = Self.window(asOf!, Int(interval)!)
            let before = g.filter { $0.day < w.start }, inside = g.filter { w.contains($0.day) }
            if !before.isEmpty && inside.isEmpty { rows.append((u, before.map(\.day).max()!)) }
        }
        let sorted = Self.sorted(rows, descending: desc, key: { r -> [Int64]? in
            by == "days_inactive" ? [Int64(r.last.distance(to: asOf!))] : [Int64(r.last.raw)]
        }, id: \.user)
        return Self.list(sorted.map { r -> Any in
            ["user": userRow(userById[r.user]!, asOf: asOf), "last_active_date": r.last.description,
             "days_inactive": r.last.distance(to: asOf!)] as [String: Any]
        }, ["as_of": Self.day(asOf), "report_interval": interval])
    }

    /// Q's and the client report's windows: (W0, W1) for `weekly` / `monthly`.
    static func reengagementWindows(_ asOf: Day, _ interval: String) -> (w0: DayRange, w1: DayRange) {
        let n = interval == "weekly" ? 7 : 30
        return (window(asOf.adding(-n), n), window(asOf, n))
    }

    /// (reengaged_on, previous_active_date) of a set of active days, or nil.
    static func reengaged(_ days: [Day], _ asOf: Day, _ interval: String) -> (on: Day, previous: Day)? {
        let (w0, w1) = reengagementWindows(asOf, interval)
        let inW1 = days.filter { w1.contains($0) }, inW0 = days.filter { w0.contains($0) }
        let before = days.filter { $0 < w0.start }
        guard !inW1.isEmpty, inW0.isEmpty, !before.isEmpty else { return nil }
        return (inW1.min()!, before.max()!)
    }

    /// Q: `analytics/users/reengagement`.
    func reengagement(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        let interval = try p.required("report_interval", ["weekly", "monthly"])
        let f = try p.activityFilter()
        let (by, desc) = try p.sort(["days_inactive", "reengaged_on"], descending: ["days_inactive", "reengaged_on"])
        var rows: [(user: UUID128, on: Day, previous: Day)] = []
        for (u, g) in Dictionary(grouping: activity(c.id, upTo: asOf, f), by: \.user) {
            if let r = Self.reengaged(g.map(\.day), asOf!, interval) { rows.append((u, r.on, r.previous)) }
        }
        func inactive(_ r: (user: UUID128, on: Day, previous: Day)) -> Int { r.previous.distance(to: r.on) - 1 }
        let sorted = Self.sorted(rows, descending: desc, key: { r -> [Int64]? in
            by == "reengaged_on" ? [Int64(r.on.raw)] : [Int64(inactive(r))]
        }, id: \.user)
        return Self.list(sorted.map { r -> Any in
            ["user": userRow(userById[r.user]!, asOf: asOf), "reengaged_on": r.on.description,
             "previous_active_date": r.previous.description, "days_inactive": inactive(r)] as [String: Any]
        }, ["as_of": Self.day(asOf), "report_interval": interval])
    }

    func utilization(_ active: Int, _ seats: Int?) -> Any {
        guard let seats, seats != 0 else { return NSNull() }
        return Self.percent(active, seats)
    }

    /// R1: `license`.
    func license(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        let active = Set(activity(c.id, upTo: asOf).filter { Self.window(asOf!, 30).contains($0.day) }.map(\.user)).count
        let assigned = dump.users.filter { $0.client == c.id && $0.isActive }.count
        return ["licensed_seats": Self.opt(c.licensedSeats), "assigned_users": assigned, "active_users_30d": active,
                "utilization_pct": utilization(active, c.licensedSeats), "as_of": Self.day(asOf)] as [String: Any]
    }

    /// R2: `license/utilization`.
    func licenseUtilization(_ c: RandomDump.Client, _ p: Params) throws -> Any {
        let asOf = try self.asOf(c.id, p)
        var start: (y: Int, m: Int)?
        if let s = p["start_month"] {
            let b = Array(s.utf8)
            let digits = [0, 1, 2, 3, 5, 6].allSatisfy { $0 < b.count && b[$0] >= 48 && b[$0] <= 57 }
            guard b.count == 7, b[4] == 45, digits, let y = Int(String(s.prefix(4))), let m = Int(String(s.suffix(2))),
                  (1...12).contains(m) else { throw p.bad("start_month") }
            start = (y, m)
        }
        guard let asOf else { return ["as_of": NSNull(), "data": [Any]()] as [String: Any] }
        let (ay, am, ad) = asOf.civil
        let last = ay * 12 + am - 1
        let first = start.map { $0.y * 12 + $0.m - 1 } ?? last - 11
        guard first <= last, last - first <= 23 else { throw p.bad("start_month") }
        let rows = activity(c.id, upTo: asOf)
        var data: [Any] = []
        for k in first...last {
            let y = k >= 0 ? k / 12 : (k - 11) / 12, m = k - y * 12 + 1
            let month = DayRange(Day(year: y, month: m, day: 1)!, Day(year: y, month: m, day: Day.daysIn(year: y, month: m))!)
            let active = Set(rows.filter { month.contains($0.day) }.map(\.user)).count
            let pad = m < 10 ? "0" : ""
            var y4 = String(y)
            while y4.count < 4 { y4 = "0" + y4 }
            data.append(["month": "\(y4)-\(pad)\(m)", "active_users": active, "licensed_seats": Self.opt(c.licensedSeats),
                         "utilization_pct": utilization(active, c.licensedSeats),
                         "complete": k != last || ad == Day.daysIn(year: ay, month: am)] as [String: Any])
        }
        return ["as_of": asOf.description, "data": data] as [String: Any]
    }
}

// MARK: - §3c admin reports

extension DirectoryReference {
    func clientReport(_ kind: String, _ p: Params) throws -> Any {
        let asOf = try p.date("as_of") ?? dump.usage.map(\.day).max()
        let values = kind == "churn" ? ["7", "14", "30"] : kind == "reengagement" ? ["weekly", "monthly"] : ["30", "60", "90"]
        let interval = try p.required("report_interval", values)
        let envelope: [String: Any] = ["as_of": Self.day(asOf), "report_interval": interval]
        guard let asOf else { return Self.list([], envelope) }
        var rows: [(client: RandomDump.Client, key: Int, fields: [String: Any])] = []
        for c in dump.clients {
            let all = usageOfClient[c.id] ?? []
            let days = all.map(\.day).filter { $0 <= asOf }
            var fields: [String: Any] = ["client": clientRef(c), "num_users": dump.users.filter { $0.client == c.id }.count]
            switch kind {
            case "churn":
                let w = Self.window(asOf, Int(interval)!)
                guard days.contains(where: { $0 < w.start }), !days.contains(where: { w.contains($0) }) else { continue }
                let last = days.max()!
                fields["last_active_date"] = last.description
                rows.append((c, Int(last.raw), fields))
            case "reengagement":
                guard let r = Self.reengaged(days, asOf, interval) else { continue }
                fields["reengaged_on"] = r.on.description
                fields["previous_active_date"] = r.previous.description
                rows.append((c, Int(r.on.raw), fields))
            default:
                let n = Int(interval)!
                let w = Self.window(asOf, n), before = Self.window(asOf.adding(-n), n)
                var added = 0, removed = 0
                for (_, g) in Dictionary(grouping: all, by: \.user) {
                    if w.contains(g.map(\.day).min()!) { added += 1 }
                    if let last = g.map(\.day).filter({ $0 <= asOf }).max(), before.contains(last) { removed += 1 }
                }
                guard added != 0 || removed != 0 else { continue }
                if kind == "attrition" && removed == 0 { continue }
                fields["num_users_added"] = added
                fields["num_users_removed"] = removed
                fields["net_growth"] = added - removed
                rows.append((c, kind == "attrition" ? removed : added - removed, fields))
            }
        }
        let sorted = Self.sorted(rows, descending: true, key: { [Int64($0.key)] }, id: \.client.id)
        return Self.list(sorted.map(\.fields), envelope)
    }

    func chart(_ kind: String, _ p: Params) throws -> Any {
        let cadence = try p.required("cadence", ["daily", "weekly", "monthly"])
        let period = try p.range("start_date", "end_date", required: true)!
        let newest = dump.usage.map(\.day).max()
        var first: [UUID128: Day] = [:]
        for r in dump.usage { first[r.user] = min(first[r.user] ?? r.day, r.day) }
        let metrics = Self.buckets(period, cadence).map { b -> Any in
            let rows = dump.usage.filter { b.clipped.contains($0.day) }
            let result: Int
            switch kind {
            case "active_users": result = Set(rows.map(\.user)).count
            case "active_clients": result = Set(rows.map(\.client)).count
            default: result = first.values.filter { b.clipped.contains($0) }.count
            }
            return ["date": b.clipped.start.description, "result": result,
                    "cadence_completed": Self.complete(b, newest)] as [String: Any]
        }
        return ["chart_type": kind, "cadence": cadence, "metrics": metrics] as [String: Any]
    }
}

// MARK: - Timestamps

extension DirectoryReference {
    /// Microseconds since 1970-01-01T00:00:00Z of a loader-accepted timestamp text (SPEC §1):
    /// `YYYY-MM-DD`, then `T` or space, `HH:MM[:SS[.fraction]]`, then `Z` or `±HH[[:]MM]`; no
    /// offset means UTC; the fraction rounded to the microsecond, half away from zero.
    public static func instant(_ raw: String) -> Int64? {
        let b = Array(raw.utf8)
        guard b.count >= 10, let day = Day(String(decoding: b[0..<10], as: UTF8.self)) else { return nil }
        var i = 10
        func two() -> Int64? {
            guard i + 2 <= b.count, (48...57).contains(b[i]), (48...57).contains(b[i + 1]) else { return nil }
            defer { i += 2 }
            return Int64(b[i] - 48) * 10 + Int64(b[i + 1] - 48)
        }
        var seconds = Int64(day.raw) * 86_400
        var micros: Int64 = 0
        if i < b.count {
            guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: " ") else { return nil }
            i += 1
            guard let h = two(), h <= 23, i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            guard let mi = two(), mi <= 59 else { return nil }
            seconds += h * 3600 + mi * 60
            if i < b.count && b[i] == UInt8(ascii: ":") {
                i += 1
                guard let s = two(), s <= 60 else { return nil }
                seconds += s
                if i < b.count && (b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",")) {
                    i += 1
                    var digits: [Int64] = []
                    while i < b.count && (48...57).contains(b[i]) {
                        digits.append(Int64(b[i] - 48))
                        i += 1
                    }
                    guard !digits.isEmpty else { return nil }
                    for k in 0..<6 { micros = micros * 10 + (k < digits.count ? digits[k] : 0) }
                    if digits.count > 6 && digits[6] >= 5 { micros += 1 }
                }
            }
            if i < b.count {
                if b[i] == UInt8(ascii: "Z") {
                    i += 1
                } else {
                    guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") else { return nil }
                    let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
                    i += 1
                    guard let oh = two(), oh <= 23 else { return nil }
                    var om: Int64 = 0
                    if i < b.count {
                        if b[i] == UInt8(ascii: ":") { i += 1 }
                        guard let m = two(), m <= 59 else { return nil }
                        om = m
                    }
                    seconds -= sign * (oh * 3600 + om * 60)
                }
            }
            guard i == b.count else { return nil }
        }
        return seconds * 1_000_000 + micros
    }

    /// RFC 3339 in UTC with `Z`, fractional seconds only when not zero, trailing zeros dropped.
    public static func normalizedTimestamp(_ raw: String) -> String? {
        guard let t = instant(raw) else { return nil }
        func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let secs = floorDiv(t, 1_000_000), us = t - secs * 1_000_000
        let days = floorDiv(secs, 86_400), rem = secs - days * 86_400
        var out = "\(Day(raw: Int32(days)))T\(pad(rem / 3600, 2)):\(pad(rem / 60 % 60, 2)):\(pad(rem % 60, 2))"
        if us != 0 {
            var f = pad(us, 6)
            while f.hasSuffix("0") { f.removeLast() }
            out += "." + f
        }
        return out + "Z"
    }
}

// MARK: - JSON comparison

extension DirectoryReference {
    indirect enum JSON {
        case null, bool(Bool), number(Double), string(String), array([JSON]), object([String: JSON]), other(String)
    }

    static func json(_ v: Any) -> JSON {
        if v is NSNull { return .null }
        if type(of: v) == Bool.self { return .bool(v as! Bool) }
        if type(of: v) == Int.self { return .number(Double(v as! Int)) }
        if type(of: v) == Double.self { return .number(v as! Double) }
        if let s = v as? String { return .string(s) }
        if let n = v as? NSNumber {
            let t = String(cString: n.objCType)
            return t == "c" || t == "B" ? .bool(n.boolValue) : .number(n.doubleValue)
        }
        if let a = v as? [Any] { return .array(a.map(json)) }
        if let o = v as? [String: Any] { return .object(o.mapValues(json)) }
        return .other("\(type(of: v)): \(v)")
    }

    static func show(_ j: JSON) -> String {
        switch j {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[\(a.count) items]"
        case .object(let o): return "{\(o.keys.sorted().joined(separator: ", "))}"
        case .other(let s): return "<\(s)>"
        }
    }

    static func difference(_ a: JSON, _ b: JSON, _ path: String) -> String? {
        switch (a, b) {
        case (.null, .null): return nil
        case let (.bool(x), .bool(y)) where x == y: return nil
        case let (.number(x), .number(y)) where x == y: return nil
        case let (.string(x), .string(y)) where x == y: return nil
        case let (.array(x), .array(y)):
            for i in 0..<min(x.count, y.count) {
                if let d = difference(x[i], y[i], "\(path)[\(i)]") { return d }
            }
            return x.count == y.count ? nil : "\(path): \(x.count) items vs \(y.count) items"
        case let (.object(x), .object(y)):
            for k in Set(x.keys).union(y.keys).sorted() {
                let at = path.isEmpty ? k : "\(path).\(k)"
                guard let xv = x[k] else { return "\(at): missing vs \(show(y[k]!))" }
                guard let yv = y[k] else { return "\(at): \(show(xv)) vs missing" }
                if let d = difference(xv, yv, at) { return d }
            }
            return nil
        default:
            return "\(path.isEmpty ? "$" : path): \(show(a)) vs \(show(b))"
        }
    }

    /// Deep JSON equality of two Foundation object trees; numbers by value (12.0 == 12).
    public static func equal(_ a: Any, _ b: Any) -> Bool { describeDifference(a, b) == nil }

    /// The path of the first difference and both values there (`data[3].user.created_at: … vs …`),
    /// or nil when equal.
    public static func describeDifference(_ a: Any, _ b: Any) -> String? {
        difference(json(a), json(b), "")
    }
}
