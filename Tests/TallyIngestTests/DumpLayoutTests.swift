import Foundation
import Testing
import TallyIngest
import TallyStorage
import TallyTestSupport

/// How a dump may be laid out and spelled (SPEC §1), and that every allowed variant loads into
/// the same store.
@Suite struct DumpLayoutTests {
    static func load(_ d: TestDump, _ tmp: TempDir, _ name: String) throws -> Store {
        try d.write(to: tmp.sub(name))
        return try DumpLoader.load(folder: tmp.sub(name)).0
    }

    @Test func tablesFoundByNameWithEveryCompressionAndParts() throws {
        let tmp = TempDir()
        var d = TestDump()
        d.usageParts = 3
        d.compressions = [.none, .gzip, .lz4]
        let folder = tmp.sub("dump")
        let written = try d.write(to: folder)
        // Files that are not table files are ignored.
        for junk in ["notes.md", "users.csv.bak", "app_usage_reports/_SUCCESS", "app_usage_reports/README.txt",
                     "app_usage_reports/part-0003.csv.tmp"] {
            try writeBytes(Array("garbage\n\"".utf8), to: folder + "/" + junk)
        }
        let layout = try DumpLayout.discover(folder: folder)
        #expect(!layout.usesManifest)
        #expect(layout.files["users"]?.map(\.relativePath) == ["users.csv"])
        #expect(layout.files["catalog_vendors"]?.map(\.relativePath) == ["catalog_vendors.csv.gz"])
        #expect(layout.files["catalog_applications"]?.map(\.relativePath) == ["catalog_applications.csv.lz4"])
        #expect(layout.files["app_usage_reports"]?.map(\.relativePath) ==
                ["app_usage_reports/part-0000.csv", "app_usage_reports/part-0001.csv.gz", "app_usage_reports/part-0002.csv.lz4"])
        #expect(layout.files["app_usage_reports"]?.map(\.compression) == [.none, .gzip, .lz4])
        for t in DumpLayout.tables {
            #expect(layout.files[t]?.map(\.relativePath) == written[t], "\(t)")
            #expect(layout.files[t]?.allSatisfy { $0.absolutePath == folder + "/" + $0.relativePath } == true)
        }
        let (store, report) = try DumpLoader.load(folder: folder)
        #expect(StoreDigest(store).usage == d.expectedUsage)
        #expect(report.usageRecords == d["app_usage_reports"].rows.count)
        #expect(report.storedBytes > 0)
    }

    /// Part files are read in byte order of their names, whatever their compression.
    @Test func partsSortedByName() throws {
        let tmp = TempDir()
        var d = TestDump()
        d.usageParts = 1
        let names = ["b.csv", "a.csv.lz4", "c-9.csv", "c-10.csv.gz"]
        let rows = d["app_usage_reports"].rows
        let folder = tmp.sub("dump")

        func writeParts(_ rows: [[String?]]) throws {
            try d.write(to: folder)
            try FileManager.default.removeItem(atPath: folder + "/app_usage_reports.csv")
            try FileManager.default.createDirectory(atPath: folder + "/app_usage_reports", withIntermediateDirectories: true)
            let per = (rows.count + names.count - 1) / names.count
            for (i, n) in names.enumerated() {
                let slice = Array(rows[min(i * per, rows.count)..<min((i + 1) * per, rows.count)])
                let text = Array(DumpWriter.csv(CSVTable(name: "u", header: d["app_usage_reports"].header, rows: slice)).utf8)
                let c: FileCompression = n.hasSuffix(".gz") ? .gzip : n.hasSuffix(".lz4") ? .lz4 : .none
                try writeBytes(try DumpWriter.compress(text, c), to: folder + "/app_usage_reports/" + n)
            }
        }
        try writeParts(rows)
        let layout = try DumpLayout.discover(folder: folder)
        #expect(layout.files["app_usage_reports"]?.map(\.relativePath) ==
                ["a.csv.lz4", "b.csv", "c-10.csv.gz", "c-9.csv"].map { "app_usage_reports/" + $0 })
        let (store, _) = try DumpLoader.load(folder: folder)
        #expect(StoreDigest(store).usage == d.expectedUsage)

        // Bad rows in "b.csv" (written first, its lines 3 and 5) and in "a.csv.lz4" (its line 3):
        // the first file by name is the one refused.
        var bad = rows
        let per = (rows.count + names.count - 1) / names.count
        bad[1][d.index("app_usage_reports", "user_id")] = "not-a-uuid"
        bad[3][d.index("app_usage_reports", "user_id")] = "not-a-uuid-either"
        bad[per + 1][d.index("app_usage_reports", "user_id")] = "bad"
        try writeParts(bad)
        let e = try #require(throws: LoadError.self) { _ = try DumpLoader.load(folder: folder) }
        #expect(e.kind == .badUUID && e.file == "app_usage_reports/a.csv.lz4" && e.line == 3 && e.column == 4)
    }

    @Test(arguments: [["departments", "user_departments"], ["user_departments"]], [false, true])
    func optionalTablesMayBeAbsent(_ absent: [String], _ manifest: Bool) throws {
        let tmp = TempDir()
        var d = TestDump()
        d.manifest = manifest
        let baseline = StoreDigest(try Self.load(d, tmp, "full"))
        try #require(!baseline.departments.isEmpty && !baseline.memberships.isEmpty)
        d.tables.removeAll { absent.contains($0.name) }
        let layout = try { try d.write(to: tmp.sub("part")); return try DumpLayout.discover(folder: tmp.sub("part")) }()
        for t in absent { #expect(layout.files[t] == nil || layout.files[t]!.isEmpty) }
        let got = StoreDigest(try DumpLoader.load(folder: tmp.sub("part")).0)
        #expect(got.memberships.isEmpty)
        #expect(got.departments == (absent.contains("departments") ? [] : baseline.departments))
        #expect(got.users == baseline.users && got.apps == baseline.apps && got.usage == baseline.usage)
        #expect(got.catalog == baseline.catalog && got.clients == baseline.clients)
    }

    /// Every table with its columns reversed and unknown columns added (holding commas, quotes,
    /// line breaks, empty strings and NULLs) loads into the same store.
    @Test func columnsInAnyOrderAndUnknownColumnsIgnored() throws {
        let tmp = TempDir()
        var d = TestDump()
        let baseline = StoreDigest(try Self.load(d, tmp, "base"))
        let junk: [String?] = ["x, \"y\"\nz", "", nil, "id", "2024-13-45", "\u{1F600}"]
        for t in d.tables.indices {
            var table = d.tables[t]
            table.header = ["zz_first"] + table.header.reversed() + ["Note", "is_ai_extra"]
            table.rows = table.rows.enumerated().map { i, r in [junk[i % junk.count]] + r.reversed() + [junk[(i + 1) % junk.count], "maybe"] }
            d.tables[t] = table
        }
        #expect(StoreDigest(try Self.load(d, tmp, "shuffled")) == baseline)
    }

    /// Ids in upper and mixed case, on definitions and on references alike.
    @Test func mixedCaseUUIDsAccepted() throws {
        let tmp = TempDir()
        var d = TestDump()
        let baseline = StoreDigest(try Self.load(d, tmp, "base"))
        func mix(_ s: String, _ k: Int) -> String {
            String(s.enumerated().map { i, c in (i + k) % 3 == 0 ? Character(c.uppercased()) : Character(c.lowercased()) })
        }
        for t in d.tables.indices {
            let idColumns = d.tables[t].header.indices.filter { d.tables[t].header[$0] == "id" || d.tables[t].header[$0].hasSuffix("_id") }
            for r in d.tables[t].rows.indices {
                for c in idColumns {
                    guard let v = d.tables[t].rows[r][c] else { continue }
                    d.tables[t].rows[r][c] = (r + t) % 4 == 0 ? v.uppercased() : mix(v, r + c)
                }
            }
        }
        #expect(d["users"].rows.contains { $0[0]!.contains("A") || $0[0]!.contains("B") || $0[0]!.contains("C") })
        let store = try Self.load(d, tmp, "mixed")
        #expect(StoreDigest(store) == baseline)
        #expect(store.clients.allSatisfy { c in c.users.allSatisfy { $0.id.description == $0.id.description.lowercased() } })
    }

    static let booleanForms: [(String, Bool)] = [
        ("true", true), ("false", false), ("t", true), ("f", false), ("1", true), ("0", false),
        ("TRUE", true), ("FALSE", false), ("True", true), ("fAlSe", false), ("T", true), ("F", false), ("tRuE", true),
    ]

    @Test func booleansInEveryAllowedForm() throws {
        let tmp = TempDir()
        var d = TestDump()
        let forms = Self.booleanForms
        try #require(d["apps"].rows.count >= forms.count && d["users"].rows.count >= forms.count)
        var approved: [UUID128: Bool] = [:], favorite: [UUID128: Bool] = [:], active: [UUID128: Bool] = [:]
        var ai: [UUID128: Bool] = [:]
        for i in d["apps"].rows.indices {
            let a = forms[i % forms.count], f = forms[(i + 5) % forms.count]
            d.set("apps", row: i, "is_approved", a.0)
            d.set("apps", row: i, "is_favorite", f.0)
            approved[d.random.apps[i].id] = a.1
            favorite[d.random.apps[i].id] = f.1
        }
        for i in d["users"].rows.indices {
            let a = forms[(i + 3) % forms.count]
            d.set("users", row: i, "is_active", a.0)
            active[d.random.users[i].id] = a.1
        }
        for i in d["catalog_categories"].rows.indices {
            let a = forms[(i * 7) % forms.count]
            d.set("catalog_categories", row: i, "is_ai", a.0)
            ai[d.random.categories[i].id] = a.1
        }
        let store = try Self.load(d, tmp, "bools")
        var seen = 0
        for c in store.clients {
            for a in c.apps {
                #expect(a.isApproved == approved[a.id] && a.isFavorite == favorite[a.id])
                let cat = store.catalog.applications[Int(a.catalogIndex)].category
                #expect(a.isAI == (cat.map { ai[store.catalog.categories[Int($0)].id]! } ?? false))
                seen += 1
            }
            for u in c.users { #expect(u.isActive == active[u.id]) }
        }
        #expect(seen == d["apps"].rows.count)
        for c in store.catalog.categories { #expect(c.isAI == ai[c.id]) }
    }

    @Test(arguments: ["yes", "no", "tru", "2", "-1", "on", "", " true", "true ", "ft", "10"])
    func otherBooleanFormsRefused(_ form: String) throws {
        let tmp = TempDir()
        var d = TestDump()
        d.set("apps", row: 2, "is_approved", form)
        try d.write(to: tmp.path)
        let e = try #require(throws: LoadError.self) { _ = try DumpLoader.load(folder: tmp.path) }
        #expect(e.kind == .badBoolean && e.file == "apps.csv" && e.line == 4 && e.column == 4 && e.found == form)
    }

    /// Text is kept exactly as loaded: no trimming, line breaks and quotes kept, "" is not NULL;
    /// a NULL timezone means UTC.
    @Test func textKeptExactlyAndDefaults() throws {
        let tmp = TempDir()
        var d = TestDump()
        // (DumpWriter only quotes a CRLF when something else in the field needs quoting: the
        // Character "\r\n" is neither "\r" nor "\n". Hence the comma.)
        let names: [String?] = ["  padded  ", "tab\there", "comma, \"quoted\"", "line\nbreak", "crlf,\r\nbreak",
                                "Ünïcødé 😀", "", nil, "NULL"]
        for (i, n) in names.enumerated() { d.set("users", row: i, "display_name", n) }
        d.set("clients", row: 0, "timezone", "Europe/Paris")
        d.set("clients", row: 1, "timezone", nil)
        d.set("clients", row: 1, "licensed_seats", nil)
        d.set("clients", row: 2, "licensed_seats", "0")
        let store = try Self.load(d, tmp, "text")
        for (i, n) in names.enumerated() {
            let id = d.random.users[i].id
            let u = store.clients.lazy.compactMap { c in c.userIndex[id].map { c.users[Int($0)] } }.first
            #expect(u?.displayName == n, "row \(i)")
        }
        let c = store.clients.map(\.info)
        #expect(c[0].timezone == "Europe/Paris" && c[1].timezone == "UTC")
        #expect(c[1].licensedSeats == nil && c[2].licensedSeats == 0 && c[0].licensedSeats == 100)
    }
}

@Suite struct AmbiguousLayoutTests {
    /// A table given both as a file and as a folder of parts is refused, not loaded twice.
    @Test func tableInTwoFormsIsRefused() throws {
        let d = TestDump()
        let tmp = TempDir()
        try d.write(to: tmp.path)
        try FileManager.default.createDirectory(atPath: tmp.sub("clients"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: tmp.sub("clients.csv"), toPath: tmp.sub("clients/part-0.csv"))
        let e = try #require(throws: LoadError.self) { _ = try DumpLoader.load(folder: tmp.path) }
        #expect(e.file == "clients.csv and clients/")
        #expect(e.description.contains("one form only"))
    }
}
