import TallyStorage

// M1, M2, N, O, P, Q, R1, R2 of SPEC §3b.
extension DirectoryReports {
    /// The window of the last `n` days ending on `asOf`.
    static func window(_ n: Int, endingOn asOf: Day) -> DayRange { DayRange(asOf.adding(1 - n), asOf) }

    public static let departmentSorts = ["name", "member_count", "active_member_count"]

    /// M1 `departments`: every department with its members and those active in the last 30 days.
    /// - Complexity: O(members) after one union over the window's blocks.
    public func departments(asOf: Day?, page: DirectoryPage) -> [UInt8] {
        let active = asOf.map { activeUsers(scope(Filters()), Self.window(30, endingOn: $0)) }
        let arena = client.membersArena
        let sortBy = page.sortBy ?? "name"
        let items: [(key: PageKey, row: (UInt32, Int, Int))] = client.departments.indices.map { d in
            let members = arena.cardinality(client.members[d])
            let activeMembers = active.map { arena.intersectionCount(client.members[d], $0) } ?? 0
            let value: SortValue = sortBy == "member_count" ? .int(members) : sortBy == "active_member_count"
                ? .int(activeMembers) : .name(client.departments[d].name)
            return (PageKey(value: value, id: client.departments[d].id), (UInt32(d), members, activeMembers))
        }
        let p = Paged(items, order: page.order ?? (sortBy == "name" ? .asc : .desc), after: page.after, size: page.size)
        return document(512 + 200 * p.rows.count) { w in
            w.beginObject()
            w.key("as_of"); w.day(asOf)
            writePage(&w, p) { w, r in
                w.beginObject()
                w.key("department"); writeDepartmentRef(&w, r.0, client: client)
                w.key("member_count"); w.int(r.1)
                w.key("active_member_count"); w.int(r.2)
                w.endObject()
            }
            w.endObject()
        }
    }

    /// M2 `departments/{department_id}`: B's figures for one department, as a summary card.
    public func department(_ d: UInt32, _ r: EndpointRequest, executor: Executor) throws -> [UInt8] {
        // Each period on its own: B's rows are the departments active in its primary period, so
        // a department silent then but active in the comparison has its compare_value only here.
        func figures(_ period: DayRange) throws -> Metrics {
            var one = r
            one.period = period
            one.comparison = nil
            one.after = nil
            var q = Endpoint.departments.query(one)
            q.pageSize = nil
            return try executor.run(q).rows.first { $0.key == .department(d) }?.value ?? Metrics()
        }
        let value = try figures(r.period), compare = try r.comparison.map(figures)
        return document(768) { w in
            w.beginObject()
            w.key("department"); writeDepartmentRef(&w, d, client: client)
            w.key("member_count"); w.int(client.membersArena.cardinality(client.members[Int(d)]))
            w.key("period")
            w.beginObject()
            w.key("start_date"); w.day(r.period.start)
            w.key("end_date"); w.day(r.period.end)
            w.key("compare_start_date"); w.day(r.comparison?.start)
            w.key("compare_end_date"); w.day(r.comparison?.end)
            w.endObject()
            writeMetric(&w, "user_count", value.users, compare?.users)
            writeMetric(&w, "app_count", value.apps, compare?.apps)
            w.endObject()
        }
    }

    /// N `usage-statistics/active-users`: distinct users active in the last `windowDays` days.
    public func activeUsers(windowDays: Int, asOf: Day?) -> [UInt8] {
        let n = asOf.map { activeCount(Self.window(windowDays, endingOn: $0)) } ?? 0
        return document(96) { w in
            w.beginObject()
            w.key("active_users"); w.int(n)
            w.key("window_days"); w.int(windowDays)
            w.key("as_of"); w.day(asOf)
            w.endObject()
        }
    }

