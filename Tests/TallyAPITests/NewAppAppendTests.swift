import Foundation
import Synchronization
import Testing
@testable import TallyAPI
import TallyGenerate
import TallyIngest
@testable import TallyQuery
import TallyServer
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// New apps — an app a client's discovery found today, with its first events — take one of the
/// spare app slots of a large client's usage index instead of rebuilding it (docs/APPENDS.md,
/// "New apps in the tail"): after every batch every route answers as a store loaded from scratch
/// from the mirrored dump, the category- and approval-filtered ones asked of every new app's
/// category; merges reserve the slots again and take apps added while they ran; more new apps
/// than slots rebuild; a restart from a snapshot and the log answers the same.
@Suite(.serialized) struct NewAppAppendTests {
    @Test func newAppsGoIntoTheTailWithoutARebuild() throws {
        // A tail threshold of 0 rows: every client of the dump gets spare app slots.
        let rig = try AppendTests.rig("new-apps", seed: 93, tailMinRows: 0, mergeMinRows: 1_000_000, mergeAfterSeconds: 1_000)
        var running = true
        defer { if running { rig.shutdown() } }
        var dump = rig.dump
        var r = SeededRandom(seed: 93)
        let client = rig.client
        let rebuilds = Mutex(0)
        rig.writer.rebuildStarted.withLock { $0 = { rebuilds.withLock { $0 += 1 } } }
        func served() -> ClientStore { rig.writer.store!.client(client)! }
        func base() -> UsageIndex { served().usage!.base ?? served().usage! }
        func clientApps() -> Int { dump.apps.filter { $0.client == client }.count }
        try #require(base().appSlots == clientApps() + ClientStore.spareApps, "spare slots reserved at load")
        var categories: Set<UUID128?> = []  // the categories of the new apps
        var approvals: Set<Bool> = []
        /// Every dashboard route under each new app's category and each approval, over the last
        /// week and the last year (sorted every way the route sorts), against the store loaded
        /// from scratch; and random queries of every route, the directory and insight reports.
        func compare(_ when: String) throws {
            try DirectoryAppendTests.compare(rig.writer, dump, &r, when)
            var filters: [[(String, String)]] = [[]]
            for c in categories { if let c { filters.append([("category_ids", c.description)]) } }
            for a in approvals { filters.append([("is_approved", a ? "true" : "false")]) }
            try DirectoryAppendTests.compareFiltered(rig.writer, dump, client: client, filters: filters, days: [7, 366], when)
        }
        /// The catalog's applications by whether the client has an app in their category (a
        /// category class of its index) or not (a category new to it). Apps may share one.
        func catalogApps() -> (known: [RandomDump.CatalogApp], newCategory: [RandomDump.CatalogApp]) {
            let categoryOf = Dictionary(uniqueKeysWithValues: dump.catalog.map { ($0.id, $0.category) })
            let held = Set(dump.apps.filter { $0.client == client }.map { categoryOf[$0.catalog]! })
            return (dump.catalog.filter { held.contains($0.category) }, dump.catalog.filter { !held.contains($0.category) })
        }
        /// A batch of `count` new apps (of a category the client has, or a new one), events of
        /// them and of held apps by held users on the newest day (and the next when `nextDay`),
        /// at times a new user using them; `rebuild`: whether the batch is to rebuild the client.
        func newApps(_ n: Int, count: Int, newCategory: Bool, nextDay: Bool, events: Bool = true, rebuild: Bool = false,
                     merges: Bool = false) throws {
            let day = served().usage!.newestDay
            let users = dump.users.filter { $0.client == client }.map(\.id), held = dump.apps.filter { $0.client == client }.map(\.id)
            var apps: [String] = [], userRows: [String] = [], rows: [String] = []
            func event(_ u: UUID128, _ a: UUID128, _ d: Day) {
                dump.usage.append(RandomDump.Usage(client: client, user: u, app: a, day: d))
                rows.append(AppendTests.event(u, a, d.description))
            }
            let catalog = catalogApps()
            let pool = newCategory && !catalog.newCategory.isEmpty ? catalog.newCategory : catalog.known
            var added: [UUID128] = []
            for _ in 0..<count {
                let c = pool.randomElement(using: &r)!
                let a = RandomDump.App(id: r.uuid(), client: client, catalog: c.id, approved: r.chance(0.5), favorite: r.chance(0.3))
                dump.apps.append(a)
                added.append(a.id)
                categories.insert(c.category)
                approvals.insert(a.approved)
                apps.append(DirectoryAppendTests.object([("id", a.id), ("catalog_application_id", a.catalog), ("is_approved", a.approved),
                                                         ("is_favorite", a.favorite)]))
            }
            if events {
                for a in added {
                    for u in users.shuffled(using: &r).prefix(Int.random(in: 1...8, using: &r)) { event(u, a, day) }
                    if nextDay { event(users.randomElement(using: &r)!, a, day.adding(1)) }
                }
                for _ in 0..<Int.random(in: 0...20, using: &r) { event(users.randomElement(using: &r)!, held.randomElement(using: &r)!, day) }
                if r.chance(0.5) {
                    let u = RandomDump.User(id: r.uuid(), client: client, email: "app-user\(n)@example.com", displayName: "App user \(n)")
                    dump.users.append(u)
                    userRows.append(DirectoryAppendTests.object([("id", u.id), ("email", u.email), ("display_name", u.displayName), ("is_active", true)]))
                    event(u.id, added[0], day)
                }
            }
            let before = base(), count0 = rebuilds.withLock { $0 }
            let body = DirectoryAppendTests.body([("apps", apps), ("users", userRows), ("events", rows)].filter { !$0.1.isEmpty })
            let response = try AppendTests.post(rig, body)
            try #require(response.status == 200, "batch \(n): \(response.text)")
            if rebuild {
                #expect(base() !== before, "batch \(n): more new apps than spare slots rebuild the client")
            } else if merges {
                #expect(rebuilds.withLock { $0 } == count0, "batch \(n): no rebuild")
            } else {
                #expect(base() === before && rebuilds.withLock { $0 } == count0, "batch \(n): new apps beside the same index, no rebuild")
                #expect(served().usage!.appCount == clientApps() && served().appRoom == base().appSlots - clientApps(), "batch \(n): the apps take slots")
            }
            #expect(served().apps.count == clientApps(), "batch \(n): every app served")
        }
        func mergeAndWait(_ what: String) { NewUserAppendTests.mergeAndWait(rig.writer, client, what) }
        try newApps(0, count: 1, newCategory: false, nextDay: false)
        try compare("after a new app of a held category")
        try newApps(1, count: 2, newCategory: true, nextDay: false)
        try compare("after new apps of a new category")
        // An app alone, without an event: listed, with no usage.
        try newApps(2, count: 1, newCategory: false, nextDay: false, events: false)
        try compare("after an app without events")
        try newApps(3, count: 1, newCategory: false, nextDay: true)
        try compare("after a new app with rows of the next day")
        // A merge folds them into a new base, which has spare slots again.
        mergeAndWait("the first merge")
        #expect(base().appSlots == clientApps() + ClientStore.spareApps, "a merge reserves the slots again")
        try compare("after a merge")
        try newApps(4, count: 2, newCategory: true, nextDay: false)
        try compare("after new apps on the merged client")
        // A merge held after its rebuild while an app is added: installed with the app in one of
        // its own spare slots (a stream of discovery would otherwise keep every merge out).
        let (held, release) = TailAppendTests.holdFirstMerge(rig.writer)
        let beforeHeld = base()
        rig.writer.mergeNow()
        held.wait()
        try newApps(5, count: 1, newCategory: false, nextDay: false)
        release.signal()
        for _ in 0..<1_000 where base() === beforeHeld { usleep(10_000) }
        #expect(base() !== beforeHeld && served().apps.count == clientApps() && served().usage!.appCount == clientApps()
                    && served().appRoom == ClientStore.spareApps - 1, "the merge installed with the app added while it ran")
        try compare("after a merge installed with an app added while it ran")
        mergeAndWait("the next merge")
        try compare("after the next merge")
        #expect(rebuilds.withLock { $0 } == 0, "no rebuild for new apps")
        // More new apps than spare slots: a rebuild, whose index has the slots again.
        try newApps(6, count: ClientStore.spareApps + 1, newCategory: false, nextDay: false, rebuild: true)
        #expect(base().appSlots == clientApps() + ClientStore.spareApps, "a rebuild reserves the slots again")
        try compare("after more new apps than spare slots")
        // Half the slots taken: a merge starts by itself (held here after its rebuild). The
        // slots left are filled meanwhile; a batch with one more app is refused (503
        // merge_behind, nothing applied) until the merge is in, which takes the apps added while
        // it ran and brings 16 slots: then it is accepted.
        let full = base()
        let (heldHalf, releaseHalf) = TailAppendTests.holdFirstMerge(rig.writer)
        try newApps(9, count: ClientStore.spareApps / 2, newCategory: false, nextDay: false, merges: true)
        #expect(heldHalf.wait(timeout: .now() + 30) == .success, "half the slots taken start a merge")
        let appsAtMerge = served().apps.count
        try newApps(10, count: served().appRoom, newCategory: false, nextDay: false, events: false)  // (no new user: the merge keeps its users)
        let extra = RandomDump.App(id: r.uuid(), client: client, catalog: dump.catalog[0].id, approved: true, favorite: false)
        let extraUser = dump.users.first { $0.client == client }!.id, day = served().usage!.newestDay
        let extraBody = DirectoryAppendTests.body([
            ("apps", [DirectoryAppendTests.object([("id", extra.id), ("catalog_application_id", extra.catalog), ("is_approved", true), ("is_favorite", false)])]),
            ("events", [AppendTests.event(extraUser, extra.id, day.description)])])
        let rowsBefore = rig.rows(), appsBefore = served().apps.count
        let refused = try AppendTests.post(rig, extraBody)
        #expect(refused.status == 503 && refused.text.contains("merge_behind") && refused.header("Retry-After") == "1", "\(refused.status) \(refused.text)")
        #expect(rig.rows() == rowsBefore && served().apps.count == appsBefore && base() === full, "nothing of the refused batch applied")
        releaseHalf.signal()
        for _ in 0..<3_000 where base() === full { usleep(10_000) }
        #expect(base() !== full && served().apps.count == clientApps() && served().appRoom >= ClientStore.spareApps - (clientApps() - appsAtMerge),  // (or 16: the next merge, started at once)
                "the merge installed with the apps added while it ran")
        let accepted = try AppendTests.post(rig, extraBody)
        #expect(accepted.status == 200, "after the merge: \(accepted.text)")
        dump.apps.append(extra)
        dump.usage.append(RandomDump.Usage(client: client, user: extraUser, app: extra.id, day: day))
        try compare("after the merge that half the slots taken started")
        // A snapshot while new apps are in the tail, and a restart from it and the log.
        try newApps(7, count: 1, newCategory: true, nextDay: false)
        let snapshot = NSTemporaryDirectory() + "tally-new-apps-\(getpid()).tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        #expect(try AppendTests.saveSnapshot(rig.server.port, snapshot).status == 200)
        try newApps(8, count: 1, newCategory: false, nextDay: false)
        let rows = rig.rows()
        rig.shutdown()
        running = false
        let again = try AppendTests.rig("new-apps", seed: 93, wal: rig.wal, snapshot: snapshot, tailMinRows: 0,
                                        mergeMinRows: 1_000_000, mergeAfterSeconds: 1_000)
        defer { again.shutdown() }
        #expect(again.rows() == rows)
        let restored = try #require(again.writer.store!.client(client)?.usage)
        #expect((restored.base ?? restored).appSlots - (restored.base ?? restored).appCount <= ClientStore.spareApps
                    && restored.appCount == clientApps(), "the snapshot keeps the slots; the log's app takes one")
        try DirectoryAppendTests.compare(again.writer, dump, &r, "after a restart from a snapshot and the log")
    }

    /// On a client with every structure a large one keeps (category classes, department masks,
    /// range tables, cardinality rows), rounds of new apps — of a category it has, of one new to
    /// it, without a category, of the AI category; approved or not — and rows of theirs and of
    /// held apps on the newest day and the next: every dashboard route, unfiltered and under each
    /// new app's category and each approval, answers as the same client rebuilt whole
    /// (``ClientStore/merged()``), byte for byte. The category unions of the approval and AI
    /// classes are derived before the first app is added, so that they are read with apps they
    /// do not list.
    @Test func newAppsOfALargerClientAnswerAsItsRebuild() throws {
        var (catalog, builder) = SyntheticClient.make(SyntheticShape(users: 1_500, apps: 60, days: 40, seed: 14))
        builder.spareAppsMinRows = 0
        var client = builder.build()
        var r = SeededRandom(seed: 1_414)
        var sm = SplitMix64(seed: 15)
        try #require(!client.usage!.categoryClasses.isEmpty && client.usage!.hasDepartmentMasks, "the large clients' structures")
        try #require(client.appRoom == ClientStore.spareApps)
        // A category no app of the client has, with an application of its own.
        let fresh = Int32(catalog.categories.count)
        catalog = Catalog(categories: catalog.categories + [CategoryInfo(id: r.uuid(), name: "Fresh", isAI: false)], vendors: catalog.vendors,
                          applications: catalog.applications + [CatalogAppInfo(id: r.uuid(), canonicalName: "Fresh app", logo: nil, type: "saas",
                                                                               category: fresh, vendor: nil)])
        let held = Set(client.apps.map(\.category))
        let pools: [[CatalogAppInfo]] = [
            catalog.applications.filter { $0.category != nil && $0.category != 0 && held.contains($0.category) },
            catalog.applications.filter { $0.category == fresh },
            catalog.applications.filter { $0.category == nil },
            catalog.applications.filter { $0.category == 0 },  // AI
        ]
        try #require(pools.allSatisfy { !$0.isEmpty })
        for c in [AppClass.approved, .unapproved, .ai] { _ = CategoryClassUnions.of(client, client.usage!, c) }
        let base = client.usage!
        var categories: Set<Int32?> = []
        for round in 0..<4 {
            var rows = DirectoryRows()
            for k in 0..<Int.random(in: 1...3, using: &r) {
                let c = pools[(round + k) % pools.count].randomElement(using: &r)!
                rows.apps.append(DirectoryRows.App(id: r.uuid(), catalogApp: c.id, isApproved: r.chance(0.5), isFavorite: r.chance(0.3)))
                categories.insert(c.category)
            }
            #expect(rows.effect(on: client, catalog: catalog) == .organization, "round \(round): new apps within the spare slots")
            let before = client.apps.count
            client = client.withOrganization(rows, catalog: catalog).client
            #expect(client.apps.count == before + rows.apps.count && client.usage!.appCount == client.apps.count, "round \(round)")
            var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
            let day = (client.usage!.base ?? client.usage!).newestDay
            for _ in 0..<2_000 {
                // A quarter of the rows the new apps' (this round's and earlier), the rest any app's;
                // a third on the next day after the first round.
                us.append(UInt32(sm.next() % UInt64(client.users.count)))
                ap.append(r.chance(0.25) ? UInt32(base.appCount + Int(sm.next() % UInt64(client.apps.count - base.appCount)))
                          : UInt32(sm.next() % UInt64(client.apps.count)))
                ds.append(round > 0 && r.chance(0.3) ? day.raw + 1 : day.raw)
            }
            client = client.appending(users: us, apps: ap, days: ds, tailMinRows: 0, tailMaxRows: 1_000_000)
            try #require(client.usage?.base === base, "round \(round): rows and apps beside the same index")
            let whole = client.merged()
            #expect(whole.appRoom == ClientStore.spareApps, "round \(round): the rebuild reserves the slots again")
            #expect(client.usage!.firstSeenOffset.prefix(client.apps.count) == whole.usage!.firstSeenOffset.prefix(client.apps.count),
                    "round \(round): first days")
            var filters: [[(String, String)]] = [[], [("is_approved", "true")], [("is_approved", "false")]]
            for c in categories {
                guard let c else { continue }
                filters.append([("category_ids", catalog.categories[Int(c)].id.description)])
                filters.append([("category_ids", catalog.categories[Int(c)].id.description), ("is_approved", "true")])
            }
            NewUserAppendTests.compareWithRebuild(client, whole, catalog: catalog, filters: filters,
                                                  lengths: [(1, .none), (7, .first), (30, .last), (41, .first)], "round \(round)")
        }
        // More new apps than the slots left: a rebuild.
        var many = DirectoryRows()
        for _ in 0...client.appRoom { many.apps.append(DirectoryRows.App(id: r.uuid(), catalogApp: pools[0][0].id, isApproved: true, isFavorite: false)) }
        #expect(many.effect(on: client, catalog: catalog) == .more, "more apps than spare slots rebuild")
        many.apps.removeLast()
        #expect(many.effect(on: client, catalog: catalog) == .organization, "as many apps as the slots left do not")
    }
}
