import Foundation
import Synchronization
import Testing
import TallyAPI
import TallyIngest
import TallyQuery
import TallyServer
import TallyStorage
import TallyTestSupport
import TallyWrite

/// Zero-downtime reloads (SPEC §6): `POST /v2/admin/reload` and SIGHUP load beside the served
/// data and swap at once; no request fails and answers change from old to new exactly once; a
/// failed load leaves the old data serving and says why.
@Suite(.serialized) struct ReloadTests {
    static let all = "reload-all", scoped = "reload-scoped"

    /// Two versions of one dump: the second drops the usage of a third of the users, so the counts move.
    static func dumps() throws -> (old: String, new: String, bad: String, dump: RandomDump) {
        let dump = RandomDump(seed: 31, clientCount: 2, maxRowsPerClient: 3000)
        let base = NSTemporaryDirectory() + "tally-reload-\(getpid())"
        var tables = dump.tables()
        try DumpWriter.write(tables, to: base + "-old", compressions: [.lz4])
        let u = tables.firstIndex { $0.name == "app_usage_reports" }!
        let dropped = Set(dump.users.enumerated().filter { $0.offset % 3 == 0 }.map { $0.element.id.description.lowercased() })
        tables[u].rows = tables[u].rows.filter { !dropped.contains(($0[3] ?? "").lowercased()) }
        try DumpWriter.write(tables, to: base + "-new", compressions: [.lz4])
        tables[u].rows[5][1] = "2024-13-01"
        try DumpWriter.write(tables, to: base + "-bad", compressions: [.none])
        for suffix in ["-old", "-new", "-bad"] { TemporaryPaths.removeAtExit(base + suffix) }
        return (base + "-old", base + "-new", base + "-bad", dump)
    }

    static func server(_ folder: String, _ dump: RandomDump) throws -> Server {
        let writer = StoreWriter(serving: try DumpLoader.load(folder: folder).0, source: DataSource(.dump(folder)))
        let tokens = TokenStore(entries: [
            TokenEntry(name: "all", digest: TokenStore.sha256(all), clients: nil),
            TokenEntry(name: "scoped", digest: TokenStore.sha256(scoped), clients: [dump.clients[0].id]),
        ])
        return try Server(api: API(writer: writer, tokens: tokens), host: "127.0.0.1", port: 0, threads: 2)
    }

    static func post(_ port: Int, _ body: String, token: String? = all) throws -> HTTPTestResponse {
        try HTTPTestClient(port: port).request("POST", "/v2/admin/reload", token: token,
                                                headers: [("Content-Type", "application/json")], body: body)
    }

