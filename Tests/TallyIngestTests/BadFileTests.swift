import Foundation
import Testing
import TallyIngest
import TallyStorage
import TallyTestSupport

/// A bad dump that needs its files edited after writing (CSV syntax, bytes, manifest,
/// compressed streams), and the error it must give.
struct FileCase: Sendable, CustomTestStringConvertible {
    typealias AfterWrite = @Sendable (String) throws -> Void
    let name: String
    let corrupt: @Sendable (inout TestDump) throws -> (Expected, AfterWrite)
    var testDescription: String { name }
    init(_ name: String, _ corrupt: @escaping @Sendable (inout TestDump) throws -> (Expected, AfterWrite)) {
        self.name = name
        self.corrupt = corrupt
    }
}

/// Puts `marker` in users row 10, column `column`, and after writing replaces it with `bytes`.
func usersMarker(_ d: inout TestDump, column: String = "email", _ bytes: [UInt8]) -> FileCase.AfterWrite {
    d.set("users", row: 10, column, "@@MARK@@")
    return { folder in
        try replaceMarker("@@MARK@@", in: folder + "/users.csv", with: bytes)
        // No other quote in users.csv, so a stray quote really runs to the end of the file.
        let quotes = try fileBytes(folder + "/users.csv").filter { $0 == 34 }.count
        try #require(quotes == bytes.filter { $0 == 34 }.count)
    }
}

func editManifest(_ folder: String, _ edit: (inout [String: Any]) -> Void) throws {
    let url = URL(fileURLWithPath: folder + "/manifest.json")
    var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    edit(&json)
    try JSONSerialization.data(withJSONObject: json).write(to: url)
}

func setManifestRows(_ folder: String, _ file: String, _ rows: Any) throws {
    try editManifest(folder) { j in
        var files = j["files"] as! [String: Any]
        var m = files[file] as! [String: Any]
        m["rows"] = rows
        files[file] = m
        j["files"] = files
    }
}

/// Flips bit `bit` of byte `at` (negative: from the end) of a file.
func flipBit(_ path: String, at: Int, bit: Int = 0) throws {
    var b = try fileBytes(path)
    let i = at < 0 ? b.count + at : at
    b[i] ^= UInt8(1 << bit)
    try writeBytes(b, to: path)
}

func truncateFile(_ path: String, keeping fraction: Double) throws {
    let b = try fileBytes(path)
    try writeBytes(Array(b.prefix(Int(Double(b.count) * fraction))), to: path)
}

@Suite struct BadFileTests {
    static let syntaxCases: [FileCase] = [
        FileCase("unterminated quote") { d in
            (Expected(kind: .badCSV, file: "users.csv", line: 12, column: 3, mentions: ["closing quote"]),
             usersMarker(&d, Array("\"oops@example.com".utf8)))
        },
        FileCase("quote inside an unquoted field") { d in
            (Expected(kind: .badCSV, file: "users.csv", line: 12, column: 3, mentions: ["no quote inside an unquoted field"]),
             usersMarker(&d, Array("oo\"ps@example.com".utf8)))
        },
        FileCase("text after a closing quote") { d in
            (Expected(kind: .badCSV, file: "users.csv", line: 12, column: 3, mentions: ["comma or line end after a closing quote"]),
             usersMarker(&d, Array("\"oops\"@example.com".utf8)))
        },
        FileCase("bare CR in an unquoted field") { d in
            (Expected(kind: .badCSV, file: "users.csv", line: 12, column: 3, mentions: ["LF after CR"]),
             usersMarker(&d, Array("oops\r@example.com".utf8)))
        },
        FileCase("bare CR inside a field, deep in a usage part") { d in
            let r = try d.deepUsageRow()
            d.set("app_usage_reports", row: r, "id", "@@MARK@@")
            return (Expected(kind: .badCSV, file: "app_usage_reports/part-0001.csv", line: 57, column: 1,
                             mentions: ["LF after CR"]),
                    { try replaceMarker("@@MARK@@", in: $0 + "/app_usage_reports/part-0001.csv", with: Array("12\r34".utf8)) })
        },
        FileCase("invalid UTF-8 in users.display_name") { d in
            (Expected(kind: .badText, file: "users.csv", line: 12, column: 4, columnName: "display_name", mentions: ["UTF-8"]),
             usersMarker(&d, column: "display_name", [0x41, 0xC3, 0x28, 0x42]))
        },
        FileCase("invalid UTF-8 (overlong) in users.email") { d in
            (Expected(kind: .badText, file: "users.csv", line: 12, column: 3, columnName: "email", mentions: ["UTF-8"]),
             usersMarker(&d, [0x61, 0xC0, 0xAF, 0x40, 0x62]))
        },
        FileCase("invalid UTF-8 in catalog_categories.name") { d in
            d.set("catalog_categories", row: 3, "name", "@@MARK@@")
            return (Expected(kind: .badText, file: "catalog_categories.csv", line: 5, column: 2, columnName: "name",
                             mentions: ["UTF-8"]),
                    { try replaceMarker("@@MARK@@", in: $0 + "/catalog_categories.csv", with: [0xFF, 0xFE]) })
        },
    ]

