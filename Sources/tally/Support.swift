import ArgumentParser
import Foundation
import TallyAPI
import TallyIngest
import TallyRemote
import TallyStorage

/// The sample dump bundled in the repository, found from the working directory or the binary.
func defaultDumpPath() -> String {
    let candidates = [FileManager.default.currentDirectoryPath + "/data/sample",
                      URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                          .deletingLastPathComponent().appendingPathComponent("../../../data/sample").standardized.path]
    return candidates.first { FileManager.default.fileExists(atPath: $0 + "/clients.csv") || FileManager.default.fileExists(atPath: $0 + "/manifest.json") } ?? candidates[0]
}

/// Resident set size of this process (the one reading of /proc/self/statm, TallyAPI's).
func residentBytes() -> Int { ServiceStatus.residentBytes() }

struct LoadedDump {
    let store: Store
    let report: LoadReport
    let residentDelta: Int
    /// The growth's anonymous pages (the heap and the store's mappings) and file pages (the
    /// binary's code the load ran for the first time: the parser and the builder).
    var residentParts = (anonymous: 0, file: 0)
}

func loadDump(_ path: String, lenient: Bool, dates: DateWindow = .standard()) throws -> LoadedDump {
    _ = malloc_trim(0)
    let before = residentBytes(), partsBefore = ServiceStatus.residentParts()
    let shown = ProgressDisplay(what: path)
    defer { shown.finish() }
    let mode: LoadMode = lenient ? .lenient : .strict
    let (store, report) = Remote.isRemote(path)
        ? try Remote.loadDump(path, mode: mode, dates: dates) { shown.start($0) }
        : try DumpLoader.load(folder: path, mode: mode, dates: dates) { shown.start($0) }
    // Return the loader's freed buffers to the system, so the growth is what the store holds.
    _ = malloc_trim(0)
    let delta = residentBytes() - before, partsAfter = ServiceStatus.residentParts()
    var loaded = LoadedDump(store: store, report: report, residentDelta: delta)
    loaded.residentParts = (partsAfter.anonymous - partsBefore.anonymous, partsAfter.file - partsBefore.file)
    return loaded
}

/// A snapshot file or a dump folder, told apart by the file's first bytes.
func loadSource(_ path: String, lenient: Bool) throws -> Store {
    if Snapshot.looksLikeSnapshot(path: path) { return try Snapshot.read(path: path) }
    if Remote.isRemote(path) && !path.hasSuffix("/") { return try Remote.readSnapshot(path) }
    return try loadDump(path, lenient: lenient).store
}

