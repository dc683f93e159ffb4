import CoreMetrics
import Foundation
import Logging
import Synchronization
import TallyStorage
import TallyWrite

/// The version `tally --version`, `tally_build_info` and the console show.
public enum TallyVersion {
    public static let string = "0.13.0"
}

/// Which listener a request came in on (the `listener` label).
public enum Listener: Int, Sendable, CaseIterable {
    case http = 0, binary = 1
    public var label: String { self == .http ? "http" : "binary" }
}

/// The service's metrics (SPEC §3d), recorded through swift-metrics into the factory given —
/// Prometheus in `tally serve`, nothing by default. Every handle is made once, here: recording a
/// request is a counter increment, a histogram record and a status counter, with no lookup by
/// label and no client id anywhere in a label.
public final class ServiceMetrics: Sendable {
    /// Request latency buckets, 25 µs to 1 s: Tally answers most queries in well under a
    /// millisecond, so the library's defaults (from 5 ms) would put every request in one bucket.
    public static let latencyBuckets: [Duration] = [
        .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
    ]
    /// Write-ahead log fsync buckets, 50 µs to 1 s.
    public static let fsyncBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .seconds(1),
    ]
    /// The statuses the server answers with; any other is counted as `other`.
    static let statuses = [200, 400, 401, 403, 404, 405, 408, 409, 413, 422, 429, 431, 500, 503]

    /// The `endpoint` label of each route (``Registry/routes`` order), then `none` for a request
    /// that matched no route.
    public static let endpointLabels: [String] = Registry.routes.map(\.name) + ["none"]

    let requests: [[Counter]]
    let durations: [[CoreMetrics.Timer]]
    let responses: [[Counter]]
    let inFlight: [Meter]
    let connections: [Meter]
    let clients: Gauge, usageRows: Gauge, storeBytes: Gauge, residentBytes: Gauge, heapAllocated: Gauge, heapFree: Gauge
    let lastReloadTime: Gauge, lastReloadSuccess: Gauge, lastReloadDuration: Gauge
    let reloads: (ok: Counter, failed: Counter)
    let appendRows: Counter, appendBatches: Counter, appendRefused: Counter
    /// Merges of tails into their clients' indexes (installed, dropped) and how long they took.
    let merges: (ok: Counter, dropped: Counter), mergeDuration: CoreMetrics.Timer
    let fsync: CoreMetrics.Timer
    let walBytes: Gauge
    let ackedSequence: Gauge, ackedTime: Gauge
    let cursorPins: Gauge, cursorPinnedBytes: Gauge, cursorFallbacks: Counter
    /// Rows appended into tails and not yet merged (all clients, the largest client's), clients with one, and the age of the oldest.
    let deltaRows: Gauge, deltaRowsMax: Gauge, deltaClients: Gauge, deltaOldestAge: Gauge
    let startTime: Gauge
    let buildInfo: Gauge

    public init(factory: MetricsFactory) {
        let statusIndex = Self.statuses.map(String.init) + ["other"]
        requests = Listener.allCases.map { l in
            Self.endpointLabels.map { Counter(label: "tally_requests_total", dimensions: [("endpoint", $0), ("listener", l.label)], factory: factory) }
        }
        durations = Listener.allCases.map { l in
            Self.endpointLabels.map {
                CoreMetrics.Timer(label: "tally_request_duration_seconds", dimensions: [("endpoint", $0), ("listener", l.label)], factory: factory)
            }
        }
        responses = Listener.allCases.map { l in
            statusIndex.map { Counter(label: "tally_responses_total", dimensions: [("listener", l.label), ("status", $0)], factory: factory) }
        }
        inFlight = Listener.allCases.map { Meter(label: "tally_requests_in_flight", dimensions: [("listener", $0.label)], factory: factory) }
        connections = Listener.allCases.map { Meter(label: "tally_connections_open", dimensions: [("listener", $0.label)], factory: factory) }
        func gauge(_ name: String, _ dimensions: [(String, String)] = []) -> Gauge {
            Gauge(label: name, dimensions: dimensions, factory: factory)
        }
        clients = gauge("tally_clients")
        usageRows = gauge("tally_usage_rows")
        storeBytes = gauge("tally_store_bytes")
        residentBytes = gauge("tally_resident_bytes")
        heapAllocated = gauge("tally_heap_allocated_bytes")
        heapFree = gauge("tally_heap_free_bytes")
        lastReloadTime = gauge("tally_last_reload_timestamp_seconds")
        lastReloadSuccess = gauge("tally_last_reload_success")
        lastReloadDuration = gauge("tally_last_reload_duration_seconds")
        reloads = (Counter(label: "tally_reloads_total", dimensions: [("result", "ok")], factory: factory),
                   Counter(label: "tally_reloads_total", dimensions: [("result", "failed")], factory: factory))
        appendRows = Counter(label: "tally_append_rows_total", factory: factory)
        appendBatches = Counter(label: "tally_append_batches_total", factory: factory)
        appendRefused = Counter(label: "tally_append_refused_batches_total", factory: factory)
        merges = (Counter(label: "tally_merges_total", dimensions: [("result", "ok")], factory: factory),
                  Counter(label: "tally_merges_total", dimensions: [("result", "dropped")], factory: factory))
        mergeDuration = CoreMetrics.Timer(label: "tally_merge_duration_seconds", factory: factory)
        fsync = CoreMetrics.Timer(label: "tally_wal_fsync_duration_seconds", factory: factory)
        walBytes = gauge("tally_wal_bytes")
        ackedSequence = gauge("tally_acked_sequence")
        ackedTime = gauge("tally_acked_timestamp_seconds")
        cursorPins = gauge("tally_cursor_pins")
        deltaRows = gauge("tally_delta_rows")
        deltaRowsMax = gauge("tally_delta_rows_max")
        deltaClients = gauge("tally_delta_clients")
        deltaOldestAge = gauge("tally_delta_oldest_age_seconds")
        cursorPinnedBytes = gauge("tally_cursor_pinned_bytes")
        cursorFallbacks = Counter(label: "tally_cursor_fallbacks_total", factory: factory)
        startTime = gauge("tally_start_time_seconds")
        buildInfo = gauge("tally_build_info", [("version", TallyVersion.string), ("protocol", "1")])
        startTime.record(Date().timeIntervalSince1970)
        buildInfo.record(1)
    }

    /// No metrics kept (the default of an ``API``).
    public static let disabled = ServiceMetrics(factory: NOOPMetricsHandler.instance)

    /// Index into ``endpointLabels`` of the route named `name` (``Registry/routes``).
    static let routeIndex: [String: Int] = Dictionary(uniqueKeysWithValues: Registry.routes.enumerated().map { ($0.element.name, $0.offset) })
    public static func index(of route: Route) -> Int { routeIndex[route.name] ?? endpointLabels.count - 1 }
    public static var unmatched: Int { endpointLabels.count - 1 }

    static let statusSlot: [Int] = {
        var t = [Int](repeating: statuses.count, count: 600)
        for (i, s) in statuses.enumerated() { t[s] = i }
        return t
    }()

    /// One answered request: counted, timed and its status counted.
    @inline(__always)
    public func record(_ listener: Listener, route: Int, status: Int, nanoseconds: Int64) {
        let l = listener.rawValue
        requests[l][route].increment()
        durations[l][route].recordNanoseconds(nanoseconds)
        responses[l][status >= 0 && status < 600 ? Self.statusSlot[status] : Self.statuses.count].increment()
    }

    public func requestStarted(_ listener: Listener) { inFlight[listener.rawValue].increment() }
    public func requestFinished(_ listener: Listener) { inFlight[listener.rawValue].decrement() }
    public func connectionOpened(_ listener: Listener) { connections[listener.rawValue].increment() }
    public func connectionClosed(_ listener: Listener) { connections[listener.rawValue].decrement() }

    /// A cursor named a version no longer pinned: its page was read from the version served now.
    func cursorFallback() { cursorFallbacks.increment() }

    /// The store's figures and the resident size, set just before an exposition.
    public func observe(store: Store?, walBytes wal: Int?, pins: (pins: Int, heldBytes: Int)? = nil) {
        if let pins {
            cursorPins.record(pins.pins)
            cursorPinnedBytes.record(pins.heldBytes)
        }
        clients.record(store?.clients.count ?? 0)
        usageRows.record(store?.usageRowCount ?? 0)
        let tails = store?.tails ?? (rows: 0, largest: 0, clients: 0, oldestSince: nil)
        deltaRows.record(tails.rows)
        deltaRowsMax.record(tails.largest)
        deltaClients.record(tails.clients)
        deltaOldestAge.record(tails.oldestSince.map { max(0, Date().timeIntervalSince1970 - $0) } ?? 0)
        storeBytes.record(store?.byteCount ?? 0)
        residentBytes.record(ServiceStatus.residentBytes())
        if let heap = MemoryReclaimer.heap() {
            heapAllocated.record(heap.allocated)
            heapFree.record(heap.free)
        }
        if let wal { walBytes.record(wal) }
    }

    func reloaded(_ outcome: ReloadRecord) {
        lastReloadTime.record(outcome.finishedAt.timeIntervalSince1970)
        lastReloadSuccess.record(outcome.error == nil ? 1 : 0)
        lastReloadDuration.record(outcome.seconds)
        (outcome.error == nil ? reloads.ok : reloads.failed).increment()
    }

    func appended(rows: Int) {
        appendRows.increment(by: Int64(rows))
        appendBatches.increment()
    }

    func appendRefused(rows: Int) { appendRefused.increment() }

    func synced(nanoseconds: Int64) { fsync.recordNanoseconds(nanoseconds) }

    func published(_ f: Freshness) {
        ackedSequence.record(Int64(clamping: f.ackedSequence))
        if let t = f.ackedAt { ackedTime.record(t.timeIntervalSince1970) }
    }
}

