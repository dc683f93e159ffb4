import Foundation
import Testing
import TallyIngest
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// The hand-written scanner (``AppendBody/parseScanned(client:c:body:store:mayChangeCatalog:)``) gives the rows
/// `JSONSerialization`'s path gives, or leaves the body to that path: on random bodies in the
/// form clients send and on every kind of variation (whitespace, key order, the bare array,
/// unknown keys, escapes, nulls, numbers, repeated keys, unknown or malformed ids, dates out of
/// the window or malformed, empty lists, trailing bytes, directory tables).
@Suite struct AppendBodyScanTests {
    /// A random dump of two clients, written as a dump folder and loaded.
    static func loaded(seed: UInt64) throws -> (RandomDump, Store) {
        let dump = RandomDump(seed: seed, clientCount: 2, maxRowsPerClient: 300)
        let folder = NSTemporaryDirectory() + "tally-scan-\(seed)-\(getpid())"
        try DumpWriter.write(dump.tables(), to: folder)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return (dump, try DumpLoader.load(folder: folder).0)
    }

    /// Whitespace JSON allows between tokens, now and then.
    static func whitespace(_ r: inout SeededRandom) -> String {
        r.chance(0.2) ? [" ", "\n", "\t ", "\r\n  "].randomElement(using: &r)! : ""
    }

    @Test func scannedRowsAreTheParsedRows() throws {
        let (dump, store) = try Self.loaded(seed: 91)
        let client = dump.clients[0].id
        let c = try #require(store.client(client))
        let users = c.users.map(\.id), apps = c.apps.map(\.id)
        var r = SeededRandom(seed: 91)
        var scanned = 0, leftToJSON = 0, numbered = 0
        for n in 0..<600 {
            let rowCount = Int.random(in: 0...12, using: &r)
            var objects: [String] = []
            let variant = n % 3 == 0 ? Int.random(in: 0..<16, using: &r) : -1
            for k in 0..<rowCount {
                var user = users.randomElement(using: &r)!.description, app = apps.randomElement(using: &r)!.description
                var date = RandomDump.lastDay.adding(-Int.random(in: 0...400, using: &r)).description
                if r.chance(0.3) { user = user.uppercased() }
                var fields = [("user_id", "\"\(user)\""), ("application_id", "\"\(app)\""), ("activity_date", "\"\(date)\"")]
                if k == 0 {
                    switch variant {
                    case 0: fields.append(("extra", "1"))
                    case 1: fields[0].1 = "\"\(user.dropLast())\\u0041\""
                    case 2: fields[1].1 = "null"
                    case 3: fields[2].1 = "20240101"
                    case 4: fields.append(("user_id", "\"\(users.randomElement(using: &r)!)\""))
                    case 5: user = UUID128(high: 1, low: 2).description; fields[0].1 = "\"\(user)\""
                    case 6: fields[1].1 = "\"\(app.prefix(35))\""
                    case 7: date = "1999-12-31"; fields[2].1 = "\"\(date)\""
                    case 8: date = "2024-02-30"; fields[2].1 = "\"\(date)\""
                    case 9: fields.removeLast()
                    case 10: fields[2].1 = "\"2099-01-01\""
                    default: break
                    }
                }
                fields.shuffle(using: &r)
                objects.append(Self.whitespace(&r) + "{" + fields.map { Self.whitespace(&r) + "\"\($0.0)\"" + Self.whitespace(&r) + ":" + Self.whitespace(&r) + $0.1 + Self.whitespace(&r) }.joined(separator: ",") + "}" + Self.whitespace(&r))
            }
            let list = "[" + objects.joined(separator: ",") + "]"
            var body = r.chance(0.5) ? list : "{" + Self.whitespace(&r) + "\"events\"" + Self.whitespace(&r) + ":" + list + Self.whitespace(&r) + "}"
            switch variant {
            case 11: body += "x"
            case 12: body = "{\"events\": \(list), \"users\": []}"
            case 13: body = "{\"evants\": \(list)}"
            case 14: body = Self.whitespace(&r) + body + Self.whitespace(&r)
            case 15: body = String(body.dropLast())
            default: break
            }
            let bytes = Array(body.utf8)
            let fast = AppendBody.parseScanned(client: client, c: c, body: bytes, store: store, mayChangeCatalog: false)
            let slow: Result<AppendBatch, WriteError>
            do { slow = .success(try AppendBody.parseJSON(client: client, c: c, body: bytes, store: store, mayChangeCatalog: false)) }
            catch { slow = .failure(error) }
            if let fast {
                scanned += 1
                guard case .success(let batch) = slow else {
                    Issue.record("body \(n) scanned into \(fast.rows.count) rows, refused by JSONSerialization's path: \(body)")
                    continue
                }
                #expect(batch.rows == fast.rows && batch.directory.count == 0 && fast.directory.count == 0, "body \(n): \(body)")
                // Numbered while scanned as the client numbers them (every id is held: no directory rows).
                if fast.rows.isEmpty {
                    #expect(fast.dense == nil)
                } else if let d = fast.dense {
                    numbered += 1
                    let looked = c.dense(fast.rows)
                    #expect(d.numbering === c && d.users == looked.users && d.apps == looked.apps && d.days == looked.days, "body \(n)")
                } else if variant != 12 {  // (an empty directory table beside them: left unnumbered)
                    Issue.record("body \(n): scanned events of held ids were not numbered")
                }
            } else {
                leftToJSON += 1
                // Left to the other path: rightly, unless that path accepts it with exactly the
                // canonical three fields of every row (then the scanner missed it).
                if case .success = slow, variant < 0 || variant == 14 {
                    Issue.record("body \(n) in the canonical form was left to JSONSerialization: \(body)")
                }
            }
        }
        #expect(scanned > 200 && leftToJSON > 100, "\(scanned) scanned, \(leftToJSON) left to JSONSerialization")
        #expect(numbered > 150, "\(numbered) numbered")
    }

