import Crypto
import Foundation

/// Credentials and where to send requests, from the usual environment variables:
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (optional), `AWS_REGION` or
/// `AWS_DEFAULT_REGION` (default `us-east-1`), and `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`
/// for an S3-compatible store (path-style requests then).
public struct S3Config: Sendable {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    public var region: String
    /// `nil`: AWS itself (`https://BUCKET.s3.REGION.amazonaws.com`).
    public var endpoint: String?

    public init(accessKey: String, secretKey: String, sessionToken: String? = nil, region: String = "us-east-1", endpoint: String? = nil) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.region = region
        self.endpoint = endpoint
    }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Config {
        guard let key = env["AWS_ACCESS_KEY_ID"], !key.isEmpty, let secret = env["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            throw RemoteError(location: "s3", reason: "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        let endpoint = (env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"]).map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        return S3Config(accessKey: key, secretKey: secret, sessionToken: env["AWS_SESSION_TOKEN"],
                        region: env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1", endpoint: endpoint)
    }
}

/// AWS Signature Version 4 for S3 requests without a body (GET), with the payload marked
/// unsigned as S3 allows.
enum SigV4 {
    static let emptyPayload = "UNSIGNED-PAYLOAD"

    /// Headers to add to a request of `method` to `url` (host, path and query already final).
    static func sign(method: String, url: URL, config: S3Config, date: Date = Date(), extra: [(String, String)] = [],
                     payloadHash: String = emptyPayload) -> [(String, String)] {
        let stamp = amzDate(date), day = String(stamp.prefix(8))
        var headers: [(String, String)] = [("host", hostHeader(url)), ("x-amz-content-sha256", payloadHash), ("x-amz-date", stamp)]
        if let token = config.sessionToken { headers.append(("x-amz-security-token", token)) }
        headers += extra.map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }
        headers.sort { $0.0 < $1.0 }
        let signedHeaders = headers.map(\.0).joined(separator: ";")
        let canonical = [method, canonicalPath(url), canonicalQuery(url),
                         headers.map { "\($0.0):\($0.1)\n" }.joined(), signedHeaders, payloadHash].joined(separator: "\n")
        let scope = "\(day)/\(config.region)/s3/aws4_request"
        let toSign = ["AWS4-HMAC-SHA256", stamp, scope, hex(SHA256.hash(data: Data(canonical.utf8)))].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(config.secretKey)".utf8))
        for part in [day, config.region, "s3", "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(config.accessKey)/\(scope),SignedHeaders=\(signedHeaders),Signature=\(signature)"
        return headers.filter { $0.0 != "host" } + [("authorization", authorization)]
    }

    static func hostHeader(_ url: URL) -> String {
        let host = url.host ?? ""
        guard let port = url.port, !(url.scheme == "https" && port == 443), !(url.scheme == "http" && port == 80) else { return host }
        return "\(host):\(port)"
    }

    static func amzDate(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: d)
    }

    /// The path as sent, each segment URI-encoded once (S3 does not double-encode).
    static func canonicalPath(_ url: URL) -> String {
        let path = url.path(percentEncoded: true)
        return path.isEmpty ? "/" : path
    }

    static func canonicalQuery(_ url: URL) -> String {
        guard let q = url.query(percentEncoded: true), !q.isEmpty else { return "" }
        var pairs: [(String, String)] = []
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((String(kv[0]), kv.count > 1 ? String(kv[1]) : ""))
        }
        pairs.sort { a, b in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// RFC 3986 encoding as AWS wants it (unreserved characters kept; `/` kept in paths).
    static func encode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(b)))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    static func hex<D: Sequence>(_ d: D) -> String where D.Element == UInt8 { d.map { String(format: "%02x", $0) }.joined() }
}

/// A remote read that failed: where, and why, in words for an operator.
public struct RemoteError: Error, CustomStringConvertible, Sendable {
    public var location: String
    public var reason: String
    public init(location: String, reason: String) {
        self.location = location
        self.reason = reason
    }
    public var description: String { "\(location): \(reason)" }
}
