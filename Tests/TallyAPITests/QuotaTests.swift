import Foundation
import Synchronization
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

    /// The bucket on a clock the test moves: the burst, the wait it reports, the refill.
    @Test func theBucketRefillsAtItsRate() {
        let now = Mutex(100.0)
        let limiter = RateLimiter(perSecond: 4, burst: 3, clock: { now.withLock { $0 } })
        #expect((0..<3).map { _ in limiter.take() } == [nil, nil, nil])
        #expect(limiter.take() == 1)
        now.withLock { $0 += 0.2 }  // 0.8 of a token back
        #expect(limiter.take() == 1)
        now.withLock { $0 += 0.05 }  // a whole one
        #expect(limiter.take() == nil && limiter.take() == 1)
        now.withLock { $0 += 10 }  // never more than the burst
        #expect((0..<4).map { _ in limiter.take() } == [nil, nil, nil, 1])
        let slow = RateLimiter(perSecond: 0.1, burst: 1, clock: { now.withLock { $0 } })
        #expect(slow.take() == nil && slow.take() == 10)
    }

    @Test func overQuotaIs429WithRetryAfterOnBothListeners() async throws {
        let f = ServerFixture.shared
        let tokens = TokenStore(entries: [
            // One token per 100 s: nothing refills while the test runs, however loaded the machine.
            TokenEntry(name: "limited", digest: TokenStore.sha256(Self.limited), clients: nil, quota: RateLimiter(perSecond: 0.01, burst: 3)),
            TokenEntry(name: "free", digest: TokenStore.sha256(Self.free), clients: nil),
        ])
        let server = try Server(api: API(serving: f.store, tokens: tokens), host: "127.0.0.1", port: 0, binaryPort: 0, threads: 1)
        defer { server.shutdown() }
        let client = f.dump.clients[0].id
        let path = "/v2/clients/\(client)/users?page_size=2"
        let http = try HTTPTestClient(port: server.port)
        let tally = try await TallyClient.connect(host: "127.0.0.1", port: server.binaryPort!, token: Self.limited)
        // The burst of 3 (two over HTTP, one over the binary protocol: one bucket), then refused
        // on both, with the wait until a token is back (about 100 s).
        for _ in 0..<2 { #expect(try http.request("GET", path, token: Self.limited).status == 200) }
        _ = try await tally.query(.directoryUsers, client: UUID(uuidString: client.description)!, parameters: [("page_size", "2")])
        let refused = try http.request("GET", path, token: Self.limited)
        #expect(refused.status == 429 && (95...100).contains(Int(refused.header("retry-after") ?? "") ?? 0), "\(refused.headers)")
        let error = refused.object["error"] as? [String: Any]
        #expect(error?["code"] as? String == "rate_limited" && (error?["message"] as? String)?.contains("limited") == true)
        do {
            _ = try await tally.query(.directoryUsers, client: UUID(uuidString: client.description)!, parameters: [("page_size", "2")])
            Issue.record("the binary listener answered over the quota")
        } catch let e as TallyClientError {
            #expect(e.serverError?.status == 429 && e.serverError?.code == "rate_limited")
        }
        // Another token is not limited by it.
        for _ in 0..<10 { #expect(try http.request("GET", path, token: Self.free).status == 200) }
        try await tally.close()
    }
}

/// Load shedding (issue 15): past the bound on heavy queries waiting for the query threads, a
/// heavy request is refused at once — 503 `overloaded` with `Retry-After` — on both listeners,
/// while light requests are answered as before.
@Suite struct HeavyQueueTests {
    static let token = "heavy-token"

    @Test func aFullHeavyQueueGives503AndLightRequestsAreAnswered() async throws {
        let f = ServerFixture.shared
        var limits = ServerLimits()
        limits.maxQueuedHeavy = 0  // every heavy query finds the queue full: deterministic
        let tokens = TokenStore(entries: [TokenEntry(name: "t", digest: TokenStore.sha256(Self.token), clients: nil)])
        let api = API(serving: f.store, tokens: tokens)
        let server = try Server(api: api, host: "127.0.0.1", port: 0, binaryPort: 0, threads: 1, limits: limits)
        defer { server.shutdown() }
        let client = f.dump.clients[0].id
        let base = "/v2/clients/\(client)/analytics/apps/"
        let period = "granularity=monthly&start_date=2024-01-01&end_date=2024-12-31"
        let heavy = base + "utilization?\(period)&is_approved=true"
        let light = base + "utilization/summary?\(period)"
        #expect(api.isHeavy(APIRequest(method: "GET", target: heavy, authorization: nil)))
        #expect(!api.isHeavy(APIRequest(method: "GET", target: light, authorization: nil)))
        let http = try HTTPTestClient(port: server.port)
        let refused = try http.request("GET", heavy, token: Self.token)
        #expect(refused.status == 503 && refused.header("retry-after") == "1")
        #expect((refused.object["error"] as? [String: Any])?["code"] as? String == "overloaded")
        #expect(try http.request("GET", light, token: Self.token).status == 200)
        let tally = try await TallyClient.connect(host: "127.0.0.1", port: server.binaryPort!, token: Self.token)
        do {
            _ = try await tally.query(.utilization, client: UUID(uuidString: client.description)!,
                                      parameters: [("granularity", "monthly"), ("start_date", "2024-01-01"), ("end_date", "2024-12-31"),
                                                   ("is_approved", "true")])
            Issue.record("a heavy query was answered past the bound")
        } catch let e as TallyClientError {
            #expect(e.serverError?.status == 503 && e.serverError?.code == "overloaded")
        }
        let summary = try await tally.query(.summary, client: UUID(uuidString: client.description)!,
                                            parameters: [("granularity", "monthly"), ("start_date", "2024-01-01"), ("end_date", "2024-12-31")])
        #expect(!summary.body.isEmpty)
        try await tally.close()
    }

    /// A large client's every query is heavy — for the tokens that may read it. Another token
    /// gets the 403 (or 401) it would get for any client it may not read, never the 503 that
    /// would tell it the client exists and is large; over both listeners.
    @Test func theLaneOfALargeClientTellsOtherTokensNothing() async throws {
        let f = ServerFixture.shared
        var limits = ServerLimits()
        limits.maxQueuedHeavy = 0
        var settings = APISettings()
        settings.largeClientCells = 0  // every client is large
        let own = f.dump.clients[0].id, other = f.dump.clients[1].id
        let tokens = TokenStore(entries: [TokenEntry(name: "own", digest: TokenStore.sha256(Self.token), clients: [own]),
                                          TokenEntry(name: "other", digest: TokenStore.sha256("other-token"), clients: [other])])
        let api = API(serving: f.store, tokens: tokens, settings: settings)
        let server = try Server(api: api, host: "127.0.0.1", port: 0, binaryPort: 0, threads: 1, limits: limits)
        defer { server.shutdown() }
        let path = "/v2/clients/\(own)/analytics/apps/utilization/summary?granularity=monthly&start_date=2024-01-01&end_date=2024-12-31"
        #expect(api.isHeavy(APIRequest(method: "GET", target: path, authorization: "Bearer \(Self.token)")))
        #expect(!api.isHeavy(APIRequest(method: "GET", target: path, authorization: "Bearer other-token")))
        #expect(!api.isHeavy(APIRequest(method: "GET", target: path, authorization: nil)))
        let http = try HTTPTestClient(port: server.port)
        #expect(try http.request("GET", path, token: Self.token).status == 503)
        #expect(try http.request("GET", path, token: "other-token").status == 403)
        #expect(try http.request("GET", path, token: nil).status == 401)
        let parameters = [("granularity", "monthly"), ("start_date", "2024-01-01"), ("end_date", "2024-12-31")]
        for (token, status) in [(Self.token, 503), ("other-token", 403)] {
            let tally = try await TallyClient.connect(host: "127.0.0.1", port: server.binaryPort!, token: token)
            do {
                _ = try await tally.query(.summary, client: UUID(uuidString: own.description)!, parameters: parameters)
                Issue.record("answered; expected \(status)")
            } catch let e as TallyClientError {
                #expect(e.serverError?.status == UInt16(status), "\(token)")
            }
            try await tally.close()
        }
    }

    /// With a bound of 2 and 40 heavy requests at once, every answer is whole: 200, or 503 with
    /// Retry-After; and the slots are given back (afterwards, one at a time, all are answered).
    @Test func theGateGivesItsSlotsBack() async throws {
        let f = ServerFixture.shared
        var limits = ServerLimits()
        limits.maxQueuedHeavy = 2
        let tokens = TokenStore(entries: [TokenEntry(name: "t", digest: TokenStore.sha256(Self.token), clients: nil)])
        let server = try Server(api: API(serving: f.store, tokens: tokens), host: "127.0.0.1", port: 0, binaryPort: 0,
                                threads: 2, queryThreads: 1, limits: limits)
        defer { server.shutdown() }
        let path = "/v2/clients/\(f.dump.clients[0].id)/analytics/apps/utilization?granularity=monthly"
            + "&start_date=2024-01-01&end_date=2024-12-31&is_approved=true"
        let port = server.port
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<40 {
                group.addTask {
                    let r = try HTTPTestClient(port: port).request("GET", path, token: Self.token)
                    return (r.status, r.header("retry-after"))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0.0 == 200 || ($0.0 == 503 && $0.1 == "1") }, "\(statuses)")
        for _ in 0..<5 { #expect(try HTTPTestClient(port: port).request("GET", path, token: Self.token).status == 200) }
    }
}
