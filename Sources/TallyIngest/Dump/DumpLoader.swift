import Crypto
import Foundation
import TallyStorage

/// What a load read, skipped and took.
public struct LoadReport: Sendable {
    /// Records read per table (header excluded, skipped rows included).
    public var recordsByTable: [String: Int] = [:]
    /// Rows skipped in lenient mode, by reason (``LoadError/Kind`` raw value).
    public var skipped: [String: Int] = [:]
    /// The first few skipped rows, for the operator.
    public var skippedExamples: [LoadError] = []
    /// Bytes read from storage (compressed sizes for compressed files).
    public var storedBytes = 0
    public var parseSeconds = 0.0
    public var buildSeconds = 0.0
    /// Bytes of CSV text after decompression.
    public var decodedBytes = 0
    public var usageRecords: Int { recordsByTable["app_usage_reports"] ?? 0 }

    mutating func add(_ o: FileOutcome, table: String) {
        recordsByTable[table, default: 0] += o.records
        storedBytes += o.storedBytes
        decodedBytes += o.decodedBytes
        for (k, v) in o.skipped { skipped[k, default: 0] += v }
        for e in o.examples where skippedExamples.count < 20 { skippedExamples.append(e) }
    }
    public var skippedTotal: Int { skipped.values.reduce(0, +) }
}

/// A SHA-256 fed by the file reader's observer as chunks arrive.
final class RunningSHA256 {
    var h = SHA256()
}

/// What reading one file produced besides its rows.
struct FileOutcome: Sendable {
    var records = 0
    var storedBytes = 0
    var decodedBytes = 0
    var skipped: [String: Int] = [:]
    var examples: [LoadError] = []
}

/// Loads a dump folder into a new immutable ``Store``. Nothing is returned unless the whole
/// dump loaded, so a failed load never changes what is being served.
public struct DumpLoader {
    public let layout: DumpLayout
    public let mode: LoadMode
    var report = LoadReport()

    var categories: [CategoryInfo] = []
    var vendors: [VendorInfo] = []
    var applications: [CatalogAppInfo] = []
    var categoryIndex: [UUID128: Int32] = [:]
    var vendorIndex: [UUID128: Int32] = [:]
    var applicationIndex: [UUID128: Int32] = [:]
    var builders: [ClientStoreBuilder] = []
    var clientIndex = UUIDTable<Int>()
    /// Global id → (client index << 32 | dense index), to check a row's entities belong to its client.
    var appOwner = UUIDTable<UInt64>()
    var userOwner = UUIDTable<UInt64>()
    var departmentOwner = UUIDTable<UInt64>()

    /// Bytes and rows read so far, for whoever shows progress.
    public var progress: LoadProgress?
    /// Overrides ``ClientStoreBuilder/extrasMinRows`` (tests use 0 to build every class and mask).
    public var extrasMinRows: Int?
    /// Overrides ``ClientStoreBuilder/headerlessArenas`` (tests build either layout).
    public var headerlessArenas: Bool?
    /// Overrides ``ClientStoreBuilder/packedArrays`` (tests build with and without packed arrays).
    public var packedArrays: Bool?
    /// Overrides ``ClientStoreBuilder/levelSizes`` (tests build the large clients' levels on small data).
    public var levelSizes: [Int]?
    /// Overrides ``ClientStoreBuilder/narrowRunningSums``.
    public var narrowRunningSums = true
    /// Overrides ``ClientStoreBuilder/checkpointRunningSums``.
    public var checkpointRunningSums = true
    /// Overrides ``ClientStoreBuilder/rangeCountsMinRowsPerEntry``.
    public var rangeCountsMinRowsPerEntry: Int?
    /// Overrides ``ClientStoreBuilder/spareAppsMinRows`` (a writer's tail threshold).
    public var spareAppsMinRows = ClientStore.spareAppsMinRows

    /// The activity dates accepted (`--date-range`); a usage row outside is a load error.
    public let dates: DateWindow

    public init(layout: DumpLayout, mode: LoadMode = .strict, dates: DateWindow = .standard()) {
        self.layout = layout
        self.mode = mode
        self.dates = dates
    }

    /// Loads the dump in `folder`. `progress`, when given, is made for the dump's layout and
    /// handed over before reading starts, so that the caller can show it while this runs.
    public static func load(folder: String, mode: LoadMode = .strict, dates: DateWindow = .standard(),
                            spareAppsMinRows: Int = ClientStore.spareAppsMinRows,
                            progress: ((LoadProgress) -> Void)? = nil) throws -> (Store, LoadReport) {
        try load(layout: try DumpLayout.discover(folder: folder), mode: mode, dates: dates, spareAppsMinRows: spareAppsMinRows,
                 progress: progress)
    }