    static let manifestCases: [FileCase] = [
        FileCase("manifest sha256 mismatch (plain file edited)") { d in
            d.manifest = true
            d.set("users", row: 10, "display_name", "@@MARK@@")
            let sha = DumpWriter.sha256Hex(Array(DumpWriter.csv(d["users"]).utf8))
            return (Expected(kind: .checksumMismatch, file: "users.csv", line: d["users"].rows.count + 2, column: 1,
                             mentions: ["SHA-256 \(sha)", "manifest.json"]),
                    { try replaceMarker("@@MARK@@", in: $0 + "/users.csv", with: Array("@@MARX@@".utf8)) })
        },
        FileCase("manifest sha256 mismatch (empty LZ4 frame appended: same rows, other bytes)") { d in
            d.manifest = true
            d.compressions = [.lz4]
            let rows = d.usagePart(1).count
            return (Expected(kind: .checksumMismatch, file: "app_usage_reports/part-0001.csv.lz4", line: rows + 2, column: 1,
                             mentions: ["SHA-256"]),
                    { f in
                        let p = f + "/app_usage_reports/part-0001.csv.lz4"
                        try writeBytes(try fileBytes(p) + DumpWriter.compress([], .lz4), to: p)
                    })
        },
        FileCase("manifest sha256 mismatch (empty gzip member appended)") { d in
            d.manifest = true
            d.compressions = [.gzip]
            return (Expected(kind: .checksumMismatch, file: "users.csv.gz", line: d["users"].rows.count + 2, column: 1,
                             mentions: ["SHA-256"]),
                    { f in try writeBytes(try fileBytes(f + "/users.csv.gz") + DumpWriter.compress([], .gzip), to: f + "/users.csv.gz") })
        },
        FileCase("manifest row count too high") { d in
            d.manifest = true
            let n = d["users"].rows.count
            return (Expected(kind: .rowCountMismatch, file: "users.csv", line: n + 2, column: 1,
                             mentions: ["\(n + 1) records", "manifest.json"], found: "\(n)"),
                    { try setManifestRows($0, "users.csv", n + 1) })
        },
        FileCase("manifest row count too low, for a usage part") { d in
            d.manifest = true
            let n = d.usagePart(1).count
            return (Expected(kind: .rowCountMismatch, file: "app_usage_reports/part-0001.csv", line: n + 2, column: 1,
                             mentions: ["\(n - 1) records"], found: "\(n)"),
                    { try setManifestRows($0, "app_usage_reports/part-0001.csv", n - 1) })
        },
        FileCase("manifest lists a missing file") { d in
            d.manifest = true
            return (Expected(kind: .missingFile, file: "app_usage_reports/part-0001.csv", line: 0, column: 0,
                             mentions: ["manifest.json"]),
                    { try FileManager.default.removeItem(atPath: $0 + "/app_usage_reports/part-0001.csv") })
        },
        FileCase("manifest does not list a required table") { d in
            d.manifest = true
            return (Expected(kind: .missingTable, file: "manifest.json", line: 1, column: 1, mentions: ["table apps"]),
                    { try editManifest($0) { j in j["tables"] = (j["tables"] as! [String: Any]).filter { $0.key != "apps" } } })
        },
        FileCase("manifest is not JSON") { d in
            d.manifest = true
            return (Expected(kind: .badManifest, file: "manifest.json", line: 1, column: 1, mentions: ["a JSON object"]),
                    { try writeBytes(Array("{\"version\": 1, \"tables\": {\"clients\": [".utf8), to: $0 + "/manifest.json") })
        },
        FileCase("manifest is a JSON array") { d in
            d.manifest = true
            return (Expected(kind: .badManifest, file: "manifest.json", line: 1, column: 1, mentions: ["a JSON object"]),
                    { try writeBytes(Array("[1, 2]".utf8), to: $0 + "/manifest.json") })
        },
        FileCase("manifest version 2") { d in
            d.manifest = true
            return (Expected(kind: .badManifest, file: "manifest.json", line: 1, column: 1, mentions: ["\"version\": 1"]),
                    { try editManifest($0) { $0["version"] = 2 } })
        },
        FileCase("manifest without tables") { d in
            d.manifest = true
            return (Expected(kind: .badManifest, file: "manifest.json", line: 1, column: 1, mentions: ["\"tables\" object"]),
                    { try editManifest($0) { $0["tables"] = nil } })
        },
        FileCase("manifest table given as a string") { d in
            d.manifest = true
            return (Expected(kind: .badManifest, file: "manifest.json", line: 1, column: 1,
                             mentions: ["a list of file paths for table clients"]),
                    { try editManifest($0) { j in
                        var t = j["tables"] as! [String: Any]
                        t["clients"] = "clients.csv"
                        j["tables"] = t
                    } })
        },
        FileCase("manifest rows not an integer") { d in
            d.manifest = true
            return (Expected(kind: .badManifest, file: "manifest.json", line: 1, column: 1,
                             mentions: ["integer \"rows\" for users.csv"]),
                    { try setManifestRows($0, "users.csv", "many") })
        },
        FileCase("manifest path leaving the dump") { d in
            d.manifest = true
            return (Expected(kind: .badManifest, file: "manifest.json", line: 1, column: 1, mentions: ["../users.csv"]),
                    { try editManifest($0) { j in
                        var t = j["tables"] as! [String: Any]
                        t["users"] = ["../users.csv"]
                        j["tables"] = t
                    } })
        },
        FileCase("missing required table (no manifest)") { d in
            (Expected(kind: .missingTable, file: Expected.folder, line: 0, column: 0,
                      mentions: ["table catalog_vendors", "catalog_vendors.csv.gz", "folder catalog_vendors/"]),
             { try FileManager.default.removeItem(atPath: $0 + "/catalog_vendors.csv") })
        },
    ]

