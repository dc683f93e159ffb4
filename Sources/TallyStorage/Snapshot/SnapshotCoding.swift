/// Field-by-field encoding of the store's parts for snapshots: little-endian integers, strings
/// as a length and UTF-8, arrays of plain values as a count and their raw bytes (the machine's
/// layout: snapshots are read on the architecture that wrote them, little-endian 64-bit).
struct SnapshotEncoder {
    var bytes: [UInt8] = []
    /// The format written (``Snapshot/version``); an older one only for tests.
    var version = Snapshot.version

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func int(_ v: Int) { u64(UInt64(bitPattern: Int64(v))) }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func uuid(_ u: UUID128) { u64(u.high); u64(u.low) }
    mutating func day(_ d: Day) { i32(d.raw) }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            int(u.count)
            bytes.append(contentsOf: u)
        }
    }

    mutating func optString(_ s: String?) {
        bool(s != nil)
        if let s { string(s) }
    }

    mutating func optI32(_ v: Int32?) {
        bool(v != nil)
        if let v { i32(v) }
    }

    mutating func pod<T: BitwiseCopyable>(_ a: UnsafeBufferPointer<T>) {
        int(a.count)
        bytes.append(contentsOf: UnsafeRawBufferPointer(a))
    }

    mutating func pod<T: BitwiseCopyable>(_ a: [T]) { a.withUnsafeBufferPointer { pod($0) } }
}

/// Why a snapshot's section could not be decoded (after its checksum matched: a bug or a file
/// written by another build).
struct SnapshotDecodingError: Error {
    var reason: String
}

struct SnapshotDecoder {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    /// The file's format version (``Snapshot/version``).
    var version = Snapshot.version

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func take(_ n: Int) throws(SnapshotDecodingError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - at else {
            throw SnapshotDecodingError(reason: "a field of \(n) bytes runs past the end of its section at byte \(at)")
        }
        defer { at += n }
        return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)])
    }

    mutating func u8() throws(SnapshotDecodingError) -> UInt8 { try take(1)[0] }
    mutating func bool() throws(SnapshotDecodingError) -> Bool { try u8() != 0 }
    mutating func u32() throws(SnapshotDecodingError) -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
    mutating func u64() throws(SnapshotDecodingError) -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }
    mutating func int() throws(SnapshotDecodingError) -> Int { Int(Int64(bitPattern: try u64())) }
    mutating func i32() throws(SnapshotDecodingError) -> Int32 { Int32(bitPattern: try u32()) }
    mutating func uuid() throws(SnapshotDecodingError) -> UUID128 { UUID128(high: try u64(), low: try u64()) }
    mutating func day() throws(SnapshotDecodingError) -> Day { Day(raw: try i32()) }

    mutating func count() throws(SnapshotDecodingError) -> Int {
        let n = try int()
        guard n >= 0, n <= bytes.count - at else { throw SnapshotDecodingError(reason: "a count of \(n) at byte \(at - 8) is more than the section holds") }
        return n
    }

    /// A count of items that take at least `bytesEach` bytes each, refused when the section's
    /// remaining bytes cannot hold that many: so that it can be reserved as it is.
    mutating func count(bytesEach: Int) throws(SnapshotDecodingError) -> Int {
        let n = try count()
        guard n <= (bytes.count - at) / bytesEach else {
            throw SnapshotDecodingError(reason: "a count of \(n) items of \(bytesEach) bytes or more at byte \(at - 8) is more than the section holds")
        }
        return n
    }

    mutating func string() throws(SnapshotDecodingError) -> String {
        let raw = try take(try count())
        guard let s = String(validating: raw, as: UTF8.self) else { throw SnapshotDecodingError(reason: "invalid UTF-8 at byte \(at)") }
        return s
    }

    mutating func optString() throws(SnapshotDecodingError) -> String? { try bool() ? try string() : nil }
    mutating func optI32() throws(SnapshotDecodingError) -> Int32? { try bool() ? try i32() : nil }

    /// An array's count and raw bytes.
    mutating func arrayBytes<T: BitwiseCopyable>(_: T.Type) throws(SnapshotDecodingError) -> (count: Int, raw: UnsafeRawBufferPointer) {
        let n = try int()
        let size = MemoryLayout<T>.stride
        guard n >= 0, n <= (bytes.count - at) / max(1, size) else {
            throw SnapshotDecodingError(reason: "an array of \(n) values at byte \(at - 8) is more than the section holds")
        }
        return (n, try take(n * size))
    }

    mutating func pod<T: BitwiseCopyable>(_: T.Type) throws(SnapshotDecodingError) -> [T] {
        let (n, raw) = try arrayBytes(T.self)
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
            initialized = n
        }
    }

    /// The same as ``pod(_:)``, read straight into a buffer of the current client's region
    /// (``StoreMemory/current``; the heap without one) for a structure to adopt.
    mutating func frozen<T: BitwiseCopyable>(_: T.Type) throws(SnapshotDecodingError) -> Frozen<T> {
        try read(T.self, into: StoreMemory.current)
    }

    mutating func read<T: BitwiseCopyable>(_: T.Type, into region: StoreMemory?) throws(SnapshotDecodingError) -> Frozen<T> {
        let (n, raw) = try arrayBytes(T.self)
        let f = Frozen<T>(count: n, region: region)
        UnsafeMutableRawBufferPointer(f.buffer).copyMemory(from: raw)
        return f
    }

    /// Where ``transient(_:)`` reads go: the snapshot's scratch region, freed whole once every
    /// client is decoded (the heap without one).
    var scratch: StoreMemory?

    /// The same as ``pod(_:)``, for a field read once while decoding (into ``scratch``).
    mutating func transient<T: BitwiseCopyable>(_: T.Type) throws(SnapshotDecodingError) -> Frozen<T> {
        try read(T.self, into: scratch)
    }

    func end() throws(SnapshotDecodingError) {
        guard at == bytes.count else { throw SnapshotDecodingError(reason: "\(bytes.count - at) bytes left after the section's fields") }
    }
}

