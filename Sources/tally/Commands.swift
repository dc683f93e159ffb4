import ArgumentParser
import Foundation
import TallyAPI
import TallyGenerate
import TallyIngest
import TallyQuery
import TallyStorage
import TallyWrite

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a dump and print clients, users, apps, rows, load time, rows/s and resident bytes per row.")

    @Argument(help: "Dump (folder, s3://BUCKET/PREFIX/, https://HOST/PREFIX/) or snapshot file (default: the bundled sample).")
    var dump: String?

    @Flag(help: "Skip bad rows and report them by reason instead of refusing the dump.")
    var lenient = false

    @Option(name: .customLong("repeat"), help: "Load this many times and report the last (for profiling).")
    var repetitions: Int = 1

    @Option(help: "Activity dates accepted: FIRST..LAST (default 2000-01-01 to a year after today); a row outside is a load error (skipped with --lenient).")
    var dateRange: String?

    @Flag(help: "Also print where the level arenas' bytes go: per level, headers and payload by container kind, and containers by size.")
    var bitmaps = false

    func run() throws {
        tuneAllocator()  // as `tally serve` runs: the resident figures are the server's
        let path = dump ?? defaultDumpPath()
        if Snapshot.looksLikeSnapshot(path: path) { return try loadSnapshot(path) }
        let dates = try dateWindow(dateRange)
        do {
            for _ in 1..<max(repetitions, 1) { _ = try loadDump(path, lenient: lenient, dates: dates) }
            let loaded = try loadDump(path, lenient: lenient, dates: dates)
            printSummary(loaded, path: path)
            if bitmaps { BitmapBreakdown(loaded.store).lines.forEach { print($0) } }
        } catch let e as LoadError {
            throw ValidationError("load failed: \(e)")
        }
    }
}

extension Load {
    /// Reads a snapshot `repetitions` times and prints the last read's rate.
    func loadSnapshot(_ path: String) throws {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        var store: Store?
        var seconds = 0.0
        var delta = 0, parts = (anonymous: 0, file: 0), heap = (allocated: 0, free: 0)
        for _ in 0..<max(repetitions, 1) {
            store = nil
            _ = malloc_trim(0)
            let before = residentBytes(), partsBefore = ServiceStatus.residentParts()
            let heapBefore = MemoryReclaimer.heap() ?? (0, 0)
            let clock = ContinuousClock(), start = clock.now
            do { store = try Snapshot.read(path: path) } catch { throw ValidationError("\(error)") }
            let d = clock.now - start
            seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            _ = malloc_trim(0)
            delta = residentBytes() - before
            let partsAfter = ServiceStatus.residentParts()
            parts = (partsAfter.anonymous - partsBefore.anonymous, partsAfter.file - partsBefore.file)
            let heapAfter = MemoryReclaimer.heap() ?? (0, 0)
            heap = (heapAfter.allocated - heapBefore.allocated, heapAfter.free - heapBefore.free)
        }
        let s = store!, rows = s.usageRowCount
        func perRow(_ b: Int) -> String { String(format: "%.2f", Double(b) / Double(max(rows, 1))) }
        print("snapshot    \(path) (\(bytes) bytes)")
        print("clients     \(s.clients.count)")
        print("usage rows  \(rows)")
        print("load time   \(String(format: "%.3f", seconds)) s")
        print("rate        \(String(format: "%.1f", Double(rows) / seconds / 1e6)) M usage rows/s, "
              + "\(String(format: "%.0f", Double(bytes) / seconds / 1e6)) MB/s of snapshot")
        print("resident    \(perRow(delta)) bytes/row (RSS growth), \(perRow(s.byteCount)) bytes/row (store accounting)")
        print("            of the growth: \(perRow(parts.anonymous)) bytes/row anonymous, \(perRow(parts.file)) file pages (code); "
              + "heap \(perRow(heap.allocated)) allocated, \(perRow(heap.free)) free")
        MemoryBreakdown(s).lines.forEach { print($0) }
        if bitmaps { BitmapBreakdown(s).lines.forEach { print($0) } }
    }
}

/// `tally snapshot save`: a native snapshot from a dump (or a generated client).
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Native snapshots (SPEC §6).", subcommands: [Save.self])

    struct Save: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a dump (or a snapshot) and write it as a native snapshot; prints rows/s and MB/s of the write.")
        @Option(help: "Dump folder or snapshot to read (default: the bundled sample).") var dump: String?
        @Option(help: "Generate a client in process instead: USERSxAPPSxDAYS[xDEPARTMENTS], or enterprise (100000x2000x366, 240 departments of Zipf-like sizes).") var synthetic: String?
        @Option(help: "Snapshot file to write (replaced atomically).") var out: String
        @Flag(help: "Skip bad dump rows instead of refusing the dump.") var lenient = false

        func run() throws {
            let store: Store
            if let text = synthetic {
                guard let shape = SyntheticShape.parse(text) else {
                    throw ValidationError("--synthetic takes USERSxAPPSxDAYS[xDEPARTMENTS] or enterprise")
                }
                let (catalog, builder) = SyntheticClient.make(shape)
                store = Store(catalog: catalog, clients: [builder.build()])
            } else {
                do { store = try loadSource(dump ?? defaultDumpPath(), lenient: lenient) } catch { throw ValidationError("\(error)") }
            }
            let clock = ContinuousClock(), start = clock.now
            let r = try Snapshot.write(store, to: out)
            let d = clock.now - start
            let secs = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            print("wrote \(out): \(r.bytes) bytes (\(r.rawBytes) before LZ4), \(r.sections - 1) clients, \(r.usageRows) usage rows "
                  + "in \(String(format: "%.3f", secs)) s = \(String(format: "%.1f", Double(r.usageRows) / secs / 1e6)) M rows/s, "
                  + "\(String(format: "%.0f", Double(r.bytes) / secs / 1e6)) MB/s")
        }
    }
}

struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Load a dump, run one endpoint's query and print its JSON.")

    @Argument(help: "Dump folder.") var dump: String
    @Option(help: "Endpoint: \(Endpoint.allCases.map(\.rawValue).joined(separator: ", ")).")
    var endpoint: String = "utilization"
    @Option(help: "Client id.") var client: String
    @Option(name: .customLong("start-date")) var startDate: String
    @Option(name: .customLong("end-date")) var endDate: String
    @Option(name: .customLong("compare-start-date")) var compareStartDate: String?
    @Option(name: .customLong("compare-end-date")) var compareEndDate: String?
    @Option(help: "daily, weekly, monthly or quarterly.") var granularity: String?
    @Option(name: .customLong("is-approved")) var isApproved: Bool?
    @Option(name: .customLong("category-ids")) var categoryIds: String?
    @Option(name: .customLong("vendor-ids")) var vendorIds: String?
    @Option(name: .customLong("app-ids")) var appIds: String?
    @Option(name: .customLong("department-ids")) var departmentIds: String?
    @Option(name: .customLong("sort-by")) var sortBy: String?
    @Option(name: .customLong("sort-order")) var sortOrder: String?
    @Option(name: .customLong("page-size")) var pageSize: Int = 50

    func run() throws {
        guard let ep = Endpoint(rawValue: endpoint) else { throw ValidationError("unknown endpoint \(endpoint)") }
        guard let c = UUID128(client) else { throw ValidationError("--client must be a UUID") }
        guard let s = Day(startDate), let e = Day(endDate), s <= e else {
            throw ValidationError("--start-date and --end-date must be YYYY-MM-DD, start ≤ end")
        }
        var cmp: DayRange?
        if let cs = compareStartDate, let ce = compareEndDate {
            guard let a = Day(cs), let b = Day(ce), a <= b else { throw ValidationError("bad comparison dates") }
            cmp = DayRange(a, b)
        }
        func ids(_ s: String?) throws -> [UUID128]? {
            try s.map { try $0.split(separator: ",").map { guard let u = UUID128(String($0)) else {
                throw ValidationError("bad id \($0)") }; return u } }
        }
        let req = EndpointRequest(
            client: c, period: DayRange(s, e), comparison: cmp, granularity: granularity.flatMap(Granularity.init),
            filters: Filters(approved: isApproved, categoryIds: try ids(categoryIds), vendorIds: try ids(vendorIds),
                             appIds: try ids(appIds), departmentIds: try ids(departmentIds)),
            sortBy: sortBy, sortOrder: sortOrder.flatMap(SortOrder.init), pageSize: pageSize)
        let (store, _) = try DumpLoader.load(folder: dump)
        print(String(decoding: try ep.respond(req, executor: Executor(store: store)), as: UTF8.self))
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load the bundled sample dump, print a summary and answer the seeds' example requests.")

    func run() throws {
        let path = defaultDumpPath()
        let loaded = try loadDump(path, lenient: false)
        printSummary(loaded, path: path)
        let ex = Executor(store: loaded.store)
        let acme = UUID128("aa7cf840-9ca9-46a3-9778-9015d6580d50")!
        let feb = DayRange(Day("2026-02-01")!, Day("2026-02-28")!), jan = DayRange(Day("2026-01-01")!, Day("2026-01-31")!)
        let asks: [(String, Endpoint, EndpointRequest)] = [
            ("AI app users, February 2026 (seed 000)", .aiUsers, EndpointRequest(client: acme, period: feb)),
            ("AI app users vs January, by name (seed 000)", .aiUsers,
             EndpointRequest(client: acme, period: feb, comparison: jan, sortBy: "canonical_name", sortOrder: .asc)),
            ("Departments using unapproved apps (seed 001)", .departments,
             EndpointRequest(client: acme, period: feb, granularity: .monthly, filters: Filters(approved: false))),
            ("… with month-over-month comparison (seed 001)", .departments,
             EndpointRequest(client: acme, period: feb, comparison: jan, granularity: .monthly,
                             filters: Filters(approved: false))),
        ]
        for (title, ep, req) in asks {
            print("\n# \(title)\n\(String(decoding: try ep.respond(req, executor: ex), as: UTF8.self))")
        }
    }
}
