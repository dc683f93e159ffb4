import Foundation
import Testing
@testable import TallyAPI
import TallyIngest
import TallyQuery
import TallyServer
@testable import TallyStorage
import TallyClient
import TallyTestSupport
import TallyWire
@testable import TallyWrite

/// Directory rows in appends (issue 14, feature 2): new and changed users, apps, catalog
/// applications, departments and memberships arrive with the events, are validated and
/// applied atomically, survive a restart (write-ahead log v2), and leave every answer as if the
/// dump had held them from the start.
@Suite(.serialized) struct DirectoryAppendTests {
    static let all = AppendTests.all, scoped = AppendTests.scoped

    /// JSON text of a value (strings quoted, nil — at any depth of optionals — as null).
    static func json(_ v: Any?) -> String {
        guard let v else { return "null" }
        let m = Mirror(reflecting: v)
        if m.displayStyle == .optional { return m.children.first.map { json($0.value) } ?? "null" }
        switch v {
        case let s as String: return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case let b as Bool: return b ? "true" : "false"
        case let u as UUID128: return "\"\(u)\""
        default: return "\(v)"
        }
    }

    static func object(_ fields: [(String, Any?)]) -> String {
        "{" + fields.map { "\"\($0.0)\":\(json($0.1))" }.joined(separator: ",") + "}"
    }

    /// The client's own directory rows of users `users` — the users, their memberships and
    /// departments — and of apps `apps`, as the dump holds them: a batch sending them again.
    static func sentAgain(_ dump: RandomDump, client: UUID128, users: Set<UUID128>, apps: Set<UUID128>) -> [(String, [String])] {
        let us = dump.users.filter { $0.client == client && users.contains($0.id) }
        let ms = dump.memberships.filter { users.contains($0.user) }
        let ds = dump.departments.filter { d in d.client == client && ms.contains { $0.department == d.id } }
        let ap = dump.apps.filter { $0.client == client && apps.contains($0.id) }
        return [("users", us.map { object([("id", $0.id), ("email", $0.email), ("display_name", $0.displayName), ("is_active", $0.isActive),
                                           ("role", $0.role), ("created_at", $0.createdAt)]) }),
                ("departments", ds.map { object([("id", $0.id), ("name", $0.name), ("description", $0.description)]) }),
                ("user_departments", ms.map { object([("user_id", $0.user), ("department_id", $0.department)]) }),
                ("apps", ap.map(appRow))]
    }

    /// A batch body from its tables (JSON rows).
    /// An `apps` row holding app `a` as the dump has it.
    static func appRow(_ a: RandomDump.App) -> String {
        object([("id", a.id), ("catalog_application_id", a.catalog), ("is_approved", a.approved), ("is_favorite", a.favorite)])
    }

    static func body(_ tables: [(String, [String])]) -> String {
        "{" + tables.filter { !$0.1.isEmpty }.map { "\"\($0.0)\":[" + $0.1.joined(separator: ",") + "]" }.joined(separator: ",") + "}"
    }

