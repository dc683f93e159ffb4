import Foundation

/// How a stored file is compressed, by suffix.
public enum Compression: String, Sendable {
    case none, gzip, lz4

    static func of(_ name: String) -> Compression? {
        if name.hasSuffix(".csv") { return Compression.none }
        if name.hasSuffix(".csv.gz") { return .gzip }
        if name.hasSuffix(".csv.lz4") { return .lz4 }
        return nil
    }
}

/// One file of a table.
public struct DumpFile: Sendable {
    /// Path relative to the dump folder, as errors and the manifest name it.
    public var relativePath: String
    public var absolutePath: String
    public var compression: Compression
    /// Records after the header, when the manifest gives it.
    public var expectedRows: Int?
    /// Lower-case hex SHA-256 of the stored bytes, when the manifest gives it.
    public var sha256: String?
}

/// The tables of a dump and their files, found by name or through `manifest.json`.
public struct DumpLayout: Sendable {
    public static let tables = ["clients", "catalog_categories", "catalog_vendors", "catalog_applications", "apps",
                                "departments", "users", "user_departments", "app_usage_reports"]
    /// Tables a dump may leave out (every client then has no departments).
    public static let optionalTables: Set<String> = ["departments", "user_departments"]

    public var folder: String
    public var files: [String: [DumpFile]]
    public var usesManifest: Bool

    /// Finds the tables of the dump in `folder`.
    public static func discover(folder: String) throws -> DumpLayout {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw LoadError(.missingFile, file: folder, line: 0, column: 0, expected: "a dump folder")
        }
        let manifestPath = folder + "/manifest.json"
        if fm.fileExists(atPath: manifestPath) {
            return try fromManifest(folder: folder, path: manifestPath)
        }
        var files: [String: [DumpFile]] = [:]
        for t in tables {
            var found: [DumpFile] = []
            for suffix in [".csv", ".csv.gz", ".csv.lz4"] where fm.fileExists(atPath: "\(folder)/\(t)\(suffix)") {
                found.append(DumpFile(relativePath: t + suffix, absolutePath: "\(folder)/\(t)\(suffix)",
                                      compression: Compression.of(suffix)!))
            }
            var dir: ObjCBool = false
            if fm.fileExists(atPath: "\(folder)/\(t)", isDirectory: &dir), dir.boolValue {
                let names = (try? fm.contentsOfDirectory(atPath: "\(folder)/\(t)")) ?? []
                for n in names.sorted() {
                    guard let c = Compression.of(n) else { continue }
                    found.append(DumpFile(relativePath: "\(t)/\(n)", absolutePath: "\(folder)/\(t)/\(n)", compression: c))
                }
            }
            let forms = Set(found.map { $0.relativePath.hasPrefix(t + "/") ? "\(t)/" : $0.relativePath })
            if forms.count > 1 {
                throw LoadError(.badManifest, file: forms.sorted().joined(separator: " and "), line: 0, column: 0,
                                expected: "table \(t) in one form only (one file or one folder of parts)")
            }
            if found.isEmpty && !optionalTables.contains(t) {
                throw LoadError(.missingTable, file: folder, line: 0, column: 0,
                                expected: "table \(t) as \(t).csv, \(t).csv.gz, \(t).csv.lz4 or a folder \(t)/ of part files")
            }
            files[t] = found
        }
        return DumpLayout(folder: folder, files: files, usesManifest: false)
    }

    static func fromManifest(folder: String, path: String) throws -> DumpLayout {
        func bad(_ what: String) -> LoadError {
            LoadError(.badManifest, file: "manifest.json", line: 1, column: 1, expected: what)
        }
        guard let data = FileManager.default.contents(atPath: path),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("a JSON object")
        }
        guard (json["version"] as? Int) == 1 else { throw bad("\"version\": 1") }
        guard let tables = json["tables"] as? [String: Any] else { throw bad("a \"tables\" object") }
        let meta = json["files"] as? [String: Any] ?? [:]
        var files: [String: [DumpFile]] = [:]
        for t in Self.tables {
            guard let list = tables[t] else {
                if optionalTables.contains(t) { files[t] = []; continue }
                throw LoadError(.missingTable, file: "manifest.json", line: 1, column: 1,
                                expected: "table \(t) listed under \"tables\"")
            }
            guard let names = list as? [String] else { throw bad("a list of file paths for table \(t)") }
            files[t] = try names.map { rel in
                guard let c = Compression.of(rel), !rel.contains("..") else {
                    throw bad("a .csv, .csv.gz or .csv.lz4 path inside the dump for table \(t), not \(rel)")
                }
                let m = meta[rel] as? [String: Any]
                let rows = m?["rows"] as? Int
                let sha = (m?["sha256"] as? String)?.lowercased()
                if m?["rows"] != nil && rows == nil { throw bad("an integer \"rows\" for \(rel)") }
                guard FileManager.default.fileExists(atPath: "\(folder)/\(rel)") else {
                    throw LoadError(.missingFile, file: rel, line: 0, column: 0,
                                    expected: "the file that manifest.json lists")
                }
                return DumpFile(relativePath: rel, absolutePath: "\(folder)/\(rel)", compression: c,
                                expectedRows: rows, sha256: sha)
            }
        }
        return DumpLayout(folder: folder, files: files, usesManifest: true)
    }
}
