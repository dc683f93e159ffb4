import Foundation
import Synchronization
import TallyQuery
import TallyStorage
import TallyWrite

extension API {
    /// `POST /v2/admin/reload`, body empty, `{"dump": "<folder>"}` or `{"snapshot": "<file>"}`:
    /// a token that may read every client; answers once the new data is served.
    func reload(_ r: APIRequest) throws(APIError) -> APIResponse {
        guard r.method == "POST" else { throw APIError(status: 405, code: "method_not_allowed", message: "only POST is allowed here") }
        guard let token = tokens.authenticate(r.authorization) else { throw .unauthorized }
        guard token.readsAllClients else {
            throw APIError(status: 403, code: "forbidden", message: "reloading needs a token that may read every client")
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
        let outcome: StoreWriter.ReloadOutcome
        do throws(WriteError) { outcome = try writer.reload(source) } catch { throw APIError(error) }
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
        guard let store else { throw .notReady }
        guard let client, token.mayRead(client), store.client(client) != nil else {
            throw token.readsAllClients ? .clientNotFound : .forbidden
        }
        guard writer.acceptsAppends else { throw APIError(WriteError(.noLog, "appends need a write-ahead log: start the server with --wal FILE")) }
        writer.submit(client: client, body: body, mayChangeCatalog: token.readsAllClients) { result in
            done(result.mapError(APIError.init).map { o in
                var w = JSONWriter(capacity: 64)
                w.beginObject()
                w.key("accepted"); w.int(o.accepted)
                w.key("directory_rows"); w.int(o.directoryRows)
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
        let clock = ContinuousClock(), start = clock.now
        let report: Snapshot.Report
        do throws(WriteError) { report = try writer.snapshot(to: path) } catch { throw APIError(error) }
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