/// How requests are logged: every one, only errors (status ≥ 400), one in N (and every error),
/// or none.
public enum AccessLogPolicy: Sendable, Equatable, CustomStringConvertible {
    case all, errors, sample(Int), off

    public init?(_ text: String) {
        switch text {
        case "all": self = .all
        case "errors": self = .errors
        case "off", "none": self = .off
        default:
            guard text.hasPrefix("sample:"), let n = Int(text.dropFirst(7)), n >= 1 else { return nil }
            self = .sample(n)
        }
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .errors: return "errors"
        case .sample(let n): return "sample:\(n)"
        case .off: return "off"
        }
    }
}

/// What the service reports about itself, and the logs and metrics it writes to: one per
/// running server, shared by both listeners and the write path.
public final class Observability: WriteObserver {
    public let metrics: ServiceMetrics
    /// The Prometheus text exposition of ``metrics`` (`GET /metrics`), if they are kept.
    public let exposition: (@Sendable () -> [UInt8])?
    public let accessLog: AccessLogPolicy
    /// Peers other than loopback that may read `/metrics`.
    public let metricsPeers: Set<String>
    public let startedAt = Date()
    let requestCounter = Atomic<UInt64>(0)
    let lastReload = Mutex<ReloadRecord?>(nil)
    let dataSource = Mutex<String?>(nil)

