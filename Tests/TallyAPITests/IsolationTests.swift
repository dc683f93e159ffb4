import Foundation
import Testing
import TallyAPI
import TallyIngest
import TallyQuery
import TallyServer
import TallyStorage
import TallyTestSupport
import TallyWrite
#if canImport(Glibc)
import Glibc
#endif

/// Tenant isolation (SPEC §3, §3c, §3d, §5): tokens restricted to some clients, checked on every
/// route of the registry — taken from `Registry.routes` itself, so a route added later is in the
/// matrix, and the test fails until it is exercised — over both listeners:
///
/// - no token or an unknown one: 401 (HTTP) / a fatal ERROR 401 (binary: QUERY or APPEND before
///   HELLO, or a HELLO with a bad token);
/// - a token may read a client: the answer is the all-clients token's answer, byte for byte;
/// - a client it may not read, one that does not exist (even one listed in the token), a
///   non-UUID: 403 `forbidden`, the very same bytes whichever it is, so existence never leaks;
///   to the all-clients token an unknown client is 404 `not_found`;
/// - a user or department of another client under a client the token may read is the same 404
///   as an id that does not exist, and ids of other clients in filters match nothing;
/// - the admin reports over clients: 403 to every scoped token (naming its own client in a
///   binary QUERY does not help);
/// - appends to a client the token may not read are refused, and nothing changed (log sequence,
///   every client's row count, an answer of the target client);
/// - reload and snapshot: 403 to scoped tokens, nothing loaded, nothing written; not reachable
///   over the binary protocol at all (no wire number is anything but a query route);
/// - `/v2/status` lists only the token's clients and hides where the data comes from;
/// - `/metrics` answers loopback and configured peers only, never names a client, and cannot be
///   asked over the binary protocol.
@Suite struct IsolationTests {
    static let secrets = (all: "iso-all-clients", a: "iso-client-a", ab: "iso-clients-ab", ghost: "iso-client-a-and-ghost")
    static let ghost = UUID128(high: 0x6057_0000_0000_4000, low: 0x8000_0000_0000_0001)  // listed in a token, not in the store
    static let unknown = UUID128(high: 0xDEAD_BEEF_0000_4000, low: 0x8000_0000_0000_0002)  // in no token, not in the store
    static let noEntity = UUID128(high: 0x0BAD_0000_0000_4000, low: 0x8000_0000_0000_0003)  // no user, department or app

    struct Token {
        var label: String
        var secret: String
        var clients: Set<UUID128>?
        var scoped: Bool { clients != nil }
        func mayRead(_ c: UUID128) -> Bool { clients.map { $0.contains(c) } ?? true }
    }

