import Foundation
import Testing
import TallyStorage
import TallyTestSupport

/// The directory reference (SPEC §3b, §3c) checked on a hand-built dump whose answers were
/// worked out by hand, so that the engine is compared with something itself checked.
@Suite struct DirectoryReferenceSelfTests {
    static func id(_ n: UInt64) -> UUID128 { UUID128(high: 0, low: n) }
    static let c1 = id(0x100), c2 = id(0x200), c3 = id(0x300)
    static let u1 = id(0x11), u2 = id(0x12), u3 = id(0x13), v1 = id(0x21), v2 = id(0x22)
    static let a1 = id(0x31), a2 = id(0x32), b1 = id(0x41)
    static let dA = id(0x51), dB = id(0x52), dG = id(0x53)
    static let ai = id(0x61), k1 = id(0x71), k2 = id(0x72)

    /// Client c1: u1 (Alpha, beta), u2 (beta), u3 (none); apps a1 (AI, approved), a2 (no
    /// category, unapproved). Client c2: v1, v2 on b1. Client c3: no usage. Newest day 2025-03-31.
    static let dump: RandomDump = {
        var d = RandomDump()
        d.categories = [.init(id: ai, name: "AI", isAI: true)]
        d.catalog = [.init(id: k1, name: "Zed", logo: nil, type: "browser", category: ai, vendor: nil),
                     .init(id: k2, name: "alpha", logo: "https://x/a.png", type: "desktop", category: nil, vendor: nil)]
        d.clients = [.init(id: c1, name: "Acme", licensedSeats: 7), .init(id: c2, name: "Beta Co", licensedSeats: nil),
                     .init(id: c3, name: "Idle", licensedSeats: 0)]
        d.apps = [.init(id: a1, client: c1, catalog: k1, approved: true, favorite: true),
                  .init(id: a2, client: c1, catalog: k2, approved: false, favorite: false),
                  .init(id: b1, client: c2, catalog: k1, approved: true, favorite: false)]
        d.departments = [.init(id: dA, client: c1, name: "Alpha", description: "first"),
                         .init(id: dB, client: c1, name: "beta", description: nil),
                         .init(id: dG, client: c1, name: "Gamma", description: nil)]
        d.users = [.init(id: u1, client: c1, email: "alice@x", displayName: "Alice", isActive: true, role: "admin",
                         createdAt: "2026-03-04 16:09:26.5+00"),
                   .init(id: u2, client: c1, email: "Bob@x", displayName: nil, isActive: false, role: "Admin"),
                   .init(id: u3, client: c1, email: "carol@x", displayName: "carol", isActive: true, role: nil,
                         createdAt: "2026-03-04T23:30:00-01:00"),
                   .init(id: v1, client: c2, email: "v1@y", displayName: nil),
                   .init(id: v2, client: c2, email: "v2@y", displayName: nil)]
        d.memberships = [(u1, dB), (u1, dA), (u2, dB)]
        func use(_ c: UUID128, _ u: UUID128, _ a: UUID128, _ days: String...) {
            for s in days { d.usage.append(.init(client: c, user: u, app: a, day: Day(s)!)) }
        }
        use(c1, u1, a1, "2025-03-31", "2025-03-30", "2025-03-25", "2025-03-01")
        use(c1, u1, a2, "2025-03-31")
        use(c1, u2, a2, "2025-03-10", "2025-02-01")
        use(c1, u3, a1, "2025-03-28", "2025-03-05", "2025-03-28")
        use(c2, v1, b1, "2025-01-10", "2025-03-29")
        use(c2, v2, b1, "2025-02-15")
        return d
    }()
    static let ref = DirectoryReference(dump)