    public let http: Logger, binary: Logger, data: Logger, access: Logger

    public init(metrics: ServiceMetrics = .disabled, exposition: (@Sendable () -> [UInt8])? = nil,
                accessLog: AccessLogPolicy = .off, metricsPeers: Set<String> = [], logLevel: Logger.Level? = nil) {
        self.metrics = metrics
        self.exposition = exposition
        self.accessLog = accessLog
        self.metricsPeers = metricsPeers
        func logger(_ label: String) -> Logger {
            var l = Logger(label: label)
            if let logLevel { l.logLevel = logLevel }
            return l
        }
        http = logger("tally.http")
        binary = logger("tally.binary")
        data = logger("tally.data")
        access = logger("tally.access")
    }

    /// No metrics, no access log (tests and tools that build an ``API`` directly).
    public static let quiet = Observability(logLevel: .critical)

    /// A new request id (in log lines).
    public func nextRequestID() -> UInt64 { requestCounter.add(1, ordering: .relaxed).newValue }

    /// Whether a request with this status and id gets an access-log line.
    @inline(__always)
    public func logsAccess(status: Int, id: UInt64) -> Bool {
        switch accessLog {
        case .off: return false
        case .all: return access.logLevel <= .info
        case .errors: return status >= 400 && access.logLevel <= .info
        case .sample(let n): return (status >= 400 || id % UInt64(n) == 0) && access.logLevel <= .info
        }
    }