    /// Loads a dump whose layout was found already (a remote one: ``DumpLayout/discover(storage:)``).
    public static func load(layout: DumpLayout, mode: LoadMode = .strict, dates: DateWindow = .standard(),
                            spareAppsMinRows: Int = ClientStore.spareAppsMinRows,
                            progress: ((LoadProgress) -> Void)? = nil) throws -> (Store, LoadReport) {
        var loader = DumpLoader(layout: layout, mode: mode, dates: dates)
        loader.spareAppsMinRows = spareAppsMinRows
        if let progress {
            let p = LoadProgress(layout: layout)
            loader.progress = p
            progress(p)
        }
        return try loader.run()
    }

    public mutating func run() throws -> (Store, LoadReport) {
        let clock = ContinuousClock()
        let t0 = clock.now
        try loadCatalog()
        try loadClients()
        try loadApps()
        try loadDepartments()
        try loadUsers()
        try loadMemberships()
        try loadUsage()
        let t1 = clock.now
        let catalog = Catalog(categories: categories, vendors: vendors, applications: applications)
        let clients = builders.map { $0.build() }
        let store = Store(catalog: catalog, clients: clients)
        let t2 = clock.now
        report.parseSeconds = (t1 - t0).seconds
        report.buildSeconds = (t2 - t1).seconds
        return (store, report)
    }

    // MARK: - Reading files

    /// Reads every file of `table` in order; see ``readFile(_:table:required:mode:state:_:)``.
    mutating func read(_ table: String, required: [String],
                       _ prepare: (TableReader) -> (inout DumpLoader) throws -> Void) throws {
        for file in layout.files[table] ?? [] {
            var outcome = FileOutcome()
            try Self.readFile(file, storage: layout.storage, table: table, required: required, mode: mode, progress: progress,
                              outcome: &outcome, state: &self, prepare)
            report.add(outcome, table: table)
        }
    }

    /// Opens `file`, reads its header, runs `prepare` once (it resolves the columns, so nothing
    /// is looked up by name per row) and the row work it returns for every record, then checks the
    /// manifest's row count and checksum. In lenient mode a row's ``LoadError`` is counted in
    /// `outcome` and the row skipped.
    static func readFile<State>(_ file: DumpFile, storage: DumpStorage? = nil, table: String, required: [String], mode: LoadMode,
                                progress: LoadProgress? = nil, outcome: inout FileOutcome, state: inout State,
                                _ prepare: (TableReader) -> (inout State) throws -> Void) throws {
        let src: ObservableByteSource = try storage?.open(file.relativePath)
            ?? FileSource(path: file.absolutePath, displayName: file.relativePath)
        let hasher = RunningSHA256()
        let hashes = file.sha256 != nil
        if hashes || progress != nil {
            src.observer = {
                if hashes { hasher.h.update(bufferPointer: $0) }
                progress?.add(bytes: $0.count)
            }
        }
        let source: any ByteSource
        do {
            // Local files stay concrete (the decompressors specialize on them); remote streams are boxed.
            source = try (src as? FileSource).map { try Self.decompressing($0, file.compression) }
                ?? Self.decompressing(SourceBox(src), file.compression)
        } catch let e as DecompressionError {
            throw LoadError(.badCompression, file: file.relativePath, line: 0, column: 0, expected: e.message)
        }
        let csv = CSVReader(source: source, file: file.relativePath)
        let reader = try TableReader(csv: csv, required: required)
        let row = prepare(reader)
        var counted = 0
        defer { progress?.add(rows: reader.records - counted) }
        while try reader.next() {
            if let progress, reader.records - counted >= 65_536 {
                progress.add(rows: reader.records - counted)
                counted = reader.records
            }
            do {
                try reader.checkWidth()
                try row(&state)
            } catch let e as LoadError where mode == .lenient {
                outcome.skipped[e.kind.rawValue, default: 0] += 1
                if outcome.examples.count < 20 { outcome.examples.append(e) }
            }
        }
        outcome.records += reader.records
        outcome.storedBytes += csv.storedBytesRead
        outcome.decodedBytes += csv.bytesConsumed
        if let expected = file.expectedRows, expected != reader.records {
            throw LoadError(.rowCountMismatch, file: file.relativePath, line: csv.line, column: 1,
                            expected: "\(expected) records as manifest.json says", found: "\(reader.records)")
        }
        if let sha = file.sha256 {
            let got = hasher.h.finalize().map { String(format: "%02x", $0) }.joined()
            if got != sha {
                throw LoadError(.checksumMismatch, file: file.relativePath, line: csv.line, column: 1,
                                expected: "SHA-256 \(sha) as manifest.json says", found: got)
            }
        }
    }

