import Foundation
import TallyStorage

/// A seeded SplitMix64 generator: the same seed gives the same data everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in `0..<1`.
    @inline(__always) public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
    public mutating func uuid() -> UUID128 { UUID128(high: next(), low: next()) }
}

/// The shape of a generated client.
public struct SyntheticShape: Sendable {
    public var users = 20_000
    public var apps = 600
    public var days = 366
    public var departments = 24
    public var categories = 20
    public var firstDay = Day("2025-01-01")!
    /// Apps in a user's portfolio, on average.
    public var portfolio = 20
    public var seed: UInt64 = 42

    /// Department sizes: uniform (the benchmark client) or Zipf-like — a few large departments
    /// and many small ones, as in a large company (the enterprise shape).
    public var skewedDepartments = false

    public init(users: Int = 20_000, apps: Int = 600, days: Int = 366, seed: UInt64 = 42) {
        self.users = users
        self.apps = apps
        self.days = days
        self.seed = seed
    }

    /// The enterprise client of issue 16: 100,000 users × 2,000 apps × 366 days, 240 departments
    /// of Zipf-like sizes.
    public static var enterprise: SyntheticShape {
        var s = SyntheticShape(users: 100_000, apps: 2_000, days: 366)
        s.departments = 240
        s.skewedDepartments = true
        return s
    }

    /// `enterprise`, or `USERSxAPPSxDAYS` with an optional `xDEPARTMENTS` (uniform sizes), each
    /// from 1 to 10,000,000; `nil` for anything else.
    public static func parse(_ text: String) -> SyntheticShape? {
        if text == "enterprise" { return .enterprise }
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        let n = parts.compactMap { Int($0) }
        guard (3...4).contains(parts.count), n.count == parts.count, n.allSatisfy({ (1...10_000_000).contains($0) }) else { return nil }
        var s = SyntheticShape(users: n[0], apps: n[1], days: n[2])
        if n.count == 4 { s.departments = n[3] }
        return s
    }
}

/// Generates a realistic client in process: Zipf-like app popularity, personal app portfolios
/// used on most weekdays and few weekend days, users joining and leaving, departments (some
/// users in two, some in none), one AI category, apps without category or vendor.
public enum SyntheticClient {
    /// The catalog and a builder holding the client's entities and usage rows.
    public static func make(_ shape: SyntheticShape) -> (Catalog, ClientStoreBuilder) {
        var r = SplitMix64(seed: shape.seed)
        var categories: [CategoryInfo] = []
        for i in 0..<shape.categories {
            categories.append(CategoryInfo(id: r.uuid(), name: i == 0 ? "AI Assistants" : "Category \(i)", isAI: i == 0))
        }
        let vendors = (0..<50).map { VendorInfo(id: r.uuid(), name: "Vendor \($0)") }
        var applications: [CatalogAppInfo] = []
        for i in 0..<shape.apps {
            let cat: Int32? = r.unit() < 0.1 ? nil : Int32(i % 17 == 0 ? 0 : Int(r.next() % UInt64(shape.categories)))
            let ven: Int32? = r.unit() < 0.15 ? nil : Int32(r.next() % 50)
            applications.append(CatalogAppInfo(id: r.uuid(), canonicalName: "App \(i)", logo: nil,
                                               type: ["browser", "desktop", "mobile"][i % 3], category: cat, vendor: ven))
        }
        let catalog = Catalog(categories: categories, vendors: vendors, applications: applications)
        var b = ClientStoreBuilder(info: ClientInfo(id: r.uuid(), name: "Synthetic \(shape.users)", timezone: "UTC",
                                                    licensedSeats: shape.users))
        for (i, a) in applications.enumerated() {
            _ = b.addApp(AppInfo(id: r.uuid(), catalogIndex: Int32(i), isApproved: r.unit() < 0.7, isFavorite: r.unit() < 0.1,
                                 category: a.category, vendor: a.vendor,
                                 isAI: a.category.map { categories[Int($0)].isAI } ?? false))
        }
        for d in 0..<shape.departments {
            _ = b.addDepartment(DepartmentInfo(id: r.uuid(), name: "Department \(d)", description: nil))
        }
        let departmentSizes = Zipf(count: shape.departments)
        func pickDepartment(_ r: inout SplitMix64) -> UInt32 {
            UInt32(shape.skewedDepartments ? departmentSizes.pick(&r) : Int(r.next() % UInt64(shape.departments)))
        }
        for u in 0..<shape.users {
            let dense = b.addUser(UserInfo(id: r.uuid(), email: "user\(u)@example.com", displayName: "User \(u)",
                                           isActive: true, role: nil, createdAt: nil))!
            let x = r.unit()
            if x >= 0.05 { b.addMembership(user: dense, department: pickDepartment(&r)) }
            if x >= 0.9 { b.addMembership(user: dense, department: pickDepartment(&r)) }
        }
        // Zipf-like popularity: app rank k is chosen with weight 1/(k+1)^0.9.
        let popularity = Zipf(count: shape.apps)
        func pickApp(_ r: inout SplitMix64) -> UInt32 { UInt32(popularity.pick(&r)) }
        var portfolio: [(app: UInt32, p: Double)] = []
        for u in 0..<shape.users {
            portfolio.removeAll(keepingCapacity: true)
            // A portfolio cannot hold more apps than there are.
            let size = min(shape.apps, max(2, shape.portfolio / 2 + Int(r.next() % UInt64(shape.portfolio))))
            while portfolio.count < size {
                let a = pickApp(&r)
                if portfolio.contains(where: { $0.app == a }) { continue }
                // A few daily tools, many occasional ones.
                let p = portfolio.count < 3 ? 0.85 + 0.1 * r.unit() : 0.1 + 0.7 * r.unit()
                portfolio.append((a, p))
            }
            // 20% joined during the period, 10% left it.
            let start = r.unit() < 0.2 ? Int(r.next() % UInt64(shape.days)) : 0
            let end = r.unit() < 0.1 ? start + Int(r.next() % UInt64(max(1, shape.days - start))) : shape.days - 1
            guard start <= end else { continue }
            for d in start...end {
                let day = shape.firstDay.adding(d)
                let weekend = day.isoWeekday >= 6
                for (a, p) in portfolio where r.unit() < (weekend ? p * 0.12 : p) {
                    b.addUsage(user: UInt32(u), app: a, day: day)
                }
            }
        }
        return (catalog, b)
    }

}

/// Zipf-like choice among `count` ranks: rank k has weight 1/(k+1)^exponent.
public struct Zipf: Sendable {
    let cumulative: [Double]
    let total: Double

    public init(count: Int, exponent: Double = 0.9) {
        var c: [Double] = []
        c.reserveCapacity(count)
        var total = 0.0
        for k in 0..<count {
            total += 1 / pow(Double(k + 1), exponent)
            c.append(total)
        }
        cumulative = c
        self.total = total
    }

    /// A rank in `0..<count`.
    public func pick(_ r: inout SplitMix64) -> Int {
        let x = r.unit() * total
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