    func get(_ path: String, _ q: [String: String] = [:], all: Bool = true,
             sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        guard case .document(let d) = Self.ref.answer(path: path, query: q, readsAllClients: all) else {
            Issue.record("\(path) \(q) is an error", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return try #require(d as? [String: Any], sourceLocation: sourceLocation)
    }

    func status(_ path: String, _ q: [String: String] = [:], all: Bool = true) -> String {
        switch Self.ref.answer(path: path, query: q, readsAllClients: all) {
        case .document: return "200"
        case .error(let s, let p): return p.map { "\(s) \($0)" } ?? "\(s)"
        }
    }

    func data(_ doc: [String: Any]) -> [[String: Any]] { doc["data"] as? [[String: Any]] ?? [] }
    /// The ids of the rows' `key` object (K's rows are users themselves: `key` nil).
    func ids(_ doc: [String: Any], _ key: String? = "user") -> [UUID128] {
        data(doc).compactMap { row in (key.map { row[$0] as? [String: Any] } ?? row)?["id"] as? String }
            .compactMap(UUID128.init)
    }
    static func client(_ c: UUID128, _ rest: String) -> String { "/v2/clients/\(c)/\(rest)" }

    /// Expects `doc` to equal the JSON text `expected`, numbers by value.
    func expectJSON(_ doc: Any, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let e = try JSONSerialization.jsonObject(with: Data(expected.utf8), options: [.fragmentsAllowed])
        let diff = DirectoryReference.describeDifference(doc, e)
        #expect(diff == nil, "\(diff ?? "")", sourceLocation: sourceLocation)
    }

    @Test func createdAtNormalisation() {
        let cases: [(String, String)] = [
            ("2026-03-04 16:09:26.5+00", "2026-03-04T16:09:26.5Z"),
            ("2026-03-04T23:30:00-01:00", "2026-03-05T00:30:00Z"),
            ("2026-03-04 16:09:26.1234565+00", "2026-03-04T16:09:26.123457Z"),
            ("2026-03-04 16:09:26.1234564999+00", "2026-03-04T16:09:26.123456Z"),
            ("2026-03-04", "2026-03-04T00:00:00Z"),
            ("2026-12-31T23:59:59.9999995Z", "2027-01-01T00:00:00Z"),
            ("2026-12-31T23:59:59.9999994Z", "2026-12-31T23:59:59.999999Z"),
            ("2026-03-04T10:11+05:30", "2026-03-04T04:41:00Z"),
            ("2026-03-04 10:11:12-0800", "2026-03-04T18:11:12Z"),
            ("2026-03-04 10:11:12.500000000", "2026-03-04T10:11:12.5Z"),
            ("2026-03-04T10:11:12.000Z", "2026-03-04T10:11:12Z"),
            ("2026-03-01 00:30:00+01", "2026-02-28T23:30:00Z"),
            ("2024-03-01T00:00:00.1+14", "2024-02-29T10:00:00.1Z"),
            ("2024-02-29T23:59:60,123Z", "2024-03-01T00:00:00.123Z"),
        ]
        for (raw, want) in cases {
            #expect(DirectoryReference.normalizedTimestamp(raw) == want, "\(raw)")
        }
        #expect(DirectoryReference.normalizedTimestamp("2026-03-04 24:00:00") == nil)
    }

    @Test func usersList() throws {
        let path = Self.client(Self.c1, "users")
        let all = try get(path)
        #expect(ids(all, nil) == [Self.u1, Self.u2, Self.u3])  // alice, Bob, carol: case-insensitive
        #expect(all["as_of"] as? String == "2025-03-31" && all["total_count"] as? Int == 3 && all["next_cursor"] is NSNull)
        try expectJSON(data(all)[0], """
            {"id": "\(Self.u1)", "email": "alice@x", "display_name": "Alice", "is_active": true, "role": "admin",
             "created_at": "2026-03-04T16:09:26.5Z",
             "departments": [{"id": "\(Self.dA)", "name": "Alpha", "description": "first"},
                             {"id": "\(Self.dB)", "name": "beta", "description": null}],
             "first_active_date": "2025-03-01", "last_active_date": "2025-03-31"}
            """)
        #expect(ids(try get(path, ["role": "admin"]), nil) == [Self.u1])
        #expect(ids(try get(path, ["role": "Admin"]), nil) == [Self.u2])
        #expect(ids(try get(path, ["q": "BOB"]), nil) == [Self.u2])
        #expect(ids(try get(path, ["q": "Ar"]), nil) == [Self.u3])  // "carol" by email and name
        #expect(ids(try get(path, ["has_department": "false"]), nil) == [Self.u3])
        #expect(ids(try get(path, ["department_id": "\(Self.dB)"]), nil) == [Self.u1, Self.u2])
        #expect(ids(try get(path, ["department_id": "\(Self.v1)"]), nil) == [])
        #expect(ids(try get(path, ["is_active": "false"]), nil) == [Self.u2])
        #expect(ids(try get(path, ["sort_by": "display_name"]), nil) == [Self.u1, Self.u3, Self.u2])  // null last
        #expect(ids(try get(path, ["sort_by": "display_name", "sort_order": "desc"]), nil) == [Self.u2, Self.u3, Self.u1])
        // created_at: u3 is 2026-03-05T00:30Z, after u1; desc by default, null first.
        #expect(ids(try get(path, ["sort_by": "created_at"]), nil) == [Self.u2, Self.u3, Self.u1])
        #expect(ids(try get(path, ["sort_by": "created_at", "sort_order": "asc"]), nil) == [Self.u1, Self.u3, Self.u2])
        let early = try get(path, ["as_of": "2025-03-20", "sort_by": "last_active_date"])
        #expect(ids(early, nil) == [Self.u2, Self.u3, Self.u1])  // 03-10, 03-05, 03-01
        #expect(data(early)[0]["last_active_date"] as? String == "2025-03-10")
        let none = try get(path, ["as_of": "2024-01-01"])
        #expect(data(none).allSatisfy { $0["first_active_date"] is NSNull } && none["total_count"] as? Int == 3)
        #expect(status(path, ["q": ""]) == "400 q")
        #expect(status(path, ["q": String(repeating: "é", count: 101)]) == "400 q")
        #expect(status(path, ["q": String(repeating: "é", count: 100)]) == "200")
        #expect(status(path, ["is_active": "TRUE"]) == "400 is_active")
        #expect(status(path, ["department_id": "x"]) == "400 department_id")
        #expect(status(path, ["sort_by": "name"]) == "400 sort_by")
        #expect(status(path, ["as_of": "2025-02-30"]) == "400 as_of")
        let idle = try get(Self.client(Self.c3, "users"))
        #expect(idle["as_of"] is NSNull && idle["total_count"] as? Int == 0)
    }

    @Test func oneUser() throws {
        let path = Self.client(Self.c1, "users/\(Self.u1)")
        let d = try get(path)
        try expectJSON(d["period"]!, #"{"start_date": "2025-03-02", "end_date": "2025-03-31"}"#)
        #expect(d["active_days"] as? Int == 3 && d["app_count"] as? Int == 2 && d["series"] is NSNull)
        #expect(d["as_of"] == nil)
        try expectJSON(d["apps"]!, """
            [{"app": {"id": "\(Self.a1)", "canonical_name": "Zed", "logo": null, "type": "browser",
                      "is_favorite": true, "is_approved": true},
              "active_days": 3, "first_date": "2025-03-25", "last_date": "2025-03-31"},
             {"app": {"id": "\(Self.a2)", "canonical_name": "alpha", "logo": "https://x/a.png", "type": "desktop",
                      "is_favorite": false, "is_approved": false},
              "active_days": 1, "first_date": "2025-03-31", "last_date": "2025-03-31"}]
            """)
        let weekly = try get(path, ["granularity": "weekly", "start_date": "2025-03-24", "end_date": "2025-04-02"])
        try expectJSON(weekly["series"]!, """
            [{"bucket_start": "2025-03-24", "bucket_end": "2025-03-30", "active_days": 2, "app_count": 1, "complete": true},
             {"bucket_start": "2025-03-31", "bucket_end": "2025-04-02", "active_days": 1, "app_count": 2, "complete": false}]
            """)
        // Activity after as_of is ignored, the period stays as requested.
        let cut = try get(path, ["as_of": "2025-03-30", "start_date": "2025-03-01", "end_date": "2025-03-31"])
        #expect(cut["active_days"] as? Int == 3 && cut["app_count"] as? Int == 1)
        try expectJSON(cut["period"]!, #"{"start_date": "2025-03-01", "end_date": "2025-03-31"}"#)
        #expect(status(path, ["start_date": "2025-03-01"]) == "400 end_date")
        #expect(status(path, ["end_date": "2025-03-01"]) == "400 start_date")
        #expect(status(path, ["start_date": "2024-01-01", "end_date": "2025-01-01"]) == "400 end_date")
        #expect(status(path, ["granularity": "yearly"]) == "400 granularity")
        #expect(status(Self.client(Self.c1, "users/\(Self.v1)")) == "404")
        #expect(status(Self.client(Self.c1, "users/nope")) == "404")
        #expect(status(Self.client(Self.id(9), "users/\(Self.u1)")) == "404")
        #expect(status(Self.client(Self.id(9), "users/\(Self.u1)"), all: false) == "403")
    }

    @Test func departments() throws {
        let path = Self.client(Self.c1, "departments")
        let d = try get(path)
        #expect(ids(d, "department") == [Self.dA, Self.dB, Self.dG])
        #expect(data(d).map { $0["member_count"] as? Int } == [1, 2, 0])
        #expect(data(d).map { $0["active_member_count"] as? Int } == [1, 2, 0])
        #expect(ids(try get(path, ["sort_by": "member_count"]), "department") == [Self.dB, Self.dA, Self.dG])
        let early = try get(path, ["as_of": "2025-02-05", "sort_by": "active_member_count"])
        #expect(ids(early, "department") == [Self.dB, Self.dA, Self.dG])  // u2 on 02-01; then ties by id
        let one = Self.client(Self.c1, "departments/\(Self.dB)")
        let q = ["granularity": "monthly", "start_date": "2025-03-01", "end_date": "2025-03-31",
                 "compare_start_date": "2025-02-01", "compare_end_date": "2025-02-28"]
        try expectJSON(try get(one, q), """
            {"department": {"id": "\(Self.dB)", "name": "beta", "description": null}, "member_count": 2,
             "period": {"start_date": "2025-03-01", "end_date": "2025-03-31",
                        "compare_start_date": "2025-02-01", "compare_end_date": "2025-02-28"},
             "user_count": {"value": 2, "change_pct": 100.0, "compare_value": 1},
             "app_count": {"value": 2, "change_pct": 100, "compare_value": 1}}
            """)
        var approved = q
        approved["is_approved"] = "true"
        let a = try get(one, approved)
        try expectJSON(a["user_count"]!, #"{"value": 1, "change_pct": null, "compare_value": 0}"#)
        var plain = q
        plain["compare_start_date"] = nil
        plain["compare_end_date"] = nil
        try expectJSON(try get(one, plain)["app_count"]!, #"{"value": 2, "change_pct": null, "compare_value": null}"#)
        #expect(status(one, ["start_date": "2025-03-01", "end_date": "2025-03-31"]) == "400 granularity")
        #expect(status(one, ["granularity": "weekly", "end_date": "2025-03-31"]) == "400 start_date")
        var half = q
        half["compare_end_date"] = nil
        #expect(status(one, half) == "400 compare_end_date")
        var badList = q
        badList["vendor_ids"] = "\(Self.a1),"
        #expect(status(one, badList) == "400 vendor_ids")
        #expect(status(Self.client(Self.c2, "departments/\(Self.dB)"), q) == "404")
    }

    @Test func activeUsersAndLicense() throws {
        let n = Self.client(Self.c1, "usage-statistics/active-users")
        try expectJSON(try get(n), #"{"active_users": 3, "window_days": 30, "as_of": "2025-03-31"}"#)
        #expect(try get(n, ["window_days": "7"])["active_users"] as? Int == 2)
        #expect(try get(n, ["window_days": "007"])["window_days"] as? Int == 7)
        for bad in ["0", "367", "7x", "-7", "+7", "", " 7", "7.0"] {
            #expect(status(n, ["window_days": bad]) == "400 window_days", "\(bad)")
        }
        try expectJSON(try get(Self.client(Self.c3, "usage-statistics/active-users")),
                       #"{"active_users": 0, "window_days": 30, "as_of": null}"#)
        try expectJSON(try get(Self.client(Self.c1, "license")), """
            {"licensed_seats": 7, "assigned_users": 2, "active_users_30d": 3, "utilization_pct": 42.9,
             "as_of": "2025-03-31"}
            """)
        try expectJSON(try get(Self.client(Self.c3, "license")), """
            {"licensed_seats": 0, "assigned_users": 0, "active_users_30d": 0, "utilization_pct": null, "as_of": null}
            """)
        let r2 = Self.client(Self.c1, "license/utilization")
        try expectJSON(try get(r2, ["start_month": "2025-01"]), """
            {"as_of": "2025-03-31", "data": [
              {"month": "2025-01", "active_users": 0, "licensed_seats": 7, "utilization_pct": 0.0, "complete": true},
              {"month": "2025-02", "active_users": 1, "licensed_seats": 7, "utilization_pct": 14.3, "complete": true},
              {"month": "2025-03", "active_users": 3, "licensed_seats": 7, "utilization_pct": 42.9, "complete": true}]}
            """)
        let cut = try get(r2, ["as_of": "2025-03-30"])
        let months = try #require(cut["data"] as? [[String: Any]])
        #expect(months.count == 12 && months[0]["month"] as? String == "2024-04")
        #expect(months[11]["complete"] as? Bool == false && months[11]["active_users"] as? Int == 3)
        #expect(status(r2, ["start_month": "2023-04"]) == "200")
        #expect(status(r2, ["start_month": "2023-03"]) == "400 start_month")
        #expect(status(r2, ["start_month": "2025-04"]) == "400 start_month")
        #expect(status(r2, ["start_month": "2025-3"]) == "400 start_month")
        #expect(status(r2, ["start_month": "2025-13"]) == "400 start_month")
        try expectJSON(try get(Self.client(Self.c3, "license/utilization")), #"{"as_of": null, "data": []}"#)
    }

    @Test func championsChurnReengagement() throws {
        let o = Self.client(Self.c1, "analytics/users/champions")
        let champions = try get(o, ["report_interval": "30"])
        #expect(ids(champions) == [Self.u1, Self.u3, Self.u2])
        #expect(data(champions).map { $0["num_active_days"] as? Int } == [3, 2, 1])
        #expect(champions["report_interval"] as? String == "30" && champions["as_of"] as? String == "2025-03-31")
        #expect(ids(try get(o, ["report_interval": "30", "sort_order": "asc"])) == [Self.u2, Self.u3, Self.u1])
        #expect(ids(try get(o, ["report_interval": "30", "is_approved": "false"])) == [Self.u1, Self.u2])
        #expect(ids(try get(o, ["report_interval": "30", "category_ids": "\(Self.ai)"])) == [Self.u1, Self.u3])
        #expect(ids(try get(o, ["report_interval": "30", "app_ids": "\(Self.b1)"])) == [])
        #expect(status(o) == "400 report_interval")
        #expect(status(o, ["report_interval": "45"]) == "400 report_interval")
        #expect(status(o, ["report_interval": "30", "sort_by": "email"]) == "400 sort_by")
        #expect(status(o, ["report_interval": "30", "app_ids": ""]) == "400 app_ids")

        let p = Self.client(Self.c1, "analytics/users/churn")
        try expectJSON(data(try get(p, ["report_interval": "7"])).map { $0.filter { $0.key != "user" } },
                       #"[{"last_active_date": "2025-03-10", "days_inactive": 21}]"#)
        #expect(ids(try get(p, ["report_interval": "30"])) == [])
        let earlier = try get(p, ["report_interval": "7", "as_of": "2025-03-29"])
        #expect(ids(earlier) == [Self.u2] && data(earlier)[0]["days_inactive"] as? Int == 19)
        // Activity filter: on a1 only, u1's last is 03-31; as of 03-24 u1 (03-01) and u3 (03-05) churned.
        let filtered = try get(p, ["report_interval": "14", "as_of": "2025-03-24", "app_ids": "\(Self.a1)"])
        #expect(ids(filtered) == [Self.u3, Self.u1])
        #expect(ids(try get(p, ["report_interval": "14", "as_of": "2025-03-24", "app_ids": "\(Self.a1)",
                                "sort_by": "days_inactive", "sort_order": "asc"])) == [Self.u3, Self.u1])

        let q = Self.client(Self.c1, "analytics/users/reengagement")
        let weekly = try get(q, ["report_interval": "weekly"])
        #expect(ids(weekly) == [Self.u1, Self.u3])
        try expectJSON(data(weekly).map { $0.filter { $0.key != "user" } }, """
            [{"reengaged_on": "2025-03-25", "previous_active_date": "2025-03-01", "days_inactive": 23},
             {"reengaged_on": "2025-03-28", "previous_active_date": "2025-03-05", "days_inactive": 22}]
            """)
        #expect(ids(try get(q, ["report_interval": "weekly", "sort_by": "reengaged_on"])) == [Self.u3, Self.u1])
        #expect(ids(try get(q, ["report_interval": "monthly"])) == [])
        #expect(status(q, ["report_interval": "Weekly"]) == "400 report_interval")
    }

    @Test func adminReports() throws {
        let growth = try get("/v2/analytics/clients/growth", ["report_interval": "30"])
        #expect(growth["as_of"] as? String == "2025-03-31" && growth["report_interval"] as? String == "30")
        try expectJSON(growth["data"]!, """
            [{"client": {"id": "\(Self.c1)", "name": "Acme"}, "num_users": 3, "num_users_added": 1,
              "num_users_removed": 0, "net_growth": 1},
             {"client": {"id": "\(Self.c2)", "name": "Beta Co"}, "num_users": 2, "num_users_added": 0,
              "num_users_removed": 1, "net_growth": -1}]
            """)
        #expect(ids(try get("/v2/analytics/clients/attrition", ["report_interval": "30"]), "client") == [Self.c2])
        let re = try get("/v2/analytics/clients/reengagement", ["report_interval": "weekly"])
        try expectJSON(re["data"]!, """
            [{"client": {"id": "\(Self.c2)", "name": "Beta Co"}, "num_users": 2, "reengaged_on": "2025-03-29",
              "previous_active_date": "2025-02-15"},
             {"client": {"id": "\(Self.c1)", "name": "Acme"}, "num_users": 3, "reengaged_on": "2025-03-25",
              "previous_active_date": "2025-03-10"}]
            """)
        let churn = try get("/v2/analytics/clients/churn", ["report_interval": "7", "as_of": "2025-03-28"])
        try expectJSON(churn["data"]!, """
            [{"client": {"id": "\(Self.c2)", "name": "Beta Co"}, "num_users": 2, "last_active_date": "2025-02-15"}]
            """)
        #expect(status("/v2/analytics/clients/churn", ["report_interval": "30"], all: false) == "403")
        #expect(status("/v2/analytics/clients/churn", ["report_interval": "weekly"]) == "400 report_interval")
        #expect(status("/v2/analytics/clients/lost", ["report_interval": "7"]) == "404")

        let chart = "/v2/analytics/charts/"
        let period = ["cadence": "monthly", "start_date": "2025-02-10", "end_date": "2025-03-31"]
        try expectJSON(try get(chart + "active_users", period), """
            {"chart_type": "active_users", "cadence": "monthly", "metrics": [
              {"date": "2025-02-10", "result": 1, "cadence_completed": false},
              {"date": "2025-03-01", "result": 4, "cadence_completed": true}]}
            """)
        #expect((try get(chart + "new_users", period)["metrics"] as? [[String: Any]])?.map { $0["result"] as? Int } == [1, 2])
        #expect((try get(chart + "active_clients", period)["metrics"] as? [[String: Any]])?.map { $0["result"] as? Int }
                == [1, 2])
        let weekly = try get(chart + "active_users", ["cadence": "weekly", "start_date": "2025-03-26", "end_date": "2025-03-31"])
        try expectJSON(weekly["metrics"]!, """
            [{"date": "2025-03-26", "result": 3, "cadence_completed": false},
             {"date": "2025-03-31", "result": 1, "cadence_completed": false}]
            """)
        #expect(status(chart + "active_users", ["cadence": "quarterly", "start_date": "2025-03-26", "end_date": "2025-03-31"])
                == "400 cadence")
        #expect(status(chart + "active_users", ["cadence": "daily", "start_date": "2025-03-26"]) == "400 end_date")
        #expect(status(chart + "sessions", period) == "404")
        #expect(status(chart + "active_users", period, all: false) == "403")
    }

    @Test func jsonComparison() throws {
        let parsed = try JSONSerialization.jsonObject(with: Data(#"{"a": 12.0, "b": [true, null, "x"], "c": 1}"#.utf8))
        #expect(DirectoryReference.equal(parsed, ["a": 12, "b": [true, NSNull(), "x"], "c": 1] as [String: Any]))
        #expect(!DirectoryReference.equal(parsed, ["a": 12, "b": [true, NSNull(), "x"], "c": true] as [String: Any]))
        #expect(DirectoryReference.describeDifference(parsed, ["a": 12, "b": [true, NSNull(), "y"], "c": 1] as [String: Any])
                == #"b[2]: "x" vs "y""#)
        #expect(DirectoryReference.describeDifference(parsed, ["a": 12, "b": [true, NSNull(), "x"]] as [String: Any])
                == "c: 1 vs missing")
    }

    /// On random dumps: every endpoint answers, every generated created_at parses, and the gaps
    /// added to the usage give churn and re-engagement rows to compare.
    @Test func randomDumpsHaveMatches() throws {
        var churned = 0, reengaged = 0, clientRows = 0
        for seed in UInt64(1)...3 {
            let dump = RandomDump(seed: seed, clientCount: 4, maxRowsPerClient: 1500)
            let ref = DirectoryReference(dump)
            for u in dump.users { if let t = u.createdAt { #expect(DirectoryReference.normalizedTimestamp(t) != nil, "\(t)") } }
            for c in dump.clients {
                for rest in ["users", "departments", "usage-statistics/active-users", "license", "license/utilization",
                             "users/\(dump.users.first { $0.client == c.id }!.id)"] {
                    guard case .document = ref.answer(path: Self.client(c.id, rest), query: [:]) else {
                        Issue.record("\(rest) failed")
                        continue
                    }
                }
                for interval in ["7", "14", "30"] {
                    if case .document(let d) = ref.answer(path: Self.client(c.id, "analytics/users/churn"),
                                                          query: ["report_interval": interval]) {
                        churned += (d as? [String: Any])?["total_count"] as? Int ?? 0
                    }
                }
                if case .document(let d) = ref.answer(path: Self.client(c.id, "analytics/users/reengagement"),
                                                      query: ["report_interval": "weekly"]) {
                    reengaged += (d as? [String: Any])?["total_count"] as? Int ?? 0
                }
            }
            for (kind, interval) in [("churn", "30"), ("reengagement", "monthly"), ("growth", "30"), ("attrition", "90")] {
                if case .document(let d) = ref.answer(path: "/v2/analytics/clients/\(kind)", query: ["report_interval": interval]) {
                    clientRows += (d as? [String: Any])?["total_count"] as? Int ?? 0
                }
            }
        }
        #expect(churned > 0 && reengaged > 0 && clientRows > 0)
    }
}
