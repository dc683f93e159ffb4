import TallyQuery
import TallyStorage

extension Registry {
    static let asOfRule = ParameterRule("as_of", "optional; YYYY-MM-DD; default the client's newest activity date")
    static let activityRules: [ParameterRule] = [
        .init("app_ids", "comma-separated UUIDs"), .init("category_ids", "comma-separated UUIDs"),
        .init("is_approved", "true or false (also 1, 0)"),
    ]

    /// K–R (SPEC §3b); wire numbers 11–20.
    static let directoryRoutes: [Route] = [
        Route("K", "users", wire: 11,
              parameters: [.init("q", "1–100 characters; case-insensitive substring of email or display_name"),
                           .init("department_id", "a UUID"), .init("has_department", "true or false"),
                           .init("is_active", "true or false"), .init("role", "exact, case-sensitive"), asOfRule]
                  + listParameters(DirectoryReports.userSorts),
              sortBy: DirectoryReports.userSorts,
              heavy: { p in p.has("q") || p.value("sort_by") == "last_active_date" },
              answer: { c throws(APIError) in
                  let p = try RouteParameters(c.route, c.query)
                  let r = c.reports
                  var f = UserListFilter(departmentId: try p.uuid("department_id"), hasDepartment: try p.bool("has_department"),
                                         isActive: try p.bool("is_active"), role: p["role"])
                  if let q = p["q"] {
                      guard (1...100).contains(q.unicodeScalars.count) else { throw .invalid("q", "q must be 1 to 100 characters") }
                      f.q = q.lowercased().unicodeScalars.map(\.value)
                  }
                  let asOf = try p.asOf(default: r.defaultAsOf)
                  return r.users(f, asOf: asOf, page: try p.page(client: c.clientID))
              }),
        Route("L", "users/{user_id}", wire: 12,
              parameters: [.init("user_id", "the user's UUID (the path's last segment over HTTP)"),
                           .init("start_date", "optional, with end_date; YYYY-MM-DD; default the 30 days ending on as_of"),
                           .init("end_date", "optional, with start_date; not before it, at most 366 days"),
                           .init("granularity", "optional; daily, weekly, monthly or quarterly"), asOfRule],
              answer: { c throws(APIError) in
                  let user = try c.pathEntity(c.client!.userIndex, "user")
                  let p = try RouteParameters(c.route, c.query)
                  let r = c.reports
                  var granularity: Granularity?
                  if let g = p["granularity"] {
                      guard let x = Granularity(rawValue: g) else {
                          throw .invalid("granularity", "granularity must be one of daily, weekly, monthly, quarterly")
                      }
                      granularity = x
                  }
                  let given = try p.period("start_date", "end_date", required: false)
                  let asOf = try p.asOf(default: r.defaultAsOf)
                  let period = given ?? asOf.map { DayRange($0.adding(-29), $0) }
                  return r.user(user, period: period, granularity: granularity, asOf: asOf)
              }),
        Route("M1", "departments", wire: 13, parameters: [asOfRule] + listParameters(DirectoryReports.departmentSorts),
              sortBy: DirectoryReports.departmentSorts,
              answer: { c throws(APIError) in
                  let p = try RouteParameters(c.route, c.query)
                  let r = c.reports
                  return r.departments(asOf: try p.asOf(default: r.defaultAsOf), page: try p.page(client: c.clientID))
              }),
        Route("M2", "departments/{department_id}", wire: 14,
              parameters: [.init("department_id", "the department's UUID (the path's last segment over HTTP)")]
                  + dashboardParameters(.departments).filter { !["sort_by", "sort_order", "page_size", "cursor"].contains($0.name) },
              heavy: { _ in true },
              answer: { c throws(APIError) in
                  let d = try c.pathEntity(c.client!.departmentIndex, "department")
                  let params = try AnalyticsParameters(endpoint: .departments, client: c.clientID!, query: c.query)
                  do { return try c.reports.department(d, params.request, executor: Executor(store: c.store)) } catch {
                      throw .clientNotFound
                  }
              }),
        Route("N", "usage-statistics/active-users", wire: 15,
              parameters: [.init("window_days", "a decimal integer from 1 to 366; default 30"), asOfRule],
              answer: { c throws(APIError) in
                  let p = try RouteParameters(c.route, c.query)
                  let r = c.reports
                  let days = try p.int("window_days", 1...366) ?? 30
                  return r.activeUsers(windowDays: days, asOf: try p.asOf(default: r.defaultAsOf))
              }),
        Route("O", "analytics/users/champions", wire: 16,
              parameters: [.init("report_interval", "required; 30, 60 or 90 (days)")] + activityRules + [asOfRule]
                  + listParameters(["num_active_days"]),
              sortBy: ["num_active_days"], heavy: { _ in true },
              answer: { c throws(APIError) in
                  try userReport(c, intervals: ["30": 30, "60": 60, "90": 90]) { r, n, i, f, asOf, page in
                      r.champions(days: n, interval: i, filters: f, asOf: asOf, page: page)
                  }
              }),
        Route("P", "analytics/users/churn", wire: 17,
              parameters: [.init("report_interval", "required; 7, 14 or 30 (days)")] + activityRules + [asOfRule]
                  + listParameters(DirectoryReports.churnSorts),
              sortBy: DirectoryReports.churnSorts, heavy: { _ in true },
              answer: { c throws(APIError) in
                  try userReport(c, intervals: ["7": 7, "14": 14, "30": 30]) { r, n, i, f, asOf, page in
                      r.churn(days: n, interval: i, filters: f, asOf: asOf, page: page)
                  }
              }),
        Route("Q", "analytics/users/reengagement", wire: 18,
              parameters: [.init("report_interval", "required; weekly (7 days) or monthly (30 days)")] + activityRules + [asOfRule]
                  + listParameters(DirectoryReports.reengagementSorts),
              sortBy: DirectoryReports.reengagementSorts, heavy: { _ in true },
              answer: { c throws(APIError) in
                  try userReport(c, intervals: ["weekly": 7, "monthly": 30]) { r, n, i, f, asOf, page in
                      r.reengagement(days: n, interval: i, filters: f, asOf: asOf, page: page)
                  }
              }),
        Route("R1", "license", wire: 19, parameters: [asOfRule],
              answer: { c throws(APIError) in
                  let p = try RouteParameters(c.route, c.query)
                  let r = c.reports
                  return r.license(asOf: try p.asOf(default: r.defaultAsOf))
              }),
        Route("R2", "license/utilization", wire: 20,
              parameters: [.init("start_month", "optional; YYYY-MM, at most 23 months before as_of's month and not after it; default 11 months before"),
                           asOfRule],
              answer: { c throws(APIError) in
                  let p = try RouteParameters(c.route, c.query)
                  let r = c.reports
                  let asOf = try p.asOf(default: r.defaultAsOf)
                  var start: Day?
                  if let s = p["start_month"] {
                      let u = Array(s.utf8)
                      guard u.count == 7, u[4] == UInt8(ascii: "-"), let d = Day(s + "-01") else {
                          throw .invalid("start_month", "start_month must be a month in YYYY-MM form")
                      }
                      start = d
                  }
                  guard let asOf else { return r.licenseUtilization(startMonth: start ?? Day(raw: 0), asOf: nil) }
                  let (y, m, _) = asOf.civil
                  let months = { (d: Day) in (y - d.civil.year) * 12 + m - d.civil.month }
                  let back = y * 12 + m - 1 - 11
                  let first = start ?? Day(year: back / 12, month: back % 12 + 1, day: 1)!
                  guard (0...23).contains(months(first)) else {
                      throw .invalid("start_month", "start_month must be from 23 months before as_of's month through that month")
                  }
                  return r.licenseUtilization(startMonth: first, asOf: asOf)
              }),
    ]

