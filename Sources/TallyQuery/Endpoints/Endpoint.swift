import TallyStorage

/// The analytics endpoints A–J of SPEC §3: which query each runs and how its rows read.
/// Parsing HTTP parameters is the API layer's; this is everything behind it.
public enum Endpoint: String, Sendable, CaseIterable {
    /// A `utilization`
    case utilization
    /// B `utilization/departments`
    case departments
    /// C `utilization/categories`
    case categories
    /// D `utilization/users`
    case users
    /// E `utilization/summary`
    case summary
    /// F `ai/users` (deprecated)
    case aiUsers
    /// G `ai/users/summary`
    case aiSummary
    /// H `ai/departments`
    case aiDepartments
    /// I `ai/new`
    case aiNew
    /// J `utilization/trend`
    case trend

    /// Path under `/v2/clients/{client_id}/analytics/apps/`.
    public var path: String {
        switch self {
        case .utilization: return "utilization"
        case .departments: return "utilization/departments"
        case .categories: return "utilization/categories"
        case .users: return "utilization/users"
        case .summary: return "utilization/summary"
        case .aiUsers: return "ai/users"
        case .aiSummary: return "ai/users/summary"
        case .aiDepartments: return "ai/departments"
        case .aiNew: return "ai/new"
        case .trend: return "utilization/trend"
        }
    }

    /// `sort_by` values, the default first.
    public var sortFields: [(name: String, key: SortKey)] {
        switch self {
        case .utilization: return [("unique_users", .users), ("canonical_name", .name)]
        case .departments, .categories: return [("user_count", .users), ("app_count", .apps), ("name", .name)]
        case .users: return [("app_count", .apps), ("active_days", .activeDays), ("email", .name)]
        case .aiUsers: return [("user_count", .users), ("canonical_name", .name)]
        case .aiDepartments:
            return [("user_count", .users), ("approved_user_count", .approvedUsers),
                    ("unapproved_user_count", .unapprovedUsers), ("name", .name)]
        case .aiNew: return [("first_seen_date", .firstSeen), ("unique_users", .users), ("canonical_name", .name)]
        case .summary, .aiSummary, .trend: return []
        }
    }

    public enum FilterName: String, Sendable, CaseIterable {
        case isApproved = "is_approved", categoryIds = "category_ids", vendorIds = "vendor_ids"
        case appIds = "app_ids", departmentIds = "department_ids"
    }

    /// Filters the endpoint takes (SPEC §3).
    public var filters: Set<FilterName> {
        switch self {
        case .utilization, .users, .summary: return [.isApproved, .categoryIds, .vendorIds, .departmentIds]
        case .departments: return [.isApproved, .categoryIds, .vendorIds]
        case .categories: return [.isApproved, .vendorIds, .departmentIds]
        case .aiUsers, .aiDepartments: return []
        case .aiSummary: return [.departmentIds]
        case .aiNew: return [.isApproved]
        case .trend: return [.isApproved, .categoryIds, .vendorIds, .departmentIds, .appIds]
        }
    }

    /// Whether `granularity` is required (all but the deprecated endpoint).
    public var requiresGranularity: Bool { self != .aiUsers }
    public var isList: Bool { !sortFields.isEmpty }
    /// Whether a comparison period is accepted.
    public var takesComparison: Bool { self != .aiNew }

    var dimension: Dimension {
        switch self {
        case .utilization, .aiUsers, .aiNew: return .app
        case .departments, .aiDepartments: return .department
        case .categories: return .category
        case .users: return .user
        case .summary, .aiSummary: return .none
        case .trend: return .time(.monthly)
        }
    }

    var isAI: Bool { self == .aiUsers || self == .aiSummary || self == .aiDepartments || self == .aiNew }
}

/// The parameters of one endpoint call, already validated.
public struct EndpointRequest: Sendable {
    public var client: UUID128
    public var period: DayRange
    public var comparison: DayRange?
    public var granularity: Granularity?
    public var filters: Filters
    /// A `sort_by` value of the endpoint, or `nil` for its default.
    public var sortBy: String?
    public var sortOrder: SortOrder?
    public var pageSize: Int
    public var after: PageKey?

    public init(client: UUID128, period: DayRange, comparison: DayRange? = nil, granularity: Granularity? = nil,
                filters: Filters = Filters(), sortBy: String? = nil, sortOrder: SortOrder? = nil,
                pageSize: Int = 50, after: PageKey? = nil) {
        self.client = client
        self.period = period
        self.comparison = comparison
        self.granularity = granularity
        self.filters = filters
        self.sortBy = sortBy
        self.sortOrder = sortOrder
        self.pageSize = pageSize
        self.after = after
    }
}

extension Endpoint {
    /// The query this endpoint runs for `r`. `sortBy` must be one of ``sortFields`` (or `nil`).
    public func query(_ r: EndpointRequest) -> Query {
        var f = r.filters
        if isAI { f.aiOnly = true }
        let sortField = sortFields.first { $0.name == r.sortBy } ?? sortFields.first
        let key = sortField?.key ?? .users
        var dim = dimension
        if self == .trend { dim = .time(r.granularity ?? .monthly) }
        return Query(client: r.client, period: r.period, comparison: takesComparison ? r.comparison : nil,
                     filters: f, dimension: dim, sort: key, order: r.sortOrder ?? (key == .name ? .asc : .desc),
                     firstSeenInPeriod: self == .aiNew, pageSize: isList ? r.pageSize : nil, after: r.after)
    }
}
