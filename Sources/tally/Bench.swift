import ArgumentParser
import Foundation
import TallyGenerate
import TallyQuery
import TallyStorage

/// A quick in-process measurement on a generated client; the package-benchmark suite in
/// `Benchmarks/` is the reference, this is for a first look from the command line.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a client in process, build its store, print build rate, bytes per row and query times.")

    @Option var users = 20_000
    @Option var apps = 600
    @Option var days = 366
    @Option var iterations = 50
    @Option(help: "Only this endpoint (for profiling).") var only: String?
    @Option(help: "Level block sizes in days, comma-separated (default: the builder's).") var levels: String?
    @Option(help: "Filter every query: approval, category (category 1), vendor (vendor 0) or department (department 0).")
    var filter: String?
    @Option(help: "Trend granularity.") var granularity: String = "weekly"
    @Option(name: .customLong("write-dump"), help: "Write the generated client as a dump folder here, then stop.")
    var writeDump: String?
    @Option(help: "Only this period length in days.") var period: Int?

    func run() throws {
        let clock = ContinuousClock()
        tuneAllocator()
        _ = malloc_trim(0)
        let baseline = residentBytes()
        let t0 = clock.now
        var (catalog, builder) = SyntheticClient.make(SyntheticShape(users: users, apps: apps, days: days))
        let rows = builder.usageRowCount
        if let folder = writeDump {
            try DumpExport.write(catalog: catalog, clients: [builder], to: folder)
            print("wrote \(rows) usage rows to \(folder) in \((clock.now - t0).seconds) s")
            return
        }
        if let levels { builder.levelSizes = levels.split(separator: ",").compactMap { Int($0) } }
        let t1 = clock.now
        let client = builder.build()
        let t2 = clock.now
        builder = ClientStoreBuilder(info: client.info)  // drop the raw rows
        _ = malloc_trim(0)
        let resident = residentBytes() - baseline
        let store = Store(catalog: catalog, clients: [client])
        let u = client.usage!
        print("generated \(rows) rows in \((t1 - t0).seconds) s; built in \((t2 - t1).seconds) s "
              + "(\(Int(Double(rows) / (t2 - t1).seconds)) rows/s)")
        let distinct = u.rowCount
        print("distinct rows \(distinct); store \(client.byteCount) bytes = "
              + String(format: "%.2f", Double(client.byteCount) / Double(distinct)) + " B/row (accounting); "
              + "resident growth \(resident) bytes = " + String(format: "%.2f", Double(resident) / Double(distinct))
              + " B/row (RSS after the raw rows are freed)")
        print("levels (bytes): \(u.levelByteCounts)  segments: \(u.segmentByteCount)  "
              + "encoded segments: \(u.segments.reduce(0) { $0 + $1.encodedByteCount })")
        let ex = Executor(store: store)
        let end = u.newestDay
        for len in [30, 366] where period == nil || period == len {
            let period = DayRange(end.adding(-(len - 1)), end)
            let cmp = DayRange(period.start.adding(-len), period.start.adding(-1))
            for ep in Endpoint.allCases where only == nil || only == ep.rawValue {
                var f = Filters()
                switch filter {
                case "approval": f.approved = false
                case "category": f.categoryIds = [catalog.categories[1].id]
                case "vendor": f.vendorIds = [catalog.vendors[0].id]
                case "department": f.departmentIds = [client.departments[0].id]
                default: break
                }
                let req = EndpointRequest(client: client.info.id, period: period, comparison: cmp,
                                          granularity: Granularity(rawValue: granularity) ?? .weekly, filters: f,
                                          pageSize: 50)
                var times: [Double] = []
                for _ in 0..<iterations {
                    let s = clock.now
                    _ = try ep.respond(req, executor: ex)
                    times.append((clock.now - s).seconds * 1000)
                }
                times.sort()
                print(String(format: "%4d days %-14@ p50 %8.3f ms  p99 %8.3f ms", len, ep.rawValue as NSString,
                             times[times.count / 2], times[min(times.count - 1, times.count * 99 / 100)]))
            }
        }
    }
}

/// `tally generate`: a realistic multi-client dump for benchmarks (issue 5, SPEC §7).
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a generated multi-client dump: S ≈ 1 M usage rows, M ≈ 10 M, L ≈ 50 M (with one client of 20,000 users × 600 apps × 400 days).")

    @Option(help: "S, M or L.") var scale: String = "S"
    @Option(help: "Seed: the same seed writes the same dump.") var seed: UInt64 = 1
    @Option(help: "Output folder (replaced).") var out: String

    func validate() throws {
        guard DumpGenerator.Scale(rawValue: scale.uppercased()) != nil else { throw ValidationError("--scale must be S, M or L") }
    }

    func run() throws {
        let start = ContinuousClock.now
        let s = try DumpGenerator.write(DumpGenerator.Scale(rawValue: scale.uppercased())!, seed: seed, to: out)
        let d = ContinuousClock.now - start
        let secs = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        print("wrote \(out): \(s.clients) clients, \(s.usageRows) usage rows (largest client \(s.largestClientRows), "
              + "median \(s.medianClientRows)) in \(String(format: "%.1f", secs)) s = "
              + "\(String(format: "%.2f", Double(s.usageRows) / secs / 1e6)) M rows/s")
    }
}
