import ArgumentParser
import Foundation
import TallyAPI
import TallyGenerate
import TallyQuery
import TallyStorage

/// `tally bench-reports`: p50/p99 of every directory, insight and admin route (SPEC §3b, §3c),
/// in process through the API core the listeners use, over a varied set of queries per route
/// (filters, sort orders, earlier `as_of`, second pages, every interval), round-robin over the
/// clients; and the bytes that those reports keep beside the store.
struct BenchReports: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-reports",
        abstract: "Time the directory, insight and admin reports in process (p50/p99 per route) on a dump or a generated client.")

    @Option(help: "Dump (folder, s3://, https://) or snapshot; without it a client is generated in process.") var dump: String?
    @Option(help: "Generated client: users.") var users = 20_000
    @Option(help: "Generated client: apps.") var apps = 600
    @Option(help: "Generated client: days.") var days = 366
    @Option(help: "Timed requests per route (after one untimed pass over every query).") var requests = 1_000
    @Option(help: "Only routes whose name is in this comma-separated list (K, L, M1, …, growth, chart).") var only: String?
    @Flag(help: "Also print each query's median.") var verbose = false

    struct Query {
        var route: String
        var client: ClientStore
        var path: String
        var params: [(String, String)]
    }

    func run() throws {
        tuneAllocator()
        let clock = ContinuousClock()
        let store: Store
        if let dump {
            do { store = try loadSource(dump, lenient: false) } catch { throw ValidationError("\(error)") }
        } else {
            let (catalog, builder) = SyntheticClient.make(SyntheticShape(users: users, apps: apps, days: days))
            store = Store(catalog: catalog, clients: [builder.build()])
        }
        let clients = store.clients.filter { $0.usage != nil }
        let api = API(serving: store, tokens: .demo)
        let auth = "Bearer \(TokenStore.demoToken)"
        print("\(store.clients.count) clients, \(store.usageRowCount) usage rows, "
              + "\(store.clients.reduce(0) { $0 + $1.users.count }) users")

        // What the reports keep: per-user first/last active days (built with the store) and the
        // user orders and sort keys derived on the first directory request.
        let t0 = clock.now
        let derived = store.clients.reduce(0) { $0 + DirectoryReports.derivedByteCount($1) }
        let deriveTime = clock.now - t0
        let activity = store.clients.reduce(0) { $0 + $1.activity.byteCount }
        let rows = Double(max(1, store.usageRowCount))
        print(String(format: "report memory: activity %d bytes (%.3f B/row) + derived on first use %d bytes (%.3f B/row) = %.3f B/row; derived in %.1f ms",
                     activity, Double(activity) / rows, derived, Double(derived) / rows,
                     Double(activity + derived) / rows, deriveTime.seconds * 1000))

        var queries: [Query] = []
        for c in clients { queries += Self.queries(c, store) }
        queries += Self.adminQueries(store, clients[0])
        let wanted = only.map { Set($0.split(separator: ",").map(String.init)) }
        queries.removeAll { q in wanted.map { !$0.contains(q.route) } ?? false }

        func request(_ q: Query) -> APIRequest {
            let query = q.params.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: BenchQueries.unreserved) ?? $0.1)" }
                .joined(separator: "&")
            return APIRequest(method: "GET", path: q.path, query: query, authorization: auth)
        }
        // One untimed pass: every query must answer 200; second pages get their cursor here.
        var all: [Query] = []
        for q in queries {
            let r = api.handle(request(q))
            guard r.status == 200 else {
                throw ValidationError("\(q.route) \(q.path)?\(q.params): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
            }
            all.append(q)
            if let cursor = BenchQueries.nextCursor(r.body), q.params.contains(where: { $0.0 == "page_size" }) {
                var next = q
                next.params.append(("cursor", cursor))
                all.append(next)
                _ = api.handle(request(next))
            }
        }
        let order = ["K", "K q", "L", "M1", "M2", "N", "O", "P", "Q", "R1", "R2", "churn", "reengagement", "growth", "attrition", "chart"]
        print("route         queries    p50 ms    p99 ms    max ms")
        for name in order {
            let list = all.filter { $0.route == name }
            guard !list.isEmpty else { continue }
            let prepared = list.map(request)
            var times: [Double] = []
            times.reserveCapacity(requests)
            for i in 0..<requests {
                let r = prepared[i % prepared.count]
                let s = clock.now
                let response = api.handle(r)
                times.append((clock.now - s).seconds * 1000)
                precondition(response.status == 200)
            }
            if verbose {
                for (k, q) in list.enumerated() {
                    var own: [Double] = []
                    for i in stride(from: k, to: times.count, by: list.count) { own.append(times[i]) }
                    own.sort()
                    print(String(format: "    %9.3f ms  ", own.isEmpty ? 0 : own[own.count / 2])
                          + "\(q.path.split(separator: "/").suffix(2).joined(separator: "/"))?"
                          + q.params.map { "\($0.0)=\($0.1.prefix(24))" }.joined(separator: "&"))
                }
            }
            times.sort()
            print(name.padding(toLength: 12, withPad: " ", startingAt: 0)
                  + String(format: " %8d %9.3f %9.3f %9.3f", list.count, times[times.count / 2],
                         times[min(times.count - 1, times.count * 99 / 100)], times[times.count - 1]))
        }
    }

    /// The per-client routes' queries on one client: every interval and sort, filters, an
    /// earlier `as_of`, paged lists (their second pages are added by the untimed pass).
    static func queries(_ c: ClientStore, _ store: Store) -> [Query] {
        let base = "/v2/clients/\(c.info.id)/"
        let newest = c.usage!.newestDay
        let earlier = newest.adding(-45).description
        var q: [Query] = []
        func add(_ route: String, _ tail: String, _ params: [(String, String)] = []) {
            q.append(Query(route: route, client: c, path: base + tail, params: params))
        }
        // Filters drawn from the client: its busiest app, a category it uses, its largest department.
        let u = c.usage!
        let span = DayRange(u.firstDay, newest)
        let busiest = (0..<min(u.appCount, c.apps.count)).max { u.userDays(entity: $0, span) < u.userDays(entity: $1, span) }
        let app = busiest.map { c.apps[$0].id.description }
        let category = c.apps.lazy.compactMap(\.category).first.map { store.catalog.categories[Int($0)].id.description }
        var memberCounts = [Int](repeating: 0, count: c.departments.count)
        for d in c.userDepartments { memberCounts[Int(d)] += 1 }
        let department = memberCounts.indices.max { memberCounts[$0] < memberCounts[$1] }.map { c.departments[$0].id.description }
        let user = c.users.isEmpty ? nil : c.users[c.users.count / 2]
        let search = user.map { String($0.email.prefix(4)) } ?? "a"

        add("K", "users", [("page_size", "50")])
        add("K q", "users", [("q", search), ("page_size", "50")])
        add("K q", "users", [("q", "zzqx")])
        add("K", "users", [("sort_by", "last_active_date"), ("sort_order", "desc"), ("page_size", "50")])
        add("K", "users", [("sort_by", "last_active_date"), ("as_of", earlier), ("page_size", "50")])
        add("K", "users", [("sort_by", "display_name"), ("page_size", "50")])
        add("K", "users", [("sort_by", "created_at"), ("sort_order", "desc"), ("page_size", "50")])
        add("K", "users", [("is_active", "false"), ("page_size", "50")])
        add("K", "users", [("has_department", "false"), ("page_size", "50")])
        if let department { add("K", "users", [("department_id", department), ("sort_by", "last_active_date"), ("page_size", "50")]) }
        for i in stride(from: 0, to: c.users.count, by: max(1, c.users.count / 8)) {
            add("L", "users/\(c.users[i].id)")
            add("L", "users/\(c.users[i].id)", [("granularity", "weekly"), ("start_date", newest.adding(-89).description),
                                                ("end_date", newest.description)])
        }
        add("M1", "departments", [("page_size", "50")])
        add("M1", "departments", [("sort_by", "active_member_count"), ("sort_order", "desc"), ("page_size", "50")])
        add("M1", "departments", [("sort_by", "member_count"), ("as_of", earlier)])
        for d in c.departments.prefix(4) {
            add("M2", "departments/\(d.id)", [("start_date", newest.adding(-29).description), ("end_date", newest.description), ("granularity", "weekly")])
            add("M2", "departments/\(d.id)", [("start_date", newest.adding(-365).description), ("end_date", newest.description),
                                              ("compare_start_date", newest.adding(-731).description),
                                              ("compare_end_date", newest.adding(-366).description), ("granularity", "monthly")])
        }
        for w in ["1", "7", "30", "90", "366"] { add("N", "usage-statistics/active-users", [("window_days", w)]) }
        add("N", "usage-statistics/active-users", [("as_of", earlier)])
        var filters: [[(String, String)]] = [[], [("is_approved", "true")]]
        if let app { filters.append([("app_ids", app)]) }
        if let category { filters.append([("category_ids", category)]) }
        for interval in ["30", "60", "90"] {
            for f in filters { add("O", "analytics/users/champions", [("report_interval", interval), ("page_size", "50")] + f) }
        }
        add("O", "analytics/users/champions", [("report_interval", "30"), ("as_of", earlier)])
        for interval in ["7", "14", "30"] {
            for f in filters { add("P", "analytics/users/churn", [("report_interval", interval), ("page_size", "50")] + f) }
        }
        add("P", "analytics/users/churn", [("report_interval", "30"), ("sort_by", "days_inactive"), ("as_of", earlier)])
        for interval in ["weekly", "monthly"] {
            for f in filters { add("Q", "analytics/users/reengagement", [("report_interval", interval), ("page_size", "50")] + f) }
        }
        add("Q", "analytics/users/reengagement", [("report_interval", "monthly"), ("sort_by", "reengaged_on"), ("as_of", earlier)])
        add("R1", "license")
        add("R1", "license", [("as_of", earlier)])
        add("R2", "license/utilization")
        let months = newest.description.prefix(7)
        let year = Int(months.prefix(4))!, month = Int(months.suffix(2))!
        let back = (year * 12 + month - 1) - 12
        add("R2", "license/utilization", [("start_month", String(format: "%04d-%02d", back / 12, back % 12 + 1))])
        return q
    }

    /// The admin reports over every client and the charts.
    static func adminQueries(_ store: Store, _ any: ClientStore) -> [Query] {
        var q: [Query] = []
        func add(_ route: String, _ path: String, _ params: [(String, String)]) {
            q.append(Query(route: route, client: any, path: path, params: params))
        }
        for i in ["7", "14", "30"] { add("churn", "/v2/analytics/clients/churn", [("report_interval", i), ("page_size", "50")]) }
        for i in ["weekly", "monthly"] {
            add("reengagement", "/v2/analytics/clients/reengagement", [("report_interval", i), ("page_size", "50")])
        }
        for i in ["30", "60", "90"] {
            add("growth", "/v2/analytics/clients/growth", [("report_interval", i), ("page_size", "50")])
            add("attrition", "/v2/analytics/clients/attrition", [("report_interval", i), ("page_size", "50")])
        }
        let newest = store.clients.compactMap { $0.usage?.newestDay }.max()!
        for chart in ["active_users", "active_clients", "new_users"] {
            for (cadence, days) in [("daily", 30), ("weekly", 182), ("monthly", 366)] {
                add("chart", "/v2/analytics/charts/\(chart)", [("cadence", cadence), ("start_date", newest.adding(1 - days).description),
                                                              ("end_date", newest.description)])
            }
        }
        return q
    }
}
