import Foundation
import Testing
@testable import TallyAPI
import TallyClient
import TallyQuery
import TallyServer
@testable import TallyStorage
import TallyTestSupport
import TallyWire
@testable import TallyWrite

/// Cursors stay stable under appends (SPEC §3, docs/APPENDS.md §8): the pages of a list walked
/// while batches are appended between them are the pages of the version the first page was read
/// from — no row of that version repeated or skipped, no row moved across the cursor — over HTTP
/// and the binary protocol, for the dashboard lists, the directory and insight lists and the
/// admin reports over clients. A cursor whose version is no longer kept (a reload) continues on
/// the data served now, from its keyset, and is counted.
@Suite(.serialized) struct CursorStabilityTests {
    static let token = "cursor-all"

    struct Rig {
        let dump: RandomDump
        let writer: StoreWriter
        let server: Server
        let http: HTTPTestClient
        var client: UUID128 { dump.clients[0].id }
        func shutdown() {
            server.shutdown()
            writer.stop()
        }
    }

    static func rig(_ name: String, seed: UInt64) throws -> Rig {
        let dump = RandomDump(seed: seed, clientCount: 3, maxRowsPerClient: 1_500)
        let base = NSTemporaryDirectory() + "tally-cursor-\(name)-\(getpid())"
        try DumpWriter.write(dump.tables(), to: base + "-dump")
        try? FileManager.default.removeItem(atPath: base + ".wal")
        TemporaryPaths.removeAtExit(base + "-dump")
        TemporaryPaths.removeAtExit(base + ".wal")
        let observability = Observability.prometheus(logLevel: .critical)
        let writer = StoreWriter(log: try WriteAheadLog(path: base + ".wal"), source: DataSource(.dump(base + "-dump")),
                                 observer: observability)
        _ = try writer.reload(nil)
        let api = API(writer: writer, tokens: TokenStore(entries: [TokenEntry(name: "all", digest: TokenStore.sha256(token), clients: nil)]),
                      observability: observability)
        let server = try Server(api: api, host: "127.0.0.1", port: 0, binaryPort: 0, threads: 2)
        return Rig(dump: dump, writer: writer, server: server, http: try HTTPTestClient(port: server.port))
    }

    /// The lists walked: a path under the client (or the root) and its parameters, with a small page.
    static func lists(_ rig: Rig) -> [(name: String, path: String)] {
        let (s, e) = period(rig)
        let period = "granularity=monthly&start_date=\(s)&end_date=\(e)"
        let c = "/v2/clients/\(rig.client)/"
        return [
            ("A", c + "analytics/apps/utilization?\(period)&page_size=2"),
            ("A by name", c + "analytics/apps/utilization?\(period)&sort_by=canonical_name&sort_order=desc&page_size=3"),
            ("D by app count", c + "analytics/apps/utilization/users?\(period)&sort_by=app_count&page_size=2"),
            ("D by active days", c + "analytics/apps/utilization/users?\(period)&sort_by=active_days&sort_order=asc&page_size=3"),
            ("C", c + "analytics/apps/utilization/categories?\(period)&page_size=1"),
            ("K by last activity", c + "users?sort_by=last_active_date&page_size=2"),
            ("O", c + "analytics/users/champions?report_interval=90&page_size=2"),
            ("P", c + "analytics/users/churn?report_interval=30&page_size=2"),
            ("clients/growth", "/v2/analytics/clients/growth?report_interval=30&page_size=1"),
        ]
    }

    /// The client's days, at most the 366 a period may span, ending on its newest.
    static func period(_ rig: Rig) -> (Day, Day) {
        let days = rig.dump.usage.filter { $0.client == rig.client }.map(\.day)
        return (max(days.min()!, days.max()!.adding(-365)), days.max()!)
    }

