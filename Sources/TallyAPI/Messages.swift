/// A request as the API layer sees it: no sockets, no NIO types.
public struct APIRequest: Sendable {
    public var method: String
    /// The path, without the query string, still percent-encoded.
    public var path: String
    /// The raw query string (after `?`), or empty.
    public var query: String
    /// The `Authorization` header, if any.
    public var authorization: String?

    public init(method: String, path: String, query: String = "", authorization: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.authorization = authorization
    }

    /// Splits a request target (`/path?query`).
    public init(method: String, target: String, authorization: String?) {
        if let q = target.firstIndex(of: "?") {
            self.init(method: method, path: String(target[..<q]), query: String(target[target.index(after: q)...]),
                      authorization: authorization)
        } else {
            self.init(method: method, path: target, authorization: authorization)
        }
    }
}

/// A response: status, extra headers and a body (JSON unless the content type says otherwise).
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var contentType: String

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8],
                contentType: String = "application/json; charset=utf-8") {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }
}
