import TallyQuery
import TallyStorage

extension Registry {
    static let asOfRule = ParameterRule("as_of", "optional; YYYY-MM-DD; default the client's newest activity date")
    static let activityRules: [ParameterRule] = [
        .init("app_ids", "comma-separated UUIDs"), .init("category_ids", "comma-separated UUIDs"),
        .init("is_approved", "true or false (also 1, 0)"),
    ]

    /// `report_interval` values and their days, shared by the user reports and the client reports.
    static let churnIntervals: KeyValuePairs<String, Int> = ["7": 7, "14": 14, "30": 30]
    static let reengagementIntervals: KeyValuePairs<String, Int> = ["weekly": 7, "monthly": 30]
    static let growthIntervals: KeyValuePairs<String, Int> = ["30": 30, "60": 60, "90": 90]

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
                  let p = try QueryValues(c.query)
                  let r = c.reports(p)
                  let department = try p.uuid("department_id"), hasDepartment = try p.bool("has_department")
                  let isActive = try p.bool("is_active")
                  if let q = p["q"], !(1...100).contains(q.unicodeScalars.count) {
                      throw .invalid("q", "q must be 1 to 100 characters")
                  }
                  let f = UserListFilter(q: p["q"], departmentId: department, hasDepartment: hasDepartment, isActive: isActive,
                                         role: p["role"])
                  let asOf = try p.asOf(default: r.defaultAsOf)
                  return r.users(f, asOf: asOf, page: try p.page(c.route, client: c.clientID))
              }),
        Route("L", "users/{user_id}", wire: 12,
              parameters: [.init("user_id", "the user's UUID (the path's last segment over HTTP)"),
                           .init("start_date", "optional, with end_date; YYYY-MM-DD; default the 30 days ending on as_of"),
                           .init("end_date", "optional, with start_date; not before it, at most 366 days"),
                           .init("granularity", "optional; daily, weekly, monthly or quarterly"), asOfRule],
              answer: { c throws(APIError) in
                  let user = try c.pathEntity(c.client!.userIndex, "user")
                  let p = try QueryValues(c.query)
                  let r = c.reports(p)
                  let granularity = try p.granularity(required: false)
                  let given = try p.period("start_date", "end_date", required: false)
                  let asOf = try p.asOf(default: r.defaultAsOf)
                  let period = given ?? asOf.map { DayRange($0.adding(-29), $0) }
                  return r.user(user, period: period, granularity: granularity, asOf: asOf)
              }),
        Route("M1", "departments", wire: 13, parameters: [asOfRule] + listParameters(DirectoryReports.departmentSorts),
              sortBy: DirectoryReports.departmentSorts,
              answer: { c throws(APIError) in
                  let p = try QueryValues(c.query)
                  let r = c.reports(p)
                  return r.departments(asOf: try p.asOf(default: r.defaultAsOf), page: try p.page(c.route, client: c.clientID))
              }),
        Route("M2", "departments/{department_id}", wire: 14,
              parameters: [.init("department_id", "the department's UUID (the path's last segment over HTTP)")]
                  + dashboardParameters(.departments).filter { !["sort_by", "sort_order", "page_size", "cursor"].contains($0.name) },
              heavy: { _ in true },
              answer: { c throws(APIError) in
                  let d = try c.pathEntity(c.client!.departmentIndex, "department")
                  let params = try AnalyticsParameters(endpoint: .departments, client: c.clientID!, query: c.query)
                  do { return try c.reports(nil).department(d, params.request, executor: Executor(store: c.store)) } catch {
                      throw .clientNotFound
                  }
              }),
        Route("N", "usage-statistics/active-users", wire: 15,
              parameters: [.init("window_days", "a decimal integer from 1 to 366; default 30"), asOfRule],
              answer: { c throws(APIError) in
                  let p = try QueryValues(c.query)
                  let r = c.reports(p)
                  let days = try p.int("window_days", 1...366) ?? 30
                  return r.activeUsers(windowDays: days, asOf: try p.asOf(default: r.defaultAsOf))
              }),
        userReport("O", "analytics/users/champions", wire: 16, intervals: growthIntervals, "30, 60 or 90 (days)",
                   sortBy: ["num_active_days"]) { $0.champions(days: $1, interval: $2, filters: $3, asOf: $4, page: $5) },
        userReport("P", "analytics/users/churn", wire: 17, intervals: churnIntervals, "7, 14 or 30 (days)",
                   sortBy: DirectoryReports.churnSorts) { $0.churn(days: $1, interval: $2, filters: $3, asOf: $4, page: $5) },
        userReport("Q", "analytics/users/reengagement", wire: 18, intervals: reengagementIntervals,
                   "weekly (7 days) or monthly (30 days)", sortBy: DirectoryReports.reengagementSorts) {
            $0.reengagement(days: $1, interval: $2, filters: $3, asOf: $4, page: $5)
        },
        Route("R1", "license", wire: 19, parameters: [asOfRule],
              answer: { c throws(APIError) in
                  let p = try QueryValues(c.query)
                  let r = c.reports(p)
                  return r.license(asOf: try p.asOf(default: r.defaultAsOf))
              }),
        Route("R2", "license/utilization", wire: 20,
              parameters: [.init("start_month", "optional; YYYY-MM, at most 23 months before as_of's month and not after it; default 11 months before"),
                           asOfRule],
              answer: { c throws(APIError) in
                  let p = try QueryValues(c.query)
                  let r = c.reports(p)
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
                  // Months counted from year 0 (floor division: as_of may be in year 0000).
                  func month(_ d: Day) -> Int { d.civil.year * 12 + d.civil.month - 1 }
                  let back = month(asOf) - 11
                  let (year, m) = (back >= 0 ? back / 12 : (back - 11) / 12, ((back % 12) + 12) % 12 + 1)
                  let first = start ?? Day(year: year, month: m, day: 1)!
                  guard (0...23).contains(month(asOf) - month(first)) else {
                      throw .invalid("start_month", "start_month must be from 23 months before as_of's month through that month")
                  }
                  return r.licenseUtilization(startMonth: first, asOf: asOf)
              }),
    ]

    /// O, P and Q: `report_interval`, the activity filters, `as_of` and a page.
    static func userReport(_ name: String, _ tail: String, wire: UInt8, intervals: KeyValuePairs<String, Int>, _ rule: String,
                           sortBy: [String],
                           _ run: @escaping @Sendable (DirectoryReports, Int, String, Filters, Day?, DirectoryPage) -> [UInt8]) -> Route {
        Route(name, tail, wire: wire,
              parameters: [.init("report_interval", "required; " + rule)] + activityRules + [asOfRule] + listParameters(sortBy),
              sortBy: sortBy, heavy: { _ in true },
              answer: { c throws(APIError) in
                  let p = try QueryValues(c.query)
                  let r = c.reports(p)
                  let interval = try p.choice("report_interval", intervals.map(\.key), required: true)!
                  let days = intervals.first { $0.key == interval }!.value
                  let filters = try p.activityFilters()
                  let asOf = try p.asOf(default: r.defaultAsOf)
                  return run(r, days, interval, filters, asOf, try p.page(c.route, client: c.clientID))
              })
    }

    /// The admin reports over clients (SPEC §3c); wire numbers 21–25.
    static let adminReportRoutes: [Route] = {
        let intervals: [(AdminReports.Report, KeyValuePairs<String, Int>)] = [
            (.churn, churnIntervals), (.reengagement, reengagementIntervals), (.growth, growthIntervals), (.attrition, growthIntervals),
        ]
        var routes = intervals.enumerated().map { i, x in
            let (kind, allowed) = x
            return Route("clients/\(kind.rawValue)", "analytics/clients/\(kind.rawValue)", base: .root, wire: UInt8(21 + i),
                         parameters: [.init("report_interval", "required; " + allowed.map(\.key).joined(separator: ", ")),
                                      .init("as_of", "optional; YYYY-MM-DD; default the newest activity date of the store")]
                             + pageParameters,
                         adminOnly: true, heavy: { _ in true },
                         answer: { c throws(APIError) in
                             let p = try QueryValues(c.query)
                             let fp = p.fingerprint(c.route, client: nil)
                             let reports = AdminReports(store: c.store, format: c.format, cursor: c.cursor(fingerprint: fp))
                             let interval = try p.choice("report_interval", allowed.map(\.key), required: true)!
                             let asOf = try p.asOf(default: reports.defaultAsOf)
                             let page = try p.page(c.route, client: nil)
                             return reports.report(kind, days: allowed.first { $0.key == interval }!.value, interval: interval,
                                                   asOf: asOf, pageSize: page.size, after: page.after)
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
                                let p = try QueryValues(c.query)
                                let cadence = try p.choice("cadence", ["daily", "weekly", "monthly"], required: true)!
                                let period = try p.period("start_date", "end_date", required: true)!
                                return AdminReports(store: c.store, format: c.format)
                                    .chart(chart, cadence: Granularity(rawValue: cadence)!, period: period)
                            }))
        return routes
    }()
}

extension RouteContext {
    /// The client's directory reports, their cursors bound to the route's parameters in `p`.
    func reports(_ p: QueryValues?) -> DirectoryReports {
        let fp = p?.fingerprint(route, client: clientID) ?? 0
        return DirectoryReports(store: store, client: client!, format: format, cursor: cursor(fingerprint: fp))
    }

    /// Encodes the next cursors of a list page read from ``version``, bound by `fingerprint` to
    /// the request's parameters, and pins that version for the pages that follow (``CursorPins``).
    func cursor(fingerprint: UInt64) -> (PageKey) -> String {
        let (writer, store, version, scope) = (api.writer, store, version, route.base == .client ? clientID : nil)
        return { key in
            writer.pin(store, version: version, client: scope)
            return Cursor.encode(key, fingerprint: fingerprint, version: version)
        }
    }

    /// The dense index of the path's user or department: 404 when it is not a UUID or not the client's.
    func pathEntity(_ index: [UUID128: UInt32], _ what: String) throws(APIError) -> UInt32 {
        guard let s = pathValue, let id = UUID128(s), let i = index[id] else {
            throw APIError(status: 404, code: "not_found", message: "no such \(what) in this client")
        }
        return i
    }
}
