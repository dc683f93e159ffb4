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
    public var usageRecords: Int { recordsByTable["app_usage_reports"] ?? 0 }
    public var skippedTotal: Int { skipped.values.reduce(0, +) }
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
    var clientIndex: [UUID128: Int] = [:]
    /// Global id → (client index << 32 | dense index), to check a row's entities belong to its client.
    var appOwner: [UUID128: UInt64] = [:]
    var userOwner: [UUID128: UInt64] = [:]
    var departmentOwner: [UUID128: UInt64] = [:]

    public init(layout: DumpLayout, mode: LoadMode = .strict) {
        self.layout = layout
        self.mode = mode
    }

    /// Loads the dump in `folder`.
    public static func load(folder: String, mode: LoadMode = .strict) throws -> (Store, LoadReport) {
        var loader = DumpLoader(layout: try DumpLayout.discover(folder: folder), mode: mode)
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

    /// Opens `file`, reads its header, calls `row` for every record, then checks the manifest's
    /// row count and checksum.
    mutating func read(_ table: String, required: [String],
                       _ row: (inout DumpLoader, TableReader) throws -> Void) throws {
        for file in layout.files[table] ?? [] {
            let src = try FileSource(path: file.absolutePath, displayName: file.relativePath)
            final class Hasher { var h = SHA256() }
            let hasher = Hasher()
            if file.sha256 != nil {
                src.observer = { hasher.h.update(bufferPointer: $0) }
            }
            let source: any ByteSource
            do {
                switch file.compression {
                case .none: source = src
                case .gzip: source = try GzipSource(src)
                case .lz4: source = try LZ4FrameSource(src)
                }
            } catch let e as DecompressionError {
                throw LoadError(.badCompression, file: file.relativePath, line: 0, column: 0, expected: e.message)
            }
            let csv = CSVReader(source: source, file: file.relativePath)
            let reader = try TableReader(csv: csv, required: required)
            while try reader.next() {
                do {
                    try row(&self, reader)
                } catch let e as LoadError where mode == .lenient {
                    report.skipped[e.kind.rawValue, default: 0] += 1
                    if report.skippedExamples.count < 20 { report.skippedExamples.append(e) }
                }
            }
            report.recordsByTable[table, default: 0] += reader.records
            report.storedBytes += csv.storedBytesRead
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
        try read("catalog_categories", required: ["id", "name", "is_ai"]) { l, r in
            let id = r.required("id")
            let u = try r.uuid(id)
            let info = CategoryInfo(id: u, name: try r.text(r.required("name")), isAI: try r.bool(r.required("is_ai")))
            guard l.categoryIndex[u] == nil else { throw l.duplicate(r, id, "category") }
            l.categoryIndex[u] = Int32(l.categories.count)
            l.categories.append(info)
        }
        try read("catalog_vendors", required: ["id", "name"]) { l, r in
            let id = r.required("id")
            let u = try r.uuid(id)
            let info = VendorInfo(id: u, name: try r.text(r.required("name")))
            guard l.vendorIndex[u] == nil else { throw l.duplicate(r, id, "vendor") }
            l.vendorIndex[u] = Int32(l.vendors.count)
            l.vendors.append(info)
        }
        try read("catalog_applications", required: ["id", "canonical_name", "type"]) { l, r in
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
        }
    }

    mutating func loadClients() throws {
        try read("clients", required: ["id", "name"]) { l, r in
            let id = r.required("id")
            let u = try r.uuid(id)
            let info = ClientInfo(id: u, name: try r.text(r.required("name")),
                                  timezone: try r.optionalText(r.column("timezone")) ?? "UTC",
                                  licensedSeats: try r.optionalInt(r.column("licensed_seats")))
            guard l.clientIndex[u] == nil else { throw l.duplicate(r, id, "client") }
            l.clientIndex[u] = l.builders.count
            l.builders.append(ClientStoreBuilder(info: info))
        }
    }

    func client(_ r: TableReader, _ c: Column) throws -> Int {
        let u = try r.uuid(c)
        guard let i = clientIndex[u] else { throw unknown(.unknownClient, r, c, "the id of a client in clients") }
        return i
    }

    mutating func loadApps() throws {
        try read("apps", required: ["id", "client_id", "catalog_application_id", "is_approved", "is_favorite"]) { l, r in
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
        }
    }

    mutating func loadDepartments() throws {
        try read("departments", required: ["id", "client_id", "name"]) { l, r in
            let id = r.required("id")
            let u = try r.uuid(id)
            let c = try l.client(r, r.required("client_id"))
            let info = DepartmentInfo(id: u, name: try r.text(r.required("name")),
                                      description: try r.optionalText(r.column("description")))
            guard l.departmentOwner[u] == nil, let dense = l.builders[c].addDepartment(info) else {
                throw l.duplicate(r, id, "department")
            }
            l.departmentOwner[u] = UInt64(c) << 32 | UInt64(dense)
        }
    }

    mutating func loadUsers() throws {
        try read("users", required: ["id", "client_id", "email", "is_active"]) { l, r in
            let id = r.required("id")
            let u = try r.uuid(id)
            let c = try l.client(r, r.required("client_id"))
            let info = UserInfo(id: u, email: try r.text(r.required("email")),
                                displayName: try r.optionalText(r.column("display_name")),
                                isActive: try r.bool(r.required("is_active")), role: try r.optionalText(r.column("role")),
                                createdAt: try r.optionalTimestamp(r.column("created_at")))
            guard l.userOwner[u] == nil, let dense = l.builders[c].addUser(info) else { throw l.duplicate(r, id, "user") }
            l.userOwner[u] = UInt64(c) << 32 | UInt64(dense)
        }
    }

    mutating func loadMemberships() throws {
        try read("user_departments", required: ["user_id", "department_id"]) { l, r in
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
        }
    }

    mutating func loadUsage() throws {
        let cols = ["client_id", "user_id", "application_id", "activity_date"]
        try read("app_usage_reports", required: cols) { l, r in
            let cc = r.required("client_id"), uc = r.required("user_id")
            let ac = r.required("application_id"), dc = r.required("activity_date")
            let c = try l.client(r, cc)
            guard let user = l.userOwner[try r.uuid(uc)] else {
                throw l.unknown(.unknownUser, r, uc, "the id of a user in users")
            }
            guard let app = l.appOwner[try r.uuid(ac)] else {
                throw l.unknown(.unknownApp, r, ac, "the id of an app in apps")
            }
            guard user >> 32 == UInt64(c) else { throw l.unknown(.wrongClient, r, uc, "a user of client \(r.csv.display(cc.index))") }
            guard app >> 32 == UInt64(c) else { throw l.unknown(.wrongClient, r, ac, "an app of client \(r.csv.display(cc.index))") }
            let day = try r.day(dc)
            l.builders[c].addUsage(user: UInt32(truncatingIfNeeded: user), app: UInt32(truncatingIfNeeded: app), day: day)
        }
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
