import ArgumentParser
import Foundation
import TallyAPI
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
    @Option var departments = 24
    @Option(help: "A named shape instead of --users/--apps/--days/--departments: enterprise (100,000 × 2,000 × 366, 240 departments of Zipf-like sizes).")
    var shape: String?
    @Option var iterations = 50
    @Option(help: "Only this endpoint (for profiling).") var only: String?
    @Option(help: "Level block sizes in days, comma-separated (default: the builder's).") var levels: String?
    @Option(help: "Filter every query that takes the filter (the others run without it, marked): approval (is_approved=false), approved (is_approved=true), category (category 1), vendor (vendor 0) or department (department 0).")
    var filter: String?
    @Option(help: "Trend granularity.") var granularity: String = "weekly"
    @Option(name: .customLong("write-dump"), help: "Write the generated client as a dump folder here, then stop.")
    var writeDump: String?
    @Option(help: "Only this period length in days (default: 30 and 366), ending on the newest day.") var period: Int?
    @Option(name: .customLong("filter-departments"), help: "With --filter department: how many of the client's departments (from the first).")
    var filterDepartments = 1
    @Option(name: .customLong("department-scan"), help: "Read a department filter `members` (user-major) or `bitmaps` (app-major) whatever it costs, to compare the two (default: `cheaper`).")
    var departmentScan: String?
    @Flag(help: "Build the levels and department members without packed arrays (as before snapshot format 3), to compare the two; category unions derived at query time still pack.")
    var unpacked = false

    func validate() throws {
        guard users > 0, apps > 0, days > 0, departments > 0 else {
            throw ValidationError("--users, --apps, --days and --departments must be at least 1")
        }
        guard shape == nil || shape == "enterprise" else { throw ValidationError("--shape must be enterprise") }
    }

    func run() throws {
        let clock = ContinuousClock()
        tuneAllocator()
        _ = malloc_trim(0)
        let baseline = residentBytes()
        let t0 = clock.now
        var shape = SyntheticShape(users: users, apps: apps, days: days)
        shape.departments = departments
        if self.shape != nil { shape = .enterprise }
        var (catalog, builder) = SyntheticClient.make(shape)
        let rows = builder.usageRowCount
        if let folder = writeDump {
            try DumpExport.write(catalog: catalog, clients: [builder], to: folder)
            print("wrote \(rows) usage rows to \(folder) in \((clock.now - t0).seconds) s")
            return
        }
        if let levels { builder.levelSizes = levels.split(separator: ",").compactMap { Int($0) } }
        if unpacked { builder.packedArrays = false }
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
        print("levels (bytes): \(u.levelByteCounts)  pairs: \(u.pairs.base.byteCount)  "
              + "range tables: \(u.rangeCounts.tableCount) of \(u.entityCount) entities, \(u.rangeCounts.byteCount) bytes")
        if filter == "department" {
            let set = UserSet(domain: client.users.count)
            set.touchAll()
            for d in client.departments.prefix(filterDepartments).indices { client.addMembers(of: d, into: set) }
            var users = 0, pairs = 0
            set.forEach { users += 1; pairs += u.pairs.pairCount(user: Int($0)) }
            print("department filter: \(filterDepartments) of \(client.departments.count) departments, \(users) users, \(pairs) pairs of \(u.pairs.pairCount)")
        }
        var ex = Executor(store: store)
        if let departmentScan, let scan = DepartmentScan(rawValue: departmentScan) { ex.departmentScan = scan }
        let end = u.newestDay
        for len in (period.map { [$0] } ?? [30, 366]) {
            let period = DayRange(end.adding(-(len - 1)), end)
            let cmp = DayRange(period.start.adding(-len), period.start.adding(-1))
            for ep in Endpoint.allCases where only == nil || only == ep.rawValue {
                // Only the filters the endpoint takes (SPEC §3; `Endpoint.filters`): over HTTP and
                // the binary protocol the others never reach it (B, F and H take no department
                // filter), so a figure with one would be of a query no caller can send.
                var f = Filters(), takes = true
                switch filter {
                case "approval", "approved": takes = ep.filters.contains(.isApproved); if takes { f.approved = filter == "approved" }
                case "category": takes = ep.filters.contains(.categoryIds); if takes { f.categoryIds = [catalog.categories[1].id] }
                case "vendor": takes = ep.filters.contains(.vendorIds); if takes { f.vendorIds = [catalog.vendors[0].id] }
                case "department":
                    takes = ep.filters.contains(.departmentIds)
                    if takes { f.departmentIds = client.departments.prefix(filterDepartments).map(\.id) }
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
                             times[times.count / 2], times[min(times.count - 1, times.count * 99 / 100)])
                      + (takes ? "" : "  (takes no \(filter ?? "") filter: none applied)"))
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

/// `tally bench`: times queries in process (no sockets) through the same API core the listeners
/// use, for the peer comparison (tools/peers): the full list (every page of 200, as the peers
/// return it) and the first page of 50, each the median of `--runs` warm runs.
struct BenchQueries: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time queries in process: reads a JSON list of {id, client, path, params}, prints a JSON list of timings.")

    @Option(help: "Dump (folder, s3://, https://) or snapshot to load.") var dump: String
    @Option(help: "JSON file: [{\"id\": …, \"client\": UUID, \"path\": \"utilization/departments\", \"params\": {…}}, …]; a path starting with / is used as is, with {client_id} replaced")
    var queries: String
    @Option(help: "Timed runs per query (after one warm-up).") var runs = 5
    @Flag(help: "Time only the first page, with the query's own page_size, and without a warm-up run: caches hold what the previous queries left, as in a server's mix (for profiling).")
    var firstPageOnly = false
    @Option(name: .customLong("tail-fraction"), help: "Before timing, append random new rows on each large client's newest day (at least 200,000 rows), this fraction of its rows, in batches of 1,000 as appends do: they stay in a tail beside its index (issue 14).")
    var tailFraction: Double = 0
    @Flag(name: .customLong("tail-merged"), help: "With --tail-fraction: time the clients rebuilt with those rows instead (the same data, no tail).")
    var tailMerged = false
    @Option(name: .customLong("tail-next-share"), help: "With --tail-fraction: this share of the rows dated the day after the newest instead (a new day's first rows, the tail's second day).")
    var tailNextShare: Double = 0

    func run() throws {
        tuneAllocator()
        var store: Store
        do { store = try loadSource(dump, lenient: false) } catch { throw ValidationError("\(error)") }
        if tailFraction > 0 { store = Self.withTails(store, fraction: tailFraction, merged: tailMerged, nextShare: tailNextShare) }
        guard let data = FileManager.default.contents(atPath: queries),
              let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw ValidationError("\(queries): expected a JSON list of {id, client, path, params}")
        }
        let api = API(serving: store, tokens: .demo)
        let clock = ContinuousClock()
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15 }
        var out: [[String: Any]] = []
        for q in list {
            guard let client = q["client"] as? String, let path = q["path"] as? String else { continue }
            var params: [(String, String)] = []
            if let d = q["params"] as? [String: Any] { params = d.map { ($0.key, "\($0.value)") }.sorted { $0.0 < $1.0 } }
            if let a = q["params"] as? [[String]] { params = a.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil } }
            params.removeAll { $0.0 == "cursor" || ($0.0 == "page_size" && !firstPageOnly) }
            func request(_ extra: [(String, String)]) -> APIRequest {
                let query = (params + extra).map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? $0.1)" }
                    .joined(separator: "&")
                // A path that starts with "/" is taken as it is ({client_id} replaced), so that the
                // directory and admin routes can be timed too; otherwise it is under analytics/apps/.
                let full = path.hasPrefix("/") ? path.replacingOccurrences(of: "{client_id}", with: client)
                    : "/v2/clients/\(client)/analytics/apps/\(path)"
                return APIRequest(method: "GET", path: full, query: query,
                                  authorization: "Bearer \(TokenStore.demoToken)")
            }
            /// Every page, following cursors; returns the status, rows and pages.
            func full() -> (Int, Int, Int) {
                var cursor: String?, rows = 0, pages = 0
                repeat {
                    let r = api.handle(request([("page_size", "200")] + (cursor.map { [("cursor", $0)] } ?? [])))
                    pages += 1
                    guard r.status == 200 else { return (r.status, rows, pages) }
                    let json = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
                    rows += (json?["data"] as? [Any])?.count ?? 0
                    cursor = json?["next_cursor"] as? String
                } while cursor != nil
                return (200, rows, pages)
            }
            var (status, rows, pages) = firstPageOnly ? (0, 0, 1) : full()
            var fullTimes: [Double] = [], firstTimes: [Double] = []
            // The pages' requests are made once, untimed (the cursors are the same every run): a
            // run times the API's answers alone, not this harness's string work (building each
            // request and finding its cursor with Foundation took about 6% of a run's samples
            // under `perf`, 2026-12-01).
            var pageRequests: [APIRequest] = []
            if !firstPageOnly {
                var cursor: String?
                repeat {
                    let req = request([("page_size", "200")] + (cursor.map { [("cursor", $0)] } ?? []))
                    pageRequests.append(req)
                    cursor = Self.nextCursor(api.handle(req).body)
                } while cursor != nil
            }
            for _ in 0..<max(1, runs) where !firstPageOnly {
                let t0 = clock.now
                for req in pageRequests { _ = api.handle(req) }
                fullTimes.append(ms(clock.now - t0))
            }
            for _ in 0..<max(1, runs) {
                let t1 = clock.now
                let r = api.handle(request([]))
                firstTimes.append(ms(clock.now - t1))
                if firstPageOnly { status = r.status }
            }
            func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
            out.append(["id": q["id"] ?? "", "status": status, "rows": rows, "pages": pages,
                        "median_ms": fullTimes.isEmpty ? 0 : median(fullTimes), "first_page_median_ms": median(firstTimes),
                        "first_page_p99_ms": firstTimes.sorted()[min(firstTimes.count - 1, firstTimes.count * 99 / 100)]])
        }
        let json = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }

    /// `store` with random new rows on each large client's newest day, `fraction` of its rows,
    /// appended 1,000 at a time into a tail (or, `merged`, rebuilt into the client), seeded.
    static func withTails(_ store: Store, fraction: Double, merged: Bool, nextShare: Double = 0) -> Store {
        var replaced: [ClientStore] = []
        var r = SplitMix64(seed: 0x9E37_79B9_7F4A_7C15)
        for c in store.clients {
            guard let usage = c.usage, usage.rowCount >= ClientStore.tailMinRows else { continue }
            let want = Int(Double(usage.rowCount) * fraction), day = usage.newestDay.raw
            var client = c
            var applied: [Double] = []
            while (client.usage?.rowCount ?? 0) - usage.rowCount < want {
                var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
                for _ in 0..<1000 {
                    us.append(UInt32(r.next() % UInt64(c.users.count)))
                    ap.append(UInt32(r.next() % UInt64(c.apps.count)))
                    ds.append(Double(r.next() % 1_000_000) < nextShare * 1_000_000 ? day + 1 : day)
                }
                let start = ContinuousClock.now
                client = client.appending(users: us, apps: ap, days: ds)
                applied.append((ContinuousClock.now - start).seconds * 1000)
            }
            let tail = client.usage?.tail?.rowCount ?? 0
            if merged { client = client.merged() }
            let how = merged ? "and merged" : "in a tail of \(tail) rows"
            // Each batch's apply (what the commit thread does for it), as a check on the tail's cost.
            applied.sort()
            let q = { (p: Double) in String(format: "%.2f", applied[min(applied.count - 1, Int(p * Double(applied.count)))]) }
            let on = nextShare > 0 ? "\(usage.newestDay) and the day after" : "\(usage.newestDay)"
            FileHandle.standardError.write(Data(("\(c.info.name): \(client.usage!.rowCount - usage.rowCount) rows added on \(on) \(how); "
                + "\(applied.count) batches applied in p50 \(q(0.5)) / p90 \(q(0.9)) / p99 \(q(0.99)) / max \(q(1)) ms\n").utf8))
            replaced.append(client)
        }
        return store.replacing(replaced, walSequence: store.walSequence)
    }

    /// Characters a query value keeps as they are (RFC 3986 unreserved).
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `next_cursor`'s value in a page, found without parsing the whole body.
    static func nextCursor(_ body: [UInt8]) -> String? {
        let text = String(decoding: body.suffix(512), as: UTF8.self)
        guard let r = text.range(of: "\"next_cursor\":\"") else { return nil }
        let rest = text[r.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}
