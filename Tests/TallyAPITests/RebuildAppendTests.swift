import Foundation
import Synchronization
import Testing
@testable import TallyAPI
import TallyServer
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// A large client's batch that needs a rebuild (a new day's first events, backdated events,
/// directory rows) is rebuilt off the commit thread: other clients' batches are acknowledged
/// meanwhile, that client's later batches wait behind it, and each is acknowledged once its
/// rows are served. A snapshot taken meanwhile claims no parked batch, so a restart from it and
/// the log loses nothing and counts nothing twice.
@Suite(.serialized) struct RebuildAppendTests {
    /// Holds the first rebuild of parked batches until `release` is signalled.
    static func holdFirstRebuild(_ writer: StoreWriter) -> (held: DispatchSemaphore, release: DispatchSemaphore) {
        TailAppendTests.holdFirst(writer.rebuildStarted)
    }

    /// A POST on a thread of its own: its status once answered.
    final class Pending: Sendable {
        let status = Mutex<Int?>(nil)
        let answered = DispatchSemaphore(value: 0)
        init(_ rig: AppendTests.Rig, _ body: String, client: UUID128) {
            DispatchQueue.global().async { [self] in
                // Answered only once the held rebuild is released: a longer wait than a request's 20 s,
                // for a busy host running other suites beside this one.
                let s = (try? HTTPTestClient(port: rig.server.port, receiveTimeout: 120)
                    .request("POST", "/v2/clients/\(client)/usage-events", token: AppendTests.all,
                             headers: [("Content-Type", "application/json")], body: body))?.status ?? -1
                status.withLock { $0 = s }
                answered.signal()
            }
        }
        func wait(_ seconds: Double = 60) -> Int? {
            guard answered.wait(timeout: .now() + seconds) == .success else { return nil }
            answered.signal()
            return status.withLock { $0 }
        }
    }

