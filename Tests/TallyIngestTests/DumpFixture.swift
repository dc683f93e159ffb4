import Foundation
import Testing
import TallyIngest
import TallyStorage
import TallyTestSupport

// Shared helpers for the ingest tests: temporary folders, an editable random dump, an in-memory
// ByteSource that hands out tiny chunks, a digest of a loaded Store, and the "refused with exactly
// this error, nothing served changes" check.

/// A fresh folder under the temporary directory, removed when released.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "tally-ingest-tests-\(getpid())-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
}

/// A ByteSource over bytes in memory, handing out at most `chunks[k % chunks.count]` bytes on read k.
final class MemorySource: ByteSource {
    let bytes: [UInt8]
    let chunks: [Int]
    var pos = 0
    var reads = 0
    var storedBytesRead: Int { pos }

    init(_ bytes: [UInt8], chunks: [Int] = [Int.max]) {
        precondition(chunks.allSatisfy { $0 > 0 })
        self.bytes = bytes
        self.chunks = chunks
    }

    convenience init(_ text: String, chunks: [Int] = [Int.max]) { self.init(Array(text.utf8), chunks: chunks) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, chunks[reads % chunks.count], bytes.count - pos)
        reads += 1
        if n > 0 {
            bytes.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + pos, byteCount: n)
            }
        }
        pos += n
        return n
    }
}

/// One CSV record as the reader returned it: the physical line it starts on and its fields (nil = NULL).
struct Record: Equatable, CustomStringConvertible {
    var line: Int
    var fields: [String?]
    init(_ line: Int, _ fields: [String?]) {
        self.line = line
        self.fields = fields
    }
    var description: String { "\(line): \(fields.map { $0.map { "\"\($0)\"" } ?? "NULL" }.joined(separator: ","))" }
}

/// Every record of `source`, read with a small initial buffer so that records cross refills.
func readRecords(_ source: any ByteSource, file: String = "t.csv", capacity: Int = 16) throws -> [Record] {
    let csv = CSVReader(source: source, file: file, initialCapacity: capacity)
    var out: [Record] = []
    while try csv.next() {
        out.append(Record(csv.line, try (0..<csv.fieldCount).map { try csv.string($0) }))
    }
    return out
}

/// What a refused dump must report.
struct Expected: Sendable {
    var kind: LoadError.Kind
    var file: String
    var line: Int
    var column: Int
    var columnName: String?
    /// Substrings of `LoadError.expected` (and so of `description`).
    var mentions: [String] = []
    /// The offending value, when the error shows one.
    var found: String?? = .none
    /// Stands for the dump folder itself in `file`.
    static let folder = "<dump folder>"
}

/// A random valid dump as editable tables, with the options to write it.
struct TestDump {
    let random: RandomDump
    var tables: [CSVTable]
    var usageParts = 2
    var compressions: [FileCompression] = [.none]
    var manifest = false

    init(seed: UInt64 = 20240229, clients: Int = 4, rowsPerClient: Int = 700) {
        random = RandomDump(seed: seed, clientCount: clients, maxRowsPerClient: rowsPerClient)
        tables = random.tables()
    }

    subscript(_ name: String) -> CSVTable {
        get { tables.first { $0.name == name }! }
        set { tables[tables.firstIndex { $0.name == name }!] = newValue }
    }

    /// 0-based index of `column` in the header of `table`.
    func index(_ table: String, _ column: String) -> Int { self[table].header.firstIndex(of: column)! }

    func value(_ table: String, row: Int, _ column: String) -> String? { self[table].rows[row][index(table, column)] }

    mutating func set(_ table: String, row: Int, _ column: String, _ value: String?) {
        let c = index(table, column)
        self[table].rows[row][c] = value
    }

    /// Row indexes of usage part `p` (DumpWriter splits rows evenly, rounding up).
    func usagePart(_ p: Int) -> Range<Int> {
        let n = self["app_usage_reports"].rows.count
        let per = (n + usageParts - 1) / usageParts
        return min(p * per, n)..<min((p + 1) * per, n)
    }

    /// Makes a usage row of the second part start on physical line 57 of its file, with three
    /// line breaks inside quoted fields of earlier rows of that part (so counting records instead
    /// of lines would be off by three). Returns the row index.
    mutating func deepUsageRow() throws -> Int {
        let part = usagePart(1)
        try #require(part.count >= 60, "the random dump is too small for a deep row")
        set("app_usage_reports", row: part.lowerBound + 3, "id", "multi\nline")       // +1 line
        set("app_usage_reports", row: part.lowerBound + 10, "id", "a\r\nb \"q\"\nc")  // +2 lines
        return part.lowerBound + 52  // line 2 + 52 + 3 = 57
    }

    /// A user (other than the row's) belonging to a different client than usage row `row`.
    func userOfAnotherClient(thanUsageRow row: Int) -> UUID128 {
        random.users.first { $0.client != random.usage[row].client }!.id
    }

    func appOfAnotherClient(thanUsageRow row: Int) -> UUID128 {
        random.apps.first { $0.client != random.usage[row].client }!.id
    }

    @discardableResult
    func write(to folder: String) throws -> [String: [String]] {
        try DumpWriter.write(tables, to: folder, usageParts: usageParts, compressions: compressions, manifest: manifest)
    }

    /// Every usage row of the random dump as `client user app day`, lower-case ids.
    var expectedUsage: Set<String> {
        Set(random.usage.map { "\($0.client) \($0.user) \($0.app) \($0.day)" })
    }
}

