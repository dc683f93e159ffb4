import Testing
import TallyIngest
import TallyStorage
import TallyTestSupport

/// One kind of bad value or reference in an otherwise valid dump, and the error it must give.
struct BadCase: Sendable, CustomTestStringConvertible {
    let name: String
    let corrupt: @Sendable (inout TestDump) throws -> Expected
    var testDescription: String { name }
    init(_ name: String, _ corrupt: @escaping @Sendable (inout TestDump) throws -> Expected) {
        self.name = name
        self.corrupt = corrupt
    }
}

/// Usage rows are checked deep in the second part file (line 57, after quoted line breaks);
/// that part is LZ4-compressed, the first gzip-compressed. Usage header:
/// id(1), activity_date(2), application_id(3), user_id(4), client_id(5).
let usagePart1 = "app_usage_reports/part-0001.csv.lz4"

func deepUsage(_ d: inout TestDump, _ column: String, _ value: String?) throws -> Int {
    d.compressions = [.gzip, .lz4]
    let r = try d.deepUsageRow()
    d.set("app_usage_reports", row: r, column, value)
    return r
}

@Suite struct BadInputTests {
    static let valueCases: [BadCase] = [
        BadCase("bad UUID in usage user_id") { d in
            _ = try deepUsage(&d, "user_id", "0f8fad5b-d9cb-469f-a165-70867728950g")
            return Expected(kind: .badUUID, file: usagePart1, line: 57, column: 4, columnName: "user_id",
                            mentions: ["UUID"], found: "0f8fad5b-d9cb-469f-a165-70867728950g")
        },
        BadCase("bad UUID (no dashes) in usage client_id") { d in
            _ = try deepUsage(&d, "client_id", "0f8fad5bd9cb469fa16570867728950f")
            return Expected(kind: .badUUID, file: usagePart1, line: 57, column: 5, columnName: "client_id",
                            mentions: ["UUID"])
        },
        BadCase("bad UUID in apps.id") { d in
            d.set("apps", row: 6, "id", "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}")
            return Expected(kind: .badUUID, file: "apps.csv", line: 8, column: 1, columnName: "id", mentions: ["UUID"])
        },
        BadCase("bad boolean in apps.is_favorite") { d in
            d.set("apps", row: 5, "is_favorite", "yes")
            return Expected(kind: .badBoolean, file: "apps.csv", line: 7, column: 5, columnName: "is_favorite",
                            mentions: ["boolean", "true/false/t/f/1/0"], found: "yes")
        },
        BadCase("bad boolean (2) in users.is_active") { d in
            d.set("users", row: 9, "is_active", "2")
            return Expected(kind: .badBoolean, file: "users.csv", line: 11, column: 5, columnName: "is_active",
                            mentions: ["boolean"], found: "2")
        },
        BadCase("NULL boolean in catalog_categories.is_ai") { d in
            d.set("catalog_categories", row: 2, "is_ai", nil)
            return Expected(kind: .badBoolean, file: "catalog_categories.csv", line: 4, column: 3, columnName: "is_ai",
                            mentions: ["boolean"], found: "NULL")
        },
        BadCase("bad integer in clients.licensed_seats") { d in
            d.set("clients", row: 1, "licensed_seats", "12a")
            return Expected(kind: .badInteger, file: "clients.csv", line: 3, column: 4, columnName: "licensed_seats",
                            mentions: ["integer"], found: "12a")
        },
        BadCase("NULL in users.email") { d in
            d.set("users", row: 10, "email", nil)
            return Expected(kind: .nullValue, file: "users.csv", line: 12, column: 3, columnName: "email",
                            mentions: ["not NULL"], found: "NULL")
        },
        BadCase("NULL in catalog_applications.type") { d in
            d.set("catalog_applications", row: 7, "type", nil)
            return Expected(kind: .nullValue, file: "catalog_applications.csv", line: 9, column: 4, columnName: "type",
                            mentions: ["not NULL"])
        },
        BadCase("usage row naming an unknown client") { d in
            let u = freshUUID()
            _ = try deepUsage(&d, "client_id", u)
            return Expected(kind: .unknownClient, file: usagePart1, line: 57, column: 5, columnName: "client_id",
                            mentions: ["client"], found: u)
        },
        BadCase("usage row naming an unknown user") { d in
            let u = freshUUID()
            _ = try deepUsage(&d, "user_id", u)
            return Expected(kind: .unknownUser, file: usagePart1, line: 57, column: 4, columnName: "user_id",
                            mentions: ["user"], found: u)
        },
        BadCase("usage row naming an unknown app") { d in
            let u = freshUUID()
            _ = try deepUsage(&d, "application_id", u)
            return Expected(kind: .unknownApp, file: usagePart1, line: 57, column: 3, columnName: "application_id",
                            mentions: ["app"], found: u)
        },
        BadCase("usage row naming a user of another client") { d in
            let r = try deepUsage(&d, "id", "x")
            let other = d.userOfAnotherClient(thanUsageRow: r)
            d.set("app_usage_reports", row: r, "user_id", other.description)
            return Expected(kind: .wrongClient, file: usagePart1, line: 57, column: 4, columnName: "user_id",
                            mentions: ["a user of client \(d.value("app_usage_reports", row: r, "client_id")!)"])
        },
        BadCase("usage row naming an app of another client") { d in
            let r = try deepUsage(&d, "id", "x")
            let other = d.appOfAnotherClient(thanUsageRow: r)
            d.set("app_usage_reports", row: r, "application_id", other.description.uppercased())
            return Expected(kind: .wrongClient, file: usagePart1, line: 57, column: 3, columnName: "application_id",
                            mentions: ["an app of client"])
        },
        BadCase("app naming an unknown client") { d in
            d.set("apps", row: 3, "client_id", freshUUID())
            return Expected(kind: .unknownClient, file: "apps.csv", line: 5, column: 2, columnName: "client_id",
                            mentions: ["client"])
        },
        BadCase("app naming an unknown catalog application") { d in
            d.set("apps", row: 4, "catalog_application_id", freshUUID())
            return Expected(kind: .unknownReference, file: "apps.csv", line: 6, column: 3,
                            columnName: "catalog_application_id", mentions: ["catalog application"])
        },
        BadCase("user_departments naming an unknown user") { d in
            try #require(d["user_departments"].rows.count > 5)
            d.set("user_departments", row: 3, "user_id", freshUUID())
            return Expected(kind: .unknownUser, file: "user_departments.csv", line: 5, column: 1, columnName: "user_id",
                            mentions: ["user"])
        },
        BadCase("user_departments naming an unknown department") { d in
            try #require(d["user_departments"].rows.count > 5)
            d.set("user_departments", row: 4, "department_id", freshUUID())
            return Expected(kind: .unknownDepartment, file: "user_departments.csv", line: 6, column: 2,
                            columnName: "department_id", mentions: ["department"])
        },
        BadCase("user_departments naming a department of another client") { d in
            let m = d.random.memberships[5]
            let client = try #require(d.random.users.first { $0.id == m.user }).client
            let other = try #require(d.random.departments.first { $0.client != client })
            d.set("user_departments", row: 5, "department_id", other.id.description)
            return Expected(kind: .wrongClient, file: "user_departments.csv", line: 7, column: 2,
                            columnName: "department_id", mentions: ["department of the user's own client"],
                            found: other.id.description)
        },
        BadCase("catalog application with an unknown category") { d in
            d.set("catalog_applications", row: 4, "category_id", freshUUID())
            return Expected(kind: .unknownReference, file: "catalog_applications.csv", line: 6, column: 5,
                            columnName: "category_id", mentions: ["catalog category"])
        },
        BadCase("catalog application with an unknown vendor") { d in
            d.set("catalog_applications", row: 11, "vendor_id", freshUUID())
            return Expected(kind: .unknownReference, file: "catalog_applications.csv", line: 13, column: 6,
                            columnName: "vendor_id", mentions: ["catalog vendor"])
        },
        BadCase("duplicate user id (differing only in case)") { d in
            let first = d.value("users", row: 3, "id")!
            d.set("users", row: 20, "id", first.uppercased())
            return Expected(kind: .duplicateId, file: "users.csv", line: 22, column: 1, columnName: "id",
                            mentions: ["not seen before"], found: first.uppercased())
        },
        BadCase("duplicate department id") { d in
            try #require(d["departments"].rows.count > 4)
            d.set("departments", row: 4, "id", d.value("departments", row: 0, "id"))
            return Expected(kind: .duplicateId, file: "departments.csv", line: 6, column: 1, columnName: "id",
                            mentions: ["department id"])
        },
        BadCase("usage header lacks activity_date") { d in
            d.compressions = [.gzip, .lz4]
            let c = d.index("app_usage_reports", "activity_date")
            d["app_usage_reports"].header.remove(at: c)
            for i in d["app_usage_reports"].rows.indices { d["app_usage_reports"].rows[i].remove(at: c) }
            return Expected(kind: .missingColumn, file: "app_usage_reports/part-0000.csv.gz", line: 1, column: 5,
                            columnName: "activity_date", mentions: ["activity_date"])
        },
        BadCase("users header lacks email") { d in
            let c = d.index("users", "email")
            d["users"].header[c] = "e_mail"
            return Expected(kind: .missingColumn, file: "users.csv", line: 1, column: 8, columnName: "email",
                            mentions: ["a column named email"])
        },
        BadCase("usage row with one field too many") { d in
            let r = try deepUsage(&d, "id", "x")
            d["app_usage_reports"].rows[r].append("extra")
            return Expected(kind: .badCSV, file: usagePart1, line: 57, column: 6, columnName: nil,
                            mentions: ["5 fields"], found: "6 fields")
        },
        BadCase("usage row with one field too few") { d in
            let r = try deepUsage(&d, "id", "x")
            d["app_usage_reports"].rows[r].removeLast()
            return Expected(kind: .badCSV, file: usagePart1, line: 57, column: 5, columnName: nil,
                            mentions: ["5 fields"], found: "4 fields")
        },
    ]

