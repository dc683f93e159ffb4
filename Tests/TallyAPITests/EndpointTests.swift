import Foundation
import Testing
import TallyQuery
import TallyStorage
import TallyTestSupport

/// Seeded random requests to every endpoint over a real socket, paged through with random page
/// sizes; every number is checked against the brute-force ``Reference`` and the row order
/// against the engine's own (itself checked against the reference in TallyQueryTests).
@Suite struct EndpointTests {
    let f = ServerFixture.shared

    func int(_ v: Any?) -> Int? { v as? Int }
    func metric(_ v: Any?) -> (Int?, Int?) {
        let m = v as? [String: Any]
        return (m?["value"] as? Int, m?["compare_value"] as? Int)
    }

    @Test(arguments: Endpoint.allCases)
    func randomRequestsMatchReference(endpoint: Endpoint) throws {
        var r = SeededRandom(seed: UInt64(endpoint.path.utf8.count) * 131 + 7)
        let c = try f.client()
        let ex = Executor(store: f.store)
        for n in 0..<25 {
            let (query, req) = randomRequest(endpoint, &r)
            let q = endpoint.query(req)
            var rows: [[String: Any]] = []
            var body: [String: Any] = [:]
            var cursor: String?
            let pageSize = Int.random(in: 1...7, using: &r)
            repeat {
                var target = ServerFixture.path(req.client, endpoint) + "?" + query
                if endpoint.isList { target += "&page_size=\(pageSize)" + (cursor.map { "&cursor=\($0)" } ?? "") }
                let resp = try c.request("GET", target, token: ServerFixture.allToken)
                try #require(resp.status == 200, "\(target): \(resp.text)")
                body = resp.object
                rows += body["data"] as? [[String: Any]] ?? []
                cursor = body["next_cursor"] as? String
            } while cursor != nil
            let ref = f.reference
            switch endpoint {
            case .summary, .aiSummary:
                let m = ref.evaluate(q, q.period)[""]!
                let cm = q.comparison.map { ref.evaluate(q, $0)[""]! }
                let pairs: [(String, Int, Int?)] = endpoint == .summary
                    ? [("unique_users", m.users, cm?.users), ("app_count", m.apps, cm?.apps),
                       ("approved_app_count", m.approvedApps, cm?.approvedApps),
                       ("unapproved_app_count", m.unapprovedApps, cm?.unapprovedApps),
                       ("unapproved_user_count", m.unapprovedUsers, cm?.unapprovedUsers)]
                    : [("ai_app_count", m.apps, cm?.apps), ("ai_user_count", m.users, cm?.users),
                       ("unapproved_ai_app_count", m.unapprovedApps, cm?.unapprovedApps),
                       ("unapproved_ai_user_count", m.unapprovedUsers, cm?.unapprovedUsers)]
                for (name, v, cv) in pairs {
                    #expect(metric(body[name]) == (v, cv), "request \(n) \(name): \(query)")
                }
                if endpoint == .aiSummary {
                    let share = m.anyAppUsers == 0 ? nil : Double((m.users * 1000 * 2 + m.anyAppUsers) / (2 * m.anyAppUsers)) / 10
                    #expect(body["ai_user_share_pct"] as? Double == share, "request \(n) share")
                }
            case .trend:
                guard case .time(let g) = q.dimension else { Issue.record("trend without time"); continue }
                for (key, range) in [("series", q.period), ("compare_series", q.comparison)] {
                    guard let range else { #expect(body[key] is NSNull); continue }
                    let got = body[key] as? [[String: Any]] ?? []
                    let want = ref.series(q, range, g)
                    #expect(got.count == want.count, "request \(n) \(key)")
                    for (b, w) in zip(got, want) {
                        #expect(b["bucket_start"] as? String == w.0.start.description
                                && b["bucket_end"] as? String == w.0.end.description
                                && b["complete"] as? Bool == w.1 && int(b["unique_users"]) == w.2
                                && int(b["app_count"]) == w.3, "request \(n) \(key) bucket \(w.0)")
                    }
                }
            default:
                let want = ref.evaluate(q, q.period).filter { $0.value.users + $0.value.apps > 0 }
                let wantCompare = q.comparison.map { ref.evaluate(q, $0) }
                #expect(int(body["total_count"]) == want.count && rows.count == want.count, "request \(n): \(query)")
                var order: [String] = []
                for row in rows {
                    let id = rowId(row, endpoint)
                    order.append(id)
                    guard let m = want[id] else { Issue.record("request \(n): unexpected row \(id)"); continue }
                    let cm = wantCompare.flatMap { $0[id] }.flatMap { $0.users + $0.apps > 0 ? $0 : nil }
                    check(row, endpoint, m, cm, days: q.period.length, "request \(n) row \(id)")
                }
                // The order is the engine's.
                var all = q
                all.pageSize = nil
                all.after = nil
                let engine = try ex.run(all).rows.map { row -> String in
                    let id = ex.sortKey(row, .users, f.store.client(req.client)!).id
                    return id == UUID128(high: .max, low: .max) || id == UUID128(high: 0, low: 0) ? "" : id.description
                }
                #expect(order == engine, "request \(n) order")
            }
        }
    }

