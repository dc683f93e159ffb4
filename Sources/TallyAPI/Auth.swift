import Crypto
import Foundation
import TallyStorage

/// One configured token: its name, the SHA-256 of the token (never the token itself) and the
/// clients it may read (`nil`: all of them).
public struct TokenEntry: Sendable {
    public var name: String
    public var digest: [UInt8]
    public var clients: Set<UUID128>?

    public init(name: String, digest: [UInt8], clients: Set<UUID128>?) {
        self.name = name
        self.digest = digest
        self.clients = clients
    }

    public var readsAllClients: Bool { clients == nil }
    public func mayRead(_ client: UUID128) -> Bool { clients.map { $0.contains(client) } ?? true }
}

/// Bearer tokens (SPEC §5), from a JSON file:
/// `{"tokens": [{"name": "dashboard", "sha256": "<64 hex>", "clients": ["<uuid>", …] | "*"}]}`.
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
            entries.append(TokenEntry(name: name, digest: digest, clients: clients))
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