// MARK: - The store's parts

extension Catalog {
    func encode(_ e: inout SnapshotEncoder) {
        e.int(categories.count)
        for c in categories { e.uuid(c.id); e.string(c.name); e.bool(c.isAI) }
        e.int(vendors.count)
        for v in vendors { e.uuid(v.id); e.string(v.name) }
        e.int(applications.count)
        for a in applications {
            e.uuid(a.id); e.string(a.canonicalName); e.optString(a.logo); e.string(a.type)
            e.optI32(a.category); e.optI32(a.vendor)
        }
    }

    static func decode(_ d: inout SnapshotDecoder) throws(SnapshotDecodingError) -> Catalog {
        // Each list reserved at its count (bounded by the bytes left: an id, lengths and flags
        // an item at least): grown by appending, the application list held a third more than
        // it needed at scale M (0.3 MB of the heap, `heaptrack` of `tally load`).
        var categories: [CategoryInfo] = [], vendors: [VendorInfo] = [], apps: [CatalogAppInfo] = []
        let categoryCount = try d.count(bytesEach: 16 + 8 + 1)
        categories.reserveCapacity(categoryCount)
        for _ in 0..<categoryCount { categories.append(CategoryInfo(id: try d.uuid(), name: try d.string(), isAI: try d.bool())) }
        let vendorCount = try d.count(bytesEach: 16 + 8)
        vendors.reserveCapacity(vendorCount)
        for _ in 0..<vendorCount { vendors.append(VendorInfo(id: try d.uuid(), name: try d.string())) }
        let appCount = try d.count(bytesEach: 16 + 8 + 1 + 8 + 1 + 1)
        apps.reserveCapacity(appCount)
        for _ in 0..<appCount {
            apps.append(CatalogAppInfo(id: try d.uuid(), canonicalName: try d.string(), logo: try d.optString(), type: try d.string(),
                                       category: try d.optI32(), vendor: try d.optI32()))
        }
        return Catalog(categories: categories, vendors: vendors, applications: apps)
    }
}

