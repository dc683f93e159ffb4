import Foundation
import Testing
import TallyAPI
import TallyClient
import TallyServer
import TallyStorage
import TallyTestSupport
import TallyWire

/// Per-token quotas (issue 15): a token with `requests_per_second` gets 429 `rate_limited` with
/// `Retry-After` beyond its burst, on both listeners (one bucket per token), and its requests are
/// answered again once the bucket has refilled; other tokens are not touched.
@Suite(.serialized) struct QuotaTests {
    static let limited = "limited-token", free = "free-token"

    static func tokensFile(_ body: String) throws -> String {
        let path = NSTemporaryDirectory() + "tally-tokens-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).json"
        try Data(body.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func hex(_ t: String) -> String { TokenStore.sha256(t).map { String(format: "%02x", $0) }.joined() }

    @Test func theTokensFileDeclaresQuotas() throws {
        let good = try Self.tokensFile("""
            {"tokens": [{"name": "a", "sha256": "\(Self.hex("a"))", "clients": "*", "requests_per_second": 2.5, "burst": 4},
                        {"name": "b", "sha256": "\(Self.hex("b"))", "clients": "*", "requests_per_second": 10},
                        {"name": "c", "sha256": "\(Self.hex("c"))", "clients": "*"}]}
            """)
        defer { try? FileManager.default.removeItem(atPath: good) }
        let store = try TokenStore.load(path: good)
        #expect(store.entries[0].quota?.perSecond == 2.5 && store.entries[0].quota?.burst == 4)
        #expect(store.entries[1].quota?.burst == 10 && store.entries[2].quota == nil)
        for (field, message) in [("\"requests_per_second\": 0", "requests_per_second"), ("\"requests_per_second\": -1", "requests_per_second"),
                                 ("\"requests_per_second\": \"fast\"", "requests_per_second"), ("\"requests_per_second\": true", "requests_per_second"),
                                 ("\"requests_per_second\": 5, \"burst\": 0", "burst"), ("\"requests_per_second\": 5, \"burst\": 1.5", "burst"),
                                 ("\"burst\": 3", "burst")] {
            let bad = try Self.tokensFile("{\"tokens\": [{\"name\": \"x\", \"sha256\": \"\(Self.hex("x"))\", \"clients\": \"*\", \(field)}]}")
            defer { try? FileManager.default.removeItem(atPath: bad) }
            let e = try #require(throws: TokenStore.FileError.self) { _ = try TokenStore.load(path: bad) }
            #expect(e.description.contains(message) && e.description.contains("token x"), "\(field): \(e)")
        }
    }

    @Test func overQuotaIs429WithRetryAfterOnBothListeners() async throws {
        let f = ServerFixture.shared
        let tokens = TokenStore(entries: [
            TokenEntry(name: "limited", digest: TokenStore.sha256(Self.limited), clients: nil, quota: RateLimiter(perSecond: 4, burst: 3)),
            TokenEntry(name: "free", digest: TokenStore.sha256(Self.free), clients: nil),
        ])
        let server = try Server(api: API(holder: StoreHolder(f.store), tokens: tokens), host: "127.0.0.1", port: 0, binaryPort: 0, threads: 1)
        defer { server.shutdown() }
        let client = f.dump.clients[0].id
        let path = "/v2/clients/\(client)/users?page_size=2"
        let http = try HTTPTestClient(port: server.port)
        // The burst of 3, then refused until a token is back (a quarter of a second at 4/s).
        for _ in 0..<3 { #expect(try http.request("GET", path, token: Self.limited).status == 200) }
        let refused = try http.request("GET", path, token: Self.limited)
        #expect(refused.status == 429 && refused.header("retry-after") == "1")
        let error = refused.object["error"] as? [String: Any]
        #expect(error?["code"] as? String == "rate_limited" && (error?["message"] as? String)?.contains("limited") == true)
        // Another token is not limited by it.
        for _ in 0..<10 { #expect(try http.request("GET", path, token: Self.free).status == 200) }
        // The binary listener shares the bucket: refused there too, as ERROR 429.
        let tally = try await TallyClient.connect(host: "127.0.0.1", port: server.binaryPort!, token: Self.limited)
        do {
            _ = try await tally.query(.directoryUsers, client: UUID(uuidString: client.description)!, parameters: [("page_size", "2")])
            Issue.record("the binary listener answered over the quota")
        } catch let e as TallyClientError {
            #expect(e.serverError?.status == 429 && e.serverError?.code == "rate_limited")
        }
        // Refilled after a while: answered again on both.
        try await Task.sleep(for: .milliseconds(600))
        #expect(try http.request("GET", path, token: Self.limited).status == 200)
        let again = try await tally.query(.directoryUsers, client: UUID(uuidString: client.description)!, parameters: [("page_size", "2")])
        #expect(!again.body.isEmpty)
        try await tally.close()
    }
}
