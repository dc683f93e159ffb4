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
            for _ in 0..<500 {
                let now = try served()
                if let u = now.usage, (u.base ?? u) !== old { return now }
                usleep(10_000)
            }
            Issue.record("no new base was served")
            return try served()
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
}
