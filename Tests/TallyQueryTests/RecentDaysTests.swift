import Testing
import TallyGenerate
import TallyStorage
import TallyTestSupport

/// The pairs' recent days (``PairIndex/recent``): one word a pair of its days over the client's
/// last 64, read instead of the pair's words or list for ranges inside them. Kept by clients of
/// a million rows or more, and, as every other extra, by the small clients of stores built with
/// `allClasses` (the equivalence tests' among them). And a range holding the whole history,
/// answered from each pair's count; and each pair's last day in a range, read from the word first.
@Suite struct RecentDaysTests {
    /// Every pair's day counts and tests, over ranges inside the recent days and over ranges
    /// that start before them, are what its rows hold.
    @Test(arguments: [5, 29] as [UInt64])
    func recentDaysHoldThePairsRows(seed: UInt64) throws {
        let store = try Fixtures.randomStore(seed: seed, clients: 3, rows: 6000, allClasses: true).1
        let plain = try Fixtures.randomStore(seed: seed, clients: 3, rows: 6000).1
        #expect(plain.clients.allSatisfy { $0.usage?.pairs.base.recent.isEmpty ?? true }, "kept only from a million rows")
        var r = SplitMix64(seed: seed)
        var inside = 0
        for c in store.clients {
            guard let u = c.usage, u.dayCount > 64 else { continue }
            let pairs = u.pairs.base
            #expect(pairs.recent.count == pairs.pairCount && pairs.recentStart == u.dayCount - 64)
            // Each pair's days, from its rows (read in pair order).
            var days: [[Int]] = []
            var key: UInt64 = .max
            pairs.forEachRow { user, app, d in
                let k = UInt64(user) << 32 | UInt64(app)
                if k != key { days.append([]); key = k }
                days[days.count - 1].append(d)
            }
            #expect(days.count == pairs.pairCount)
            for p in 0..<pairs.pairCount {
                // The whole history (read from the pair's count) and past both ends.
                for (lo, hi) in [(0, u.dayCount - 1), (-3, u.dayCount + 5)] {
                    #expect(pairs.dayCount(pair: p, lo, hi) == days[p].count && pairs.hasDay(pair: p, lo, hi), "pair \(p), \(lo)…\(hi)")
                    #expect(pairs.lastDay(pair: p, lo, hi) == days[p].max(), "pair \(p), \(lo)…\(hi): last day")
                }
                // Last days over ranges ending inside the recent days and starting before them.
                for _ in 0..<3 {
                    let lo = Int(r.next() % UInt64(pairs.recentStart + 1))
                    let hi = pairs.recentStart + Int(r.next() % UInt64(u.dayCount - pairs.recentStart))
                    #expect(pairs.lastDay(pair: p, lo, hi) == days[p].filter { lo <= $0 && $0 <= hi }.max(), "pair \(p), \(lo)…\(hi): last day")
                }
                for k in 0..<6 {
                    // Half the ranges start inside the recent days, half anywhere.
                    let from = k % 2 == 0 ? pairs.recentStart : 0
                    let lo = from + Int(r.next() % UInt64(u.dayCount - from))
                    let hi = lo + Int(r.next() % UInt64(u.dayCount - lo))
                    let want = days[p].filter { lo <= $0 && $0 <= hi }.count
                    #expect(pairs.dayCount(pair: p, lo, hi) == want, "pair \(p), \(lo)…\(hi)")
                    #expect(pairs.hasDay(pair: p, lo, hi) == (want > 0), "pair \(p), \(lo)…\(hi)")
                    #expect(pairs.lastDay(pair: p, lo, hi) == days[p].filter { lo <= $0 && $0 <= hi }.max(), "pair \(p), \(lo)…\(hi): last day")
                    var acc = [UInt64](repeating: 0, count: (hi - lo) / 64 + 1)
                    let any = acc.withUnsafeMutableBufferPointer { pairs.days(pair: p, lo, hi, into: $0.baseAddress!) }
                    let bits = acc.enumerated().flatMap { k, w in (0..<64).filter { w >> UInt64($0) & 1 != 0 }.map { lo + 64 * k + $0 } }
                    #expect(any == (want > 0) && bits == days[p].filter { lo <= $0 && $0 <= hi }, "pair \(p), \(lo)…\(hi): days")
                    if lo >= pairs.recentStart { inside += 1 }
                }
            }
        }
        #expect(inside > 100)
    }
}
