import ArgumentParser
import Configuration
import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TallyAPI
import TallyGenerate
import TallyIngest
import TallyServer
import TallyWrite
import TallyStorage

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP/JSON API (SPEC §3) and the binary protocol (SPEC §4). With no arguments: the bundled sample on 127.0.0.1:8080 (HTTP) and 8081 (binary).",
        discussion: """
            Every option can also be set by an environment variable: TALLY_ and the option's name in \
            capitals with underscores (--binary-port → TALLY_BINARY_PORT, --no-binary → TALLY_NO_BINARY=true, \
            --metrics-peer → TALLY_METRICS_PEER=a,b). A flag on the command line wins over the environment.
            SIGTERM or SIGINT: stop accepting, answer what is in flight, write every acknowledged append, \
            close the log, exit 0. SIGHUP: reload the data, as POST /v2/admin/reload does.
            """)

    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "Port to listen on (0: any free port; default 8080).") var port: Int?
    @Option(help: "Port of the binary protocol listener (0: any free port; default 8081).") var binaryPort: Int?
    @Flag(help: "Do not start the binary protocol listener.") var noBinary = false
    @Option(help: "Dump to serve: a folder, s3://BUCKET/PREFIX/ or https://HOST/PREFIX/ (default: the bundled sample).")
    var dump: String?
    @Option(help: "Native snapshot to serve instead (tally snapshot save): a file, s3://BUCKET/KEY or an https:// URL.")
    var snapshot: String?
    @Option(help: "Write-ahead log of appended usage rows (created if missing; replayed onto the data at start). Enables POST …/usage-events.")
    var wal: String?
    @Option(help: "Tokens file (JSON: name, sha256, clients). Required unless the address is loopback.")
    var tokens: String?
    @Option(help: "Event-loop threads (default: the number of cores).")
    var threads: Int?
    @Option(help: "Threads for heavy queries, at a lower priority (default: as many as --threads). Fewer leave more of the machine to quick requests while heavy ones run, at the cost of heavy throughput.")
    var queryThreads: Int?
    @Flag(help: "Skip bad dump rows instead of refusing the dump.") var lenient = false
    @Option(help: "Activity dates a dump may hold: FIRST..LAST (default 2000-01-01 to a year after today); a row outside is a load error (skipped with --lenient).")
    var dateRange: String?
    @Option(help: ArgumentHelp("Serve a client generated in process instead of a dump: USERSxAPPSxDAYS[xDEPARTMENTS], or enterprise (benchmarks).",
                               valueName: "shape"))
    var synthetic: String?
    @Option(help: "Log lines as text or json (one JSON object per line), on standard error (default text).")
    var logFormat: String?
    @Option(help: "Least level logged: trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?
    @Option(help: "Access log: all, errors (status ≥ 400), sample:N (one request in N, and every error) or off (default off).")
    var accessLog: String?
    @Option(help: "An address other than loopback that may read /metrics (repeatable).")
    var metricsPeer: [String] = []
    @Flag(help: "Do not keep metrics (GET /metrics answers 404).") var noMetrics = false
    @Option(help: "Heavy queries that may wait for or run on the query threads at once, over both listeners; beyond it a heavy request gets 503 overloaded with Retry-After (default 64).")
    var maxHeavyQueue: Int?

    /// The options as resolved: the command line, else `TALLY_*`, else the default.
    struct Settings {
        var host = "127.0.0.1", port = 8080, binaryPort = 8081, noBinary = false
        var dump: String?, snapshot: String?, wal: String?, tokens: String?, synthetic: String?
        var threads = ProcessInfo.processInfo.activeProcessorCount, queryThreads: Int?
        var lenient = false, noMetrics = false, dates = DateWindow.standard()
        var logFormat = "text", logLevel = Logger.Level.info, accessLog = AccessLogPolicy.off
        var metricsPeers: [String] = []
        var maxHeavyQueue = 64
        /// `TALLY_QUERY_NICE` only (no flag): for measuring the heavy lane's share (docs/BENCHMARKS.md).
        var queryNice: Int32 = 19
        var queryIdle = false
        /// `TALLY_TAIL_MIN_ROWS`, `TALLY_MERGE_MIN_ROWS`, `TALLY_MERGE_AFTER_SECONDS` only (no
        /// flags): when appends go to tails and when tails are merged (docs/APPENDS.md, "The tail").
        var tailMinRows = ClientStore.tailMinRows
        var mergeMinRows: Int?
        var mergeAfterSeconds = 300.0
        /// `TALLY_MERGE_SCHED` only: the merge and rebuild thread's scheduling, `idle` or `nice`
        /// (nice 19; docs/BENCHMARKS.md, "Merges under `SCHED_IDLE`, and the log
        /// written beside the apply").
        var mergePriority = StoreWriter.defaultMergePriority
        /// `TALLY_CURSOR_PIN_MIB` only: the most bytes of replaced client versions cursors keep
        /// (``CursorPins``); 0 keeps none (a cursor then continues on the data served now).
        var cursorPinMiB = CursorPins.defaultBudgetBytes >> 20
    }

    func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Settings {
        let env = ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment))
        func text(_ key: String) -> String? { env.string(forKey: ConfigKey(["tally", key])) }
        func number(_ key: String, _ flag: String) throws -> Int? {
            guard let t = text(key) else { return nil }
            guard let n = Int(t) else { throw ValidationError("\(flag) (from the environment) must be a whole number; got \"\(t)\"") }
            return n
        }
        func flag(_ key: String) -> Bool { env.bool(forKey: ConfigKey(["tally", key])) ?? false }
        var s = Settings()
        s.host = host ?? text("host") ?? s.host
        s.port = try port ?? number("port", "TALLY_PORT") ?? s.port
        s.binaryPort = try binaryPort ?? number("binaryPort", "TALLY_BINARY_PORT") ?? s.binaryPort
        s.noBinary = noBinary || flag("noBinary")
        s.dump = dump ?? text("dump")
        s.snapshot = snapshot ?? text("snapshot")
        s.wal = wal ?? text("wal")
        s.tokens = tokens ?? text("tokens")
        s.synthetic = synthetic ?? text("synthetic")
        s.threads = try threads ?? number("threads", "TALLY_THREADS") ?? s.threads
        s.queryThreads = try queryThreads ?? number("queryThreads", "TALLY_QUERY_THREADS")
        s.maxHeavyQueue = try maxHeavyQueue ?? number("maxHeavyQueue", "TALLY_MAX_HEAVY_QUEUE") ?? s.maxHeavyQueue
        if s.maxHeavyQueue < 0 { throw ValidationError("--max-heavy-queue must be 0 or more") }
        if let n = try number("queryNice", "TALLY_QUERY_NICE") {
            guard (0...19).contains(n) else { throw ValidationError("TALLY_QUERY_NICE must be from 0 to 19; got \(n)") }
            s.queryNice = Int32(n)
        }
        s.tailMinRows = try number("tailMinRows", "TALLY_TAIL_MIN_ROWS") ?? s.tailMinRows
        s.mergeMinRows = try number("mergeMinRows", "TALLY_MERGE_MIN_ROWS")
        if let t = text("mergeAfterSeconds") {
            guard let v = Double(t), v > 0 else { throw ValidationError("TALLY_MERGE_AFTER_SECONDS must be a number of seconds above 0; got \"\(t)\"") }
            s.mergeAfterSeconds = v
        }
        s.cursorPinMiB = try number("cursorPinMib", "TALLY_CURSOR_PIN_MIB") ?? s.cursorPinMiB
        if s.cursorPinMiB < 0 { throw ValidationError("TALLY_CURSOR_PIN_MIB must be 0 or more") }
        if s.tailMinRows < 0 || (s.mergeMinRows ?? 1) < 1 {
            throw ValidationError("TALLY_TAIL_MIN_ROWS must be 0 or more, TALLY_MERGE_MIN_ROWS 1 or more")
        }
        /// `nice` or `idle` (true), or not set.
        func idle(_ key: String, _ name: String) throws -> Bool? {
            guard let policy = text(key) else { return nil }
            guard policy == "nice" || policy == "idle" else { throw ValidationError("\(name) must be nice or idle; got \(policy)") }
            return policy == "idle"
        }
        if let i = try idle("mergeSched", "TALLY_MERGE_SCHED") { s.mergePriority = i ? .idle : .nice(19) }
        s.queryIdle = try idle("querySched", "TALLY_QUERY_SCHED") ?? s.queryIdle
        s.lenient = lenient || flag("lenient")
        s.dates = try dateWindow(dateRange ?? text("dateRange"))
        s.noMetrics = noMetrics || flag("noMetrics")
        s.logFormat = logFormat ?? text("logFormat") ?? s.logFormat
        guard ["text", "json"].contains(s.logFormat) else { throw ValidationError("--log-format must be text or json") }
        if let l = logLevel ?? text("logLevel") {
            guard let level = Logger.Level(rawValue: l) else {
                throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
            }
            s.logLevel = level
        }
        if let a = accessLog ?? text("accessLog") {
            guard let policy = AccessLogPolicy(a) else { throw ValidationError("--access-log must be all, errors, sample:N (N ≥ 1) or off") }
            s.accessLog = policy
        }
        s.metricsPeers = metricsPeer.isEmpty ? (text("metricsPeer")?.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } ?? [])
            : metricsPeer
        if s.tokens == nil && !Self.isLoopback(s.host) {
            throw ValidationError("--tokens is required to listen on \(s.host): the demo token is accepted on loopback only")
        }
        if s.threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let q = s.queryThreads, q < 1 { throw ValidationError("--query-threads must be at least 1") }
        if [s.dump != nil, s.snapshot != nil, s.synthetic != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give one of --dump, --snapshot and --synthetic")
        }
        return s
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    func run() async throws {
        let s = try settings()
        tuneAllocator()
        let level = s.logLevel
        if s.logFormat == "json" {
            LoggingSystem.bootstrap { label in
                var h = JSONLogHandler(label: label)
                h.logLevel = level
                return h
            }
        } else {
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
        }
        var logger = Logger(label: "tally")
        logger.logLevel = level
        let tokenStore: TokenStore
        if let t = s.tokens {
            do { tokenStore = try TokenStore.load(path: t) } catch { throw ValidationError("\(error)") }
        } else {
            tokenStore = .demo
        }
        let observability = s.noMetrics
            ? Observability(accessLog: s.accessLog, metricsPeers: Set(s.metricsPeers), logLevel: level)
            : Observability.prometheus(accessLog: s.accessLog, metricsPeers: Set(s.metricsPeers), logLevel: level)
        let shape = try s.synthetic.map { text -> SyntheticShape in
            guard let shape = SyntheticShape.parse(text) else {
                throw ValidationError("--synthetic takes USERSxAPPSxDAYS[xDEPARTMENTS], e.g. 20000x600x366, or enterprise")
            }
            return shape
        }
        // Where data comes from, for the first load and for every reload (SIGHUP, POST /v2/admin/reload).
        let origin: DataSource.Origin
        if let shape {
            let dataLog = observability.data
            origin = .made("synthetic \(shape.users)x\(shape.apps)x\(shape.days)") {
                let (catalog, builder) = SyntheticClient.make(shape)
                let client = builder.build()
                dataLog.notice("generated a client", metadata: [
                    "client": "\(client.info.id)", "users": "\(client.users.count)", "apps": "\(client.apps.count)",
                    "usage_rows": "\(client.usage?.rowCount ?? 0)",
                    "days": "\(client.usage.map { "\($0.firstDay)…\($0.newestDay)" } ?? "")"])
                return Store(catalog: catalog, clients: [client])
            }
        } else if let file = s.snapshot {
            origin = .snapshot(file)
        } else {
            origin = .dump(s.dump ?? defaultDumpPath())
        }
        let source = DataSource(origin, mode: s.lenient ? .lenient : .strict, dates: s.dates, showProgress: { location, progress in
            let shown = ProgressDisplay(what: location)
            shown.start(progress)
            return { shown.finish() }
        })
        var log: WriteAheadLog?
        if let wal = s.wal {
            do {
                log = try WriteAheadLog(path: wal)
                logger.notice("write-ahead log opened", metadata: [
                    "path": "\(wal)", "records_to_replay": "\(log!.recoveredCount)", "dropped_torn_bytes": "\(log!.droppedBytes)"])
            } catch {
                throw ValidationError("\(error)")
            }
        }
        let writer = StoreWriter(log: log, source: source, observer: observability, tailMinRows: s.tailMinRows,
                                 mergeMinRows: s.mergeMinRows, mergeAfterSeconds: s.mergeAfterSeconds,
                                 cursorPinBytes: s.cursorPinMiB << 20, mergePriority: s.mergePriority)
        let api = API(writer: writer, tokens: tokenStore, observability: observability)
        let server: Server
        do {
            var limits = ServerLimits()
            limits.maxQueuedHeavy = s.maxHeavyQueue
            limits.queryThreadNice = s.queryNice
            limits.queryThreadIdle = s.queryIdle
            server = try Server(api: api, host: s.host, port: s.port, binaryPort: s.noBinary ? nil : s.binaryPort, threads: s.threads,
                                queryThreads: s.queryThreads, limits: limits)
        } catch {
            logger.critical("cannot listen", metadata: ["host": "\(s.host)", "port": "\(s.port)",
                                                        "binary_port": "\(s.noBinary ? "off" : String(s.binaryPort))", "error": "\(error)"])
            throw ExitCode.failure
        }
        logger.notice("listening", metadata: [
            "http": "http://\(s.host):\(server.port)", "binary": "\(server.binaryPort.map { "tally://\(s.host):\($0)" } ?? "off")",
            "event_loops": "\(s.threads)", "query_threads": "\(server.pool.numberOfThreads)", "version": "\(TallyVersion.string)",
            "metrics": "\(s.noMetrics ? "off" : "/metrics")", "access_log": "\(s.accessLog)",
            "demo_token": "\(s.tokens == nil ? TokenStore.demoToken : "off")"])

        // One ServiceGroup: SIGTERM / SIGINT shut the services down in reverse order (HTTP,
        // binary, loader, commit thread); SIGHUP reloads (LoaderService).
        let group = ServiceGroup(configuration: .init(
            services: TallyServices.make(server: server, writer: writer, logger: logger)
                .map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        var failure: Error?
        do { try await group.run() } catch { failure = error }
        // A failed service (the first load) stopped the group: stop the listeners too.
        if failure != nil {
            server.initiateShutdown()
            try? await server.shutdownListener(0).get()
            if server.binaryPort != nil { try? await server.shutdownListener(1).get() }
            writer.stopAndWait()
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                server.stopThreads()
                done.resume()
            }
        }
        if let failure {
            logger.critical("stopped", metadata: ["error": "\(failure)"])
            throw ExitCode.failure
        }
        logger.notice("stopped")
    }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("tally: \(message)\n".utf8))
}
