import TallyStorage

/// What rows a query returns, one per …
public enum Dimension: Sendable, Hashable {
    case app, department, category, user
    /// … nothing: one row of totals (summary cards).
    case none
    /// … calendar bucket of the period (and of the comparison period).
    case time(Granularity)
}

/// Calendar buckets of a time series; weeks are ISO weeks, starting on Monday.
public enum Granularity: String, Sendable, CaseIterable {
    case daily, weekly, monthly, quarterly
}

/// Filters compose with AND; list filters match any listed id; ids that are unknown or belong
/// to another client match nothing (SPEC §2).
public struct Filters: Sendable, Hashable {
    public var approved: Bool?
    public var categoryIds: [UUID128]?
    public var vendorIds: [UUID128]?
    public var appIds: [UUID128]?
    /// Keeps the usage rows of users in any listed department, whatever the dimension.
    public var departmentIds: [UUID128]?
    /// Only apps whose catalog category is an AI category.
    public var aiOnly = false

    public init(approved: Bool? = nil, categoryIds: [UUID128]? = nil, vendorIds: [UUID128]? = nil,
                appIds: [UUID128]? = nil, departmentIds: [UUID128]? = nil, aiOnly: Bool = false) {
        self.approved = approved
        self.categoryIds = categoryIds
        self.vendorIds = vendorIds
        self.appIds = appIds
        self.departmentIds = departmentIds
        self.aiOnly = aiOnly
    }
}

/// The field rows are ordered by. Ties always break by id ascending.
public enum SortKey: String, Sendable, Hashable {
    case users, apps, activeDays, approvedUsers, unapprovedUsers, name, firstSeen
}

public enum SortOrder: String, Sendable, Hashable {
    case asc, desc
}

/// A sort value of a row, as keyset paging compares it.
public enum SortValue: Sendable, Hashable {
    case int(Int)
    /// Unicode lower case, compared by code point; `nil` sorts last ascending, first descending.
    case text([UInt32]?)
    case day(Day)

    /// Case-insensitive sort text of a name or email.
    public static func name(_ s: String?) -> SortValue {
        .text(s.map { $0.lowercased().unicodeScalars.map(\.value) })
    }
}

/// Where the previous page ended: the last row's sort value and id.
public struct PageKey: Sendable, Hashable {
    public var value: SortValue
    /// The row's id (zero for a row without one: the no-category row, totals).
    public var id: UUID128
    public init(value: SortValue, id: UUID128) {
        self.value = value
        self.id = id
    }
}

/// One query over one client.
public struct Query: Sendable, Hashable {
    public var client: UUID128
    public var period: DayRange
    public var comparison: DayRange?
    public var filters: Filters
    public var dimension: Dimension
    public var sort: SortKey
    public var order: SortOrder
    /// Keep only apps whose first activity in the client's whole history is in the period.
    public var firstSeenInPeriod = false
    /// Rows per page; `nil` returns every row.
    public var pageSize: Int?
    public var after: PageKey?

    public init(client: UUID128, period: DayRange, comparison: DayRange? = nil, filters: Filters = Filters(),
                dimension: Dimension, sort: SortKey = .users, order: SortOrder = .desc,
                firstSeenInPeriod: Bool = false, pageSize: Int? = nil, after: PageKey? = nil) {
        self.client = client
        self.period = period
        self.comparison = comparison
        self.filters = filters
        self.dimension = dimension
        self.sort = sort
        self.order = order
        self.firstSeenInPeriod = firstSeenInPeriod
        self.pageSize = pageSize
        self.after = after
    }
}

/// The aggregates of one row over one period. Which fields are filled depends on the dimension:
/// `users`/`apps` always; `userDays` for apps; `activeDays` for users; the approval splits for
/// departments and totals; `anyAppUsers` for totals.
public struct Metrics: Sendable, Hashable {
    /// Distinct users.
    public var users = 0
    /// Distinct apps.
    public var apps = 0
    /// Distinct days with activity (user rows).
    public var activeDays = 0
    /// Distinct (user, day) pairs (app rows; drives usage level).
    public var userDays = 0
    /// Distinct users of an approved / unapproved app.
    public var approvedUsers = 0
    public var unapprovedUsers = 0
    /// Distinct approved / unapproved apps.
    public var approvedApps = 0
    public var unapprovedApps = 0
    /// Distinct users of any app, ignoring app filters but not the department filter (totals).
    public var anyAppUsers = 0

    public init() {}

    public var isActive: Bool { users > 0 || apps > 0 }
}

/// What a row is about.
public enum RowKey: Sendable, Hashable {
    case app(UInt32)
    case department(UInt32)
    /// A catalog category index; `nil` for apps without a category.
    case category(Int32?)
    case user(UInt32)
    case total
    case bucket(DayRange)
}

/// One result row: the primary period's metrics and, when a comparison was requested and the
/// row had matching activity in it, the comparison period's.
public struct ResultRow: Sendable, Hashable {
    public var key: RowKey
    public var value: Metrics
    public var compare: Metrics?
    public init(key: RowKey, value: Metrics, compare: Metrics?) {
        self.key = key
        self.value = value
        self.compare = compare
    }
}

/// A time bucket: the calendar bucket clipped to the period, and whether it is complete.
public struct Bucket: Sendable, Hashable {
    public var range: DayRange
    /// False when the period cuts the bucket or its calendar end is after the newest activity date.
    public var complete: Bool
    public var value: Metrics
}

/// The answer to a ``Query``.
public struct QueryResult: Sendable {
    /// The requested page of rows, in order.
    public var rows: [ResultRow]
    /// Rows over all pages.
    public var totalCount: Int
    /// The key to pass as `after` for the next page, or `nil` on the last page.
    public var next: PageKey?
    /// Time series (``Dimension/time(_:)`` only).
    public var series: [Bucket] = []
    public var compareSeries: [Bucket]?
}
