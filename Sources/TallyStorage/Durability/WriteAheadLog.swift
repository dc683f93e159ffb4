import CZlib
import Foundation
import Synchronization

/// One acknowledged batch of appended usage rows, as the log keeps it: ids, not dense indexes,
/// so that it replays onto any later version of the data.
public struct AppendBatch: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var user: UUID128
        public var app: UUID128
        public var day: Day
        public init(user: UUID128, app: UUID128, day: Day) {
            self.user = user
            self.app = app
            self.day = day
        }
    }

    public var client: UUID128
    public var rows: [Row]
    /// Directory rows that arrived with the events (upserts by id), applied before them.
    public var directory: DirectoryRows
    /// The rows as the dense indexes of the client version they were checked against, when the
    /// parse found every id held (``DenseEvents``): not logged, not compared.
    public var dense: DenseEvents?

    public init(client: UUID128, rows: [Row], directory: DirectoryRows = DirectoryRows(), dense: DenseEvents? = nil) {
        self.client = client
        self.rows = rows
        self.directory = directory
        self.dense = dense
    }

    /// The same client, rows and directory rows (``dense`` is how they were read, not what they are).
    public static func == (a: AppendBatch, b: AppendBatch) -> Bool {
        a.client == b.client && a.rows == b.rows && a.directory == b.directory
    }
}

/// Directory rows of an appended batch, by id (the dump's tables, SPEC §1): new or changed
/// catalog applications, departments, users and apps of the batch's client, and memberships
/// added. Applied in that order, before the batch's events.
public struct DirectoryRows: Sendable, Equatable {
    public struct CatalogApp: Sendable, Equatable {
        public var id: UUID128
        public var canonicalName: String
        public var logo: String?
        public var type: String
        public var category: UUID128?
        public var vendor: UUID128?
        public init(id: UUID128, canonicalName: String, logo: String?, type: String, category: UUID128?, vendor: UUID128?) {
            self.id = id
            self.canonicalName = canonicalName
            self.logo = logo
            self.type = type
            self.category = category
            self.vendor = vendor
        }
    }

    public struct App: Sendable, Equatable {
        public var id: UUID128
        public var catalogApp: UUID128
        public var isApproved: Bool
        public var isFavorite: Bool
        public init(id: UUID128, catalogApp: UUID128, isApproved: Bool, isFavorite: Bool) {
            self.id = id
            self.catalogApp = catalogApp
            self.isApproved = isApproved
            self.isFavorite = isFavorite
        }
    }

    public struct Membership: Sendable, Equatable, Hashable {
        public var user: UUID128
        public var department: UUID128
        public init(user: UUID128, department: UUID128) {
            self.user = user
            self.department = department
        }
    }

    public var catalogApps: [CatalogApp] = []
    public var departments: [DepartmentInfo] = []
    public var users: [UserInfo] = []
    public var apps: [App] = []
    public var memberships: [Membership] = []

    public init() {}

    public var isEmpty: Bool {
        catalogApps.isEmpty && departments.isEmpty && users.isEmpty && apps.isEmpty && memberships.isEmpty
    }

    /// Rows in all five tables.
    public var count: Int { catalogApps.count + departments.count + users.count + apps.count + memberships.count }
}