    /// O `analytics/users/champions`: users active in the window, by distinct active days.
    /// - Complexity: O(pairs of the window's users × the window's words).
    public func champions(days n: Int, interval: String, filters: Filters, asOf: Day?, page: DirectoryPage) -> [UInt8] {
        var items: [(key: PageKey, row: (UInt32, Int))] = []
        var ranked: Paged<(UInt32, Int)>?
        let s = scope(filters), order = page.order ?? .desc
        if let asOf, let scan = PeriodScan(scope: s, range: Self.window(n, endingOn: asOf)) {
            if s.users == nil, let activity = ActivityScan(client), let entities = ActivityScan.entities(s, activity.index) {
                // Every user's active days from the window's day bitmaps, paged by packed integers.
                let days = activity.activeDays(entities, scan.lo, scan.hi)
                let users = (0..<UInt32(client.users.count)).filter { days[Int($0)] > 0 }
                if let p = RankedPage(users: users, key: { Int(days[Int($0)]) }, kind: .int, order: order, after: page.after,
                                      size: page.size, directory: directory, client: client) {
                    ranked = Paged(rows: p.rows.map { r in
                        (key: PageKey(value: .int(r.key!), id: client.users[Int(r.user)].id), row: (r.user, r.key!))
                    }, total: p.total, next: p.next)
                }
            }
            if ranked == nil {
                let active = UserSet(domain: client.users.count)
                scan.unionOfApps(.all, into: active)
                for (u, m) in scan.userRows(active.sortedValues().map(Int.init)) {
                    items.append((PageKey(value: .int(m.activeDays), id: client.users[u].id), (UInt32(u), m.activeDays)))
                }
            }
        }
        let p = ranked ?? Paged(items, order: order, after: page.after, size: page.size)
        return report(asOf: asOf, interval: interval, p) { w, r in
            w.key("user"); userRow(&w, r.0, asOf: asOf)
            w.key("num_active_days"); w.int(r.1)
        }
    }

    public static let churnSorts = ["last_active_date", "days_inactive"]

    /// P `analytics/users/churn`: users with matching activity before the last `n` days and none in them.
    public func churn(days n: Int, interval: String, filters: Filters, asOf: Day?, page: DirectoryPage) -> [UInt8] {
        var items: [(key: PageKey, row: (UInt32, Day, Int))] = []
        // The days before the window; none when as_of is before the client's history.
        if let asOf, let before = span(historyStart, asOf.adding(-n)) {
            let s = scope(filters), m = mask(s)
            let inWindow = activeUsers(s, Self.window(n, endingOn: asOf))
            let sortByDays = page.sortBy == "days_inactive"
            var candidates: [UInt32] = []
            activeUsers(s, before).forEach { u in if !inWindow.contains(u) { candidates.append(u) } }
            // Under a filter, many candidates: their last filtered day from one walk back over
            // the day bitmaps; else each from its stored bounds or its pairs.
            var walked: [Int32]?
            if m != nil, candidates.count > 32, let scan = ActivityScan(client), let entities = ActivityScan.entities(s, scan.index),
               let (_, hi) = offsets(before) {
                walked = scan.lastActive(candidates, upTo: hi, entities: entities)
            }
            for u in candidates {
                let last: Day
                if let walked {
                    guard walked[Int(u)] >= 0 else { continue }
                    last = historyStart.adding(Int(walked[Int(u)]))
                } else {
                    guard let d = lastDay(u, before, mask: m) else { continue }
                    last = d
                }
                let inactive = last.distance(to: asOf)
                items.append((PageKey(value: sortByDays ? .int(inactive) : .day(last), id: client.users[Int(u)].id), (u, last, inactive)))
            }
        }
        let p = Paged(items, order: page.order ?? .desc, after: page.after, size: page.size)
        return report(asOf: asOf, interval: interval, p) { w, r in
            w.key("user"); userRow(&w, r.0, asOf: asOf)
            w.key("last_active_date"); w.day(r.1)
            w.key("days_inactive"); w.int(r.2)
        }
    }

    public static let reengagementSorts = ["days_inactive", "reengaged_on"]