    /// Random batches of directory rows and events, each mirrored into `dump` as the dump would
    /// hold it; after every batch, and after a restart on the log, every dashboard route (random
    /// parameters) answers byte for byte as a store loaded from scratch from the mirrored dump,
    /// and every directory, insight and admin report also equals the brute-force reference.
    @Test func directoryRowsAnswerAsIfTheDumpHeldThem() throws {
        let rig = try AppendTests.rig("dir-upsert", seed: 71)
        var dump = rig.dump
        var r = SeededRandom(seed: 71)
        let client = rig.client, other = dump.clients.first { $0.id != client }!.id
        for batch in 0..<5 {
            var tables: [(String, [String])] = []
            // Catalog: a new application (sometimes without category); in batch 2, an existing
            // one moved to another category (its apps change class in every client).
            var catalogRows: [String] = []
            let newCatalog = RandomDump.CatalogApp(id: r.uuid(), name: "Appended Tool \(batch)", logo: r.chance(0.5) ? "https://logo/\(batch)" : nil,
                                                   type: "saas", category: r.chance(0.7) ? dump.categories.randomElement(using: &r)!.id : nil,
                                                   vendor: r.chance(0.5) ? dump.vendors.randomElement(using: &r)!.id : nil)
            dump.catalog.append(newCatalog)
            var changed: [RandomDump.CatalogApp] = [newCatalog]
            if batch == 2, let i = dump.catalog.indices.first(where: { i in dump.apps.contains { $0.catalog == dump.catalog[i].id && $0.client == other } }) {
                dump.catalog[i].category = dump.categories.first { $0.id != dump.catalog[i].category }?.id
                dump.catalog[i].name += " (renamed)"
                changed.append(dump.catalog[i])
            }
            for c in changed {
                catalogRows.append(Self.object([("id", c.id), ("canonical_name", c.name), ("logo", c.logo), ("type", c.type),
                                                ("category_id", c.category), ("vendor_id", c.vendor)]))
            }
            tables.append(("catalog_applications", catalogRows))
            // Departments: a new one, and an existing one renamed.
            let newDepartment = RandomDump.Department(id: r.uuid(), client: client, name: "Appended Dept \(batch)", description: r.chance(0.5) ? "new" : nil)
            dump.departments.append(newDepartment)
            var departmentRows = [Self.object([("id", newDepartment.id), ("name", newDepartment.name), ("description", newDepartment.description)])]
            if let i = dump.departments.indices.filter({ dump.departments[$0].client == client }).randomElement(using: &r), dump.departments[i].id != newDepartment.id {
                dump.departments[i].name = "Renamed \(batch) " + dump.departments[i].name
                let d = dump.departments[i]
                departmentRows.append(Self.object([("id", d.id), ("client_id", client), ("name", d.name), ("description", d.description)]))
            }
            tables.append(("departments", departmentRows))
            // Users: two new ones, and an existing one changed.
            var userRows: [String] = []
            var newUsers: [UUID128] = []
            for k in 0..<2 {
                let u = RandomDump.User(id: r.uuid(), client: client, email: "appended\(batch)-\(k)@example.com",
                                        displayName: r.chance(0.7) ? "Appended \(batch) \(k)" : nil, isActive: r.chance(0.8),
                                        role: r.chance(0.5) ? "member" : nil, createdAt: r.chance(0.5) ? "2025-0\(k + 1)-1\(batch) 08:30:00+02" : nil)
                dump.users.append(u)
                newUsers.append(u.id)
                userRows.append(Self.object([("id", u.id), ("email", u.email), ("display_name", u.displayName), ("is_active", u.isActive),
                                             ("role", u.role), ("created_at", u.createdAt)]))
            }
            if let i = dump.users.indices.filter({ dump.users[$0].client == client && !newUsers.contains(dump.users[$0].id) }).randomElement(using: &r) {
                dump.users[i].email = "changed\(batch)." + dump.users[i].email
                dump.users[i].displayName = "Changed \(batch)"
                dump.users[i].isActive.toggle()
                let u = dump.users[i]
                userRows.append(Self.object([("id", u.id), ("client_id", client), ("email", u.email), ("display_name", u.displayName),
                                             ("is_active", u.isActive), ("role", u.role), ("created_at", u.createdAt)]))
            }
            tables.append(("users", userRows))
            // Apps: one of the new catalog application, one of an existing one, and an existing
            // app with its approval flipped.
            var appRows: [String] = []
            var newApps: [UUID128] = []
            for catalog in [newCatalog.id, dump.catalog.randomElement(using: &r)!.id] {
                let a = RandomDump.App(id: r.uuid(), client: client, catalog: catalog, approved: r.chance(0.5), favorite: r.chance(0.3))
                dump.apps.append(a)
                newApps.append(a.id)
                appRows.append(Self.appRow(a))
            }
            if let i = dump.apps.indices.filter({ dump.apps[$0].client == client && !newApps.contains(dump.apps[$0].id) }).randomElement(using: &r) {
                dump.apps[i].approved.toggle()
                let a = dump.apps[i]
                appRows.append(Self.appRow(a))
            }
            tables.append(("apps", appRows))
            // Memberships: the new users into the new department (one also into an old one), and
            // an existing user into the new department.
            var memberRows: [String] = []
            let oldDepartment = dump.departments.filter { $0.client == client && $0.id != newDepartment.id }.randomElement(using: &r)!.id
            let existingUser = rig.users.randomElement(using: &r)!
            for (u, d) in [(newUsers[0], newDepartment.id), (newUsers[0], oldDepartment), (newUsers[1], newDepartment.id), (existingUser, newDepartment.id)] {
                if !dump.memberships.contains(where: { $0.user == u && $0.department == d }) { dump.memberships.append((u, d)) }
                memberRows.append(Self.object([("user_id", u), ("department_id", d)]))
            }
            tables.append(("user_departments", memberRows))
            // Events over old and new users and apps, days inside the dump's span and after it.
            let users = dump.users.filter { $0.client == client }.map(\.id), apps = dump.apps.filter { $0.client == client }.map(\.id)
            var events: [String] = []
            for _ in 0..<30 {
                let u = r.chance(0.4) ? newUsers.randomElement(using: &r)! : users.randomElement(using: &r)!
                let a = r.chance(0.4) ? newApps.randomElement(using: &r)! : apps.randomElement(using: &r)!
                let day = RandomDump.firstDay.adding(Int.random(in: 0...(RandomDump.firstDay.distance(to: RandomDump.lastDay) + 30), using: &r))
                dump.usage.append(RandomDump.Usage(client: client, user: u, app: a, day: day))
                events.append(AppendTests.event(u, a, day.description))
            }
            tables.append(("events", events))
            let response = try AppendTests.post(rig, Self.body(tables))
            try #require(response.status == 200, "batch \(batch): \(response.text)")
            let rows = tables.filter { $0.0 != "events" }.reduce(0) { $0 + $1.1.count }
            #expect(response.object["accepted"] as? Int == 30 && response.object["directory_rows"] as? Int == rows, "\(response.text)")
            try Self.compare(rig.writer, dump, &r, "after batch \(batch)")
        }
        // A restart replays the log (directory rows included) onto the dump as it was loaded.
        rig.shutdown()
        let again = try AppendTests.rig("dir-upsert", seed: 71, wal: rig.wal)
        defer { again.shutdown() }
        try Self.compare(again.writer, dump, &r, "after a restart")
    }