    /// One page over HTTP: its rows (as JSON text, to compare) and its next cursor.
    static func page(_ rig: Rig, _ path: String, cursor: String?) throws -> (rows: [String], next: String?) {
        let target = path + (cursor.map { "&cursor=\($0)" } ?? "")
        let r = try rig.http.request("GET", target, token: token)
        try #require(r.status == 200, "\(target): \(r.status) \(r.text)")
        let rows = (r.object["data"] as? [Any] ?? []).map { row in
            String(decoding: try! JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self)
        }
        let next = r.object["next_cursor"] as? String
        return (rows, next)
    }

    /// Every row from `cursor` on (`nil`: from the first page).
    static func walk(_ rig: Rig, _ path: String, from cursor: String?) throws -> [String] {
        var rows: [String] = [], cursor = cursor
        var first = cursor == nil
        for _ in 0..<500 {
            if !first && cursor == nil { return rows }
            first = false
            let p = try page(rig, path, cursor: cursor)
            rows += p.rows
            cursor = p.next
        }
        Issue.record("\(path): more than 500 pages")
        return rows
    }

    /// A batch of `n` events of the client on days of its span and after its newest day: new
    /// (user, app, day) rows that move counts, orders, activity dates and the default `as_of`.
    static func batch(_ rig: Rig, _ r: inout SeededRandom, _ n: Int) -> String {
        let users = rig.dump.users.filter { $0.client == rig.client }.map(\.id)
        let apps = rig.dump.apps.filter { $0.client == rig.client }.map(\.id)
        let days = rig.dump.usage.filter { $0.client == rig.client }.map(\.day)
        let (lo, hi) = (days.min()!, days.max()!)
        let span = lo.distance(to: hi)
        let events = (0..<n).map { _ in
            let d = r.chance(0.2) ? hi.adding(1 + int(&r, 3)) : lo.adding(int(&r, span + 1))
            return "{\"user_id\":\"\(users[int(&r, users.count)])\",\"application_id\":\"\(apps[int(&r, apps.count)])\",\"activity_date\":\"\(d)\"}"
        }
        return "{\"events\":[" + events.joined(separator: ",") + "]}"
    }

    static func int(_ r: inout SeededRandom, _ n: Int) -> Int { Int(r.next() % UInt64(n)) }

    static func append(_ rig: Rig, _ body: String) throws {
        let r = try rig.http.request("POST", "/v2/clients/\(rig.client)/usage-events", token: token,
                                     headers: [("Content-Type", "application/json")], body: body)
        try #require(r.status == 200, "\(r.status) \(r.text)")
    }

    /// The same position without a version: a first-format cursor (the live keyset).
    static func unpinned(_ cursor: String) throws -> String {
        let (key, fp, version) = try #require(Cursor.decode(cursor))
        #expect(version != nil, "a list page's cursor carries its version")
        return Cursor.encode(key, fingerprint: fp)
    }

    /// For each list and three seeds: the first page, then appends before every later page; the
    /// pages concatenate to the walk of the first page's version. Without the version (the live
    /// keyset) at least one list's walk comes out different — the appends did move rows.
    @Test(arguments: [7, 8, 9] as [UInt64]) func pagesAfterAppendsContinueTheFirstPagesVersion(seed: UInt64) throws {
        let rig = try Self.rig("walk-\(seed)", seed: seed)
        defer { rig.shutdown() }
        var r = SeededRandom(seed: seed &* 31)
        var liveDiffers = 0, walked = 0
        for (name, path) in Self.lists(rig) {
            let first = try Self.page(rig, path, cursor: nil)
            guard let cursor = first.next else { continue }
            walked += 1
            // The whole list of this version, walked before anything is appended.
            let expected = first.rows + (try Self.walk(rig, path, from: cursor))
            // Now the same walk with a batch appended before every page.
            var rows = first.rows, next: String? = cursor
            var pages = 0
            while let c = next, pages < 500 {
                try Self.append(rig, Self.batch(rig, &r, 1 + Self.int(&r, 40)))
                let p = try Self.page(rig, path, cursor: c)
                rows += p.rows
                next = p.next
                pages += 1
            }
            #expect(rows == expected, "\(name): pages after appends are not those of the first page's version")
            #expect(Set(rows).count == rows.count, "\(name): a row repeated")
            // The live keyset from the first page, on the data served now.
            let live = first.rows + (try Self.walk(rig, path, from: try Self.unpinned(cursor)))
            if live != expected { liveDiffers += 1 }
        }
        #expect(walked >= 7, "only \(walked) lists had a second page")
        #expect(liveDiffers > 0, "the appends changed no list: the test shows nothing")
    }

