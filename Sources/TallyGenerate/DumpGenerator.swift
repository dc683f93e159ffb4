import Foundation
import TallyStorage

/// Realistic multi-client dumps for benchmarks (`tally generate`): one shared catalog, many
/// clients of skewed sizes, each with Zipf-like app popularity, personal app portfolios used on
/// most weekdays and few weekend days, users joining and leaving (those who left are inactive),
/// departments (some users in two, some in none), one AI category, apps without a category or a
/// vendor. Usage goes to `.csv.lz4` part files (``DumpExport``).
public enum DumpGenerator {
    public enum Scale: String, CaseIterable, Sendable {
        /// About 1 M usage rows.
        case s = "S"
        /// About 10 M.
        case m = "M"
        /// About 50 M, including one client of 20,000 users × 600 apps over 400 days.
        case l = "L"
    }

    /// One client to generate.
    public struct ClientPlan: Sendable, Equatable {
        public var users: Int
        public var apps: Int
        public var days: Int
        public var departments: Int
    }

    /// The newest activity date of every generated client.
    public static let lastDay = Day("2026-03-31")!

    /// The clients of a scale, largest first. Sizes fall off like a Zipf law over the clients'
    /// ranks, so there is one large client, a few medium ones and a long tail of small ones.
    public static func plan(_ scale: Scale, seed: UInt64) -> [ClientPlan] {
        var r = SplitMix64(seed: seed ^ 0x5CA1E)
        let (count, largestUsers): (Int, Int)
        switch scale {
        case .s: (count, largestUsers) = (24, 150)
        case .m: (count, largestUsers) = (120, 900)
        case .l: (count, largestUsers) = (60, 20_000)
        }
        var plans: [ClientPlan] = []
        for k in 0..<count {
            // L: the 20,000-user client, then a tail like M's but smaller.
            let base = scale == .l && k > 0 ? 600.0 / Double(k) : Double(largestUsers) / Double(k + 1)
            var users = max(5, Int(base))
            if k > 0 { users = max(5, Int(Double(users) * (0.7 + 0.6 * r.unit()))) }
            let apps = k == 0 && scale == .l ? 600 : min(600, 30 + users / 3 + Int(r.next() % 40))
            // The largest client of M has two years, so a 366-day period has a full comparison.
            let days = k == 0 ? (scale == .m ? 800 : 400) : 120 + Int(r.next() % 281)
            let departments = min(60, 2 + users / 40 + Int(r.next() % 5))
            plans.append(ClientPlan(users: users, apps: apps, days: days, departments: departments))
        }
        return plans
    }

    /// The shared catalog: 40 categories (the first one AI), 300 vendors, 3,000 applications,
    /// 10% of them without a category and 15% without a vendor.
    public static func catalog(_ r: inout SplitMix64) -> Catalog {
        let categories = (0..<40).map {
            CategoryInfo(id: r.uuid(), name: $0 == 0 ? "AI Assistants" : "Category \($0)", isAI: $0 == 0)
        }
        let vendors = (0..<300).map { VendorInfo(id: r.uuid(), name: "Vendor \($0)") }
        var applications: [CatalogAppInfo] = []
        for i in 0..<3_000 {
            let cat: Int32? = r.unit() < 0.1 ? nil : Int32(i % 17 == 0 ? 0 : 1 + Int(r.next() % 39))
            let ven: Int32? = r.unit() < 0.15 ? nil : Int32(r.next() % 300)
            applications.append(CatalogAppInfo(id: r.uuid(), canonicalName: "App \(i)", logo: i % 5 == 0 ? nil : "https://logos.example.com/\(i).png",
                                               type: ["browser", "desktop", "mobile"][i % 3], category: cat, vendor: ven))
        }
        return Catalog(categories: categories, vendors: vendors, applications: applications)
    }