    /// Every dashboard route with random parameters, and every directory and admin report, on
    /// both clients: the writer's store answers as a store loaded from `dump` from scratch, and
    /// the reports also as the brute-force reference over `dump`.
    static func compare(_ writer: StoreWriter, _ dump: RandomDump, _ r: inout SeededRandom, _ when: String) throws {
        // A folder of its own per call: suites that compare run at the same time.
        let folder = NSTemporaryDirectory() + "tally-dir-append-scratch-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try DumpWriter.write(dump.tables(), to: folder)
        let scratch = try DumpLoader.load(folder: folder).0
        let served = API(writer: writer, tokens: .demo), fresh = API(serving: scratch, tokens: .demo)
        let token = TokenStore.demo.entries[0]
        #expect(writer.store!.usageRowCount == scratch.usageRowCount, "\(when): rows")
        func answer(_ api: API, _ route: Route, _ client: UUID128?, _ path: String?, _ q: [(String, String)]) -> String {
            do throws(APIError) {
                return String(decoding: try api.answer(route, client: client, pathValue: path, token: token, query: q), as: UTF8.self)
            } catch {
                return "error \(error.status): \(error.message)"
            }
        }
        for route in Registry.dashboardRoutes {
            for client in dump.clients.map(\.id) {
                for _ in 0..<3 {
                    let q = randomDashboardQuery(route, client, dump, &r)
                    let a = answer(served, route, client, nil, q), b = answer(fresh, route, client, nil, q)
                    #expect(a == b, "\(when): \(route.name) \(q): served \(a.prefix(400)) — from scratch \(b.prefix(400))")
                }
            }
        }
        let reference = DirectoryReference(dump)
        for name in DirectoryTests.routes {
            let route = DirectoryTests.route(name)
            for _ in 0..<4 {
                let (path, query) = DirectoryTests.randomRequest(route, dump, &r)
                guard let m = Registry.match(path) else {
                    Issue.record("\(when): no route for \(path)")
                    continue
                }
                let client = m.client.flatMap { UUID128(QueryString.decode($0)) }
                let pathValue = m.pathValue.map { QueryString.decode($0) }
                var q = query
                if DirectoryTests.isPaged(route) { q.append(("page_size", "200")) }
                let a = answer(served, route, client, pathValue, q), b = answer(fresh, route, client, pathValue, q)
                #expect(a == b, "\(when): \(path)?\(DirectoryTests.encode(q)): served \(a.prefix(400)) — from scratch \(b.prefix(400))")
                guard !a.hasPrefix("error"), let doc = try? JSONSerialization.jsonObject(with: Data(a.utf8)) as? [String: Any],
                      doc["next_cursor"] as? String == nil,
                      case .document(let expected) = reference.answer(path: path, query: Dictionary(query, uniquingKeysWith: { x, _ in x }))
                else { continue }
                let diff = DirectoryReference.describeDifference(doc, expected)
                #expect(diff == nil, "\(when): \(path)?\(DirectoryTests.encode(query)) against the reference: \(diff ?? "")")
            }
        }
    }

