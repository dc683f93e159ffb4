import Foundation
import Testing
@testable import TallyAPI
@testable import TallyQuery
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// The writer serves a merged client, a client rebuilt off the commit thread, and a reloaded
/// client with what the version before it had derived from its base on first use, made again on
/// the merge queue (the reload's thread for a reload)
/// (``DerivedSlot/warm(from:client:)``): a dashboard's first request after a merge does not
/// pay for it (docs/BENCHMARKS.md, "The first request after a merge"). The answers are checked
/// against the mirrored dump by TailAppendTests' and MergeWarmTests' comparisons.
@Suite(.serialized) struct MergeWarmAppendTests {
    /// A client's index: its base when it has a tail.
    static func index(_ c: ClientStore?) -> UsageIndex? { c?.usage.map { $0.base ?? $0 } }

    /// The served store once `client`'s index is no longer `old` (waits up to 5 s).
    static func servedWithNewIndex(_ rig: AppendTests.Rig, _ client: UUID128, from old: UsageIndex?) throws -> Store {
        for _ in 0..<500 {
            let now = try #require(rig.writer.store)
            if index(now.client(client)) !== old { return now }
            usleep(10_000)
        }
        Issue.record("no new index was served")
        return try #require(rig.writer.store)
    }

    @Test func mergesRebuildsAndReloadsServeWhatTheVersionBeforeThemDerived() throws {
        let rig = try AppendTests.rig("merge-warm", seed: 83, tailMinRows: 0)
        defer { rig.shutdown() }
        var r = SeededRandom(seed: 83)
        let client = rig.client
        let variant = AppClass.approved.rawValue
        func served() throws -> ClientStore { try #require(rig.writer.store?.client(client)) }
        /// D by active days under `is_approved=true`: user days of the approved apps, from the base.
        func askDByActiveDays() throws {
            let day = try served().usage!.newestDay
            let path = "/v2/clients/\(client)/analytics/apps/utilization/users?start_date=\(day.adding(-60))&end_date=\(day)"
                + "&granularity=weekly&is_approved=true&sort_by=active_days"
            #expect(try HTTPTestClient(port: rig.server.port).request("GET", path, token: AppendTests.all).status == 200)
        }
        func waitForNewBase(from old: UsageIndex) throws -> ClientStore {
            try #require(Self.servedWithNewIndex(rig, client, from: old).client(client))
        }
        // Newest-day rows into a tail; the query derives from the tail's base.
        let day = try served().usage!.newestDay
        #expect(try AppendTests.post(rig, AppendTests.randomEvents(rig.dump, client: client, day: day, 20, &r).body).status == 200)
        let tailed = try served()
        let base = try #require(tailed.usage?.base, "the rows went to a tail")
        #expect(tailed.baseDerived.existing(UserDays.self, variant: variant) == nil)
        try askDByActiveDays()
        #expect(tailed.baseDerived.existing(UserDays.self, variant: variant) != nil)
        // A merge: the merged base holds them before any request.
        rig.writer.mergeNow()
        let merged = try waitForNewBase(from: base)
        #expect(merged.baseDerived.existing(UserDays.self, variant: variant) != nil, "the merge made them again")
        // A backdated row: rebuilt off the commit thread, with them too.
        let mergedBase = merged.usage!.base ?? merged.usage!
        let back = AppendTests.randomEvents(rig.dump, client: client, day: day.adding(-3), 1, &r)
        #expect(try AppendTests.post(rig, back.body).status == 200)
        let rebuilt = try waitForNewBase(from: mergedBase)
        #expect(rebuilt.baseDerived.existing(UserDays.self, variant: variant) != nil, "the rebuild made them again")
        // Values never derived are not made.
        #expect(rebuilt.baseDerived.existing(UserDays.self, variant: AppClass.ai.rawValue) == nil)
        // A reload (the dump, the log replayed onto it): the served client has them too.
        _ = try rig.writer.reload(nil)
        let reloaded = try served()
        #expect((reloaded.usage?.base ?? reloaded.usage) !== (rebuilt.usage?.base ?? rebuilt.usage), "a new base")
        #expect(reloaded.baseDerived.existing(UserDays.self, variant: variant) != nil, "the reload made them again")
        #expect(reloaded.baseDerived.existing(UserDays.self, variant: AppClass.ai.rawValue) == nil)
    }

    /// The memory of a replaced version is given back (``MemoryReclaimer``: a heap trim) only when
    /// an index was let go — a merge, a rebuild, a reload — not after an append into a tail or a
    /// rename, which keep it (``StoreWriter/freesIndexes(_:keptBy:)``).
    @Test func onlyVersionsThatLetAnIndexGoAreTrimmedFor() throws {
        let rig = try AppendTests.rig("trim-watch", seed: 89, tailMinRows: 0)
        defer { rig.shutdown() }
        var r = SeededRandom(seed: 89)
        let client = rig.client
        func store() throws -> Store { try #require(rig.writer.store) }
        func index(_ s: Store) -> UsageIndex? { Self.index(s.client(client)) }
        func waitForNewIndex(from old: Store) throws -> Store { try Self.servedWithNewIndex(rig, client, from: index(old)) }
        let s0 = try store(), day = try #require(s0.client(client)?.usage?.newestDay)
        #expect(!StoreWriter.freesIndexes(s0, keptBy: s0))
        // Newest-day rows: a tail beside the same index.
        #expect(try AppendTests.post(rig, AppendTests.randomEvents(rig.dump, client: client, day: day, 20, &r).body).status == 200)
        let s1 = try store()
        #expect(s1.client(client)?.usage?.tail != nil && index(s1) === index(s0))
        #expect(!StoreWriter.freesIndexes(s0, keptBy: s1))
        // A rename keeps the index too.
        let user = try #require(rig.dump.users.first { $0.client == client })
        let rename = DirectoryAppendTests.body([("users", [DirectoryAppendTests.object([
            ("id", user.id), ("email", "renamed-" + user.email), ("display_name", user.displayName), ("is_active", user.isActive),
            ("role", user.role), ("created_at", user.createdAt)])])])
        #expect(try AppendTests.post(rig, rename).status == 200)
        let s2 = try store()
        #expect(s2 !== s1 && index(s2) === index(s0))
        #expect(!StoreWriter.freesIndexes(s1, keptBy: s2))
        // A merge lets the old index go.
        rig.writer.mergeNow()
        let s3 = try waitForNewIndex(from: s2)
        #expect(StoreWriter.freesIndexes(s2, keptBy: s3))
        // A backdated row rebuilds the client: so does its rebuild.
        let back = AppendTests.randomEvents(rig.dump, client: client, day: day.adding(-3), 1, &r)
        #expect(try AppendTests.post(rig, back.body).status == 200)
        let s4 = try waitForNewIndex(from: s3)
        #expect(StoreWriter.freesIndexes(s3, keptBy: s4))
        // A store without one of the clients lets its index go.
        let others = Store(catalog: s4.catalog, clients: s4.clients.filter { $0.info.id != client })
        #expect(StoreWriter.freesIndexes(s4, keptBy: others))
        #expect(!StoreWriter.freesIndexes(others, keptBy: s4))
    }

    /// Once appends stop, the commit thread has the heap trimmed (``StoreWriter/idleTrimSeconds``
    /// quiet after a publish: what the stream's parse and apply left free goes back to the
    /// system) — once per quiet spell, not while batches keep coming.
    @Test func theHeapIsTrimmedWhenAppendsStop() throws {
        let rig = try AppendTests.rig("idle-trim", seed: 91, tailMinRows: 0)
        defer { rig.shutdown() }
        var r = SeededRandom(seed: 91)
        let client = rig.client
        let day = try #require(rig.writer.store?.client(client)?.usage?.newestDay)
        func trims() -> Int { rig.writer.idleTrims.load(ordering: .relaxed) }
        func trimmed(after n: Int) -> Bool {
            for _ in 0..<1_000 where trims() == n { usleep(10_000) }
            return trims() > n
        }
        func append() throws {
            #expect(try AppendTests.post(rig, AppendTests.randomEvents(rig.dump, client: client, day: day, 5, &r).body).status == 200)
        }
        // The load published the first version: trimmed once quiet, then not again while nothing is published.
        #expect(trimmed(after: 0))
        let quiet = trims()
        usleep(2_500_000)
        #expect(trims() == quiet, "nothing was published since the trim")
        // Batches every 0.4 s (under the quiet time): no trim among them; one after the last.
        for _ in 0..<8 {
            try append()
            usleep(400_000)
        }
        #expect(trims() == quiet, "none while batches come")
        #expect(trimmed(after: quiet), "one once they stop")
    }

    /// A version replaced by a merge is kept a moment on a queue of its own and freed there
    /// (``StoreWriter/releaseLater(_:)``), not on the commit thread: it is still freed, and its
    /// index with it, once nothing reads it. (Which thread frees it is not checked here.)
    @Test func aVersionAMergeReplacedIsFreed() throws {
        let rig = try AppendTests.rig("release-later", seed: 89, tailMinRows: 0)
        defer { rig.shutdown() }
        var r = SeededRandom(seed: 90)
        let client = rig.client
        weak var replaced: Store?
        weak var replacedIndex: UsageIndex?
        try {
            let day = try #require(rig.writer.store?.client(client)?.usage?.newestDay)
            #expect(try AppendTests.post(rig, AppendTests.randomEvents(rig.dump, client: client, day: day, 20, &r).body).status == 200)
            let before = try #require(rig.writer.store)
            replaced = before
            replacedIndex = Self.index(before.client(client))
            rig.writer.mergeNow()
            _ = try Self.servedWithNewIndex(rig, client, from: Self.index(before.client(client)))
        }()
        for _ in 0..<1_000 where replaced != nil || replacedIndex != nil { usleep(10_000) }
        #expect(replaced == nil, "the replaced version was freed")
        #expect(replacedIndex == nil, "and its index")
    }
}
