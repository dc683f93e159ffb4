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
        of(client, index, variant: appClass.rawValue, days: true) { apps(of: appClass, client) }
    }

    /// The value of `variant` for `index`: derived from the pairs for an index without a tail;
    /// for one with a tail, the base's (derived once per base, ``ClientStore/baseDerived``) with
    /// the tail's rows added — O(users × words + the tail's rows) per version instead of O(pairs
    /// × words): with appends streaming in, each version is read once or twice, and D under an
    /// approval filter had p50 28 ms and p99 76 ms over HTTP on the 47.6 M-row client when each
    /// derived it whole (`tools/load/append_today.py --probe`, docs/BENCHMARKS.md).
    static func of(_ client: ClientStore, _ index: UsageIndex, variant: Int, days: Bool, keeps: () -> [Bool]) -> UserDays {
        client.derived.get(variant: variant) {
            guard let base = index.base, index.tail != nil else { return UserDays(client, index, keeps: keeps(), days: days) }
            let keep = keeps()
            let b = client.baseDerived.get(variant: variant) { UserDays(client, base, keeps: keep, days: days) }
            return b.adding(index.pairs, client, keeps: keep)
        }
    }

    /// The pair counts and order (no day bitsets: `width` 0) of the apps of the category whose
    /// class is entity `entity`, kept per client version and category: what lets D by
    /// `app_count` under a category filter visit users best bound first (without, each such page
    /// walked every pair of the client: 3.0–4.0 ms for 90 days of the 20,000-user client over
    /// HTTP, `tools/load/profile_paths.py`). 8 bytes a user.
    static func of(_ client: ClientStore, _ index: UsageIndex, categoryEntity entity: Int, apps: [Bool]) -> UserDays {
        of(client, index, variant: AppClass.allCases.count + entity, days: false) { apps }
    }

    /// - Complexity: O(pairs × words of the client's days), O(pairs) without `days`.
    init(_ client: ClientStore, _ index: UsageIndex, keeps: [Bool], days: Bool) {
        precondition(index.tail == nil, "derived from a base, read with a tail by adding(_:_:keeps:)")
        let pairs = index.pairs.base
        let users = pairs.userCount  // the base's: users added since have no pair in it
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

    private init(width: Int, words: [UInt64], pairCount: [UInt32], byPairCount: [UInt32]) {
        self.width = width
        self.words = words
        self.pairCount = pairCount
        self.byPairCount = byPairCount
    }

    /// This (a base's) with the tail rows of `pairs` in the apps `keeps` keeps: their users
    /// active on the tail's day, their new pairs counted, and the users whose count grew moved
    /// to their place in the order.
    /// - Complexity: O(users × words + the tail's rows + k log k), k users with a new pair.
    func adding(_ pairs: PairView, _ client: ClientStore, keeps: [Bool]) -> UserDays {
        guard let last = pairs.tailLastDay else { return self }
        var words = self.words, counts = pairCount
        // Users added to the client since the base was built: no day and no pair in it.
        let had = counts.count, n = max(had, client.users.count)
        counts += repeatElement(0, count: n - had)
        // The tail's next day may be in a word past the base's days: more words a user.
        let width = self.width == 0 ? 0 : max(self.width, (last >> 6) + 1)
        if width > self.width {
            words = [UInt64](repeating: 0, count: n * width)
            for u in 0..<had {
                for k in 0..<self.width { words[u * width + k] = self.words[u * self.width + k] }
            }
        } else {
            words += repeatElement(0, count: (n - had) * width)
        }
        var moved: [UInt32] = []
        for u in 0..<counts.count {
            var added: UInt32 = 0
            pairs.forEachTailPair(user: u) { row in
                guard keeps[Int(row.app)] else { return }
                let L = Int(row.day)
                if L >> 6 < width { words[u &* width &+ L >> 6] |= UInt64(1) << UInt64(L & 63) }
                if row.basePair < 0 && !row.twin { added &+= 1 }
            }
            if added > 0 {
                counts[u] &+= added
                moved.append(UInt32(u))
            }
        }
        guard !moved.isEmpty else { return UserDays(width: width, words: words, pairCount: counts, byPairCount: byPairCount) }
        let users = client.users
        func before(_ a: UInt32, _ b: UInt32) -> Bool {
            let ca = counts[Int(a)], cb = counts[Int(b)]
            return ca != cb ? ca > cb : users[Int(a)].id < users[Int(b)].id
        }
        moved.sort(by: before)
        var isMoved = [Bool](repeating: false, count: counts.count)
        for u in moved { isMoved[Int(u)] = true }
        var order: [UInt32] = []
        order.reserveCapacity(byPairCount.count + moved.count)
        var m = 0
        for u in byPairCount where !isMoved[Int(u)] {
            while m < moved.count && before(moved[m], u) {
                order.append(moved[m])
                m += 1
            }
            order.append(u)
        }
        order.append(contentsOf: moved[m...])
        return UserDays(width: width, words: words, pairCount: counts, byPairCount: order)
    }

    /// Active days of user `u` within day offsets `lo…hi` (inside the client's days); `w` is
    /// `words`' storage.
    @inline(__always)
    func days(user u: Int, _ lo: Int, _ hi: Int, _ w: UnsafePointer<UInt64>) -> Int {
        PairIndex.bitCount(w + u &* width, lo, hi)
    }
}

extension UserDays: UsageDerived {
    /// The apps of `variant` (as ``PairRecency/set(of:)`` numbers them): a class's, or past the
    /// classes the apps of the category whose class is entity `variant − classes`.
    static func apps(ofVariant variant: Int, _ client: ClientStore, _ index: UsageIndex) -> [Bool] {
        if let c = AppClass(rawValue: variant) { return apps(of: c, client) }
        return client.apps.map { index.entity(category: $0.category) == variant - AppClass.allCases.count }
    }

    /// The apps of class `c`, as a mask.
    static func apps(of c: AppClass, _ client: ClientStore) -> [Bool] {
        let bit = UInt8(1) << UInt8(c.rawValue)
        return client.appClassBits.map { $0 & bit != 0 }
    }

    static func remade(for client: ClientStore, variant: Int) -> (any UsageDerived)? {
        guard let index = client.usage else { return nil }
        let base = index.base ?? index
        return UserDays(client, base, keeps: apps(ofVariant: variant, client, base), days: variant < AppClass.allCases.count)
    }
}
