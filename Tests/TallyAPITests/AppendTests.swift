import Foundation
import Synchronization
import Testing
@testable import TallyAPI
import TallyClient
import TallyIngest
@testable import TallyQuery
import TallyServer
@testable import TallyStorage
import TallyTestSupport
import TallyWire
@testable import TallyWrite

/// Appends (SPEC §6): a batch is checked whole — any refused event refuses it, each refused event
/// named by its index — and once acknowledged it is in the log and in the answers; over HTTP and
/// the binary protocol alike; many concurrent batches share log writes; a snapshot taken through
/// the server drops the log records it holds, and restarting from it replays the rest.
@Suite(.serialized) struct AppendTests {
    static let all = "append-all", scoped = "append-scoped"

    struct Rig {
        let dump: RandomDump
        let folder: String, wal: String
        let writer: StoreWriter
        let server: Server

        var client: UUID128 { dump.clients[0].id }
        var users: [UUID128] { dump.users.filter { $0.client == client }.map(\.id) }
        var apps: [UUID128] { dump.apps.filter { $0.client == client }.map(\.id) }

        func rows() -> Int { writer.store!.usageRowCount }

        func shutdown() {
            server.shutdown()
            writer.stop()
        }
    }

    static func rig(_ name: String, seed: UInt64 = 61, wal: String? = nil, snapshot: String? = nil,
                    tailMinRows: Int = ClientStore.tailMinRows, tailMaxRows: Int? = nil, mergeMinRows: Int? = nil,
                    mergeAfterSeconds: Double = 300) throws -> Rig {
        let dump = RandomDump(seed: seed, clientCount: 2, maxRowsPerClient: 700)
        let base = NSTemporaryDirectory() + "tally-append-\(name)-\(getpid())"
        try DumpWriter.write(dump.tables(), to: base + "-dump")
        TemporaryPaths.removeAtExit(base + "-dump")
        let walPath = wal ?? base + ".wal"
        if wal == nil {
            try? FileManager.default.removeItem(atPath: walPath)
            TemporaryPaths.removeAtExit(walPath)
        }
        let source = DataSource(snapshot.map { .snapshot($0) } ?? .dump(base + "-dump"))
        let observability = Observability.prometheus(logLevel: .critical)
        let writer = StoreWriter(log: try WriteAheadLog(path: walPath), source: source, observer: observability, tailMinRows: tailMinRows,
                                 tailMaxRows: tailMaxRows, mergeMinRows: mergeMinRows, mergeAfterSeconds: mergeAfterSeconds)
        _ = try writer.reload(nil)
        let tokens = TokenStore(entries: [
            TokenEntry(name: "all", digest: TokenStore.sha256(all), clients: nil),
            TokenEntry(name: "scoped", digest: TokenStore.sha256(scoped), clients: [dump.clients[0].id]),
        ])
        let api = API(writer: writer, tokens: tokens, observability: observability)
        let server = try Server(api: api, host: "127.0.0.1", port: 0, binaryPort: 0, threads: 2)
        return Rig(dump: dump, folder: base + "-dump", wal: walPath, writer: writer, server: server)
    }

