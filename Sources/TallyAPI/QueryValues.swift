import TallyQuery
import TallyStorage

/// A request's query parameters by name, each given at most once, read one rule at a time:
/// every refusal is a 400 naming the parameter (SPEC §3, §3b, §3c). Every route reads its
/// parameters through these, so one rule has one wording. Parameters a route does not read are
/// ignored, and are not part of its cursors' fingerprint.
struct QueryValues {
    let values: [String: String]

    init(_ query: [(String, String)]) throws(APIError) {
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

    /// `granularity`: one of daily, weekly, monthly, quarterly.
    func granularity(required: Bool) throws(APIError) -> Granularity? {
        guard let g = values["granularity"] else {
            if required { throw .invalid("granularity", "granularity is required (daily, weekly, monthly or quarterly)") }
            return nil
        }
        guard let parsed = Granularity(rawValue: g) else {
            throw .invalid("granularity", "granularity must be one of daily, weekly, monthly, quarterly")
        }
        return parsed
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
            guard days <= Self.maxDays else {
                throw .invalid(endName, "\(startName)…\(endName) spans \(days) days; at most \(Self.maxDays) are allowed")
            }
            return DayRange(s, e)
        }
    }

    /// `is_approved` with A–J's meaning (`true`/`1`, `false`/`0`, any case).
    func approval() throws(APIError) -> Bool? {
        guard let v = values["is_approved"] else { return nil }
        switch v.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw .invalid("is_approved", "is_approved must be true or false")
        }
    }

    /// A comma-separated list of UUIDs (every item one).
    func ids(_ name: String) throws(APIError) -> [UUID128]? {
        guard let v = values[name] else { return nil }
        var out: [UUID128] = []
        for part in v.split(separator: ",", omittingEmptySubsequences: false) {
            guard let u = UUID128(String(part)) else { throw .invalid(name, "\(name) must be a comma-separated list of UUIDs") }
            out.append(u)
        }
        return out
    }

    /// The activity filters of §3b (`app_ids`, `category_ids`, `is_approved`) with A–J's meaning.
    func activityFilters() throws(APIError) -> Filters {
        Filters(approved: try approval(), categoryIds: try ids("category_ids"), appIds: try ids("app_ids"))
    }

    func sortOrder() throws(APIError) -> SortOrder? {
        guard let o = values["sort_order"] else { return nil }
        guard let parsed = SortOrder(rawValue: o) else { throw .invalid("sort_order", "sort_order must be asc or desc") }
        return parsed
    }

    func pageSize() throws(APIError) -> Int? {
        guard let p = values["page_size"] else { return nil }
        guard let n = Int(p), (1...Self.maxPageSize).contains(n) else {
            throw .invalid("page_size", "page_size must be an integer from 1 to \(Self.maxPageSize)")
        }
        return n
    }

    /// The longest period (and comparison period), in days; the largest page.
    static let maxDays = 366
    static let maxPageSize = 200

    /// Sorting and paging of a list route: `sort_by` (one of the route's, when it sorts),
    /// `sort_order`, `page_size` and a cursor bound to every other parameter the route reads.
    func page(_ route: Route, client: UUID128?) throws(APIError) -> DirectoryPage {
        var page = DirectoryPage()
        if !route.sortBy.isEmpty {
            page.sortBy = try choice("sort_by", route.sortBy, required: false)
            page.order = try sortOrder()
        }
        page.size = try pageSize() ?? page.size
        if let c = values["cursor"], !c.isEmpty {
            guard let (key, fp, _) = Cursor.decode(c) else { throw .invalid("cursor", "cursor is not a cursor this server issued") }
            guard fp == fingerprint(route, client: client) else {
                throw .invalid("cursor", "cursor belongs to a request with other parameters; start again without it")
            }
            page.after = key
        }
        return page
    }

    /// Binds a cursor to the route, the client and every parameter the route documents but the
    /// page's size and the cursor.
    func fingerprint(_ route: Route, client: UUID128?) -> UInt64 {
        var h = FNV1a()
        h.add(route.name)
        if let client { h.add(client) }
        for p in route.parameters where p.name != "page_size" && p.name != "cursor" {
            h.add(p.name)
            h.add(values[p.name] ?? "\u{0}")
        }
        return h.hash
    }
}