/// A fresh, never-seen UUID (upper case, to show case does not matter for the check either).
func freshUUID() -> String { UUID().uuidString }

/// Replaces the single occurrence of `marker` in the file at `path` with `bytes`.
func replaceMarker(_ marker: String, in path: String, with bytes: [UInt8]) throws {
    var data = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let m = Array(marker.utf8)
    var hits: [Int] = []
    if data.count >= m.count {
        for i in 0...(data.count - m.count) where data[i] == m[0] && Array(data[i..<(i + m.count)]) == m { hits.append(i) }
    }
    try #require(hits.count == 1, "marker \(marker) found \(hits.count) times in \(path)")
    data.replaceSubrange(hits[0]..<(hits[0] + m.count), with: bytes)
    try Data(data).write(to: URL(fileURLWithPath: path))
}

func fileBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
func writeBytes(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

/// Everything a loaded Store holds, as comparable text with lower-case ids.
struct StoreDigest: Equatable {
    var catalog: [String] = []
    var clients: [String] = []
    var users: Set<String> = []
    var apps: Set<String> = []
    var departments: Set<String> = []
    var memberships: Set<String> = []
    var usage: Set<String> = []
    var usageRowCount = 0

    init(_ store: Store) {
        let cat = store.catalog
        catalog += cat.categories.map { "category \($0.id) \($0.name) ai=\($0.isAI)" }
        catalog += cat.vendors.map { "vendor \($0.id) \($0.name)" }
        catalog += cat.applications.map {
            "application \($0.id) \($0.canonicalName) \($0.logo ?? "NULL") \($0.type) "
                + "\($0.category.map { cat.categories[Int($0)].id.description } ?? "NULL") "
                + "\($0.vendor.map { cat.vendors[Int($0)].id.description } ?? "NULL")"
        }
        for c in store.clients {
            let id = c.info.id
            clients.append("\(id) \(c.info.name) \(c.info.timezone) \(c.info.licensedSeats.map(String.init) ?? "NULL")")
            for u in c.users {
                users.insert("\(id) \(u.id) \(u.email) \(u.displayName ?? "NULL") \(u.isActive) \(u.role ?? "NULL") \(u.createdAt ?? "NULL")")
            }
            for a in c.apps {
                apps.insert("\(id) \(a.id) \(cat.applications[Int(a.catalogIndex)].id) approved=\(a.isApproved) fav=\(a.isFavorite) ai=\(a.isAI)")
            }
            for d in c.departments { departments.insert("\(id) \(d.id) \(d.name) \(d.description ?? "NULL")") }
            for u in c.users.indices {
                for d in c.departments(ofUser: UInt32(u)) { memberships.insert("\(c.users[u].id) \(c.departments[Int(d)].id)") }
            }
            let rows = c.storedRows()
            for i in rows.users.indices {
                usage.insert("\(id) \(c.users[Int(rows.users[i])].id) \(c.apps[Int(rows.apps[i])].id) \(Day(raw: rows.days[i]))")
            }
        }
        usageRowCount = store.usageRowCount
    }
}

/// Checks that `error` is exactly what `expected` describes.
func check(_ error: LoadError, _ expected: Expected, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(error.kind == expected.kind, "\(error)", sourceLocation: sourceLocation)
    #expect(error.file == expected.file, "\(error)", sourceLocation: sourceLocation)
    #expect(error.line == expected.line, "\(error)", sourceLocation: sourceLocation)
    #expect(error.column == expected.column, "\(error)", sourceLocation: sourceLocation)
    #expect(error.columnName == expected.columnName, "\(error)", sourceLocation: sourceLocation)
    for m in expected.mentions {
        #expect(error.expected.contains(m), "expected-text lacks \(m): \(error)", sourceLocation: sourceLocation)
    }
    #expect(error.description.contains("expected \(error.expected)"), sourceLocation: sourceLocation)
    #expect(error.description.contains(error.file), sourceLocation: sourceLocation)
    if case .some(let f) = expected.found {
        #expect(error.found == f, "\(error)", sourceLocation: sourceLocation)
    }
}

/// Loads `valid` (must succeed), then the corrupted `bad` (must be refused with exactly
/// `expected`), then `valid` again (must give the same store): a refused dump changes nothing.
@discardableResult
func expectRefused(valid: TestDump, bad: TestDump, afterWrite: (String) throws -> Void = { _ in },
                   _ expected: Expected, mode: LoadMode = .strict,
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> LoadError {
    let tmp = TempDir()
    let good = tmp.sub("valid"), broken = tmp.sub("bad")
    try valid.write(to: good)
    let (before, _) = try DumpLoader.load(folder: good)
    let digest = StoreDigest(before)
    #expect(digest.usageRowCount > 0, sourceLocation: sourceLocation)

    try bad.write(to: broken)
    try afterWrite(broken)
    let error = try #require(throws: LoadError.self, sourceLocation: sourceLocation) {
        _ = try DumpLoader.load(folder: broken, mode: mode)
    }
    var expected = expected
    if expected.file == Expected.folder { expected.file = broken }
    check(error, expected, sourceLocation: sourceLocation)

    let (after, _) = try DumpLoader.load(folder: good)
    #expect(after.usageRowCount == before.usageRowCount, sourceLocation: sourceLocation)
    #expect(StoreDigest(after) == digest, sourceLocation: sourceLocation)
    return error
}

/// A Sendable stand-in for `FileCompression`, for test arguments.
enum Codec: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case none, gzip, lz4
    var compression: FileCompression { FileCompression(rawValue: rawValue)! }
    var testDescription: String { rawValue }
}