/// The write-ahead log of appended usage rows (SPEC §6): a batch is acknowledged only once its
/// record is on disk (`fdatasync`); on restart the records after the snapshot's position are
/// replayed.
///
/// File: `"TALLYWAL"`, `u32` version (2), `u32` 0, `u64` base (the sequence of the last record
/// dropped by a truncation: records continue from base + 1); then records, each `u32` payload length,
/// `u32` CRC-32 of the sequence and payload, `u64` sequence (1, 2, 3, …), payload: client id
/// (16 bytes), `u32` rows, rows of user id (16), app id (16), `i32` day (days since 1970-01-01);
/// then, only when the batch has directory rows (records of version-2 logs), the directory section:
/// `u32` count then rows, for catalog applications (id, name, logo?, type, category?, vendor?),
/// departments (id, name, description?), users (id, email, display name?, `u8` active, role?,
/// created at?) apps (id, catalog application id, `u8` approved, `u8` favorite) and memberships
/// (user id, department id). Ids are 16 bytes; a string is `u32` length and UTF-8, an absent
/// one `u32` 0xFFFFFFFF; an optional id is `u8` 0, or 1 and the id. Integers little-endian.
/// A version-1 log (events only) is read as it is and its header raised to 2 on opening, so
/// that a version-1 binary refuses the log rather than cutting off the records it cannot read. A record cut short by a crash (or failing its checksum) ends the
/// log: opening truncates the file there, so the next record follows the last whole one.
///
/// Not thread-safe: one writer (``StoreWriter``'s commit thread, in TallyWrite) owns it.
public final class WriteAheadLog {
    public let path: String
    var fd: Int32
    /// The last sequence number written (0 when the log is empty).
    public private(set) var lastSequence: UInt64
    /// How many whole records the log held when it was opened. The records themselves are not
    /// kept in memory: ``readRecords(after:)`` reads them from the file when data is loaded and
    /// they must be replayed onto it (kept until the next snapshot, they grew the server by
    /// 17 MiB over 100,000 appended events — docs/BENCHMARKS.md, "A soak").
    public private(set) var recoveredCount: Int
    /// Bytes dropped from the end when the log was opened (a torn record).
    public private(set) var droppedBytes: Int
    /// The sequence of the last record a truncation dropped (the header's base): data that holds
    /// less than this cannot be completed from the log.
    public private(set) var baseSequence: UInt64 = 0
    /// The last sequence known to be on disk.
    public private(set) var durableSequence: UInt64 = 0
    /// Set when a write or `fdatasync` failed: the log takes nothing more until the process
    /// restarts (after a failed `fdatasync`, what the kernel holds of the file is unknown —
    /// PostgreSQL stops for the same reason). The records before it are intact.
    public private(set) var failure: Failure?