    /// A batch sent again — rows of older days the client holds already and the directory rows
    /// of every user and app it names as the client holds them, beside new rows of its newest
    /// day — changes nothing but its newest day's rows: it goes into the tail and is acknowledged
    /// without a rebuild (one held here would keep it waiting), and the served data answers as
    /// the dump. One row of an older day the client lacks parks the next batch for a rebuild; a
    /// renamed user and a user's new department do not; an app's approval flipped does.
    @Test func aBatchSentAgainIsNotRebuilt() throws {
        let rig = try AppendTests.rig("sent-again", seed: 85, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { rig.shutdown() }
        var dump = rig.dump
        var r = SeededRandom(seed: 85)
        let (held, release) = Self.holdFirstRebuild(rig.writer)
        defer { release.signal() }
        let a = rig.client
        let newest = try #require(rig.writer.store?.client(a)?.usage?.newestDay)
        let older = dump.usage.filter { $0.client == a && $0.day < newest }
        try #require(older.count > 20, "the client has rows of older days")
        let again = (0..<20).map { _ in older.randomElement(using: &r)! }
        let today = AppendTests.randomEvents(dump, client: a, day: newest, 15, &r)
        // With the directory rows of every user and app it names, as the client holds them.
        let named = again + today.rows
        var tables = DirectoryAppendTests.sentAgain(dump, client: a, users: Set(named.map(\.user)), apps: Set(named.map(\.app)))
        try #require(tables.allSatisfy { !$0.1.isEmpty }, "users, departments, memberships and apps are sent again")
        tables.append(("events", named.shuffled(using: &r).map { AppendTests.event($0.user, $0.app, $0.day.description) }))
        let first = Pending(rig, DirectoryAppendTests.body(tables), client: a)
        #expect(first.wait(30) == 200, "acknowledged without waiting for a rebuild")
        #expect(held.wait(timeout: .now() + 0.5) == .timedOut, "no rebuild began")
        #expect(rig.writer.store!.client(a)!.usage!.tail != nil, "the newest day's rows are in the tail")
        dump.usage += today.rows
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a batch sent again")

        // A row of an older day the client does not hold: rebuilt (parked, held here).
        let users = dump.users.filter { $0.client == a }.map(\.id), apps = dump.apps.filter { $0.client == a }.map(\.id)
        let heldRows = Set(dump.usage.filter { $0.client == a }.map { "\($0.user) \($0.app) \($0.day)" })
        let firstDay = try #require(older.map(\.day).min())
        let (u, p) = try #require(users.lazy.flatMap { u in apps.lazy.map { (u, $0) } }.first { !heldRows.contains("\($0.0) \($0.1) \(firstDay)") })
        let second = Pending(rig, "[" + AppendTests.event(u, p, firstDay.description) + "]", client: a)
        #expect(held.wait(timeout: .now() + 30) == .success, "a rebuild began")
        #expect(second.wait(0.3) == nil, "the batch waits for the rebuild")
        release.signal()
        #expect(second.wait() == 200)
        dump.usage.append(RandomDump.Usage(client: a, user: u, app: p, day: firstDay))
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a backdated row")

        // A renamed user changes only attributes the index does not read: no rebuild
        // (TailAppendTests.attributeChangesKeepTheUsageIndex).
        let (held2, release2) = Self.holdFirstRebuild(rig.writer)
        defer { release2.signal() }
        let i = try #require(dump.users.indices.first { dump.users[$0].client == a })
        dump.users[i].displayName = (dump.users[i].displayName ?? "") + " (renamed)"
        var renamed = DirectoryAppendTests.sentAgain(dump, client: a, users: [dump.users[i].id], apps: [])
        let event = AppendTests.randomEvents(dump, client: a, day: newest, 1, &r)
        renamed.append(("events", event.rows.map { AppendTests.event($0.user, $0.app, $0.day.description) }))
        #expect(Pending(rig, DirectoryAppendTests.body(renamed), client: a).wait(30) == 200, "acknowledged without a rebuild")
        dump.usage += event.rows
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a renamed user")

        // A membership the user lacks: no rebuild either (the base's department masks are marked
        // stale until the next merge: NewUserAppendTests).
        let u4 = dump.users[i].id
        let lacked = try #require(dump.departments.first { d in d.client == a && !dump.memberships.contains { $0.user == u4 && $0.department == d.id } })
        dump.memberships.append((u4, lacked.id))
        let joined = DirectoryAppendTests.body([("user_departments", [DirectoryAppendTests.object([("user_id", u4), ("department_id", lacked.id)])])])
        #expect(Pending(rig, joined, client: a).wait(30) == 200, "acknowledged without a rebuild")
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a new membership")

        // An app's approval flipped moves it between classes: rebuilt.
        let third = Pending(rig, try Self.flipApproval(&dump, client: a), client: a)
        #expect(held2.wait(timeout: .now() + 30) == .success, "a rebuild began for the approval")
        #expect(third.wait(0.3) == nil, "the batch waits for the rebuild")
        release2.signal()
        #expect(third.wait() == 200)
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after an approval flipped")
    }

    /// The log is written beside the apply (``LogWriter``): a batch that would be parked for a
    /// rebuild (a backdated row of a large client) whose log write fails is refused with 503, is
    /// not parked — no rebuild begins, and nothing waits to be answered again at shutdown — and
    /// changes nothing; the restart has none of it. So with a batch of the newest day in the same
    /// group's place: refused, not served.
    @Test func aFailedLogWriteParksAndAppliesNothing() throws {
        let rig = try AppendTests.rig("failed-park", seed: 86, tailMinRows: 0, mergeMinRows: 1_000_000)
        var r = SeededRandom(seed: 86)
        let (held, release) = Self.holdFirstRebuild(rig.writer)
        defer { release.signal() }
        let a = rig.client
        let newest = try #require(rig.writer.store?.client(a)?.usage?.newestDay)
        let today = AppendTests.randomEvents(rig.dump, client: a, day: newest, 10, &r)
        #expect(try AppendTests.post(rig, "[" + today.rows.map { AppendTests.event($0.user, $0.app, $0.day.description) }
            .joined(separator: ",") + "]").status == 200)
        let rows = rig.rows(), served = rig.writer.store!.client(a)!
        let heldRows = Set(rig.dump.usage.filter { $0.client == a }.map { "\($0.user) \($0.app) \($0.day)" })
        let users = rig.dump.users.filter { $0.client == a }.map(\.id), apps = rig.dump.apps.filter { $0.client == a }.map(\.id)
        let firstDay = try #require(rig.dump.usage.filter { $0.client == a }.map(\.day).min())
        let (u, p) = try #require(users.lazy.flatMap { u in apps.lazy.map { (u, $0) } }.first { !heldRows.contains("\($0.0) \($0.1) \(firstDay)") })

