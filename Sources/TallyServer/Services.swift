import Dispatch
import Foundation
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import TallyAPI
import TallyWrite
import UnixSignals

/// `tally serve` as swift-service-lifecycle services in one `ServiceGroup` (docs/OPERATIONS.md):
/// the append commit thread, the data loader (first load, then SIGHUP reloads), the binary
/// listener and the HTTP listener. On SIGTERM or SIGINT the group shuts them down in reverse
/// order: HTTP stops accepting and answers what it has read, then the binary listener does the
/// same, then the loader stops taking signals, and last the commit thread writes and answers
/// every batch it was given and closes the log.
public enum TallyServices {
    /// The services of a server, in the group's start order (shutdown runs backwards).
    public static func make(server: Server, writer: StoreWriter, logger: Logger) -> [any Service] {
        var services: [any Service] = []
        if writer.acceptsAppends { services.append(CommitService(writer: writer, logger: logger)) }
        services.append(LoaderService(writer: writer, logger: logger))
        if server.binaryPort != nil { services.append(ListenerService(server: server, index: 1, name: "binary", logger: logger)) }
        services.append(ListenerService(server: server, index: 0, name: "http", logger: logger))
        return services
    }
}

/// Raised when the first load fails: nothing can be served, the group stops and `tally` exits 1.
public struct InitialLoadFailed: Error, CustomStringConvertible {
    public var description: String
}

/// One listener: serves until shutdown, then stops accepting and lets its in-flight requests
/// be answered before it returns.
struct ListenerService: Service {
    let server: Server
    let index: Int
    let name: String
    let logger: Logger

    func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await server.closed(index).get()
        } onCancelOrGracefulShutdown: {
            logger.notice("listener stops accepting; answering requests in flight", metadata: ["listener": "\(name)"])
            server.shutdownListener(index)
        }
        // The socket is closed; wait until every accepted connection has answered what it read
        // and closed too (the same drain the handler above began, or begun now if the socket
        // closed on its own). Returning earlier let the event loops stop under live connections.
        try? await server.shutdownListener(index).get()
        logger.notice("listener closed", metadata: ["listener": "\(name)"])
    }
}

/// The first load (the process listens first: `/healthz` answers at once, `/readyz` once the
/// data is in), then a reload on every SIGHUP — the same path as `POST /v2/admin/reload`.
struct LoaderService: Service {
    let writer: StoreWriter
    let logger: Logger

    /// Runs a blocking reload off the concurrency pool's threads.
    static func reload(_ writer: StoreWriter) async -> Result<StoreWriter.ReloadOutcome, WriteError> {
        await withCheckedContinuation { done in
            DispatchQueue.global().async {
                do throws(WriteError) { done.resume(returning: .success(try writer.reload(nil))) } catch {
                    done.resume(returning: .failure(error))
                }
            }
        }
    }

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        switch await Self.reload(writer) {
        case .success(let o):
            logger.notice("serving", metadata: ["source": "\(o.source)", "clients": "\(o.clients)", "usage_rows": "\(o.usageRows)",
                                                "seconds": "\(String(format: "%.2f", o.seconds))"])
        case .failure(let e):
            throw InitialLoadFailed(description: "load failed, nothing is served: \(e.message)")
        }
        for await _ in hangups.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: reloading")
            if case .failure(let e) = await Self.reload(writer) {
                logger.error("reload failed; the data loaded before is still served", metadata: ["error": "\(e.message)"])
            }
        }
    }
}

/// The append commit thread: at shutdown (after both listeners, so that no new batch can come)
/// it makes every queued batch durable, answers it, and closes the log.
struct CommitService: Service {
    let writer: StoreWriter
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                writer.stopAndWait()
                done.resume()
            }
        }
    }
}

extension Observability {
    /// Metrics kept in a Prometheus registry (swift-prometheus), exposed at `GET /metrics`,
    /// with request latency buckets from 25 µs to 1 s.
    public static func prometheus(accessLog: AccessLogPolicy = .off, metricsPeers: Set<String> = [],
                                  logLevel: Logger.Level? = nil) -> Observability {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "tally_request_duration_seconds": ServiceMetrics.latencyBuckets,
            "tally_wal_fsync_duration_seconds": ServiceMetrics.fsyncBuckets,
        ]
        return Observability(metrics: ServiceMetrics(factory: factory), exposition: { registry.emitToBuffer() },
                             accessLog: accessLog, metricsPeers: metricsPeers, logLevel: logLevel)
    }
}