    /// Random values for a dashboard route's parameters (period, comparison, granularity,
    /// filters of the client's own ids, sort).
    /// Every dashboard route that takes each of `filters`' parameters, under each filter, over
    /// the `days` ending on the client's newest day, sorted every way the route sorts, served by
    /// `writer` against a store loaded from scratch from `dump`.
    static func compareFiltered(_ writer: StoreWriter, _ dump: RandomDump, client: UUID128, filters: [[(String, String)]],
                                days: [Int], _ when: String) throws {
        let folder = NSTemporaryDirectory() + "tally-filtered-scratch-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try DumpWriter.write(dump.tables(), to: folder)
        let scratch = try DumpLoader.load(folder: folder).0
        let api = API(writer: writer, tokens: .demo), fresh = API(serving: scratch, tokens: .demo)
        let token = TokenStore.demo.entries[0]
        let end = try #require(writer.store!.client(client)?.usage).newestDay
        for route in Registry.dashboardRoutes {
            for filter in filters where filter.allSatisfy({ f in route.parameters.contains { $0.name == f.0 } }) {
                for length in days {
                    for sort in route.sortBy.isEmpty ? [nil] : route.sortBy.map(Optional.some) {
                        var q = [("start_date", end.adding(1 - length).description), ("end_date", end.description)] + filter
                        if route.parameters.contains(where: { $0.name == "granularity" }) { q.append(("granularity", length <= 60 ? "daily" : "monthly")) }
                        if let sort { q += [("sort_by", sort), ("page_size", "200")] }
                        func answer(_ a: API) -> String {
                            do throws(APIError) {
                                return String(decoding: try a.answer(route, client: client, pathValue: nil, token: token, query: q), as: UTF8.self)
                            } catch { return "error \(error.status): \(error.message)" }
                        }
                        let a = answer(api), b = answer(fresh)
                        #expect(a == b, "\(when): \(route.name) \(q): served \(a.prefix(300)) — from scratch \(b.prefix(300))")
                    }
                }
            }
        }
    }

