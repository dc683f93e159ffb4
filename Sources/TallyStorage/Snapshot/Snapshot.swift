import CZlib
import Dispatch
import Foundation

/// Native snapshots (SPEC §6): the built store written as it is held — arenas, level offsets,
/// pair index — so that loading is reading, checking and decompressing, with
/// no parsing and no index building.
///
/// Layout (integers little-endian):
/// ```
/// header   "TALLYSNP"  u32 version (5; 1 to 4 are read too)  u32 flags (0)  u64 sections  u64 usage rows  u64 write-ahead-log
///          sequence held  u32 crc32 of the 40 bytes before
/// section  u32 kind (1 catalog, 2 client)  u32 chunks  u64 raw bytes  u32 crc32 of the 16 bytes before
///   chunk  u32 raw bytes  u32 stored bytes  u32 crc32 of the stored bytes  u32 crc32 of the 12 bytes before
///          stored bytes (an LZ4 block when stored < raw, else the raw bytes)
/// trailer  "TALLYEND"  u64 file length
/// ```
/// Every byte is covered by a checksum or checked against the layout, so a flipped byte or a
/// truncated file is refused with the offset and the part it hit.
public enum Snapshot {
    /// 2: an arena starts with its layout (``BitmapArena/headerless``). 3: headerless arenas of
    /// at most 32,768 users may hold packed arrays (``BitmapArena``); the layout is version 2's.
    /// 4: each column segment states its codec (``Segment/Codec``: deflate, LZ4 or stored)
    /// where it said whether it was LZ4. 5: no column segments; the pair index holds the rows.
    /// Files of versions 1 (every arena with headers), 2, 3 and 4 are read as they are; their
    /// segments are checked and set aside.
    public static let version: UInt32 = 5
    static let readableVersions: ClosedRange<UInt32> = 1...5
    static let magic = Array("TALLYSNP".utf8), endMagic = Array("TALLYEND".utf8)
    static let chunkSize = 4 << 20

    public struct Report: Sendable {
        public var bytes: Int
        public var rawBytes: Int
        public var usageRows: Int
        public var sections: Int
    }

    /// Writes `store` to `path` (through a temporary file, synced, then renamed: a crash leaves
    /// the old file or the new one, never half of one).
    @discardableResult
    public static func write(_ store: Store, to path: String) throws -> Report {
        let sections = encodeSections(store)
        let file = assemble(sections, usageRows: store.usageRowCount, walSequence: store.walSequence)
        let temporary = path + ".partial-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw SnapshotError(path: path, offset: nil, reason: "cannot create \(temporary)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        do {
            try handle.write(contentsOf: file)
            try handle.synchronize()
            try handle.close()
            guard rename(temporary, path) == 0 else {
                throw SnapshotError(path: path, offset: nil, reason: "cannot rename the new snapshot into place: \(String(cString: strerror(errno)))")
            }
            // The rename itself made durable: the write-ahead log is truncated right after a
            // snapshot, and a crash must not leave the old file with the log already cut.
            WriteAheadLog.syncDirectory(of: path)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return Report(bytes: file.count, rawBytes: sections.reduce(0) { $0 + $1.bytes.count }, usageRows: store.usageRowCount,
                      sections: sections.count)
    }

    /// The catalog's section, then one per client, as raw (uncompressed) bytes.
    /// - Parameter version: the format to write (tests write versions 1 and 2 to check they are
    ///   still read: 1 of a store with headers, 2 of one without packed arrays).
    static func encodeSections(_ store: Store, version: UInt32 = Snapshot.version) -> [(kind: UInt32, bytes: [UInt8])] {
        var sections: [(kind: UInt32, bytes: [UInt8])] = []
        var e = SnapshotEncoder()
        e.version = version
        store.catalog.encode(&e)
        sections.append((1, e.bytes))
        let clients = store.clients
        let encoded = concurrentMap(clients.count) { i in
            var e = SnapshotEncoder()
            e.version = version
            // A client with a tail is stored whole, its tail's rows in its base (a rebuild, on
            // the snapshot's thread): the format has one index per client.
            clients[i].merged().encode(&e)
            return e.bytes
        }
        for b in encoded { sections.append((2, b)) }
        return sections
    }

    /// The file: header, sections cut into chunks compressed in parallel, trailer.
    static func assemble(_ sections: [(kind: UInt32, bytes: [UInt8])], usageRows: Int, walSequence: UInt64,
                         version: UInt32 = Snapshot.version) -> [UInt8] {

        // Chunks, compressed in parallel.
        var chunks: [(section: Int, range: Range<Int>)] = []
        for (s, sec) in sections.enumerated() {
            var at = 0
            repeat {
                chunks.append((s, at..<min(sec.bytes.count, at + chunkSize)))
                at += chunkSize
            } while at < sec.bytes.count
        }
        let stored = concurrentMap(chunks.count) { i in
            let c = chunks[i]
            return sections[c.section].bytes.withUnsafeBufferPointer { b in
                let raw = UnsafeBufferPointer(rebasing: b[c.range])
                return LZ4Block.compress(raw) ?? Array(raw)  // incompressible chunks are stored as they are
            }
        }

        var file: [UInt8] = []
        file.reserveCapacity(stored.reduce(64) { $0 + $1.count + 16 } + sections.count * 20)
        var h = SnapshotEncoder()
        h.bytes = magic
        h.u32(version); h.u32(0); h.int(sections.count); h.int(usageRows); h.u64(walSequence)
        h.u32(crc(h.bytes))
        file += h.bytes
        var next = 0
        for (s, sec) in sections.enumerated() {
            let mine = chunks.indices.filter { chunks[$0].section == s }
            var sh = SnapshotEncoder()
            sh.u32(sec.kind); sh.u32(UInt32(mine.count)); sh.int(sec.bytes.count)
            sh.u32(crc(sh.bytes))
            file += sh.bytes
            for i in mine {
                precondition(i == next)
                next += 1
                var ch = SnapshotEncoder()
                ch.u32(UInt32(chunks[i].range.count)); ch.u32(UInt32(stored[i].count)); ch.u32(crc(stored[i]))
                ch.u32(crc(ch.bytes))
                file += ch.bytes
                file += stored[i]
            }
        }
        var t = SnapshotEncoder()
        t.bytes = endMagic
        t.int(file.count + 16)
        file += t.bytes
        return file
    }

    /// Reads a snapshot; chunks are checked and decompressed, and clients decoded, on every core.
    public static func read(path: String) throws -> Store {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SnapshotError(path: path, offset: nil, reason: "cannot read the file")
        }
        return try data.withUnsafeBytes { try read(bytes: $0, path: path) }
    }

