import Crypto
import Foundation
import Synchronization
import TallyStorage

/// One configured token: its name, the SHA-256 of the token (never the token itself) and the
/// clients it may read (`nil`: all of them).
public struct TokenEntry: Sendable {
    public var name: String
    public var digest: [UInt8]
    public var clients: Set<UUID128>?
    /// Requests per second this token may make (queries and appends), shared by both
    /// listeners; `nil`: no quota.
    public var quota: RateLimiter?

    public init(name: String, digest: [UInt8], clients: Set<UUID128>?, quota: RateLimiter? = nil) {
        self.name = name
        self.digest = digest
        self.clients = clients
        self.quota = quota
    }

    public var readsAllClients: Bool { clients == nil }
    public func mayRead(_ client: UUID128) -> Bool { clients.map { $0.contains(client) } ?? true }
}

/// Bearer tokens (SPEC §5), from a JSON file:
/// `{"tokens": [{"name": "dashboard", "sha256": "<64 hex>", "clients": ["<uuid>", …] | "*",
///   "requests_per_second": 200, "burst": 400}]}` (the quota optional; `burst` defaults to one
/// second's worth).
public struct TokenStore: Sendable {
    public let entries: [TokenEntry]

    public init(entries: [TokenEntry]) { self.entries = entries }

    /// The seeds' own demo token, `YOUR_API_TOKEN`, for every client (loopback only: the
    /// server decides where it may be used).
    public static let demoToken = "YOUR_API_TOKEN"
    public static let demo = TokenStore(entries: [TokenEntry(name: "demo", digest: sha256(demoToken), clients: nil)])

    public static func sha256(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Array(token.utf8))) }

    public struct FileError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func load(path: String) throws -> TokenStore {
        func bad(_ what: String) -> FileError { FileError(description: "\(path): \(what)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw bad("cannot read the tokens file") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = json["tokens"] as? [[String: Any]] else {
            throw bad("expected {\"tokens\": [{\"name\", \"sha256\", \"clients\"}, …]}")
        }
        var entries: [TokenEntry] = []
        for (i, e) in list.enumerated() {
            guard let name = e["name"] as? String else { throw bad("token \(i + 1): \"name\" must be a string") }
            guard let hex = e["sha256"] as? String, hex.count == 64, let digest = bytes(hex: hex) else {
                throw bad("token \(name): \"sha256\" must be 64 hex digits (the SHA-256 of the token)")
            }
            var clients: Set<UUID128>?
            if let s = e["clients"] as? String, s == "*" {
                clients = nil
            } else if let a = e["clients"] as? [String] {
                clients = Set(try a.map { s in
                    guard let u = UUID128(s) else { throw bad("token \(name): \"\(s)\" is not a client UUID") }
                    return u
                })
            } else {
                throw bad("token \(name): \"clients\" must be a list of client UUIDs or \"*\"")
            }
            var quota: RateLimiter?
            if let rate = e["requests_per_second"] {
                guard let r = (rate as? NSNumber)?.doubleValue, r > 0, r.isFinite, !(rate is Bool) else {
                    throw bad("token \(name): \"requests_per_second\" must be a number above 0")
                }
                var burst = max(1, Int(r.rounded(.up)))
                if let b = e["burst"] {
                    guard let n = b as? Int, n >= 1, !(b is Bool) else { throw bad("token \(name): \"burst\" must be a whole number of at least 1") }
                    burst = n
                }
                quota = RateLimiter(perSecond: r, burst: burst)
            } else if e["burst"] != nil {
                throw bad("token \(name): \"burst\" needs \"requests_per_second\"")
            }
            entries.append(TokenEntry(name: name, digest: digest, clients: clients, quota: quota))
        }
        return TokenStore(entries: entries)
    }

    static func bytes(hex: String) -> [UInt8]? {
        var out: [UInt8] = []
        var it = hex.utf8.makeIterator()
        while let h = it.next(), let l = it.next() {
            guard let a = QueryString.hex(h), let b = QueryString.hex(l) else { return nil }
            out.append(a << 4 | b)
        }
        return out.count == 32 ? out : nil
    }

    /// The token of `Bearer <token>` (the scheme in any case; spaces and tabs around the token
    /// are not part of it), or `nil` when the header is not one.
    static func bearerToken(_ header: String) -> [UInt8]? {
        var u = Array(header.utf8)[...]
        func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 }
        while let f = u.first, isSpace(f) { u.removeFirst() }
        guard u.count > 6, u.prefix(6).map({ $0 | 0x20 }).elementsEqual("bearer".utf8), u[u.startIndex + 6] == 32 else { return nil }
        u.removeFirst(6)
        while let f = u.first, isSpace(f) { u.removeFirst() }
        while let l = u.last, isSpace(l) { u.removeLast() }
        return u.isEmpty ? nil : Array(u)
    }

    /// The entry of the bearer token in an `Authorization` header, or `nil` (missing, malformed
    /// or unknown token). Every entry is compared, in constant time, whatever matches.
    public func authenticate(_ header: String?) -> TokenEntry? {
        guard let header, let token = Self.bearerToken(header) else { return nil }
        let digest = Array(SHA256.hash(data: token))
        var found: Int = -1
        for (i, e) in entries.enumerated() {
            var diff: UInt8 = 0
            for k in 0..<32 { diff |= e.digest[k] ^ digest[k] }
            // Branch-free select, so timing does not depend on which entry matched.
            let match = Int(diff == 0 ? 1 : 0)
            found = match * i + (1 - match) * found
        }
        return found >= 0 ? entries[found] : nil
    }
}

/// A token bucket: `burst` requests at once, refilled at `perSecond`. One per token with a
/// quota, shared by every connection and both listeners (Pinot's and ClickHouse's per-tenant
/// query quotas are the model).
public final class RateLimiter: Sendable {
    public let perSecond: Double
    public let burst: Int
    /// Tokens available and when they were counted (seconds on `clock`).
    let state: Mutex<(tokens: Double, at: Double)>
    /// Seconds on a monotonic clock (tests give their own).
    let clock: @Sendable () -> Double

    public init(perSecond: Double, burst: Int, clock: @escaping @Sendable () -> Double = RateLimiter.now) {
        self.perSecond = perSecond
        self.burst = burst
        self.clock = clock
        state = Mutex((Double(burst), clock()))
    }

    @Sendable public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Takes one request's token; when there is none, the whole seconds until there will be.
    public func take() -> Int? {
        let now = clock()
        return state.withLock { s in
            s.tokens = min(Double(burst), s.tokens + (now - s.at) * perSecond)
            s.at = now
            if s.tokens >= 1 {
                s.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - s.tokens) / perSecond).rounded(.up)))
        }
    }
}
