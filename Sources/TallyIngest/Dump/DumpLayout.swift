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
    /// Stored size, when the listing gives it (remote dumps).
    public var size: Int?
}

/// A stream of stored bytes whose chunks can be watched as they are read (hashing, progress).
public protocol ObservableByteSource: AnyObject, ByteSource {
    var observer: ((UnsafeRawBufferPointer) -> Void)? { get set }
}

extension FileSource: ObservableByteSource {}

/// Where a remote dump's files come from (object storage, a web server). Local folders are read
/// directly.
public protocol DumpStorage: Sendable {
    /// The dump's location, as errors name it (`s3://bucket/prefix/`).
    var location: String { get }
    /// Every file under the dump, by path relative to it, with its size; `nil` when the storage
    /// cannot list (a web server: the dump then needs a manifest).
    func list() throws -> [String: Int]?
    /// A small file whole (the manifest), or `nil` when it does not exist.
    func fetch(_ relativePath: String) throws -> [UInt8]?
    /// A file as a stream, read as it arrives.
    func open(_ relativePath: String) throws -> ObservableByteSource
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
    /// Remote storage the files are read from; `nil` for a local folder.
    public var storage: DumpStorage?

    /// Finds the tables of the dump in `folder`.
    public static func discover(folder: String) throws -> DumpLayout {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw LoadError(.missingFile, file: folder, line: 0, column: 0, expected: "a dump folder")
        }
        let manifestPath = folder + "/manifest.json"
        if fm.fileExists(atPath: manifestPath) {
            guard let data = fm.contents(atPath: manifestPath) else {
                throw LoadError(.io, file: "manifest.json", line: 0, column: 0, expected: "a readable file")
            }
            return try fromManifest(Array(data), location: folder, exists: { fm.fileExists(atPath: "\(folder)/\($0)") })
        }
        // The names a layout can use: top-level files and one level inside table folders.
        var names = Set<String>()
        for t in tables {
            for suffix in [".csv", ".csv.gz", ".csv.lz4"] where fm.fileExists(atPath: "\(folder)/\(t)\(suffix)") {
                names.insert(t + suffix)
            }
            var dir: ObjCBool = false
            if fm.fileExists(atPath: "\(folder)/\(t)", isDirectory: &dir), dir.boolValue {
                for n in (try? fm.contentsOfDirectory(atPath: "\(folder)/\(t)")) ?? [] { names.insert("\(t)/\(n)") }
            }
        }
        return try fromNames(names, sizes: [:], location: folder)
    }

    /// Finds the tables of a remote dump: through its manifest when it has one (required when
    /// the storage cannot list), else by the names listed.
    public static func discover(storage: DumpStorage) throws -> DumpLayout {
        let listed = try storage.list()
        if listed == nil || listed?["manifest.json"] != nil {
            guard let manifest = try storage.fetch("manifest.json") else {
                throw LoadError(.missingFile, file: storage.location + "manifest.json", line: 0, column: 0,
                                expected: "a manifest.json (a dump that cannot be listed is read through its manifest)")
            }
            var layout = try fromManifest(manifest, location: storage.location,
                                          exists: { name in listed.map { $0[name] != nil } ?? true })
            layout.storage = storage
            for (t, list) in layout.files { layout.files[t] = list.map { var f = $0; f.size = listed?[f.relativePath]; return f } }
            return layout
        }
        var layout = try fromNames(Set(listed!.keys), sizes: listed!, location: storage.location)
        layout.storage = storage
        return layout
    }

    /// A layout from the names found under a dump (relative paths; `sizes` when a listing gave
    /// them): each table as one file `<table>.csv[.gz|.lz4]` or a folder `<table>/` of part files,
    /// not both.
    static func fromNames(_ names: Set<String>, sizes: [String: Int], location: String) throws -> DumpLayout {
        let separator = location.hasSuffix("/") ? "" : "/"
        var files: [String: [DumpFile]] = [:]
        for t in tables {
            var found: [DumpFile] = []
            for suffix in [".csv", ".csv.gz", ".csv.lz4"] where names.contains(t + suffix) {
                found.append(DumpFile(relativePath: t + suffix, absolutePath: location + separator + t + suffix,
                                      compression: Compression.of(suffix)!, size: sizes[t + suffix]))
            }
            for n in names.filter({ $0.hasPrefix(t + "/") }).sorted() {
                let leaf = String(n.dropFirst(t.count + 1))
                guard !leaf.contains("/"), let c = Compression.of(leaf) else { continue }
                found.append(DumpFile(relativePath: n, absolutePath: location + separator + n, compression: c, size: sizes[n]))
            }
            let forms = Set(found.map { $0.relativePath.hasPrefix(t + "/") ? "\(t)/" : $0.relativePath })
            if forms.count > 1 {
                throw LoadError(.badManifest, file: forms.sorted().joined(separator: " and "), line: 0, column: 0,
                                expected: "table \(t) in one form only (one file or one folder of parts)")
            }
            if found.isEmpty && !optionalTables.contains(t) {
                throw LoadError(.missingTable, file: location, line: 0, column: 0,
                                expected: "table \(t) as \(t).csv, \(t).csv.gz, \(t).csv.lz4 or a folder \(t)/ of part files")
            }
            files[t] = found
        }
        return DumpLayout(folder: location, files: files, usesManifest: false)
    }

    /// A layout from `manifest.json`'s bytes; `exists` says whether a listed file is there.
    static func fromManifest(_ data: [UInt8], location: String, exists: (String) -> Bool) throws -> DumpLayout {
        func bad(_ what: String) -> LoadError {
            LoadError(.badManifest, file: "manifest.json", line: 1, column: 1, expected: what)
        }
        guard let json = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw bad("a JSON object")
        }
        guard (json["version"] as? Int) == 1 else { throw bad("\"version\": 1") }
        guard let tables = json["tables"] as? [String: Any] else { throw bad("a \"tables\" object") }
        let meta = json["files"] as? [String: Any] ?? [:]
        let separator = location.hasSuffix("/") ? "" : "/"
        var files: [String: [DumpFile]] = [:]
        for t in Self.tables {
            guard let list = tables[t] else {
                if optionalTables.contains(t) { files[t] = []; continue }
                throw LoadError(.missingTable, file: "manifest.json", line: 1, column: 1,
                                expected: "table \(t) listed under \"tables\"")
            }
            guard let names = list as? [String] else { throw bad("a list of file paths for table \(t)") }
            files[t] = try names.map { rel in
                guard let c = Compression.of(rel), !rel.contains(".."), !rel.hasPrefix("/") else {
                    throw bad("a .csv, .csv.gz or .csv.lz4 path inside the dump for table \(t), not \(rel)")
                }
                let m = meta[rel] as? [String: Any]
                let rows = m?["rows"] as? Int
                let sha = (m?["sha256"] as? String)?.lowercased()
                if m?["rows"] != nil && rows == nil { throw bad("an integer \"rows\" for \(rel)") }
                guard exists(rel) else {
                    throw LoadError(.missingFile, file: rel, line: 0, column: 0,
                                    expected: "the file that manifest.json lists")
                }
                return DumpFile(relativePath: rel, absolutePath: location + separator + rel, compression: c,
                                expectedRows: rows, sha256: sha)
            }
        }
        return DumpLayout(folder: location, files: files, usesManifest: true)
    }
}