    static let compressionCases: [FileCase] = [
        FileCase("truncated .csv.gz") { d in
            d.compressions = [.gzip]
            return (Expected(kind: .truncated, file: "app_usage_reports/part-0001.csv.gz", line: 1, column: 1,
                             mentions: ["gzip"]),
                    { try truncateFile($0 + "/app_usage_reports/part-0001.csv.gz", keeping: 0.6) })
        },
        FileCase("truncated .csv.gz (trailer cut)") { d in
            d.compressions = [.gzip]
            return (Expected(kind: .truncated, file: "users.csv.gz", line: 1, column: 1, mentions: ["gzip"]),
                    { f in
                        let b = try fileBytes(f + "/users.csv.gz")
                        try writeBytes(Array(b.dropLast(3)), to: f + "/users.csv.gz")
                    })
        },
        FileCase("truncated .csv.lz4") { d in
            d.compressions = [.lz4]
            return (Expected(kind: .truncated, file: "app_usage_reports/part-0001.csv.lz4", line: 1, column: 1,
                             mentions: ["LZ4"]),
                    { try truncateFile($0 + "/app_usage_reports/part-0001.csv.lz4", keeping: 0.6) })
        },
        FileCase("truncated .csv.lz4 (end mark cut)") { d in
            d.compressions = [.lz4]
            return (Expected(kind: .truncated, file: "users.csv.lz4", line: 1, column: 1, mentions: ["LZ4"]),
                    { f in
                        let b = try fileBytes(f + "/users.csv.lz4")
                        try writeBytes(Array(b.dropLast(2)), to: f + "/users.csv.lz4")
                    })
        },
        FileCase("empty .csv.gz") { d in
            d.compressions = [.gzip]
            return (Expected(kind: .truncated, file: "clients.csv.gz", line: 1, column: 1),
                    { try writeBytes([], to: $0 + "/clients.csv.gz") })
        },
        FileCase("gzip CRC bit flipped") { d in
            d.compressions = [.gzip]
            return (Expected(kind: .badCompression, file: "app_usage_reports/part-0001.csv.gz", line: 1, column: 1,
                             mentions: ["corrupt gzip"]),
                    { try flipBit($0 + "/app_usage_reports/part-0001.csv.gz", at: -8, bit: 3) })
        },
        FileCase("gzip magic bit flipped") { d in
            d.compressions = [.gzip]
            return (Expected(kind: .badCompression, file: "users.csv.gz", line: 1, column: 1, mentions: ["corrupt gzip"]),
                    { try flipBit($0 + "/users.csv.gz", at: 1, bit: 2) })
        },
        FileCase("gzip deflate data bit flipped") { d in
            d.compressions = [.gzip]
            return (Expected(kind: .badCompression, file: "app_usage_reports/part-0000.csv.gz", line: 1, column: 1,
                             mentions: ["corrupt gzip"]),
                    { try flipBit($0 + "/app_usage_reports/part-0000.csv.gz", at: 40, bit: 5) })
        },
        FileCase("LZ4 header checksum mismatch") { d in
            d.compressions = [.lz4]
            return (Expected(kind: .badCompression, file: "app_usage_reports/part-0001.csv.lz4", line: 1, column: 1,
                             mentions: ["corrupt LZ4"]),
                    { try flipBit($0 + "/app_usage_reports/part-0001.csv.lz4", at: 5, bit: 4) })
        },
        FileCase("LZ4 magic bit flipped") { d in
            d.compressions = [.lz4]
            return (Expected(kind: .badCompression, file: "users.csv.lz4", line: 1, column: 1, mentions: ["corrupt LZ4"]),
                    { try flipBit($0 + "/users.csv.lz4", at: 0, bit: 1) })
        },
        FileCase("LZ4 block size bit flipped") { d in
            d.compressions = [.lz4]
            return (Expected(kind: .badCompression, file: "app_usage_reports/part-0000.csv.lz4", line: 1, column: 1,
                             mentions: ["corrupt LZ4"]),
                    { try flipBit($0 + "/app_usage_reports/part-0000.csv.lz4", at: 9, bit: 6) })
        },
    ]

    func run(_ c: FileCase) throws {
        var bad = TestDump()
        let (expected, afterWrite) = try c.corrupt(&bad)
        var valid = TestDump()
        valid.compressions = bad.compressions
        valid.manifest = bad.manifest
        try expectRefused(valid: valid, bad: bad, afterWrite: afterWrite, expected)
    }

    @Test(arguments: syntaxCases) func badSyntax(_ c: FileCase) throws { try run(c) }
    @Test(arguments: manifestCases) func badManifestOrLayout(_ c: FileCase) throws { try run(c) }
    @Test(arguments: compressionCases) func badCompressedFile(_ c: FileCase) throws { try run(c) }

    /// Lenient mode skips bad rows, never bad files.
    @Test(arguments: compressionCases.prefix(1) + manifestCases.prefix(1) + syntaxCases.prefix(1))
    func lenientStillRefusesBadFiles(_ c: FileCase) throws {
        var bad = TestDump()
        let (expected, afterWrite) = try c.corrupt(&bad)
        var valid = TestDump()
        valid.compressions = bad.compressions
        valid.manifest = bad.manifest
        try expectRefused(valid: valid, bad: bad, afterWrite: afterWrite, expected, mode: .lenient)
    }
}