    @Test(arguments: valueCases)
    func refused(_ c: BadCase) throws {
        var bad = TestDump()
        let expected = try c.corrupt(&bad)
        var valid = TestDump()
        valid.compressions = bad.compressions
        try expectRefused(valid: valid, bad: bad, expected)
    }

    @Test(arguments: ["2024-02-30", "2025-13-01", "20240101", "2024-1-01", "2023-02-29", "2024-00-10", "", " 2024-01-01"])
    func badActivityDate(_ date: String) throws {
        var bad = TestDump()
        _ = try deepUsage(&bad, "activity_date", date)
        try expectRefused(valid: TestDump(), bad: bad,
                          Expected(kind: .badDate, file: usagePart1, line: 57, column: 2, columnName: "activity_date",
                                   mentions: ["YYYY-MM-DD"], found: date.isEmpty ? "" : date))
    }

    @Test func nullActivityDate() throws {
        var bad = TestDump()
        _ = try deepUsage(&bad, "activity_date", nil)
        try expectRefused(valid: TestDump(), bad: bad,
                          Expected(kind: .badDate, file: usagePart1, line: 57, column: 2, columnName: "activity_date",
                                   mentions: ["YYYY-MM-DD"], found: "NULL"))
    }

    @Test(arguments: ["2024-13-01 10:00:00", "2024-02-30T10:00:00Z", "2024-01-02 24:00:00", "2024-01-02 10:61",
                      "yesterday", "2024-01-02T10:00:00+25:00", "2024-01-02 10:11:12.", "2024-01-02X10:11"])
    func badCreatedAt(_ ts: String) throws {
        var bad = TestDump()
        bad.set("users", row: 30, "created_at", ts)
        try expectRefused(valid: TestDump(), bad: bad,
                          Expected(kind: .badTimestamp, file: "users.csv", line: 32, column: 7, columnName: "created_at",
                                   mentions: ["timestamp"], found: ts))
    }

    @Test(arguments: ["2024-01-02", "2024-01-02T10:11:12Z", "2024-01-02 10:11:12.5+00", "2024-01-02T10:11+05:30",
                      "2024-01-02 10:11:12-0800", "2024-02-29T23:59:60,123Z"])
    func goodCreatedAtIsKeptAsLoaded(_ ts: String) throws {
        let tmp = TempDir()
        var d = TestDump()
        d.set("users", row: 30, "created_at", ts)
        try d.write(to: tmp.path)
        let (store, _) = try DumpLoader.load(folder: tmp.path)
        let id = try #require(UUID128(d.value("users", row: 30, "id")!))
        let user = store.clients.flatMap(\.users).first { $0.id == id }
        #expect(user?.createdAt == ts)
    }
}
