import Foundation
import Synchronization
import TallyQuery
import TallyStorage
import TallyWrite

/// Server settings that shape answers.
public struct APISettings: Sendable {
    public var levels = UsageLevelThresholds()
    /// `Deprecation` header of the deprecated endpoint (RFC 9745: `@` and a Unix time).
    public var deprecation = "@1767225600"
    /// A client with more apps × users than this makes every query of it heavy (query threads,
    /// bounded queue) whatever its parameters.
    public var largeClientCells = 50_000_000
    public init() {}
}

/// Every HTTP endpoint of SPEC §3 without sockets: routes a request, checks auth, validates
/// parameters, runs the query and renders the JSON. The NIO server and the tests call it.
public struct API: Sendable {
    /// The served data and every change to it: appends (`POST /v2/clients/{id}/usage-events`,
    /// when it has a log), reloads (`POST /v2/admin/reload`, when it has a source), snapshots.
    public let writer: StoreWriter
    public let tokens: TokenStore
    public let settings: APISettings
    /// Metrics, logs and the service's own figures.
    public let observability: Observability

    public init(writer: StoreWriter, tokens: TokenStore, settings: APISettings = APISettings(), observability: Observability = .quiet) {
        self.writer = writer
        self.tokens = tokens
        self.settings = settings
        self.observability = observability
    }

    /// An API over `store` alone: no log, no source to reload from (tools, tests).
    public init(serving store: Store?, tokens: TokenStore, settings: APISettings = APISettings(), observability: Observability = .quiet) {
        self.init(writer: StoreWriter(serving: store), tokens: tokens, settings: settings, observability: observability)
    }

    /// The data served now.
    public var store: Store? { writer.store }

    /// The console (`GET /`): one self-contained page, compiled in.
    /// (Embedded in the code at build time — SwiftPM's `embedInCode` — not read from a bundle
    /// folder beside the executable: a copied `tally` serves it as well.)
    public static let consolePage: [UInt8] = PackageResources.console_html

    /// The OpenAPI 3.1 document, served as kept in the repository.
    public static let openAPIDocument: [UInt8] = PackageResources.openapi_json

    /// Whether answering `request` may take long enough to be worth moving off the event loop:
    /// its route's estimate (``Route``), from the parameter names and values as sent.
    public func isHeavy(_ request: APIRequest) -> Bool {
        guard let m = Registry.match(request.path), m.route.isQuery else { return false }
        var pairs: [(Substring, Substring)] = []
        QueryString.forEachRawPair(request.query) { pairs.append(($0, $1)) }
        let client = m.client.flatMap { UUID128(QueryString.decode($0)) }
        return m.route.heavy(HeavyProbe(store: writer.store, client: client, pairs: pairs, large: {
            isLarge(client) { tokens.authenticate(request.authorization) }
        }))
    }

    /// Whether `id` names a client above ``APISettings/largeClientCells`` that the caller may
    /// read (the token is only looked up for such a client).
    func isLarge(_ id: UUID128?, token: () -> TokenEntry?) -> Bool {
        guard let id, let c = writer.store?.client(id), c.apps.count * c.users.count > settings.largeClientCells else { return false }
        return token()?.mayRead(id) ?? false
    }

    /// The estimate of A–J. Health, readiness, the document and errors are quick; so are the
    /// summary and department cards, the category list, AI lists and trends, which read
    /// precomputed per-day counts, range tables and class unions (under 0.2 ms on a 20,000-user
    /// client) — unless a department filter (a set of users) forces them to look at bitmaps, a
    /// filter keeps the category list off its class unions, or the client is large. The per-app
    /// and per-user lists in their default form (first pages by users or apps, no filter) visit
    /// only the rows that can reach the page and are as quick; with a filter, another sort or
    /// order, or a cursor they may count every row.
    static func isHeavy(_ endpoint: Endpoint, probe p: HeavyProbe) -> Bool {
        switch endpoint {
        case .summary, .aiSummary, .departments, .aiDepartments, .aiUsers, .aiNew, .trend, .categories:
            if p.has("department_ids") { return true }
            if endpoint == .trend && p.value("granularity") == "daily" { return true }
            if endpoint == .categories && (p.has("is_approved") || p.has("vendor_ids")) { return true }
            return p.large()
        case .utilization, .users:
            for name in ["department_ids", "app_ids", "category_ids", "vendor_ids", "is_approved", "sort_by", "sort_order", "cursor"]
            where p.has(name) { return true }
            return p.large()
        }
    }

    /// The same estimate for the binary protocol's QUERY of `route`, from its decoded parameters.
    public func isHeavy(_ route: Route, client: UUID128?, token: TokenEntry, parameters: [(String, String)]) -> Bool {
        route.heavy(HeavyProbe(store: writer.store, client: client, pairs: parameters.map { (Substring($0.0), Substring($0.1)) },
                               large: { isLarge(client) { token } }))
    }

    public func handle(_ request: APIRequest) -> APIResponse {
        var matched = ServiceMetrics.unmatched
        var response = respond { () throws(APIError) in try route(request, matched: &matched) }
        response.routeIndex = matched
        return response
    }