extension BitmapArena {
    func encode(_ e: inout SnapshotEncoder) {
        if e.version >= 2 {
            e.bool(headerless)
        } else {
            precondition(!headerless, "format 1 has headered arenas only")
        }
        e.int(domain)
        e.pod(UnsafeBufferPointer(headers))
        e.pod(UnsafeBufferPointer(pool16))
        e.pod(UnsafeBufferPointer(pool64))
    }

    static func decode(_ d: inout SnapshotDecoder) throws(SnapshotDecodingError) -> BitmapArena {
        let headerless = d.version >= 2 ? try d.bool() : false
        let domain = try d.int()
        guard domain >= 0, domain <= 1 << 32 else { throw SnapshotDecodingError(reason: "an arena's user domain of \(domain) is implausible") }
        let frozenHeaders = try d.frozen(ContainerHeader.self)
        let frozen16 = try d.frozen(UInt16.self), frozen64 = try d.frozen(UInt64.self)
        let headers = UnsafeBufferPointer(frozenHeaders.buffer), pool16 = UnsafeBufferPointer(frozen16.buffer)
        let pool64 = UnsafeBufferPointer(frozen64.buffer)
        if headerless {
            // Its bitmaps are checked with their references (``checkReferences(_:bounds:what:)``):
            // only they say where each begins.
            guard domain <= BitmapArena.headerlessMaxDomain, headers.isEmpty, pool64.isEmpty,
                  Int(bitPattern: frozen16.buffer.baseAddress) & 7 == 0 else {
                throw SnapshotDecodingError(reason: "a headerless arena has headers, 64-bit words, or a domain past one chunk")
            }
            return BitmapArena(domain: domain, headerless: true, adopting: frozenHeaders.adopt(), pool16: frozen16.adopt(),
                               pool64: frozen64.adopt(), memory: frozenHeaders.region)
        }
        // Every container must stay inside its pool and the domain: a query never reads or
        // writes outside the arena or its scratch sets. (Checked on the container's bounds: its
        // last value, its last run.)
        let wordCount = max(1, (domain + 63) >> 6)
        let kindOffset = MemoryLayout<ContainerHeader>.offset(of: \ContainerHeader.kind)!
        for i in headers.indices {
            let kind = withUnsafeBytes(of: headers[i]) { $0[kindOffset] }
            let h = headers[i]
            let base = Int(h.key) << 16, off = Int(h.offset)
            guard base < max(domain, 1) else { throw SnapshotDecodingError(reason: "a container lies outside the user domain") }
            var ok: Bool
            switch kind {
            case ContainerKind.array.rawValue:
                ok = h.cardinality > 0 && off + Int(h.cardinality) <= pool16.count
                    && base + Int(pool16[off + Int(h.cardinality) - 1]) < domain
                // Strictly ascending: the merge and intersection kernels rely on it.
                if ok { for k in off..<(off + Int(h.cardinality) - 1) where pool16[k] >= pool16[k + 1] { ok = false; break } }
                if !ok { throw SnapshotDecodingError(reason: "container \(i): an array container is out of bounds or not sorted") }
            case ContainerKind.bitset.rawValue:
                let n = min(1024, wordCount - (Int(h.key) << 10))
                ok = n > 0 && off + n <= pool64.count
                if ok {
                    // Its count is the words' population, and no bit lies at or beyond the domain.
                    var pop = 0
                    for k in off..<(off + n) { pop &+= pool64[k].nonzeroBitCount }
                    let lastBits = (domain - base) - (n - 1) * 64
                    let tail = lastBits >= 64 ? 0 : pool64[off + n - 1] >> UInt64(lastBits)
                    ok = pop == Int(h.cardinality) && tail == 0
                }
                if !ok { throw SnapshotDecodingError(reason: "container \(i): a bitset container is out of bounds or its count is wrong") }
            case ContainerKind.run.rawValue:
                ok = off < pool16.count && Int(pool16[off]) > 0 && off + 1 + 2 * Int(pool16[off]) <= pool16.count
                if ok {
                    // Runs ascending, apart, inside 16 bits and the domain; their lengths add up to the count.
                    var total = 0, next = 0
                    for r in 0..<Int(pool16[off]) {
                        let start = Int(pool16[off + 1 + 2 * r]), length = Int(pool16[off + 2 + 2 * r])
                        if start < next || start + length > 0xFFFF || base + start + length >= domain { ok = false; break }
                        total += length + 1
                        next = start + length + 2
                    }
                    ok = ok && total == Int(h.cardinality)
                }
                if !ok { throw SnapshotDecodingError(reason: "container \(i): a run container is out of bounds, unsorted or miscounted") }
            default:
                throw SnapshotDecodingError(reason: "unknown container kind \(kind)")
            }
            guard ok else { throw SnapshotDecodingError(reason: "a container points outside its pool or domain") }
        }
        return BitmapArena(domain: domain, headerless: false, adopting: frozenHeaders.adopt(), pool16: frozen16.adopt(), pool64: frozen64.adopt(),
                           memory: frozenHeaders.region)
    }

