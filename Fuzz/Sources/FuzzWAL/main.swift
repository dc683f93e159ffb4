// Write-ahead-log recovery (TallyStorage `WriteAheadLog`): the input written as the log file,
// then opened (recovered) as `tally serve --wal` opens it at start. Input: byte 0 chooses what
// is fixed up before the file is written (each record's checksum, each record's sequence) and
// what is done after recovery (append a record and open again; truncate and open again), byte
// 1 the truncation point; the rest is the file. A thrown `WriteAheadLog.Failure` is a correct
// refusal.
//
// Checked: the records recovered are those of a reference reading of the format (whole
// records with a matching checksum and the next sequence, up to the first that is not), the
// file is cut back to them, and after an append or a truncation the log opens again to exactly
// the records it should hold.
import Foundation
import FuzzSupport
import TallyStorage

let path = scratchDirectory + "/wal"
let header = 24

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked(makeSeeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count <= 1 << 16 else { return 0 }
    var input = FuzzInput(start, count)
    let flags = input.byte()
    let through = UInt64(input.byte())
    var file = input.rest()
    fixUp(&file, checksums: flags & 1 != 0, sequences: flags & 2 != 0)

    unlink(path)
    guard FileManager.default.createFile(atPath: path, contents: Data(file)) else { fuzzFailure("cannot write \(path)") }
    let wal: WriteAheadLog
    do { wal = try WriteAheadLog(path: path) } catch let e as WriteAheadLog.Failure {
        _ = e.description
        return 0
    } catch {
        fuzzFailure("opening the log threw \(error)")
    }
    let expected = reference(file)
    let got: [Record]
    do {
        got = try wal.readRecords().map { Record(sequence: $0.sequence, batch: $0.batch) }
    } catch {
        fuzzFailure("reading the records of a recovered log threw \(error)")
    }
    guard got == expected.records, wal.recoveredCount == got.count else {
        fuzzFailure("recovered \(got.count) records, the reference reading \(expected.records.count)")
    }
    let size = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1)
    let kept = file.isEmpty ? header : expected.end
    guard wal.droppedBytes == (file.isEmpty ? 0 : file.count - expected.end), size == kept, wal.byteCount == kept,
          wal.lastSequence == expected.records.last?.sequence ?? expected.base else {
        fuzzFailure("after recovery: \(wal.droppedBytes) bytes dropped, file of \(size), last sequence \(wal.lastSequence); expected \(file.count - expected.end), \(kept), \(expected.records.last?.sequence ?? expected.base)")
    }

    var records = got
    var last = wal.lastSequence
    do {
        if flags & 4 != 0 {
            let batch = expected.records.first?.batch ?? sampleBatch(rows: Int(through % 4))
            let (s, bytes) = wal.record(batch)
            guard s == last + 1 else { fuzzFailure("the next record has sequence \(s) after \(last)") }
            try wal.write(bytes)
            records.append(Record(sequence: s, batch: batch))
            last = s
        }
        if flags & 8 != 0 {
            // Through the `through`-th record (0: none), or that far past the last.
            let first = records.first?.sequence ?? last + 1
            let k = first - 1 + through
            if k > WriteAheadLog.maxBase {
                guard (try? wal.truncate(through: k)) == nil else { fuzzFailure("truncated through \(k)") }
            } else {
                try wal.truncate(through: k)
                records.removeAll { $0.sequence <= k }
                last = max(last, k)
            }
        }
    } catch {
        fuzzFailure("writing to a recovered log failed: \(error)")
    }
    guard flags & 12 != 0 else { return 0 }
    do {
        // What a reload replays: read back from the open log after the writes and truncation.
        let inPlace = try wal.readRecords().map { Record(sequence: $0.sequence, batch: $0.batch) }
        guard inPlace == records else { fuzzFailure("read in place: \(inPlace.count) records, expected \(records.count)") }
    } catch {
        fuzzFailure("reading the records of a written log threw \(error)")
    }
    wal.closeFile()
    do {
        let again = try WriteAheadLog(path: path)
        let reread = try again.readRecords().map { Record(sequence: $0.sequence, batch: $0.batch) }
        guard reread == records, again.droppedBytes == 0, again.lastSequence == last else {
            fuzzFailure("opened again: \(reread.count) records (expected \(records.count)), \(again.droppedBytes) bytes dropped, last sequence \(again.lastSequence) (expected \(last))")
        }
    } catch {
        fuzzFailure("a log written by WriteAheadLog does not open again: \(error)")
    }
    return 0
}