    /// Q `analytics/users/reengagement`: active in the last `n` days (W1), silent in the `n`
    /// before (W0), active before those.
    public func reengagement(days n: Int, interval: String, filters: Filters, asOf: Day?, page: DirectoryPage) -> [UInt8] {
        var items: [(key: PageKey, row: (UInt32, Day, Day, Int))] = []
        // The days before W0; none when as_of is too early in the client's history.
        if let asOf, let before = span(historyStart, asOf.adding(-2 * n)) {
            let s = scope(filters), m = mask(s)
            let w1 = Self.window(n, endingOn: asOf), w0 = Self.window(n, endingOn: asOf.adding(-n))
            let byDate = page.sortBy == "reengaged_on"
            let silent = activeUsers(s, w0), earlier = activeUsers(s, before)
            activeUsers(s, w1).forEach { u in
                guard !silent.contains(u), earlier.contains(u), let back = firstDay(u, w1, mask: m),
                      let previous = lastDay(u, before, mask: m) else { return }
                let gap = previous.distance(to: back) - 1
                items.append((PageKey(value: byDate ? .day(back) : .int(gap), id: client.users[Int(u)].id), (u, back, previous, gap)))
            }
        }
        let p = Paged(items, order: page.order ?? .desc, after: page.after, size: page.size)
        return report(asOf: asOf, interval: interval, p) { w, r in
            w.key("user"); userRow(&w, r.0, asOf: asOf)
            w.key("reengaged_on"); w.day(r.1)
            w.key("previous_active_date"); w.day(r.2)
            w.key("days_inactive"); w.int(r.3)
        }
    }

    /// The envelope of O, P and Q: `as_of`, `report_interval` and a page of rows.
    func report<Row>(asOf: Day?, interval: String, _ p: Paged<Row>, _ row: (inout AnyWriter, Row) -> Void) -> [UInt8] {
        document(512 + 700 * p.rows.count) { w in
            w.beginObject()
            w.key("as_of"); w.day(asOf)
            w.key("report_interval"); w.string(interval)
            writePage(&w, p) { w, r in
                w.beginObject()
                row(&w, r)
                w.endObject()
            }
            w.endObject()
        }
    }

    /// R1 `license`: seats, assigned users, users active in the last 30 days and their share.
    public func license(asOf: Day?) -> [UInt8] {
        let seats = client.info.licensedSeats
        let assigned = client.users.reduce(0) { $0 + ($1.isActive ? 1 : 0) }
        let active = asOf.map { activeCount(Self.window(30, endingOn: $0)) } ?? 0
        return document(160) { w in
            w.beginObject()
            w.key("licensed_seats"); w.int(seats)
            w.key("assigned_users"); w.int(assigned)
            w.key("active_users_30d"); w.int(active)
            w.key("utilization_pct"); w.tenths(seats.flatMap { $0 > 0 ? Derived.percentTenths(active, of: $0) : nil })
            w.key("as_of"); w.day(asOf)
            w.endObject()
        }
    }

    /// R2 `license/utilization`: per calendar month from `startMonth` through `asOf`'s, users
    /// active in it up to `asOf`. `startMonth` is the first day of a month, not after `asOf`'s.
    public func licenseUtilization(startMonth: Day, asOf: Day?) -> [UInt8] {
        let seats = client.info.licensedSeats
        return document(256 + 120 * 24) { w in
            w.beginObject()
            w.key("as_of"); w.day(asOf)
            w.key("data")
            w.beginArray()
            if let asOf {
                for (cal, _) in Granularity.monthly.buckets(DayRange(startMonth, asOf)) {
                    let active = activeCount(DayRange(cal.start, min(cal.end, asOf)))
                    w.beginObject()
                    w.key("month"); w.string(String(cal.start.description.dropLast(3)))
                    w.key("active_users"); w.int(active)
                    w.key("licensed_seats"); w.int(seats)
                    w.key("utilization_pct"); w.tenths(seats.flatMap { $0 > 0 ? Derived.percentTenths(active, of: $0) : nil })
                    w.key("complete"); w.bool(cal.end <= asOf)
                    w.endObject()
                }
            }
            w.endArray()
            w.endObject()
        }
    }
}