    /// Checks the packed array `pool[a..<b]` (``BitmapArena``): as long as its count says, every
    /// difference at least 1, its padding byte (if any) zero, and its last value in the domain.
    static func checkPacked(_ pool: UnsafeMutableBufferPointer<UInt16>, _ a: Int, _ b: Int, domain: Int,
                            what: String) throws(SnapshotDecodingError) {
        let n = Int(pool[a] & 0x7FFF)
        guard n >= 2, b - a == 2 + n / 2 else { throw SnapshotDecodingError(reason: "\(what): a packed array's length is not its count's") }
        let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(pool)[(2 * a + 4)..<(2 * b)])
        var v = Int(pool[a + 1])
        for k in 0..<(n - 1) {
            guard bytes[k] > 0 else { throw SnapshotDecodingError(reason: "\(what): a packed array is not ascending") }
            v += Int(bytes[k])
        }
        guard n & 1 == 1 || bytes[n - 1] == 0 else { throw SnapshotDecodingError(reason: "\(what): a packed array's length is not its count's") }
        guard v < domain else { throw SnapshotDecodingError(reason: "\(what): a packed array lies outside the user domain") }
    }

    /// Checks bitmap references into `arena` (`bounds`: each bitmap from one start to the
    /// next). With headers: ranges inside them, container keys strictly ascending within each.
    /// Headerless: ranges inside the pool, and each one's payload — an array strictly ascending
    /// and inside the domain, or a bitset whose count is its words' and with no bit past the
    /// domain.
    static func checkReferences(_ arena: BitmapArena, bounds: [(Int, Int)], what: String) throws(SnapshotDecodingError) {
        let limit = arena.headerless ? arena.pool16.count : arena.headers.count
        for (a, b) in bounds {
            guard a >= 0, a <= b, b <= limit else {
                throw SnapshotDecodingError(reason: "\(what): a bitmap reference lies outside its arena")
            }
            if arena.headerless {
                guard a < b else { continue }
                let view = arena.view, p = arena.pool16
                if b - a < view.bitsetMin && view.isPacked(UnsafePointer(p.baseAddress! + a), b - a) {
                    try checkPacked(p, a, b, domain: arena.domain, what: what)
                } else if b - a < view.bitsetMin {
                    for k in a..<(b - 1) where p[k] >= p[k + 1] {
                        throw SnapshotDecodingError(reason: "\(what): an array bitmap is not ascending")
                    }
                    guard Int(p[b - 1]) < arena.domain else { throw SnapshotDecodingError(reason: "\(what): an array bitmap lies outside the user domain") }
                } else {
                    let W = arena.wordCount
                    guard ArenaView.bitsetWords(from: a) + 4 * W == b else { throw SnapshotDecodingError(reason: "\(what): a bitset bitmap has the wrong length") }
                    let c = view.slot(BitmapRef(start: UInt32(a), end: UInt32(b)), 0)
                    var pop = 0
                    for k in 0..<W { pop &+= c.words[k].nonzeroBitCount }
                    let lastBits = arena.domain - (W - 1) * 64
                    let tail = lastBits >= 64 ? 0 : c.words[W - 1] >> UInt64(lastBits)
                    guard pop == c.cardinality, tail == 0 else {
                        throw SnapshotDecodingError(reason: "\(what): a bitset bitmap's count is wrong or it has a bit past the user domain")
                    }
                }
            } else if b - a > 1 {
                for k in a..<(b - 1) where arena.headers[k].key >= arena.headers[k + 1].key {
                    throw SnapshotDecodingError(reason: "\(what): a bitmap's containers are not in key order")
                }
            }
        }
    }
}