    /// `raw` read through the decompressor its file's suffix names.
    static func decompressing<S: ByteSource>(_ raw: S, _ compression: Compression) throws -> any ByteSource {
        switch compression {
        case .none: return raw
        case .gzip: return try GzipSource(raw)
        case .lz4: return try LZ4FrameSource(raw)
        }
    }

    func duplicate(_ r: TableReader, _ c: Column, _ what: String) -> LoadError {
        LoadError(.duplicateId, file: r.csv.file, line: r.line, column: c.index + 1, columnName: c.name,
                  expected: "a \(what) id not seen before", found: r.csv.display(c.index))
    }

    func unknown(_ kind: LoadError.Kind, _ r: TableReader, _ c: Column, _ expected: String) -> LoadError {
        LoadError(kind, file: r.csv.file, line: r.line, column: c.index + 1, columnName: c.name,
                  expected: expected, found: r.csv.display(c.index))
    }

    // MARK: - Tables

    mutating func loadCatalog() throws {
        try read("catalog_categories", required: ["id", "name", "is_ai"]) { r in { l in
            let id = r.required("id")
            let u = try r.uuid(id)
            let info = CategoryInfo(id: u, name: try r.text(r.required("name")), isAI: try r.bool(r.required("is_ai")))
            guard l.categoryIndex[u] == nil else { throw l.duplicate(r, id, "category") }
            l.categoryIndex[u] = Int32(l.categories.count)
            l.categories.append(info)
        } }
        try read("catalog_vendors", required: ["id", "name"]) { r in { l in
            let id = r.required("id")
            let u = try r.uuid(id)
            let info = VendorInfo(id: u, name: try r.text(r.required("name")))
            guard l.vendorIndex[u] == nil else { throw l.duplicate(r, id, "vendor") }
            l.vendorIndex[u] = Int32(l.vendors.count)
            l.vendors.append(info)
        } }
        try read("catalog_applications", required: ["id", "canonical_name", "type"]) { r in { l in
            let id = r.required("id")
            let u = try r.uuid(id)
            var category: Int32?, vendor: Int32?
            if let c = r.column("category_id"), let cu = try r.optionalUUID(c) {
                guard let ci = l.categoryIndex[cu] else {
                    throw l.unknown(.unknownReference, r, c, "the id of a catalog category")
                }
                category = ci
            }
            if let c = r.column("vendor_id"), let vu = try r.optionalUUID(c) {
                guard let vi = l.vendorIndex[vu] else { throw l.unknown(.unknownReference, r, c, "the id of a catalog vendor") }
                vendor = vi
            }
            let info = CatalogAppInfo(id: u, canonicalName: try r.text(r.required("canonical_name")),
                                      logo: try r.optionalText(r.column("logo")), type: try r.text(r.required("type")),
                                      category: category, vendor: vendor)
            guard l.applicationIndex[u] == nil else { throw l.duplicate(r, id, "catalog application") }
            l.applicationIndex[u] = Int32(l.applications.count)
            l.applications.append(info)
        } }
    }

    mutating func loadClients() throws {
        try read("clients", required: ["id", "name"]) { r in { l in
            let id = r.required("id")
            let u = try r.uuid(id)
            let info = ClientInfo(id: u, name: try r.text(r.required("name")),
                                  timezone: try r.optionalText(r.column("timezone")) ?? "UTC",
                                  licensedSeats: try r.optionalInt(r.column("licensed_seats")))
            guard l.clientIndex[u] == nil else { throw l.duplicate(r, id, "client") }
            l.clientIndex[u] = l.builders.count
            var b = ClientStoreBuilder(info: info)
            if let m = l.extrasMinRows { b.extrasMinRows = m }
            b.headerlessArenas = l.headerlessArenas
            b.packedArrays = l.packedArrays
            if let sizes = l.levelSizes { b.levelSizes = sizes }
            b.narrowRunningSums = l.narrowRunningSums
            b.checkpointRunningSums = l.checkpointRunningSums
            b.rangeCountsMinRowsPerEntry = l.rangeCountsMinRowsPerEntry
            b.spareAppsMinRows = l.spareAppsMinRows
            l.builders.append(b)
        } }
    }