    /// O, P and Q: `report_interval`, the activity filters, `as_of` and a page.
    static func userReport(_ c: RouteContext, intervals: KeyValuePairs<String, Int>,
                           _ run: (DirectoryReports, Int, String, Filters, Day?, DirectoryPage) -> [UInt8]) throws(APIError) -> [UInt8] {
        let p = try RouteParameters(c.route, c.query)
        let r = c.reports
        let interval = try p.choice("report_interval", intervals.map(\.key), required: true)!
        let days = intervals.first { $0.key == interval }!.value
        let filters = try p.activityFilters()
        let asOf = try p.asOf(default: r.defaultAsOf)
        return run(r, days, interval, filters, asOf, try p.page(client: c.clientID))
    }

    /// The admin reports over clients (SPEC §3c); wire numbers 21–25.
    static let adminReportRoutes: [Route] = {
        let intervals: [(AdminReports.Report, KeyValuePairs<String, Int>)] = [
            (.churn, ["7": 7, "14": 14, "30": 30]), (.reengagement, ["weekly": 7, "monthly": 30]),
            (.growth, ["30": 30, "60": 60, "90": 90]), (.attrition, ["30": 30, "60": 60, "90": 90]),
        ]
        var routes = intervals.enumerated().map { i, x in
            let (kind, allowed) = x
            return Route("clients/\(kind.rawValue)", "analytics/clients/\(kind.rawValue)", base: .root, wire: UInt8(21 + i),
                         parameters: [.init("report_interval", "required; " + allowed.map(\.key).joined(separator: ", ")),
                                      .init("as_of", "optional; YYYY-MM-DD; default the newest activity date of the store"),
                                      .init("page_size", "an integer from 1 to 200; default 50"),
                                      .init("cursor", "the next_cursor of the previous page, with every other parameter repeated as it was")],
                         adminOnly: true, heavy: { _ in true },
                         answer: { c throws(APIError) in
                             let p = try RouteParameters(c.route, c.query)
                             let reports = AdminReports(store: c.store, format: c.format)
                             let interval = try p.choice("report_interval", allowed.map(\.key), required: true)!
                             let asOf = try p.asOf(default: reports.defaultAsOf)
                             let page = try p.page(client: nil, sorts: false)
                             let fp = p.fingerprint(client: nil, sorts: false)
                             return AdminReports(store: c.store, format: c.format, cursor: { Cursor.encode($0, fingerprint: fp) })
                                 .report(kind, days: allowed.first { $0.key == interval }!.value, interval: interval, asOf: asOf,
                                         pageSize: page.size, after: page.after)
                         })
        }
        routes.append(Route("charts", "analytics/charts/{chart_type}", base: .root, wire: 25,
                            parameters: [.init("chart_type", "active_users, active_clients or new_users (the path's last segment over HTTP)"),
                                         .init("cadence", "required; daily, weekly or monthly"),
                                         .init("start_date", "required; YYYY-MM-DD"),
                                         .init("end_date", "required; not before start_date, at most 366 days")],
                            adminOnly: true, heavy: { _ in true },
                            answer: { c throws(APIError) in
                                guard let chart = c.pathValue.flatMap(AdminReports.Chart.init(rawValue:)) else {
                                    throw APIError(status: 404, code: "not_found", message: "no such chart (active_users, active_clients, new_users)")
                                }
                                let p = try RouteParameters(c.route, c.query)
                                let cadence = try p.choice("cadence", ["daily", "weekly", "monthly"], required: true)!
                                let period = try p.period("start_date", "end_date", required: true)!
                                return AdminReports(store: c.store, format: c.format)
                                    .chart(chart, cadence: Granularity(rawValue: cadence)!, period: period)
                            }))
        return routes
    }()
}

extension RouteContext {
    /// The route being answered (set by ``API/answer``).
    var reports: DirectoryReports {
        let fp = (try? RouteParameters(route, query))?.fingerprint(client: clientID, sorts: true) ?? 0
        return DirectoryReports(store: store, client: client!, format: format, cursor: { Cursor.encode($0, fingerprint: fp) })
    }

    /// The dense index of the path's user or department: 404 when it is not a UUID or not the client's.
    func pathEntity(_ index: [UUID128: UInt32], _ what: String) throws(APIError) -> UInt32 {
        guard let s = pathValue, let id = UUID128(s), let i = index[id] else {
            throw APIError(status: 404, code: "not_found", message: "no such \(what) in this client")
        }
        return i
    }
}
