import Foundation
import Synchronization
import Testing
import TallyGenerate
@testable import TallyAPI
import TallyIngest
import TallyServer
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// New users — a new employee with their departments, and their first events — go beside a
/// client's usage index (``ClientStore/withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``) instead of rebuilding it
/// (docs/APPENDS.md, "New users in the tail"): after every batch every route answers as a store
/// loaded from scratch from the mirrored dump, the department-filtered ones asked of every
/// department a new user joined; merges renumber the new users with their departments and take
/// the rows appended meanwhile; a restart from a snapshot and the log answers the same.
@Suite(.serialized) struct NewUserAppendTests {
    @Test func newUsersGoIntoTheTailWithoutARebuild() throws {
        let rig = try AppendTests.rig("new-users", seed: 91, tailMinRows: 0, mergeMinRows: 1_000_000, mergeAfterSeconds: 1_000)
        var running = true
        defer { if running { rig.shutdown() } }
        var dump = rig.dump
        var r = SeededRandom(seed: 91)
        let client = rig.client
        let rebuilds = Mutex(0)
        rig.writer.rebuildStarted.withLock { $0 = { rebuilds.withLock { $0 += 1 } } }
        func served() -> ClientStore { rig.writer.store!.client(client)! }
        func base() -> UsageIndex { served().usage!.base ?? served().usage! }
        let departments = dump.departments.filter { $0.client == client }.map(\.id)
        let apps = dump.apps.filter { $0.client == client }.map(\.id)
        var joined: Set<UUID128> = []  // departments a new user joined
        var added: [UUID128] = []
        func post(_ tables: [(String, [String])], _ what: String) throws {
            let response = try AppendTests.post(rig, DirectoryAppendTests.body(tables))
            try #require(response.status == 200, "\(what): \(response.text)")
        }
        /// Every dashboard route under each department a new user joined, over the last week
        /// (sorted every way the route sorts), against the store loaded from scratch.
        func compareDepartments(_ when: String) throws {
            try DirectoryAppendTests.compare(rig.writer, dump, &r, when)
            try DirectoryAppendTests.compareFiltered(rig.writer, dump, client: client, filters: joined.map { [("department_ids", $0.description)] },
                                                     days: [7], when)
        }
        /// A batch of 1–3 new users (in none, one or two departments), events of theirs and of
        /// others on the newest day (on the next day too when `nextDay`), and at times a held
        /// user renamed.
        func newUsers(_ n: Int, nextDay: Bool) throws {
            let day = served().usage!.newestDay
            var users: [String] = [], memberships: [String] = [], events: [String] = []
            func event(_ u: UUID128, _ a: UUID128, _ d: Day) {
                dump.usage.append(RandomDump.Usage(client: client, user: u, app: a, day: d))
                events.append(AppendTests.event(u, a, d.description))
            }
            for k in 0..<Int.random(in: 1...3, using: &r) {
                let u = RandomDump.User(id: r.uuid(), client: client, email: "new\(n)-\(k)@example.com", displayName: "New \(n) \(k)")
                dump.users.append(u)
                added.append(u.id)
                users.append(DirectoryAppendTests.object([("id", u.id), ("email", u.email), ("display_name", u.displayName), ("is_active", true)]))
                for d in departments.shuffled(using: &r).prefix(Int.random(in: 0...2, using: &r)) {
                    dump.memberships.append((u.id, d))
                    joined.insert(d)
                    memberships.append(DirectoryAppendTests.object([("user_id", u.id), ("department_id", d)]))
                }
                for _ in 0..<Int.random(in: 0...6, using: &r) { event(u.id, apps.randomElement(using: &r)!, day) }
                if nextDay { event(u.id, apps.randomElement(using: &r)!, day.adding(1)) }
            }
            let held = dump.users.filter { $0.client == client }.map(\.id)
            for _ in 0..<Int.random(in: 0...20, using: &r) { event(held.randomElement(using: &r)!, apps.randomElement(using: &r)!, day) }
            var tables = [("users", users), ("user_departments", memberships), ("events", events)]
            if r.chance(0.4) {
                // Held users, departments and apps changed in the same batch (one list a table).
                for (name, rows) in TailAppendTests.attributeChanges(&dump, client: client, n, &r) {
                    if let i = tables.firstIndex(where: { $0.0 == name }) { tables[i].1 = rows + tables[i].1 } else { tables.insert((name, rows), at: 0) }
                }
            }
            let before = base(), count = rebuilds.withLock { $0 }
            try post(tables, "batch \(n)")
            #expect(base() === before && rebuilds.withLock { $0 } == count, "batch \(n): new users beside the same index, no rebuild")
            #expect(served().users.count == dump.users.filter { $0.client == client }.count, "batch \(n): every user served")
        }
        func mergeAndWait(_ what: String) { Self.mergeAndWait(rig.writer, client, what) }
        try newUsers(0, nextDay: false)
        try compareDepartments("after the first new users")
        try newUsers(1, nextDay: false)
        try compareDepartments("after more new users")
        // Events of the new users alone, in a batch of events only.
        let day = served().usage!.newestDay
        var events: [String] = []
        for u in added {
            let a = apps.randomElement(using: &r)!
            dump.usage.append(RandomDump.Usage(client: client, user: u, app: a, day: day))
            events.append(AppendTests.event(u, a, day.description))
        }
        try post([("events", events)], "the new users' events")
        try compareDepartments("after the new users' events")
        // A merge numbers them with their departments; rows and users after it go on as before.
        mergeAndWait("the first merge")
        #expect(served().users.count == dump.users.filter { $0.client == client }.count)
        try compareDepartments("after a merge")
        try newUsers(2, nextDay: true)
        try compareDepartments("after new users with rows of the next day")
        try newUsers(3, nextDay: false)
        try compareDepartments("after new users with late rows")
        // A merge held after its rebuild while users are added: dropped at its install (it lacks
        // them), and the next one installed.
        let (held, release) = TailAppendTests.holdFirstMerge(rig.writer)
        rig.writer.mergeNow()
        held.wait()
        try newUsers(4, nextDay: false)
        release.signal()
        try compareDepartments("after users added while a merge ran")
        mergeAndWait("the merge after the dropped one")
        try compareDepartments("after the merge after the dropped one")
        #expect(rebuilds.withLock { $0 } == 0, "no rebuild for new users")
        // A user held since the dump joins another department (a move): the base's department
        // masks no longer hold, so the version marks them stale and counts departments without
        // them; no rebuild.
        let original = rig.dump.users.filter { $0.client == client }.map(\.id)
        let (mover, d) = try #require(original.lazy.flatMap { u in departments.map { (u, $0) } }
            .first { p in !dump.memberships.contains { $0.0 == p.0 && $0.1 == p.1 } })
        dump.memberships.append((mover, d))
        joined.insert(d)
        let beforeMove = base()
        // Stale masks start a merge at once: held after its rebuild here, so that the stale
        // version is what is served while it is looked at (then dropped: memberships grew).
        let (heldMerge, releaseMerge) = TailAppendTests.holdFirstMerge(rig.writer)
        try post([("user_departments", [DirectoryAppendTests.object([("user_id", mover), ("department_id", d)])])], "a held user's department")
        #expect(heldMerge.wait(timeout: .now() + 30) == .success, "stale masks started a merge")
        #expect(rebuilds.withLock { $0 } == 0 && base() === beforeMove, "a held user's new department keeps the index")
        #expect(served().usage?.tail?.masksStale == true && served().usage?.hasDepartmentMasks == false, "the base's masks marked stale")
        try compareDepartments("after a held user's new department")
        // A new department, with two held users, a new one and their events.
        let team = RandomDump.Department(id: r.uuid(), client: client, name: "Team \(added.count)", description: "new")
        dump.departments.append(team)
        joined.insert(team.id)
        let hire = RandomDump.User(id: r.uuid(), client: client, email: "team@example.com", displayName: "Team hire")
        dump.users.append(hire)
        added.append(hire.id)
        var teamEvents: [String] = []
        var memberRows: [String] = []
        for u in Array(original.shuffled(using: &r).prefix(2)) + [hire.id] {
            dump.memberships.append((u, team.id))
            memberRows.append(DirectoryAppendTests.object([("user_id", u), ("department_id", team.id)]))
            let a = apps.randomElement(using: &r)!, day = served().usage!.newestDay
            dump.usage.append(RandomDump.Usage(client: client, user: u, app: a, day: day))
            teamEvents.append(AppendTests.event(u, a, day.description))
        }
        try post([("departments", [DirectoryAppendTests.object([("id", team.id), ("name", team.name), ("description", team.description)])]),
                  ("users", [DirectoryAppendTests.object([("id", hire.id), ("email", hire.email), ("display_name", hire.displayName), ("is_active", true)])]),
                  ("user_departments", memberRows), ("events", teamEvents)], "a new department")
        #expect(rebuilds.withLock { $0 } == 0 && base() === beforeMove, "a new department keeps the index")
        try compareDepartments("after a new department")
        // The held merge lacks the new department: dropped; the next one makes the masks again.
        releaseMerge.signal()
        for _ in 0..<1_000 where served().usage?.tail?.masksStale == true { usleep(10_000) }
        #expect(served().usage?.tail?.masksStale != true && base() !== beforeMove, "a merge made the masks again")
        try compareDepartments("after the merge after the moves")
        try newUsers(5, nextDay: false)
        try compareDepartments("after new users on the rebuilt client")
        // A snapshot while new users are in the tail, and a restart from it and the log.
        let snapshot = NSTemporaryDirectory() + "tally-new-users-\(getpid()).tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        #expect(try AppendTests.saveSnapshot(rig.server.port, snapshot).status == 200)
        try newUsers(6, nextDay: false)
        let rows = rig.rows()
        rig.shutdown()
        running = false
        let again = try AppendTests.rig("new-users", seed: 91, wal: rig.wal, snapshot: snapshot, tailMinRows: 0,
                                        mergeMinRows: 1_000_000, mergeAfterSeconds: 1_000)
        defer { again.shutdown() }
        #expect(again.rows() == rows)
        try DirectoryAppendTests.compare(again.writer, dump, &r, "after a restart from a snapshot and the log")
    }

    /// Forces a merge of `client` and waits until its tail holds no row but the next day's.
    static func mergeAndWait(_ writer: StoreWriter, _ client: UUID128, _ what: String) {
        func tail() -> UsageTail? { writer.store!.client(client)!.usage?.tail }
        writer.mergeNow()
        for _ in 0..<1_000 where tail()?.rowCount ?? 0 > (tail()?.nextRows ?? 0) { usleep(10_000) }
        #expect((tail()?.rowCount ?? 0) == (tail()?.nextRows ?? 0), "\(what): merged")
    }

    /// Which of a route's sorts a comparison asks for.
    enum SortPick { case none, first, last }

    /// Every dashboard route that takes each filter's parameters, under each of `filters`, over
    /// the `lengths` days (with a sort) ending on the newest day, answered by `client` and by
    /// `whole` (the same data rebuilt), byte for byte.
    static func compareWithRebuild(_ client: ClientStore, _ whole: ClientStore, catalog: Catalog, filters: [[(String, String)]],
                                   lengths: [(Int, SortPick)] = [(1, .none), (7, .first), (30, .last)], _ when: String) {
        let token = TokenStore.demo.entries[0]
        let served = API(serving: Store(catalog: catalog, clients: [client]), tokens: .demo)
        let rebuilt = API(serving: Store(catalog: catalog, clients: [whole]), tokens: .demo)
        let end = client.usage!.newestDay
        for filter in filters {
            for route in Registry.dashboardRoutes where filter.allSatisfy({ f in route.parameters.contains { $0.name == f.0 } }) {
                for (length, pick) in lengths {
                    var q = [("start_date", end.adding(1 - length).description), ("end_date", end.description)] + filter
                    if route.parameters.contains(where: { $0.name == "granularity" }) { q.append(("granularity", "daily")) }
                    let sort = pick == .first ? route.sortBy.first : pick == .last ? route.sortBy.last : nil
                    if let sort { q += [("sort_by", sort), ("page_size", "50")] }
                    func answer(_ a: API) -> String {
                        do throws(APIError) {
                            return String(decoding: try a.answer(route, client: client.info.id, pathValue: nil, token: token, query: q), as: UTF8.self)
                        } catch { return "error \(error.status): \(error.message)" }
                    }
                    let a = answer(served), b = answer(rebuilt)
                    #expect(a == b, "\(when): \(route.name) \(q): served \(a.prefix(300)) — rebuilt \(b.prefix(300))")
                }
            }
        }
    }

    /// On a client of 1,500 users in 24 departments (so that new users, numbered after every
    /// held one, fall outside their departments' spans of member words), rounds of new users
    /// with their departments and events of the newest day and the next: every dashboard route
    /// under every department a new user joined, and without a filter, answers as the same
    /// client rebuilt whole (``ClientStore/merged()``, which numbers the new users with their
    /// departments), byte for byte.
    @Test func newUsersOfALargerClientAnswerAsItsRebuild() throws {
        let (catalog, builder) = SyntheticClient.make(SyntheticShape(users: 1_500, apps: 60, days: 40, seed: 12))
        var client = builder.build()
        var r = SeededRandom(seed: 1_212)  // (not the shape's seed: its ids would come again)
        var sm = SplitMix64(seed: 13)
        let day = client.usage!.newestDay
        var joined: Set<Int> = []
        for round in 0..<4 {
            var rows = DirectoryRows()
            for k in 0..<Int.random(in: 1...40, using: &r) {
                let id = r.uuid()
                rows.users.append(UserInfo(id: id, email: "new\(round)-\(k)@example.com", displayName: nil, isActive: true, role: nil, createdAt: nil))
                for d in (0..<client.departments.count).shuffled(using: &r).prefix(Int.random(in: 0...2, using: &r)) {
                    rows.memberships.append(DirectoryRows.Membership(user: id, department: client.departments[d].id))
                    joined.insert(d)
                }
            }
            if round >= 2 {
                // Moves: held users join departments they were not in; in the last round a new
                // department too, with held and new members. The base's masks go stale.
                for _ in 0..<Int.random(in: 5...20, using: &r) {
                    let u = Int(sm.next() % UInt64(client.users.count)), d = Int(sm.next() % UInt64(client.departments.count))
                    guard !client.departments(ofUser: UInt32(u)).contains(UInt32(d)) else { continue }
                    rows.memberships.append(DirectoryRows.Membership(user: client.users[u].id, department: client.departments[d].id))
                    joined.insert(d)
                }
                if round == 3 {
                    let team = DepartmentInfo(id: r.uuid(), name: "Team", description: nil)
                    rows.departments.append(team)
                    for u in (0..<3).map({ _ in client.users[Int(sm.next() % UInt64(client.users.count))].id }) + [rows.users[0].id] {
                        rows.memberships.append(DirectoryRows.Membership(user: u, department: team.id))
                    }
                    joined.insert(client.departments.count)  // its index in the version
                }
            }
            #expect(rows.effect(on: client, catalog: catalog) == .organization, "round \(round): \(client.departmentIndex.count) of \(client.departments.count) departments indexed")
            client = client.withOrganization(rows, catalog: catalog).client
            var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
            for _ in 0..<2_000 {
                // Half the rows the first half of the new users' (the others have none yet), the
                // rest anyone's; a third on the next day.
                let u = r.chance(0.5) ? client.userIndex[rows.users.prefix(max(1, rows.users.count / 2)).randomElement(using: &r)!.id]!
                    : UInt32(sm.next() % UInt64(client.users.count))
                us.append(u)
                ap.append(UInt32(sm.next() % UInt64(client.apps.count)))
                ds.append(round > 0 && r.chance(0.3) ? day.raw + 1 : day.raw)
            }
            client = client.appending(users: us, apps: ap, days: ds, tailMinRows: 0, tailMaxRows: 1_000_000)
            try #require(client.usage?.tail != nil, "round \(round): rows and users beside the index")
            #expect(client.usage!.hasDepartmentMasks == (round < 2), "round \(round): masks stale once a held user moved")
            let whole = client.merged()
            // What the query layer reads per user, by id (the rebuild numbers users otherwise).
            func ids(_ c: ClientStore, _ order: [UInt32]) -> [UUID128] { order.map { c.users[Int($0)].id } }
            #expect(ids(client, client.usersByPairCount) == ids(whole, whole.usersByPairCount), "round \(round): users by pair count")
            for (u, info) in client.users.enumerated() {
                let w = Int(whole.userIndex[info.id]!)
                #expect(client.activity.firstOffset[u] == whole.activity.firstOffset[w] && client.activity.lastOffset[u] == whole.activity.lastOffset[w]
                        && client.departments(ofUser: UInt32(u)).map { client.departments[Int($0)].id }.sorted()
                        == whole.departments(ofUser: UInt32(w)).map { whole.departments[Int($0)].id }.sorted(), "round \(round): user \(info.id)")
            }
            let filters = [[]] + joined.sorted().map { [("department_ids", client.departments[$0].id.description)] }
            Self.compareWithRebuild(client, whole, catalog: catalog, filters: filters, "round \(round)")
        }
    }
}