    static func randomDashboardQuery(_ route: Route, _ client: UUID128, _ d: RandomDump, _ r: inout SeededRandom) -> [(String, String)] {
        var q: [(String, String)] = []
        let names = Set(route.parameters.map(\.name))
        let granularity = ["daily", "weekly", "monthly", "quarterly"].randomElement(using: &r)!
        let maxLength = granularity == "daily" ? 60 : 366
        func range() -> (Day, Day) {
            let s = RandomDump.firstDay.adding(Int.random(in: -10...(RandomDump.firstDay.distance(to: RandomDump.lastDay) + 20), using: &r))
            return (s, s.adding(Int.random(in: 0..<maxLength, using: &r)))
        }
        let (s, e) = range()
        q += [("start_date", s.description), ("end_date", e.description)]
        if names.contains("compare_start_date"), r.chance(0.4) {
            let (cs, ce) = range()
            q += [("compare_start_date", cs.description), ("compare_end_date", ce.description)]
        }
        if names.contains("granularity"), route.parameters.first(where: { $0.name == "granularity" })!.rule.hasPrefix("required") || r.chance(0.3) {
            q.append(("granularity", granularity))
        }
        func ids(_ xs: [UUID128]) -> String { xs.shuffled(using: &r).prefix(Int.random(in: 1...2, using: &r)).map(\.description).joined(separator: ",") }
        if names.contains("department_ids"), r.chance(0.4) { q.append(("department_ids", ids(d.departments.filter { $0.client == client }.map(\.id)))) }
        if names.contains("category_ids"), r.chance(0.3) { q.append(("category_ids", ids(d.categories.map(\.id)))) }
        if names.contains("vendor_ids"), r.chance(0.2) { q.append(("vendor_ids", ids(d.vendors.map(\.id)))) }
        if names.contains("app_ids"), r.chance(0.3) { q.append(("app_ids", ids(d.apps.filter { $0.client == client }.map(\.id)))) }
        if names.contains("is_approved"), r.chance(0.3) { q.append(("is_approved", r.chance(0.5) ? "true" : "false")) }
        if !route.sortBy.isEmpty {
            q.append(("sort_by", route.sortBy.randomElement(using: &r)!))
            q.append(("sort_order", r.chance(0.5) ? "asc" : "desc"))
            q.append(("page_size", "200"))
        }
        return q
    }

