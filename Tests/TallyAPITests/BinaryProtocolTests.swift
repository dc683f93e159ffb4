import Foundation
import Testing
import TallyAPI
import TallyClient
import TallyQuery
import TallyServer
import TallyStorage
import TallyTestSupport
import TallyWire

/// The binary protocol over real sockets (docs/PROTOCOL.md): every answer equals the HTTP
/// listener's byte for byte (in JSON, and in the compact encoding once decoded); many requests in
/// flight on one connection; every malformed input gets its documented answer; a fuzz run.
@Suite struct BinaryProtocolTests {
    let f = ServerFixture.shared
    static let all = ServerFixture.allToken

    func connect(_ token: String = Self.all) async throws -> TallyClient {
        try await TallyClient.connect(host: "127.0.0.1", port: f.binaryPort, token: token, clientName: "tests")
    }

    /// One HTTP request on its own connection (the fixture closes connections idle for 2 s, and
    /// a busy test run can leave gaps that long between requests).
    func get(_ target: String) throws -> HTTPTestResponse {
        try f.client().request("GET", target, token: Self.all)
    }

    static func uuid(_ u: UUID128) -> UUID { UUID(uuidString: u.description)! }
    static func bytes(_ u: UUID128) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: u.high >> UInt64(56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: u.low >> UInt64(56 - 8 * $0)) }
    }

    static func pairs(_ query: String) -> [(String, String)] {
        query.split(separator: "&").map { p in
            let kv = p.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
        }
    }

    static func wire(_ e: Endpoint) -> WireEndpoint { WireEndpoint(path: "/v2/clients/{client_id}/analytics/apps/" + e.path)! }

    /// The client library's numbers and paths are the server's registry's.
    @Test func everyEndpointHasANumber() {
        let served = Registry.routes.compactMap { r in r.wire.map { ($0, r.path) } }
        #expect(served.count == WireEndpoint.allCases.count)
        for (n, path) in served { #expect(WireEndpoint(rawValue: n)?.path == path, "wire \(n): \(path)") }
    }

    /// Seeded random requests, paged through with random page sizes: each page's JSON over the
    /// binary protocol is the HTTP body byte for byte, and the compact body decodes to it too.
    @Test(arguments: Endpoint.allCases)
    func answersEqualHTTP(endpoint: Endpoint) async throws {
        var r = SeededRandom(seed: UInt64(endpoint.path.utf8.count) * 977 + 3)
        let tally = try await connect()
        let shapes = EndpointTests()
        for n in 0..<20 {
            let (query, req) = shapes.randomRequest(endpoint, &r)
            let pageSize = Int.random(in: 1...9, using: &r)
            var cursor: String?
            var pages = 0
            repeat {
                var q = query
                if endpoint.isList { q += "&page_size=\(pageSize)" + (cursor.map { "&cursor=\($0)" } ?? "") }
                let h = try get(ServerFixture.path(req.client, endpoint) + "?" + q)
                try #require(h.status == 200, "\(q): \(h.text)")
                let json = try await tally.query(Self.wire(endpoint), client: Self.uuid(req.client), parameters: Self.pairs(q))
                let compact = try await tally.query(Self.wire(endpoint), client: Self.uuid(req.client),
                                                    parameters: Self.pairs(q), format: .compact)
                #expect(json.body == h.body, "request \(n) page \(pages) JSON: \(q)")
                #expect(try compact.json() == h.body, "request \(n) page \(pages) compact: \(q)")
                #expect(compact.body.count < h.body.count, "compact is smaller")
                #expect(json.deprecated == (endpoint == .aiUsers) && compact.deprecated == json.deprecated)
                cursor = h.object["next_cursor"] as? String
                pages += 1
            } while cursor != nil && pages < 6
        }
        try await tally.close()
    }

    /// Every kind of bad parameter gets HTTP's error: status, code, parameter and message.
    @Test func badParametersGiveTheHTTPError() async throws {
        let tally = try await connect()
        let client = f.dump.clients[0].id
        let good = "start_date=2024-03-01&end_date=2024-03-31&granularity=monthly"
        let cases: [(Endpoint, String)] = [
            (.utilization, "start_date=2024-3-01&end_date=2024-03-31&granularity=monthly"),
            (.utilization, "start_date=2024-03-01&granularity=monthly"),
            (.utilization, "start_date=2024-03-01&end_date=2025-03-31&granularity=monthly"),
            (.departments, good + "&compare_start_date=2024-02-01"),
            (.categories, "start_date=2024-03-01&end_date=2024-03-31"),
            (.users, good + "&sort_by=bogus"),
            (.users, good + "&page_size=0"),
            (.users, good + "&page_size=201"),
            (.aiDepartments, good + "&cursor=notacursor"),
            (.summary, good + "&is_approved=maybe"),
            (.trend, good + "&app_ids=nope"),
            (.aiNew, good + "&granularity=yearly"),
            (.utilization, good + "&start_date=2024-03-02"),
            (.utilization, good + "&sort_order=sideways"),
        ]
        for (e, q) in cases {
            let h = try get(ServerFixture.path(client, e) + "?" + q)
            let err = h.object["error"] as? [String: Any]
            do {
                _ = try await tally.query(Self.wire(e), client: Self.uuid(client), parameters: Self.pairs(q))
                Issue.record("\(e) \(q): no error over the binary protocol (HTTP: \(h.status))")
            } catch let TallyClientError.server(m, fatal) {
                #expect(!fatal)
                #expect(Int(m.status) == h.status && m.code == err?["code"] as? String
                        && m.parameter == err?["parameter"] as? String && m.message == err?["message"] as? String,
                        "\(e) \(q): binary \(m) vs HTTP \(h.text)")
            }
        }
        // A cursor from another request is refused the same way; one from HTTP pages on here.
        let list = try get(ServerFixture.path(client, .utilization) + "?" + good + "&page_size=1")
        let cursor = try #require(list.object["next_cursor"] as? String)
        let next = try get(ServerFixture.path(client, .utilization) + "?" + good + "&page_size=1&cursor=" + cursor)
        let viaBinary = try await tally.query(.utilization, client: Self.uuid(client),
                                              parameters: Self.pairs(good + "&page_size=1&cursor=" + cursor))
        #expect(viaBinary.body == next.body)
        await #expect(throws: TallyClientError.self) {
            _ = try await tally.query(.departments, client: Self.uuid(client), parameters: Self.pairs(good + "&cursor=" + cursor))
        }
        try await tally.close()
    }

    /// 100 requests in flight on one connection from 100 tasks: each gets its own answer.
    @Test func hundredConcurrentRequestsOnOneConnection() async throws {
        let tally = try await connect()
        let client = f.dump.clients[0].id
        var expected: [Int: [UInt8]] = [:]
        var queries: [Int: (Endpoint, String)] = [:]
        for i in 0..<100 {
            let e = Endpoint.allCases[i % Endpoint.allCases.count]
            var q = "start_date=2024-0\(1 + i % 9)-01&end_date=2024-12-31&granularity=monthly"
            if e.isList { q += "&page_size=\(1 + i / 10)" }
            queries[i] = (e, q)
            expected[i] = try get(ServerFixture.path(client, e) + "?" + q).body
        }
        let answers = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for i in 0..<100 {
                let (e, q) = queries[i]!
                group.addTask {
                    let format: WireFormat = i % 2 == 0 ? .json : .compact
                    let r = try await tally.query(Self.wire(e), client: Self.uuid(client), parameters: Self.pairs(q), format: format)
                    return (i, try r.json())
                }
            }
            var out: [Int: [UInt8]] = [:]
            for try await (i, body) in group { out[i] = body }
            return out
        }
        #expect(answers.count == 100)
        for i in 0..<100 { #expect(answers[i] == expected[i], "request \(i)") }

        // The same over a raw socket in one write: 100 QUERY frames with scattered ids; every
        // answer names one of them, each exactly once.
        let raw = try HTTPTestClient(port: f.binaryPort)
        var bytes = RawFrames.hello(token: Self.all)
        var ids: [UInt32: Int] = [:]
        for i in 0..<100 {
            let id = UInt32(i) &* 2_654_435_761 | 1
            ids[id] = i
            let (e, q) = queries[i]!
            bytes += RawFrames.frame(type: 3, id: id, payload: RawFrames.queryPayload(
                endpoint: Self.wire(e).rawValue, client: Self.bytes(client), Self.pairs(q)))
        }
        try raw.send(bytes)
        #expect(try raw.readFrame()?.type == 2)
        var seen = Set<UInt32>()
        for _ in 0..<100 {
            let fr = try #require(try raw.readFrame())
            #expect(fr.type == 4)
            let i = try #require(ids[fr.requestID], "an answer to an id never sent")
            #expect(seen.insert(fr.requestID).inserted)
            #expect(Array(fr.payload.dropFirst()) == expected[i], "raw request \(i)")
        }
        try await tally.close()
    }

    /// HELLO and tokens: nothing before HELLO, bad tokens close the connection; per-query
    /// 403/404 exactly as over HTTP.
    @Test func authentication() async throws {
        let client = f.dump.clients[0].id, other = f.dump.clients[1].id
        let query = RawFrames.queryPayload(endpoint: 5, client: Self.bytes(client),
                                           [("start_date", "2024-03-01"), ("end_date", "2024-03-31"), ("granularity", "monthly")])
        // A QUERY (or PING) before HELLO.
        for first in [RawFrames.frame(type: 3, id: 7, payload: query), RawFrames.frame(type: 6, id: 7)] {
            let c = try HTTPTestClient(port: f.binaryPort)
            try c.send(first)
            let fr = try #require(try c.readFrame())
            #expect(fr.error?.status == 401 && fr.error?.code == "unauthorized" && fr.flags == 1 && fr.requestID == 7)
            #expect(try c.readFrame() == nil, "closed after a fatal error")
        }
        // Unknown, empty and wrong-case tokens; a malformed HELLO.
        for hello in [RawFrames.hello(token: "nope"), RawFrames.hello(token: ""), RawFrames.hello(token: Self.all.uppercased()),
                      RawFrames.frame(type: 1, id: 1, payload: [0, 40, 65])] {
            let c = try HTTPTestClient(port: f.binaryPort)
            try c.send(hello)
            let fr = try #require(try c.readFrame())
            #expect(fr.error?.status ?? 0 >= 400 && fr.flags == 1)
            #expect(try c.readFrame() == nil)
        }
        await #expect(throws: TallyClientError.self) { _ = try await self.connect("wrong") }

        let params = Self.pairs("start_date=2024-03-01&end_date=2024-03-31&granularity=monthly")
        let scoped = try await connect(ServerFixture.scopedToken)
        let unknown = UUID()
        for e in WireEndpoint.allCases where e.rawValue <= 10 {
            _ = try await scoped.query(e, client: Self.uuid(client), parameters: params)
            for (token, c, status) in [(scoped, Self.uuid(other), 403), (scoped, unknown, 403)] {
                do {
                    _ = try await token.query(e, client: c, parameters: params)
                    Issue.record("\(e): no error")
                } catch let TallyClientError.server(m, _) {
                    #expect(Int(m.status) == status, "\(e) \(c)")
                }
            }
        }
        let all = try await connect()
        for e in WireEndpoint.allCases where e.rawValue <= 10 {
            do {
                _ = try await all.query(e, client: unknown, parameters: params)
                Issue.record("\(e): no error")
            } catch let TallyClientError.server(m, _) {
                #expect(m.status == 404 && m.code == "not_found")
            }
        }
        try await scoped.close()
        try await all.close()
    }

    /// docs/PROTOCOL.md §5, row by row.
    @Test func malformedInput() throws {
        let client = Self.bytes(f.dump.clients[0].id)
        let good = RawFrames.queryPayload(endpoint: 5, client: client,
                                          [("start_date", "2024-03-01"), ("end_date", "2024-03-31"), ("granularity", "monthly")])
        func open() throws -> HTTPTestClient {
            let c = try HTTPTestClient(port: f.binaryPort)
            try c.send(RawFrames.hello(id: 1, token: Self.all))
            #expect(try c.readFrame()?.type == 2)
            return c
        }
        // Fatal: the stream cannot be trusted any more.
        let fatal: [([UInt8], Int, String)] = [
            (RawFrames.be32(7) + [1, 3, 0, 0, 0, 0, 0], 400, "malformed_frame"),
            (RawFrames.be32(0), 400, "malformed_frame"),
            (RawFrames.be32(UInt32(Wire.defaultMaxFrame + 1)) + [1, 3], 413, "frame_too_large"),
            (RawFrames.be32(0xFFFF_FFFF), 413, "frame_too_large"),
            (RawFrames.frame(type: 3, id: 9, version: 2, payload: good), 400, "unsupported_version"),
            (RawFrames.frame(type: 6, id: 9, version: 0), 400, "unsupported_version"),
        ]
        for (bytes, status, code) in fatal {
            let c = try open()
            try c.send(bytes)
            let fr = try #require(try c.readFrame(), "\(code): no answer")
            #expect(fr.error?.status == status && fr.error?.code == code && fr.flags == 1 && fr.requestID == 0, "\(code)")
            #expect(try c.readFrame() == nil, "\(code): still open")
        }
        // A frame exactly at the limit is read (and refused for what it is, not for its size).
        do {
            let c = try open()
            try c.send(RawFrames.frame(type: 0x7F, id: 3, payload: [UInt8](repeating: 0, count: Wire.defaultMaxFrame - 8)))
            #expect(try c.readFrame()?.error?.code == "unknown_message_type")
        }
        // Not fatal: an error for that request, and the connection goes on.
        let recoverable: [([UInt8], Int, String)] = [
            (RawFrames.frame(type: 0x7F, id: 11), 400, "unknown_message_type"),
            (RawFrames.frame(type: 0, id: 11), 400, "unknown_message_type"),
            (RawFrames.frame(type: 4, id: 11, payload: [0]), 400, "unknown_message_type"),
            (RawFrames.frame(type: 2, id: 11), 400, "unknown_message_type"),
            (RawFrames.frame(type: 1, id: 11, payload: RawFrames.str16(Self.all) + RawFrames.str16("")), 400, "already_authenticated"),
            (RawFrames.frame(type: 3, id: 11, payload: Array(good.dropLast(3))), 400, "malformed_request"),
            (RawFrames.frame(type: 3, id: 11, payload: good + [0]), 400, "malformed_request"),
            (RawFrames.frame(type: 3, id: 11, payload: [5, 0]), 400, "malformed_request"),
            (RawFrames.frame(type: 3, id: 11, payload: [5, 0] + client + [0, 1, 0, 2, 0xC3, 0x28, 0, 0]), 400, "malformed_request"),
            (RawFrames.frame(type: 3, id: 11, payload: [5, 0] + client + [0, 1, 0xFF, 0xFF, 0, 0]), 400, "malformed_request"),
            (RawFrames.frame(type: 6, id: 11, payload: [UInt8](repeating: 1, count: 65)), 400, "malformed_request"),
            (RawFrames.frame(type: 3, id: 11, payload: [0] + good.dropFirst()), 404, "not_found"),
            (RawFrames.frame(type: 3, id: 11, payload: [26] + good.dropFirst()), 404, "not_found"),
            (RawFrames.frame(type: 3, id: 11, payload: [5, 2] + good.dropFirst(2)), 400, "unsupported_format"),
        ]
        let c = try open()
        for (bytes, status, code) in recoverable {
            try c.send(bytes)
            let fr = try #require(try c.readFrame(), "\(code): closed")
            #expect(fr.error?.status == status && fr.error?.code == code && fr.flags == 0 && fr.requestID == 11,
                    "\(code): got \(String(describing: fr.error))")
            try c.send(RawFrames.frame(type: 6, id: 12, payload: [1, 2, 3]))
            #expect(try c.readFrame() == RawFrame(type: 7, flags: 0, requestID: 12, payload: [1, 2, 3]), "\(code): PING after it")
        }
        // The good query still answers on this connection.
        try c.send(RawFrames.frame(type: 3, id: 13, payload: good))
        #expect(try c.readFrame()?.type == 4)

        // A frame cut off by the end of the stream: the server just closes; others are unaffected.
        do {
            let t = try open()
            try t.send(Array(RawFrames.frame(type: 3, id: 14, payload: good).prefix(20)))
            t.shutdownWrite()
            #expect(try t.readFrame() == nil)
        }
        try c.send(RawFrames.frame(type: 3, id: 15, payload: good))
        #expect(try c.readFrame()?.type == 4)
    }

    /// More queries in flight than the limit: the extra ones get 429, the others their answers.
    @Test func tooManyInFlight() throws {
        var limits = BinaryLimits()
        limits.maxInFlight = 1
        let server = try Server(api: API(serving: f.store, tokens: TokenStore(entries: [
            TokenEntry(name: "all", digest: TokenStore.sha256(Self.all), clients: nil)])),
                                host: "127.0.0.1", port: 0, binaryPort: 0, threads: 1, binaryLimits: limits)
        defer { server.shutdown() }
        let c = try HTTPTestClient(port: server.binaryPort!)
        // A per-app list sorted by name runs on the query threads, so the first is still in
        // flight when the next two are read (all three arrive in one write).
        let q = RawFrames.queryPayload(endpoint: 1, client: Self.bytes(f.dump.clients[0].id),
                                       [("start_date", "2024-01-01"), ("end_date", "2024-12-31"), ("granularity", "monthly"),
                                        ("sort_by", "canonical_name")])
        try c.send(RawFrames.hello(token: Self.all) + RawFrames.frame(type: 3, id: 1, payload: q)
                   + RawFrames.frame(type: 3, id: 2, payload: q) + RawFrames.frame(type: 3, id: 3, payload: q))
        #expect(try c.readFrame()?.type == 2)
        var got: [UInt32: RawFrame] = [:]
        for _ in 0..<3 { let fr = try #require(try c.readFrame()); got[fr.requestID] = fr }
        #expect(got[1]?.type == 4)
        #expect(got[2]?.error?.status == 429 && got[3]?.error?.code == "too_many_in_flight")
        // Once answered, the next one runs.
        try c.send(RawFrames.frame(type: 3, id: 4, payload: q))
        #expect(try c.readFrame()?.type == 4)
    }

    /// A graceful shutdown says GOAWAY, answers what is in flight, then closes.
    @Test func goawayOnShutdown() async throws {
        let server = try Server(api: API(serving: f.store, tokens: TokenStore(entries: [
            TokenEntry(name: "all", digest: TokenStore.sha256(Self.all), clients: nil)])),
                                host: "127.0.0.1", port: 0, binaryPort: 0, threads: 1)
        let c = try HTTPTestClient(port: server.binaryPort!)
        try c.send(RawFrames.hello(token: Self.all))
        #expect(try c.readFrame()?.type == 2)
        let q = RawFrames.queryPayload(endpoint: 4, client: Self.bytes(f.dump.clients[0].id),
                                       [("start_date", "2024-01-01"), ("end_date", "2024-12-31"), ("granularity", "monthly")])
        // The PONG says the query has been read (it runs on a query thread, so it may well be
        // still in flight when the shutdown starts).
        try c.send(RawFrames.frame(type: 3, id: 5, payload: q) + RawFrames.frame(type: 6, id: 6))
        var frames = try #require(try c.readFrames(until: 7, id: 6))
        server.initiateShutdown()
        while let fr = try c.readFrame() { frames.append(fr) }
        #expect(frames.contains { $0.type == 8 && $0.requestID == 0 }, "GOAWAY")
        #expect(frames.contains { $0.requestID == 5 && $0.type == 4 }, "the query answered")
        server.run()
    }

    /// An idle connection is told why with GOAWAY, then closed — after HELLO and before it.
    @Test func idleConnectionsGetGoawayThenClose() async throws {
        var limits = BinaryLimits()
        limits.idleTimeout = .seconds(1)
        let server = try Server(api: API(serving: f.store, tokens: TokenStore(entries: [
            TokenEntry(name: "all", digest: TokenStore.sha256(Self.all), clients: nil)])),
                                host: "127.0.0.1", port: 0, binaryPort: 0, threads: 1, binaryLimits: limits)
        defer { server.shutdown() }
        for sayHello in [true, false] {
            let c = try HTTPTestClient(port: server.binaryPort!)
            if sayHello {
                try c.send(RawFrames.hello(token: Self.all))
                #expect(try c.readFrame()?.type == 2)
            }
            let start = ContinuousClock.now
            let goaway = try #require(try c.readFrame(), "nothing before the close")
            #expect(goaway.type == 8 && goaway.requestID == 0)
            #expect(String(decoding: goaway.payload.dropFirst(2), as: UTF8.self) == "closing a connection idle for 1 s")
            #expect(try c.readFrame() == nil, "closed after GOAWAY")
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    /// 100,000 random and mutated frames over many connections: the server answers what it can,
    /// closes what it must, and afterwards still answers a well-formed client, with no
    /// connection (file descriptor) left behind.
    @Test func fuzz() async throws {
        // Counted after a first client connection, which starts the client's event loops.
        try await connect().close()
        let fdsBefore = Self.openDescriptors()
        var r = SeededRandom(seed: 2026)
        let clients = f.dump.clients.map { Self.bytes($0.id) }
        let names = ["start_date", "end_date", "compare_start_date", "compare_end_date", "granularity", "page_size", "cursor",
                     "sort_by", "sort_order", "is_approved", "category_ids", "department_ids", "vendor_ids", "app_ids", "x"]
        let values = ["2024-03-01", "2024-12-31", "2023-01-01", "monthly", "daily", "weekly", "1", "200", "0", "-1", "true",
                      "asc", "name", "email", "", "\u{00e9}\u{1F600}", "2024-02-30", String(repeating: "9", count: 300),
                      f.dump.departments[0].id.description, "not,a,list"]
        func validQuery() -> [UInt8] {
            var params: [(String, String)] = [("start_date", "2024-0\(Int.random(in: 1...9, using: &r))-01"),
                                              ("end_date", "2024-12-31"), ("granularity", "monthly")]
            for _ in 0..<Int.random(in: 0...3, using: &r) {
                params.append((names.randomElement(using: &r)!, values.randomElement(using: &r)!))
            }
            return RawFrames.queryPayload(endpoint: UInt8.random(in: 1...10, using: &r), format: UInt8.random(in: 0...1, using: &r),
                                          client: clients.randomElement(using: &r)!, params)
        }
        func mutate(_ p: [UInt8]) -> [UInt8] {
            var p = p
            for _ in 0..<Int.random(in: 1...3, using: &r) {
                switch Int.random(in: 0..<5, using: &r) {
                case 0 where !p.isEmpty: p[Int.random(in: 0..<p.count, using: &r)] ^= UInt8.random(in: 1...255, using: &r)
                case 1 where !p.isEmpty: p.removeLast(Int.random(in: 1...p.count, using: &r))
                case 2: p += (0..<Int.random(in: 1...8, using: &r)).map { _ in UInt8.random(in: 0...255, using: &r) }
                case 3 where p.count > 2: p[Int.random(in: 0..<p.count, using: &r)] = [0, 0xFF, 0x7F, 0x80].randomElement(using: &r)!
                default: p.insert(UInt8.random(in: 0...255, using: &r), at: Int.random(in: 0...p.count, using: &r))
                }
            }
            return p
        }
        let marker: UInt32 = 0xFFFF_FFFF
        var sent = 0, connections = 0, fatalBatches = 0, answers = 0
        while sent < 100_000 {
            let c = try HTTPTestClient(port: f.binaryPort)
            connections += 1
            var bytes: [UInt8] = []
            let authenticated = r.chance(0.97)
            if authenticated { bytes += RawFrames.hello(id: 0, token: Self.all) }
            var fatal = !authenticated
            for _ in 0..<250 {
                let id = UInt32.random(in: 1..<marker, using: &r)
                let roll = r.unit()
                if roll < 0.004 {
                    // Framing damage: a bad length or version, or raw noise. Ends the batch.
                    switch Int.random(in: 0..<3, using: &r) {
                    case 0: bytes += RawFrames.be32(UInt32.random(in: 0...7, using: &r)) + [1, 3, 0, 0]
                    case 1: bytes += RawFrames.frame(type: 3, id: id, version: UInt8.random(in: 2...255, using: &r), payload: validQuery())
                    default: bytes += RawFrames.be32(UInt32.random(in: UInt32(Wire.defaultMaxFrame + 1)...UInt32.max, using: &r))
                        + (0..<Int.random(in: 0...64, using: &r)).map { _ in UInt8.random(in: 0...255, using: &r) }
                    }
                    fatal = true
                    sent += 1
                    break
                }
                switch roll {
                case ..<0.55: bytes += RawFrames.frame(type: 3, id: id, payload: mutate(validQuery()))
                case ..<0.75: bytes += RawFrames.frame(type: 3, id: id, payload: validQuery())
                case ..<0.85:
                    bytes += RawFrames.frame(type: UInt8.random(in: 0...255, using: &r), id: id,
                                             flags: UInt16.random(in: 0...UInt16.max, using: &r),
                                             payload: (0..<Int.random(in: 0...40, using: &r)).map { _ in UInt8.random(in: 0...255, using: &r) })
                case ..<0.95:
                    bytes += RawFrames.frame(type: 6, id: id,
                                             payload: (0..<Int.random(in: 0...80, using: &r)).map { _ in UInt8.random(in: 0...255, using: &r) })
                default: bytes += RawFrames.frame(type: 1, id: id, payload: mutate(RawFrames.str16(Self.all) + RawFrames.str16("x")))
                }
                sent += 1
            }
            if fatal { fatalBatches += 1 }
            bytes += RawFrames.frame(type: 6, id: marker)
            try c.send(bytes)
            if let seen = try c.readFrames(until: 7, id: marker) {
                #expect(!fatal, "a fatal batch reached its PING")
                answers += seen.count
            } else {
                #expect(fatal, "the server closed a connection that sent nothing fatal (batch \(connections))")
            }
        }
        #expect(sent >= 100_000 && fatalBatches > 0 && answers > 50_000)

        // Still serving, and every fuzz connection is gone.
        let tally = try await connect()
        let client = f.dump.clients[0].id
        let q = "start_date=2024-01-01&end_date=2024-12-31&granularity=monthly"
        let viaBinary = try await tally.query(.summary, client: Self.uuid(client), parameters: Self.pairs(q))
        let viaHTTP = try f.client().request("GET", ServerFixture.path(client, .summary) + "?" + q, token: Self.all)
        #expect(viaBinary.body == viaHTTP.body)
        try await tally.close()
        var fdsAfter = Self.openDescriptors()
        for _ in 0..<100 where fdsAfter > fdsBefore + 4 {
            try await Task.sleep(for: .milliseconds(50))
            fdsAfter = Self.openDescriptors()
        }
        #expect(fdsAfter <= fdsBefore + 4, "file descriptors: \(fdsBefore) before, \(fdsAfter) after \(connections) connections")
    }

    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }
}