    func rowId(_ row: [String: Any], _ e: Endpoint) -> String {
        switch e {
        case .departments, .aiDepartments: return (row["department"] as? [String: Any])?["id"] as? String ?? "?"
        case .categories: return (row["category"] as? [String: Any])?["id"] as? String ?? ""
        case .users: return (row["user"] as? [String: Any])?["id"] as? String ?? "?"
        default: return (row["app"] as? [String: Any])?["id"] as? String ?? "?"
        }
    }

    func check(_ row: [String: Any], _ e: Endpoint, _ m: Metrics, _ cm: Metrics?, days: Int, _ what: String) {
        func level(_ m: Metrics) -> String { UsageLevelThresholds().level(userDays: m.userDays, users: m.users, days: days) }
        switch e {
        case .utilization:
            #expect(metric(row["unique_users"]) == (m.users, cm?.users), "\(what)")
            #expect(row["usage_level"] as? String == level(m), "\(what)")
        case .aiUsers:
            #expect(metric(row["user_count"]) == (m.users, cm?.users), "\(what)")
            #expect(row["usage_level"] as? String == level(m), "\(what)")
        case .aiNew:
            #expect(int(row["unique_users"]) == m.users, "\(what)")
        case .departments, .categories:
            #expect(metric(row["user_count"]) == (m.users, cm?.users) && metric(row["app_count"]) == (m.apps, cm?.apps), "\(what)")
        case .aiDepartments:
            #expect(metric(row["user_count"]) == (m.users, cm?.users), "\(what)")
            #expect(metric(row["approved_user_count"]) == (m.approvedUsers, cm?.approvedUsers), "\(what)")
            #expect(metric(row["unapproved_user_count"]) == (m.unapprovedUsers, cm?.unapprovedUsers), "\(what)")
        case .users:
            #expect(metric(row["app_count"]) == (m.apps, cm?.apps) && metric(row["active_days"]) == (m.activeDays, cm?.activeDays),
                    "\(what)")
        default:
            break
        }
    }

    /// A random valid request: (query string, the request the server should derive from it).
    func randomRequest(_ e: Endpoint, _ r: inout SeededRandom) -> (String, EndpointRequest) {
        let withData = f.dump.clients.filter { c in f.dump.usage.contains { $0.client == c.id } }
        let client = withData.randomElement(using: &r)!.id
        let days = f.dump.usage.filter { $0.client == client }.map(\.day)
        func range() -> DayRange {
            let s = days.min()!.adding(Int.random(in: -5...max(0, days.min()!.distance(to: days.max()!)), using: &r))
            return DayRange(s, s.adding(Int.random(in: 0...365, using: &r)))
        }
        let period = range()
        var q = "start_date=\(period.start)&end_date=\(period.end)"
        var granularity: Granularity?
        if e.requiresGranularity || r.chance(0.3) {
            granularity = Granularity.allCases.randomElement(using: &r)!
            if e == .trend && granularity == .daily && period.length > 60 { granularity = .weekly }
            q += "&granularity=\(granularity!.rawValue)"
        }
        var comparison: DayRange?
        if r.chance(0.6) {
            let c = range()
            q += "&compare_start_date=\(c.start)&compare_end_date=\(c.end)"
            if e.takesComparison { comparison = c }
        }
        var filters = Filters()
        if e.filters.contains(.isApproved) && r.chance(0.3) {
            filters.approved = r.chance(0.5)
            q += "&is_approved=\(filters.approved!)"
        }
        func ids(_ name: Endpoint.FilterName, _ pool: [UUID128]) -> [UUID128]? {
            guard e.filters.contains(name), r.chance(0.25), !pool.isEmpty else { return nil }
            let picked = Array(pool.shuffled(using: &r).prefix(Int.random(in: 1...3, using: &r)))
            q += "&\(name.rawValue)=" + picked.map { r.chance(0.2) ? $0.description.uppercased() : $0.description }
                .joined(separator: ",")
            return picked
        }
        filters.categoryIds = ids(.categoryIds, f.dump.categories.map(\.id))
        filters.vendorIds = ids(.vendorIds, f.dump.vendors.map(\.id))
        filters.appIds = ids(.appIds, f.dump.apps.filter { $0.client == client }.map(\.id))
        filters.departmentIds = ids(.departmentIds, f.dump.departments.filter { $0.client == client }.map(\.id))
        var sortBy: String?, order: TallyQuery.SortOrder?
        if e.isList && r.chance(0.6) {
            sortBy = e.sortFields.randomElement(using: &r)!.name
            q += "&sort_by=\(sortBy!)"
        }
        if e.isList && r.chance(0.5) {
            order = r.chance(0.5) ? .asc : .desc
            q += "&sort_order=\(order!.rawValue)"
        }
        return (q, EndpointRequest(client: client, period: period, comparison: comparison, granularity: granularity,
                                   filters: filters, sortBy: sortBy, sortOrder: order))
    }
}