struct Record: Equatable {
    var sequence: UInt64
    var batch: AppendBatch
}

/// The format read directly (see `WriteAheadLog`): the header's base, the whole records that
/// follow it in sequence, and where the last of them ends.
func reference(_ f: [UInt8]) -> (base: UInt64, records: [Record], end: Int) {
    guard f.count >= header else { return (0, [], 0) }
    let base: UInt64 = f.le(16)
    var records: [Record] = []
    var at = header, last = base
    while f.count - at >= 16 {
        let length = Int(f.le(at, as: UInt32.self))
        guard length <= f.count - at - 16, CRC32.of(f[(at + 8)..<(at + 16 + length)]) == f.le(at + 4, as: UInt32.self) else { break }
        let sequence: UInt64 = f.le(at + 8)
        guard last < UInt64.max, sequence == last + 1, let batch = decode(Array(f[(at + 16)..<(at + 16 + length)])) else { break }
        records.append(Record(sequence: sequence, batch: batch))
        last = sequence
        at += 16 + length
    }
    return (base, records, at)
}

func decode(_ p: [UInt8]) -> AppendBatch? {
    guard p.count >= 20 else { return nil }
    let n = Int(p.le(16, as: UInt32.self))
    guard n <= (p.count - 20) / 36 else { return nil }
    let rows = (0..<n).map { i in
        let o = 20 + 36 * i
        return AppendBatch.Row(user: UUID128(high: p.le(o), low: p.le(o + 8)), app: UUID128(high: p.le(o + 16), low: p.le(o + 24)),
                               day: Day(raw: Int32(bitPattern: p.le(o + 32))))
    }
    var batch = AppendBatch(client: UUID128(high: p.le(0), low: p.le(8)), rows: rows)
    if p.count > 20 + 36 * n {
        // The directory section, read as the format says: five tables, each a u32 count and rows.
        var r = Reader(p: p, at: 20 + 36 * n)
        guard let d = r.directory(), r.at == p.count, d.count > 0 else { return nil }
        batch.directory = d
    }
    return batch
}

/// Reads the directory section's fields one after another; every read fails past the end.
struct Reader {
    let p: [UInt8]
    var at: Int

    mutating func bytes(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, n <= p.count - at else { return nil }
        defer { at += n }
        return p[at..<(at + n)]
    }
    mutating func u32() -> UInt32? { bytes(4).map { UInt32($0[$0.startIndex]) | UInt32($0[$0.startIndex + 1]) << 8 | UInt32($0[$0.startIndex + 2]) << 16 | UInt32($0[$0.startIndex + 3]) << 24 } }
    mutating func id() -> UUID128? {
        guard at + 16 <= p.count else { return nil }
        defer { at += 16 }
        return UUID128(high: p.le(at), low: p.le(at + 8))
    }
    mutating func flag() -> Bool? {
        guard let b = bytes(1)?.first, b <= 1 else { return nil }
        return b == 1
    }
    /// `.some(nil)` for the absent string (length 0xFFFFFFFF); `nil` when unreadable.
    mutating func text() -> String?? {
        guard let n = u32() else { return nil }
        if n == 0xFFFF_FFFF { return .some(nil) }
        guard let b = bytes(Int(n)), let s = String(validating: b, as: UTF8.self) else { return nil }
        return .some(s)
    }
    mutating func optionalID() -> UUID128?? {
        guard let f = flag() else { return nil }
        if !f { return .some(nil) }
        guard let i = id() else { return nil }
        return .some(i)
    }
    mutating func count() -> Int? {
        guard let n = u32(), Int(n) <= p.count - at else { return nil }  // every row takes at least a byte
        return Int(n)
    }

    mutating func directory() -> DirectoryRows? {
        var d = DirectoryRows()
        guard let a = count() else { return nil }
        for _ in 0..<a {
            guard let i = id(), let name = text(), let name, let logo = text(), let type = text(), let type,
                  let c = optionalID(), let v = optionalID() else { return nil }
            d.catalogApps.append(.init(id: i, canonicalName: name, logo: logo, type: type, category: c, vendor: v))
        }
        guard let b = count() else { return nil }
        for _ in 0..<b {
            guard let i = id(), let name = text(), let name, let description = text() else { return nil }
            d.departments.append(DepartmentInfo(id: i, name: name, description: description))
        }
        guard let c = count() else { return nil }
        for _ in 0..<c {
            guard let i = id(), let email = text(), let email, let display = text(), let active = flag(), let role = text(),
                  let created = text() else { return nil }
            d.users.append(UserInfo(id: i, email: email, displayName: display, isActive: active, role: role, createdAt: created))
        }
        guard let e = count() else { return nil }
        for _ in 0..<e {
            guard let i = id(), let catalog = id(), let approved = flag(), let favorite = flag() else { return nil }
            d.apps.append(.init(id: i, catalogApp: catalog, isApproved: approved, isFavorite: favorite))
        }
        guard let m = count() else { return nil }
        for _ in 0..<m {
            guard let u = id(), let dep = id() else { return nil }
            d.memberships.append(.init(user: u, department: dep))
        }
        return d
    }
}