    /// Reads a snapshot held in memory (downloaded); `name` is how errors name it.
    public static func read(bytes: [UInt8], name: String) throws -> Store {
        try bytes.withUnsafeBytes { try read(bytes: $0, path: name) }
    }

    /// Whether the file starts like a snapshot (to tell one from a dump folder).
    public static func looksLikeSnapshot(path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path), let head = try? h.read(upToCount: 8) else { return false }
        return Array(head) == magic
    }

    static func read(bytes: UnsafeRawBufferPointer, path: String) throws -> Store {
        @Sendable func fail(_ at: Int?, _ reason: String) -> SnapshotError { SnapshotError(path: path, offset: at, reason: reason) }
        guard bytes.count >= 44, Array(bytes[0..<8]) == magic else {
            throw fail(0, bytes.count >= 8 && Array(bytes[0..<8]) == magic ? "the file ends inside its header: it is truncated"
                       : "not a Tally snapshot (no TALLYSNP header)")
        }
        var d = SnapshotDecoder(bytes)
        _ = try? d.take(8)
        let version = try d.u32(), _ = try d.u32(), sectionCount = try d.int(), _ = try d.int(), walSequence = try d.u64()
        guard try d.u32() == crc(UnsafeRawBufferPointer(rebasing: bytes[0..<40])) else { throw fail(40, "the header's checksum does not match: the file is damaged") }
        guard Self.readableVersions.contains(version) else {
            throw fail(8, "snapshot format version \(version); this build reads versions \(Self.readableVersions.lowerBound)–\(Self.readableVersions.upperBound)")
        }
        guard sectionCount >= 1, sectionCount < 1 << 24 else { throw fail(16, "implausible section count \(sectionCount)") }
        guard walSequence <= WriteAheadLog.maxBase else { throw fail(32, "implausible write-ahead-log sequence \(walSequence)") }

        struct Chunk { var section: Int; var rawAt: Int; var raw: Int; var storedAt: Int; var stored: Int; var crc: UInt32; var headerAt: Int }
        var kinds: [UInt32] = [], rawSizes: [Int] = [], chunks: [Chunk] = []
        for s in 0..<sectionCount {
            let at = d.at
            guard bytes.count - at >= 20 else { throw fail(at, "the file ends inside section \(s + 1) of \(sectionCount): it is truncated") }
            let kind = try d.u32(), count = Int(try d.u32()), raw = try d.int()
            guard try d.u32() == crc(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + 16)])) else {
                throw fail(at, "section \(s + 1): its header's checksum does not match: the file is damaged")
            }
            guard kind == (s == 0 ? 1 : 2), raw >= 0 else { throw fail(at, "section \(s + 1): unexpected kind \(kind)") }
            kinds.append(kind)
            rawSizes.append(raw)
            var rawAt = 0
            for c in 0..<count {
                let ca = d.at
                guard bytes.count - ca >= 16 else { throw fail(ca, "the file ends inside section \(s + 1), chunk \(c + 1): it is truncated") }
                let r = Int(try d.u32()), st = Int(try d.u32()), sum = try d.u32()
                guard try d.u32() == crc(UnsafeRawBufferPointer(rebasing: bytes[ca..<(ca + 12)])) else {
                    throw fail(ca, "section \(s + 1), chunk \(c + 1): its header's checksum does not match: the file is damaged")
                }
                guard st <= bytes.count - d.at else { throw fail(d.at, "the file ends inside section \(s + 1), chunk \(c + 1): it is truncated") }
                // Stored as is, or an LZ4 block, which expands at most 255 times: sizes beyond that
                // are not a chunk's, and would have the reader allocate them (4 GB for a 96-byte file).
                guard r <= raw - rawAt, st == r || (st < r && r <= 255 * st) else {
                    throw fail(ca, "section \(s + 1), chunk \(c + 1): sizes do not add up")
                }
                chunks.append(Chunk(section: s, rawAt: rawAt, raw: r, storedAt: d.at, stored: st, crc: sum, headerAt: ca))
                rawAt += r
                d.at += st
            }
            guard rawAt == raw else { throw fail(at, "section \(s + 1): its chunks hold \(rawAt) of \(raw) bytes") }
        }
        guard bytes.count - d.at == 16, Array(bytes[d.at..<(d.at + 8)]) == endMagic,
              UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: d.at + 8, as: UInt64.self)) == UInt64(bytes.count) else {
            throw fail(d.at, bytes.count - d.at < 16 ? "the file ends before its trailer: it is truncated"
                       : "no valid TALLYEND trailer where the sections end: the file is damaged or truncated")
        }

        // Check and decompress every chunk, in parallel.
        let chunkList = chunks, file = UnsafeMutableSendable(bytes), sizes = rawSizes
        // The decompressed sections live in mappings of their own, unmapped together once the
        // clients are decoded: from the heap, a reload's sections (all of them at once, as large
        // as the store) sat under the new store's small allocations, and what they left were
        // pages partly in use (docs/BENCHMARKS.md, "A soak").
        // (From the heap when regions are off, so that the address sanitizer sees their bounds.)
        let scratch = StoreMemory.enabled ? StoreMemory() : nil
        let buffers = rawSizes.map { UnsafeMutableRawBufferPointer(StoreMemory.allocate(UInt8.self, capacity: max(1, $0), in: scratch)) }
        defer {
            for b in buffers { StoreMemory.release(b.baseAddress!.assumingMemoryBound(to: UInt8.self), in: scratch) }
            withExtendedLifetime(scratch) {}
        }
        let failures = LockedErrors()
        let sendableBuffers = buffers.map { UnsafeMutableSendable($0) }, scratchRegion = UnsafeMutableSendable(scratch)
        DispatchQueue.concurrentPerform(iterations: chunkList.count) { i in
            let c = chunkList[i]
            let src = UnsafeRawBufferPointer(rebasing: file.value[c.storedAt..<(c.storedAt + c.stored)])
            guard crc(src) == c.crc else {
                failures.add(i, fail(c.headerAt, "section \(c.section + 1): a chunk's checksum does not match: the file is damaged"))
                return
            }
            let dst = sendableBuffers[c.section].value.baseAddress! + c.rawAt
            if c.stored == c.raw {
                dst.copyMemory(from: src.baseAddress!, byteCount: c.raw)
            } else {
                if !LZ4Block.decompress(src, into: UnsafeMutableRawBufferPointer(start: dst, count: c.raw)) {
                    failures.add(i, fail(c.headerAt, "section \(c.section + 1): a chunk does not decompress: the file is damaged"))
                }
            }
        }
        if let first = failures.first { throw first }

        // Decode: the catalog, then the clients in parallel.
        @Sendable func decodeSection<T>(_ s: Int, _ body: (inout SnapshotDecoder) throws(SnapshotDecodingError) -> T) throws -> T {
            var sd = SnapshotDecoder(UnsafeRawBufferPointer(rebasing: sendableBuffers[s].value[0..<sizes[s]]))
            sd.version = version
            sd.scratch = scratchRegion.value
            do {
                let v = try body(&sd)
                try sd.end()
                return v
            } catch {
                throw fail(nil, "section \(s + 1) does not decode (\(error.reason)); was it written by another build?")
            }
        }
        let catalog = try decodeSection(0) { (d: inout SnapshotDecoder) throws(SnapshotDecodingError) in try Catalog.decode(&d) }
        var clients = [ClientStore?](repeating: nil, count: sectionCount - 1)
        clients.withUnsafeMutableBufferPointer { out in
            let o = UnsafeMutableSendable(out)
            DispatchQueue.concurrentPerform(iterations: sectionCount - 1) { i in
                do {
                    o.value[i] = try decodeSection(i + 1) { (d: inout SnapshotDecoder) throws(SnapshotDecodingError) in try ClientStore.decode(&d) }
                } catch {
                    failures.add(i, error)
                }
            }
        }
        if let first = failures.first { throw first }
        let loaded = clients.map { $0! }
        // References across sections: every index into the catalog inside it.
        func inCatalog(_ i: Int32?, _ count: Int) -> Bool { i.map { $0 >= 0 && Int($0) < count } ?? true }
        let categories = catalog.categories.count, vendors = catalog.vendors.count
        guard catalog.applications.allSatisfy({ inCatalog($0.category, categories) && inCatalog($0.vendor, vendors) }) else {
            throw fail(nil, "section 1: a catalog application names a category or vendor the catalog does not hold")
        }
        for (i, c) in loaded.enumerated() {
            guard c.apps.allSatisfy({ $0.catalogIndex >= 0 && Int($0.catalogIndex) < catalog.applications.count
                                      && inCatalog($0.category, categories) && inCatalog($0.vendor, vendors) }),
                  c.usage?.categoryClasses.allSatisfy({ inCatalog($0, categories) }) ?? true else {
                throw fail(nil, "section \(i + 2): client \(c.info.id) names catalog entries the snapshot does not hold")
            }
        }
        return Store(catalog: catalog, clients: loaded, walSequence: walSequence)
    }

    static func crc(_ b: [UInt8]) -> UInt32 { b.withUnsafeBytes { crc($0) } }

    static func crc(_ b: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt = crc32(0, nil, 0)
        var at = 0
        while at < b.count {
            let n = min(b.count - at, 1 << 30)
            c = crc32(c, b.baseAddress!.advanced(by: at).assumingMemoryBound(to: Bytef.self), uInt(n))
            at += n
        }
        return UInt32(truncatingIfNeeded: c)
    }
}

