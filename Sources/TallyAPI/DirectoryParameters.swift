import TallyQuery
import TallyStorage

/// The query parameters of a directory or report route (SPEC §3b, §3c), read one rule at a
/// time: every refusal is a 400 naming the parameter. Parameters the route does not document
/// are ignored, and are not part of its cursors' fingerprint.
struct RouteParameters {
    let route: Route
    let values: [String: String]

    init(_ route: Route, _ query: [(String, String)]) throws(APIError) {
        self.route = route
        var v: [String: String] = [:]
        for (k, x) in query {
            if v[k] != nil { throw .invalid(k, "\(k) must be given once") }
            v[k] = x
        }
        values = v
    }

    subscript(_ name: String) -> String? { values[name] }

    func date(_ name: String) throws(APIError) -> Day? {
        guard let s = values[name] else { return nil }
        guard let d = Day(s) else { throw .invalid(name, "\(name) must be a date in YYYY-MM-DD form") }
        return d
    }

    /// `as_of`, or the default when it is not given.
    func asOf(default d: Day?) throws(APIError) -> Day? { try date("as_of") ?? d }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let s = values[name] else { return nil }
        switch s {
        case "true": return true
        case "false": return false
        default: throw .invalid(name, "\(name) must be true or false")
        }
    }

    func uuid(_ name: String) throws(APIError) -> UUID128? {
        guard let s = values[name] else { return nil }
        guard let u = UUID128(s) else { throw .invalid(name, "\(name) must be a UUID") }
        return u
    }

    /// One of `allowed`, exactly as listed.
    func choice(_ name: String, _ allowed: [String], required: Bool) throws(APIError) -> String? {
        guard let s = values[name] else {
            if required { throw .invalid(name, "\(name) is required (\(allowed.joined(separator: ", ")))") }
            return nil
        }
        guard allowed.contains(s) else { throw .invalid(name, "\(name) must be one of \(allowed.joined(separator: ", "))") }
        return s
    }

    /// A decimal integer within `range`.
    func int(_ name: String, _ range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let s = values[name] else { return nil }
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), s.utf8.count <= 9, let n = Int(s), range.contains(n) else {
            throw .invalid(name, "\(name) must be a decimal integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    /// A period given by two dates, both or neither, start ≤ end, at most 366 days.
    func period(_ startName: String, _ endName: String, required: Bool) throws(APIError) -> DayRange? {
        let s = try date(startName), e = try date(endName)
        switch (s, e) {
        case (nil, nil):
            if required { throw .invalid(startName, "\(startName) is required") }
            return nil
        case (nil, _): throw .invalid(startName, "\(startName) must be given with \(endName)")
        case (_, nil): throw .invalid(endName, "\(endName) must be given with \(startName)")
        case (let s?, let e?):
            guard s <= e else { throw .invalid(endName, "\(endName) must not be before \(startName)") }
            let days = s.distance(to: e) + 1
            guard days <= AnalyticsParameters.maxDays else {
                throw .invalid(endName, "\(startName)…\(endName) spans \(days) days; at most \(AnalyticsParameters.maxDays) are allowed")
            }
            return DayRange(s, e)
        }
    }

    /// The activity filters (`app_ids`, `category_ids`, `is_approved`) with A–J's meaning.
    func activityFilters() throws(APIError) -> Filters {
        var f = Filters()
        if let v = values["is_approved"] {
            switch v.lowercased() {
            case "true", "1": f.approved = true
            case "false", "0": f.approved = false
            default: throw .invalid("is_approved", "is_approved must be true or false")
            }
        }
        func ids(_ name: String) throws(APIError) -> [UUID128]? {
            guard let v = values[name] else { return nil }
            var out: [UUID128] = []
            for part in v.split(separator: ",", omittingEmptySubsequences: false) {
                guard let u = UUID128(String(part)) else { throw .invalid(name, "\(name) must be a comma-separated list of UUIDs") }
                out.append(u)
            }
            return out
        }
        f.appIds = try ids("app_ids")
        f.categoryIds = try ids("category_ids")
        return f
    }

    /// Sorting and paging of a list route: `sort_by` (one of the route's), `sort_order`,
    /// `page_size` and a cursor bound to every other documented parameter.
    func page(client: UUID128?, sorts: Bool = true) throws(APIError) -> DirectoryPage {
        var page = DirectoryPage()
        if sorts {
            page.sortBy = try choice("sort_by", route.sortBy, required: false)
            if let o = values["sort_order"] {
                guard let parsed = SortOrder(rawValue: o) else { throw .invalid("sort_order", "sort_order must be asc or desc") }
                page.order = parsed
            }
        }
        if let p = values["page_size"] {
            guard let n = Int(p), (1...AnalyticsParameters.maxPageSize).contains(n) else {
                throw .invalid("page_size", "page_size must be an integer from 1 to \(AnalyticsParameters.maxPageSize)")
            }
            page.size = n
        }
        if let c = values["cursor"], !c.isEmpty {
            guard let (key, fp) = Cursor.decode(c) else { throw .invalid("cursor", "cursor is not a cursor this server issued") }
            guard fp == fingerprint(client: client, sorts: sorts) else {
                throw .invalid("cursor", "cursor belongs to a request with other parameters; start again without it")
            }
            page.after = key
        }
        return page
    }

    /// Binds a cursor to the route, the client and every documented parameter but the page's
    /// size and the cursor (sort parameters only where the route sorts).
    func fingerprint(client: UUID128?, sorts: Bool) -> UInt64 {
        var h = FNV1a()
        h.add(route.name)
        if let client { h.add(client) }
        for p in route.parameters where p.name != "page_size" && p.name != "cursor"
            && (sorts || (p.name != "sort_by" && p.name != "sort_order")) {
            h.add(p.name)
            h.add(values[p.name] ?? "\u{0}")
        }
        return h.hash
    }
}