/// Rewrites each whole record's checksum and/or sequence, so that mutations reach what lies
/// behind them.
func fixUp(_ f: inout [UInt8], checksums: Bool, sequences: Bool) {
    guard checksums || sequences, f.count >= header else { return }
    var at = header
    var next = f.le(16, as: UInt64.self) &+ 1
    while f.count - at >= 16 {
        let length = Int(f.le(at, as: UInt32.self))
        guard length <= f.count - at - 16 else { break }
        if sequences { f.setLE(next, at: at + 8) }
        if checksums { f.setLE(CRC32.of(f[(at + 8)..<(at + 16 + length)]), at: at + 4) }
        next &+= 1
        at += 16 + length
    }
}

func sampleBatch(rows: Int, directory: Bool = false) -> AppendBatch {
    let c = TinyDump.store.clients[2]
    var batch = AppendBatch(client: c.info.id, rows: (0..<rows).map { i in
        AppendBatch.Row(user: c.users[i % c.users.count].id, app: c.apps[i % c.apps.count].id, day: Day("2026-01-0\(i + 1)")!)
    })
    if directory {
        let id = { (k: UInt64) in UUID128(high: 0xD1, low: k) }
        batch.directory.catalogApps = [.init(id: id(1), canonicalName: "Tool", logo: nil, type: "saas", category: id(2), vendor: nil)]
        batch.directory.departments = [DepartmentInfo(id: id(3), name: "Data", description: "é")]
        batch.directory.users = [UserInfo(id: id(4), email: "n@x", displayName: nil, isActive: true, role: "r", createdAt: "2026-01-01")]
        batch.directory.apps = [.init(id: id(5), catalogApp: id(1), isApproved: false, isFavorite: true)]
        batch.directory.memberships = [.init(user: id(4), department: id(3))]
    }
    return batch
}

func makeSeeds() throws -> [(name: String, bytes: [UInt8])] {
    var seeds: [(String, [UInt8])] = []
    func file() -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }
    unlink(path)
    var wal = try WriteAheadLog(path: path)
    seeds.append(("empty-log", [0, 0] + file()))
    for n in [1, 3, 0, 2] {
        let (_, b) = wal.record(sampleBatch(rows: n))
        try wal.write(b)
    }
    let four = file()
    for n in [2, 0] {
        let (_, b) = wal.record(sampleBatch(rows: n, directory: true))
        try wal.write(b)
    }
    seeds.append(("directory-rows", [0, 0] + file()))
    seeds.append(("directory-rows-fix", [3, 5] + file()))
    seeds.append(("four-records", [0, 0] + four))
    var versionOne = four
    versionOne[8] = 1
    seeds.append(("version-1", [4, 0] + versionOne))
    seeds.append(("four-records-fix", [3, 1] + four))
    seeds.append(("append-truncate", [12, 2] + four))
    seeds.append(("torn", [0, 0] + four.dropLast(5)))
    var flipped = four
    flipped[header + 20] ^= 1
    seeds.append(("bad-checksum", [0, 0] + flipped))
    try wal.truncate(through: 2)
    seeds.append(("truncated-base-2", [4, 1] + file()))
    wal.closeFile()
    unlink(path)
    wal = try WriteAheadLog(path: path)
    try wal.truncate(through: 1_000_000)
    let (_, b) = wal.record(sampleBatch(rows: 2))
    try wal.write(b)
    seeds.append(("large-base", [8, 0] + file()))
    seeds.append(("no-file", [0, 0]))
    wal.closeFile()
    return seeds
}

/// SwiftPM's debug builds link `main` to this symbol: hand over to libFuzzer's driver.
@_cdecl("FuzzWAL_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz(UnsafeRawPointer($0), size) } ?? 0 }
}
