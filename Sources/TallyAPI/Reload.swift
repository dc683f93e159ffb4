import Foundation
import Synchronization
import TallyQuery
import TallyStorage

/// Where a reload takes its data from.
public enum ReloadSource: Sendable, Equatable {
    case dump(String)
    case snapshot(String)
}

/// Loads a new store for a reload: `source` is what the caller asked for, or `nil` for the one
/// the server was started with. Returns the store and a description of what was loaded; throws
/// (with a message naming file, line and column, or the snapshot's byte) when the load fails.
public typealias StoreLoader = @Sendable (_ source: ReloadSource?) throws -> (store: Store, source: String)

/// Zero-downtime reloads (SPEC §6): a new store is loaded beside the one being served and
/// swapped in at once; requests in flight keep the store they started with; a failed load
/// leaves the old one serving and says why. One reload at a time.
public final class Reloader: Sendable {
    let holder: StoreHolder
    let loader: StoreLoader
    let running = Mutex(false)
    /// With durable appends, the new data is swapped in by the appender, which replays the
    /// log's records onto it first.
    let appender: Appender?
    /// Every load's outcome is recorded here (metrics, log, the console's last reload).
    let observability: Observability

    public init(holder: StoreHolder, appender: Appender? = nil, observability: Observability = .quiet,
                loader: @escaping StoreLoader) {
        self.holder = holder
        self.appender = appender
        self.observability = observability
        self.loader = loader
    }

    public struct Outcome: Sendable {
        public var source: String
        public var clients: Int
        public var usageRows: Int
        public var seconds: Double
    }

    /// Loads and swaps; throws 409 while another reload runs, 422 when the load fails.
    public func reload(source: ReloadSource?) throws(APIError) -> Outcome {
        let started = running.withLock { busy -> Bool in
            if busy { return false }
            busy = true
            return true
        }
        guard started else {
            throw APIError(status: 409, code: "reload_in_progress", message: "a reload is already running; try again when it has finished")
        }
        defer { running.withLock { $0 = false } }
        let clock = ContinuousClock(), start = clock.now
        do {
            let (loaded, description) = try loader(source)
            let store: Store
            if let appender { store = try appender.swapIn(loaded) } else {
                holder.replace(with: loaded)
                store = loaded
            }
            let d = clock.now - start
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            observability.reloaded(ReloadRecord(finishedAt: Date(), source: description, seconds: seconds, error: nil))
            return Outcome(source: description, clients: store.clients.count, usageRows: store.usageRowCount, seconds: seconds)
        } catch {
            let d = clock.now - start
            observability.reloaded(ReloadRecord(finishedAt: Date(), source: Self.describe(source),
                                                seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18,
                                                error: "\(error)"))
            let served = holder.store != nil ? "; the data loaded before is still served" : ""
            throw APIError(status: 422, code: "load_failed", message: "\(error)\(served)")
        }
    }
}

extension Reloader {
    static func describe(_ source: ReloadSource?) -> String {
        switch source {
        case .dump(let d)?: return d
        case .snapshot(let s)?: return s
        case nil: return "the configured source"
        }
    }
}

extension API {
    /// `POST /v2/admin/reload`, body empty, `{"dump": "<folder>"}` or `{"snapshot": "<file>"}`:
    /// a token that may read every client; answers once the new data is served.
    func reload(_ r: APIRequest) throws(APIError) -> APIResponse {
        guard r.method == "POST" else { throw APIError(status: 405, code: "method_not_allowed", message: "only POST is allowed here") }
        guard let token = tokens.authenticate(r.authorization) else { throw .unauthorized }
        guard token.readsAllClients else {
            throw APIError(status: 403, code: "forbidden", message: "reloading needs a token that may read every client")
        }
        guard let reloader else {
            throw APIError(status: 404, code: "not_found", message: "this server was started without a source to reload from")
        }
        var source: ReloadSource?
        if !r.body.isEmpty {
            guard let json = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else {
                throw .invalid("body", "the body must be a JSON object: {}, {\"dump\": \"<folder>\"} or {\"snapshot\": \"<file>\"}")
            }
            for key in json.keys where key != "dump" && key != "snapshot" {
                throw .invalid(key, "\(key) is not a reload option (dump, snapshot)")
            }
            guard json.count <= 1 else { throw .invalid("snapshot", "give dump or snapshot, not both") }
            for (key, value) in json {
                guard let s = value as? String, !s.isEmpty else { throw .invalid(key, "\(key) must be a non-empty string") }
                source = key == "dump" ? .dump(s) : .snapshot(s)
            }
        }
        let outcome = try reloader.reload(source: source)
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key("status"); w.string("reloaded")
        w.key("source"); w.string(outcome.source)
        w.key("clients"); w.int(outcome.clients)
        w.key("usage_rows"); w.int(outcome.usageRows)
        w.key("seconds"); w.tenths(Int((outcome.seconds * 10).rounded()))
        w.endObject()
        return APIResponse(status: 200, body: w.bytes)
    }
}

