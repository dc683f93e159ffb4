import TallyStorage

/// Each user's active days over the client's whole history in the apps of one ``AppClass``, as a
/// bitset (user-major: `width` words a user, bit `d` = day offset `d`), and each user's number of
/// (user, app) pairs in the class, with the users in that order (most first, ties by id).
///
/// What lets D sorted by `active_days` pay for its page: a user's active days in any range are
/// a popcount of the range's few words, not an OR of every pair's days (on the 20,000-user
/// client the pair walk took 8.4–10.4 ms a page over HTTP, docs/BENCHMARKS.md "The realistic mix");
/// and what lets D by `app_count` under an approval or AI filter visit users best bound first,
/// as the unfiltered D does with ``ClientStore/usersByPairCount``.
///
/// Derived on first use per client version and class (``ClientStore/derived``): a client never
/// asked these questions pays nothing. Size: users × ⌈days / 64⌉ words + 8 bytes a user — by
/// that arithmetic 0.96 MB of words for the 20,000-user client's 366 days, about 0.02 bytes per
/// usage row.
final class UserDays: Sendable {
    /// Words per user.
    let width: Int
    let words: [UInt64]
    /// Pairs of the class per user.
    let pairCount: [UInt32]
    /// Users with at least one pair of the class, by `pairCount` descending, then id ascending.
    let byPairCount: [UInt32]

    static func of(_ client: ClientStore, _ index: UsageIndex, _ appClass: AppClass) -> UserDays {
        client.derived.get(variant: appClass.rawValue) { UserDays(client, index, appClass) }
    }

    /// The pair counts and order (no day bitsets: `width` 0) of the apps of the category whose
    /// class is entity `entity`, kept per client version and category: what lets D by
    /// `app_count` under a category filter visit users best bound first (without, each such page
    /// walked every pair of the client: 3.0–4.0 ms for 90 days of the 20,000-user client over
    /// HTTP, `tools/load/profile_paths.py`). 8 bytes a user.
    static func of(_ client: ClientStore, _ index: UsageIndex, categoryEntity entity: Int, apps: [Bool]) -> UserDays {
        client.derived.get(variant: AppClass.allCases.count + entity) { UserDays(client, index, keeps: apps, days: false) }
    }

    convenience init(_ client: ClientStore, _ index: UsageIndex, _ appClass: AppClass) {
        let bit = UInt8(1) << UInt8(appClass.rawValue)
        self.init(client, index, keeps: client.appClassBits.map { $0 & bit != 0 }, days: true)
    }

    /// - Complexity: O(pairs × words of the client's days), O(pairs) without `days`.
    init(_ client: ClientStore, _ index: UsageIndex, keeps: [Bool], days: Bool) {
        let view = index.pairs, pairs = view.base
        let users = client.users.count
        let top = index.dayCount - 1
        let width = days ? max(1, (index.dayCount + 63) >> 6) : 0
        var words = [UInt64](repeating: 0, count: users * width)
        var counts = [UInt32](repeating: 0, count: users)
        keeps.withUnsafeBufferPointer { keep in
            words.withUnsafeMutableBufferPointer { w in
                for u in 0..<users {
                    var n: UInt32 = 0
                    for p in Int(pairs.userStart[u])..<Int(pairs.userStart[u &+ 1]) where keep[Int(pairs.pairApp[p])] {
                        if days { _ = pairs.days(pair: p, 0, top, into: w.baseAddress! + u &* width) }
                        n &+= 1
                    }
                    // The tail's rows: the last day, and its new pairs.
                    view.forEachTailPair(user: u) { a, p in
                        guard keep[a] else { return }
                        if days { w[u &* width &+ top &>> 6] |= 1 << UInt64(top & 63) }
                        if p < 0 { n &+= 1 }
                    }
                    counts[u] = n
                }
            }
        }
        var order = (0..<UInt32(users)).filter { counts[Int($0)] > 0 }
        order.sort { a, b in
            let ca = counts[Int(a)], cb = counts[Int(b)]
            return ca != cb ? ca > cb : client.users[Int(a)].id < client.users[Int(b)].id
        }
        self.width = width
        self.words = words
        pairCount = counts
        byPairCount = order
    }

    /// Active days of user `u` within day offsets `lo…hi` (inside the client's days); `w` is
    /// `words`' storage.
    @inline(__always)
    func days(user u: Int, _ lo: Int, _ hi: Int, _ w: UnsafePointer<UInt64>) -> Int {
        PairIndex.bitCount(w + u &* width, lo, hi)
    }
}