    func respond(_ body: () throws(APIError) -> APIResponse) -> APIResponse {
        do {
            return try body()
        } catch {
            return Self.response(error)
        }
    }

    public static func response(_ e: APIError) -> APIResponse {
        var headers: [(String, String)] = []
        if e.status == 401 { headers.append(("WWW-Authenticate", "Bearer")) }
        if e.status == 405 { headers.append(("Allow", e.message.contains("POST") ? "POST" : "GET, HEAD")) }
        if let r = e.retryAfter { headers.append(("Retry-After", String(r))) }
        return APIResponse(status: e.status, headers: headers, body: e.body)
    }

    func route(_ r: APIRequest, matched: inout Int) throws(APIError) -> APIResponse {
        guard let m = Registry.match(r.path) else { throw .pathNotFound }
        matched = ServiceMetrics.index(of: m.route)
        let isRead = r.method == "GET" || r.method == "HEAD"
        switch m.route.kind {
        case .service(let answer):
            guard isRead else { throw .methodNotAllowed }
            return try answer(self, r)
        case .deferred:
            // Synchronous form (tests, tools): waits for the answer. The listeners use `handleDeferred`.
            let done = DispatchSemaphore(value: 0)
            let box = ResponseBox()
            handleDeferred(r) { response in
                box.response = response
                done.signal()
            }
            done.wait()
            return box.response!
        case .query:
            guard isRead else { throw .methodNotAllowed }
            guard let token = tokens.authenticate(r.authorization) else { throw .unauthorized }
            let client = m.client.flatMap { UUID128(QueryString.decode($0)) }
            let body = try answer(m.route, client: client, pathValue: m.pathValue.map { QueryString.decode($0) },
                                  token: token, query: QueryString.parse(r.query))
            return APIResponse(status: 200, headers: m.route.deprecated ? deprecationHeaders(client) : [], body: body)
        }
    }

    /// One query of `route` for an authenticated caller, in `format`: the part HTTP and the
    /// binary protocol share, so that both answer (and refuse) everything identically.
    /// `client` is `nil` when the caller named no client or one that is not a UUID (ignored by
    /// routes not under a client).
    public func answer(_ route: Route, client requested: UUID128?, pathValue: String?, token: TokenEntry,
                       query: [(String, String)], format: ResultFormat = .json) throws(APIError) -> [UInt8] {
        if let quota = token.quota, let wait = quota.take() { throw .rateLimited(token, retryAfter: wait) }
        guard let (store, version) = served(for: route, client: requested, query: query) else { throw .notReady }
        var clientID: UUID128?, client: ClientStore?
        if route.base == .client {
            // A token that may not read every client learns nothing about which clients exist.
            guard let id = requested, token.mayRead(id), let c = store.client(id) else {
                throw token.readsAllClients ? .clientNotFound : .forbidden
            }
            clientID = id
            client = c
        }
        if route.adminOnly && !token.readsAllClients {
            throw APIError(status: 403, code: "forbidden", message: "this report needs a token that may read every client")
        }
        return try route.answer(RouteContext(route: route, api: self, store: store, version: version, token: token, clientID: clientID,
                                             client: client, pathValue: pathValue, query: query, format: format))
    }

    /// The version a query reads: the one its cursor was handed out from, while a pin keeps it
    /// (so that the pages of one walk read one version, whatever was appended between them), or
    /// the one served now.
    /// (A list under a client reads that client's version: the pin holds the catalog and that
    /// client alone.)
    func served(for route: Route, client: UUID128?, query: [(String, String)]) -> (Store, UInt64)? {
        guard let served = writer.served else { return nil }
        let scope = route.base == .client ? client : nil
        let current = served.version(of: scope)
        if let text = query.last(where: { $0.0 == "cursor" })?.1, !text.isEmpty,
           let version = Cursor.decode(text)?.version, version != current {
            if let pinned = writer.pins.store(version: version, client: scope) {
                return (pinned, version)
            }
            observability.metrics.cursorFallback()
        }
        return (served.store, current)
    }

    /// A–J for a caller already allowed to read the client.
    func dashboard(_ endpoint: Endpoint, _ c: RouteContext) throws(APIError) -> [UInt8] {
        let params = try AnalyticsParameters(endpoint: endpoint, client: c.clientID!, query: c.query)
        do {
            return try endpoint.respond(params.request, executor: Executor(store: c.store), levels: settings.levels,
                                        format: c.format, cursor: c.cursor(fingerprint: params.fingerprint))
        } catch {
            throw .clientNotFound
        }
    }

    /// `Deprecation` and `Link` (successor) headers of the deprecated endpoint F.
    func deprecationHeaders(_ client: UUID128?) -> [(String, String)] {
        let client = client?.description ?? ""
        let ai = writer.store?.catalog.categories.filter(\.isAI).map(\.id.description).joined(separator: ",") ?? ""
        return [("Deprecation", settings.deprecation),
                ("Link", "</v2/clients/\(client)/analytics/apps/utilization?category_ids=\(ai)>; rel=\"successor-version\"")]
    }
}