@Suite struct PagingTests {
    let f = ServerFixture.shared

    /// page_size=1 through every page gives exactly the rows of one page of 200, in order.
    @Test(arguments: Endpoint.allCases.filter(\.isList))
    func pageByPageReproducesTheList(_ e: Endpoint) throws {
        let c = try f.client()
        for client in f.dump.clients.map(\.id) {
            for sort in e.sortFields.map(\.name) {
                for order in ["asc", "desc"] {
                    let base = ServerFixture.path(client, e) + "?granularity=monthly&start_date=2024-03-01&end_date=2025-02-28"
                        + "&compare_start_date=2023-03-01&compare_end_date=2024-02-28&sort_by=\(sort)&sort_order=\(order)"
                    let all = try c.request("GET", base + "&page_size=200", token: ServerFixture.allToken)
                    let full = (all.object["data"] as? [[String: Any]] ?? []).map { canonical($0) }
                    var paged: [String] = []
                    var cursor: String?
                    repeat {
                        let r = try c.request("GET", base + "&page_size=1" + (cursor.map { "&cursor=\($0)" } ?? ""),
                                              token: ServerFixture.allToken)
                        try #require(r.status == 200)
                        let rows = r.object["data"] as? [[String: Any]] ?? []
                        #expect(rows.count <= 1 && r.object["total_count"] as? Int == full.count)
                        paged += rows.map { canonical($0) }
                        cursor = r.object["next_cursor"] as? String
                    } while cursor != nil
                    #expect(paged == full, "\(e) \(client) \(sort) \(order)")
                }
            }
        }
    }

    func canonical(_ row: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self)
    }
}
