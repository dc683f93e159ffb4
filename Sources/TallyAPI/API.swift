import Foundation
import Synchronization
import TallyQuery
import TallyStorage

/// The store being served. A reload builds a new ``Store`` beside it and swaps it in; a request
/// takes the current one once and keeps it to the end, so it never sees half of each.
public final class StoreHolder: Sendable {
    private let current: Mutex<Store?>

    public init(_ store: Store? = nil) { current = Mutex(store) }

    public var store: Store? { current.withLock { $0 } }
    public func replace(with store: Store) { current.withLock { $0 = store } }
}

/// Server settings that shape answers.
public struct APISettings: Sendable {
    public var levels = UsageLevelThresholds()
    /// `Deprecation` header of the deprecated endpoint (RFC 9745: `@` and a Unix time).
    public var deprecation = "@1767225600"
    public init() {}
}

/// Every HTTP endpoint of SPEC §3 without sockets: routes a request, checks auth, validates
/// parameters, runs the query and renders the JSON. The NIO server and the tests call it.
public struct API: Sendable {
    public let holder: StoreHolder
    public let tokens: TokenStore
    public let settings: APISettings
    /// Reloads for `POST /v2/admin/reload`, when the server knows where its data came from.
    public let reloader: Reloader?
    /// Durable appends (`POST /v2/clients/{id}/usage-events`), when the server has a log.
    public let appender: Appender?

    public init(holder: StoreHolder, tokens: TokenStore, settings: APISettings = APISettings(), reloader: Reloader? = nil,
                appender: Appender? = nil) {
        self.holder = holder
        self.tokens = tokens
        self.settings = settings
        self.reloader = reloader
        self.appender = appender
    }