final class ResponseBox: @unchecked Sendable {
    var response: APIResponse?
}

extension API {
    /// Requests answered later, off the event loop: reloads and snapshots (seconds of work on
    /// their own thread) and appends (answered once durable).
    public func isDeferred(_ r: APIRequest) -> Bool {
        guard r.method == "POST", let m = Registry.match(r.path), case .deferred = m.route.kind else { return false }
        return true
    }

    /// Answers a deferred request through `done`, called once, on some thread.
    public func handleDeferred(_ r: APIRequest, done: @escaping @Sendable (APIResponse) -> Void) {
        guard let m = Registry.match(r.path), case .deferred(let run) = m.route.kind else {
            return done(handle(r))
        }
        guard r.method == "POST" else {
            return done(API.response(APIError(status: 405, code: "method_not_allowed", message: "only POST is allowed here")))
        }
        run(self, r, m, done)
    }

    /// `POST /v2/clients/{client_id}/usage-events`.
    func append(_ r: APIRequest, clientSegment: Substring, done: @escaping @Sendable (APIResponse) -> Void) {
        do throws(APIError) {
            guard let token = tokens.authenticate(r.authorization) else { throw .unauthorized }
            try append(token: token, client: UUID128(QueryString.decode(clientSegment)), body: r.body) { result in
                switch result {
                case .success(let body): done(APIResponse(status: 200, body: body))
                case .failure(let e): done(API.response(e))
                }
            }
        } catch {
            done(API.response(error))
        }
    }

    /// Appends a batch for `client` for an authenticated caller: the JSON answer, once durable
    /// and visible, or the error (thrown when it is known at once). Shared by HTTP and the binary
    /// protocol's APPEND. A token appends to the clients it may read.
    public func append(token: TokenEntry, client: UUID128?, body: [UInt8],
                       done: @escaping @Sendable (Result<[UInt8], APIError>) -> Void) throws(APIError) {
        if let quota = token.quota, let wait = quota.take() { throw .rateLimited(token, retryAfter: wait) }
        guard let store = holder.store else { throw .notReady }
        guard let client, token.mayRead(client), store.client(client) != nil else {
            throw token.readsAllClients ? .clientNotFound : .forbidden
        }
        guard let appender else {
            throw APIError(status: 404, code: "not_found", message: "appends need a write-ahead log: start the server with --wal FILE")
        }
        appender.submit(client: client, body: body) { result in
            done(result.map { o in
                var w = JSONWriter(capacity: 64)
                w.beginObject()
                w.key("accepted"); w.int(o.accepted)
                w.key("sequence"); w.int(Int(o.sequence))
                w.endObject()
                return w.bytes
            })
        }
    }

    /// `POST /v2/admin/snapshot`, body `{"path": "<file>"}`: writes the served data as a native
    /// snapshot (and drops the log records it now holds).
    func snapshot(_ r: APIRequest) throws(APIError) -> APIResponse {
        guard r.method == "POST" else { throw APIError(status: 405, code: "method_not_allowed", message: "only POST is allowed here") }
        guard let token = tokens.authenticate(r.authorization) else { throw .unauthorized }
        guard token.readsAllClients else {
            throw APIError(status: 403, code: "forbidden", message: "snapshots need a token that may read every client")
        }
        guard let json = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any], json.count == 1,
              let path = json["path"] as? String, !path.isEmpty else {
            throw .invalid("path", "the body must be {\"path\": \"<file>\"}")
        }
        guard let store = holder.store else { throw .notReady }
        let clock = ContinuousClock(), start = clock.now
        let report: Snapshot.Report
        do {
            report = try appender?.snapshot(to: path) ?? Snapshot.write(store, to: path)
        } catch {
            throw APIError(status: 422, code: "snapshot_failed", message: "\(error)")
        }
        let d = clock.now - start
        var w = JSONWriter(capacity: 128)
        w.beginObject()
        w.key("status"); w.string("saved")
        w.key("path"); w.string(path)
        w.key("bytes"); w.int(report.bytes)
        w.key("usage_rows"); w.int(report.usageRows)
        w.key("seconds"); w.tenths(Int(((Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) * 10).rounded()))
        w.endObject()
        return APIResponse(status: 200, body: w.bytes)
    }
}
