import Dispatch
import Testing
@testable import TallyStorage

/// Range tables against a brute-force distinct count over every range, on seeded random
/// per-day user sets: short histories, histories longer than the 366-day span, and counts of
/// 12 bits (under 4,096 users), 16 bits and 32 bits (65,536 users or more), by the client's
/// users or each entity's own.
@Suite struct RangeCountsTests {
    /// The bitmap tests' seeded generator.
    typealias RNG = BitmapTests.RNG

    /// Per entity, per day, the users (ascending). Entity 1 is empty; entity 2 is sparse.
    static func data(entities: Int, days: Int, users: Int, seed: UInt64) -> [[[UInt32]]] {
        var r = RNG(s: seed)
        return (0..<entities).map { e in
            // Each entity has a pool of regulars (most days) and occasional visitors.
            let regulars = (0..<min(users, 40)).map { _ in UInt32.random(in: 0..<UInt32(users), using: &r) }
            return (0..<days).map { _ in
                if e == 1 { return [] }
                var day = Set<UInt32>()
                if e != 2 { for u in regulars where Int.random(in: 0..<10, using: &r) < 7 { day.insert(u) } }
                for _ in 0..<Int.random(in: 0...(e == 2 ? 1 : 6), using: &r) {
                    day.insert(UInt32.random(in: 0..<UInt32(users), using: &r))
                }
                return day.sorted()
            }
        }
    }

    func check(entities: Int, days: Int, users: Int, seed: UInt64, stride: Int) {
        let d = Self.data(entities: entities, days: days, users: users, seed: seed)
        let rows = d.map { $0.reduce(0) { $0 + $1.count } }
        let t = RangeCounts(dayCount: days, userCount: users, entityRows: rows, minRowsPerEntry: 0) { e, day, users in
            users += d[e][day]
        }
        // Every entity with rows has a table; the empty one has none.
        #expect(t.tableCount == rows.filter { $0 > 0 }.count)
        #expect(!t.has(entity: 1))
        let span = min(days, 366)
        for e in 0..<entities where rows[e] > 0 {
            for lo in Swift.stride(from: 0, to: days, by: stride) {
                var seen = Set<UInt32>()
                for hi in lo..<days {
                    seen.formUnion(d[e][hi])
                    let got = t.count(entity: e, lo, hi)
                    if hi - lo < span {
                        #expect(got == seen.count, "entity \(e) range \(lo)…\(hi)")
                    } else {
                        #expect(got == nil, "ranges longer than the span have no entry")
                    }
                }
            }
        }
        #expect(t.count(entity: 0, 5, 4) == nil)
        #expect(t.count(entity: entities + 3, 0, 0) == nil)
    }

