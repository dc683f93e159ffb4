import Foundation
import Testing
@testable import TallyAPI
import TallyClient
import TallyQuery
import TallyStorage
import TallyTestSupport
import TallyWire

/// K–R and the admin reports (SPEC §3b, §3c) over real sockets: seeded random requests, paged
/// through with random page sizes (1 included), every whole answer equal to the brute-force
/// ``DirectoryReference`` computed from the raw rows; each page over the binary protocol equal
/// to HTTP's byte for byte; bad parameters answered 400 naming them; the auth matrix.
@Suite struct DirectoryTests {
    let f = ServerFixture.shared
    nonisolated(unsafe) static let reference = DirectoryReference(ServerFixture.shared.dump)

    static let routes = (Registry.directoryRoutes + Registry.adminReportRoutes).map(\.name)

    static func route(_ name: String) -> Route { Registry.routes.first { $0.name == name }! }

    /// A random HTTP path and query for `route` on a client of `d`.
    static func randomRequest(_ route: Route, _ d: RandomDump, _ r: inout SeededRandom) -> (path: String, query: [(String, String)]) {
        let client = d.clients.randomElement(using: &r)!
        func day(_ from: Day, _ to: Day) -> Day { from.adding(Int.random(in: 0...from.distance(to: to), using: &r)) }
        let span = (RandomDump.firstDay.adding(-20), RandomDump.lastDay.adding(20))
        var q: [(String, String)] = []
        func maybe(_ p: Double, _ name: String, _ value: @autoclosure () -> String) { if r.chance(p) { q.append((name, value())) } }
        func asOf() { maybe(0.6, "as_of", day(span.0, span.1).description) }
        func period(_ start: String, _ end: String, maxDays: Int) {
            let s = day(span.0, span.1)
            q.append((start, s.description))
            q.append((end, s.adding(Int.random(in: 0..<maxDays, using: &r)).description))
        }
        func filters() {
            let apps = d.apps.filter { $0.client == client.id }
            maybe(0.25, "is_approved", r.chance(0.5) ? "true" : "false")
            if r.chance(0.25) {
                let ids = (0..<Int.random(in: 1...3, using: &r)).map { _ in (r.chance(0.8) ? apps.randomElement(using: &r)?.id : nil) ?? d.apps.randomElement(using: &r)!.id }
                q.append(("app_ids", ids.map(\.description).joined(separator: ",")))
            }
            maybe(0.2, "category_ids", d.categories.randomElement(using: &r)!.id.description)
        }
        func sorts() {
            if !route.sortBy.isEmpty && r.chance(0.6) { q.append(("sort_by", route.sortBy.randomElement(using: &r)!)) }
            maybe(0.4, "sort_order", r.chance(0.5) ? "asc" : "desc")
        }
        var path = route.path.replacingOccurrences(of: "{client_id}", with: client.id.description)
        let users = d.users.filter { $0.client == client.id }
        let deps = d.departments.filter { $0.client == client.id }
        switch route.name {
        case "K":
            if r.chance(0.3), let u = users.randomElement(using: &r) {
                let text = Array((r.chance(0.5) ? u.displayName : nil) ?? u.email)
                let a = Int.random(in: 0..<text.count, using: &r)
                q.append(("q", String(text[a..<min(text.count, a + Int.random(in: 1...4, using: &r))]).uppercased()))
            }
            if r.chance(0.2) { q.append(("department_id", (deps.randomElement(using: &r)?.id ?? d.departments[0].id).description)) }
            maybe(0.2, "has_department", r.chance(0.5) ? "true" : "false")
            maybe(0.2, "is_active", r.chance(0.5) ? "true" : "false")
            maybe(0.15, "role", ["admin", "member", "Admin", "owner"].randomElement(using: &r)!)
            asOf()
            sorts()
        case "L":
            path = path.replacingOccurrences(of: "{user_id}", with: (users.randomElement(using: &r)?.id ?? d.users[0].id).description)
            if r.chance(0.6) { period("start_date", "end_date", maxDays: 366) }
            maybe(0.6, "granularity", ["daily", "weekly", "monthly", "quarterly"].randomElement(using: &r)!)
            asOf()
        case "M1":
            asOf()
            sorts()
        case "M2":
            path = path.replacingOccurrences(of: "{department_id}", with: (deps.randomElement(using: &r)?.id ?? d.departments[0].id).description)
            period("start_date", "end_date", maxDays: 120)
            if r.chance(0.5) { period("compare_start_date", "compare_end_date", maxDays: 120) }
            q.append(("granularity", "monthly"))
            maybe(0.3, "is_approved", r.chance(0.5) ? "true" : "false")
        case "N":
            maybe(0.7, "window_days", String(Int.random(in: 1...366, using: &r)))
            asOf()
        case "O", "P", "Q":
            let intervals = ["O": ["30", "60", "90"], "P": ["7", "14", "30"], "Q": ["weekly", "monthly"]][route.name]!
            q.append(("report_interval", intervals.randomElement(using: &r)!))
            filters()
            asOf()
            sorts()
        case "R1":
            asOf()
        case "R2":
            let day = r.chance(0.5) ? day(span.0, span.1) : nil
            if let day { q.append(("as_of", day.description)) }
            let base = day ?? d.usage.filter { $0.client == client.id }.map(\.day).max() ?? RandomDump.lastDay
            if r.chance(0.6) {
                let (y, m, _) = base.civil
                let back = y * 12 + m - 1 - Int.random(in: 0...23, using: &r)
                q.append(("start_month", String(format: "%04d-%02d", back / 12, back % 12 + 1)))
            }
        case "charts":
            path = path.replacingOccurrences(of: "{chart_type}", with: ["active_users", "active_clients", "new_users"].randomElement(using: &r)!)
            q.append(("cadence", ["daily", "weekly", "monthly"].randomElement(using: &r)!))
            period("start_date", "end_date", maxDays: 366)
        default:  // clients/churn, clients/reengagement, clients/growth, clients/attrition
            let intervals = ["clients/churn": ["7", "14", "30"], "clients/reengagement": ["weekly", "monthly"]][route.name] ?? ["30", "60", "90"]
            q.append(("report_interval", intervals.randomElement(using: &r)!))
            asOf()
        }
        return (path, q)
    }