    /// The binary protocol's APPEND takes the same tables: a new user with an event is served
    /// after the answer (the same JSON as HTTP's), and a bad directory row is refused with its
    /// table named in the message.
    @Test func binaryAppendTakesDirectoryRows() async throws {
        let rig = try AppendTests.rig("dir-binary", seed: 79)
        defer { rig.shutdown() }
        let tally = try await TallyClient.connect(host: "127.0.0.1", port: rig.server.binaryPort!, token: Self.all)
        let user = UUID128("c0ffee00-0000-4000-8000-000000000001")!
        let body = Self.body([("users", [Self.object([("id", user), ("email", "binary@example.com"), ("is_active", true)])]),
                              ("events", [AppendTests.event(user, rig.apps[0], "2025-02-03")])])
        let ok = try await tally.raw(type: MessageType.append.rawValue, payload: BinaryProtocolTests.bytes(rig.client) + Array(body.utf8))
        #expect(ok.messageType == MessageType.result)
        // RESULT's payload ends with the JSON answer (format 0).
        let bytes = Array(ok.payload.readableBytesView)
        let start = try #require(bytes.firstIndex(of: UInt8(ascii: "{")))
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(bytes[start...])) as? [String: Any])
        let rows = answer["directory_rows"] as? Int, accepted = answer["accepted"] as? Int
        #expect(rows == 1 && accepted == 1, "\(answer)")
        let c = try #require(rig.writer.store!.client(rig.client))
        let u = try #require(c.userIndex[user])
        #expect(c.users[Int(u)].email == "binary@example.com" && c.usage?.pairs.pairCount(user: Int(u)) == 1)
        let bad = Self.body([("users", [Self.object([("id", user), ("email", "x@y"), ("is_active", "no")])])])
        do {
            _ = try await tally.raw(type: MessageType.append.rawValue, payload: BinaryProtocolTests.bytes(rig.client) + Array(bad.utf8))
            Issue.record("a bad batch was accepted")
        } catch let TallyClientError.server(e, fatal) {
            #expect(e.status == 400 && !fatal && e.message.contains("users 0 (is_active)"), "\(e.message)")
        }
        try await tally.close()
    }

    /// A batch checked against data that a reload then replaces is checked again on the commit
    /// thread: if the new data lacks a user it names, the batch is refused (409 `data_changed`)
    /// and nothing of it is logged or applied, instead of its rows being dropped.
    @Test func aBatchNamingWhatAReloadRemovedIsRefused() throws {
        let rig = try AppendTests.rig("dir-conflict", seed: 83)
        defer { rig.shutdown() }
        var dump = rig.dump
        let gone = rig.users[0], app = rig.apps[0]
        let batch = try AppendBody.parse(client: rig.client, body: Array(("[" + AppendTests.event(gone, app, "2025-01-05") + "]").utf8),
                                         store: rig.writer.store)
        // The same dump without that user (nor its memberships and usage), reloaded.
        dump.users.removeAll { $0.id == gone }
        dump.memberships.removeAll { $0.user == gone }
        dump.usage.removeAll { $0.user == gone }
        let folder = NSTemporaryDirectory() + "tally-dir-conflict-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try DumpWriter.write(dump.tables(), to: folder)
        _ = try rig.writer.reload(.dump(folder))
        let rows = rig.rows(), sequence = rig.writer.log!.lastSequence
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<StoreWriter.AppendOutcome, WriteError>?
        rig.writer.enqueue(.append(batch, { r in
            outcome = r
            done.signal()
        }))
        done.wait()
        guard case .failure(let e)? = outcome else {
            Issue.record("a batch naming a removed user was accepted: \(String(describing: outcome))")
            return
        }
        #expect(e.kind == .conflict && e.message.contains("user \(gone)") && APIError(e).status == 409, "\(e)")
        #expect(rig.rows() == rows && rig.writer.log!.lastSequence == sequence, "the refused batch changed the data or the log")
        // A batch of a user the data holds goes on as before.
        #expect(try AppendTests.post(rig, "[" + AppendTests.event(rig.users[1], app, "2025-01-05") + "]").status == 200)
    }

    /// Bad directory rows: each refused with its table, index and field, the whole batch with
    /// them (events included), and nothing changes — rows, directory and the log's sequence.
    @Test func badDirectoryRowsAreRefusedAndChangeNothing() throws {
        let rig = try AppendTests.rig("dir-refused", seed: 73)
        defer { rig.shutdown() }
        let dump = rig.dump, client = rig.client
        let other = dump.clients.first { $0.id != client }!.id
        let otherUser = dump.users.first { $0.client == other }!.id, otherApp = dump.apps.first { $0.client == other }!.id
        let otherDepartment = dump.departments.first { $0.client == other }?.id
        let catalog = dump.catalog[0]
        let (u, a) = (rig.users[0], rig.apps[0])
        let fresh = UUID128("aaaaaaaa-0000-4000-8000-000000000001")!, ghost = UUID128("bbbbbbbb-0000-4000-8000-000000000002")!
        let good = Self.object([("user_id", u), ("application_id", a), ("activity_date", "2025-01-02")])
        let before = (rows: rig.rows(), sequence: rig.writer.store!.walSequence, users: rig.writer.store!.client(client)!.users.count)
        // (table, rows, expected (index, field) refusals)
        let cases: [(String, [String], [(Int, String)])] = [
            ("users", [Self.object([("email", "x@y"), ("is_active", true)])], [(0, "id")]),
            ("users", [Self.object([("id", fresh), ("email", "x@y"), ("is_active", "yes")])], [(0, "is_active")]),
            ("users", [Self.object([("id", fresh), ("email", "x@y"), ("is_active", 1)])], [(0, "is_active")]),
            ("users", [Self.object([("id", fresh), ("email", ""), ("is_active", true)])], [(0, "email")]),
            ("users", [Self.object([("id", fresh), ("email", "x@y"), ("is_active", true), ("created_at", "yesterday")])], [(0, "created_at")]),
            ("users", [Self.object([("id", otherUser), ("email", "x@y"), ("is_active", true)])], [(0, "id")]),
            ("users", [Self.object([("id", fresh), ("email", "x@y"), ("is_active", true), ("client_id", other)])], [(0, "client_id")]),
            ("users", [Self.object([("id", fresh), ("email", "a@y"), ("is_active", true)]),
                       Self.object([("id", fresh), ("email", "b@y"), ("is_active", false)])], [(1, "id")]),
            ("users", ["7"], [(0, "")]),
            ("apps", [Self.object([("id", fresh), ("catalog_application_id", ghost), ("is_approved", true), ("is_favorite", false)])],
             [(0, "catalog_application_id")]),
            ("apps", [Self.object([("id", otherApp), ("catalog_application_id", catalog.id), ("is_approved", true), ("is_favorite", false)])],
             [(0, "id")]),
            ("apps", [Self.object([("id", fresh), ("catalog_application_id", catalog.id), ("is_favorite", false)])], [(0, "is_approved")]),
            ("departments", [Self.object([("id", fresh)])], [(0, "name")]),
            ("catalog_applications", [Self.object([("id", fresh), ("canonical_name", "X"), ("type", "saas"), ("category_id", ghost)])],
             [(0, "category_id")]),
            ("catalog_applications", [Self.object([("id", fresh), ("canonical_name", "X"), ("type", "saas"), ("vendor_id", ghost)])],
             [(0, "vendor_id")]),
            ("catalog_applications", [Self.object([("id", fresh), ("type", "saas")])], [(0, "canonical_name")]),
            ("user_departments", [Self.object([("user_id", ghost), ("department_id", ghost)])], [(0, "user_id"), (0, "department_id")]),
            ("user_departments", [Self.object([("user_id", otherUser), ("department_id", otherDepartment ?? ghost)])],
             [(0, "user_id"), (0, "department_id")]),
        ]
        for (table, rows, expected) in cases {
            let response = try AppendTests.post(rig, Self.body([(table, rows), ("events", [good])]))
            #expect(response.status == 400, "\(table) \(rows): \(response.text)")
            let error = response.object["error"] as? [String: Any] ?? [:]
            #expect(error["code"] as? String == "invalid_events", "\(response.text)")
            let got = (error["rows"] as? [[String: Any]] ?? []).map { ($0["table"] as? String ?? "", $0["index"] as? Int ?? -1, $0["field"] as? String ?? "?") }
            #expect(got.map { "\($0.0)[\($0.1)].\($0.2)" } == expected.map { "\(table)[\($0.0)].\($0.1)" }, "\(table) \(rows): \(response.text)")
            #expect((error["message"] as? String ?? "").contains("nothing was applied"))
        }
        // An event naming a user the batch does not add is refused with the rows (the events table).
        let lone = try AppendTests.post(rig, Self.body([("events", [Self.object([("user_id", fresh), ("application_id", a), ("activity_date", "2025-01-02")])]),
                                                       ("departments", [Self.object([("id", fresh), ("name", "D")])])]))
        #expect(lone.status == 400 && lone.text.contains("\"table\":\"events\"") && lone.text.contains("no user \(fresh)"), "\(lone.text)")
        // Tables and shapes.
        for (body, field) in [("{\"people\": []}", "people"), ("{\"users\": {}}", "users"), ("{\"users\": [], \"events\": []}", "body")] {
            let response = try AppendTests.post(rig, body)
            #expect(response.status == 400 && (response.object["error"] as? [String: Any])?["parameter"] as? String == field, "\(body): \(response.text)")
        }
        // Changing an existing catalog application needs a token that may read every client;
        // repeating it unchanged does not.
        let same = Self.object([("id", catalog.id), ("canonical_name", catalog.name), ("logo", catalog.logo), ("type", catalog.type),
                                ("category_id", catalog.category), ("vendor_id", catalog.vendor)])
        let changed = Self.object([("id", catalog.id), ("canonical_name", catalog.name + " 2"), ("logo", catalog.logo), ("type", catalog.type),
                                   ("category_id", catalog.category), ("vendor_id", catalog.vendor)])
        let refused = try AppendTests.post(rig, Self.body([("catalog_applications", [changed])]), token: Self.scoped)
        #expect(refused.status == 400 && refused.text.contains("may read every client"), "\(refused.text)")
        #expect(rig.rows() == before.rows && rig.writer.store!.walSequence == before.sequence
                && rig.writer.store!.client(client)!.users.count == before.users, "a refused batch changed the data")
        let repeated = try AppendTests.post(rig, Self.body([("catalog_applications", [same])]), token: Self.scoped)
        #expect(repeated.status == 200 && repeated.object["directory_rows"] as? Int == 1, "\(repeated.text)")
        let allowed = try AppendTests.post(rig, Self.body([("catalog_applications", [changed])]))
        #expect(allowed.status == 200, "\(allowed.text)")
        let name = rig.writer.store!.catalog.applications[Int(rig.writer.store!.catalog.applicationIndex[catalog.id]!)].canonicalName
        #expect(name == catalog.name + " 2")
    }
}