        rig.writer.log!.failWriteAfter = 20
        let refused = try AppendTests.post(rig, "[" + AppendTests.event(u, p, firstDay.description) + "]")
        #expect(refused.status == 503 && refused.text.contains("\"code\":\"not_durable\""), "\(refused.text)")
        #expect(held.wait(timeout: .now() + 1) == .timedOut, "no rebuild began")
        #expect(rig.writer.parked.isEmpty && rig.writer.parkedIds.isEmpty && rig.writer.parkedNewestDay.isEmpty, "nothing parked")
        let more = AppendTests.randomEvents(rig.dump, client: a, day: newest, 10, &r)
        let later = try AppendTests.post(rig, "[" + more.rows.map { AppendTests.event($0.user, $0.app, $0.day.description) }
            .joined(separator: ",") + "]")
        #expect(later.status == 503 && later.text.contains("until the server restarts"), "\(later.text)")
        #expect(rig.rows() == rows && rig.writer.store!.client(a)! === served, "the served client is as it was")
        rig.shutdown()
        let again = try AppendTests.rig("failed-park", seed: 86, wal: rig.wal, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { again.shutdown() }
        #expect(again.rows() == rows && again.writer.store!.walSequence == 1)
    }

    @Test func aNewDaysBatchIsRebuiltOffTheCommitThread() throws {
        let name = "rebuild-off-thread"
        let rig = try AppendTests.rig(name, seed: 83, tailMinRows: 0, mergeMinRows: 1_000_000)
        var dump = rig.dump
        var r = SeededRandom(seed: 83)
        let snapshot = NSTemporaryDirectory() + "tally-\(name)-\(getpid()).tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        let (held, release) = Self.holdFirstRebuild(rig.writer)
        let a = rig.client, b = rig.dump.clients[1].id
        let store = try #require(rig.writer.store)
        let newestA = try #require(store.client(a)?.usage?.newestDay)
        let newestB = store.client(b)?.usage?.newestDay ?? newestA  // a client without rows yet: rebuilt at once, it is small
        func rows(_ client: UUID128, _ day: Day, _ n: Int) -> (rows: [RandomDump.Usage], body: String) {
            AppendTests.randomEvents(rig.dump, client: client, day: day, n, &r)
        }
        let rowsBefore = rig.rows(), sequenceBefore = rig.writer.freshness.ackedSequence

        // Past the furthest day A's tail takes (a day up to a week after A's newest would go
        // into it): logged, parked, its rebuild held.
        let newDay = rows(a, newestA.adding(UsageTail.maxGap + 1), 25)
        let first = Pending(rig, newDay.body, client: a)
        try #require(held.wait(timeout: .now() + 30) == .success, "the rebuild began")
        // A's next batch (its old newest day) waits behind it.
        let next = rows(a, newestA, 10)
        let second = Pending(rig, next.body, client: a)
        try Self.waitLogged(rig, sequenceBefore + 2)
        try #require(rig.writer.log?.lastSequence == sequenceBefore + 2, "A's second batch is logged")
        // B's batch is acknowledged meanwhile, and served.
        let other = rows(b, newestB, 12)
        #expect(try AppendTests.post(rig, other.body, client: b.description).status == 200)
        dump.usage += other.rows
        #expect(first.wait(0.3) == nil && second.wait(0.3) == nil, "A's batches wait for A's rebuild")
        #expect(rig.writer.store!.client(a)!.usage!.newestDay == newestA, "A's new day is not served before it is acknowledged")
        #expect(rig.writer.freshness.ackedSequence == sequenceBefore + 3, "B's batch, logged after A's two, is acknowledged")
        // A snapshot now claims nothing from A's first batch on.
        #expect(try AppendTests.saveSnapshot(rig.server.port, snapshot).status == 200)
        #expect(try Snapshot.read(path: snapshot).walSequence == sequenceBefore, "the snapshot stops before the oldest parked batch")

        release.signal()
        #expect(first.wait() == 200 && second.wait() == 200)
        dump.usage += newDay.rows + next.rows
        #expect(rig.writer.store!.client(a)!.usage!.newestDay == newestA.adding(UsageTail.maxGap + 1))
        #expect(rig.rows() > rowsBefore)
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a rebuild off the commit thread")

        // A restart from the snapshot and the log: every batch once.
        let served = rig.rows()
        rig.shutdown()
        let again = try AppendTests.rig(name, seed: 83, wal: rig.wal, snapshot: snapshot, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { again.shutdown() }
        #expect(again.rows() == served)
        try DirectoryAppendTests.compare(again.writer, dump, &r, "after a restart from a snapshot taken while batches were parked")
    }

    /// A body flipping the approval of client `a`'s first app in `dump` (which then holds it).
    static func flipApproval(_ dump: inout RandomDump, client a: UUID128) throws -> String {
        let k = try #require(dump.apps.indices.first { dump.apps[$0].client == a })
        dump.apps[k].approved.toggle()
        return DirectoryAppendTests.body([("apps", [DirectoryAppendTests.appRow(dump.apps[k])])])
    }

    /// Waits (up to 30 s on a busy host) until the log holds `sequence`.
    static func waitLogged(_ rig: AppendTests.Rig, _ sequence: UInt64) throws {
        for _ in 0..<30_000 where (rig.writer.log?.lastSequence ?? 0) < sequence { usleep(1000) }
        try #require((rig.writer.log?.lastSequence ?? 0) >= sequence, "batch \(sequence) is logged")
    }

    /// While a large client is rebuilt for an app's approval flipped (its classes hold the app's
    /// users over all days), batches of events of its newest day pass the rebuild: they go into
    /// the served version's tail and are acknowledged at once, answered as the dump with them and
    /// without the flip; the rebuild's install takes them into the rebuilt client's tail. A
    /// backdated row (rebuilt) waits behind the rebuild, and events of the newest day after it
    /// still pass; a batch of the next day waits, and so do the newest day's events after it (the
    /// rebuild then ends on the later day, and its tail could not take them). Every batch is
    /// served in the end, as the dump with all of them; a restart from the log counts each once.
    @Test func eventsPassARebuild() throws {
        let name = "rebuild-pass"
        let rig = try AppendTests.rig(name, seed: 87, tailMinRows: 0, mergeMinRows: 1_000_000)
        var dump = rig.dump
        var r = SeededRandom(seed: 87)
        let (held, release) = Self.holdFirstRebuild(rig.writer)
        defer { release.signal() }
        let a = rig.client, sequence = rig.writer.freshness.ackedSequence
        let newest = try #require(rig.writer.store?.client(a)?.usage?.newestDay)
        var flipped = dump
        let flip = Pending(rig, try Self.flipApproval(&flipped, client: a), client: a)
        try #require(held.wait(timeout: .now() + 30) == .success, "the approval's rebuild began")
        var passed: [RandomDump.Usage] = []
        for n in [1, 40, 7] {
            let e = AppendTests.randomEvents(rig.dump, client: a, day: newest, n, &r)
            #expect(try AppendTests.post(rig, e.body, client: a.description).status == 200, "events pass the held rebuild")
            passed += e.rows
        }
        #expect(flip.wait(0.3) == nil, "the approval waits for its rebuild")
        dump.usage += passed
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "events past a held rebuild, the approval not yet served")

        // A backdated row the client lacks waits behind the rebuild; the newest day's events after it pass.
        let users = dump.users.filter { $0.client == a }.map(\.id), apps = dump.apps.filter { $0.client == a }.map(\.id)
        let heldRows = Set(dump.usage.filter { $0.client == a }.map { "\($0.user) \($0.app) \($0.day)" })
        let firstDay = try #require(dump.usage.filter { $0.client == a }.map(\.day).min())
        let (u, p) = try #require(users.lazy.flatMap { u in apps.lazy.map { (u, $0) } }.first { !heldRows.contains("\($0.0) \($0.1) \(firstDay)") })
        let backdated = Pending(rig, "[" + AppendTests.event(u, p, firstDay.description) + "]", client: a)
        try Self.waitLogged(rig, sequence + 5)
        let e = AppendTests.randomEvents(rig.dump, client: a, day: newest, 12, &r)
        #expect(try AppendTests.post(rig, e.body, client: a.description).status == 200, "events pass after a parked backdated row")
        passed += e.rows
        #expect(backdated.wait(0.3) == nil, "the backdated row waits")

        // The next day's first rows wait, and the newest day's events after them too.
        let next = AppendTests.randomEvents(rig.dump, client: a, day: newest.adding(1), 9, &r)
        let nextPending = Pending(rig, next.body, client: a)
        try Self.waitLogged(rig, sequence + 7)
        let late = AppendTests.randomEvents(rig.dump, client: a, day: newest, 6, &r)
        let latePending = Pending(rig, late.body, client: a)
        try Self.waitLogged(rig, sequence + 8)
        #expect(nextPending.wait(0.3) == nil && latePending.wait(0.3) == nil, "batches after the next day's wait")

        release.signal()
        #expect(flip.wait() == 200 && backdated.wait() == 200 && nextPending.wait() == 200 && latePending.wait() == 200)
        flipped.usage += passed + next.rows + late.rows
        flipped.usage.append(RandomDump.Usage(client: a, user: u, app: p, day: firstDay))
        #expect(rig.writer.store!.client(a)!.usage!.newestDay == newest.adding(1))
        try DirectoryAppendTests.compare(rig.writer, flipped, &r, "after the rebuilds, every batch served")

        let served = rig.rows()
        rig.shutdown()
        let again = try AppendTests.rig(name, seed: 87, wal: rig.wal, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { again.shutdown() }
        #expect(again.rows() == served)
        try DirectoryAppendTests.compare(again.writer, flipped, &r, "after a restart from the log")
    }

    /// When the served client changes otherwise while events pass its rebuild — here another
    /// client's batch renames a catalog application one of its apps uses, which rebuilds it on
    /// the commit thread — the rebuild's install cannot take the events it let past (another
    /// base): it runs again from what is served, with every later batch of the client waiting
    /// behind it, and every batch is served in the end.
    @Test func aRebuildOvertakenRunsAgain() throws {
        let rig = try AppendTests.rig("rebuild-again", seed: 89, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { rig.shutdown() }
        var r = SeededRandom(seed: 89)
        let held = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), started = Mutex(0)
        rig.writer.rebuildStarted.withLock { $0 = {
            guard started.withLock({ n in defer { n += 1 }; return n }) == 0 else { return }
            held.signal()
            release.wait()
        } }
        defer { release.signal() }
        let a = rig.client, b = try #require(rig.dump.clients.first { $0.id != a }).id
        let newest = try #require(rig.writer.store?.client(a)?.usage?.newestDay)
        var dump = rig.dump
        let flip = Pending(rig, try Self.flipApproval(&dump, client: a), client: a)
        try #require(held.wait(timeout: .now() + 30) == .success, "the approval's rebuild began")
        let before = AppendTests.randomEvents(rig.dump, client: a, day: newest, 20, &r)
        #expect(try AppendTests.post(rig, before.body, client: a.description).status == 200, "events pass the held rebuild")
        // Another client renames the catalog application of one of A's apps.
        let i = try #require(dump.catalog.indices.first { i in dump.apps.contains { $0.catalog == dump.catalog[i].id && $0.client == a } })
        dump.catalog[i].name += " (renamed)"
        let c = dump.catalog[i]
        let rename = DirectoryAppendTests.body([("catalog_applications", [DirectoryAppendTests.object([
            ("id", c.id), ("canonical_name", c.name), ("logo", c.logo), ("type", c.type), ("category_id", c.category), ("vendor_id", c.vendor)])])])
        #expect(try AppendTests.post(rig, rename, client: b.description).status == 200)
        let after = AppendTests.randomEvents(rig.dump, client: a, day: newest, 15, &r)
        #expect(try AppendTests.post(rig, after.body, client: a.description).status == 200, "events pass the held rebuild")
        #expect(flip.wait(0.3) == nil)
        release.signal()
        #expect(flip.wait() == 200)
        #expect(started.withLock { $0 } == 2, "the rebuild ran again from what is served")
        dump.usage += before.rows + after.rows
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a rebuild overtaken by a catalog change")
    }

    /// An app's approval flipped and flipped back, applied together with a new user — one commit
    /// group, or the log replayed at a start — changes no class: each id's last row counts, the
    /// client keeps its index, and it answers as the dump with the new user. (The upsert checked
    /// every row against the held app, and the server stopped on a precondition replaying such a
    /// log: found by `CrashTests` once it flipped approvals.)
    @Test func aFlipAndItsFlipBackTogetherChangeNoClass() throws {
        let rig = try AppendTests.rig("flip-back", seed: 91, tailMinRows: 0, mergeMinRows: 1_000_000)
        defer { rig.shutdown() }
        var dump = rig.dump
        var r = SeededRandom(seed: 91)
        let a = rig.client
        let store = try #require(rig.writer.store)
        var flipped = dump
        let flip = try Self.flipApproval(&flipped, client: a)
        let app = try #require(dump.apps.first { $0.client == a })
        let hire = RandomDump.User(id: r.uuid(), client: a, email: "flip-back@example.com", displayName: nil, isActive: true, role: nil, createdAt: nil)
        dump.users.append(hire)
        let back = DirectoryAppendTests.body([
            ("apps", [DirectoryAppendTests.appRow(app)]),
            ("users", [DirectoryAppendTests.object([("id", hire.id), ("email", hire.email), ("is_active", true)])])])
        let batches = try [flip, back].map { try AppendBody.parse(client: a, body: Array($0.utf8), store: store) }
        let next = AppendBody.apply([(store.walSequence + 1, batches[0]), (store.walSequence + 2, batches[1])], onto: store, tailMinRows: 0)
        let before = try #require(store.client(a)?.usage), after = try #require(next.client(a)?.usage)
        #expect((after.base ?? after) === (before.base ?? before), "no rebuild: the same index")
        try DirectoryAppendTests.compare(StoreWriter(serving: next), dump, &r, "a flip and its flip back with a new user")
    }
}