    /// The dense indexes a batch was numbered with while parsed (``AppendBatch/dense``) are taken
    /// — by the apply (``ClientStore/dense(_:)-(AppendBatch)``) and by the commit thread's check
    /// that its ids are still held (``AppendBody/missing(_:in:added:)``) — only by a version of
    /// the numbering they were made in (a tail's version of the client: yes; the same data
    /// loaded again, a new numbering: no, the ids are looked up again). Shown with indexes
    /// planted wrong, which a version of another numbering must not read.
    @Test func aBatchIsReadByItsIndexesOnlyInTheirNumbering() throws {
        let (dump, store) = try Self.loaded(seed: 95)
        let client = dump.clients[0].id
        let c = try #require(store.client(client))
        let day = try #require(c.usage?.newestDay)  // rows of the newest day: a tail takes them
        let body = "[" + (0..<6).map { i in
            "{\"user_id\": \"\(c.users[i % c.users.count].id)\", \"application_id\": \"\(c.apps[i % c.apps.count].id)\", \"activity_date\": \"\(day)\"}"
        }.joined(separator: ",") + "]"
        let batch = try AppendBody.parse(client: client, body: Array(body.utf8), store: store)
        let d = try #require(batch.dense)
        #expect(d.numbering === c.numbering)
        let looked = c.dense(batch.rows)
        // Planted: every user and app index moved by one.
        func planted(_ numbering: ClientStore) -> AppendBatch {
            var b = batch
            b.dense = DenseEvents(numbering: numbering, users: d.users.map { ($0 + 1) % UInt32(c.users.count) },
                                  apps: d.apps.map { ($0 + 1) % UInt32(c.apps.count) }, days: d.days)
            return b
        }
        #expect(c.dense(planted(c)).users != looked.users, "its own numbering: the planted indexes are read")
        // A version with a tail shares the numbering.
        let tailed = c.appending(users: looked.users, apps: looked.apps, days: looked.days, tailMinRows: 0, tailMaxRows: nil)
        #expect(tailed !== c && tailed.numbering === c.numbering)
        #expect(tailed.dense(planted(c)).users != looked.users)
        // The same data loaded again numbers anew: its ids are looked up.
        let again = try #require(try Self.loaded(seed: 95).1.client(client))
        #expect(again.numbering !== c.numbering)
        let read = again.dense(planted(c))
        #expect(read.users == again.dense(batch.rows).users && read.apps == again.dense(batch.rows).apps && read.skipped == 0)
        // The commit thread's check: a row naming an id the client does not hold is found,
        // unless the batch was numbered in the client's numbering (then every id was held).
        var unknown = planted(c)
        unknown.rows[0].user = UUID128(high: 7, low: 7)
        let reloaded = Store(catalog: store.catalog, clients: store.clients.map { $0.info.id == client ? again : $0 })
        var added: [UUID128: AppendBody.AddedIds] = [:]
        #expect(AppendBody.missing(unknown, in: reloaded, added: &added) == "user \(UUID128(high: 7, low: 7))")
        #expect(AppendBody.missing(unknown, in: store, added: &added) == nil, "numbered in the served numbering: not looked up")
    }