    @Test func answersChangeExactlyOnceWithNoFailedRequest() throws {
        let (old, new, _, dump) = try Self.dumps()
        defer { for f in [old, new] { try? FileManager.default.removeItem(atPath: f) } }
        let server = try Self.server(old, dump)
        defer { server.shutdown() }
        let client = dump.clients[0].id
        let target = "/v2/clients/\(client)/analytics/apps/utilization/summary?granularity=monthly"
            + "&start_date=2024-01-01&end_date=2024-12-31&compare_start_date=2023-01-01&compare_end_date=2023-12-31"
        // The two answers, computed from each dump directly.
        func expected(_ folder: String) throws -> [UInt8] {
            let store = try DumpLoader.load(folder: folder).0
            let api = API(serving: store, tokens: .demo)
            return api.handle(APIRequest(method: "GET", target: target, authorization: "Bearer YOUR_API_TOKEN")).body
        }
        let before = try expected(old), after = try expected(new)
        try #require(before != after)

        // Four connections query in a loop while the reload runs; each records what it saw.
        let stop = Atomic(false)
        let seen = Mutex([[(Int, [UInt8])]](repeating: [], count: 4))
        let threads = (0..<4).map { k in
            Thread {
                guard let c = try? HTTPTestClient(port: server.port) else { return }
                var log: [(Int, [UInt8])] = []
                while !stop.load(ordering: .relaxed) {
                    if let r = try? c.request("GET", target, token: Self.all) { log.append((r.status, r.body)) } else { log.append((0, [])) }
                }
                seen.withLock { $0[k] = log }
            }
        }
        threads.forEach { $0.start() }
        Thread.sleep(forTimeInterval: 0.3)
        let r = try Self.post(server.port, "{\"dump\": \"\(new)\"}")
        #expect(r.status == 200, "\(r.text)")
        #expect(r.object["status"] as? String == "reloaded" && r.object["source"] as? String == new)
        Thread.sleep(forTimeInterval: 0.3)
        stop.store(true, ordering: .relaxed)
        while seen.withLock({ $0.contains { $0.isEmpty } }) { Thread.sleep(forTimeInterval: 0.01) }
        for (k, log) in seen.withLock({ $0 }).enumerated() {
            #expect(log.allSatisfy { $0.0 == 200 }, "connection \(k): \(log.filter { $0.0 != 200 }.count) failed requests")
            let bodies = log.map(\.1)
            #expect(bodies.allSatisfy { $0 == before || $0 == after }, "connection \(k): an answer from neither store")
            let changes = zip(bodies, bodies.dropFirst()).filter { $0 != $1 }.count
            #expect(changes == 1 && bodies.first == before && bodies.last == after,
                    "connection \(k): \(bodies.count) answers, \(changes) changes")
        }
    }

    @Test func aFailedReloadKeepsTheOldDataAndSaysWhy() throws {
        let (old, new, bad, dump) = try Self.dumps()
        defer { for f in [old, new, bad] { try? FileManager.default.removeItem(atPath: f) } }
        let server = try Self.server(old, dump)
        defer { server.shutdown() }
        let ready = try HTTPTestClient(port: server.port).request("GET", "/readyz")
        let r = try Self.post(server.port, "{\"dump\": \"\(bad)\"}")
        #expect(r.status == 422)
        let error = r.object["error"] as? [String: Any]
        #expect(error?["code"] as? String == "load_failed")
        let message = error?["message"] as? String ?? ""
        #expect(message.contains("app_usage_reports") && message.contains(":7:2") && message.contains("still served"), "\(message)")
        #expect(try HTTPTestClient(port: server.port).request("GET", "/readyz").body == ready.body, "the old data still served")
        let missing = try Self.post(server.port, "{\"dump\": \"/nonexistent/tally\"}")
        #expect(missing.status == 422)
        // A snapshot: written from the new dump, refused when damaged, served when whole.
        let snapshot = new + ".tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        try Snapshot.write(try DumpLoader.load(folder: new).0, to: snapshot)
        var bytes = Array(FileManager.default.contents(atPath: snapshot)!)
        bytes[bytes.count / 2] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: snapshot + ".bad"))
        defer { try? FileManager.default.removeItem(atPath: snapshot + ".bad") }
        let damaged = try Self.post(server.port, "{\"snapshot\": \"\(snapshot).bad\"}")
        #expect(damaged.status == 422 && ((damaged.object["error"] as? [String: Any])?["message"] as? String ?? "").contains("damaged"))
        #expect(try HTTPTestClient(port: server.port).request("GET", "/readyz").body == ready.body)
        let fromSnapshot = try Self.post(server.port, "{\"snapshot\": \"\(snapshot)\"}")
        #expect(fromSnapshot.status == 200)
        let newRows = try DumpLoader.load(folder: new).0.usageRowCount
        #expect(fromSnapshot.object["usage_rows"] as? Int == newRows)
        // Without a body: the source the server started with.
        #expect(try Self.post(server.port, "").status == 200)
    }

    @Test func authAndBadRequests() throws {
        let (old, new, _, dump) = try Self.dumps()
        defer { for f in [old, new] { try? FileManager.default.removeItem(atPath: f) } }
        let server = try Self.server(old, dump)
        defer { server.shutdown() }
        let p = server.port
        #expect(try Self.post(p, "", token: nil).status == 401)
        #expect(try Self.post(p, "", token: "nope").status == 401)
        #expect(try Self.post(p, "", token: Self.scoped).status == 403)
        let get = try HTTPTestClient(port: p).request("GET", "/v2/admin/reload", token: Self.all)
        #expect(get.status == 405 && get.header("Allow") == "POST")
        for body in ["[1]", "{\"dump\": 3}", "{\"dump\": \"\"}", "{\"other\": \"x\"}", "{\"dump\": \"a\", \"snapshot\": \"b\"}", "not json"] {
            let r = try Self.post(p, body)
            #expect(r.status == 400, "\(body): \(r.text)")
        }
        let served = try HTTPTestClient(port: p).request("GET", "/readyz").object["usage_rows"] as? Int
        let oldRows = try DumpLoader.load(folder: old).0.usageRowCount
        #expect(served == oldRows)
    }

    /// One reload at a time: a second one while the first loads is a 409.
    @Test func oneReloadAtATime() throws {
        let gate = DispatchSemaphore(value: 0), entered = DispatchSemaphore(value: 0)
        let empty = Store(catalog: Catalog(categories: [], vendors: [], applications: []), clients: [])
        let writer = StoreWriter(serving: empty, source: DataSource(.made("test") {
            entered.signal()
            gate.wait()
            return empty
        }))
        let first = Thread { _ = try? writer.reload(nil) }
        first.start()
        entered.wait()
        #expect(throws: WriteError.self) { _ = try writer.reload(nil) }
        do { _ = try writer.reload(nil) } catch { #expect(APIError(error).status == 409) }
        gate.signal()
        while !first.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        Thread.sleep(forTimeInterval: 0.05)
        gate.signal()
        #expect((try? writer.reload(nil))?.source == "test")
    }

    /// SIGHUP to `tally serve` reloads its dump folder.
    @Test func sighupReloadsTheDump() throws {
        let dump = RandomDump(seed: 32, clientCount: 2, maxRowsPerClient: 800)
        let folder = NSTemporaryDirectory() + "tally-sighup-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var tables = dump.tables()
        try DumpWriter.write(tables, to: folder)
        let process = Process()
        process.executableURL = SeedReplayTests.executable
        let port = 18_700 + Int(getpid() % 200)
        process.arguments = ["serve", "--port", String(port), "--no-binary", "--dump", folder]
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        func rows() -> Int? {
            (try? HTTPTestClient(port: port).request("GET", "/readyz"))?.object["usage_rows"] as? Int
        }
        var first: Int?
        for _ in 0..<600 where first == nil { first = rows(); if first == nil { Thread.sleep(forTimeInterval: 0.05) } }
        let before = try #require(first)
        let u = tables.firstIndex { $0.name == "app_usage_reports" }!
        tables[u].rows.removeLast(tables[u].rows.count / 2)
        try DumpWriter.write(tables, to: folder)
        kill(process.processIdentifier, SIGHUP)
        var now = before
        for _ in 0..<600 where now == before { Thread.sleep(forTimeInterval: 0.05); now = rows() ?? before }
        let reloaded = try DumpLoader.load(folder: folder).0.usageRowCount
        #expect(now < before && now == reloaded)
        #expect(process.isRunning)
    }
}
