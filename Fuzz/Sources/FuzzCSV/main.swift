// The CSV reader and typed table decoding (TallyIngest): a whole dump load — every table of
// the tiny dump, with one file replaced by the input — either through the remote-dump path
// (`DumpLayout.discover(storage:)`, `DumpLoader.load(layout:)`, as `tally` loads an `s3://` or
// `https://` dump) or from a local folder (`DumpLoader.load(folder:)`). Input: byte 0 picks
// the file (each table; the usage table has two parts), byte 1 strict or lenient, the file's
// compression (none, gzip, LZ4 frame), how many bytes a read returns at most, and remote or
// local; the rest is the file. A thrown `LoadError` is a correct refusal.
//
// Checked: `CSVReader` gives the same records (or the same error) whether its source returns
// one byte a read or the whole file; a strict load that succeeds counts as many records as the
// reader read.
import Foundation
import FuzzSupport
import TallyIngest
import TallyStorage

/// The files a fuzz input can replace: each table's file of the tiny dump.
let targets: [(table: String, path: String)] = DumpLayout.tables.map { t in
    (t, t == "app_usage_reports" ? "app_usage_reports/part-0000.csv" : t + ".csv")
} + [("app_usage_reports", "app_usage_reports/part-0002.csv")]
let chunks = [1, 2, 3, 7, 64, 4096, 1 << 16]
let base = TinyDump.fileBytes
/// The base the input goes into: the tiny dump with its usage parts cut to their first 12
/// records (the whole parts are seeds), so that each input loads quickly.
let trimmed: [String: [UInt8]] = Dictionary(uniqueKeysWithValues: base.map { path, bytes in
    guard path.hasPrefix("app_usage_reports/") else { return (path, bytes) }
    var lines = 0
    let end = bytes.firstIndex { b in
        if b == 10 { lines += 1 }
        return lines == 13
    } ?? bytes.count - 1
    return (path, Array(bytes[...end]))
})
/// Two years around the tiny dump's dates (`--date-range`): a usage row far from the others
/// would make every per-day table of its client thousands of days long, which is slow, not wrong.
let dates = DateWindow(parsing: "2025-01-01..2026-12-31")!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked {
        var seeds: [(String, [UInt8])] = []
        for (i, t) in targets.enumerated() {
            let file = base[t.path]!
            // Plain (strict, then lenient with 3-byte reads), gzip and LZ4.
            seeds.append(("\(t.table)-\(i)-plain", [UInt8(i), 0 << 1 | 0 | 6 << 3] + file))
            seeds.append(("\(t.table)-\(i)-lenient-3", [UInt8(i), 0 << 1 | 1 | 2 << 3] + file))
            seeds.append(("\(t.table)-\(i)-gzip", [UInt8(i), 1 << 1 | 0 | 4 << 3] + Compress.gzip(file)))
            seeds.append(("\(t.table)-\(i)-lz4", [UInt8(i), 2 << 1 | 1 | 5 << 3] + Compress.lz4Frame(file)))
        }
        // A byte-order mark, quoted fields across lines, CRLF, NULL and "" (the users table).
        let odd = "\u{FEFF}id,client_id,email,display_name,is_active,role,created_at\r\n"
            + "0f4b5a6c-0000-4000-8000-000000000001,5f0c1a2e-7d3b-4c8e-9a61-0b2d4e6f8a10,\"a\"\"b\nc@x\",\"\",T,,2025-03-04 16:09:26.5+05:30\r\n"
        seeds.append(("users-odd", [6, 0 | 0 << 3] + Array(odd.utf8)))
        return seeds
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count <= 1 << 15 else { return 0 }
    var input = FuzzInput(start, count)
    let target = targets[Int(input.byte()) % targets.count]
    let flags = input.byte()
    let mode: LoadMode = flags & 1 == 0 ? .strict : .lenient
    let compression = (flags >> 1) & 3
    let file = input.rest()
    // Small reads make the reader parse a record again after each one (quadratic in the
    // record's length): bounded here so that one input stays well under a second.
    let chunk = max(chunks[Int(flags >> 3 & 7) % chunks.count], file.count * file.count / 4_000_000)
    let local = flags & 0x40 != 0

    var files = trimmed
    files[target.path] = nil
    let path = target.path + (compression == 1 ? ".gz" : compression == 2 ? ".lz4" : "")
    files[path] = file

    var plainRecords: Int?
    if compression == 0 || compression == 3 {
        let whole = records(file, chunk: file.count + 1)
        let cut = records(file, chunk: chunk)
        guard whole == cut else {
            fuzzFailure("CSVReader reads \(whole) whole and \(cut) in reads of \(chunk) bytes")
        }
        if case .records(let r) = whole { plainRecords = r.count }
    }

    do {
        let (store, report): (Store, LoadReport)
        if local {
            // A local folder, read as `tally` reads one (plain file reads, parts in parallel).
            try writeFolder(files)
            (store, report) = try DumpLoader.load(folder: folder, mode: mode, dates: dates)
        } else {
            let layout = try DumpLayout.discover(storage: MemoryStorage(files: files, chunks: [path: chunk]))
            (store, report) = try DumpLoader.load(layout: layout, mode: mode, dates: dates)
        }
        if mode == .strict, target.table != "app_usage_reports", let n = plainRecords {
            // Header excluded.
            guard report.recordsByTable[target.table] == n - 1 else {
                fuzzFailure("the load counted \(report.recordsByTable[target.table] ?? -1) records of \(target.table); the reader read \(n - 1)")
            }
        }
        _ = store.usageRowCount
    } catch let e as LoadError {
        _ = e.description
    } catch {
        fuzzFailure("a load threw something other than a LoadError: \(error)")
    }
    return 0
}

let folder = scratchDirectory + "/dump"
nonisolated(unsafe) var written: [String: [UInt8]] = [:]

/// Makes `folder` hold exactly `files` (rewriting only what changed since the last input).
func writeFolder(_ files: [String: [UInt8]]) throws {
    let fm = FileManager.default
    for (path, _) in written where files[path] == nil { try fm.removeItem(atPath: folder + "/" + path) }
    for (path, bytes) in files where written[path] != bytes {
        let url = URL(fileURLWithPath: folder + "/" + path)
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }
    written = files
}

/// Everything a `CSVReader` reads: each record's fields (NULL as `nil`) and where it starts, or
/// the error that stopped it after the records before.
enum Reading: Equatable {
    case records([Record])
    case failed([Record], String)
}

struct Record: Equatable {
    var line: Int
    var fields: [[UInt8]?]
}

func records(_ file: [UInt8], chunk: Int) -> Reading {
    let csv = CSVReader(source: MemorySource(file, chunk: chunk), file: "f.csv", initialCapacity: 64)
    var out: [Record] = []
    do {
        while try csv.next() {
            out.append(Record(line: csv.line, fields: (0..<csv.fieldCount).map { csv.isNull($0) ? nil : Array(csv.bytes($0)) }))
            guard out.count < 100_000 else { break }
        }
        return .records(out)
    } catch {
        return .failed(out, "\(error)")
    }
}

/// SwiftPM's debug builds link `main` to this symbol: hand over to libFuzzer's driver.
@_cdecl("FuzzCSV_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz(UnsafeRawPointer($0), size) } ?? 0 }
}
