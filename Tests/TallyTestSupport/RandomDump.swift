import TallyGenerate
import TallyStorage

/// The tests' seeded generator: the generator module's SplitMix64, so every random test is
/// reproducible from its seed.
public typealias SeededRandom = SplitMix64

extension SplitMix64 {
    public mutating func chance(_ p: Double) -> Bool { unit() < p }
}

/// Random dump contents for equivalence tests: several clients, AI and other categories,
/// apps without category or vendor, users in several or no departments, duplicate rows, dates
/// across a year boundary and a leap day, one client without usage.
public struct RandomDump {
    public struct Category { public var id: UUID128; public var name: String; public var isAI: Bool }
    public struct Vendor { public var id: UUID128; public var name: String }
    public struct CatalogApp {
        public var id: UUID128; public var name: String; public var logo: String?; public var type: String
        public var category: UUID128?; public var vendor: UUID128?
    }
    public struct Client { public var id: UUID128; public var name: String }
    public struct App {
        public var id: UUID128; public var client: UUID128; public var catalog: UUID128
        public var approved: Bool; public var favorite: Bool
    }
    public struct Department {
        public var id: UUID128; public var client: UUID128; public var name: String; public var description: String?
    }
    public struct User {
        public var id: UUID128; public var client: UUID128; public var email: String; public var displayName: String?
    }
    public struct Usage { public var client: UUID128; public var user: UUID128; public var app: UUID128; public var day: Day }

    public var categories: [Category] = []
    public var vendors: [Vendor] = []
    public var catalog: [CatalogApp] = []
    public var clients: [Client] = []
    public var apps: [App] = []
    public var departments: [Department] = []
    public var users: [User] = []
    public var memberships: [(user: UUID128, department: UUID128)] = []
    public var usage: [Usage] = []

    public static let firstDay = Day("2023-11-15")!
    public static let lastDay = Day("2025-03-20")!

    public init(seed: UInt64, clientCount: Int = 4, maxRowsPerClient: Int = 2500) {
        var r = SeededRandom(seed: seed)
        let names = ["Alpha", "beta", "Gamma", "delta", "Éclair", "zeta", "Omega", "alpha", "Ápp", "Zulu", "mike", "Mike"]
        func name(_ i: Int) -> String { names[i % names.count] + (r.chance(0.3) ? "" : " \(i % 5)") }
        for i in 0..<5 { categories.append(Category(id: r.uuid(), name: name(i), isAI: i < 2)) }
        for i in 0..<4 { vendors.append(Vendor(id: r.uuid(), name: name(i + 3))) }
        for i in 0..<30 {
            catalog.append(CatalogApp(id: r.uuid(), name: name(i), logo: r.chance(0.2) ? nil : "https://x/\(i).png",
                                      type: ["browser", "desktop", "mobile"][i % 3],
                                      category: r.chance(0.2) ? nil : categories.randomElement(using: &r)!.id,
                                      vendor: r.chance(0.25) ? nil : vendors.randomElement(using: &r)!.id))
        }
        for c in 0..<clientCount {
            let client = Client(id: r.uuid(), name: "Client \(c)")
            clients.append(client)
            let userCount = Int.random(in: 1...70, using: &r)
            let appCount = Int.random(in: 1...20, using: &r)
            // Client 1 has more than 64 departments: the engine's per-department bit masks stop
            // there, so its other path is exercised too.
            let deptCount = c == 1 ? 70 : Int.random(in: 0...6, using: &r)
            var cu: [UUID128] = [], ca: [UUID128] = [], cd: [UUID128] = []
            for i in 0..<userCount {
                let u = User(id: r.uuid(), client: client.id, email: "\(name(i).lowercased())\(i)@c\(c).example",
                             displayName: r.chance(0.2) ? nil : name(i))
                users.append(u)
                cu.append(u.id)
            }
            for _ in 0..<appCount {
                let a = App(id: r.uuid(), client: client.id, catalog: catalog.randomElement(using: &r)!.id,
                            approved: r.chance(0.6), favorite: r.chance(0.2))
                apps.append(a)
                ca.append(a.id)
            }
            for i in 0..<deptCount {
                let d = Department(id: r.uuid(), client: client.id, name: name(i + 1),
                                   description: r.chance(0.3) ? nil : "Dept, \"\(i)\"")
                departments.append(d)
                cd.append(d.id)
            }
            if !cd.isEmpty {
                for u in cu {
                    let k = [0, 0, 1, 1, 1, 2, 3].randomElement(using: &r)!
                    for d in cd.shuffled(using: &r).prefix(k) { memberships.append((u, d)) }
                }
            }
            // The last client has no usage at all.
            if c == clientCount - 1 { continue }
            // Each client's history is a random window inside the global span.
            let span = Self.firstDay.distance(to: Self.lastDay)
            let start = Int.random(in: 0..<(span / 2), using: &r)
            let end = Int.random(in: (start + 1)...span, using: &r)
            let rows = Int.random(in: 0...maxRowsPerClient, using: &r)
            // Skew: some users and apps are much busier.
            for _ in 0..<rows {
                let u = cu[Int(Double(cu.count) * pow2(Double.random(in: 0..<1, using: &r)))]
                let a = ca[Int(Double(ca.count) * pow2(Double.random(in: 0..<1, using: &r)))]
                let d = Self.firstDay.adding(Int.random(in: start...end, using: &r))
                usage.append(Usage(client: client.id, user: u, app: a, day: d))
                if r.chance(0.03) { usage.append(usage.last!) }  // duplicate row
            }
        }
        usage.shuffle(using: &r)
    }