/// A snapshot that cannot be read or written: the file, the byte offset where the problem was
/// found (when there is one) and what it is.
public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var offset: Int?
    public var reason: String
    public var description: String { "\(path)" + (offset.map { " (byte \($0))" } ?? "") + ": \(reason)" }
}

/// Lets a parallel loop write to distinct elements of a buffer.
struct UnsafeMutableSendable<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// `transform` of `0..<count`, computed in parallel (`DispatchQueue.concurrentPerform`), in
/// order. `transform` is called from several threads at once.
func concurrentMap<T>(_ count: Int, _ transform: (Int) -> T) -> [T] {
    var out = [T?](repeating: nil, count: count)
    withoutActuallyEscaping(transform) { transform in
        let f = UnsafeMutableSendable(transform)
        out.withUnsafeMutableBufferPointer { out in
            let o = UnsafeMutableSendable(out)
            DispatchQueue.concurrentPerform(iterations: count) { o.value[$0] = f.value($0) }
        }
    }
    return out.map { $0! }
}

/// The first error (by index) reported by a parallel loop.
final class LockedErrors: @unchecked Sendable {
    let lock = NSLock()
    var errors: [(Int, Error)] = []
    func add(_ i: Int, _ e: Error) { lock.lock(); errors.append((i, e)); lock.unlock() }
    var first: Error? { lock.lock(); defer { lock.unlock() }; return errors.min { $0.0 < $1.0 }?.1 }
}
