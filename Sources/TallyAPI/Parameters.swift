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
    public static let maxDays = QueryValues.maxDays
    public static let maxPageSize = QueryValues.maxPageSize
    public static let defaultPageSize = 50

    public init(endpoint: Endpoint, client: UUID128, query: [(String, String)]) throws(APIError) {
        self.endpoint = endpoint
        let values = try QueryValues(query)
        // The fingerprint hashes the list's shape field by field (no text is built for it).
        var canonical = FNV1a()
        canonical.add(endpoint.path)
        canonical.add(client)

        let granularity = try values.granularity(required: endpoint.requiresGranularity)
        canonical.add(granularity?.rawValue ?? "-")

        let period = try values.period("start_date", "end_date", required: true)!
        let comparison = endpoint.takesComparison ? try values.period("compare_start_date", "compare_end_date", required: false) : nil
        canonical.add(period)
        canonical.add(comparison)

        var filters = Filters()
        let allowed = endpoint.filters
        if allowed.contains(.isApproved) { filters.approved = try values.approval() }
        func ids(_ f: Endpoint.FilterName) throws(APIError) -> [UUID128]? {
            allowed.contains(f) ? try values.ids(f.rawValue) : nil
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
            sortBy = try values.choice("sort_by", endpoint.sortFields.map(\.name), required: false)
            order = try values.sortOrder()
            pageSize = try values.pageSize() ?? pageSize
            canonical.add(sortBy ?? "-")
            canonical.add(order?.rawValue ?? "-")
        }
        fingerprint = canonical.hash
        // An empty cursor is the first page, as if none were given.
        if endpoint.isList, let c = values["cursor"], !c.isEmpty {
            guard let (key, fp, _) = Cursor.decode(c) else { throw .invalid("cursor", "cursor is not a cursor this server issued") }
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
