import TallyAPI
import TallyQuery
import TallyStorage

/// Valid requests of every query route against ``TinyDump/store``: the seeds of the query
/// fuzzer, and the answers (JSON and compact) the compact-encoding and frame fuzzers start from.
public enum SeedQueries {
    /// (wire number, query string as sent). A route with a path parameter takes it as a query
    /// parameter of that name, as the binary protocol sends it.
    public static var all: [(wire: UInt8, query: String)] {
        let store = TinyDump.store
        let vandelay = store.clients[2]
        let user = vandelay.users[0].id.description, department = vandelay.departments[0].id.description
        let app = vandelay.apps[0].id.description, category = store.catalog.categories[0].id.description
        let period = "start_date=2025-09-01&end_date=2026-02-28"
        let compare = "compare_start_date=2025-03-01&compare_end_date=2025-08-31"
        var out: [(UInt8, String)] = []
        // A–J.
        for w in UInt8(1)...10 {
            out.append((w, "\(period)&granularity=monthly"))
            out.append((w, "\(period)&\(compare)&granularity=weekly&page_size=2&sort_order=asc"))
            out.append((w, "\(period)&granularity=daily&is_approved=true&category_ids=\(category)&app_ids=\(app)&department_ids=\(department)"))
        }
        out += [
            (11, "q=a&page_size=2"), (11, "is_active=true&has_department=false&sort_by=last_active_date&as_of=2026-01-31"),
            (12, "user_id=\(user)&\(period)&granularity=weekly"), (12, "user_id=\(user.uppercased())&as_of=2026-02-01"),
            (13, "page_size=1"), (13, "sort_order=desc&as_of=2025-12-31"),
            (14, "department_id=\(department)&\(period)&granularity=monthly"),
            (15, "window_days=30&as_of=2026-03-01"), (15, "window_days=366"),
            (16, "report_interval=30&page_size=2"), (16, "report_interval=90&app_ids=\(app)&as_of=2026-01-15"),
            (17, "report_interval=7"), (17, "report_interval=14&is_approved=false&page_size=1"),
            (18, "report_interval=weekly&page_size=1"), (18, "report_interval=monthly&category_ids=\(category)"),
            (19, "as_of=2026-02-01"), (19, ""),
            (20, "start_month=2025-06&as_of=2026-03-01"), (20, "as_of=0000-03-01"),
            (21, "report_interval=30&page_size=1"), (22, "report_interval=weekly"), (23, "report_interval=60&as_of=2026-02-01"),
            (24, "report_interval=90&page_size=1"),
            (25, "chart_type=active_users&cadence=weekly&\(period)"), (25, "chart_type=new_users&cadence=daily&\(period)"),
            (25, "chart_type=active_clients&cadence=monthly&start_date=2025-06-01&end_date=2026-03-31"),
        ]
        return out
    }

    /// The API over the tiny store, with the demo token (every client).
    public static let api = API(serving: TinyDump.store, tokens: TokenStore.demo)
    public static let allClients = TokenStore.demo.entries[0]

    /// Answers one seed request (Vandelay for client routes) in `format`.
    public static func answer(wire: UInt8, query: String, format: ResultFormat) throws -> [UInt8] {
        guard let route = Registry.route(wire: wire) else { return [] }
        let parameters = QueryString.parse(query)
        let pathValue = route.pathParameter.flatMap { name in parameters.first { $0.0 == name }?.1 }
        return try api.answer(route, client: TinyDump.store.clients[2].info.id, pathValue: pathValue, token: allClients,
                              query: parameters, format: format)
    }
}