    func client(_ r: TableReader, _ c: Column) throws -> Int {
        let u = try r.uuid(c)
        guard let i = clientIndex[u] else { throw unknown(.unknownClient, r, c, "the id of a client in clients") }
        return i
    }

    mutating func loadApps() throws {
        try read("apps", required: ["id", "client_id", "catalog_application_id", "is_approved", "is_favorite"]) { r in { l in
            let id = r.required("id")
            let u = try r.uuid(id)
            let c = try l.client(r, r.required("client_id"))
            let cc = r.required("catalog_application_id")
            guard let ci = l.applicationIndex[try r.uuid(cc)] else {
                throw l.unknown(.unknownReference, r, cc, "the id of a catalog application")
            }
            let cat = l.applications[Int(ci)]
            let info = AppInfo(id: u, catalogIndex: ci, isApproved: try r.bool(r.required("is_approved")),
                               isFavorite: try r.bool(r.required("is_favorite")), category: cat.category,
                               vendor: cat.vendor, isAI: cat.category.map { l.categories[Int($0)].isAI } ?? false)
            guard l.appOwner[u] == nil, let dense = l.builders[c].addApp(info) else { throw l.duplicate(r, id, "app") }
            l.appOwner[u] = UInt64(c) << 32 | UInt64(dense)
        } }
    }

    mutating func loadDepartments() throws {
        try read("departments", required: ["id", "client_id", "name"]) { r in { l in
            let id = r.required("id")
            let u = try r.uuid(id)
            let c = try l.client(r, r.required("client_id"))
            let info = DepartmentInfo(id: u, name: try r.text(r.required("name")),
                                      description: try r.optionalText(r.column("description")))
            guard l.departmentOwner[u] == nil, let dense = l.builders[c].addDepartment(info) else {
                throw l.duplicate(r, id, "department")
            }
            l.departmentOwner[u] = UInt64(c) << 32 | UInt64(dense)
        } }
    }

    mutating func loadUsers() throws {
        try read("users", required: ["id", "client_id", "email", "is_active"]) { r in { l in
            let id = r.required("id")
            let u = try r.uuid(id)
            let c = try l.client(r, r.required("client_id"))
            let info = UserInfo(id: u, email: try r.text(r.required("email")),
                                displayName: try r.optionalText(r.column("display_name")),
                                isActive: try r.bool(r.required("is_active")), role: try r.optionalText(r.column("role")),
                                createdAt: try r.optionalTimestamp(r.column("created_at")))
            guard l.userOwner[u] == nil, let dense = l.builders[c].addUser(info) else { throw l.duplicate(r, id, "user") }
            l.userOwner[u] = UInt64(c) << 32 | UInt64(dense)
        } }
    }

    mutating func loadMemberships() throws {
        try read("user_departments", required: ["user_id", "department_id"]) { r in { l in
            let uc = r.required("user_id"), dc = r.required("department_id")
            guard let user = l.userOwner[try r.uuid(uc)] else { throw l.unknown(.unknownUser, r, uc, "the id of a user") }
            guard let dept = l.departmentOwner[try r.uuid(dc)] else {
                throw l.unknown(.unknownDepartment, r, dc, "the id of a department")
            }
            guard user >> 32 == dept >> 32 else {
                throw l.unknown(.wrongClient, r, dc, "a department of the user's own client")
            }
            l.builders[Int(user >> 32)].addMembership(user: UInt32(truncatingIfNeeded: user),
                                                      department: UInt32(truncatingIfNeeded: dept))
        } }
    }

