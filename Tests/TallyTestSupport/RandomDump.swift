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
public struct RandomDump: Sendable {
    public struct Category: Sendable {
        public var id: UUID128; public var name: String; public var isAI: Bool
        public init(id: UUID128, name: String, isAI: Bool) {
            self.id = id
            self.name = name
            self.isAI = isAI
        }
    }
    public struct Vendor: Sendable {
        public var id: UUID128; public var name: String
        public init(id: UUID128, name: String) {
            self.id = id
            self.name = name
        }
    }
    public struct CatalogApp: Sendable {
        public var id: UUID128; public var name: String; public var logo: String?; public var type: String
        public var category: UUID128?; public var vendor: UUID128?
        public init(id: UUID128, name: String, logo: String?, type: String, category: UUID128?, vendor: UUID128?) {
            self.id = id
            self.name = name
            self.logo = logo
            self.type = type
            self.category = category
            self.vendor = vendor
        }
    }
    public struct Client: Sendable {
        public var id: UUID128; public var name: String
        /// `clients.licensed_seats`: nil, 0 or a positive count.
        public var licensedSeats: Int?
        public init(id: UUID128, name: String, licensedSeats: Int? = 100) {
            self.id = id
            self.name = name
            self.licensedSeats = licensedSeats
        }
    }
    public struct App: Sendable {
        public var id: UUID128; public var client: UUID128; public var catalog: UUID128
        public var approved: Bool; public var favorite: Bool
        public init(id: UUID128, client: UUID128, catalog: UUID128, approved: Bool, favorite: Bool) {
            self.id = id
            self.client = client
            self.catalog = catalog
            self.approved = approved
            self.favorite = favorite
        }
    }
    public struct Department: Sendable {
        public var id: UUID128; public var client: UUID128; public var name: String; public var description: String?
        public init(id: UUID128, client: UUID128, name: String, description: String?) {
            self.id = id
            self.client = client
            self.name = name
            self.description = description
        }
    }
    public struct User: Sendable {
        public var id: UUID128; public var client: UUID128; public var email: String; public var displayName: String?
        public var isActive: Bool
        /// `users.role`, compared exactly by the API ("admin" and "Admin" differ).
        public var role: String?
        /// `users.created_at` as raw text, in one of the forms the loader accepts.
        public var createdAt: String?
        public init(id: UUID128, client: UUID128, email: String, displayName: String?, isActive: Bool = true,
                    role: String? = nil, createdAt: String? = nil) {
            self.id = id
            self.client = client
            self.email = email
            self.displayName = displayName
            self.isActive = isActive
            self.role = role
            self.createdAt = createdAt
        }
    }
    public struct Usage: Sendable {
        public var client: UUID128; public var user: UUID128; public var app: UUID128; public var day: Day
        public init(client: UUID128, user: UUID128, app: UUID128, day: Day) {
            self.client = client
            self.user = user
            self.app = app
            self.day = day
        }
    }

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

    /// An empty dump, to fill by hand.
    public init() {}

    public init(seed: UInt64, clientCount: Int = 4, maxRowsPerClient: Int = 2500) {
        var r = SeededRandom(seed: seed)
        var windows: [(client: Int, start: Int, end: Int)] = []
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
            // Client 1 has more than 128 departments (department masks of three words) and client
            // 3 more than `ClientStore.maxMaskDepartments` (512: no masks, the per-user path).
            let deptCount = c == 1 ? 130 : c == 3 ? 515 : Int.random(in: 0...6, using: &r)
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
            windows.append((c, start, end))
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
        addDirectoryFields(seed: seed, windows: windows)
    }

    /// The fields the directory endpoints (SPEC §3b, §3c) read, and usage with gaps, drawn from a
    /// second generator so that everything drawn above stays as it was.
    mutating func addDirectoryFields(seed: UInt64, windows: [(client: Int, start: Int, end: Int)]) {
        var r2 = SeededRandom(seed: seed &+ 0x7F4A_7C15)
        let roles: [String?] = ["admin", "member", "member", "Admin", nil, nil, "viewer", "Member"]
        for i in users.indices {
            users[i].isActive = i % 7 != 0
            users[i].role = roles[Int.random(in: 0..<roles.count, using: &r2)]
            users[i].createdAt = r2.chance(0.15) ? nil : Self.randomTimestamp(&r2)
        }
        for i in clients.indices {
            // Client 0 keeps 100 seats (a loader test reads it).
            guard i > 0 else { clients[i].licensedSeats = 100; continue }
            switch Int.random(in: 0..<5, using: &r2) {
            case 0: clients[i].licensedSeats = nil
            case 1: clients[i].licensedSeats = 0
            case 2: clients[i].licensedSeats = Int.random(in: 1...10, using: &r2)
            default: clients[i].licensedSeats = Int.random(in: 11...500, using: &r2)
            }
        }
        // Gaps: a few lone days for some users inside their client's window (churn and
        // re-engagement candidates near any as_of), and for some clients a short burst after a
        // silence past the window's end (client churn and re-engagement).
        let span = Self.firstDay.distance(to: Self.lastDay)
        for w in windows {
            let client = clients[w.client].id
            let cu = users.filter { $0.client == client }.map(\.id)
            let ca = apps.filter { $0.client == client }.map(\.id)
            guard !cu.isEmpty, !ca.isEmpty else { continue }
            for u in cu where r2.chance(0.4) {
                for _ in 0..<Int.random(in: 1...4, using: &r2) {
                    let d = Self.firstDay.adding(Int.random(in: w.start...w.end, using: &r2))
                    usage.append(Usage(client: client, user: u, app: ca.randomElement(using: &r2)!, day: d))
                }
            }
            if r2.chance(0.5) {
                let gap = Int.random(in: 8...70, using: &r2)
                let burst = w.end + gap
                if burst + 3 <= span {
                    for _ in 0..<Int.random(in: 1...6, using: &r2) {
                        let d = Self.firstDay.adding(burst + Int.random(in: 0...3, using: &r2))
                        usage.append(Usage(client: client, user: cu.randomElement(using: &r2)!,
                                           app: ca.randomElement(using: &r2)!, day: d))
                    }
                }
            }
        }
        usage.shuffle(using: &r2)
    }