extension UsageIndex {
    func encode(_ e: inout SnapshotEncoder) {
        precondition(tail == nil, "a snapshot holds clients whole (ClientStore.merged())")
        // The app slots (``appSlots``: the apps and the spare ones); the apps are the client's.
        e.day(firstDay); e.int(dayCount); e.int(rowCount); e.int(appSlots)
        e.int(categoryClasses.count)
        for c in categoryClasses { e.optI32(c) }
        e.pod(levelSizes)
        e.int(levels.count)
        for (k, arena) in levels.enumerated() {
            arena.encode(&e)
            e.pod(levelStarts[k].values)
        }
        e.pod(levelBlockCounts)
        e.bool(levelDepartmentMasks != nil)
        if let masks = levelDepartmentMasks { for m in masks { e.pod(m) } }
        e.pod(entityMajorPrefix)
        e.pod(firstSeenOffset)
        basePairs.encode(&e)
        // Version 5: the rows are the pair index's; before, month segments held them again.
        guard e.version < 5 else { return }
        let segments = monthSegments()
        e.int(segments.count)
        for s in segments {
            e.day(s.month); e.int(s.rowCount); e.int(s.encodedByteCount)
            // Version 4: the segment's codec; before, whether it was an LZ4 block (tests write
            // older versions: a deflated segment is written as LZ4 there, or stored).
            if e.version >= 4 {
                e.u8(s.codec.rawValue)
                e.pod(s.bytes)
            } else if s.codec == .deflate {
                let raw = s.encoded()!
                let lz4 = raw.withUnsafeBufferPointer { LZ4Block.compress($0) }
                e.bool(lz4 != nil)
                e.pod(lz4 ?? raw)
            } else {
                e.bool(s.codec == .lz4)
                e.pod(s.bytes)
            }
        }
    }