    /// Bodies with directory tables beside the events (new users with their memberships and
    /// events, renamed users, new departments, apps sent again), keys in any order: the scanned
    /// batch (``AppendBody/parseScanned(client:c:body:store:mayChangeCatalog:)``) is the batch
    /// `JSONSerialization`'s path gives, or the body is left to that path — always when that
    /// path refuses it (a bad row, an unknown table, a table twice, an event naming a user
    /// neither held nor added), never when it is in the canonical form and accepted.
    @Test func scannedBatchesWithDirectoryRowsAreTheParsedBatches() throws {
        let (dump, store) = try Self.loaded(seed: 93)
        let client = try #require(dump.clients.first { (store.client($0.id)?.departments.count ?? 0) > 1 }?.id)
        let c = try #require(store.client(client))
        let apps = c.apps.map(\.id), departments = c.departments.map(\.id)
        let other = try #require(store.clients.first { $0.info.id != client && !$0.users.isEmpty })
        var r = SeededRandom(seed: 93)
        var scanned = 0, leftToJSON = 0, withNewUsers = 0
        let o = DirectoryAppendTests.object
        for n in 0..<500 {
            let variant = n % 3 == 0 ? Int.random(in: 0..<12, using: &r) : -1
            var tables: [(String, [String])] = []
            // New users, each in a department or two, with events; some held users renamed.
            let newUsers = (0..<Int.random(in: 0...3, using: &r)).map { _ in UUID128(high: r.next(), low: r.next()) }
            var users = newUsers.map { o([("id", $0), ("email", "new-\($0)@example.com"), ("display_name", r.chance(0.5) ? "N\u{e9}w \\ \"one\"" : nil),
                                          ("is_active", true), ("role", r.chance(0.3) ? "admin" : nil), ("created_at", r.chance(0.3) ? "2025-03-01 10:00:00" : nil)]) }
            for u in c.users.shuffled(using: &r).prefix(Int.random(in: 0...2, using: &r)) {
                users.append(o([("id", u.id), ("email", "renamed-" + u.email), ("display_name", u.displayName), ("is_active", u.isActive),
                                ("role", u.role), ("created_at", nil)]))
            }
            var memberships = newUsers.flatMap { u in departments.shuffled(using: &r).prefix(Int.random(in: 1...2, using: &r)).map {
                o([("user_id", u), ("department_id", $0)]) } }
            let newDepartment = UUID128(high: r.next(), low: r.next())
            var departmentRows: [String] = []
            if r.chance(0.2) {
                departmentRows.append(o([("id", newDepartment), ("name", "Dept \(n)"), ("description", nil)]))
                if let u = newUsers.first ?? c.users.first?.id { memberships.append(o([("user_id", u), ("department_id", newDepartment)])) }
            }
            let appRows = dump.apps.filter { $0.client == client }.shuffled(using: &r).prefix(r.chance(0.3) ? 1 : 0).map {
                o([("id", $0.id), ("catalog_application_id", $0.catalog), ("is_approved", !$0.approved), ("is_favorite", $0.favorite)]) }
            let pool = c.users.map(\.id) + newUsers
            var events = (0..<Int.random(in: 0...10, using: &r)).map { _ in
                AppendTests.event(pool.randomElement(using: &r)!, apps.randomElement(using: &r)!, RandomDump.lastDay.adding(-Int.random(in: 0...30, using: &r)).description) }
            switch variant {
            case 0: users.append(o([("id", UUID128(high: 7, low: 7)), ("is_active", true)]))              // no email
            case 1: events.append(AppendTests.event(UUID128(high: 9, low: 9), apps[0], RandomDump.lastDay.description))  // a user never added
            case 2: memberships.append(o([("user_id", UUID128(high: 8, low: 8)), ("department_id", departments[0])]))
            case 3: tables.append(("groups", [o([("id", UUID128(high: 1, low: 1))])]))
            case 4: users.append(o([("id", other.users[0].id), ("email", "x@y"), ("is_active", true)]))  // another client's user
            case 5: users.append(users.first ?? o([("id", c.users[0].id), ("email", "x@y"), ("is_active", "yes")]))
            default: break
            }
            tables += [("users", users), ("departments", departmentRows), ("user_departments", memberships), ("apps", appRows), ("events", events)]
            tables = tables.filter { !$0.1.isEmpty || r.chance(0.1) }.shuffled(using: &r)
            var body = "{" + tables.map { Self.whitespace(&r) + "\"\($0.0)\"" + Self.whitespace(&r) + ":" + Self.whitespace(&r) + "[" + $0.1.joined(separator: "," + Self.whitespace(&r)) + "]" + Self.whitespace(&r) }
                .joined(separator: ",") + "}"
            switch variant {
            case 6: body = String(body.dropLast())
            case 7: if let t = tables.first { body = String(body.dropLast()) + ",\"\(t.0)\":[" + t.1.joined(separator: ",") + "]}" }  // a table twice
            case 8: body = body.replacingOccurrences(of: "\"users\":[", with: "\"users\":{\"x\":[") + ""
            case 9: body += " x"
            default: break
            }
            let bytes = Array(body.utf8)
            let fast = AppendBody.parseScanned(client: client, c: c, body: bytes, store: store, mayChangeCatalog: false)
            let slow: Result<AppendBatch, WriteError>
            do { slow = .success(try AppendBody.parseJSON(client: client, c: c, body: bytes, store: store, mayChangeCatalog: false)) }
            catch { slow = .failure(error) }
            if let fast {
                scanned += 1
                if !newUsers.isEmpty { withNewUsers += 1 }
                guard case .success(let batch) = slow else {
                    Issue.record("body \(n) scanned, refused by JSONSerialization's path: \(body)")
                    continue
                }
                #expect(batch.rows == fast.rows && batch.directory == fast.directory && batch.client == fast.client, "body \(n): \(body)")
            } else {
                leftToJSON += 1
                if case .success = slow, variant < 0 || variant > 9 {
                    Issue.record("body \(n) in the canonical form was left to JSONSerialization: \(body)")
                }
            }
        }
        #expect(scanned > 200 && withNewUsers > 100 && leftToJSON > 80, "\(scanned) scanned (\(withNewUsers) with new users), \(leftToJSON) left to JSONSerialization")
    }
}
