import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import TallyAPI
import TallyGenerate
import TallyIngest
import TallyServer
import TallyStorage

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP/JSON API (SPEC §3) and the binary protocol (SPEC §4). With no arguments: the bundled sample on 127.0.0.1:8080 (HTTP) and 8081 (binary).")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(help: "Port of the binary protocol listener (0: any free port).") var binaryPort = 8081
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
    var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Threads for heavy queries, at a lower priority (default: as many as --threads). Fewer leave more of the machine to quick requests while heavy ones run, at the cost of heavy throughput.")
    var queryThreads: Int?
    @Flag(help: "Skip bad dump rows instead of refusing the dump.") var lenient = false
    @Option(help: ArgumentHelp("Serve a client generated in process instead of a dump: USERSxAPPSxDAYS (benchmarks).",
                               valueName: "shape"))
    var synthetic: String?

    func validate() throws {
        if tokens == nil && !Self.isLoopback(host) {
            throw ValidationError("--tokens is required to listen on \(host): the demo token is accepted on loopback only")
        }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let q = queryThreads, q < 1 { throw ValidationError("--query-threads must be at least 1") }
        if [dump != nil, snapshot != nil, synthetic != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give one of --dump, --snapshot and --synthetic")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    func run() throws {
        tuneAllocator()
        let tokenStore: TokenStore
        if let t = tokens {
            do { tokenStore = try TokenStore.load(path: t) } catch { throw ValidationError("\(error)") }
        } else {
            tokenStore = .demo
        }
        let holder = StoreHolder()
        let path = dump ?? defaultDumpPath()
        let lenient = self.lenient
        let shape = try synthetic.map { text -> SyntheticShape in
            let n = text.split(separator: "x").compactMap { Int($0) }
            guard n.count == 3 else { throw ValidationError("--synthetic takes USERSxAPPSxDAYS, e.g. 20000x600x366") }
            return SyntheticShape(users: n[0], apps: n[1], days: n[2])
        }
        // Where data comes from, for the first load and for every reload (SIGHUP, POST /v2/admin/reload).
        let startSnapshot = snapshot
        let loader: StoreLoader = { source in
            if let shape, source == nil {
                let (catalog, builder) = SyntheticClient.make(shape)
                let client = builder.build()
                log("generated client \(client.info.id): \(client.users.count) users, \(client.apps.count) apps, "
                    + "\(client.usage?.rowCount ?? 0) usage rows, \(client.usage.map { "\($0.firstDay)…\($0.newestDay)" } ?? "")")
                return (Store(catalog: catalog, clients: [client]), "synthetic \(shape.users)x\(shape.apps)x\(shape.days)")
            }
            switch source {
            case .snapshot(let file)?:
                return (try readSnapshot(file), file)
            case .dump(let folder)?:
                return (try loadDump(folder, lenient: lenient).store, folder)
            case nil:
                if let file = startSnapshot { return (try readSnapshot(file), file) }
                return (try loadDump(path, lenient: lenient).store, path)
            }
        }
        var appender: Appender?
        if let wal {
            do {
                let log = try WriteAheadLog(path: wal)
                tally.log("write-ahead log \(wal): \(log.recovered.count) records to replay"
                    + (log.droppedBytes > 0 ? "; dropped a torn record of \(log.droppedBytes) bytes at its end" : ""))
                appender = Appender(holder: holder, wal: log)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        let reloader = Reloader(holder: holder, appender: appender, loader: loader)
        let api = API(holder: holder, tokens: tokenStore, reloader: reloader, appender: appender)
        let server: Server
        do {
            server = try Server(api: api, host: host, port: port, binaryPort: noBinary ? nil : binaryPort, threads: threads,
                                queryThreads: queryThreads)
        } catch {
            log("cannot listen on \(host) port \(port)" + (noBinary ? "" : " and \(binaryPort) (binary protocol)") + ": \(error)")
            throw ExitCode.failure
        }
        log("listening on http://\(host):\(server.port)"
            + (server.binaryPort.map { " and tally://\(host):\($0) (binary protocol)" } ?? "") + " (\(threads) event loops, \(server.pool.numberOfThreads) query threads)"
            + (tokens == nil ? "; demo token \(TokenStore.demoToken) accepted for every client" : ""))

        // SIGTERM / SIGINT: stop accepting, finish what is in flight, exit.
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let signals = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
        for s in signals {
            s.setEventHandler {
                log("shutting down: finishing requests in flight")
                server.initiateShutdown()
            }
            s.resume()
        }

        // SIGHUP: load the same source again beside the served data and swap it in.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler {
            log("SIGHUP: reloading")
            do throws(APIError) {
                let o = try reloader.reload(source: nil)
                log("reloaded \(o.source): \(o.clients) clients, \(o.usageRows) usage rows in \(String(format: "%.2f s", o.seconds))")
            } catch {
                log("reload failed (\(error.code)): \(error.message)")
            }
        }
        hangup.resume()

        // Listen first, load beside: /healthz answers at once, /readyz once the data is in.
        let failed = Mutex(false)
        DispatchQueue.global().async {
            do throws(APIError) {
                let o = try reloader.reload(source: nil)
                log("loaded \(o.source): \(o.clients) clients, \(o.usageRows) usage rows in \(String(format: "%.2f s", o.seconds))")
            } catch {
                log("load failed, nothing is served: \(error.message)")
                failed.withLock { $0 = true }
                server.initiateShutdown()
            }
        }
        server.run()
        appender?.stop()
        withExtendedLifetime((signals, hangup)) {}
        log("stopped")
        if failed.withLock({ $0 }) { throw ExitCode.failure }
    }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("tally: \(message)\n".utf8))
}