    /// The binary protocol's QUERY reads the same pinned version as HTTP.
    @Test func binaryPagesContinueTheFirstPagesVersion() async throws {
        let rig = try Self.rig("binary", seed: 11)
        defer { rig.shutdown() }
        let tally = try await TallyClient.connect(host: "127.0.0.1", port: rig.server.binaryPort!, token: Self.token)
        let (start, end) = Self.period(rig)
        let params = [("granularity", "monthly"), ("start_date", "\(start)"), ("end_date", "\(end)"), ("sort_by", "app_count"), ("page_size", "2")]
        let client = UUID(uuidString: rig.client.description)!
        func page(_ cursor: String?) async throws -> (rows: [String], next: String?) {
            let result = try await tally.query(.users, client: client, parameters: params + (cursor.map { [("cursor", $0)] } ?? []))
            let o = try JSONSerialization.jsonObject(with: Data(try result.json())) as? [String: Any] ?? [:]
            let rows = (o["data"] as? [Any] ?? []).map { String(decoding: try! JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            return (rows, o["next_cursor"] as? String)
        }
        let first = try await page(nil)
        var expected = first.rows, next = first.next
        while let c = next { let p = try await page(c); expected += p.rows; next = p.next }
        var r = SeededRandom(seed: 11)
        var rows = first.rows
        next = first.next
        while let c = next {
            try Self.append(rig, Self.batch(rig, &r, 40))
            let p = try await page(c)
            rows += p.rows
            next = p.next
        }
        #expect(first.next != nil && rows == expected)
        try await tally.close()
    }

    /// A list under a client pins that client's version alone: first pages of a client nothing
    /// is appended to, while appends replace another client again and again, keep one pin that
    /// holds nothing the served data does not (a pin of the whole store would hold every
    /// replaced version of the other client, up to the budget).
    @Test func pinsOfOneClientHoldNothingOfTheOthers() throws {
        let rig = try Self.rig("scope", seed: 13)
        defer { rig.shutdown() }
        let path = Self.lists(rig)[0].path
        let other = rig.dump.clients.first { c in c.id != rig.client && rig.dump.usage.contains { $0.client == c.id } }!
        let users = rig.dump.users.filter { $0.client == other.id }.map(\.id)
        let apps = rig.dump.apps.filter { $0.client == other.id }.map(\.id)
        let firstCursor = try #require(try Self.page(rig, path, cursor: nil).next)
        for k in 0..<6 {
            let body = "[{\"user_id\":\"\(users[k % users.count])\",\"application_id\":\"\(apps[k % apps.count])\",\"activity_date\":\"2026-0\(1 + k % 9)-15\"}]"
            let r = try rig.http.request("POST", "/v2/clients/\(other.id)/usage-events", token: Self.token,
                                         headers: [("Content-Type", "application/json")], body: body)
            try #require(r.status == 200, "\(r.text)")
            #expect(try Self.page(rig, path, cursor: nil).next == firstCursor, "the client's version moved with another's append")
        }
        #expect(rig.writer.pins.figures.pins == 1)
        #expect(rig.writer.pins.figures.heldBytes == 0)
    }

    /// A reload drops the pins: the next page of a cursor handed out before it is read from the
    /// reloaded data from the cursor's keyset (as a first-format cursor is), answered 200 and
    /// counted in `tally_cursor_fallbacks_total`; `/metrics` shows the pins kept.
    @Test func aCursorOfAReplacedVersionContinuesOnTheServedData() throws {
        let rig = try Self.rig("reload", seed: 12)
        defer { rig.shutdown() }
        func metric(_ name: String) throws -> Double? {
            try AppendTests.metric(name, in: rig.http.request("GET", "/metrics").text)
        }
        let path = Self.lists(rig)[2].path
        let first = try Self.page(rig, path, cursor: nil)
        let cursor = try #require(first.next)
        var r = SeededRandom(seed: 12)
        try Self.append(rig, Self.batch(rig, &r, 40))
        #expect(try metric("tally_cursor_pins") == 1)
        #expect(try metric("tally_cursor_pinned_bytes").map { $0 > 0 } == true, "the pin holds the client's version before the append")
        #expect(try metric("tally_cursor_fallbacks_total") == 0)
        _ = try rig.writer.reload(nil)
        #expect(try metric("tally_cursor_pins") == 0)
        let after = try Self.page(rig, path, cursor: cursor)
        let live = try Self.page(rig, path, cursor: try Self.unpinned(cursor))
        #expect(after.rows == live.rows)
        #expect(try metric("tally_cursor_fallbacks_total") == 1)
    }
}

/// The pins' bounds (``CursorPins``): per client, in all, by the bytes of the client versions
/// only they hold, and none past a reload.
@Suite struct CursorPinsTests {
    @Test func pinsAreBoundedPerClientInAllAndByBytes() throws {
        let dump = RandomDump(seed: 21, clientCount: 2, maxRowsPerClient: 400)
        let base = NSTemporaryDirectory() + "tally-pins-\(getpid())"
        try DumpWriter.write(dump.tables(), to: base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let (store, _) = try DataSource(.dump(base)).load(nil)
        let a = dump.clients[0].id, b = dump.clients[1].id
        let pins = CursorPins(budgetBytes: 1 << 40)
        for v in 1...6 as ClosedRange<UInt64> { pins.pin(store, version: v, client: a) }
        // The four most recently pinned of client a are kept.
        #expect((1...6 as ClosedRange<UInt64>).map { pins.store(version: $0, client: a) != nil } == [false, false, true, true, true, true])
        #expect(pins.store(version: 6, client: b) == nil, "a pin is of one client")
        for v in 1...4 as ClosedRange<UInt64> { pins.pin(store, version: v, client: b) }
        #expect(pins.figures.pins == 8)
        // Nothing is held while every pinned version is the one served.
        pins.published(store, replacesData: false)
        #expect(pins.figures == (8, 0))
        // A new version of client a: the old one is held by the pins only.
        let (again, _) = try DataSource(.dump(base)).load(nil)
        let newer = Store(catalog: store.catalog, clients: [again.client(a)!, store.client(b)!])
        let replaced = store.client(a)!
        try #require(newer.client(a)! !== replaced)
        pins.published(newer, replacesData: false)
        #expect(pins.figures.heldBytes == replaced.byteCount)
        // A budget under that drops the pins of the old version, least recently used first.
        let tight = CursorPins(budgetBytes: replaced.byteCount - 1)
        tight.pin(store, version: 1, client: a)
        tight.pin(newer, version: 2, client: a)
        tight.published(newer, replacesData: false)
        #expect(tight.store(version: 1, client: a) == nil && tight.store(version: 2, client: a) != nil && tight.figures.heldBytes == 0)
        // No budget (`TALLY_CURSOR_PIN_MIB=0`): a pin lasts while its version is served.
        let none = CursorPins(budgetBytes: 0)
        none.pin(store, version: 1, client: a)
        none.published(store, replacesData: false)
        #expect(none.store(version: 1, client: a) != nil)
        none.published(newer, replacesData: false)
        #expect(none.store(version: 1, client: a) == nil && none.figures == (0, 0))
        // A reload drops them all; a page that read the replaced data and ends after the reload
        // does not pin it again.
        pins.published(newer, replacesData: true)
        #expect(pins.figures == (0, 0))
        pins.pin(store, version: 6, client: a, served: false)
        #expect(pins.figures.pins == 0 && pins.store(version: 6, client: a) == nil)
        pins.pin(newer, version: 7, client: a)
        pins.pin(newer, version: 7, client: a, served: false)  // a next page of a pinned version: kept
        #expect(pins.store(version: 7, client: a) != nil && pins.figures.pins == 1)
    }
}
