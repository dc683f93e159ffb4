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

    public init(holder: StoreHolder, loader: @escaping StoreLoader) {
        self.holder = holder
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
            let (store, description) = try loader(source)
            holder.replace(with: store)
            let d = clock.now - start
            return Outcome(source: description, clients: store.clients.count, usageRows: store.usageRowCount,
                           seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        } catch {
            let served = holder.store != nil ? "; the data loaded before is still served" : ""
            throw APIError(status: 422, code: "load_failed", message: "\(error)\(served)")
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

    /// Whether a request runs long enough to need its own thread (a reload), not a query thread.
    public func isLong(_ r: APIRequest) -> Bool { r.path == "/v2/admin/reload" && r.method == "POST" }
}