    /// One answer of either listener: HTTP status and body, or the binary RESULT's body (200) or
    /// ERROR's status and whole payload.
    struct Answer: Equatable, CustomStringConvertible {
        var status: Int
        var code: String?
        var body: [UInt8]
        var description: String {
            "\(status) \(code ?? "") " + String(body.prefix(160).map { (32..<127).contains($0) ? Character(UnicodeScalar($0)) : "." })
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    enum Via: String, CaseIterable { case http, binary }

    /// The same answer from the two listeners: status and code, and the body when it is a result
    /// (an error's body is JSON over HTTP and an ERROR payload over the binary protocol).
    static func same(_ b: Answer, _ h: Answer) -> Bool {
        b.status == h.status && b.code == h.code && (b.status != 200 || b.body == h.body)
    }

    /// A server of its own (appends, reloads and snapshots change what it serves): four clients,
    /// a write-ahead log, metrics kept, and tokens for client A, for {A, B}, for A and a client
    /// that does not exist, and for every client.
    final class Rig {
        let dump: RandomDump
        let folder: String, wal: String
        let writer: StoreWriter
        let observability: Observability
        let api: API
        let server: Server
        let a: UUID128, b: UUID128
        let tokens: [Token]

        init() throws {
            let dump = RandomDump(seed: 83, clientCount: 4, maxRowsPerClient: 500)
            let has = { (c: UUID128) in
                dump.departments.contains { $0.client == c } && dump.usage.contains { $0.client == c }
            }
            // A and B: clients with departments and usage (so every route of theirs answers 200).
            let candidates = dump.clients.map(\.id).filter(has)
            guard candidates.count >= 2 else { throw Failure("the dump has too few full clients") }
            (a, b) = (candidates[0], candidates[1])
            let base = NSTemporaryDirectory() + "tally-isolation-\(getpid())"
            let folder = base + "-dump", wal = base + ".wal"
            self.folder = folder
            self.wal = wal
            try DumpWriter.write(dump.tables(), to: folder)
            try? FileManager.default.removeItem(atPath: wal)
            let observability = Observability.prometheus(logLevel: .critical)
            let writer = StoreWriter(log: try WriteAheadLog(path: wal), source: DataSource(.dump(folder)), observer: observability)
            _ = try writer.reload(nil)
            let s = IsolationTests.secrets
            tokens = [
                Token(label: "A", secret: s.a, clients: [a]),
                Token(label: "A+B", secret: s.ab, clients: [a, b]),
                Token(label: "A+ghost", secret: s.ghost, clients: [a, IsolationTests.ghost]),
                Token(label: "all", secret: s.all, clients: nil),
            ]
            let api = API(writer: writer, tokens: TokenStore(entries: tokens.map {
                TokenEntry(name: $0.label, digest: TokenStore.sha256($0.secret), clients: $0.clients)
            }), observability: observability)
            self.dump = dump
            self.writer = writer
            self.observability = observability
            self.api = api
            server = try Server(api: api, host: "127.0.0.1", port: 0, binaryPort: 0, threads: 2)
        }

        var all: Token { tokens.last! }
        var scoped: [Token] { tokens.filter(\.scoped) }
        var clients: [UUID128] { dump.clients.map(\.id) }

        func shutdown() {
            server.shutdown()
            writer.stop()
            try? FileManager.default.removeItem(atPath: folder)
            try? FileManager.default.removeItem(atPath: wal)
        }
    }

    /// A binary-protocol connection over a raw socket, one request at a time.
    final class WireConnection {
        let socket: HTTPTestClient
        var nextID: UInt32 = 1

        /// Says HELLO with `token`; throws unless WELCOME comes back.
        init(port: Int, token: String) throws {
            socket = try HTTPTestClient(port: port)
            try socket.send(RawFrames.hello(id: 0, token: token, name: "isolation"))
            guard let f = try socket.readFrame(), f.type == 2 else { throw Failure("no WELCOME") }
        }

        /// Sends one frame and reads its answer.
        func ask(type: UInt8, payload: [UInt8]) throws -> Answer {
            let id = nextID
            nextID += 1
            try socket.send(RawFrames.frame(type: type, id: id, payload: payload))
            guard let f = try socket.readFrame() else { throw Failure("closed") }
            guard f.requestID == id else { throw Failure("an answer to \(f.requestID), not \(id)") }
            return IsolationTests.answer(f)
        }

        func query(_ wire: UInt8, client: [UInt8], _ params: [(String, String)], format: UInt8 = 0) throws -> Answer {
            try ask(type: 3, payload: RawFrames.queryPayload(endpoint: wire, format: format, client: client, params))
        }

        func append(client: [UInt8], _ body: String) throws -> Answer {
            try ask(type: 9, payload: client + Array(body.utf8))
        }
    }

    static func answer(_ f: RawFrame) -> Answer {
        if f.type == 4 { return Answer(status: 200, code: nil, body: Array(f.payload.dropFirst())) }
        return Answer(status: f.error?.status ?? 0, code: f.error?.code, body: f.payload)
    }

    static func answer(_ r: HTTPTestResponse) -> Answer {
        Answer(status: r.status, code: (r.object["error"] as? [String: Any])?["code"] as? String, body: r.body)
    }

    static func bytes(_ u: UUID128) -> [UInt8] { BinaryProtocolTests.bytes(u) }
    static let zeros = [UInt8](repeating: 0, count: 16)

    /// A value for each required parameter, from its name or its rule's first word (`30, 60 or
    /// 90` → `30`): a route added later with a parameter this cannot fill answers 400, and the
    /// matrix fails for it.
    static func parameters(_ route: Route) -> [(String, String)] {
        var q: [(String, String)] = []
        for p in route.parameters where p.rule.hasPrefix("required") && p.name != route.pathParameter {
            switch p.name {
            case "start_date": q.append((p.name, "2024-01-01"))
            case "end_date": q.append((p.name, "2024-06-30"))
            case "granularity", "cadence": q.append((p.name, "monthly"))
            default:
                let rest = p.rule.dropFirst("required".count).drop { !$0.isLetter && !$0.isNumber }
                q.append((p.name, String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" })))
            }
        }
        return q
    }

    /// The path parameter's value for a client: its first user or department (a UUID that is no
    /// entity when it has none); the first chart; `nil` for a parameter this test does not know.
    static func pathValue(_ route: Route, _ client: UUID128, _ dump: RandomDump) -> String? {
        switch route.pathParameter {
        case nil: return ""
        case "user_id": return (dump.users.first { $0.client == client }?.id ?? noEntity).description
        case "department_id": return (dump.departments.first { $0.client == client }?.id ?? noEntity).description
        case "chart_type": return "active_users"
        default: return nil
        }
    }

    /// Parameters whose values are ids of one client's own entities (filters).
    static let entityFilters = ["department_ids", "department_id", "app_ids"]

    static func target(_ route: Route, client: String, pathValue: String, _ params: [(String, String)]) -> String {
        var path = route.path.replacingOccurrences(of: "{client_id}", with: client)
        if let p = route.pathParameter { path = path.replacingOccurrences(of: "{\(p)}", with: pathValue) }
        return params.isEmpty ? path : path + "?" + params.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    @Test func isolationMatrix() throws {
        let rig = try Rig()
        defer { rig.shutdown() }
        let clock = ContinuousClock(), start = clock.now
        var exercised = Set<String>()
        var checks = 0
        func check(_ ok: Bool, _ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
            checks += 1
            #expect(ok, "\(what())", sourceLocation: sourceLocation)
        }

        // The registry: every route is a query (with a wire number, and only queries have one),
        // a service route or a deferred POST; the binary listener reaches nothing but queries and APPEND.
        let queryRoutes = Registry.routes.filter(\.isQuery)
        check(Set(queryRoutes.map(\.name)) == Set(Registry.routes.compactMap { $0.wire == nil ? nil : $0.name }),
              "every query route and nothing else has a wire number")
        for n in 0...255 { if let r = Registry.route(wire: UInt8(n)) { check(r.isQuery, "wire \(n) is \(r.name)") } }

        let port = rig.server.port, binaryPort = rig.server.binaryPort!
        var http: [String: HTTPTestClient] = [:]
        var wire: [String: WireConnection] = [:]
        for t in rig.tokens {
            http[t.label] = try HTTPTestClient(port: port)
            wire[t.label] = try WireConnection(port: binaryPort, token: t.secret)
        }
        func get(_ t: Token?, _ target: String, secret: String? = nil) throws -> Answer {
            let c = try t.map { http[$0.label]! } ?? HTTPTestClient(port: port)
            return Self.answer(try c.request("GET", target, token: secret ?? t?.secret))
        }

        // Unassigned wire numbers: 404 to every token (nothing else is reachable by number).
        for n in 0...255 where Registry.route(wire: UInt8(n)) == nil {
            for t in rig.tokens {
                let r = try wire[t.label]!.query(UInt8(n), client: Self.bytes(rig.a), [])
                check(r.status == 404 && r.code == "not_found", "binary wire \(n) \(t.label): \(r)")
            }
        }

        // MARK: Query routes, over both listeners.
        for route in queryRoutes {
            let params = Self.parameters(route)
            guard route.base == .client || (route.base == .root && route.adminOnly) else {
                Issue.record("\(route.name) \(route.path): a query route over clients that is not admin-only — decide its isolation here")
                continue
            }
            guard Self.pathValue(route, rig.a, rig.dump) != nil else {
                Issue.record("\(route.name): path parameter \(route.pathParameter!) unknown to this test")
                continue
            }
            func binaryParams(_ client: UUID128, _ extra: [(String, String)] = []) -> [(String, String)] {
                var p = params + extra
                if let name = route.pathParameter { p.append((name, Self.pathValue(route, client, rig.dump)!)) }
                return p
            }
            func httpTarget(_ client: String, pathValue: String? = nil, _ extra: [(String, String)] = []) -> String {
                let id = UUID128(client) ?? rig.a
                return Self.target(route, client: client, pathValue: pathValue ?? Self.pathValue(route, id, rig.dump)!, params + extra)
            }

            // No token, an unknown one: 401 over HTTP; QUERY before HELLO is a fatal 401.
            for secret in [nil, "not-a-token"] as [String?] {
                let c = try HTTPTestClient(port: port)
                let r = try c.request("GET", httpTarget(rig.a.description), token: secret)
                check(r.status == 401 && Self.answer(r).code == "unauthorized" && r.header("www-authenticate") == "Bearer",
                      "\(route.name) http token \(secret ?? "none"): \(r.status)")
            }
            do {
                let c = try HTTPTestClient(port: binaryPort)
                try c.send(RawFrames.frame(type: 3, id: 5, payload: RawFrames.queryPayload(
                    endpoint: route.wire!, client: Self.bytes(rig.a), binaryParams(rig.a))))
                let f = try c.readFrame()
                check(f?.error?.status == 401 && f?.error?.code == "unauthorized" && f?.flags == 1, "\(route.name) binary before HELLO")
                check(try c.readFrame() == nil, "\(route.name) binary: closed after the fatal 401")
            }

            if route.base == .root {
                // Admin reports over clients: the all-clients token only.
                let reference = try get(rig.all, httpTarget(""))
                check(reference.status == 200, "\(route.name) all: \(reference)")
                let viaWire = try wire[rig.all.label]!.query(route.wire!, client: Self.zeros, binaryParams(rig.a))
                check(Self.same(viaWire, reference), "\(route.name) binary all == HTTP: \(viaWire)")
                for t in rig.scoped {
                    let h = try get(t, httpTarget(""))
                    check(h.status == 403 && h.code == "forbidden", "\(route.name) http \(t.label): \(h)")
                    for client in [Self.zeros, Self.bytes(rig.a)] {
                        let b = try wire[t.label]!.query(route.wire!, client: client, binaryParams(rig.a))
                        check(b.status == 403 && b.code == "forbidden", "\(route.name) binary \(t.label): \(b)")
                    }
                }
                if reference.status == 200 && Self.same(viaWire, reference) { exercised.insert(route.name) }
                continue
            }

            // Routes under a client. The all-clients token's answers are the reference.
            var reference: [UUID128: (http: Answer, binary: Answer)] = [:]
            for c in rig.clients {
                let h = try get(rig.all, httpTarget(c.description))
                let b = try wire[rig.all.label]!.query(route.wire!, client: Self.bytes(c), binaryParams(c))
                check(Self.same(b, h), "\(route.name) \(c): binary == HTTP for the all-clients token: \(b) vs \(h)")
                reference[c] = (h, b)
            }
            check(reference[rig.a]!.http.status == 200 && reference[rig.b]!.http.status == 200,
                  "\(route.name): A and B answer 200 to the all-clients token: \(reference[rig.a]!.http)")
            var scopedOK = 0
            for t in rig.tokens {
                // Clients that exist: the reference when readable, else 403.
                var refusals: [(Via, String, Answer)] = []
                for c in rig.clients {
                    let h = try get(t, httpTarget(c.description))
                    let b = try wire[t.label]!.query(route.wire!, client: Self.bytes(c), binaryParams(c))
                    if t.mayRead(c) {
                        check(h == reference[c]!.http, "\(route.name) http \(t.label) \(c): \(h) vs \(reference[c]!.http)")
                        check(b == reference[c]!.binary, "\(route.name) binary \(t.label) \(c): \(b)")
                        if c == rig.a && t.scoped && h.status == 200 && b.status == 200 { scopedOK += 1 }
                    } else {
                        refusals.append((.http, c.description, h))
                        refusals.append((.binary, c.description, b))
                    }
                }
                // Clients that do not exist (one listed in a token), and a non-UUID over HTTP.
                var missing: [(Via, String, Answer)] = []
                for c in [Self.ghost, Self.unknown] {
                    missing.append((.http, c.description, try get(t, httpTarget(c.description))))
                    missing.append((.binary, c.description, try wire[t.label]!.query(route.wire!, client: Self.bytes(c), binaryParams(c))))
                }
                missing.append((.http, "not-a-uuid", try get(t, httpTarget("not-a-uuid"))))
                if t.scoped {
                    // 403 for all of them, the same bytes per listener: existence does not leak.
                    let first = Dictionary((refusals + missing).map { ($0.0, $0.2) }, uniquingKeysWith: { a, _ in a })
                    for (listener, c, r) in refusals + missing {
                        check(r.status == 403 && r.code == "forbidden", "\(route.name) \(listener) \(t.label) \(c): \(r)")
                        check(r == first[listener], "\(route.name) \(listener) \(t.label) \(c): the same refusal as any other")
                    }
                } else {
                    check(refusals.isEmpty, "the all-clients token is refused nothing")
                    for (listener, c, r) in missing {
                        check(r.status == 404 && r.code == "not_found", "\(route.name) \(listener) all \(c): \(r)")
                    }
                }
                // The compact encoding of a readable client's answer is the all-clients token's too.
                let compact = try wire[t.label]!.query(route.wire!, client: Self.bytes(rig.a), binaryParams(rig.a), format: 1)
                let compactAll = try wire[rig.all.label]!.query(route.wire!, client: Self.bytes(rig.a), binaryParams(rig.a), format: 1)
                check(compact == compactAll && compact.status == 200, "\(route.name) compact \(t.label): \(compact)")
            }

            // Another client's user or department under a readable client: the 404 of an id that
            // does not exist, byte for byte.
            if let name = route.pathParameter, name == "user_id" || name == "department_id" {
                let foreign = Self.pathValue(route, rig.b, rig.dump)!, none = Self.noEntity.description
                let t = rig.tokens[0]
                let h = try get(t, httpTarget(rig.a.description, pathValue: foreign))
                let hNone = try get(t, httpTarget(rig.a.description, pathValue: none))
                check(h.status == 404 && h == hNone, "\(route.name) http: another client's \(name): \(h) vs \(hNone)")
                let w = wire[t.label]!
                let b = try w.query(route.wire!, client: Self.bytes(rig.a), params + [(name, foreign)])
                let bNone = try w.query(route.wire!, client: Self.bytes(rig.a), params + [(name, none)])
                check(b.status == 404 && b == bNone, "\(route.name) binary: another client's \(name): \(b) vs \(bNone)")
            }
            // Ids of another client's departments or apps in filters match nothing, as unknown ids.
            for p in route.parameters where Self.entityFilters.contains(p.name) && p.name != route.pathParameter {
                let foreign = p.name.hasPrefix("app")
                    ? rig.dump.apps.first { $0.client == rig.b }!.id : rig.dump.departments.first { $0.client == rig.b }!.id
                let paging = route.parameters.contains { $0.name == "page_size" } ? [("page_size", "200")] : []
                let t = rig.tokens[0]
                let h = try get(t, httpTarget(rig.a.description, paging + [(p.name, foreign.description)]))
                let hNone = try get(t, httpTarget(rig.a.description, paging + [(p.name, Self.noEntity.description)]))
                check(h.status == 200 && h == hNone, "\(route.name) http: \(p.name) of another client: \(h) vs \(hNone)")
                let w = wire[t.label]!
                let b = try w.query(route.wire!, client: Self.bytes(rig.a), binaryParams(rig.a, paging + [(p.name, foreign.description)]))
                let bNone = try w.query(route.wire!, client: Self.bytes(rig.a), binaryParams(rig.a, paging + [(p.name, Self.noEntity.description)]))
                check(b.status == 200 && b == bNone, "\(route.name) binary: \(p.name) of another client")
            }
            if scopedOK == rig.scoped.count { exercised.insert(route.name) }
        }

        // MARK: Appends, over both listeners.
        let appendRoute = Registry.appendRoute
        do {
            func event(_ c: UUID128, user: UUID128? = nil, app: UUID128? = nil, day: Int) -> String {
                let u = user ?? rig.dump.users.first { $0.client == c }?.id ?? Self.noEntity
                let a = app ?? rig.dump.apps.first { $0.client == c }?.id ?? Self.noEntity
                return "{\"events\":[{\"user_id\":\"\(u)\",\"application_id\":\"\(a)\",\"activity_date\":\"\(Day("2025-04-01")!.adding(day))\"}]}"
            }
            /// What a refused append must leave alone.
            func state(_ target: UUID128?) throws -> String {
                let store = rig.writer.store!
                var s = "wal \(store.walSequence);"
                for c in store.clients { s += " \(c.info.id)=\(c.usage?.rowCount ?? 0)" }
                if let target, store.client(target) != nil {
                    s += " " + String(decoding: try get(rig.all, "/v2/clients/\(target)/usage-statistics/active-users?window_days=366").body,
                                      as: UTF8.self)
                }
                return s
            }
            func post(_ t: Token?, _ client: String, _ body: String, secret: String? = nil) throws -> Answer {
                let c = try t.map { http[$0.label]! } ?? HTTPTestClient(port: port)
                return Self.answer(try c.request("POST", "/v2/clients/\(client)/usage-events", token: secret ?? t?.secret,
                                                 headers: [("Content-Type", "application/json")], body: body))
            }
            var day = 0
            // No token, an unknown one; APPEND before HELLO.
            for secret in [nil, "not-a-token"] as [String?] {
                let before = try state(rig.a)
                let r = try post(nil, rig.a.description, event(rig.a, day: 0), secret: secret)
                check(r.status == 401 && r.code == "unauthorized", "append http token \(secret ?? "none"): \(r)")
                check(try state(rig.a) == before, "append without a token changed nothing")
            }
            do {
                let before = try state(rig.a)
                let c = try HTTPTestClient(port: binaryPort)
                try c.send(RawFrames.frame(type: 9, id: 5, payload: Self.bytes(rig.a) + Array(event(rig.a, day: 0).utf8)))
                let f = try c.readFrame()
                check(f?.error?.status == 401 && f?.flags == 1, "append binary before HELLO")
                check(try state(rig.a) == before, "append before HELLO changed nothing")
            }
            var allowed = 0
            for t in rig.tokens {
                for listener in Via.allCases {
                    var refusals: [Answer] = []
                    for c in rig.clients + [Self.ghost, Self.unknown] {
                        day += 1
                        let before = try state(c)
                        let r = listener == .http ? try post(t, c.description, event(c, day: day))
                            : try wire[t.label]!.append(client: Self.bytes(c), event(c, day: day))
                        let exists = rig.writer.store!.client(c) != nil
                        if t.mayRead(c) && exists {
                            check(r.status == 200, "append \(listener) \(t.label) \(c): \(r)")
                            let after = try state(c)
                            check(after != before, "append \(listener) \(t.label) \(c) was applied")
                            // Only that client's rows moved.
                            let others = { (s: String) in s.split(separator: " ").filter { w in
                                !w.hasPrefix("wal") && !w.hasPrefix(c.description) && w.contains("=") } }
                            check(others(after) == others(before), "append to \(c) touched only \(c)")
                            if t.scoped && r.status == 200 { allowed += 1 }
                        } else {
                            let expected = t.scoped ? (403, "forbidden") : (404, "not_found")
                            check(r.status == expected.0 && r.code == expected.1, "append \(listener) \(t.label) \(c): \(r)")
                            check(try state(c) == before, "a refused append (\(listener) \(t.label) \(c)) changed nothing")
                            if t.scoped { refusals.append(r) }
                        }
                    }
                    if listener == .http {
                        let before = try state(nil)
                        let r = try post(t, "not-a-uuid", event(rig.a, day: 0))
                        check(r.status == (t.scoped ? 403 : 404), "append http \(t.label) not-a-uuid: \(r)")
                        check(try state(nil) == before, "append to not-a-uuid changed nothing")
                        if t.scoped { refusals.append(r) }
                    }
                    check(Set(refusals.map(\.body)).count <= 1, "append \(listener) \(t.label): every refusal the same bytes")
                }
            }
            // A readable client, naming another client's user and app: refused whole, worded as
            // for ids that do not exist, nothing applied.
            let t = rig.tokens[0]
            let foreignUser = rig.dump.users.first { $0.client == rig.b }!.id, foreignApp = rig.dump.apps.first { $0.client == rig.b }!.id
            for listener in Via.allCases {
                var messages: [String] = []
                for (u, a) in [(foreignUser, foreignApp), (Self.noEntity, Self.noEntity)] {
                    let before = try state(rig.a)
                    let body = event(rig.a, user: u, app: a, day: 1)
                    let r = listener == .http ? try post(t, rig.a.description, body)
                        : try wire[t.label]!.append(client: Self.bytes(rig.a), body)
                    check(r.status == 400 && r.code == "invalid_events", "append \(listener) foreign ids: \(r)")
                    check(try state(rig.a) == before, "append \(listener) with foreign ids changed nothing")
                    messages.append(String(decoding: r.body, as: UTF8.self)
                        .replacingOccurrences(of: u.description, with: "ID").replacingOccurrences(of: a.description, with: "ID"))
                }
                check(messages[0] == messages[1], "append \(listener): another client's ids are refused as unknown ones: \(messages)")
            }
            let expected = rig.scoped.map { t in rig.clients.filter(t.mayRead).count }.reduce(0, +) * Via.allCases.count
            check(allowed == expected, "append: \(allowed) of \(expected) scoped appends to readable clients accepted")
            if allowed == expected { exercised.insert(appendRoute.name) }
        }

        // MARK: Snapshot and reload (HTTP only: the binary protocol has no message for them).
        let refusedCallers: [(Token?, String?)] = [(nil, nil), (nil, "not-a-token")] + rig.scoped.map { ($0, nil) }
        let everyone: [Token?] = [nil] + rig.tokens.map { $0 }
        func postAdmin(_ path: String, _ t: Token?, _ body: String, secret: String? = nil) throws -> Answer {
            let c = try HTTPTestClient(port: port)
            return Self.answer(try c.request("POST", path, token: secret ?? t?.secret,
                                             headers: [("Content-Type", "application/json")], body: body))
        }
        // The snapshot holds the appends above and cuts the log: the reload below loads it (the
        // dump no longer can be: it lacks those rows, and is refused).
        let file = rig.wal + ".tsnap"
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            try? FileManager.default.removeItem(atPath: file)
            let body = "{\"path\": \"\(file)\"}"
            for (t, secret) in refusedCallers {
                let walBefore = try? FileManager.default.attributesOfItem(atPath: rig.wal)[.size] as? Int
                let r = try postAdmin("/v2/admin/snapshot", t, body, secret: secret)
                let expected = t == nil ? (401, "unauthorized") : (403, "forbidden")
                check(r.status == expected.0 && r.code == expected.1, "snapshot \(t?.label ?? secret ?? "none"): \(r)")
                check(!FileManager.default.fileExists(atPath: file), "a refused snapshot wrote nothing")
                check((try? FileManager.default.attributesOfItem(atPath: rig.wal)[.size] as? Int) == walBefore,
                      "a refused snapshot left the log as it was")
            }
            let ok = try postAdmin("/v2/admin/snapshot", rig.all, body)
            check(ok.status == 200 && FileManager.default.fileExists(atPath: file), "snapshot all: \(ok)")
            if ok.status == 200 { exercised.insert("snapshot") }
        }
        do {
            let good = "{\"snapshot\": \"\(file)\"}"
            for (t, secret) in refusedCallers {
                let store = rig.writer.store!, last = rig.observability.lastReloadRecord?.finishedAt
                let r = try postAdmin("/v2/admin/reload", t, good, secret: secret)
                let expected = t == nil ? (401, "unauthorized") : (403, "forbidden")
                check(r.status == expected.0 && r.code == expected.1, "reload \(t?.label ?? secret ?? "none"): \(r)")
                check(rig.writer.store! === store && rig.observability.lastReloadRecord?.finishedAt == last,
                      "a refused reload loaded nothing")
            }
            // A failed reload by the all-clients token: its error (which names a path) is hidden
            // from scoped tokens in /v2/status.
            let missing = rig.folder + "-missing"
            let failed = try postAdmin("/v2/admin/reload", rig.all, "{\"dump\": \"\(missing)\"}")
            check(failed.status == 422, "reload of a missing dump: \(failed)")
            for t in rig.tokens {
                let s = try get(t, "/v2/status")
                let last = s.body.isEmpty ? [:] : ((try? JSONSerialization.jsonObject(with: Data(s.body)) as? [String: Any])??["last_reload"]
                    as? [String: Any] ?? [:])
                let text = String(decoding: s.body, as: UTF8.self)
                if t.scoped {
                    check(last["source"] is NSNull && last["error"] as? String == "the load failed" && !text.contains(missing),
                          "status \(t.label) after a failed reload: \(last)")
                } else {
                    check(last["source"] as? String == missing && last["error"] is String,
                          "status all after a failed reload: \(last)")
                }
            }
            let ok = try postAdmin("/v2/admin/reload", rig.all, good)
            check(ok.status == 200, "reload all: \(ok)")
            if ok.status == 200 { exercised.insert("reload") }
        }

        // MARK: /v2/status: the token's clients only, no data source.
        do {
            for secret in [nil, "not-a-token"] as [String?] {
                let r = try get(nil, "/v2/status", secret: secret)
                check(r.status == 401 && r.code == "unauthorized", "status token \(secret ?? "none"): \(r)")
            }
            var ok = 0
            for t in rig.tokens {
                let r = try get(t, "/v2/status")
                let doc = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
                let listed = Set(((doc["client_list"] as? [[String: Any]]) ?? []).compactMap { ($0["id"] as? String).flatMap(UUID128.init) })
                let readable = Set(rig.clients.filter(t.mayRead))
                check(r.status == 200 && listed == readable, "status \(t.label): lists \(listed.count), may read \(readable.count)")
                let text = String(decoding: r.body, as: UTF8.self)
                let last = doc["last_reload"] as? [String: Any] ?? [:]
                if t.scoped {
                    check(doc["data_source"] is NSNull && last["source"] is NSNull && !text.contains(rig.folder) && !text.contains(file),
                          "status \(t.label) hides the data source")
                    for c in rig.clients + [Self.ghost] where !readable.contains(c) {
                        check(!text.lowercased().contains(c.description.lowercased()), "status \(t.label) names \(c)")
                    }
                    if r.status == 200 && listed == readable { ok += 1 }
                } else {
                    check(doc["data_source"] as? String == file && last["source"] as? String == file,
                          "status all shows the data source: \(doc["data_source"] ?? "nil")")
                }
            }
            if ok == rig.scoped.count { exercised.insert("status") }
        }

        // MARK: /metrics: loopback and configured peers only; no client id in it.
        do {
            let local = try get(nil, "/metrics")
            let text = String(decoding: local.body, as: UTF8.self)
            check(local.status == 200 && text.contains("tally_requests_total"), "metrics on loopback: \(local.status)")
            for c in rig.clients + [Self.ghost, Self.unknown] {
                check(!text.lowercased().contains(c.description.lowercased()), "/metrics names client \(c)")
            }
            // In process, as a listener would pass a peer: non-loopback is refused, token or not.
            for peer in ["192.0.2.77", "10.0.0.1", "::2", "128.0.0.1"] {
                for t in everyone {
                    var req = APIRequest(method: "GET", target: "/metrics", authorization: t.map { "Bearer \($0.secret)" })
                    req.remoteAddress = peer
                    let r = rig.api.handle(req)
                    check(r.status == 403, "metrics from \(peer) with \(t?.label ?? "no token"): \(r.status)")
                }
            }
            // (Not over a socket from another address: servers in tests bind loopback only. The
            // listener passes the peer's address as `remoteAddress`, and "unknown" when it has none.)
            var unknownPeer = APIRequest(method: "GET", target: "/metrics", authorization: nil)
            unknownPeer.remoteAddress = "unknown"
            check(rig.api.handle(unknownPeer).status == 403, "metrics from a peer of unknown address")
            // A configured peer may read it.
            let peerAPI = API(writer: rig.writer, tokens: rig.api.tokens, observability: .prometheus(metricsPeers: ["192.0.2.77"], logLevel: .critical))
            var configured = APIRequest(method: "GET", target: "/metrics", authorization: nil)
            configured.remoteAddress = "192.0.2.77"
            check(peerAPI.handle(configured).status == 200, "metrics from a configured peer")
            if local.status == 200 { exercised.insert("metrics") }
        }

        // MARK: Public service routes: the same bytes whatever the token (no client data).
        for route in Registry.routes {
            guard case .service = route.kind, !["status", "metrics"].contains(route.name) else { continue }
            guard ["healthz", "readyz", "openapi", "console"].contains(route.name) else {
                Issue.record("service route \(route.name) \(route.path): no isolation case — decide what it may show to which token")
                continue
            }
            let open = try get(nil, route.path)
            check(open.status == 200, "\(route.name) without a token: \(open)")
            for t in rig.tokens { check(try get(t, route.path) == open, "\(route.name) \(t.label): the same as without a token") }
            exercised.insert(route.name)
        }

        // Every route of the registry went through the matrix.
        let missing = Set(Registry.routes.map(\.name)).subtracting(exercised)
        check(missing.isEmpty, "routes not exercised: \(missing.sorted())")
        let d = (clock.now - start).components
        let seconds = ((Double(d.seconds) + Double(d.attoseconds) / 1e18) * 10).rounded() / 10
        print("IsolationTests: \(Registry.routes.count) routes (\(queryRoutes.count) queries), \(rig.tokens.count) tokens + none, "
              + "2 listeners, \(checks) checks, \(seconds) s")
    }
}
