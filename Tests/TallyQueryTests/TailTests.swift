import Foundation
import Testing
import TallyGenerate
import TallyQuery
@testable import TallyStorage
import TallyTestSupport

/// Rows appended on a client's newest day go to a tail beside its immutable usage index
/// (``UsageTail``; docs/APPENDS.md, "the tail"): every query answers as the brute-force
/// reference over all rows, and every structure the query layer reads equals that of the client
/// rebuilt whole from the same rows.
@Suite struct TailTests {
    /// Random batches on each client's newest day — rows the base holds already, rows of users
    /// with no activity yet, new (user, app) pairs, rows repeated across batches — and, from the
    /// second round on, on a day after its base's last day (the next, or one after a day or two
    /// without rows: a new day's first rows, with late rows of the day before mixed in: two
    /// days in the tail), in rounds; after each round every
    /// client's structures are compared with its rebuild (and with a merge that keeps the next
    /// day in the tail) and random queries (filters, departments, periods ending on either day
    /// or not) with the reference.
    @Test(arguments: [UInt64(4), 5])
    func newestDayRowsAnswerAsTheReference(seed: UInt64) throws {
        var (dump, store) = try Fixtures.randomStore(seed: seed, allClasses: seed == 4)
        var r = SeededRandom(seed: seed &* 31)
        for round in 0..<5 {
            var replaced: [ClientStore] = []
            // The share of each batch's rows on the day after the base's last day.
            let nextShare = [0, 0.5, 0.9, 0.3, 0.6][round]
            for c in store.clients {
                guard let usage = c.usage else { continue }
                // The tail's next day: the day after the base's last, or the first after one or
                // two days without rows (kept once the tail has rows on it).
                let day = (usage.base ?? usage).newestDay
                let nextDay = usage.tail.flatMap { $0.hasNext ? day.adding($0.nextDay - $0.day) : nil }
                    ?? day.adding(Int.random(in: 1...3, using: &r))
                // Rows the client holds on that day: some are sent again (the tail drops them).
                let held = dump.usage.filter { $0.client == c.info.id && $0.day == day }
                var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
                for _ in 0..<Int.random(in: 1...60, using: &r) {
                    let u: UInt32, a: UInt32
                    if let h = held.randomElement(using: &r), r.chance(0.2) {
                        (u, a) = (c.userIndex[h.user]!, c.appIndex[h.app]!)
                    } else if let prev = zip(us, ap).map({ $0 }).randomElement(using: &r), r.chance(0.1) {
                        (u, a) = prev
                    } else {
                        (u, a) = (UInt32.random(in: 0..<UInt32(c.users.count), using: &r), UInt32.random(in: 0..<UInt32(c.apps.count), using: &r))
                    }
                    let d = r.chance(nextShare) ? nextDay : day
                    us.append(u)
                    ap.append(a)
                    ds.append(d.raw)
                    dump.usage.append(RandomDump.Usage(client: c.info.id, user: c.users[Int(u)].id, app: c.apps[Int(a)].id, day: d))
                }
                // Rows of older days the client holds, sent again: they change nothing.
                let older = dump.usage.filter { $0.client == c.info.id && $0.day < day }
                var heldUs: [UInt32] = [], heldAp: [UInt32] = [], heldDs: [Int32] = []
                for _ in 0..<Int.random(in: 0...8, using: &r) {
                    guard let h = older.randomElement(using: &r) else { break }
                    heldUs.append(c.userIndex[h.user]!)
                    heldAp.append(c.appIndex[h.app]!)
                    heldDs.append(h.day.raw)
                }
                if !heldUs.isEmpty {
                    #expect(c.appending(users: heldUs, apps: heldAp, days: heldDs, tailMinRows: 0) === c, "seed \(seed) round \(round): held rows change nothing")
                }
                let at = Int.random(in: 0...us.count, using: &r)
                us.insert(contentsOf: heldUs, at: at)
                ap.insert(contentsOf: heldAp, at: at)
                ds.insert(contentsOf: heldDs, at: at)
                let next = c.appending(users: us, apps: ap, days: ds, tailMinRows: 0)
                #expect(next.usage?.tail != nil, "seed \(seed) round \(round): the rows went to a tail")
                let whole = next.merged(extrasMinRows: seed == 4 ? 0 : nil)
                try Self.expectSameStructures(next, whole, "seed \(seed) round \(round) client \(c.info.name)", &r)
                if let tail = next.usage?.tail, tail.hasNext && tail.nextRows < tail.rowCount {
                    // A merge that folds the base's last day in and keeps the next day's rows in the tail.
                    let kept = next.merged(extrasMinRows: seed == 4 ? 0 : nil, keepingNextDay: true)
                    #expect(kept.usage?.tail?.rowCount == tail.nextRows && kept.usage?.base?.newestDay == day,
                            "seed \(seed) round \(round): the next day's rows are the merged client's tail")
                    try Self.expectSameStructures(kept, whole, "seed \(seed) round \(round) client \(c.info.name), next day kept", &r)
                }
                replaced.append(next)
            }
            store = store.replacing(replaced, walSequence: 0)
            try EquivalenceTests().check(dump, store, seed: seed &* 100 &+ UInt64(round), queries: 250)
            // D's pages read the pairs on their own paths (bounds by pair count, visits by bound,
            // counts by last day): every page of random lists, to the newest day and not.
            let s = seed &* 10 &+ UInt64(round)
            let paged = try UserPagesTests.checkPagesToTheNewestDay(dump, store, seed: s, queries: 25)
                + UserPagesTests.checkPages(dump, store, seed: s, sort: [.apps, .activeDays, .name][round % 3], queries: 25)
            #expect(paged > 100, "round \(round): only \(paged) rows paged through")
        }
        // A row of a third day (past the tail's next day) rebuilds the client.
        let twoDays = try #require(store.clients.first { $0.usage?.tail?.hasNext == true })
        let past = twoDays.usage!.newestDay.adding(1)
        let moved = twoDays.appending(users: [0], apps: [0], days: [past.raw], tailMinRows: 0)
        #expect(moved.usage?.tail == nil && moved.usage!.newestDay == past, "a row of a third day rebuilds")
        // A row of another day the client lacks rebuilds it, the tail's rows in it.
        let c = try #require(store.clients.first { $0.usage?.tail != nil })
        let day = c.usage!.firstDay
        let (u, a) = try #require((0..<UInt32(c.users.count)).lazy.flatMap { u in (0..<UInt32(c.apps.count)).lazy.map { (u, $0) } }
            .first { !c.holds(user: $0.0, app: $0.1, day: day.raw) })
        #expect(!dump.usage.contains { $0.client == c.info.id && $0.user == c.users[Int(u)].id && $0.app == c.apps[Int(a)].id && $0.day == day })
        let rebuilt = c.appending(users: [u], apps: [a], days: [day.raw], tailMinRows: 0)
        #expect(rebuilt.usage?.tail == nil && rebuilt.usage!.rowCount == c.usage!.rowCount + 1)
        #expect(rebuilt.holds(user: u, app: a, day: day.raw))
        dump.usage.append(RandomDump.Usage(client: c.info.id, user: c.users[Int(u)].id, app: c.apps[Int(a)].id, day: day))
        try EquivalenceTests().check(dump, store.replacing([rebuilt], walSequence: 0), seed: seed &* 1000, queries: 150)
    }

    /// ``ClientStore/holds(user:app:day:)`` against the dump's rows: every row held, and random
    /// (user, app, day) triples — days before, inside and after each client's span — held
    /// exactly when the dump has them.
    @Test func holdsIsWhatTheDumpHolds() throws {
        let (dump, store) = try Fixtures.randomStore(seed: 6)
        var r = SeededRandom(seed: 61)
        var checked = 0
        for c in store.clients {
            guard let usage = c.usage else { continue }
            let rows = Set(dump.usage.filter { $0.client == c.info.id }.map { "\($0.user) \($0.app) \($0.day.raw)" })
            for row in dump.usage where row.client == c.info.id {
                #expect(c.holds(user: c.userIndex[row.user]!, app: c.appIndex[row.app]!, day: row.day.raw))
            }
            for _ in 0..<400 {
                let u = UInt32.random(in: 0..<UInt32(c.users.count), using: &r), a = UInt32.random(in: 0..<UInt32(c.apps.count), using: &r)
                let d = usage.firstDay.raw + Int32.random(in: -2...Int32(usage.dayCount + 1), using: &r)
                let expected = rows.contains("\(c.users[Int(u)].id) \(c.apps[Int(a)].id) \(d)")
                #expect(c.holds(user: u, app: a, day: d) == expected, "client \(c.info.name) user \(u) app \(a) day \(d)")
                checked += expected ? 1 : 0
            }
        }
        #expect(checked > 20, "only \(checked) random triples were held")
    }

    /// ``DirectoryRows/changeNothing(in:catalog:)``: a client's own rows change nothing; a row
    /// with one field changed, an id the client lacks, a membership it lacks or a catalog row
    /// change something; only the last upsert of an id counts.
    @Test func directoryRowsSentAgainChangeNothing() throws {
        let (_, store) = try Fixtures.randomStore(seed: 7)
        let c = try #require(store.clients.first { !$0.users.isEmpty && !$0.departments.isEmpty && !$0.apps.isEmpty })
        let catalog = store.catalog
        var own = DirectoryRows()
        own.users = c.users
        own.departments = c.departments
        own.apps = c.apps.map { DirectoryRows.App(id: $0.id, catalogApp: catalog.applications[Int($0.catalogIndex)].id, isApproved: $0.isApproved, isFavorite: $0.isFavorite) }
        for u in 0..<c.users.count {
            for d in c.departments(ofUser: UInt32(u)) { own.memberships.append(.init(user: c.users[u].id, department: c.departments[Int(d)].id)) }
        }
        try #require(!own.memberships.isEmpty)
        #expect(own.changeNothing(in: c, catalog: catalog))
        #expect(DirectoryRows().changeNothing(in: c, catalog: catalog))
        func changed(_ what: String, _ edit: (inout DirectoryRows) -> Void) {
            var rows = own
            edit(&rows)
            #expect(!rows.changeNothing(in: c, catalog: catalog), "\(what) changes the directory")
        }
        changed("an email") { $0.users[0].email += "x" }
        changed("a display name") { $0.users[0].displayName = ($0.users[0].displayName ?? "") + "x" }
        changed("is_active") { $0.users[0].isActive.toggle() }
        changed("a role") { $0.users[0].role = ($0.users[0].role ?? "") + "x" }
        changed("created_at") { $0.users[0].createdAt = $0.users[0].createdAt == nil ? "2024-01-01 00:00:00" : nil }
        changed("a new user") { $0.users[0].id = UUID128(high: 1, low: 2) }
        changed("a department's name") { $0.departments[0].name += "x" }
        changed("a department's description") { $0.departments[0].description = ($0.departments[0].description ?? "") + "x" }
        changed("an approval") { $0.apps[0].isApproved.toggle() }
        changed("a favourite") { $0.apps[0].isFavorite.toggle() }
        changed("an app's catalog application") { rows in
            rows.apps[0].catalogApp = catalog.applications.first { $0.id != rows.apps[0].catalogApp }!.id
        }
        changed("a membership the client lacks") { rows in
            let u = (0..<c.users.count).first { c.departments(ofUser: UInt32($0)).count < c.departments.count }!
            let d = (0..<c.departments.count).first { !c.departments(ofUser: UInt32(u)).contains(UInt32($0)) }!
            rows.memberships.append(.init(user: c.users[u].id, department: c.departments[d].id))
        }
        changed("a catalog row") { rows in
            let a = catalog.applications[0]
            rows.catalogApps = [.init(id: a.id, canonicalName: a.canonicalName, logo: a.logo, type: a.type, category: nil, vendor: nil)]
        }
        changed("a changed row after the held one") { rows in
            var u = rows.users[0]
            u.email += "x"
            rows.users.append(u)
        }
        var back = own
        var u = back.users[0]
        u.email += "x"
        back.users.insert(u, at: 0)  // changed first, then as held: the last upsert wins
        #expect(back.changeNothing(in: c, catalog: catalog), "only the last upsert of an id counts")
    }

    /// A tail past 65,536 rows is grouped by user off the commit thread, the result taken by a
    /// later version: at points along 200,000 random rows of the newest day, every structure the
    /// query layer reads (the pairs through ``PairView``: both grouped runs and chains) equals the
    /// client rebuilt whole.
    @Test func aLargeTailGroupedInTheBackgroundReadsAsTheRebuild() throws {
        let (_, builder) = SyntheticClient.make(SyntheticShape(users: 1_500, apps: 400, days: 40, seed: 9))
        var client = builder.build()
        let day = client.usage!.newestDay.raw
        var r = SeededRandom(seed: 91)
        var sm = SplitMix64(seed: 92)
        var largestGrouped = 0, checkedBothRuns = 0, oldRuns = Set<Int>()
        for batch in 0..<200 {
            var us: [UInt32] = [], ap: [UInt32] = []
            for _ in 0..<1_000 {
                us.append(UInt32(sm.next() % UInt64(client.users.count)))
                ap.append(UInt32(sm.next() % UInt64(client.apps.count)))
            }
            client = client.appending(users: us, apps: ap, days: [Int32](repeating: day, count: us.count), tailMinRows: 0, tailMaxRows: 1_000_000)
            let tail = try #require(client.usage?.tail, "batch \(batch): the rows went to a tail")
            largestGrouped = max(largestGrouped, tail.groupedRows)
            let runs = tail.groupedRuns
            oldRuns.insert(runs.old)
            if batch == 89 || batch == 159 || batch == 199 {
                if runs.old > 0 && runs.young > 0 && tail.rowCount > tail.groupedRows { checkedBothRuns += 1 }
                try Self.expectSameStructures(client, client.merged(),
                                              "batch \(batch), \(tail.rowCount) rows, \(runs.old) + \(runs.young) grouped", &r)
            }
            if batch % 10 == 9 { usleep(20_000) }  // time for a regrouping to land
        }
        #expect(client.usage!.tail!.rowCount > 65_536, "the tail reached \(client.usage!.tail!.rowCount) rows")
        #expect(largestGrouped > 65_536, "a version past 65,536 rows took a regrouping (largest grouped: \(largestGrouped))")
        #expect(oldRuns.filter { $0 > 0 }.count >= 2, "the old run was made again (old runs seen: \(oldRuns.sorted()))")
        #expect(checkedBothRuns > 0, "a compared version read an old run, a young run and chains")
    }

    /// What the query layer reads from `tailed`'s usage index and activity equals `whole`'s.
    static func expectSameStructures(_ tailed: ClientStore, _ whole: ClientStore, _ what: String, _ r: inout SeededRandom) throws {
        let t = try #require(tailed.usage), w = try #require(whole.usage)
        try #require(t.entityCount == w.entityCount && t.dayCount == w.dayCount && t.appCount == w.appCount, "\(what): shape")
        #expect(t.rowCount == w.rowCount, "\(what): rows \(t.rowCount) against \(w.rowCount)")
        #expect(t.firstSeenOffset == w.firstSeenOffset, "\(what): first days")
        #expect(tailed.activity.firstOffset == whole.activity.firstOffset && tailed.activity.lastOffset == whole.activity.lastOffset
                && tailed.activity.sortedFirst == whole.activity.sortedFirst, "\(what): user activity")
        #expect(tailed.usersByPairCount == whole.usersByPairCount, "\(what): users by pair count")
        let a = UserSet(domain: tailed.users.count), b = UserSet(domain: tailed.users.count)
        for e in 0..<t.entityCount {
            if e < t.appCount { #expect(t.lifetimeUsers(app: e) == w.lifetimeUsers(app: e), "\(what): lifetime users of app \(e)") }
            for d in 0..<t.dayCount where t.dayCardinality(entity: e, offset: d) != w.dayCardinality(entity: e, offset: d) {
                Issue.record("\(what): entity \(e) day \(d): \(t.dayCardinality(entity: e, offset: d)) against \(w.dayCardinality(entity: e, offset: d))")
                break
            }
            for k in 0..<t.levelSizes.count {
                // The rebuild's blocks: a tail's next day may start one past the base's.
                let blocks = w.starts(level: k).blockCount
                for block in 0..<blocks {
                    a.clear()
                    b.clear()
                    t.formUnion(entity: e, level: k, block: block, into: a)
                    w.formUnion(entity: e, level: k, block: block, into: b)
                    var same = a.count == b.count
                    a.forEach { if !b.contains($0) { same = false } }
                    #expect(same, "\(what): entity \(e) level \(k) block \(block): \(a.count) users against \(b.count)")
                    if let rt = t.cardinalityRow(level: k, block: block) {
                        #expect(Int(rt[e]) == b.count, "\(what): cardinality of entity \(e) level \(k) block \(block)")
                    }
                    if let mt = t.departmentMaskRow(level: k, block: block), let mw = w.departmentMaskRow(level: k, block: block) {
                        #expect((0..<t.departmentMaskWords).allSatisfy { t.mask(mt, entity: e, word: $0) == w.mask(mw, entity: e, word: $0) },
                                "\(what): masks of entity \(e) level \(k) block \(block)")
                    }
                }
            }
            // Range counts (where the tailed index has a table) against the rebuild's unions.
            for _ in 0..<8 {
                let hi = r.chance(0.6) ? t.dayCount - 1 : Int.random(in: 0..<t.dayCount, using: &r)
                let lo = max(0, hi - Int.random(in: 0..<RangeCounts.maxSpan, using: &r))
                guard let n = t.rangeCount(entity: e, lo, hi) else { continue }
                b.clear()
                for (k, block) in w.blocks(DayRange(w.firstDay.adding(lo), w.firstDay.adding(hi))) { w.formUnion(entity: e, level: k, block: block, into: b) }
                #expect(n == b.count, "\(what): range count of entity \(e) over \(lo)…\(hi): \(n) against \(b.count)")
            }
            a.clear()
            b.clear()
        }
        // The tailed version's pairs as its view reads them (the base's, the tail's rows on the
        // last days beside them) against the pair index of the client rebuilt whole.
        let tp = t.pairs, wp = w.pairs.base, L = t.dayCount - 1
        #expect(tp.pairCount == wp.pairCount, "\(what): pairs")
        #expect(tp.tailDay == t.tail?.day && (t.tail == nil || t.tail!.lastDay == L), "\(what): tail days")
        let B = t.tail?.day ?? L
        for u in 0..<tailed.users.count {
            struct Days: Equatable { var count = 0, half = 0, first = -1, last = -1 }
            var mine: [UInt32: Days] = [:], theirs: [UInt32: Days] = [:]
            let base = tp.base
            for p in Int(base.userStart[u])..<Int(base.userStart[u + 1]) {
                let (a, b) = base.bounds(pair: p)!
                mine[base.pairApp[p]] = Days(count: base.dayCount(pair: p, 0, L), half: base.dayCount(pair: p, L / 2, L), first: a, last: b)
            }
            var tailRows: [UInt32: [UsageTail.TailPair]] = [:]
            tp.forEachTailPair(user: u) { tailRows[$0.app, default: []].append($0) }
            for (a, rows) in tailRows {
                let inBase = base.pair(user: u, app: Int(a)).map { base.bounds(pair: $0)! }
                #expect(rows.count <= 2 && Set(rows.map(\.day)).count == rows.count, "\(what): user \(u) app \(a): one row a day")
                #expect(rows.filter { !$0.twin }.count == 1, "\(what): user \(u) app \(a): one row first, the other its twin")
                var d = mine[a] ?? Days()
                for row in rows {
                    #expect((row.basePair < 0) == (inBase == nil), "\(what): user \(u) app \(a): base pair \(row.basePair)")
                    #expect(Int(row.baseLast) == (inBase?.1 ?? -1), "\(what): user \(u) app \(a): base's last day \(row.baseLast)")
                    #expect(Int(row.day) == B || Int(row.day) == t.tail!.nextDay, "\(what): user \(u) app \(a): day \(row.day)")
                    #expect((inBase?.1 ?? -1) < Int(row.day), "\(what): user \(u) app \(a): the base holds the tail's day")
                    d.count += 1
                    if Int(row.day) >= L / 2 { d.half += 1 }
                    d.last = max(d.last, Int(row.day))
                    if inBase == nil { d.first = d.first < 0 ? Int(row.day) : min(d.first, Int(row.day)) }
                }
                mine[a] = d
            }
            for q in Int(wp.userStart[u])..<Int(wp.userStart[u + 1]) {
                let (a, b) = wp.bounds(pair: q)!
                theirs[wp.pairApp[q]] = Days(count: wp.dayCount(pair: q, 0, L), half: wp.dayCount(pair: q, L / 2, L), first: a, last: b)
            }
            #expect(mine == theirs, "\(what): pairs of user \(u)")
            #expect(tp.pairCount(user: u) == theirs.count, "\(what): pair count of user \(u)")
            // Counts over ranges, with and without a mask, against the rebuilt index.
            let mask = (0..<t.appCount).map { ($0 * 7 + u) % 3 != 0 }
            mask.withUnsafeBufferPointer { m in
                for lo in Set([0, L / 2, B - 1, B, B + 1, L - 1, L].filter({ $0 >= 0 && $0 <= L })) {
                    for hi in Set([L, L - 1, B, B + 1].map { max(lo, min(L, $0)) }) {
                        #expect(tp.appCount(user: u, lo, hi) == wp.appCount(user: u, lo, hi), "\(what): apps of user \(u) in \(lo)…\(hi)")
                        #expect(tp.appCount(user: u, lo, hi, mask: m) == wp.appCount(user: u, lo, hi, mask: m), "\(what): masked apps of user \(u)")
                        #expect(tp.lastDay(user: u, lo, hi, mask: mask) == wp.lastDay(user: u, lo, hi, mask: mask), "\(what): last day of user \(u)")
                        #expect(tp.firstDay(user: u, lo, hi, mask: mask) == wp.firstDay(user: u, lo, hi, mask: mask), "\(what): first day of user \(u)")
                    }
                }
            }
        }
    }
}
