import Foundation
import Synchronization
import Testing
@testable import TallyAPI
import TallyServer
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// Appended events of a client's newest day go to a tail beside its usage index instead of a
/// rebuild (``UsageTail``); here every client takes them (`tailMinRows` 0). After every batch
/// every dashboard route, directory, insight and admin report answers as a store loaded from
/// scratch from the mirrored dump (and the reports as the brute-force reference); a row of
/// another day rebuilds the client with its tail; a snapshot stores the tails' rows and a
/// restart from it and the log answers the same.
@Suite(.serialized) struct TailAppendTests {
    /// `mergeMinRows` 1: every batch starts a merge in the background, installed with the rows
    /// that arrived meanwhile as the merged client's tail; `mergeAfterSeconds` 0.3: tails are
    /// merged by age while the writer idles. Answers are exact whichever is served.
    @Test(arguments: [(nil, 300), (1, 300), (nil, 0.3)] as [(Int?, Double)])
    func newestDayEventsAnswerAsIfTheDumpHeldThem(mergeMinRows: Int?, mergeAfterSeconds: Double) throws {
        let merges = mergeMinRows != nil || mergeAfterSeconds < 10
        let name = "tail-\(mergeMinRows ?? 0)-\(Int(mergeAfterSeconds * 10))"  // cases may run at once
        let rig = try AppendTests.rig(name, seed: 73, tailMinRows: 0, mergeMinRows: mergeMinRows, mergeAfterSeconds: mergeAfterSeconds)
        var running = true
        defer { if running { rig.shutdown() } }
        var dump = rig.dump
        var r = SeededRandom(seed: 73)
        let snapshot = NSTemporaryDirectory() + "tally-\(name)-\(getpid()).tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        func batch(_ n: Int, backdated: Bool = false) throws {
            for client in dump.clients.map(\.id) {
                guard let day = rig.writer.store!.client(client)?.usage?.newestDay else { continue }
                let users = dump.users.filter { $0.client == client }.map(\.id), apps = dump.apps.filter { $0.client == client }.map(\.id)
                let held = dump.usage.filter { $0.client == client && $0.day == day }
                var events: [String] = []
                for k in 0..<Int.random(in: 1...40, using: &r) {
                    var row = RandomDump.Usage(client: client, user: users.randomElement(using: &r)!, app: apps.randomElement(using: &r)!, day: day)
                    if let h = held.randomElement(using: &r), r.chance(0.2) { row = h }
                    if backdated && k == 0 { row.day = day.adding(-Int.random(in: 1...200, using: &r)) }
                    dump.usage.append(row)
                    events.append(AppendTests.event(row.user, row.app, row.day.description))
                }
                let response = try AppendTests.post(rig, "[" + events.joined(separator: ",") + "]", client: client.description)
                try #require(response.status == 200, "batch \(n): \(response.text)")
            }
        }
        for n in 0..<5 {
            try batch(n, backdated: n == 3)
            let tailed = rig.writer.store!.clients.filter { $0.usage?.tail != nil }.count
            // Without merges: every client with usage has a tail, but after the backdated row.
            if !merges {
                #expect(n == 3 ? tailed == 0 : tailed == rig.writer.store!.clients.filter { $0.usage != nil }.count,
                        "batch \(n): \(tailed) clients with a tail")
            }
            try DirectoryAppendTests.compare(rig.writer, dump, &r, "after batch \(n)")
        }
        // Freshness: the rows only in tails, and the age of the oldest, in /readyz and /metrics —
        // read while the served version stays the same (with merges on, one may be installed
        // between reading the writer's store and the answers: then read again).
        var inTails = 0
        for attempt in 0..<50 {
            let served = rig.writer.store!
            inTails = served.tails.rows
            let ready = try HTTPTestClient(port: rig.server.port).request("GET", "/readyz")
            let metrics = try HTTPTestClient(port: rig.server.port).request("GET", "/metrics").text
            guard rig.writer.store! === served || attempt == 49 else { usleep(20_000); continue }
            #expect(merges || inTails > 0)
            #expect(ready.object["delta_rows"] as? Int == inTails, "\(ready.text)")
            #expect((ready.object["oldest_delta_age_seconds"] as? Double).map { $0 >= 0 && $0 < 600 } == true, "\(ready.text)")
            func metric(_ name: String) -> Double? { AppendTests.metric(name, in: metrics) }
            #expect(metric("tally_delta_rows") == Double(inTails) && metric("tally_delta_clients") == Double(served.tails.clients), "\(metrics.prefix(300))")
            #expect(metric("tally_delta_oldest_age_seconds").map { $0 >= 0 && $0 < 600 } == true)
            break
        }
        if merges {
            // Merges ran and were installed (the metrics say so), and their answers were checked.
            var merged = 0.0
            for _ in 0..<100 where merged == 0 {
                let text = try HTTPTestClient(port: rig.server.port).request("GET", "/metrics").text
                merged = AppendTests.metric("tally_merges_total{result=\"ok\"}", in: text) ?? 0
                if merged == 0 { usleep(100_000) }
            }
            #expect(merged > 0, "no merge was installed")
            try DirectoryAppendTests.compare(rig.writer, dump, &r, "after merges")
        }
        #expect(try AppendTests.saveSnapshot(rig.server.port, snapshot).status == 200)
        try batch(5)
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a snapshot and a batch")
        rig.shutdown()
        running = false
        let again = try AppendTests.rig(name, seed: 73, wal: rig.wal, snapshot: snapshot, tailMinRows: 0, mergeMinRows: mergeMinRows,
                                        mergeAfterSeconds: mergeAfterSeconds)
        defer { again.shutdown() }
        #expect(merges || again.writer.store!.clients.contains { $0.usage?.tail != nil }, "the log's last batch replayed into tails")
        try DirectoryAppendTests.compare(again.writer, dump, &r, "after a restart from the snapshot and the log")
    }

    /// Rows that arrive while a merge runs are not lost, nor attributes changed meanwhile: the
    /// merge is held after its rebuild while a batch is acknowledged, and installed with that
    /// batch's rows as the merged client's tail and its renames; every route then answers as a
    /// store loaded from scratch.
    /// Holds the writer's first merge after its rebuild: `held` is signalled then, and the merge
    /// goes on when `release` is.
    static func holdFirstMerge(_ writer: StoreWriter) -> (held: DispatchSemaphore, release: DispatchSemaphore) {
        holdFirst(writer.mergeBuilt)
    }

    /// Holds the first call of `hook` (a writer's test hook) until `release` is signalled;
    /// `held` is signalled once it is held.
    static func holdFirst(_ hook: borrowing Mutex<(@Sendable () -> Void)?>) -> (held: DispatchSemaphore, release: DispatchSemaphore) {
        let held = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let first = Mutex(true)
        hook.withLock { $0 = {
            guard first.withLock({ f in defer { f = false }; return f }) else { return }
            held.signal()
            release.wait()
        } }
        return (held, release)
    }

    @Test func rowsAppendedDuringAMergeAreKept() throws {
        let rig = try AppendTests.rig("tail-merge", seed: 75, tailMinRows: 0, mergeMinRows: 1)
        defer { rig.shutdown() }
        var dump = rig.dump
        var r = SeededRandom(seed: 75)
        let (held, release) = Self.holdFirstMerge(rig.writer)
        let client = rig.client
        let day = try #require(rig.writer.store!.client(client)?.usage?.newestDay)
        func post(_ n: Int, attributes: Bool = false) throws {
            let b = AppendTests.randomEvents(rig.dump, client: client, day: day, n, &r)
            dump.usage += b.rows
            var tables = attributes ? Self.attributeChanges(&dump, client: client, 0, &r) : []
            tables.append(("events", b.rows.map { AppendTests.event($0.user, $0.app, $0.day.description) }))
            #expect(try AppendTests.post(rig, DirectoryAppendTests.body(tables)).status == 200)
        }
        try post(30)  // starts a merge, held after its rebuild
        #expect(held.wait(timeout: .now() + 30) == .success)
        // Acknowledged into the tail the merge did not see, with attributes changed (they keep
        // the base, so the merge is still installed, and the merged client takes them).
        try post(30, attributes: true)
        let before = rig.writer.store!.client(client)!
        #expect(before.usage?.tail != nil && before.usage?.base != nil)
        release.signal()
        // Installed: a new base, the second batch's new rows its tail.
        var installed = false
        for _ in 0..<300 where !installed {
            installed = rig.writer.store!.client(client)!.usage.map { ($0.base ?? $0) !== before.usage!.base } ?? false
            if !installed { usleep(10_000) }
        }
        #expect(installed, "the merge was installed")
        #expect(rig.writer.store!.usageRowCount == before.usage!.rowCount + rig.writer.store!.clients.filter { $0.info.id != client }
            .reduce(0) { $0 + ($1.usage?.rowCount ?? 0) }, "no row lost or added by the install")
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a merge with rows appended meanwhile")
    }

    /// A large client's new day (docs/APPENDS.md, "Two days in the tail"): its first events, with
    /// late events of the day before among them, go into its tail and are acknowledged with no
    /// rebuild; a merge while the new day's rows are few folds the day before into the base and
    /// keeps them in the tail, so that later late rows still go there; a merge once they are many
    /// folds everything, after which a late row of the day before is a backdated row (a rebuild).
    /// Every route is compared with the reference after each step, and a restart from a snapshot
    /// taken while the tail held both days, and the log, serves the same.
    @Test func aNewDayGoesIntoTheTailWithoutARebuild() throws {
        let rig = try AppendTests.rig("tail-next-day", seed: 81, tailMinRows: 0, mergeMinRows: 200, mergeAfterSeconds: 1_000)
        var dump = rig.dump
        var r = SeededRandom(seed: 81)
        let client = rig.client
        let rebuilds = Mutex(0)
        rig.writer.rebuildStarted.withLock { $0 = { rebuilds.withLock { $0 += 1 } } }
        let day = try #require(rig.writer.store!.client(client)?.usage?.newestDay), next = day.adding(1)
        func usage() -> UsageIndex { rig.writer.store!.client(client)!.usage! }
        func post(_ n: Int, on d: Day) throws {
            let b = AppendTests.randomEvents(rig.dump, client: client, day: d, n, &r)
            dump.usage += b.rows
            #expect(try AppendTests.post(rig, b.body).status == 200)
        }
        func waitFor(_ what: String, _ condition: () -> Bool) {
            for _ in 0..<1_000 where !condition() { usleep(10_000) }
            #expect(condition(), "\(what)")
        }
        try post(30, on: next)
        try post(10, on: day)
        #expect(usage().newestDay == next && usage().tail?.hasNext == true && rebuilds.withLock { $0 } == 0,
                "the new day is served from the tail, with no rebuild")
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a new day's first rows")
        // A merge while the new day's rows are few keeps them in the tail.
        rig.writer.mergeNow()
        waitFor("the day before was folded into the base, the new day kept in the tail") {
            let u = usage()
            return u.base?.newestDay == day && u.tail?.hasNext == true && u.tail?.nextRows == u.tail?.rowCount
        }
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a merge that kept the new day")
        try post(10, on: day)
        try post(20, on: next)
        #expect(rebuilds.withLock { $0 } == 0 && usage().base?.newestDay == day, "late rows of the day before go into the tail")
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after late rows")
        // A snapshot while the tail holds both days: it stores the client whole.
        let snapshot = NSTemporaryDirectory() + "tally-tail-next-day-\(getpid()).tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        #expect(usage().tail?.hasNext == true && (usage().tail?.nextRows ?? 0) < (usage().tail?.rowCount ?? 0), "two days in the tail")
        #expect(try AppendTests.saveSnapshot(rig.server.port, snapshot).status == 200)
        let snapshotDump = dump
        // Past half the merge's threshold of new-day rows, a merge folds everything.
        try post(400, on: next)
        waitFor("a merge folded the new day into the base") { usage().tail == nil && usage().newestDay == next }
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a merge of both days")
        #expect(rebuilds.withLock { $0 } == 0)
        // Now a late row of the day before is backdated: the client is rebuilt with it.
        try post(3, on: day)
        #expect(rebuilds.withLock { $0 } == 1, "a row before the base's last day rebuilds")
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a backdated row")
        let served = rig.rows()
        rig.shutdown()
        // From the snapshot taken with two days in the tail, and the log (which the snapshot cut:
        // a start from the dump and the log alone is refused): every row once.
        let fromSnapshot = try AppendTests.rig("tail-next-day", seed: 81, wal: rig.wal, snapshot: snapshot, tailMinRows: 0,
                                               mergeMinRows: 200, mergeAfterSeconds: 1_000)
        defer { fromSnapshot.shutdown() }
        #expect(try Snapshot.read(path: snapshot).clients.first { $0.info.id == client }?.usage?.rowCount
                == snapshotDump.usage.filter { $0.client == client }.map { "\($0.user)|\($0.app)|\($0.day)" }.reduce(into: Set<String>()) { $0.insert($1) }.count,
                "the snapshot holds the base and both tail days")
        #expect(fromSnapshot.rows() == served)
        try DirectoryAppendTests.compare(fromSnapshot.writer, dump, &r, "after a restart from a snapshot taken with two days in the tail")
    }

    /// Batches of one client committed in one group are applied together, as one append: the
    /// first to name a next day sets it for the group, and a later one naming another day is
    /// rebuilt off the commit thread (applied together they would rebuild the client on it).
    @Test func aGroupsBatchesAgreeOnTheNextDay() throws {
        let rig = try AppendTests.rig("tail-group-day", seed: 82, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { rig.shutdown() }
        let client = rig.client
        let store = try #require(rig.writer.store), c = try #require(store.client(client))
        let day = try #require(c.usage?.newestDay)
        let user = rig.dump.users.first { $0.client == client }!.id, app = rig.dump.apps.first { $0.client == client }!.id
        func batch(_ d: Day) -> AppendBatch { AppendBatch(client: client, rows: [AppendBatch.Row(user: user, app: app, day: d)]) }
        var nextDays: [UUID128: Int32] = [:], apps: [UUID128: Set<UUID128>] = [:]
        #expect(!rig.writer.rebuildsLargeClient(batch(day), in: store, nextDays: &nextDays, newApps: &apps), "the newest day: into the tail")
        #expect(nextDays.isEmpty, "no next day named")
        #expect(!rig.writer.rebuildsLargeClient(batch(day.adding(2)), in: store, nextDays: &nextDays, newApps: &apps), "a day two on: into the tail")
        #expect(nextDays[client] == day.adding(2).raw)
        #expect(!rig.writer.rebuildsLargeClient(batch(day.adding(2)), in: store, nextDays: &nextDays, newApps: &apps), "the same next day again")
        #expect(rig.writer.rebuildsLargeClient(batch(day.adding(1)), in: store, nextDays: &nextDays, newApps: &apps), "another next day in the same group")
        #expect(!rig.writer.rebuildsLargeClient(batch(day), in: store, nextDays: &nextDays, newApps: &apps), "the newest day still")
        var fresh: [UUID128: Int32] = [:]
        #expect(!rig.writer.rebuildsLargeClient(batch(day.adding(1)), in: store, nextDays: &fresh, newApps: &apps), "in a group of its own: into the tail")
        #expect(rig.writer.rebuildsLargeClient(batch(day.adding(UsageTail.maxGap + 1)), in: store, nextDays: &fresh, newApps: &apps), "past a week: rebuilt")
        // New apps: together, the group's batches must fit the client's spare app slots (applied
        // as one append, more would rebuild the client on the commit thread).
        let catalogApp = store.catalog.applications[Int(c.apps[0].catalogIndex)].id
        var r = SeededRandom(seed: 82)
        func adding(_ n: Int) -> AppendBatch {
            var b = batch(day)
            b.directory.apps = (0..<n).map { _ in DirectoryRows.App(id: r.uuid(), catalogApp: catalogApp, isApproved: true, isFavorite: false) }
            return b
        }
        try #require(c.appRoom == ClientStore.spareApps)
        var group: [UUID128: Int32] = [:], added: [UUID128: Set<UUID128>] = [:]
        #expect(!rig.writer.rebuildsLargeClient(adding(10), in: store, nextDays: &group, newApps: &added), "10 new apps: into the tail")
        #expect(!rig.writer.rebuildsLargeClient(adding(6), in: store, nextDays: &group, newApps: &added), "16 in the group: into the tail")
        #expect(rig.writer.rebuildsLargeClient(adding(1), in: store, nextDays: &group, newApps: &added), "a 17th in the same group: rebuilt")
        #expect(added[client]?.count == 16)
    }

    /// Backpressure: while a client's merge runs, a batch of its newest day that would take its
    /// tail past the cap (which would rebuild the client on the commit thread, holding every
    /// client's appends) is refused with 503 `merge_behind` and `Retry-After`, and nothing of it
    /// is applied; smaller batches still go in; once the merge is installed the same batch is
    /// acknowledged, and the data is the mirrored dump's.
    @Test func batchesAheadOfTheirMergeAreRefusedUntilItIsIn() throws {
        let rig = try AppendTests.rig("tail-behind", seed: 79, tailMinRows: 0, tailMaxRows: 40, mergeMinRows: 1)
        defer { rig.shutdown() }
        var dump = rig.dump
        var r = SeededRandom(seed: 79)
        let (held, release) = Self.holdFirstMerge(rig.writer)
        let client = rig.client
        let day = try #require(rig.writer.store!.client(client)?.usage?.newestDay)
        func batch(_ n: Int) -> (rows: [RandomDump.Usage], body: String) { AppendTests.randomEvents(rig.dump, client: client, day: day, n, &r) }
        func accepted(_ b: (rows: [RandomDump.Usage], body: String)) throws {
            try #require(try AppendTests.post(rig, b.body).status == 200)
            dump.usage += b.rows
        }
        try accepted(batch(20))  // into the tail; starts a merge, held after its rebuild
        try #require(held.wait(timeout: .now() + 30) == .success)
        let tail = try #require(rig.writer.store!.client(client)?.usage?.tail?.rowCount)
        try #require(tail >= 6, "the first batch left \(tail) new rows")
        let rows = rig.rows(), sequence = rig.writer.freshness.ackedSequence
        let ahead = batch(35)  // past the cap of 40 with the tail's rows
        let refused = try AppendTests.post(rig, ahead.body)
        #expect(refused.status == 503 && refused.header("Retry-After") == "1", "\(refused.status) \(String(decoding: refused.body, as: UTF8.self))")
        #expect(String(decoding: refused.body, as: UTF8.self).contains("\"merge_behind\""))
        #expect(rig.rows() == rows && rig.writer.freshness.ackedSequence == sequence, "nothing of a refused batch applied or logged")
        try accepted(batch(3))  // within the cap: acknowledged while the merge is held
        let before = try #require(rig.writer.store!.client(client)?.usage?.base)
        release.signal()
        var installed = false
        for _ in 0..<300 where !installed {
            installed = rig.writer.store!.client(client)!.usage.map { ($0.base ?? $0) !== before } ?? false
            if !installed { usleep(10_000) }
        }
        #expect(installed, "the merge was installed")
        try accepted(ahead)  // the same batch, now that the merged client's tail has room
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after batches refused while their merge ran")
    }

    /// A seeded stream of batches of random sizes and kinds — events of the newest day (tails),
    /// backdated events, new users with memberships and their events, a held user's new
    /// department (tails too), a new app (a spare slot of the index, with the tail), an app's
    /// approval flipped (directory rows: a rebuild) — with merges forced at random points, some awaited and some
    /// left to run under the next batches: after every batch every route answers as a store
    /// loaded from scratch from the mirrored dump, and the reports as the reference.
    @Test func aRandomStreamOfEventsAndDirectoryRowsAnswersAsIfTheDumpHeldThem() throws {
        let rig = try AppendTests.rig("tail-stream", seed: 77, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { rig.shutdown() }
        var dump = rig.dump
        var r = SeededRandom(seed: 77)
        let client = rig.client
        var kinds: [String: Int] = [:]
        for n in 0..<22 {
            let usage = try #require(rig.writer.store!.client(client)?.usage)
            // The client's newest day, and its base's last day (the day before it while the tail
            // holds rows of the next day: docs/APPENDS.md, "Two days in the tail").
            let day = usage.newestDay, baseDay = (usage.base ?? usage).newestDay
            let users = dump.users.filter { $0.client == client }.map(\.id), apps = dump.apps.filter { $0.client == client }.map(\.id)
            var tables: [(String, [String])] = []
            var events: [String] = []
            func event(_ u: UUID128, _ a: UUID128, _ d: Day) {
                dump.usage.append(RandomDump.Usage(client: client, user: u, app: a, day: d))
                events.append(AppendTests.event(u, a, d.description))
            }
            let kind = n < 2 || n == 4 ? "today" : n == 2 ? "attributes" : n == 3 ? "next day"
                : ["today", "today", "next day", "next day", "backdated", "new user", "move", "approval", "sent again", "attributes", "new app"]
                    .randomElement(using: &r)!
            kinds[kind, default: 0] += 1
            switch kind {
            case "next day":
                // A day after the base's last (the next, or one after a day or two without rows;
                // the tail's once it has rows on one): a new day's first rows, or more of them,
                // with late rows of the base's last day among them.
                let next = usage.tail.flatMap { $0.hasNext ? baseDay.adding($0.nextDay - $0.day) : nil }
                    ?? baseDay.adding(Int.random(in: 1...3, using: &r))
                for _ in 0..<Int.random(in: 1...60, using: &r) {
                    event(users.randomElement(using: &r)!, apps.randomElement(using: &r)!, r.chance(0.7) ? next : baseDay)
                }
            case "backdated":
                for _ in 0..<Int.random(in: 1...20, using: &r) {
                    event(users.randomElement(using: &r)!, apps.randomElement(using: &r)!, day.adding(-Int.random(in: 0...300, using: &r)))
                }
            case "new user":
                let u = RandomDump.User(id: r.uuid(), client: client, email: "stream\(n)@example.com", displayName: "Stream \(n)",
                                        isActive: true, role: nil, createdAt: nil)
                dump.users.append(u)
                let d = dump.departments.filter { $0.client == client }.randomElement(using: &r)!.id
                dump.memberships.append((u.id, d))
                tables.append(("users", [DirectoryAppendTests.object([("id", u.id), ("email", u.email), ("display_name", u.displayName), ("is_active", true)])]))
                tables.append(("user_departments", [DirectoryAppendTests.object([("user_id", u.id), ("department_id", d)])]))
                for _ in 0..<Int.random(in: 1...5, using: &r) { event(u.id, apps.randomElement(using: &r)!, day) }
            case "move":
                // A held user joins a department they were not in (the base's masks go stale
                // until the next merge), with a few events of the newest day.
                let departments = dump.departments.filter { $0.client == client }.map(\.id)
                if let (u, d) = users.shuffled(using: &r).lazy.flatMap({ u in departments.map { (u, $0) } })
                    .first(where: { p in !dump.memberships.contains { $0.user == p.0 && $0.department == p.1 } }) {
                    dump.memberships.append((u, d))
                    tables.append(("user_departments", [DirectoryAppendTests.object([("user_id", u), ("department_id", d)])]))
                }
                for _ in 0..<Int.random(in: 0...5, using: &r) { event(users.randomElement(using: &r)!, apps.randomElement(using: &r)!, day) }
            case "sent again":
                // Held rows of older days and the directory rows of what they name, as held, with
                // a few new rows of the newest day.
                let older = dump.usage.filter { $0.client == client && $0.day < day }
                var named: [RandomDump.Usage] = []
                for _ in 0..<Int.random(in: 1...10, using: &r) { if let h = older.randomElement(using: &r) { named.append(h) } }
                for _ in 0..<Int.random(in: 0...5, using: &r) {
                    let u = RandomDump.Usage(client: client, user: users.randomElement(using: &r)!, app: apps.randomElement(using: &r)!, day: day)
                    dump.usage.append(u)
                    named.append(u)
                }
                tables += DirectoryAppendTests.sentAgain(dump, client: client, users: Set(named.map(\.user)), apps: Set(named.map(\.app)))
                events += named.map { AppendTests.event($0.user, $0.app, $0.day.description) }
            case "attributes":
                tables += Self.attributeChanges(&dump, client: client, n, &r)
                for _ in 0..<Int.random(in: 0...10, using: &r) { event(users.randomElement(using: &r)!, apps.randomElement(using: &r)!, day) }
            case "new app":
                // An app new to the client (in a spare slot of its index), of any catalog
                // application, used by a few users on the newest day.
                let a = RandomDump.App(id: r.uuid(), client: client, catalog: dump.catalog.randomElement(using: &r)!.id,
                                       approved: r.chance(0.5), favorite: r.chance(0.2))
                dump.apps.append(a)
                tables.append(("apps", [DirectoryAppendTests.object([("id", a.id), ("catalog_application_id", a.catalog),
                                                                      ("is_approved", a.approved), ("is_favorite", a.favorite)])]))
                for _ in 0..<Int.random(in: 0...6, using: &r) { event(users.randomElement(using: &r)!, a.id, day) }
            case "approval":
                let i = dump.apps.indices.filter { dump.apps[$0].client == client }.randomElement(using: &r)!
                dump.apps[i].approved.toggle()
                let a = dump.apps[i]
                tables.append(("apps", [DirectoryAppendTests.object([("id", a.id), ("catalog_application_id", a.catalog),
                                                                      ("is_approved", a.approved), ("is_favorite", a.favorite)])]))
                event(users.randomElement(using: &r)!, a.id, day)
            default:
                let held = dump.usage.filter { $0.client == client && $0.day == day }
                for _ in 0..<Int.random(in: 1...80, using: &r) {
                    if let h = held.randomElement(using: &r), r.chance(0.15) {
                        event(h.user, h.app, day)
                    } else {
                        event(users.randomElement(using: &r)!, apps.randomElement(using: &r)!, day)
                    }
                }
            }
            tables.append(("events", events))
            let response = try AppendTests.post(rig, DirectoryAppendTests.body(tables))
            try #require(response.status == 200, "batch \(n) (\(kind)): \(response.text)")
            if r.chance(0.4) {
                // A forced merge: awaited (until no tail is left but the next day's rows, which a
                // merge keeps in the tail while they are recent), or left running under the next batch.
                rig.writer.mergeNow()
                if r.chance(0.5) {
                    func merged() -> Bool {
                        guard let t = rig.writer.store!.client(client)?.usage?.tail else { return true }
                        return t.hasNext && t.nextRows == t.rowCount
                    }
                    for _ in 0..<500 where !merged() { usleep(5_000) }
                    #expect(merged(), "batch \(n): the forced merge was installed")
                }
            }
            try DirectoryAppendTests.compare(rig.writer, dump, &r, "after batch \(n) (\(kind))")
        }
        #expect(kinds["today", default: 0] >= 3 && kinds["next day", default: 0] >= 2 && kinds.count >= 6 && kinds["attributes"] != nil, "\(kinds)")
    }

    /// Directory rows of `client` that change only attributes the usage index does not read, each
    /// mirrored into `dump`: users renamed, given a new email, role or creation time, or
    /// deactivated; a department renamed; an app's favourite flag flipped.
    static func attributeChanges(_ dump: inout RandomDump, client: UUID128, _ n: Int, _ r: inout SeededRandom) -> [(String, [String])] {
        var users: [String] = [], departments: [String] = [], apps: [String] = []
        // Each user once: a batch naming an id twice is refused.
        for i in dump.users.indices.filter({ dump.users[$0].client == client }).shuffled(using: &r).prefix(Int.random(in: 1...4, using: &r)) {
            switch Int.random(in: 0..<4, using: &r) {
            case 0: dump.users[i].displayName = "Renamed \(n) \(Int.random(in: 0..<1000, using: &r))"
            case 1: dump.users[i].email = "moved\(n)-\(Int.random(in: 0..<1000, using: &r))@example.com"
            case 2: dump.users[i].isActive.toggle()
            default: dump.users[i].role = ["admin", "member", nil].randomElement(using: &r)!
            }
            let u = dump.users[i]
            users.append(DirectoryAppendTests.object([("id", u.id), ("email", u.email), ("display_name", u.displayName),
                                                      ("is_active", u.isActive), ("role", u.role), ("created_at", u.createdAt)]))
        }
        if r.chance(0.5), let i = dump.departments.indices.filter({ dump.departments[$0].client == client }).randomElement(using: &r) {
            dump.departments[i].name = "Department \(n)"
            let d = dump.departments[i]
            departments.append(DirectoryAppendTests.object([("id", d.id), ("name", d.name), ("description", d.description)]))
        }
        if r.chance(0.5), let i = dump.apps.indices.filter({ dump.apps[$0].client == client }).randomElement(using: &r) {
            dump.apps[i].favorite.toggle()
            let a = dump.apps[i]
            apps.append(DirectoryAppendTests.object([("id", a.id), ("catalog_application_id", a.catalog), ("is_approved", a.approved),
                                                     ("is_favorite", a.favorite)]))
        }
        return [("users", users), ("departments", departments), ("apps", apps)]
    }

    /// Directory rows that change only attributes (an HR system's renames and deactivations, a
    /// favourite) cost a large client no rebuild: its usage index and tail are kept, the batch's
    /// newest-day events go into the tail, and every route answers as a store loaded from scratch
    /// from the mirrored dump. A row that adds a membership, or flips an approval, still rebuilds.
    @Test func attributeChangesKeepTheUsageIndex() throws {
        let rig = try AppendTests.rig("tail-attributes", seed: 91, tailMinRows: 0)
        var running = true
        defer { if running { rig.shutdown() } }
        var dump = rig.dump
        var r = SeededRandom(seed: 91)
        let client = rig.client
        let day = try #require(rig.writer.store!.client(client)?.usage?.newestDay)
        let first = AppendTests.randomEvents(rig.dump, client: client, day: day, 10, &r)
        dump.usage += first.rows
        #expect(try AppendTests.post(rig, first.body).status == 200)
        for n in 0..<4 {
            let before = try #require(rig.writer.store!.client(client))
            let base = try #require(before.usage?.base, "round \(n): a tail")
            var tables = Self.attributeChanges(&dump, client: client, n, &r)
            let events = AppendTests.randomEvents(dump, client: client, day: day, n == 0 ? 0 : 8, &r)
            dump.usage += events.rows
            tables.append(("events", events.rows.map { AppendTests.event($0.user, $0.app, $0.day.description) }))
            let response = try AppendTests.post(rig, DirectoryAppendTests.body(tables))
            try #require(response.status == 200, "round \(n): \(response.text)")
            let after = try #require(rig.writer.store!.client(client))
            #expect(after !== before && after.usage?.base === base, "round \(n): the usage index and its tail were kept")
            try DirectoryAppendTests.compare(rig.writer, dump, &r, "after attribute changes, round \(n)")
        }
        // An approval flipped changes the app's classes: rebuilt.
        let before = try #require(rig.writer.store!.client(client))
        let i = dump.apps.indices.first { dump.apps[$0].client == client }!
        dump.apps[i].approved.toggle()
        let a = dump.apps[i]
        let flip = DirectoryAppendTests.body([("apps", [DirectoryAppendTests.object([("id", a.id), ("catalog_application_id", a.catalog),
                                                                                      ("is_approved", a.approved), ("is_favorite", a.favorite)])])])
        #expect(try AppendTests.post(rig, flip).status == 200)
        let rebuilt = try #require(rig.writer.store!.client(client))
        #expect((rebuilt.usage?.base ?? rebuilt.usage) !== before.usage?.base, "an approval flipped rebuilds the client")
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after an approval flipped")
        // A snapshot of a client with changed attributes (and a tail) holds them; a restart from
        // it and the log (which holds a later attribute change) answers the same.
        let snapshot = NSTemporaryDirectory() + "tally-tail-attributes-\(getpid()).tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        var changes = Self.attributeChanges(&dump, client: client, 8, &r)
        let more = AppendTests.randomEvents(dump, client: client, day: day, 5, &r)
        dump.usage += more.rows
        changes.append(("events", more.rows.map { AppendTests.event($0.user, $0.app, $0.day.description) }))
        let rebuiltBase = try #require(rig.writer.store!.client(client)?.usage.map { $0.base ?? $0 })
        #expect(try AppendTests.post(rig, DirectoryAppendTests.body(changes)).status == 200)
        #expect(rig.writer.store!.client(client)?.usage?.base === rebuiltBase, "served with changed attributes and a tail")
        #expect(try AppendTests.saveSnapshot(rig.server.port, snapshot).status == 200)
        let last = Self.attributeChanges(&dump, client: client, 9, &r)
        #expect(try AppendTests.post(rig, DirectoryAppendTests.body(last)).status == 200)
        rig.shutdown()
        running = false
        let again = try AppendTests.rig("tail-attributes", seed: 91, wal: rig.wal, snapshot: snapshot, tailMinRows: 0)
        defer { again.shutdown() }
        try DirectoryAppendTests.compare(again.writer, dump, &r, "after a restart from the snapshot and the log")
    }
}