func printSummary(_ d: LoadedDump, path: String) {
    let r = d.report
    let rows = d.store.usageRowCount
    let secs = r.parseSeconds + r.buildSeconds
    func f(_ x: Double, _ p: Int = 1) -> String { String(format: "%.\(p)f", x) }
    print("dump        \(path)")
    print("clients     \(d.store.clients.count)")
    print("users       \(d.store.clients.reduce(0) { $0 + $1.users.count })")
    print("apps        \(d.store.clients.reduce(0) { $0 + $1.apps.count })")
    print("usage rows  \(r.usageRecords) read, \(rows) distinct")
    print("load time   \(f(secs, 3)) s (parse \(f(r.parseSeconds, 3)) s, build \(f(r.buildSeconds, 3)) s)")
    print("rate        \(f(Double(r.usageRecords) / max(secs, 1e-9) / 1e6, 2)) M usage rows/s; parsing "
          + "\(f(Double(r.decodedBytes) / max(r.parseSeconds, 1e-9) / 1e6, 1)) MB/s of CSV text "
          + "(\(f(Double(r.storedBytes) / max(r.parseSeconds, 1e-9) / 1e6, 1)) MB/s as stored)")
    print("resident    \(f(Double(d.residentDelta) / Double(max(rows, 1)), 2)) bytes/row (RSS growth), "
          + "\(f(Double(d.store.byteCount) / Double(max(rows, 1)), 2)) bytes/row (store accounting)")
    print("            of the growth: \(f(Double(d.residentParts.anonymous) / Double(max(rows, 1)), 2)) bytes/row anonymous, "
          + "\(f(Double(d.residentParts.file) / Double(max(rows, 1)), 2)) file pages (code)")
    MemoryBreakdown(d.store).lines.forEach { print($0) }
    if r.skippedTotal > 0 {
        print("skipped     \(r.skippedTotal) rows: "
              + r.skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        for e in r.skippedExamples.prefix(5) { print("  e.g. \(e)") }
    }
    for c in d.store.clients {
        let u = c.usage
        print("  client \(c.info.id) \(c.info.name): \(c.users.count) users, \(c.apps.count) apps, "
              + "\(c.departments.count) departments, \(u?.rowCount ?? 0) rows"
              + (u.map { ", \($0.firstDay)…\($0.newestDay)" } ?? ""))
    }
}

/// glibc's `malloc_trim` (not in Swift's Glibc module): returns freed heap pages to the system.
@_silgen_name("malloc_trim") func malloc_trim(_ pad: Int) -> Int32

@_silgen_name("mallopt") func mallopt(_ param: Int32, _ value: Int32) -> Int32

/// The `mmap` threshold (glibc's M_MMAP_THRESHOLD, -3) is 4 MiB: per-query buffers up to that
/// size (a few MB for a 20,000-user client) come from the heap instead of fresh `mmap`s, which
/// would make every query pay page faults and the kernel's zeroing (with glibc's 128 KiB default
/// that was half of a user-dimension query's time). Larger buffers are mapped and unmapped:
/// with a 32 MiB threshold (glibc's largest) the 10-minute soak's resident size drifted 10.7%
/// in one run, with 4 MiB 2.8% and 5.2% in two (the aim, < 5%, is at the edge), and the dashboard mix ran as fast within noise (`tools/load/ab_mix.sh`, 5
/// alternated rounds: 4 MiB at 107.5% of 32 MiB's median req/s; 3 rounds the day before: 97.2%).
/// docs/BENCHMARKS.md, "A soak". Setting either threshold turns off glibc's own raising of both.
///
/// The trim threshold (M_TRIM_THRESHOLD, -1) is 8 MiB, twice the `mmap` threshold (the ratio
/// glibc's own raising keeps): an arena's free top larger than that goes back to the system when
/// a chunk beside it is freed. `malloc_trim` cannot do this for the tops of the other threads'
/// arenas, where loads, merges and rebuilds leave their transient arrays. With 512 MiB (before
/// 2026-12-02) a process serving the scale-M dump held 117 MiB resident against 89 MiB now (87
/// from a snapshot of the same data), and after appends and merges on the 47.6 M-row client
/// 1.023–1.078 of a fresh process's resident size in four runs, against 1.012–1.023 now; the
/// dashboard mix ran as fast (28,301 against 28,511 req/s, medians of five alternated rounds).
/// docs/BENCHMARKS.md, "Memory after appends and merges".
///
/// Arenas (M_ARENA_MAX, -8): one per core, at least two, instead of glibc's bound of eight per
/// core. Measured with `tools/load/soak.py --minutes 6 --connections 192` on the scale-M snapshot
/// (2026-11-30, 21:1x UTC, one run each): each minute's median resident size after the first was
/// 165–176 MiB with two arenas against 213–221 MiB with glibc's default, the allocator's bytes in
/// use the same (120–121 MiB); why fewer arenas hold less free memory resident was not measured.
/// The dashboard mix's throughput: docs/BENCHMARKS.md, "A soak" (`tools/load/ab_mix.sh`).
///
/// glibc's own variables in the environment (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`,
/// `MALLOC_ARENA_MAX`) win over these settings, for measurements.
func tuneAllocator() {
    func set(_ param: Int32, _ value: Int, unless variable: String) -> Bool {
        getenv(variable) != nil || mallopt(param, Int32(value)) == 1
    }
    let done = [set(-3, 4 << 20, unless: "MALLOC_MMAP_THRESHOLD_"), set(-1, 8 << 20, unless: "MALLOC_TRIM_THRESHOLD_"),
                set(-8, max(2, ProcessInfo.processInfo.activeProcessorCount), unless: "MALLOC_ARENA_MAX")]
    if done.contains(false) {
        FileHandle.standardError.write(Data("warning: mallopt refused the allocator settings\n".utf8))
    }
}

/// Shows a load's progress on standard error (SPEC §6): a bar redrawn five times a second on a
/// terminal, a log line every five seconds otherwise. Short loads (under a second) show nothing.
final class ProgressDisplay: @unchecked Sendable {
    let what: String
    let terminal = isatty(2) != 0
    let lock = NSCondition()
    var done = false
    var thread: Thread?
    var drew = false

    init(what: String) { self.what = what }

    func start(_ progress: LoadProgress) {
        let t = Thread { [self] in
            let interval = terminal ? 0.2 : 5.0
            var first = true
            lock.lock()
            while !done {
                _ = lock.wait(until: Date().addingTimeInterval(first ? 1.0 : interval))
                first = false
                if done { break }
                let line = Self.describe(progress.now)
                if terminal {
                    FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                    drew = true
                } else {
                    log("loading \(what): " + line)
                }
            }
            lock.unlock()
        }
        thread = t
        t.start()
    }

    func finish() {
        lock.lock()
        done = true
        lock.signal()
        let erase = drew
        lock.unlock()
        while thread?.isFinished == false { usleep(1000) }
        if erase { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func describe(_ p: LoadProgress.Snapshot) -> String {
        let width = 24
        let filled = Int((p.fraction * Double(width)).rounded(.down))
        let bar = "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "]"
        func mb(_ b: Int) -> String { String(format: "%.0f MB", Double(b) / 1e6) }
        let eta = p.eta.map { String(format: "ETA %.0f s", $0) } ?? "ETA –"
        return "\(bar) \(String(format: "%3.0f%%", p.fraction * 100))  \(p.rows) records  \(mb(p.bytes)) of \(mb(p.totalBytes))  "
            + String(format: "%.1f M records/s", p.rowsPerSecond / 1e6) + "  \(eta)"
    }
}

/// `--date-range FIRST..LAST`, or the standard window (2000-01-01 to a year after today).
func dateWindow(_ text: String?) throws -> DateWindow {
    guard let text else { return .standard() }
    guard let w = DateWindow(parsing: text) else {
        throw ValidationError("--date-range takes FIRST..LAST (YYYY-MM-DD..YYYY-MM-DD, FIRST not after LAST); got \"\(text)\"")
    }
    return w
}
