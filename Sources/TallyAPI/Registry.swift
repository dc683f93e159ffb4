import TallyQuery
import TallyStorage

/// One documented query parameter of a route: its name and the rule a value must follow.
/// The table docs/PROTOCOL.md and docs/API.md print is made from these (`tally routes`).
public struct ParameterRule: Sendable {
    public var name: String
    public var rule: String
    public init(_ name: String, _ rule: String) {
        self.name = name
        self.rule = rule
    }
}

/// What a route's parameters and the request's raw query look like to the heavy estimate:
/// names and values as sent (not percent-decoded: an encoded name only moves a request to the
/// loop, never changes its answer).
public struct HeavyProbe {
    public var store: Store?
    public var client: UUID128?
    public var pairs: [(Substring, Substring)]
    /// Whether the client is large enough (``APISettings/largeClientCells``) to make any query of
    /// it heavy. Asked last, and false for a client the caller's token may not read: a token
    /// learns nothing of such a client from which lane its request takes (nor from a 503 under
    /// overload where a 403 was due).
    public var large: () -> Bool = { false }

    public func has(_ name: String) -> Bool { pairs.contains { $0.0 == name } }
    public func value(_ name: String) -> Substring? { pairs.first { $0.0 == name }?.1 }
}

/// What a query route's handler is given once the caller is authenticated and may read what it
/// asks for: the store it keeps to the end, the client (for routes under a client), the path's
/// own parameter (`user_id`, …) as sent, and the query parameters, decoded.
public struct RouteContext {
    public let route: Route
    public let api: API
    public let store: Store
    /// The served version `store` is (``StoreWriter/Served``): cursors carry it.
    public let version: UInt64
    public let token: TokenEntry
    public let clientID: UUID128?
    public let client: ClientStore?
    public let pathValue: String?
    public let query: [(String, String)]
    public let format: ResultFormat
}

/// One endpoint: everything both listeners need to know of it, in one place (issue 12). The
/// HTTP listener finds a route by its path, the binary listener by its wire number; both then
/// go through ``API/answer(_:clientSegment:pathValue:token:query:format:)``.
public struct Route: Sendable {
    public enum Kind: Sendable {
        /// `GET`/`HEAD` without a token (health, readiness, the OpenAPI document).
        case service(@Sendable (API, APIRequest) throws(APIError) -> APIResponse)
        /// `GET`/`HEAD` with a token: a query, over both listeners.
        case query
        /// `POST`, answered later, through `done`, off the event loop (reload, snapshot, append).
        case deferred(@Sendable (API, APIRequest, Registry.Match, _ done: @escaping @Sendable (APIResponse) -> Void) -> Void)
    }

    public var isQuery: Bool { if case .query = kind { return true } else { return false } }

    /// Where the path starts: `/`, `/v2/`, or `/v2/clients/{client_id}/`.
    public enum Base: Sendable { case top, root, client }

    /// A short name (`A`…`J` for the dashboard, `K`… for the directory, a word for the rest).
    public let name: String
    public let kind: Kind
    public let base: Base
    /// The path after the base, with at most one `{parameter}`, as its last segment.
    public let tail: String
    /// The binary protocol's endpoint number (query routes).
    public let wire: UInt8?
    public let parameters: [ParameterRule]
    /// `sort_by` values, the default first; empty when the route does not sort.
    public let sortBy: [String]
    /// Answers carry `Deprecation`/`Link` headers (HTTP) or the deprecated flag (binary).
    public let deprecated: Bool
    /// Only for a token that may read every client (403 otherwise).
    public let adminOnly: Bool
    /// Whether answering may take long enough to be worth moving off the event loop. It only
    /// chooses where a request runs, never its answer.
    let heavy: @Sendable (HeavyProbe) -> Bool
    let answer: @Sendable (RouteContext) throws(APIError) -> [UInt8]

    /// The tail before its `{parameter}`, and the parameter's name.
    let fixedTail: String
    public let pathParameter: String?

    init(_ name: String, _ tail: String, kind: Kind = .query, base: Base = .client, wire: UInt8? = nil,
         parameters: [ParameterRule] = [], sortBy: [String] = [], deprecated: Bool = false, adminOnly: Bool = false,
         heavy: @escaping @Sendable (HeavyProbe) -> Bool = { _ in false },
         answer: @escaping @Sendable (RouteContext) throws(APIError) -> [UInt8] = { _ throws(APIError) in throw .pathNotFound }) {
        self.name = name
        self.kind = kind
        self.base = base
        self.tail = tail
        self.wire = wire
        self.parameters = parameters
        self.sortBy = sortBy
        self.deprecated = deprecated
        self.adminOnly = adminOnly
        self.heavy = heavy
        self.answer = answer
        if let open = tail.firstIndex(of: "{") {
            fixedTail = String(tail[..<open])
            pathParameter = String(tail[tail.index(after: open)..<tail.index(before: tail.endIndex)])
        } else {
            fixedTail = tail
            pathParameter = nil
        }
    }