    /// A `created_at` text in one of the forms the loader accepts (SPEC §1): date only,
    /// PostgreSQL's `YYYY-MM-DD HH:MM:SS[.f]±HH`, ISO 8601 with `Z`, `±HH:MM` or `±HHMM`, or no
    /// offset; fractions of 1 to 9 digits (so that rounding to the microsecond matters, carries
    /// included), times near midnight so that offsets move the UTC date.
    public static func randomTimestamp(_ r: inout SeededRandom) -> String {
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        let day = Day("2023-06-01")!.adding(Int.random(in: 0...700, using: &r))
        if r.chance(0.12) { return day.description }
        let hour = r.chance(0.3) ? [0, 1, 22, 23].randomElement(using: &r)! : Int.random(in: 0...23, using: &r)
        let minute = r.chance(0.2) ? 59 : Int.random(in: 0...59, using: &r)
        let second = r.chance(0.2) ? 59 : Int.random(in: 0...59, using: &r)
        var fraction = ""
        switch Int.random(in: 0..<8, using: &r) {
        case 0, 1: break
        case 2: fraction = "." + String(repeating: "9", count: Int.random(in: 7...9, using: &r))  // carries
        case 3: fraction = ".5"
        case 4: fraction = "." + pad(Int.random(in: 0...999, using: &r), 3) + "500"  // trailing zeros
        case 5: fraction = "." + pad(Int.random(in: 0..<1_000_000, using: &r), 6) + "5"  // a half: rounds up
        default:
            let n = Int.random(in: 1...9, using: &r)
            fraction = "." + String((0..<n).map { _ in Character(String(Int.random(in: 0...9, using: &r))) })
        }
        let time = "\(pad(hour, 2)):\(pad(minute, 2))"
        let offsetHours = [0, 1, 5, 8, 11, 14].randomElement(using: &r)!
        let sign = r.chance(0.5) ? "+" : "-"
        switch Int.random(in: 0..<7, using: &r) {
        case 0: return "\(day) \(time):\(pad(second, 2))\(fraction)\(sign)\(pad(offsetHours, 2))"
        case 1: return "\(day) \(time):\(pad(second, 2))\(fraction)+00"
        case 2: return "\(day)T\(time):\(pad(second, 2))\(fraction)Z"
        case 3: return "\(day)T\(time):\(pad(second, 2))\(fraction)\(sign)05:30"
        case 4: return "\(day)T\(time):\(pad(second, 2))\(fraction)\(sign)\(pad(offsetHours, 2))45"
        case 5: return "\(day) \(time):\(pad(second, 2))\(fraction)"
        default: return "\(day)T\(time)" + (r.chance(0.5) ? "Z" : "-08")
        }
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
                     rows: clients.map { [s($0.id), $0.name, nil, $0.licensedSeats.map(String.init)] }),
            CSVTable(name: "apps", header: ["id", "client_id", "catalog_application_id", "is_approved", "is_favorite"],
                     rows: apps.enumerated().map { i, a in [s(a.id), s(a.client), s(a.catalog), b(a.approved, i), b(a.favorite, i + 1)] }),
            CSVTable(name: "departments", header: ["id", "client_id", "name", "description"],
                     rows: departments.map { [s($0.id), s($0.client), $0.name, $0.description] }),
            CSVTable(name: "users", header: ["id", "client_id", "email", "display_name", "is_active", "role", "created_at"],
                     rows: users.enumerated().map { i, u in
                         [s(u.id), s(u.client), u.email, u.displayName, b(u.isActive, i), u.role, u.createdAt] }),
            CSVTable(name: "user_departments", header: ["user_id", "department_id"],
                     rows: memberships.map { [s($0.user), s($0.department)] }),
            CSVTable(name: "app_usage_reports", header: ["id", "activity_date", "application_id", "user_id", "client_id"],
                     rows: usage.enumerated().map { i, x in
                         [String(i), x.day.description, s(x.app),
                          upperCaseUsageIds && i % 3 == 0 ? s(x.user).uppercased() : s(x.user), s(x.client)] }),
        ]
    }
}