    /// A sample's value in a `/metrics` exposition (`name` with its labels, as written), if present.
    static func metric(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    /// `n` events of random users and apps of `client` (as `dump` has them) on `day`, and the body
    /// that appends them.
    static func randomEvents(_ dump: RandomDump, client: UUID128, day: Day, _ n: Int,
                             _ r: inout SeededRandom) -> (rows: [RandomDump.Usage], body: String) {
        let users = dump.users.filter { $0.client == client }.map(\.id), apps = dump.apps.filter { $0.client == client }.map(\.id)
        let rows = (0..<n).map { _ in
            RandomDump.Usage(client: client, user: users.randomElement(using: &r)!, app: apps.randomElement(using: &r)!, day: day)
        }
        return (rows, "[" + rows.map { event($0.user, $0.app, $0.day.description) }.joined(separator: ",") + "]")
    }

    static func event(_ u: UUID128, _ a: UUID128, _ d: String) -> String {
        "{\"user_id\":\"\(u)\",\"application_id\":\"\(a)\",\"activity_date\":\"\(d)\"}"
    }

    static func post(_ rig: Rig, _ body: String, token: String? = all, client: String? = nil) throws -> HTTPTestResponse {
        try HTTPTestClient(port: rig.server.port).request("POST", "/v2/clients/\(client ?? rig.client.description)/usage-events",
                                                          token: token, headers: [("Content-Type", "application/json")], body: body)
    }

    /// One batch per day of `days`, each the client's first user on its first app: all acknowledged.
    static func postDays(_ rig: Rig, _ days: [String]) throws {
        let (u, a) = (rig.users[0], rig.apps[0])
        for d in days { #expect(try post(rig, "[" + event(u, a, d) + "]").status == 200) }
    }

    /// `POST /v2/admin/snapshot` of `path`.
    static func saveSnapshot(_ port: Int, _ path: String, token: String = all) throws -> HTTPTestResponse {
        try HTTPTestClient(port: port).request("POST", "/v2/admin/snapshot", token: token,
                                               headers: [("Content-Type", "application/json")], body: "{\"path\": \"\(path)\"}")
    }

    @Test func acknowledgedRowsAreVisibleAndRefusedBatchesChangeNothing() throws {
        let rig = try Self.rig("visible")
        defer { rig.shutdown() }
        let (u, a) = (rig.users[0], rig.apps[0])
        let before = rig.rows()
        // A new (user, app, day) and a duplicate of itself: one row more.
        let ok = try Self.post(rig, "{\"events\":[" + Self.event(u, a, "2025-06-02") + "," + Self.event(u, a, "2025-06-02") + "]}")
        #expect(ok.status == 200 && ok.object["accepted"] as? Int == 2 && ok.object["sequence"] as? Int == 1, "\(ok.text)")
        #expect(rig.rows() == before + 1)
        // Visible to the next query: that app on that day has this user.
        let trend = try HTTPTestClient(port: rig.server.port).request(
            "GET", "/v2/clients/\(rig.client)/analytics/apps/utilization/trend?granularity=daily&start_date=2025-06-02"
                + "&end_date=2025-06-02&app_ids=\(a)", token: Self.all)
        #expect(((trend.object["series"] as? [[String: Any]])?.first?["unique_users"] as? Int) == 1)
        // The bare array form.
        #expect(try Self.post(rig, "[" + Self.event(u, a, "2025-06-03") + "]").status == 200)
        #expect(rig.rows() == before + 2)

        // Refused batches: every bad event named by index and field; nothing applied.
        let otherClientUser = rig.dump.users.first { $0.client != rig.client }!.id
        let otherClientApp = rig.dump.apps.first { $0.client != rig.client }!.id
        let bad = [Self.event(u, a, "2025-06-04"),                       // 0: fine
                   Self.event(otherClientUser, a, "2025-06-04"),         // 1: a user of another client
                   Self.event(u, otherClientApp, "2025-06-04"),          // 2: an app of another client
                   Self.event(u, a, "2025-02-30"),                       // 3: not a date
                   "{\"user_id\":\"\(u)\",\"activity_date\":\"2025-06-04\"}", // 4: no app
                   Self.event(u, a, "2099-01-01"),                       // 5: too far ahead
                   "7"]                                                  // 6: not an object
        let refused = try Self.post(rig, "{\"events\":[" + bad.joined(separator: ",") + "]}")
        #expect(refused.status == 400)
        let error = refused.object["error"] as? [String: Any] ?? [:]
        #expect(error["code"] as? String == "invalid_events")
        let rows = error["rows"] as? [[String: Any]] ?? []
        let named = Set(rows.map { "\($0["index"] as? Int ?? -1) \($0["field"] as? String ?? "")" })
        #expect(named == ["1 user_id", "2 application_id", "3 activity_date", "4 application_id", "5 activity_date", "6 "], "\(named)")
        #expect(rig.rows() == before + 2, "nothing of a refused batch applied")
        for body in ["", "{}", "{\"events\": []}", "{\"events\": 3}", "not json",
                     "{\"events\":[" + Array(repeating: Self.event(u, a, "2025-06-05"), count: AppendBody.maxEvents + 1).joined(separator: ",") + "]}"] {
            let r = try Self.post(rig, body)
            #expect(r.status == 400 || r.status == 413, "\(body.prefix(40)): \(r.status)")
        }
        #expect(rig.rows() == before + 2)
        #expect(rig.writer.store!.walSequence == 2, "refused batches are not logged")
    }

    @Test func authAndMethods() throws {
        let rig = try Self.rig("auth")
        defer { rig.shutdown() }
        let body = "[" + Self.event(rig.users[0], rig.apps[0], "2025-06-02") + "]"
        #expect(try Self.post(rig, body, token: nil).status == 401)
        #expect(try Self.post(rig, body, token: "nope").status == 401)
        #expect(try Self.post(rig, body, token: Self.scoped).status == 200)
        let other = rig.dump.clients[1].id.description
        #expect(try Self.post(rig, body, token: Self.scoped, client: other).status == 403)
        #expect(try Self.post(rig, body, token: Self.scoped, client: UUID128(high: 1, low: 2).description).status == 403)
        #expect(try Self.post(rig, body, token: Self.all, client: UUID128(high: 1, low: 2).description).status == 404)
        #expect(try Self.post(rig, body, token: Self.all, client: "not-a-uuid").status == 404)
        let get = try HTTPTestClient(port: rig.server.port).request("GET", "/v2/clients/\(rig.client)/usage-events", token: Self.all)
        #expect(get.status == 405)
    }

    /// 200 batches from 8 connections at once: all acknowledged, all applied, fewer log writes
    /// than batches would be possible but is not required; every sequence number used once.
    @Test func concurrentBatchesAreAllAcknowledged() throws {
        let rig = try Self.rig("concurrent")
        defer { rig.shutdown() }
        let before = rig.rows()
        let users = rig.users, apps = rig.apps, port = rig.server.port, client = rig.client
        let sequences = Mutex<[Int]>([])
        let threads = (0..<8).map { t in
            Thread {
                guard let c = try? HTTPTestClient(port: port) else { return }
                for k in 0..<25 {
                    let n = t * 25 + k
                    // A distinct day per batch, beyond the dump: each adds exactly one row.
                    let body = "[" + Self.event(users[n % users.count], apps[n % apps.count], Day("2025-04-01")!.adding(n).description) + "]"
                    if let r = try? c.request("POST", "/v2/clients/\(client)/usage-events", token: Self.all,
                                              headers: [("Content-Type", "application/json")], body: body), r.status == 200 {
                        sequences.withLock { $0.append(r.object["sequence"] as? Int ?? -1) }
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { Thread.sleep(forTimeInterval: 0.01) }
        let seen = sequences.withLock { $0 }
        #expect(seen.count == 200 && Set(seen) == Set(1...200))
        #expect(rig.rows() == before + 200)
    }

    @Test func binaryAppendAnswersLikeHTTP() async throws {
        let rig = try Self.rig("binary")
        defer { rig.shutdown() }
        let tally = try await TallyClient.connect(host: "127.0.0.1", port: rig.server.binaryPort!, token: Self.all)
        let before = rig.rows()
        let payload = BinaryProtocolTests.bytes(rig.client) + Array(("[" + Self.event(rig.users[0], rig.apps[0], "2025-07-01") + "]").utf8)
        let ok = try await tally.raw(type: MessageType.append.rawValue, payload: payload)
        #expect(ok.messageType == MessageType.result)
        #expect(rig.rows() == before + 1)
        let bad = BinaryProtocolTests.bytes(rig.client) + Array(("[" + Self.event(rig.users[0], rig.apps[0], "2025-13-01") + "]").utf8)
        do {
            _ = try await tally.raw(type: MessageType.append.rawValue, payload: bad)
            Issue.record("a bad batch was accepted")
        } catch let TallyClientError.server(e, fatal) {
            #expect(e.status == 400 && e.code == "invalid_events" && !fatal && e.message.contains("event 0 (activity_date)"))
        }
        #expect(rig.rows() == before + 1)
        try await tally.close()
    }

    /// After appends — days before the client's first, inside its span and after its last, for
    /// users who had no activity, for users who churned and now come back — every directory,
    /// insight and admin report equals the brute-force reference over the dump plus the
    /// appended rows (per-user first/last active days, running sums, range tables and derived
    /// user orders all follow the append).
    @Test func appendsKeepTheDirectoryReportsExact() throws {
        let rig = try Self.rig("directory", seed: 67)
        defer { rig.shutdown() }
        var dump = rig.dump
        var r = SeededRandom(seed: 67)
        let users = rig.users, apps = rig.apps
        // A derived user order exists before the append (it must not be served stale after it).
        let before = try HTTPTestClient(port: rig.server.port).request(
            "GET", "/v2/clients/\(rig.client)/users?sort_by=last_active_date", token: Self.all)
        #expect(before.status == 200)
        let days = (-40...0).map { RandomDump.firstDay.adding($0) } + (0...40).map { RandomDump.lastDay.adding($0) }
            + (0..<20).map { _ in RandomDump.firstDay.adding(Int.random(in: 0...RandomDump.firstDay.distance(to: RandomDump.lastDay), using: &r)) }
        for batch in 0..<4 {
            var events: [String] = []
            for _ in 0..<25 {
                let row = RandomDump.Usage(client: rig.client, user: users.randomElement(using: &r)!,
                                           app: apps.randomElement(using: &r)!, day: days.randomElement(using: &r)!)
                events.append(Self.event(row.user, row.app, row.day.description))
                dump.usage.append(row)
            }
            let response = try Self.post(rig, "{\"events\": [" + events.joined(separator: ",") + "]}")
            #expect(response.status == 200, "batch \(batch): \(response.text)")
        }
        let reference = DirectoryReference(dump)
        for name in DirectoryTests.routes {
            let route = DirectoryTests.route(name)
            for n in 0..<12 {
                var (path, query) = DirectoryTests.randomRequest(route, dump, &r)
                // The appended client, whatever the random request chose.
                if route.base == .client, let other = dump.clients.first(where: { $0.id != rig.client }),
                   path.contains(other.id.description) {
                    if route.pathParameter != nil { continue }  // an entity of the other client
                    path = path.replacingOccurrences(of: other.id.description, with: rig.client.description)
                }
                var rows: [Any] = [], cursor: String?, last: [String: Any] = [:], pages = 0
                repeat {
                    var q = query
                    if DirectoryTests.isPaged(route) { q.append(("page_size", "7")) }
                    if let cursor { q.append(("cursor", cursor)) }
                    let resp = try HTTPTestClient(port: rig.server.port).request("GET", path + "?" + DirectoryTests.encode(q), token: Self.all)
                    try #require(resp.status == 200, "\(name) \(n): \(path)?\(DirectoryTests.encode(q)): \(resp.text)")
                    last = resp.object
                    rows += last["data"] as? [Any] ?? []
                    cursor = last["next_cursor"] as? String
                    pages += 1
                } while cursor != nil && pages < 400
                if DirectoryTests.isPaged(route) { last["data"] = rows }
                guard case .document(let doc) = reference.answer(path: path, query: Dictionary(query, uniquingKeysWith: { a, _ in a })) else {
                    Issue.record("\(name) \(n): the reference refused \(path)")
                    continue
                }
                let diff = DirectoryReference.describeDifference(last, doc)
                #expect(diff == nil, "\(name) \(n) after appends: \(path)?\(DirectoryTests.encode(query)): \(diff ?? "")")
            }
        }
    }

    /// Freshness: `/readyz` and `/metrics` show the newest acknowledged sequence and when it was
    /// acknowledged; a refused batch moves neither; after a restart the sequence recovered from the
    /// log is shown, with no time (it was not acknowledged by this process).
    @Test func readyzAndMetricsShowTheNewestAcknowledgedAppend() throws {
        let rig = try Self.rig("fresh")
        let http = try HTTPTestClient(port: rig.server.port)
        func ready() throws -> (Int?, String?) {
            let o = try http.request("GET", "/readyz").object
            return (o["acked_sequence"] as? Int, o["acked_at"] as? String)
        }
        func metric(_ name: String) throws -> Double? {
            try Self.metric(name, in: http.request("GET", "/metrics").text)
        }
        let none = try ready()
        #expect(none.0 == 0 && none.1 == nil, "\(none)")
        let (u, a) = (rig.users[0], rig.apps[0])
        let before = Date().timeIntervalSince1970.rounded(.down)
        try Self.postDays(rig, ["2025-05-01", "2025-05-02"])
        #expect(try Self.post(rig, "[" + Self.event(u, a, "1999-01-01") + "]").status == 400)
        let after = Date().timeIntervalSince1970.rounded(.up)
        let two = try ready()
        #expect(two.0 == 2, "\(two)")
        let at = try #require(two.1.flatMap { ISO8601DateFormatter().date(from: $0) }, "\(two)").timeIntervalSince1970
        #expect(at >= before && at <= after, "acked_at \(at) outside [\(before), \(after)]")
        #expect(try metric("tally_acked_sequence") == 2)
        let t = try #require(try metric("tally_acked_timestamp_seconds"))
        #expect(t >= before && t <= after)
        rig.shutdown()
        let again = try Self.rig("fresh", wal: rig.wal)
        defer { again.shutdown() }
        let recovered = try HTTPTestClient(port: again.server.port).request("GET", "/readyz").object
        #expect(recovered["acked_sequence"] as? Int == 2 && recovered["acked_at"] is NSNull, "\(recovered)")
    }

    /// A snapshot through the server holds the appended rows and drops their log records; the
    /// server restarted from it (with the log) serves the same rows, including later appends.
    @Test func snapshotTruncatesTheLogAndRestartReplaysTheRest() throws {
        let rig = try Self.rig("snapshot")
        let snapshot = rig.wal + ".tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        let (u, a) = (rig.users[0], rig.apps[0])
        try Self.postDays(rig, ["2025-05-01", "2025-05-02", "2025-05-03"])
        let save = try Self.saveSnapshot(rig.server.port, snapshot)
        #expect(save.status == 200, "\(save.text)")
        let walSize = (try FileManager.default.attributesOfItem(atPath: rig.wal)[.size] as? Int) ?? -1
        #expect(walSize == 24, "the log holds only its header after the snapshot")
        #expect(try Self.post(rig, "[" + Self.event(u, a, "2025-05-04") + "]").status == 200)
        let rows = rig.rows()
        rig.shutdown()
        // Restart: the snapshot, then the one record written after it.
        let again = try Self.rig("snapshot", wal: rig.wal, snapshot: snapshot)
        defer { again.shutdown() }
        #expect(again.rows() == rows && again.writer.store!.walSequence == 4)
        #expect(try Self.saveSnapshot(again.server.port, "/tmp/x", token: Self.scoped).status == 403)
    }

    /// An append of usage rows alone keeps what was derived from the client's directory (the
    /// user orders of the directory endpoints, the apps' name order): the next K page does not
    /// make them again (docs/APPENDS.md §12.9), and K answers as a store loaded from scratch
    /// with the same rows. A batch that changes a user's email makes them again, and the new
    /// email is served in its place.
    @Test func usageAppendsKeepWhatWasDerivedFromTheDirectory() throws {
        let rig = try Self.rig("derived")
        defer { rig.shutdown() }
        let tokens = TokenStore(entries: [TokenEntry(name: "all", digest: TokenStore.sha256(Self.all), clients: nil)])
        let lists = ["email", "display_name", "created_at", "last_active_date"].flatMap { sort in
            ["asc", "desc"].map { "/v2/clients/\(rig.client)/users?sort_by=\(sort)&sort_order=\($0)&page_size=200" }
        } + ["/v2/clients/\(rig.client)/analytics/apps/utilization?granularity=monthly&start_date=2025-01-01&end_date=2025-12-31&sort_by=canonical_name",
             // Derived from usage (per-user active days): made again after the append.
             "/v2/clients/\(rig.client)/analytics/apps/utilization/users?granularity=monthly&start_date=2025-01-03&end_date=2026-01-02&sort_by=active_days&page_size=200"]
        func answers(_ api: API) -> [String] {
            lists.map { String(decoding: api.handle(APIRequest(method: "GET", target: $0, authorization: "Bearer \(Self.all)")).body, as: UTF8.self) }
        }
        func fromScratch(_ bodies: [String]) throws -> API {
            var (store, _) = try DataSource(.dump(rig.folder)).load(nil)
            for (i, body) in bodies.enumerated() {
                let batch = try AppendBody.parse(client: rig.client, body: Array(body.utf8), store: store)
                store = AppendBody.apply([(UInt64(i + 1), batch)], onto: store)
            }
            return API(serving: store, tokens: tokens)
        }
        let served = API(writer: rig.writer, tokens: tokens)
        let first = answers(served)
        let before = try #require(rig.writer.store!.client(rig.client))
        let (directory, names) = (UserDirectory.of(before), AppNameOrder.of(before, rig.writer.store!.catalog))
        let days = UserDays.of(before, try #require(before.usage), .all)
        let (u, a) = (rig.users[0], rig.apps[0])
        let events = "[" + Self.event(u, a, "2025-06-03") + "," + Self.event(rig.users[1], a, "2026-01-02") + "]"
        #expect(try Self.post(rig, events).status == 200)
        let after = try #require(rig.writer.store!.client(rig.client))
        #expect(after !== before)
        #expect(UserDirectory.of(after) === directory, "a usage append made the user directory again")
        #expect(AppNameOrder.of(after, rig.writer.store!.catalog) === names, "a usage append made the apps' name order again")
        #expect(UserDays.of(after, try #require(after.usage), .all) !== days, "what was derived from usage was kept")
        let got = answers(served)
        #expect(got.allSatisfy { $0.hasPrefix("{\"") && !$0.contains("\"error\"") }, "\(got.first ?? "")")
        #expect(got == answers(try fromScratch([events])))
        #expect(got.contains { $0.contains("2026-01-02") }, "the appended day is in K's last activity")
        #expect(got.last != first.last, "the append changed no user's active days: the list derived from usage shows nothing")
        // A changed email: made again, and served.
        let rename = "{\"users\": [{\"id\": \"\(u)\", \"email\": \"aaa-renamed@example.com\", \"is_active\": true}]}"
        #expect(try Self.post(rig, rename).status == 200)
        let renamed = try #require(rig.writer.store!.client(rig.client))
        #expect(UserDirectory.of(renamed) !== directory)
        let again = answers(served)
        #expect(again == answers(try fromScratch([events, rename])))
        #expect(again[0].contains("aaa-renamed@example.com"))
    }

    /// A snapshot is written off the commit thread: while one is held before its write, appends
    /// are acknowledged and visible; the snapshot holds what was served when it was asked for,
    /// the log then keeps exactly the records appended during the write, and a restart from the
    /// two serves every row.
    @Test func appendsAreAcknowledgedWhileASnapshotIsWritten() throws {
        let rig = try Self.rig("snapshot-concurrent")
        let snapshot = rig.wal + ".tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        let (u, a) = (rig.users[0], rig.apps[0])
        try Self.postDays(rig, ["2025-05-01", "2025-05-02"])
        let atSnapshot = rig.rows()
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        rig.writer.snapshotHook.withLock { $0 = { started.signal(); release.wait() } }
        final class Saved: @unchecked Sendable { var response: HTTPTestResponse? }  // written before `finished` is signalled
        let saved = Saved()
        let port = rig.server.port
        Thread.detachNewThread {
            saved.response = try? Self.saveSnapshot(port, snapshot)
            finished.signal()
        }
        #expect(started.wait(timeout: .now() + 30) == .success)
        // The snapshot is held: three appends are acknowledged and served meanwhile (waited for
        // with a timeout: a commit thread that waited for the snapshot would fail this, not hang).
        let acked = DispatchSemaphore(value: 0)
        for d in ["2025-05-03", "2025-05-04", "2025-05-05"] {
            rig.writer.submit(client: rig.client, body: Array(("[" + Self.event(u, a, d) + "]").utf8)) { r in
                if case .success = r { acked.signal() }
            }
            #expect(acked.wait(timeout: .now() + 20) == .success, "an append waited for the snapshot")
        }
        #expect(rig.rows() == atSnapshot + 3)
        #expect(finished.wait(timeout: .now() + 0.2) == .timedOut, "the snapshot answered before it was written")
        release.signal()
        #expect(finished.wait(timeout: .now() + 30) == .success)
        #expect(saved.response?.status == 200, "\(saved.response?.text ?? "no answer")")
        let rows = rig.rows()
        rig.shutdown()
        // The log keeps the three records appended during the write (sequences 3–5), nothing before.
        let records = try WriteAheadLog(path: rig.wal).readRecords(after: 0)
        #expect(records.map(\.sequence) == [3, 4, 5])
        let fromSnapshot = try Snapshot.read(path: snapshot)
        #expect(fromSnapshot.walSequence == 2 && fromSnapshot.usageRowCount == atSnapshot)
        let again = try Self.rig("snapshot-concurrent", wal: rig.wal, snapshot: snapshot)
        defer { again.shutdown() }
        #expect(again.rows() == rows && again.writer.store!.walSequence == 5)
    }

    /// The dump holds none of the appended rows; once a snapshot has taken them and the log was
    /// cut, reloading the dump (or restarting on it) would lose them: refused, naming the
    /// snapshot, and the data served before stays.
    @Test func dataOlderThanTheLogsTruncationIsRefused() throws {
        let rig = try Self.rig("stale")
        let snapshot = rig.wal + ".tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        let (u, a) = (rig.users[0], rig.apps[0])
        try Self.postDays(rig, ["2025-05-01", "2025-05-02"])
        #expect(try Self.saveSnapshot(rig.server.port, snapshot).status == 200)
        let rows = rig.rows()
        let reload = try HTTPTestClient(port: rig.server.port).request("POST", "/v2/admin/reload", token: Self.all, headers: [("Content-Type", "application/json")], body: "{}")
        #expect(reload.status == 422, "\(reload.text)")
        #expect(reload.text.contains("truncated through sequence 2") && reload.text.contains(snapshot), "\(reload.text)")
        #expect(rig.rows() == rows && rig.writer.store!.walSequence == 2)
        // Appends go on after the refusal.
        #expect(try Self.post(rig, "[" + Self.event(u, a, "2025-05-03") + "]").status == 200)
        rig.shutdown()
        // A restart on the dump with that log: refused too; on the snapshot: every row.
        #expect(throws: WriteError.self) { _ = try Self.rig("stale", wal: rig.wal) }
        let again = try Self.rig("stale", wal: rig.wal, snapshot: snapshot)
        defer { again.shutdown() }
        #expect(again.rows() == rows + 1 && again.writer.store!.walSequence == 3)
    }

    /// A log write that fails (a full disk) refuses its batch with 503 and changes nothing; the
    /// log then takes no more batches (each refused the same way) until a restart, which
    /// recovers every acknowledged row and no refused one.
    @Test func aFailedLogWriteRefusesThatBatchAndEveryLaterOne() throws {
        let rig = try Self.rig("failed-write")
        let (u, a) = (rig.users[0], rig.apps[0])
        #expect(try Self.post(rig, "[" + Self.event(u, a, "2025-05-01") + "]").status == 200)
        let rows = rig.rows()
        rig.writer.log!.failWriteAfter = 20
        let refused = try Self.post(rig, "[" + Self.event(u, a, "2025-05-02") + "]")
        #expect(refused.status == 503 && refused.text.contains("\"code\":\"not_durable\""), "\(refused.text)")
        let later = try Self.post(rig, "[" + Self.event(u, a, "2025-05-03") + "]")
        #expect(later.status == 503 && later.text.contains("until the server restarts"), "\(later.text)")
        #expect(rig.rows() == rows && rig.writer.store!.walSequence == 1)
        rig.shutdown()
        let again = try Self.rig("failed-write", wal: rig.wal)
        defer { again.shutdown() }
        #expect(again.rows() == rows && again.writer.store!.walSequence == 1)
        #expect(try Self.post(again, "[" + Self.event(u, a, "2025-05-04") + "]").object["sequence"] as? Int == 2)
    }
}