    /// - Parameter departments: the client's departments (they fix the words of a department mask).
    /// - Parameter users: the client's users (every arena's domain, and the pair index's users).
    static func decode(_ d: inout SnapshotDecoder, aiApps: [Bool], departments: Int, users: Int) throws(SnapshotDecodingError) -> UsageIndex {
        // The app slots: the client's apps (`aiApps`), then at most ``ClientStore/spareApps`` with no row.
        let firstDay = try d.day(), dayCount = try d.int(), rowCount = try d.int(), appSlots = try d.int()
        let appCount = aiApps.count
        var categoryClasses: [Int32?] = []
        for _ in 0..<(try d.count()) { categoryClasses.append(try d.optI32()) }
        let levelSizes = try d.pod(Int.self)
        // Level offsets go straight into the client's region; the masks and the running sums are
        // transposed from where they are read (the section, in a mapping of its own: no
        // transient array per field).
        var levels: [BitmapArena] = [], frozenStarts: [Frozen<UInt32>] = []
        for _ in 0..<(try d.count()) {
            levels.append(try BitmapArena.decode(&d))
            // Read once: the index keeps them in its own form (``LevelStarts``).
            frozenStarts.append(try d.transient(UInt32.self))
        }
        let starts = frozenStarts.map { UnsafeBufferPointer($0.buffer) }
        let blockCounts = try d.pod(Int.self)
        var masks: [UnsafeBufferPointer<UInt64>]?
        var maskReads: [Frozen<UInt64>] = []
        if try d.bool() {
            for _ in levels { maskReads.append(try d.transient(UInt64.self)) }
            masks = maskReads.map { UnsafeBufferPointer($0.buffer) }
        }
        let prefixRead = try d.transient(UInt32.self), firstSeen = try d.pod(Int32.self)
        let prefix = UnsafeBufferPointer(prefixRead.buffer)
        guard dayCount >= 1, dayCount <= 1 << 24, appSlots >= appCount, appSlots - appCount <= ClientStore.spareApps,
              categoryClasses.count <= 1 << 20 else {
            throw SnapshotDecodingError(reason: "the usage index's day or app count is implausible")
        }
        let pairs = try PairIndex.decode(&d, appCount: appCount, dayCount: dayCount, rowCount: rowCount)
        // Files of versions 1–4 hold the rows again in month segments, checked and set aside.
        var segments: [Segment] = []
        for _ in 0..<(d.version >= 5 ? 0 : try d.count()) {
            let month = try d.day(), rows = try d.int(), encodedBytes = try d.int()
            let codec: Segment.Codec
            if d.version >= 4 {
                guard let c = Segment.Codec(rawValue: try d.u8()) else { throw SnapshotDecodingError(reason: "a segment's codec is unknown") }
                codec = c
            } else {
                codec = try d.bool() ? .lz4 : .stored
            }
            segments.append(Segment(month: month, rowCount: rows, encodedByteCount: encodedBytes, codec: codec, bytes: try d.pod(UInt8.self)))
        }
        let entities = appSlots + AppClass.allCases.count + categoryClasses.count
        // The segments are decoded when the client is rebuilt (a merge, an append): checked now,
        // so that a bad one is refused with the file instead of trapping then.
        guard dayCount >= 1, dayCount <= 1 << 20, abs(Int(firstDay.raw)) < 1 << 28 else {
            throw SnapshotDecodingError(reason: "the usage index's days are implausible")
        }
        let days = firstDay...firstDay.adding(dayCount - 1)
        var segmentRows = 0
        for s in segments {
            if let why = s.problem(appCount: appCount, userCount: users, days: days) { throw SnapshotDecodingError(reason: why) }
            segmentRows += s.rowCount
        }
        guard d.version >= 5 || segmentRows == rowCount else {
            throw SnapshotDecodingError(reason: "the segments hold \(segmentRows) rows, not the index's \(rowCount)")
        }
        guard pairs.rowCount == rowCount else { throw SnapshotDecodingError(reason: "the pair index holds \(pairs.rowCount) rows, not the index's \(rowCount)") }
        let maskWords = ClientStore.departmentMaskWords(departments: departments)
        // Products checked for overflow: a changed count must be refused, not trap.
        func times(_ a: Int, _ b: Int) -> Int? {
            let (p, o) = a.multipliedReportingOverflow(by: b)
            return o || a < 0 || b < 0 ? nil : p
        }
        // Checked here, not only by the client: the range tables built below size their scratch
        // by the user domain (FuzzSnapshot: a 16 KB file claiming 738 M users asked for 2.9 GB).
        guard levels.allSatisfy({ $0.domain == users }), pairs.userStart.count == users + 1 else {
            throw SnapshotDecodingError(reason: "the usage index's users or apps are not the client's")
        }
        guard levels.count == levelSizes.count, blockCounts.count == levels.count,
              zip(starts, blockCounts).allSatisfy({ s, n in times(entities, n).map { s.count == $0 + 1 } ?? false }),
              zip(starts, levels).allSatisfy({ s, arena in s.allSatisfy { Int($0) <= (arena.headerless ? arena.pool16.count : arena.headers.count) } }),
              prefix.count == entities * (dayCount + 1), firstSeen.count == appSlots,
              masks.map({ zip($0, blockCounts).allSatisfy { m, n in times(entities, n).flatMap { times($0, maskWords) } == m.count } }) ?? true,
              dayCount >= 1, rowCount >= 0, appCount >= 0, levelSizes.first == 1,
              // Block sizes: 1 day, then each a multiple of the one before; block counts cover the days.
              zip(levelSizes.dropFirst(), levelSizes).allSatisfy({ $0 > $1 && $1 > 0 && $0 <= 1 << 24 && $0 % $1 == 0 }),
              zip(levelSizes, blockCounts).allSatisfy({ size, n in n == (dayCount + size - 1) / size }),
              firstSeen.allSatisfy({ $0 >= -1 && Int($0) < dayCount }) else {
            throw SnapshotDecodingError(reason: "the usage index's parts do not agree in size")
        }
        if let masks, !ClientStore.masksInRange(masks, words: maskWords, departments: departments) {
            throw SnapshotDecodingError(reason: "the usage index's department masks name departments the client does not have")
        }
        for (k, s) in starts.enumerated() {
            try BitmapArena.checkReferences(levels[k], bounds: (0..<(s.count - 1)).map { (Int(s[$0]), Int(s[$0 + 1])) },
                                            what: "level \(k)")
        }
        // The spare app slots hold no row: no day of theirs has a user, and none is first seen.
        for a in appCount..<appSlots where prefix[(a + 1) * (dayCount + 1) - 1] != 0 || firstSeen[a] != -1
            || starts[0][a * dayCount] != starts[0][(a + 1) * dayCount] {
            throw SnapshotDecodingError(reason: "the usage index's spare app slot \(a) holds usage")
        }
        // Running sums of per-day users (stored entity-major): each entity's never decreases.
        for e in 0..<entities {
            var previous: UInt32 = 0
            for day in 0...dayCount {
                let v = prefix[e * (dayCount + 1) + day]
                guard v >= previous else { throw SnapshotDecodingError(reason: "the per-day sums of entity \(e) decrease") }
                previous = v
            }
        }

        return UsageIndex(firstDay: firstDay, dayCount: dayCount, rowCount: rowCount, appCount: appCount, appSlots: appSlots,
                          categoryClasses: categoryClasses, levelSizes: levelSizes, levels: levels,
                          levelStarts: starts.map { LevelStarts.make($0, in: StoreMemory.current) },
                          levelDepartmentMasks: masks, departmentMaskWords: maskWords,
                          maskLaneBits: UsageIndex.maskLaneBits(departments: departments), levelBlockCounts: blockCounts, dayCardPrefix: prefix,
                          firstSeenOffset: firstSeen, pairs: pairs, aiApps: aiApps)
    }
}

