/// A request as the API layer sees it: no sockets, no NIO types.
public struct APIRequest: Sendable {
    public var method: String
    /// The path, without the query string, still percent-encoded.
    public var path: String
    /// The raw query string (after `?`), or empty.
    public var query: String
    /// The `Authorization` header, if any.
    public var authorization: String?
    /// The request body (only the admin endpoints read one).
    public var body: [UInt8]
    /// The peer's IP address, when the listener knows it (`/metrics` answers loopback and the
    /// configured peers only).
    public var remoteAddress: String?

    public init(method: String, path: String, query: String = "", authorization: String? = nil, body: [UInt8] = [],
                remoteAddress: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.authorization = authorization
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// Splits a request target (`/path?query`).
    public init(method: String, target: String, authorization: String?, body: [UInt8] = []) {
        let u = target.utf8
        if let q = u.firstIndex(of: UInt8(ascii: "?")) {
            self.init(method: method, path: String(Substring(u[..<q])), query: String(Substring(u[u.index(after: q)...])),
                      authorization: authorization, body: body)
        } else {
            self.init(method: method, path: target, authorization: authorization, body: body)
        }
    }
}

/// A response: status, extra headers and a body (JSON unless the content type says otherwise).
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var contentType: String
    /// The route that answered (``ServiceMetrics/endpointLabels`` index; the last: none).
    public var routeIndex = ServiceMetrics.unmatched

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8],
                contentType: String = "application/json; charset=utf-8") {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }
}