    /// One client: its apps drawn from the catalog (popular ones more often), users with
    /// portfolios of the client's apps, usage day by day.
    public static func client(_ plan: ClientPlan, index: Int, catalog: Catalog, _ r: inout SplitMix64) -> ClientStoreBuilder {
        var b = ClientStoreBuilder(info: ClientInfo(id: r.uuid(), name: "Client \(index)", timezone: "UTC",
                                                    licensedSeats: plan.users + Int(r.next() % UInt64(plan.users / 5 + 2))))
        let catalogPopularity = Zipf(count: catalog.applications.count, exponent: 0.7)
        var chosen = Set<Int>()
        while chosen.count < min(plan.apps, catalog.applications.count) { chosen.insert(catalogPopularity.pick(&r)) }
        for c in chosen.sorted() {
            let a = catalog.applications[c]
            _ = b.addApp(AppInfo(id: r.uuid(), catalogIndex: Int32(c), isApproved: r.unit() < 0.7, isFavorite: r.unit() < 0.1,
                                 category: a.category, vendor: a.vendor,
                                 isAI: a.category.map { catalog.categories[Int($0)].isAI } ?? false))
        }
        for d in 0..<plan.departments {
            _ = b.addDepartment(DepartmentInfo(id: r.uuid(), name: "Department \(d)", description: d % 3 == 0 ? nil : "Team \(d)"))
        }
        let firstDay = lastDay.adding(-(plan.days - 1))
        let popularity = Zipf(count: b.apps.count)
        var portfolio: [(app: UInt32, p: Double)] = []
        for u in 0..<plan.users {
            // 20% joined during the period, 10% left it.
            let start = r.unit() < 0.2 ? Int(r.next() % UInt64(plan.days)) : 0
            let left = r.unit() < 0.1
            let end = left ? start + Int(r.next() % UInt64(max(1, plan.days - start))) : plan.days - 1
            let dense = b.addUser(UserInfo(id: r.uuid(), email: "user\(u)@client\(index).example.com",
                                           displayName: r.unit() < 0.05 ? nil : "User \(u)", isActive: !left,
                                           role: ["member", "admin", "viewer"][Int(r.next() % 3)],
                                           createdAt: firstDay.adding(start).description + "T09:00:00Z"))!
            let x = r.unit()
            if x >= 0.05 { b.addMembership(user: dense, department: UInt32(r.next() % UInt64(plan.departments))) }
            if x >= 0.9 { b.addMembership(user: dense, department: UInt32(r.next() % UInt64(plan.departments))) }
            portfolio.removeAll(keepingCapacity: true)
            let size = min(b.apps.count, max(2, 10 + Int(r.next() % 20)))
            while portfolio.count < size {
                let a = UInt32(popularity.pick(&r))
                if portfolio.contains(where: { $0.app == a }) { continue }
                let p = portfolio.count < 3 ? 0.85 + 0.1 * r.unit() : 0.1 + 0.7 * r.unit()
                portfolio.append((a, p))
            }
            for d in start...end {
                let day = firstDay.adding(d)
                let weekend = day.isoWeekday >= 6
                for (a, p) in portfolio where r.unit() < (weekend ? p * 0.12 : p) {
                    b.addUsage(user: dense, app: a, day: day)
                }
            }
        }
        return b
    }

    /// What was written.
    public struct Summary: Sendable {
        public var clients: Int
        public var usageRows: Int
        public var largestClientRows: Int
        public var medianClientRows: Int
    }

    /// Generates a scale and writes it as a dump folder (replacing `folder`).
    public static func write(_ scale: Scale, seed: UInt64, to folder: String) throws -> Summary {
        var r = SplitMix64(seed: seed)
        let catalog = catalog(&r)
        let plans = plan(scale, seed: seed)
        var clients: [ClientStoreBuilder] = []
        for (i, p) in plans.enumerated() { clients.append(client(p, index: i, catalog: catalog, &r)) }
        try DumpExport.write(catalog: catalog, clients: clients, to: folder)
        let rows = clients.map(\.usageRowCount).sorted()
        return Summary(clients: clients.count, usageRows: rows.reduce(0, +), largestClientRows: rows.last ?? 0,
                       medianClientRows: rows.isEmpty ? 0 : rows[rows.count / 2])
    }
}