    static let magic = Array("TALLYWAL".utf8)
    static let headerSize = 24
    /// The largest base a log may start from (and a truncation may reach): far beyond any real
    /// log, and far enough below `UInt64.max` that the next sequence can always be counted. A
    /// header claiming more is damaged, and refused rather than trapping on the next append.
    public static let maxBase: UInt64 = 1 << 62

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens (creating if needed) and recovers the log.
    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "\(path): cannot open the write-ahead log: \(String(cString: strerror(errno)))") }
        lastSequence = 0
        recoveredCount = 0
        droppedBytes = 0
        // On a failed recovery `deinit` closes the file (closing it here too would close a
        // descriptor number another thread may have been given since).
        try recover()
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Closes the file (at shutdown, after the last write). Nothing may be written after.
    public func closeFile() {
        if fd >= 0 {
            _ = Glibc.close(fd)
            fd = -1
        }
    }

    func recover() throws {
        let data = try contents()
        let size = data.count
        if size == 0 {
            try writeAll(Self.header(base: 0))
            try sync()
            syncDirectory()
            noteSize()
            return
        }
        guard size >= Self.headerSize, Array(data[0..<8]) == Self.magic else {
            throw Failure(description: "\(path): not a Tally write-ahead log (no TALLYWAL header)")
        }
        let version: UInt32 = read(data, 8)
        guard version == 1 || version == 2 else {
            throw Failure(description: "\(path): write-ahead log version \(version) is not supported")
        }
        lastSequence = read(data, 16)
        baseSequence = lastSequence
        guard lastSequence <= Self.maxBase else {
            throw Failure(description: "\(path): the write-ahead log's base sequence \(lastSequence) is implausible (the header is damaged)")
        }
        let (at, last, count) = Self.scan(data, base: lastSequence) { _, _ in }
        lastSequence = last
        recoveredCount = count
        droppedBytes = size - at
        if droppedBytes > 0 {
            guard ftruncate(fd, off_t(at)) == 0 else { throw Failure(description: "\(path): cannot truncate a torn record") }
            try sync()
        }
        if version == 1 {
            // Raise the header: records with directory rows may follow, which version 1 cannot read.
            let v = le(UInt32(2))
            guard pwrite(fd, v, 4, 8) == 4 else { throw Failure(description: "\(path): cannot update the log's header") }
            try sync()
        }
        lseek(fd, off_t(at), SEEK_SET)
        durableSequence = lastSequence
        noteSize()
    }

    /// Walks the whole records of a log file's bytes `data` (header included) whose sequences
    /// follow `base` one by one, handing each decoded record to `body`; stops at the first torn,
    /// damaged or out-of-order record. Returns where the last whole record ends, its sequence
    /// (`base` if none) and how many there were.
    static func scan(_ data: [UInt8], base: UInt64,
                     _ body: (UInt64, AppendBatch) -> Void) -> (end: Int, last: UInt64, count: Int) {
        var at = Self.headerSize, last = base, count = 0
        let size = data.count
        while size - at >= 16 {
            let length = Int(read(data, at) as UInt32)
            let sum: UInt32 = read(data, at + 4)
            guard length <= size - at - 16 else { break }
            let payload = Array(data[(at + 8)..<(at + 16 + length)])
            guard Self.crc(payload) == sum else { break }
            let sequence: UInt64 = read(data, at + 8)
            guard sequence == last + 1, let batch = Self.decode(Array(payload[8...])) else { break }
            body(sequence, batch)
            last = sequence
            count += 1
            at += 16 + length
        }
        return (at, last, count)
    }

    /// The log's records with a sequence above `sequence`, in order, read from the file (the
    /// whole records: those the writer has made durable). For the writer's thread only, like
    /// every other method; the file position is left where the next record goes.
    public func readRecords(after sequence: UInt64 = 0) throws -> [(sequence: UInt64, batch: AppendBatch)] {
        let data = try contents()
        guard data.count >= Self.headerSize, Array(data[0..<8]) == Self.magic else {
            throw Failure(description: "\(path): the write-ahead log lost its header")
        }
        var out: [(sequence: UInt64, batch: AppendBatch)] = []
        let (_, last, _) = Self.scan(data, base: read(data, 16) as UInt64) { s, b in
            if s > sequence { out.append((s, b)) }
        }
        guard last == durableSequence else {
            throw Failure(description: "\(path): the write-ahead log ends at sequence \(last), but \(durableSequence) was made durable")
        }
        return out
    }

    /// The whole file, read without moving the file position (where the next record goes).
    func contents() throws -> [UInt8] {
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0 else { throw Failure(description: "\(path): cannot read the write-ahead log (closed)") }
        let size = Int(st.st_size)
        var data = [UInt8](repeating: 0, count: size)
        var off = 0
        while off < size {
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + off, size - off, off_t(off)) }
            guard n > 0 else { throw Failure(description: "\(path): cannot read the write-ahead log: \(String(cString: strerror(errno)))") }
            off += n
        }
        return data
    }

    /// Encodes one record (the sequence is the next one).
    public func record(_ batch: AppendBatch) -> (sequence: UInt64, bytes: [UInt8]) {
        let sequence = lastSequence + 1
        lastSequence = sequence
        var payload = le(sequence)
        payload += le(batch.client.high) + le(batch.client.low) + le(UInt32(batch.rows.count))
        payload.reserveCapacity(payload.count + batch.rows.count * 36)
        // Appended in place: with an array made per value and per `+` here, `record` had 5.5% of
        // the commit thread's `perf` samples in a trickle of 1,000-event batches (2026-12-04).
        for r in batch.rows {
            appendLE(r.user.high, to: &payload)
            appendLE(r.user.low, to: &payload)
            appendLE(r.app.high, to: &payload)
            appendLE(r.app.low, to: &payload)
            appendLE(UInt32(bitPattern: r.day.raw), to: &payload)
        }
        if !batch.directory.isEmpty { Self.encode(batch.directory, into: &payload) }
        return (sequence, le(UInt32(payload.count - 8)) + le(Self.crc(payload)) + payload)
    }

    /// The log file's size in bytes, as of the writer's last write, truncation or recovery
    /// (readable from any thread: the metrics scrape reads it while the writer may be replacing
    /// the file).
    public var byteCount: Int { size.load(ordering: .relaxed) }
    let size = Atomic<Int>(0)

    func noteSize() {
        var st = stat()
        size.store(fstat(fd, &st) == 0 ? Int(st.st_size) : 0, ordering: .relaxed)
    }

    /// Writes encoded records (from ``record(_:)``) and makes them durable before returning. On a
    /// failure the file is cut back to where the records began (so that a record written in part
    /// cannot end the log before later ones at the next start, nor a refused record be
    /// replayed), the sequence is rolled back to the last durable record, and the log keeps the
    /// ``failure``: it refuses every later write.
    public func write(_ bytes: [UInt8]) throws {
        if let failure { throw failure }
        let start = lseek(fd, 0, SEEK_CUR)
        do {
            try writeAll(bytes)
            try sync()
            durableSequence = lastSequence
            noteSize()
        } catch let error as Failure {
            if start >= 0 && ftruncate(fd, start) == 0 && fdatasync(fd) == 0 { lseek(fd, start, SEEK_SET) }
            noteSize()
            lastSequence = durableSequence
            failure = Failure(description: "\(error.description); the write-ahead log takes no more appends until the server restarts")
            throw error
        }
    }

    static func header(base: UInt64) -> [UInt8] { magic + le(UInt32(2)) + le(UInt32(0)) + le(base) }

    /// Drops every record up to `sequence` (held by a snapshot now): the others are copied to a
    /// new file whose header records the new base, synced, renamed over the log, and the
    /// directory synced. Later records continue after the larger of the two.
    public func truncate(through sequence: UInt64) throws {
        guard sequence <= Self.maxBase else {
            throw Failure(description: "\(path): cannot truncate through sequence \(sequence) (at most \(Self.maxBase))")
        }
        let data = try contents()
        let size = data.count
        let base = max(sequence, read(data, 16) as UInt64)
        var keep = Self.header(base: base)
        var at = Self.headerSize
        while size - at >= 16 {
            let length = Int(read(data, at) as UInt32)
            let s: UInt64 = read(data, at + 8)
            if s > sequence { keep += data[at..<(at + 16 + length)] }
            at += 16 + length
        }
        let temporary = path + ".rewrite"
        let t = open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard t >= 0 else { throw Failure(description: "\(temporary): cannot create: \(String(cString: strerror(errno)))") }
        var off = 0
        while off < keep.count {
            let n = keep[off...].withUnsafeBytes { Foundation.write(t, $0.baseAddress, $0.count) }
            guard n > 0 else { close(t); throw Failure(description: "\(temporary): write failed") }
            off += n
        }
        guard fsync(t) == 0, rename(temporary, path) == 0 else {
            close(t)
            throw Failure(description: "\(path): cannot replace the log: \(String(cString: strerror(errno)))")
        }
        close(fd)
        fd = t
        lseek(fd, 0, SEEK_END)
        syncDirectory()
        lastSequence = max(lastSequence, sequence)
        durableSequence = max(durableSequence, sequence)
        baseSequence = base
        noteSize()
    }

    /// Tests only: the next write stops after this many bytes and fails, as on a full disk.
    var failWriteAfter: Int?

    func writeAll(_ bytes: [UInt8]) throws {
        if let limit = failWriteAfter {
            failWriteAfter = nil
            let n = bytes.prefix(limit).withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            throw Failure(description: "\(path): write failed after \(n) bytes: No space left on device (injected)")
        }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "\(path): write failed: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    func sync() throws {
        guard fdatasync(fd) == 0 else { throw Failure(description: "\(path): fdatasync failed: \(String(cString: strerror(errno)))") }
    }

    func syncDirectory() { Self.syncDirectory(of: path) }

    /// Makes a rename or creation in `path`'s directory durable.
    public static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let d = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { _ = fsync(d); close(d) }
    }

    static func encode(_ d: DirectoryRows, into p: inout [UInt8]) {
        func id(_ u: UUID128) { p += le(u.high) + le(u.low) }
        func optionalID(_ u: UUID128?) {
            if let u { p.append(1); id(u) } else { p.append(0) }
        }
        func text(_ s: String?) {
            guard let s else { p += le(UInt32.max); return }
            let b = Array(s.utf8)
            p += le(UInt32(b.count)) + b
        }
        p += le(UInt32(d.catalogApps.count))
        for a in d.catalogApps { id(a.id); text(a.canonicalName); text(a.logo); text(a.type); optionalID(a.category); optionalID(a.vendor) }
        p += le(UInt32(d.departments.count))
        for x in d.departments { id(x.id); text(x.name); text(x.description) }
        p += le(UInt32(d.users.count))
        for u in d.users { id(u.id); text(u.email); text(u.displayName); p.append(u.isActive ? 1 : 0); text(u.role); text(u.createdAt) }
        p += le(UInt32(d.apps.count))
        for a in d.apps { id(a.id); id(a.catalogApp); p.append(a.isApproved ? 1 : 0); p.append(a.isFavorite ? 1 : 0) }
        p += le(UInt32(d.memberships.count))
        for m in d.memberships { id(m.user); id(m.department) }
    }

    /// Reads a directory section from `p[at...]` to its end; `nil` if it is not one exactly.
    static func decodeDirectory(_ p: [UInt8], at start: Int) -> DirectoryRows? {
        var at = start
        func has(_ n: Int) -> Bool { n >= 0 && p.count - at >= n }
        func u32() -> UInt32? {
            guard has(4) else { return nil }
            defer { at += 4 }
            return read(p, at)
        }
        func byte() -> UInt8? {
            guard has(1) else { return nil }
            defer { at += 1 }
            return p[at]
        }
        func flag() -> Bool? { byte().flatMap { $0 <= 1 ? $0 == 1 : nil } }
        func id() -> UUID128? {
            guard has(16) else { return nil }
            defer { at += 16 }
            return UUID128(high: read(p, at), low: read(p, at + 8))
        }
        func optionalID() -> UUID128?? {
            guard let f = flag() else { return nil }
            return f ? id().map { .some($0) } : .some(nil)
        }
        func text() -> String?? {
            guard let n = u32() else { return nil }
            if n == .max { return .some(nil) }
            guard has(Int(n)), let s = String(validating: p[at..<(at + Int(n))], as: UTF8.self) else { return nil }
            at += Int(n)
            return .some(s)
        }
        func required() -> String? { text().flatMap { $0 } }
        /// A count no larger than the bytes left could hold (each row takes at least `least` bytes).
        func count(_ least: Int) -> Int? { u32().flatMap { n in Int(n) <= (p.count - at) / least ? Int(n) : nil } }
        var d = DirectoryRows()
        guard let nc = count(16 + 4 + 4 + 4 + 1 + 1) else { return nil }
        for _ in 0..<nc {
            guard let i = id(), let name = required(), let logo = text(), let type = required(), let c = optionalID(), let v = optionalID()
            else { return nil }
            d.catalogApps.append(.init(id: i, canonicalName: name, logo: logo, type: type, category: c, vendor: v))
        }
        guard let nd = count(16 + 4 + 4) else { return nil }
        for _ in 0..<nd {
            guard let i = id(), let name = required(), let description = text() else { return nil }
            d.departments.append(DepartmentInfo(id: i, name: name, description: description))
        }
        guard let nu = count(16 + 4 + 4 + 1 + 4 + 4) else { return nil }
        for _ in 0..<nu {
            guard let i = id(), let email = required(), let display = text(), let active = flag(), let role = text(), let created = text()
            else { return nil }
            d.users.append(UserInfo(id: i, email: email, displayName: display, isActive: active, role: role, createdAt: created))
        }
        guard let na = count(16 + 16 + 2) else { return nil }
        for _ in 0..<na {
            guard let i = id(), let c = id(), let approved = flag(), let favorite = flag() else { return nil }
            d.apps.append(.init(id: i, catalogApp: c, isApproved: approved, isFavorite: favorite))
        }
        guard let nm = count(32) else { return nil }
        for _ in 0..<nm {
            guard let u = id(), let dep = id() else { return nil }
            d.memberships.append(.init(user: u, department: dep))
        }
        return at == p.count && !d.isEmpty ? d : nil
    }

    static func decode(_ p: [UInt8]) -> AppendBatch? {
        guard p.count >= 20 else { return nil }
        let client = UUID128(high: read(p, 0), low: read(p, 8))
        let n = Int(read(p, 16) as UInt32)
        guard n <= (p.count - 20) / 36 else { return nil }
        var directory = DirectoryRows()
        if p.count != 20 + 36 * n {
            guard let d = decodeDirectory(p, at: 20 + 36 * n) else { return nil }
            directory = d
        }
        var rows: [AppendBatch.Row] = []
        rows.reserveCapacity(n)
        for i in 0..<n {
            let o = 20 + 36 * i
            rows.append(AppendBatch.Row(user: UUID128(high: read(p, o), low: read(p, o + 8)),
                                        app: UUID128(high: read(p, o + 16), low: read(p, o + 24)),
                                        day: Day(raw: Int32(bitPattern: read(p, o + 32)))))
        }
        return AppendBatch(client: client, rows: rows, directory: directory)
    }

    static func crc(_ b: [UInt8]) -> UInt32 {
        b.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress, uInt($0.count))) }
    }
}

@inline(__always) func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Appends `v`'s little-endian bytes to `out`.
@inline(__always) func appendLE<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

@inline(__always) func read<T: FixedWidthInteger>(_ b: [UInt8], _ at: Int) -> T {
    b.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
}