    /// Usage part files are parsed in parallel, each into its own per-client row buffers,
    /// against the (now read-only) id tables; the buffers are then appended in file order. A
    /// strict load reports the error of the first failing file in that order.
    mutating func loadUsage() throws {
        let files = layout.files["app_usage_reports"] ?? []
        let shared = UsageLookup(clientIndex: clientIndex, userOwner: userOwner, appOwner: appOwner,
                                 clientCount: builders.count, dates: dates)
        let results = ParallelResults(count: files.count)
        let mode = self.mode, progress = self.progress, storage = layout.storage
        @Sendable func parse(_ i: Int) {
            var state = UsageBuffers(lookup: shared)
            var outcome = FileOutcome()
            do {
                try Self.readFile(files[i], storage: storage, table: "app_usage_reports", required: UsageBuffers.columns, mode: mode,
                                  progress: progress, outcome: &outcome, state: &state, UsageBuffers.prepare)
                results.set(i, .success((state, outcome)))
            } catch {
                results.set(i, .failure(error))
            }
        }
        if storage == nil {
            DispatchQueue.concurrentPerform(iterations: files.count) { parse($0) }
        } else {
            // Remote parts spend much of their time waiting on the network: up to 8 download
            // and parse at once, each parsed as its bytes arrive.
            let next = NextIndex()
            let group = DispatchGroup()
            for _ in 0..<min(8, files.count) {
                group.enter()
                Thread {
                    while let i = next.take(below: files.count) { parse(i) }
                    group.leave()
                }.start()
            }
            group.wait()
        }
        for i in 0..<files.count {
            let (state, outcome) = try results.get(i).get()
            report.add(outcome, table: "app_usage_reports")
            for c in 0..<builders.count where !state.users[c].isEmpty {
                builders[c].appendUsage(users: state.users[c], apps: state.apps[c], days: state.days[c])
            }
        }
    }
}

/// The id tables a usage row is checked against, shared read-only by the parsing threads.
struct UsageLookup: Sendable {
    let clientIndex: UUIDTable<Int>
    let userOwner: UUIDTable<UInt64>
    let appOwner: UUIDTable<UInt64>
    let clientCount: Int
    let dates: DateWindow
}

/// One parsing thread's rows, per client.
struct UsageBuffers: Sendable {
    static let columns = ["client_id", "user_id", "application_id", "activity_date"]
    let lookup: UsageLookup
    var users: [[UInt32]]
    var apps: [[UInt32]]
    var days: [[Int32]]

    init(lookup: UsageLookup) {
        self.lookup = lookup
        users = Array(repeating: [], count: lookup.clientCount)
        apps = users
        days = Array(repeating: [], count: lookup.clientCount)
    }

    static func prepare(_ r: TableReader) -> (inout UsageBuffers) throws -> Void {
        let cc = r.required("client_id"), uc = r.required("user_id")
        let ac = r.required("application_id"), dc = r.required("activity_date")
        func fail(_ kind: LoadError.Kind, _ c: Column, _ expected: String) -> LoadError {
            LoadError(kind, file: r.csv.file, line: r.line, column: c.index + 1, columnName: c.name,
                      expected: expected, found: r.csv.display(c.index))
        }
        return { s in
            guard let c = s.lookup.clientIndex[try r.uuid(cc)] else {
                throw fail(.unknownClient, cc, "the id of a client in clients")
            }
            guard let user = s.lookup.userOwner[try r.uuid(uc)] else { throw fail(.unknownUser, uc, "the id of a user in users") }
            guard let app = s.lookup.appOwner[try r.uuid(ac)] else { throw fail(.unknownApp, ac, "the id of an app in apps") }
            guard user >> 32 == UInt64(c) else {
                throw fail(.wrongClient, uc, "a user of client \(r.csv.display(cc.index))")
            }
            guard app >> 32 == UInt64(c) else { throw fail(.wrongClient, ac, "an app of client \(r.csv.display(cc.index))") }
            let day = try r.day(dc)
            guard s.lookup.dates.contains(day) else {
                throw fail(.dateOutOfRange, dc, "an activity_date from \(s.lookup.dates.first) to \(s.lookup.dates.last) (--date-range)")
            }
            s.users[c].append(UInt32(truncatingIfNeeded: user))
            s.apps[c].append(UInt32(truncatingIfNeeded: app))
            s.days[c].append(day.raw)
        }
    }
}

/// A remote stream as a concrete ``ByteSource``.
final class SourceBox: ByteSource {
    var inner: any ObservableByteSource
    init(_ inner: any ObservableByteSource) { self.inner = inner }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { try inner.read(into: buffer) }
    var storedBytesRead: Int { inner.storedBytesRead }
}

/// Hands out 0, 1, 2, … to worker threads.
final class NextIndex: @unchecked Sendable {
    let lock = NSLock()
    var value = 0
    func take(below n: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < n else { return nil }
        value += 1
        return value - 1
    }
}

/// Per-file results written by parallel workers, each to its own slot.
final class ParallelResults: @unchecked Sendable {
    private var slots: [Result<(UsageBuffers, FileOutcome), Error>?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<(UsageBuffers, FileOutcome), Error>) {
        lock.lock()
        slots[i] = r
        lock.unlock()
    }
    func get(_ i: Int) -> Result<(UsageBuffers, FileOutcome), Error> { slots[i]! }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
