import TallyStorage

/// Each user's (user, app) pairs in a set of apps (a class, or one whole category) by their last
/// active day: a user's apps over a range that ends on the client's newest day are the pairs
/// whose last day falls in it — a loop over 2-byte days instead of a test of every pair's days.
///
/// What lets D by `app_count` count a user cheaply at any cursor position. Before, a first
/// visit of a deep page of D by app count descending evaluated the 20,000-user client's list whole
/// (12–23 ms once over HTTP, docs/BENCHMARKS.md): the bounded path counted every user the cursor
/// had passed by walking their pairs.
///
/// Derived on first use per client version and app set (``ClientStore/derived``, with the
/// variants of ``UserDays``). Size: 2 bytes a pair of the set and 4 bytes a user. The last days
/// are kept in pair order, not sorted: counting a user's (about a hundred on the 20,000-user
/// client) is a loop the compiler vectorizes, and deriving them took 3.7 ms there against 8.0 ms
/// with a sort per user (the first page of `tools/load/walk_pages.py`, which pays it, once each),
/// for pages within 0.1 ms of each other.
final class PairRecency: Sendable {
    /// Pairs of user `u` in the set: `start[u] ..< start[u + 1]` in `lastDays`.
    let start: [UInt32]
    /// Their last day offsets, in pair order.
    let lastDays: [UInt16]

    /// The variant of the scope's app set in ``ClientStore/derived`` (a class's raw value, or past
    /// the classes a category's entity, as ``UserDays``), with its apps; `nil` when the scope's
    /// apps are not one entity (as in ``Executor/pairCountOrder(_:_:)``).
    static func set(of scope: Scope) -> (variant: Int, apps: () -> [Bool])? {
        if let c = scope.appClass { return (c.rawValue, { UserDays.apps(of: c, scope.client) }) }
        if let es = scope.splitEntities[Split.all.rawValue], es.count == 1 {
            return (AppClass.allCases.count + es[0], { scope.appMask })
        }
        return nil
    }

    /// The scope's recency: derived now if `derive`, else only if it was already; `nil` when its
    /// apps are not one entity.
    static func of(_ scope: Scope, _ index: UsageIndex, derive: Bool) -> PairRecency? {
        guard let (variant, apps) = set(of: scope) else { return nil }
        // Derived from the base, without the tail (``ClientStore/baseDerived``): its counts are
        // the base's, and the tail's rows are read beside them (``PairView/tailApps(user:_:_:mask:)``).
        let base = index.base ?? index
        guard derive else { return scope.client.baseDerived.existing(PairRecency.self, variant: variant) }
        return scope.client.baseDerived.get(variant: variant) { PairRecency(scope.client, base, keeps: apps()) }
    }

    /// - Complexity: O(pairs × (log days or words of the client's days)), once.
    init(_ client: ClientStore, _ index: UsageIndex, keeps: [Bool]) {
        precondition(index.tail == nil, "derived from a base: a tail's rows are read beside it")
        let pairs = index.pairs.base
        let users = pairs.userCount  // the base's: users added since have no pair in it (``appCount(user:from:_:)``)
        let top = index.dayCount - 1
        var start = [UInt32](repeating: 0, count: users + 1)
        var last: [UInt16] = []
        keeps.withUnsafeBufferPointer { keep in
            for u in 0..<users {
                for p in Int(pairs.userStart[u])..<Int(pairs.userStart[u &+ 1]) where keep[Int(pairs.pairApp[p])] {
                    // Every pair has a day (the index holds no empty pair).
                    last.append(UInt16(pairs.lastDay(pair: p, 0, top) ?? 0))
                }
                start[u + 1] = UInt32(last.count)
            }
        }
        self.start = start
        lastDays = last
    }

    /// Whether counts over day offsets `lo…hi` of `index` can be read here: the range must end on
    /// the index's last day (a pair is then active in it iff its last day is at least `lo`).
    @inline(__always)
    static func answers(_ index: UsageIndex, _ hi: Int) -> Bool { hi >= index.dayCount - 1 }

    /// Apps of user `u` in the set with a day from offset `lo` on (to the index's last day).
    @inline(__always)
    func appCount(user u: Int, from lo: Int, _ days: UnsafePointer<UInt16>) -> Int {
        guard u &+ 1 < start.count else { return 0 }  // a user added since the base was built
        let key = UInt16(clamping: lo)
        var n = 0
        var p = Int(start[u])
        let end = Int(start[u &+ 1])
        while p < end {
            n &+= days[p] >= key ? 1 : 0
            p &+= 1
        }
        return n
    }
}

extension PairRecency: UsageDerived {
    static func remade(for client: ClientStore, variant: Int) -> (any UsageDerived)? {
        guard let index = client.usage else { return nil }
        let base = index.base ?? index
        return PairRecency(client, base, keeps: UserDays.apps(ofVariant: variant, client, base))
    }
}
