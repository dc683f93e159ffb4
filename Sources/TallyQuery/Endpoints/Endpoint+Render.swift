import TallyStorage

extension Endpoint {
    /// Runs the endpoint and renders its JSON body exactly as SPEC §3 shapes it. `cursor` turns
    /// the next page's key into the opaque `next_cursor` string.
    public func respond(_ r: EndpointRequest, executor: Executor, levels: UsageLevelThresholds = .init(),
                        cursor: (PageKey) -> String = { Cursor.encode($0, fingerprint: 0) }) throws -> JSON {
        let q = query(r)
        let result = try executor.run(q)
        let client = executor.store.client(r.client)!
        let view = RowRenderer(catalog: executor.store.catalog, client: client, levels: levels,
                               days: r.period.length, compared: q.comparison != nil)
        let period = JSON.object([
            ("start_date", .string(r.period.start.description)), ("end_date", .string(r.period.end.description)),
            ("compare_start_date", q.comparison.map { .string($0.start.description) } ?? .null),
            ("compare_end_date", q.comparison.map { .string($0.end.description) } ?? .null),
        ])
        switch self {
        case .summary, .aiSummary:
            let row = result.rows.first ?? ResultRow(key: .total, value: Metrics(), compare: nil)
            return .object([("period", period)] + view.summary(row, ai: self == .aiSummary))
        case .trend:
            func series(_ s: [Bucket]) -> JSON {
                .array(s.map { b in
                    .object([("bucket_start", .string(b.range.start.description)),
                             ("bucket_end", .string(b.range.end.description)),
                             ("unique_users", .int(b.value.users)), ("app_count", .int(b.value.apps)),
                             ("complete", .bool(b.complete))])
                })
            }
            return .object([("period", period), ("granularity", .string((r.granularity ?? .monthly).rawValue)),
                            ("series", series(result.series)),
                            ("compare_series", result.compareSeries.map(series) ?? .null)])
        default:
            let data = JSON.array(result.rows.map { view.row($0, for: self) })
            var fields: [(String, JSON)] = self == .aiUsers ? [] : [("period", period)]
            fields += [("data", data), ("total_count", .int(result.totalCount)),
                       ("next_cursor", result.next.map { .string(cursor($0)) } ?? .null)]
            return .object(fields)
        }
    }
}

/// Turns result rows into the JSON objects of SPEC §3.
struct RowRenderer {
    let catalog: Catalog
    let client: ClientStore
    let levels: UsageLevelThresholds
    let days: Int
    let compared: Bool

    /// `MetricWithDelta`.
    func metric(_ value: Int, _ compare: Int?) -> JSON {
        .object([("value", .int(value)),
                 ("change_pct", Derived.changePctTenths(value: value, compare: compare).map { .tenths($0) } ?? .null),
                 ("compare_value", compare.map { .int($0) } ?? .null)])
    }

    func appRef(_ a: UInt32) -> JSON {
        let app = client.apps[Int(a)]
        let cat = catalog.applications[Int(app.catalogIndex)]
        return .object([("id", .string(app.id.description)), ("canonical_name", .string(cat.canonicalName)),
                        ("logo", cat.logo.map { .string($0) } ?? .null), ("type", .string(cat.type)),
                        ("is_favorite", .bool(app.isFavorite)), ("is_approved", .bool(app.isApproved))])
    }

    func categoryRef(_ c: Int32?) -> JSON {
        guard let c else { return .null }
        let x = catalog.categories[Int(c)]
        return .object([("id", .string(x.id.description)), ("name", .string(x.name)), ("is_ai", .bool(x.isAI))])
    }

    func vendorRef(_ v: Int32?) -> JSON {
        guard let v else { return .null }
        let x = catalog.vendors[Int(v)]
        return .object([("id", .string(x.id.description)), ("name", .string(x.name))])
    }

    func departmentRef(_ d: UInt32) -> JSON {
        let x = client.departments[Int(d)]
        return .object([("id", .string(x.id.description)), ("name", .string(x.name)),
                        ("description", x.description.map { .string($0) } ?? .null)])
    }

    func row(_ row: ResultRow, for endpoint: Endpoint) -> JSON {
        let m = row.value, c = row.compare
        switch (endpoint, row.key) {
        case (.utilization, .app(let a)):
            let app = client.apps[Int(a)]
            return .object([("app", appRef(a)), ("category", categoryRef(app.category)), ("vendor", vendorRef(app.vendor)),
                            ("unique_users", metric(m.users, c?.users)),
                            ("usage_level", .string(levels.level(userDays: m.userDays, users: m.users, days: days)))])
        case (.aiUsers, .app(let a)):
            return .object([("app", appRef(a)), ("user_count", metric(m.users, c?.users)),
                            ("usage_level", .string(levels.level(userDays: m.userDays, users: m.users, days: days)))])
        case (.aiNew, .app(let a)):
            let first = client.usage?.firstSeen(app: Int(a))
            return .object([("app", appRef(a)), ("first_seen_date", first.map { .string($0.description) } ?? .null),
                            ("unique_users", .int(m.users))])
        case (.departments, .department(let d)):
            return .object([("department", departmentRef(d)), ("user_count", metric(m.users, c?.users)),
                            ("app_count", metric(m.apps, c?.apps))])
        case (.aiDepartments, .department(let d)):
            return .object([("department", departmentRef(d)), ("user_count", metric(m.users, c?.users)),
                            ("approved_user_count", metric(m.approvedUsers, c?.approvedUsers)),
                            ("unapproved_user_count", metric(m.unapprovedUsers, c?.unapprovedUsers))])
        case (.categories, .category(let cat)):
            return .object([("category", categoryRef(cat)), ("user_count", metric(m.users, c?.users)),
                            ("app_count", metric(m.apps, c?.apps))])
        case (.users, .user(let u)):
            let user = client.users[Int(u)]
            let depts = JSON.array(client.departments(ofUser: u).map(departmentRef))
            return .object([("user", .object([("id", .string(user.id.description)), ("email", .string(user.email)),
                                              ("display_name", user.displayName.map { .string($0) } ?? .null),
                                              ("departments", depts)])),
                            ("app_count", metric(m.apps, c?.apps)), ("active_days", metric(m.activeDays, c?.activeDays))])
        default:
            return .null
        }
    }

    /// Summary cards: with a comparison, an inactive comparison period gives 0, not null.
    func summary(_ row: ResultRow, ai: Bool) -> [(String, JSON)] {
        let m = row.value
        let c: Metrics? = compared ? (row.compare ?? Metrics()) : nil
        if ai {
            return [("ai_app_count", metric(m.apps, c?.apps)), ("ai_user_count", metric(m.users, c?.users)),
                    ("unapproved_ai_app_count", metric(m.unapprovedApps, c?.unapprovedApps)),
                    ("unapproved_ai_user_count", metric(m.unapprovedUsers, c?.unapprovedUsers)),
                    ("ai_user_share_pct", Derived.percentTenths(m.users, of: m.anyAppUsers).map { .tenths($0) } ?? .null)]
        }
        return [("unique_users", metric(m.users, c?.users)), ("app_count", metric(m.apps, c?.apps)),
                ("approved_app_count", metric(m.approvedApps, c?.approvedApps)),
                ("unapproved_app_count", metric(m.unapprovedApps, c?.unapprovedApps)),
                ("unapproved_user_count", metric(m.unapprovedUsers, c?.unapprovedUsers))]
    }
}