    static func encode(_ q: [(String, String)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+")
        return q.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
    }

    static func isPaged(_ route: Route) -> Bool { route.parameters.contains { $0.name == "cursor" } }

    @Test(arguments: routes)
    func randomRequestsMatchReference(name: String) async throws {
        let route = Self.route(name)
        var r = SeededRandom(seed: name.utf8.reduce(UInt64(17)) { $0 &* 31 &+ UInt64($1) })
        let tally = try await TallyClient.connect(host: "127.0.0.1", port: f.binaryPort, token: ServerFixture.allToken)
        for n in 0..<40 {
            let (path, query) = Self.randomRequest(route, f.dump, &r)
            let pageSize = Int.random(in: 1...4, using: &r)
            var rows: [Any] = []
            var cursor: String?
            var last: [String: Any] = [:]
            var pages = 0
            repeat {
                var q = query
                if Self.isPaged(route) { q.append(("page_size", String(pageSize))) }
                if let cursor { q.append(("cursor", cursor)) }
                let resp = try f.client().request("GET", path + "?" + Self.encode(q), token: ServerFixture.allToken)
                try #require(resp.status == 200, "request \(n) \(path)?\(Self.encode(q)): \(resp.text)")
                last = resp.object
                rows += last["data"] as? [Any] ?? []
                cursor = last["next_cursor"] as? String
                // The same page over the binary protocol, byte for byte (every other request, its
                // first 50 pages).
                if n % 2 == 0 && pages < 50 {
                    var params = q
                    for p in [route.pathParameter].compactMap({ $0 }) {
                        params.append((p, String(path.split(separator: "/").last!)))
                    }
                    let client = route.base == .client ? UUID(uuidString: String(path.split(separator: "/")[2]))! : UUID()
                    let answer = try await tally.query(WireEndpoint(rawValue: route.wire!)!, client: client, parameters: params)
                    #expect(answer.body == resp.body, "request \(n) page \(pages) over the binary protocol")
                }
                pages += 1
            } while cursor != nil && pages < 1000  // a client has 515 departments
            if Self.isPaged(route) {
                last["data"] = rows
                #expect(last["total_count"] as? Int == rows.count, "request \(n): total_count against the rows paged through")
            }
            let want = Self.reference.answer(path: path, query: Dictionary(query, uniquingKeysWith: { a, _ in a }))
            guard case .document(let doc) = want else {
                Issue.record("request \(n) \(path)?\(Self.encode(query)): the reference refused it: \(want)")
                continue
            }
            let diff = DirectoryReference.describeDifference(last, doc)
            #expect(diff == nil, "request \(n) \(path)?\(Self.encode(query)): \(diff ?? "")")
        }
        try await tally.close()
    }

    /// Every parameter rule of §3b–§3c: a 400 naming the parameter, as the reference says.
    @Test func badParametersAre400() throws {
        let c = f.dump.clients[0].id, user = f.dump.users.first { $0.client == c }!.id
        let dept = f.dump.departments.first { $0.client == c }?.id
        let cases: [(String, String, String)] = [
            ("/v2/clients/\(c)/users", "q=", "q"),
            ("/v2/clients/\(c)/users", "q=" + String(repeating: "a", count: 101), "q"),
            ("/v2/clients/\(c)/users", "as_of=2024-13-01", "as_of"),
            ("/v2/clients/\(c)/users", "has_department=yes", "has_department"),
            ("/v2/clients/\(c)/users", "is_active=1", "is_active"),
            ("/v2/clients/\(c)/users", "department_id=nope", "department_id"),
            ("/v2/clients/\(c)/users", "sort_by=role", "sort_by"),
            ("/v2/clients/\(c)/users", "sort_order=up", "sort_order"),
            ("/v2/clients/\(c)/users", "page_size=0", "page_size"),
            ("/v2/clients/\(c)/users", "cursor=xyz", "cursor"),
            ("/v2/clients/\(c)/users/\(user)", "start_date=2024-01-01", "end_date"),
            ("/v2/clients/\(c)/users/\(user)", "end_date=2024-01-01", "start_date"),
            ("/v2/clients/\(c)/users/\(user)", "start_date=2024-01-01&end_date=2025-01-02", "end_date"),
            ("/v2/clients/\(c)/users/\(user)", "granularity=yearly", "granularity"),
            ("/v2/clients/\(c)/departments", "sort_by=size", "sort_by"),
            ("/v2/clients/\(c)/usage-statistics/active-users", "window_days=0", "window_days"),
            ("/v2/clients/\(c)/usage-statistics/active-users", "window_days=367", "window_days"),
            ("/v2/clients/\(c)/usage-statistics/active-users", "window_days=3.5", "window_days"),
            ("/v2/clients/\(c)/usage-statistics/active-users", "window_days=-1", "window_days"),
            ("/v2/clients/\(c)/analytics/users/champions", "", "report_interval"),
            ("/v2/clients/\(c)/analytics/users/champions", "report_interval=45", "report_interval"),
            ("/v2/clients/\(c)/analytics/users/churn", "report_interval=30&app_ids=x", "app_ids"),
            ("/v2/clients/\(c)/analytics/users/churn", "report_interval=30&is_approved=maybe", "is_approved"),
            ("/v2/clients/\(c)/analytics/users/reengagement", "report_interval=Weekly", "report_interval"),
            ("/v2/clients/\(c)/license", "as_of=yesterday", "as_of"),
            ("/v2/clients/\(c)/license/utilization", "start_month=2024-1", "start_month"),
            ("/v2/clients/\(c)/license/utilization", "as_of=2025-01-15&start_month=2022-12", "start_month"),
            ("/v2/clients/\(c)/license/utilization", "as_of=2025-01-15&start_month=2025-02", "start_month"),
            ("/v2/analytics/clients/growth", "report_interval=7", "report_interval"),
            ("/v2/analytics/clients/churn", "report_interval=30&as_of=2025-02-30", "as_of"),
            ("/v2/analytics/charts/new_users", "cadence=quarterly&start_date=2024-01-01&end_date=2024-02-01", "cadence"),
            ("/v2/analytics/charts/new_users", "start_date=2024-01-01&end_date=2024-02-01", "cadence"),
            ("/v2/analytics/charts/active_users", "cadence=daily&start_date=2024-01-01&end_date=2025-01-02", "end_date"),
        ] + (dept.map { [("/v2/clients/\(c)/departments/\($0)", "start_date=2024-01-01&end_date=2024-02-01", "granularity")] } ?? [])
        for (path, query, parameter) in cases {
            let resp = try f.client().request("GET", path + "?" + query, token: ServerFixture.allToken)
            let err = resp.object["error"] as? [String: Any]
            #expect(resp.status == 400 && err?["parameter"] as? String == parameter, "\(path)?\(query): \(resp.text)")
            // The reference leaves paging to the engine (it answers whole lists).
            if parameter == "page_size" || parameter == "cursor" { continue }
            let q = Dictionary(BinaryProtocolTests.pairs(query), uniquingKeysWith: { a, _ in a })
            guard case .error(400, let p) = Self.reference.answer(path: path, query: q) else {
                Issue.record("\(path)?\(query): the reference does not refuse it"); continue
            }
            #expect(p == parameter, "\(path)?\(query): the reference names \(p ?? "nothing")")
        }
    }

    /// The earliest and latest dates a caller can write as `as_of` (and as a chart's period) are
    /// answered, not crashed on: R2 counted months back from year 0000 with a truncating division.
    @Test func extremeDatesAreAnswered() throws {
        let c = f.dump.clients[0].id
        let user = f.dump.users.first { $0.client == c }!.id, dept = f.dump.departments.first { $0.client == c }?.id
        for asOf in ["0000-03-01", "0001-01-01", "9999-12-31"] {
            var targets = ["users?sort_by=last_active_date", "users/\(user)?granularity=monthly", "departments",
                           "usage-statistics/active-users?window_days=366", "analytics/users/champions?report_interval=90",
                           "analytics/users/churn?report_interval=30", "analytics/users/reengagement?report_interval=monthly",
                           "license", "license/utilization"].map { "/v2/clients/\(c)/" + $0 }
            targets += ["churn?report_interval=30", "reengagement?report_interval=monthly", "growth?report_interval=90",
                        "attrition?report_interval=90"].map { "/v2/analytics/clients/" + $0 }
            for t in targets {
                let resp = try f.client().request("GET", t + (t.contains("?") ? "&" : "?") + "as_of=\(asOf)", token: ServerFixture.allToken)
                #expect(resp.status == 200, "\(t) as_of=\(asOf): \(resp.text)")
            }
            if let dept {
                let resp = try f.client().request("GET", "/v2/clients/\(c)/departments/\(dept)?start_date=\(asOf)&end_date=\(asOf)&granularity=daily",
                                                  token: ServerFixture.allToken)
                #expect(resp.status == 200, "M2 on \(asOf): \(resp.text)")
            }
            let chart = try f.client().request("GET", "/v2/analytics/charts/active_users?cadence=monthly&start_date=\(asOf)&end_date=\(asOf)",
                                               token: ServerFixture.allToken)
            #expect(chart.status == 200, "chart on \(asOf): \(chart.text)")
        }
    }

    /// No token, a bad token, a token of another client, a restricted token on an admin report,
    /// an unknown user, department or chart: on every new path, over both listeners.
    @Test func authMatrix() async throws {
        let other = f.dump.clients[1].id, mine = f.dump.clients[0].id
        let scoped = try await TallyClient.connect(host: "127.0.0.1", port: f.binaryPort, token: ServerFixture.scopedToken)
        for route in Registry.directoryRoutes + Registry.adminReportRoutes {
            func path(_ client: UUID128) -> String {
                var p = route.path.replacingOccurrences(of: "{client_id}", with: client.description)
                if let name = route.pathParameter { p = p.replacingOccurrences(of: "{\(name)}", with: "active_users") }
                return p
            }
            let c = try f.client()
            #expect(try c.request("GET", path(other)).status == 401, "\(route.name) without a token")
            #expect(try f.client().request("GET", path(other), token: "wrong").status == 401, "\(route.name) bad token")
            let forbidden = try f.client().request("GET", path(other), token: ServerFixture.scopedToken)
            #expect(forbidden.status == 403, "\(route.name) restricted token: \(forbidden.text)")
            if route.base == .client {
                do {
                    _ = try await scoped.query(WireEndpoint(rawValue: route.wire!)!, client: UUID(uuidString: other.description)!,
                                               parameters: [])
                    Issue.record("\(route.name): a restricted token read another client over the binary protocol")
                } catch let TallyClientError.server(m, _) {
                    #expect(m.status == 403, "\(route.name) over the binary protocol: \(m)")
                }
                if route.pathParameter != nil {
                    let unknown = try f.client().request("GET", path(mine), token: ServerFixture.scopedToken)
                    #expect(unknown.status == 404, "\(route.name): an id that is not the client's: \(unknown.text)")
                }
            } else {
                do {
                    _ = try await scoped.query(WireEndpoint(rawValue: route.wire!)!, client: UUID(), parameters: [])
                    Issue.record("\(route.name): a restricted token read an admin report over the binary protocol")
                } catch let TallyClientError.server(m, _) {
                    #expect(m.status == 403, "\(route.name) over the binary protocol: \(m)")
                }
            }
        }
        let chart = try f.client().request("GET", "/v2/analytics/charts/bogus?cadence=daily", token: ServerFixture.allToken)
        #expect(chart.status == 404, "an unknown chart: \(chart.text)")
        try await scoped.close()
    }
}