extension ClientStore {
    func encode(_ e: inout SnapshotEncoder) {
        e.uuid(info.id); e.string(info.name); e.string(info.timezone)
        e.bool(info.licensedSeats != nil); e.int(info.licensedSeats ?? 0)
        e.int(users.count)
        for u in users {
            e.uuid(u.id); e.string(u.email); e.optString(u.displayName); e.bool(u.isActive); e.optString(u.role); e.optString(u.createdAt)
        }
        e.int(apps.count)
        for a in apps {
            e.uuid(a.id); e.i32(a.catalogIndex); e.bool(a.isApproved); e.bool(a.isFavorite)
            e.optI32(a.category); e.optI32(a.vendor); e.bool(a.isAI)
        }
        e.int(departments.count)
        for d in departments { e.uuid(d.id); e.string(d.name); e.optString(d.description) }
        e.pod(userDepartmentStart)
        e.pod(userDepartments)
        e.bool(userDepartmentMasks != nil)
        if let m = userDepartmentMasks { e.pod(m) }
        e.pod(members)
        membersArena.encode(&e)
        e.bool(usage != nil)
        usage?.encode(&e)
    }

    static func decode(_ d: inout SnapshotDecoder) throws(SnapshotDecodingError) -> ClientStore {
        // Its buffers in a region of its own (``StoreMemory``): freed whole with the client.
        try StoreMemory.building { () throws(SnapshotDecodingError) -> ClientStore in try decodeInRegion(&d) }
    }