    /// Built on a lowered thread (a merge's, under `SCHED_IDLE`), the tables' parts are filled
    /// on threads of their own (``concurrentPerformInheriting(iterations:_:)``): the same counts.
    @Test func builtOnALoweredThread() {
        final class Box: @unchecked Sendable { var table: RangeCounts? }
        let (days, users) = (200, 3_000)
        let d = Self.data(entities: 7, days: days, users: users, seed: 4)
        let rows = d.map { $0.reduce(0) { $0 + $1.count } }
        let build: @Sendable () -> RangeCounts = {
            RangeCounts(dayCount: days, userCount: users, entityRows: rows, minRowsPerEntry: 0) { e, day, u in u += d[e][day] }
        }
        let lowered = Box(), done = DispatchSemaphore(value: 0)
        BackgroundThread(name: "test-range", priority: .idle).async {
            lowered.table = build()
            done.signal()
        }
        done.wait()
        let t = lowered.table!, reference = build()
        #expect(t.tableCount == reference.tableCount && t.tableCount == rows.filter { $0 > 0 }.count)
        for e in 0..<d.count {
            var seen = Set<UInt32>()
            for hi in 0..<days {
                seen.formUnion(d[e][hi])
                #expect(t.count(entity: e, 0, hi) == (rows[e] > 0 ? seen.count : nil), "entity \(e) range 0…\(hi)")
            }
            for lo in Swift.stride(from: 0, to: days, by: 13) {
                for hi in lo..<days { #expect(t.count(entity: e, lo, hi) == reference.count(entity: e, lo, hi)) }
            }
        }
    }

    @Test func shortHistory() { check(entities: 4, days: 40, users: 300, seed: 1, stride: 1) }

    @Test func historyLongerThanTheSpan() { check(entities: 3, days: 420, users: 2_000, seed: 2, stride: 7) }

    @Test func wideCounts() { check(entities: 3, days: 30, users: 70_000, seed: 3, stride: 1) }

    /// 16-bit counts: clients of 4,096 to 65,535 users (fewer take 12 bits, the tests above).
    @Test func sixteenBitCounts() { check(entities: 3, days: 45, users: 5_000, seed: 6, stride: 1) }

    /// 12-bit counts at their top: 4,095 users, every one active on the first day, so that every
    /// range from it counts 4,095; the tables' odd lengths (41 days: 861 entries) end on a
    /// padding entry.
    @Test func twelveBitCountsAtTheirTop() {
        let users = 4_095, days = 41
        let all = (0..<UInt32(users)).map { $0 }
        let t = RangeCounts(dayCount: days, userCount: users, entityRows: [users + days, 1], minRowsPerEntry: 0) { e, day, out in
            if e == 0 { out += day == 0 ? all : [UInt32(day)] } else if day == days - 1 { out += [7] }
        }
        for hi in 0..<days {
            #expect(t.count(entity: 0, 0, hi) == users)
            #expect(t.count(entity: 0, hi, hi) == (hi == 0 ? users : 1))
            #expect(t.count(entity: 1, 0, hi) == (hi == days - 1 ? 1 : 0))
        }
        #expect(t.count(entity: 1, days - 1, days - 1) == 1)
    }

    /// Each table as wide as its entity's users over the whole history, in bits: in one client
    /// of 70,000 users, tables of 7 bits (40 regulars and visitors: 126 users), 8 (exactly 255 users, all on the first
    /// day), 9 (exactly 256), 12 (exactly 4,095), 13 (exactly 4,096), 14 (9,000) and 17
    /// (70,000), every count exact. Without the entities' users every table takes the client's
    /// width.
    @Test func tablesOfEveryWidthInOneClient() {
        let users = 70_000, days = 30
        let regulars = Self.data(entities: 1, days: days, users: users, seed: 8)[0]
        func span(_ from: Int, _ count: Int) -> [UInt32] { (from..<min(users, from + count)).map { UInt32($0) } }
        let d: [[[UInt32]]] = [
            regulars,
            (0..<days).map { $0 == 0 ? span(0, 4_095) : span($0 * 7, 3) },
            (0..<days).map { $0 == 0 ? span(0, 4_096) : span($0 * 7, 3) },
            (0..<days).map { span($0 * 300, 300) },
            (0..<days).map { span($0 * 2_400, 2_400) },
            (0..<days).map { $0 == 0 ? span(0, 255) : span($0 * 7, 3) },
            (0..<days).map { $0 == 0 ? span(0, 256) : span($0 * 7, 3) },
        ]
        let lifetime = d.map { Set($0.joined()).count }
        #expect(lifetime == [126, 4_095, 4_096, 9_000, users, 255, 256])
        let rows = d.map { $0.reduce(0) { $0 + $1.count } }
        let entries = days * (days + 1) / 2
        for own in [true, false] {
            let t = RangeCounts(dayCount: days, userCount: users, entityRows: rows, entityUsers: own ? lifetime : nil,
                                minRowsPerEntry: 0) { e, day, out in out += d[e][day] }
            let bits = own ? [7, 12, 13, 14, 17, 8, 9] : [Int](repeating: 17, count: d.count)
            #expect(t.tablesByBits == (0...32).map { b in bits.filter { $0 == b }.count })
            #expect(t.byteCount == bits.reduce(0) { $0 + (entries * $1 + 7) / 8 } + RangeCounts.padding + d.count * 8)
            for e in d.indices {
                for lo in 0..<days {
                    var seen = Set<UInt32>()
                    for hi in lo..<days {
                        seen.formUnion(d[e][hi])
                        #expect(t.count(entity: e, lo, hi) == seen.count, "entity \(e), own widths \(own), range \(lo)…\(hi)")
                    }
                }
            }
        }
    }

    /// Counts of every width from 1 to 32 bits, packed and read back: random values, each
    /// width's largest among them, over lengths that end anywhere in a byte.
    @Test func packedCountsOfEveryWidthReadBack() {
        var r = RNG(s: 32)
        for bits in 1...32 {
            let top = UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(bits)) - 1)
            for count in [1, 7, 8, 9, 63, 64, 65, 1_000] {
                let values = (0..<count).map { k in k % 5 == 0 ? top : UInt32.random(in: 0...top, using: &r) }
                let out = UnsafeMutableRawPointer.allocate(byteCount: RangeCounts.bytes(entries: count, bits: bits) + RangeCounts.padding,
                                                           alignment: 8)
                defer { out.deallocate() }
                values.withUnsafeBufferPointer { RangeCounts.pack($0.baseAddress!, count: count, bits: bits, into: out) }
                let back = (0..<count).map { UInt32(RangeCounts.unpack(out, $0, bits: bits)) }
                #expect(back == values, "\(bits) bits, \(count) counts")
            }
        }
    }

    @Test func thresholdKeepsBusyEntitiesOnly() {
        let d = Self.data(entities: 4, days: 50, users: 500, seed: 4)
        let rows = d.map { $0.reduce(0) { $0 + $1.count } }
        // 50 days: 1,275 entries a table; a factor of 1 keeps the entities with that many rows.
        let t = RangeCounts(dayCount: 50, userCount: 500, entityRows: rows, minRowsPerEntry: 1) { e, day, users in
            users += d[e][day]
        }
        for e in 0..<4 { #expect(t.has(entity: e) == (rows[e] >= 1_275), "entity \(e): \(rows[e]) rows") }
        // Both sides of the threshold occur in this data.
        #expect(t.tableCount > 0 && t.tableCount < 3)
    }

    /// 32-bit counts (clients of 65,536 users or more) need twice the rows per entry, so that a
    /// table costs the same bytes per row at either width; the counts stay exact.
    @Test func wideCountsNeedTwiceTheRows() {
        let d = Self.data(entities: 4, days: 50, users: 500, seed: 5)
        // 50 days: 1,275 entries a table. The rows given decide which entities get one.
        let rows = [1_275, 2_549, 2_550, 0]
        for (users, want) in [(500, [true, true, true, false]), (70_000, [false, false, true, false])] {
            let t = RangeCounts(dayCount: 50, userCount: users, entityRows: rows, minRowsPerEntry: 1) { e, day, out in
                out += d[e][day]
            }
            for e in 0..<4 { #expect(t.has(entity: e) == want[e], "\(users) users, entity \(e)") }
            var seen = Set<UInt32>()
            for hi in 0..<50 {
                seen.formUnion(d[2][hi])
                #expect(t.count(entity: 2, 0, hi) == seen.count)
            }
        }
    }

    /// An entity listed in full (an AI app) gets its table at a sixteenth of the rows, and its
    /// counts are exact like any other's.
    @Test func listedEntitiesNeedFewerRows() {
        let busy = Self.data(entities: 1, days: 50, users: 500, seed: 4)[0]
        // The same thinned entity twice (at most four users a day): listed, then not listed.
        let thin = busy.map { Array($0.prefix(4)) }
        let d = [busy, thin, thin]
        let rows = d.map { $0.reduce(0) { $0 + $1.count } }
        let entries = 1_275
        #expect(rows[0] >= entries && rows[1] < entries && rows[1] * RangeCounts.listedRowsDivisor >= entries)
        let listed = [false, true]  // shorter than the entities: the rest are not listed
        let t = RangeCounts(dayCount: 50, userCount: 500, entityRows: rows, minRowsPerEntry: 1, listed: listed) { e, day, users in
            users += d[e][day]
        }
        #expect(t.has(entity: 0) && t.has(entity: 1) && !t.has(entity: 2))
        for lo in 0..<50 {
            var seen = Set<UInt32>()
            for hi in lo..<50 {
                seen.formUnion(d[1][hi])
                #expect(t.count(entity: 1, lo, hi) == seen.count, "range \(lo)…\(hi)")
            }
        }
    }
}