    /// The HTTP path, with `{client_id}` for the client.
    public var path: String {
        switch base {
        case .top: return "/" + tail
        case .root: return "/v2/" + tail
        case .client: return "/v2/clients/{client_id}/" + tail
        }
    }
}

/// Every route of the service (SPEC §3, §3b, §3c, §3d and the admin endpoints), looked up by
/// path or by wire number.
public enum Registry {
    public static let routes: [Route] = serviceRoutes + dashboardRoutes + directoryRoutes + adminReportRoutes

    /// Query routes by wire number.
    static let byWire: [Route?] = {
        var t = [Route?](repeating: nil, count: 256)
        for r in routes { if let w = r.wire { precondition(t[Int(w)] == nil, "wire number \(w) twice"); t[Int(w)] = r } }
        return t
    }()

    public static func route(wire: UInt8) -> Route? { byWire[Int(wire)] }

    /// `POST /v2/clients/{client_id}/usage-events` (the binary APPEND answers as it).
    public static let appendRoute = routes.first { $0.name == "append" }!

    /// Routes by base, split into fixed tails (compared whole) and tails ending in a parameter.
    static let clientFixed = routes.filter { $0.base == .client && $0.pathParameter == nil }.map { (Array($0.tail.utf8), $0) }
    static let clientParam = routes.filter { $0.base == .client && $0.pathParameter != nil }.map { (Array($0.fixedTail.utf8), $0) }
    static let rootFixed = routes.filter { $0.base == .root && $0.pathParameter == nil }.map { (Array($0.tail.utf8), $0) }
    static let rootParam = routes.filter { $0.base == .root && $0.pathParameter != nil }.map { (Array($0.fixedTail.utf8), $0) }
    static let top = routes.filter { $0.base == .top }.map { (Array($0.path.utf8), $0) }

    /// A matched path: the route, the client segment (routes under a client) and the path
    /// parameter, both still percent-encoded.
    public struct Match {
        public var route: Route
        public var client: Substring?
        public var pathValue: Substring?
        init(route: Route, client: Substring? = nil, pathValue: Substring? = nil) {
            self.route = route
            self.client = client
            self.pathValue = pathValue
        }
    }

    /// The route of `path`, or `nil`. Reads the path's bytes in place: every request is routed.
    public static func match(_ path: String) -> Match? {
        let u = path.utf8
        for (p, route) in top where p.count == u.count && u.elementsEqual(p) { return Match(route: route) }
        guard u.starts(with: "/v2/".utf8) else { return nil }
        let afterV2 = u.index(u.startIndex, offsetBy: 4)
        if u[afterV2...].starts(with: "clients/".utf8) {
            let clientStart = u.index(afterV2, offsetBy: 8)
            if let slash = u[clientStart...].firstIndex(of: UInt8(ascii: "/")) {
                let rest = Substring(u[u.index(after: slash)...])
                if let (route, value) = find(rest, clientFixed, clientParam) {
                    return Match(route: route, client: Substring(u[clientStart..<slash]), pathValue: value)
                }
            }
        }
        guard let (route, value) = find(Substring(u[afterV2...]), rootFixed, rootParam) else { return nil }
        return Match(route: route, client: nil, pathValue: value)
    }

    static func find(_ rest: Substring, _ fixed: [([UInt8], Route)], _ param: [([UInt8], Route)]) -> (Route, Substring?)? {
        let r = rest.utf8
        for (t, route) in fixed where t.count == r.count && r.elementsEqual(t) { return (route, nil) }
        for (t, route) in param where r.count > t.count && r.starts(with: t) {
            let value = r[r.index(r.startIndex, offsetBy: t.count)...]
            if !value.contains(UInt8(ascii: "/")) { return (route, Substring(value)) }
        }
        return nil
    }
}

extension Registry {
    /// Every query route's parameters and their rules as a Markdown table, as docs/PROTOCOL.md
    /// prints it (`tally routes`; a test keeps the document equal to it).
    public static var parameterTable: String {
        var out = "| endpoint | route | parameter | rule |\n| --- | --- | --- | --- |\n"
        for r in routes where r.isQuery {
            for (i, p) in r.parameters.enumerated() {
                let head = i == 0 ? "\(r.wire!) | \(r.name) `\(r.path)`" : " | "
                out += "| \(head) | `\(p.name)` | \(p.rule) |\n"
            }
        }
        return out
    }
}