    static func decodeInRegion(_ d: inout SnapshotDecoder) throws(SnapshotDecodingError) -> ClientStore {
        let id = try d.uuid(), name = try d.string(), timezone = try d.string()
        let hasSeats = try d.bool(), seats = try d.int()
        let info = ClientInfo(id: id, name: name, timezone: timezone, licensedSeats: hasSeats ? seats : nil)
        var users: [UserInfo] = [], apps: [AppInfo] = [], departments: [DepartmentInfo] = []
        for _ in 0..<(try d.count()) {
            users.append(UserInfo(id: try d.uuid(), email: try d.string(), displayName: try d.optString(), isActive: try d.bool(),
                                  role: try d.optString(), createdAt: try d.optString()))
        }
        for _ in 0..<(try d.count()) {
            apps.append(AppInfo(id: try d.uuid(), catalogIndex: try d.i32(), isApproved: try d.bool(), isFavorite: try d.bool(),
                                category: try d.optI32(), vendor: try d.optI32(), isAI: try d.bool()))
        }
        for _ in 0..<(try d.count()) {
            departments.append(DepartmentInfo(id: try d.uuid(), name: try d.string(), description: try d.optString()))
        }
        let start = try d.pod(UInt32.self), list = try d.pod(UInt32.self)
        let masks = try d.bool() ? try d.pod(UInt64.self) : nil
        let members = try d.pod(BitmapRef.self)
        let arena = try BitmapArena.decode(&d)
        let usage = try d.bool() ? try UsageIndex.decode(&d, aiApps: apps.map(\.isAI), departments: departments.count, users: users.count) : nil
        let maskWords = ClientStore.departmentMaskWords(departments: departments.count)
        guard start.count == users.count + 1, members.count == departments.count,
              masks.map({ $0.count == users.count * maskWords && ClientStore.masksInRange([$0], words: maskWords, departments: departments.count) }) ?? true,
              arena.domain == users.count else {
            throw SnapshotDecodingError(reason: "client \(id): its parts do not agree in size")
        }
        // Memberships: each user's range ascending and inside the list, each department in range.
        guard start[0] == 0, Int(start[start.count - 1]) == list.count,
              (0..<users.count).allSatisfy({ start[$0] <= start[$0 + 1] }),
              list.allSatisfy({ Int($0) < departments.count }) else {
            throw SnapshotDecodingError(reason: "client \(id): a user's departments lie outside the membership list")
        }
        try BitmapArena.checkReferences(arena, bounds: members.map { (Int($0.start), Int($0.end)) },
                                        what: "client \(id)'s department members")
        func index(_ ids: [UUID128]) -> [UUID128: UInt32] {
            var d = [UUID128: UInt32](minimumCapacity: ids.count)
            for (i, id) in ids.enumerated() { d[id] = UInt32(i) }
            return d
        }
        return ClientStore(info: info, users: users, userIndex: index(users.map(\.id)), apps: apps, appIndex: index(apps.map(\.id)),
                           departments: departments, departmentIndex: index(departments.map(\.id)),
                           userDepartmentStart: start, userDepartments: list, userDepartmentMasks: masks,
                           members: members, membersArena: arena, usage: usage)
    }
}

extension ContainerKind: BitwiseCopyable {}
extension ContainerHeader: BitwiseCopyable {}
extension BitmapRef: BitwiseCopyable {}