    func pow2(_ x: Double) -> Double { x * x }

    /// The dump as tables, ids in mixed case where SPEC §1 allows it.
    public func tables(upperCaseUsageIds: Bool = true) -> [CSVTable] {
        func s(_ u: UUID128) -> String { u.description }
        func b(_ v: Bool, _ i: Int) -> String { [v ? "true" : "false", v ? "t" : "f", v ? "1" : "0", v ? "TRUE" : "False"][i % 4] }
        return [
            CSVTable(name: "catalog_categories", header: ["id", "name", "is_ai"],
                     rows: categories.enumerated().map { i, c in [s(c.id), c.name, b(c.isAI, i)] }),
            CSVTable(name: "catalog_vendors", header: ["name", "id"], rows: vendors.map { [$0.name, s($0.id)] }),
            CSVTable(name: "catalog_applications", header: ["id", "canonical_name", "logo", "type", "category_id", "vendor_id"],
                     rows: catalog.map { [s($0.id), $0.name, $0.logo, $0.type, $0.category.map(s), $0.vendor.map(s)] }),
            CSVTable(name: "clients", header: ["id", "name", "timezone", "licensed_seats"],
                     rows: clients.map { [s($0.id), $0.name, nil, "100"] }),
            CSVTable(name: "apps", header: ["id", "client_id", "catalog_application_id", "is_approved", "is_favorite"],
                     rows: apps.enumerated().map { i, a in [s(a.id), s(a.client), s(a.catalog), b(a.approved, i), b(a.favorite, i + 1)] }),
            CSVTable(name: "departments", header: ["id", "client_id", "name", "description"],
                     rows: departments.map { [s($0.id), s($0.client), $0.name, $0.description] }),
            CSVTable(name: "users", header: ["id", "client_id", "email", "display_name", "is_active", "role", "created_at"],
                     rows: users.enumerated().map { i, u in
                         [s(u.id), s(u.client), u.email, u.displayName, b(i % 7 != 0, i), nil, "2024-01-02 10:11:12.5+00"] }),
            CSVTable(name: "user_departments", header: ["user_id", "department_id"],
                     rows: memberships.map { [s($0.user), s($0.department)] }),
            CSVTable(name: "app_usage_reports", header: ["id", "activity_date", "application_id", "user_id", "client_id"],
                     rows: usage.enumerated().map { i, x in
                         [String(i), x.day.description, s(x.app),
                          upperCaseUsageIds && i % 3 == 0 ? s(x.user).uppercased() : s(x.user), s(x.client)] }),
        ]
    }
}
