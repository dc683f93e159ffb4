import TallyQuery
import TallyStorage

/// Query parameters of an analytics endpoint, validated into an ``EndpointRequest`` (SPEC §3).
/// Unknown parameters, and filters the endpoint does not take, are ignored.
public struct AnalyticsParameters {
    public let endpoint: Endpoint
    public let request: EndpointRequest
    /// Binds cursors to everything that shapes the list except the page size and the cursor.
    public let fingerprint: UInt64

    /// The longest period (and comparison period), in days.
    public static let maxDays = 366
    public static let maxPageSize = 200
    public static let defaultPageSize = 50

    public init(endpoint: Endpoint, client: UUID128, query: [(String, String)]) throws(APIError) {
        self.endpoint = endpoint
        var values: [String: String] = [:]
        for (k, v) in query {
            if values[k] != nil { throw .invalid(k, "\(k) must be given once") }
            values[k] = v
        }
        // The fingerprint hashes the list's shape field by field (no text is built for it).
        var canonical = FNV1a()
        canonical.add(endpoint.path)
        canonical.add(client)

        var granularity: Granularity?
        if let g = values["granularity"] {
            guard let parsed = Granularity(rawValue: g) else {
                throw .invalid("granularity", "granularity must be one of daily, weekly, monthly, quarterly")
            }
            granularity = parsed
        } else if endpoint.requiresGranularity {
            throw .invalid("granularity", "granularity is required (daily, weekly, monthly or quarterly)")
        }
        canonical.add(granularity?.rawValue ?? "-")

        func date(_ name: String) throws(APIError) -> Day? {
            guard let s = values[name] else { return nil }
            guard let d = Day(s) else { throw .invalid(name, "\(name) must be a date in YYYY-MM-DD form") }
            return d
        }
        func range(_ startName: String, _ endName: String, required: Bool) throws(APIError) -> DayRange? {
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
        let period = try range("start_date", "end_date", required: true)!
        let comparison = endpoint.takesComparison ? try range("compare_start_date", "compare_end_date", required: false) : nil
        canonical.add(period)
        canonical.add(comparison)

        var filters = Filters()
        let allowed = endpoint.filters
        if allowed.contains(.isApproved), let v = values["is_approved"] {
            switch v.lowercased() {
            case "true", "1": filters.approved = true
            case "false", "0": filters.approved = false
            default: throw .invalid("is_approved", "is_approved must be true or false")
            }
        }
        func ids(_ f: Endpoint.FilterName) throws(APIError) -> [UUID128]? {
            guard allowed.contains(f), let v = values[f.rawValue] else { return nil }
            var out: [UUID128] = []
            for part in v.split(separator: ",", omittingEmptySubsequences: false) {
                guard let u = UUID128(String(part)) else {
                    throw .invalid(f.rawValue, "\(f.rawValue) must be a comma-separated list of UUIDs")
                }
                out.append(u)
            }
            return out
        }
        filters.categoryIds = try ids(.categoryIds)
        filters.vendorIds = try ids(.vendorIds)
        filters.appIds = try ids(.appIds)
        filters.departmentIds = try ids(.departmentIds)
        canonical.add(filters.approved.map { $0 ? "true" : "false" } ?? "-")
        for l in [filters.categoryIds, filters.vendorIds, filters.appIds, filters.departmentIds] {
            if let l {
                canonical.add(l.count)
                for id in l.sorted() { canonical.add(id) }
            } else {
                canonical.add(-1)
            }
        }

        var sortBy: String?, order: SortOrder?, pageSize = Self.defaultPageSize, after: PageKey?
        if endpoint.isList {
            if let s = values["sort_by"] {
                guard endpoint.sortFields.contains(where: { $0.name == s }) else {
                    throw .invalid("sort_by", "sort_by must be one of \(endpoint.sortFields.map(\.name).joined(separator: ", "))")
                }
                sortBy = s
            }
            if let o = values["sort_order"] {
                guard let parsed = SortOrder(rawValue: o) else { throw .invalid("sort_order", "sort_order must be asc or desc") }
                order = parsed
            }
            if let p = values["page_size"] {
                guard let n = Int(p), (1...Self.maxPageSize).contains(n) else {
                    throw .invalid("page_size", "page_size must be an integer from 1 to \(Self.maxPageSize)")
                }
                pageSize = n
            }
            canonical.add(sortBy ?? "-")
            canonical.add(order?.rawValue ?? "-")
        }
        fingerprint = canonical.hash
        // An empty cursor is the first page, as if none were given.
        if endpoint.isList, let c = values["cursor"], !c.isEmpty {
            guard let (key, fp) = Cursor.decode(c) else { throw .invalid("cursor", "cursor is not a cursor this server issued") }
            guard fp == fingerprint else {
                throw .invalid("cursor", "cursor belongs to a request with other parameters; start again without it")
            }
            after = key
        }
        request = EndpointRequest(client: client, period: period, comparison: comparison, granularity: granularity,
                                  filters: filters, sortBy: sortBy, sortOrder: order, pageSize: pageSize, after: after)
    }
}

/// FNV-1a over a list's parameters, field by field: strings end with a byte UTF-8 never has and
/// lists carry their length, so different parameters feed different bytes.
struct FNV1a {
    private(set) var hash: UInt64 = 0xCBF2_9CE4_8422_2325

    private mutating func byte(_ b: UInt8) {
        hash ^= UInt64(b)
        hash = hash &* 0x100_0000_01B3
    }

    private mutating func word(_ w: UInt64) { for k in 0..<8 { byte(UInt8(truncatingIfNeeded: w >> (8 * k))) } }

    mutating func add(_ s: String) {
        for b in s.utf8 { byte(b) }
        byte(0xFF)  // never in UTF-8
    }

    mutating func add(_ v: Int) { word(UInt64(bitPattern: Int64(v))) }
    mutating func add(_ u: UUID128) { word(u.high); word(u.low) }

    mutating func add(_ r: DayRange?) {
        if let r {
            add(Int(r.start.raw))
            add(Int(r.end.raw))
        } else {
            add(Int.min)
        }
    }
}