    /// One access-log line (call only when ``logsAccess(status:id:)`` said so).
    public func logAccess(_ listener: Listener, id: UInt64, method: String, path: String, route: Int, status: Int,
                          nanoseconds: Int64, bytes: Int) {
        access.info("request", metadata: [
            "request_id": "\(id)", "listener": "\(listener.label)", "method": "\(method)", "path": "\(path)",
            "endpoint": "\(ServiceMetrics.endpointLabels[route])", "status": "\(status)",
            "duration_ms": "\(String(format: "%.3f", Double(nanoseconds) / 1e6))", "bytes": "\(bytes)",
        ])
    }

    public func reloaded(_ r: ReloadRecord) {
        lastReload.withLock { $0 = r }
        if r.error == nil { dataSource.withLock { $0 = r.source } }
        metrics.reloaded(r)
        if let e = r.error {
            data.error("load failed; the served data is unchanged", metadata: ["source": "\(r.source)", "error": "\(e)",
                                                                                "seconds": "\(String(format: "%.2f", r.seconds))"])
        } else {
            data.notice("loaded", metadata: ["source": "\(r.source)", "seconds": "\(String(format: "%.2f", r.seconds))"])
        }
    }

    public var lastReloadRecord: ReloadRecord? { lastReload.withLock { $0 } }

    // The write path's reports (``WriteObserver``).
    public var dataLog: Logger { data }
    public func appended(rows: Int) { metrics.appended(rows: rows) }
    public func appendRefused(rows: Int) { metrics.appendRefused(rows: rows) }
    public func synced(nanoseconds: Int64) { metrics.synced(nanoseconds: nanoseconds) }
    public func logSize(bytes: Int) { metrics.walBytes.record(bytes) }
    public func published(_ freshness: Freshness) { metrics.published(freshness) }
    public func merged(installed: Bool, rows: Int, seconds: Double) {
        (installed ? metrics.merges.ok : metrics.merges.dropped).increment()
        metrics.mergeDuration.recordNanoseconds(Int64(seconds * 1e9))
        if installed {
            data.debug("merged", metadata: ["rows": "\(rows)", "seconds": "\(String(format: "%.2f", seconds))"])
        }
    }
    public var source: String? { dataSource.withLock { $0 } }
}

/// Service figures for the console (`GET /v2/status`).
public enum ServiceStatus {
    /// Resident set size of this process, from `/proc/self/statm` (0 where there is none).
    public static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let f = s.split(separator: " ")
        return f.count > 1 ? (Int(f[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    /// The resident set split as `/proc/self/status` gives it: anonymous memory (the heap and the
    /// stores' mappings) and file pages (the binary's code and the libraries'), in bytes; zeros
    /// where there is none. A store's bytes are anonymous; the code a first load runs is not.
    public static func residentParts() -> (anonymous: Int, file: Int) {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        var anonymous = 0, file = 0
        for line in s.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 2, let kB = Int(f[1]) else { continue }
            if f[0] == "RssAnon:" { anonymous = kB * 1024 } else if f[0] == "RssFile:" { file = kB * 1024 }
        }
        return (anonymous, file)
    }
}