    /// The OpenAPI 3.1 document, served as kept in the repository.
    public static let openAPIDocument: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
              let data = try? Data(contentsOf: url) else { return Array("{}".utf8) }
        return Array(data)
    }()

    /// Whether answering `request` may take long enough to be worth moving off the event loop.
    ///
    /// Health, readiness, the document and errors are quick; so are the summary and department
    /// cards, the category list, AI lists and trends, which read precomputed per-day counts,
    /// range tables and class unions (under 0.2 ms on a 20,000-user client) — unless a department
    /// filter (a set of users) forces them to look at bitmaps, a filter keeps the category list off
    /// its class unions, or the client is large. The per-app and per-user lists in their default
    /// form (first pages by users or apps, no filter) visit only the rows that can reach the page
    /// and are as quick; with a filter, another sort or order, or a cursor they may count every
    /// row. The estimate only chooses where a request runs, never its answer.
    public func isHeavy(_ request: APIRequest) -> Bool {
        guard let (client, endpoint) = Self.analyticsTarget(request.path), let endpoint else { return false }
        // Parameter names as sent (a percent-encoded name is not recognised here: it only moves
        // the request to the loop, and the answer is the same).
        var names: [Substring] = []
        var daily = false
        QueryString.forEachRawPair(request.query) { name, value in
            names.append(name)
            if name == "granularity" && value == "daily" { daily = true }
        }
        return isHeavy(endpoint, client: UUID128(QueryString.decode(client)),
                       has: { name in names.contains { $0 == name } }, daily: daily)
    }

    /// The client segment and endpoint of `/v2/clients/{client_id}/analytics/apps/{endpoint}`
    /// (the endpoint `nil` when none has that name), or `nil` for any other path. Reads the
    /// path's bytes in place: every request is routed, some twice (``isHeavy(_:)`` first).
    static func analyticsTarget(_ path: String) -> (client: Substring, endpoint: Endpoint?)? {
        let u = path.utf8
        guard u.starts(with: "/v2/clients/".utf8) else { return nil }
        let clientStart = u.index(u.startIndex, offsetBy: 12)
        guard let slash = u[clientStart...].firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let tail = path[u.index(after: slash)...]
        guard tail.utf8.starts(with: "analytics/apps".utf8) else { return nil }
        let afterApps = tail.utf8.index(tail.startIndex, offsetBy: 14)
        let client = path[clientStart..<slash]
        if afterApps == tail.endIndex { return (client, nil) }
        guard tail.utf8[afterApps] == UInt8(ascii: "/") else { return nil }
        let rest = tail[tail.utf8.index(after: afterApps)...]
        return (client, Endpoint.allCases.first { $0.path.utf8.elementsEqual(rest.utf8) })
    }

    /// The same estimate from a query's parts (the binary protocol's QUERY): `has` says whether
    /// a parameter is given.
    public func isHeavy(_ endpoint: Endpoint, client: UUID128?, has: (String) -> Bool, daily: Bool) -> Bool {
        let large = client.flatMap { holder.store?.client($0) }.map { $0.apps.count * $0.users.count > 50_000_000 } ?? false
        switch endpoint {
        case .summary, .aiSummary, .departments, .aiDepartments, .aiUsers, .aiNew, .trend, .categories:
            if has("department_ids") { return true }
            if endpoint == .trend && daily { return true }
            if endpoint == .categories && (has("is_approved") || has("vendor_ids")) { return true }
            return large
        case .utilization, .users:
            for p in ["department_ids", "app_ids", "category_ids", "vendor_ids", "is_approved", "sort_by", "sort_order", "cursor"]
            where has(p) { return true }
            return large
        }
    }

    public func handle(_ request: APIRequest) -> APIResponse {
        do {
            return try route(request)
        } catch {
            return Self.response(error)
        }
    }

    public static func response(_ e: APIError) -> APIResponse {
        var headers: [(String, String)] = []
        if e.status == 401 { headers.append(("WWW-Authenticate", "Bearer")) }
        if e.status == 405 { headers.append(("Allow", e.message.contains("POST") ? "POST" : "GET, HEAD")) }
        return APIResponse(status: e.status, headers: headers, body: e.body)
    }

    func route(_ r: APIRequest) throws(APIError) -> APIResponse {
        let path = r.path
        let isRead = r.method == "GET" || r.method == "HEAD"
        switch path {
        case "/healthz":
            guard isRead else { throw .methodNotAllowed }
            return APIResponse(status: 200, body: Array(#"{"status":"ok"}"#.utf8))
        case "/readyz":
            guard isRead else { throw .methodNotAllowed }
            guard let store = holder.store else { throw .notReady }
            var w = JSONWriter(capacity: 64)
            w.beginObject()
            w.key("status"); w.string("ready")
            w.key("clients"); w.int(store.clients.count)
            w.key("usage_rows"); w.int(store.usageRowCount)
            w.endObject()
            return APIResponse(status: 200, body: w.bytes)
        case "/v2/openapi.json":
            guard isRead else { throw .methodNotAllowed }
            return APIResponse(status: 200, body: Self.openAPIDocument)
        case "/v2/admin/reload":
            return try reload(r)
        case "/v2/admin/snapshot":
            return try snapshot(r)
        default:
            break
        }
        // /v2/clients/{client_id}/analytics/apps/{endpoint}
        if let (clientSegment, endpoint) = Self.analyticsTarget(path) {
            guard let endpoint else { throw .pathNotFound }
            guard isRead else { throw .methodNotAllowed }
            guard let token = tokens.authenticate(r.authorization) else { throw .unauthorized }
            let client = UUID128(QueryString.decode(clientSegment))
            let body = try analytics(endpoint, client: client, token: token, query: QueryString.parse(r.query))
            return APIResponse(status: 200, headers: endpoint == .aiUsers ? deprecationHeaders(client) : [], body: body)
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        if segments.count == 5, segments[0].isEmpty, segments[1] == "v2", segments[2] == "clients", segments[4] == "usage-events" {
            // Synchronous form (tests, tools): waits for the commit. The listeners use `handleDeferred`.
            let done = DispatchSemaphore(value: 0)
            let box = ResponseBox()
            handleDeferred(r) { response in
                box.response = response
                done.signal()
            }
            done.wait()
            return box.response!
        }
        throw .pathNotFound
    }

    /// One analytics query for an authenticated caller, in `format`: the part HTTP and the binary
    /// protocol share, so that both answer (and refuse) everything identically. `client` is `nil`
    /// when the caller named a client that is not a UUID.
    public func analytics(_ endpoint: Endpoint, client: UUID128?, token: TokenEntry, query: [(String, String)],
                          format: ResultFormat = .json) throws(APIError) -> [UInt8] {
        guard let store = holder.store else { throw .notReady }
        // A token that may not read every client learns nothing about which clients exist.
        guard let client, token.mayRead(client) else {
            throw token.readsAllClients ? .clientNotFound : .forbidden
        }
        guard store.client(client) != nil else { throw token.readsAllClients ? .clientNotFound : .forbidden }

        let params = try AnalyticsParameters(endpoint: endpoint, client: client, query: query)
        do {
            return try endpoint.respond(params.request, executor: Executor(store: store), levels: settings.levels,
                                        format: format, cursor: { Cursor.encode($0, fingerprint: params.fingerprint) })
        } catch {
            throw .clientNotFound
        }
    }

    /// `Deprecation` and `Link` (successor) headers of the deprecated endpoint F.
    func deprecationHeaders(_ client: UUID128?) -> [(String, String)] {
        let client = client?.description ?? ""
        let ai = holder.store?.catalog.categories.filter(\.isAI).map(\.id.description).joined(separator: ",") ?? ""
        return [("Deprecation", settings.deprecation),
                ("Link", "</v2/clients/\(client)/analytics/apps/utilization?category_ids=\(ai)>; rel=\"successor-version\"")]
    }
}
