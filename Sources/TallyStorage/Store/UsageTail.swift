import Dispatch
import Glibc
import Synchronization

/// Storage that successive versions of a tail share: only the newest version appends, past
/// every older version's `count`, so an older version (a query in flight, a pinned cursor)
/// keeps reading exactly the prefix it was published with. Amortized O(1) per element instead
/// of a copy of the whole list per version.
final class SharedGrowth<T: BitwiseCopyable>: @unchecked Sendable {
    private(set) var base: UnsafeMutablePointer<T>
    let capacity: Int
    /// Elements written (by the one writer, the commit thread). Readers never read this: each
    /// reads the count of its own version.
    var written: Int

    init(capacity: Int) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
        written = 0
    }

    deinit { base.deallocate() }
}

/// A list held by one version of a tail: a prefix of a ``SharedGrowth``.
public struct TailList<T: BitwiseCopyable>: @unchecked Sendable {
    let storage: SharedGrowth<T>?
    let count: Int

    static var empty: TailList { TailList(storage: nil, count: 0) }

    @inline(__always) subscript(i: Int) -> T { storage!.base[i] }

    /// This list with `values` after it. Writes in place when this version is the newest of its
    /// storage and the values fit; otherwise into new storage (twice the size) with this prefix.
    func appending(_ values: some Collection<T>) -> TailList {
        guard !values.isEmpty else { return self }
        let need = count + values.count
        var s = storage
        if s == nil || s!.written != count || need > s!.capacity {
            let next = SharedGrowth<T>(capacity: max(need, 2 * (s?.capacity ?? 0)))
            if let s, count > 0 { next.base.update(from: s.base, count: count) }
            s = next
        }
        var i = count
        for v in values {
            s!.base[i] = v
            i += 1
        }
        s!.written = need
        return TailList(storage: s, count: need)
    }

    @inline(__always) public func withPointer<R>(_ body: (UnsafePointer<T>, Int) -> R) -> R {
        body(UnsafePointer(storage!.base), count)
    }

    func forEach(_ body: (T) -> Void) {
        guard let s = storage else { return }
        for i in 0..<count { body(s.base[i]) }
    }

    var array: [T] { (0..<count).map { storage!.base[$0] } }
}

/// Usage rows appended on a client's newest days, kept beside the client's immutable usage
/// index (the base) instead of rebuilding it: docs/APPENDS.md, "the tail". Every row is new to
/// the base (a row the base or an earlier version of the tail holds is dropped at apply), and on
/// the base's last day `L` or on a next day `D` after it (``nextDay``: a new day's first rows,
/// the day after `L` or up to ``maxGap`` days on: "Two days in the tail"), so every stored
/// structure changes only where it covers those days: the last block of each level (and the
/// blocks past them up to `D`'s, which have no stored bitmap), the last running sums, the range
/// tables' ranges that end on `L` or later, the pairs' last days. The index that serves a client
/// with a tail (``UsageIndex/init(base:tail:)``) reads its base and adds the tail there:
/// - unions OR, per entity (app or class), the users new to it on `L` (``EntityTail/users``) and
///   its users on `D` (``EntityTail/next``), in the blocks holding those days;
/// - counts over a range `lo…L` add the users of the entity on `L` whose last base day with it is
///   before `lo` (``EntityTail/before``: `before[lo]`), exact because no base day is after `L`;
///   over `lo…D`, the users of either day whose last base day is before `lo`, each once
///   (``EntityTail/beforeEither``); over `D` alone, the next day's users;
/// - the last blocks' cardinalities and department masks, the last running sums and the apps'
///   first days are corrected once per version, here;
/// - the pairs are read with the tail's rows beside them (``PairView``): each user's rows are a
///   contiguous run (``grouped``, remade every ``regroupRows`` rows) and a chain of the rows
///   since (``links``, ``pairHead``), read by the pair loops after the base's pairs. A row knows
///   its day and its pair's first tail day (``TailPair/firstDay``: a second row is counted only
///   when the first is out of the range), so that the order rows come in does not matter.
/// A class's users on `L` are only those new to the class that day (not active in it on `L` in
/// the base through another app), so that counts stay sums. Immutable once made.
public final class UsageTail: @unchecked Sendable {
    /// A row's place in the pairs: see ``links``.
    struct PairLink: BitwiseCopyable {
        var pair: TailPair
        var next: Int32
    }

    /// A tail row as the pair loops read it.
    public struct TailPair: BitwiseCopyable, Sendable {
        public var app: UInt32
        /// The user's pair with the app in the base, or -1 (a pair the tail adds).
        public var basePair: Int32
        /// The pair's last day in the base, or -1: the row makes the app active in a range
        /// `lo…hi` holding the row's day that the base's pair is not active in iff this is
        /// before `lo` (no base day is after the base's last day).
        public var baseLast: Int32
        /// The row's day offset: the base's last day `B`, or the tail's next day `D`
        /// (``UsageTail/nextDay``).
        public var day: UInt16
        /// The day of the same pair's row on the other of the tail's two days when the tail held
        /// one as this one came, else ``day``: in a range holding that day, the pair is counted
        /// by that row, not this one.
        public var firstDay: UInt16

        /// Whether the tail held a row of the same pair on its other day when this one came.
        @inlinable public var twin: Bool { firstDay != day }

        /// Whether the row's day is in `lo…hi`.
        @inlinable @inline(__always) public func isIn(_ lo: Int, _ hi: Int) -> Bool { lo <= Int(day) && Int(day) <= hi }

        /// Whether this row makes its app active in `lo…hi` where neither the base's pair nor
        /// the pair's other tail row (when it came first and is in the range) already does.
        @inlinable @inline(__always) public func isNew(_ lo: Int, _ hi: Int) -> Bool {
            let d = Int(day), f = Int(firstDay)
            return lo <= d && d <= hi && Int(baseLast) < lo && !(f != d && lo <= f && f <= hi)
        }
    }

    /// Rows past ``Grouped/count`` before the rows are grouped again: a pass over every user
    /// follows about this many links (more while a background regrouping runs, at most four
    /// times as many). Regrouping costs O(users + the young run's rows) — O(users + tail rows)
    /// when it makes the old run again (``Grouped``) — about once per eight 1,000-row batches (a
    /// small tail after 16 rows or a quarter of it); past 65,536 rows it runs off the commit
    /// thread (``appending(to:base:client:users:apps:)``).
    static let regroupRows = 8_192

    /// What the tail adds to one entity.
    struct EntityTail {
        /// Users new to the entity on the base's last day, unsorted.
        var users: TailList<UInt32>
        /// `before[j]`: how many of them had no base day with the entity at offset `j` or later
        /// (their last base day is before `j`), for `j` in `0…dayCount`.
        var before: [UInt32]
        /// The OR of their departments' bits (``UsageIndex/departmentMaskWords`` words), when the
        /// index keeps masks.
        var mask: [UInt64]
        /// Users of the entity on the next day (``UsageTail/nextDay``), unsorted.
        var next: TailList<UInt32> = .empty
        /// Like ``before`` over the users of either day (``users`` and ``next``, each once), or
        /// `nil` while ``next`` is empty (then ``before``): a count over `lo…D` adds
        /// `beforeEither[lo]` for `lo ≤ B`.
        var beforeEither: [UInt32]? = nil
        /// The OR of ``next``'s departments' bits.
        var nextMask: [UInt64] = []
    }

    /// Offset of the base's last day `B`: the day of the tail's rows, or of those not on the
    /// next day.
    public let day: Int
    /// Whether some row is on the next day `D` (the index then ends on it): a client's first rows
    /// of a new day — the day after `B`, or after days without rows, up to ``maxGap`` days on —
    /// and its late rows of `B` go into the same tail (docs/APPENDS.md, "Two days in the tail").
    public let hasNext: Bool
    /// The next day's offset `D` (`B + 1` while no row is on one).
    public let nextDay: Int
    /// The tail's last day: `D` with rows on it, else `B`.
    @inlinable public var lastDay: Int { hasNext ? nextDay : day }
    /// The next day as days since 1970.
    public var nextDayRaw: Int32 { dayRaw + Int32(nextDay - day) }
    /// The furthest a tail's next day is from the base's last day: a week, so that a client
    /// with no rows over a weekend or a holiday still takes the first day after into its tail.
    public static let maxGap = 7
    /// Rows on the next day, and when the first of them came (seconds since 1970).
    public let nextRows: Int
    public let nextSince: Double?
    /// When the newest row of the base's last day came after the first of the next day's (a
    /// late row), if one did: merges keep the next day in the tail while they come.
    public let lateAt: Double?
    /// The base's last day ``day`` as days since 1970.
    public let dayRaw: Int32
    /// When the first row of this tail (of its chain of versions) was applied: seconds since
    /// 1970 (the freshness figures' "oldest unmerged row").
    public let since: Double
    let entities: [EntityTail?]
    /// Rows of the tail (``key(_:_:next:)``: user, whether on the next day, app), in arrival
    /// order (for merges and snapshots).
    let rows: TailList<UInt64>
    /// Per level, the last block's cardinality of every entity with the tail's users (the next
    /// day's too when it is in that block).
    let lastCards: [UnsafeMutableBufferPointer<UInt32>]
    /// Per level, the last block's department masks of every entity with the tail's, when the
    /// base keeps masks.
    let lastMasks: [UnsafeMutableBufferPointer<UInt64>]?
    /// Per level where the next day is in a block of its own (past the base's blocks): that
    /// block's cardinalities and masks, from the next day's users alone; `nil` at other levels.
    let nextCards: [UnsafeMutableBufferPointer<UInt32>?]
    let nextMasks: [UnsafeMutableBufferPointer<UInt64>?]
    /// Rows of zeros (every entity's cardinality, and, when the base keeps masks, every mask) for
    /// the blocks past the base's that hold no tail day (days without rows between `B` and `D`).
    let zeroCards: UnsafeMutableBufferPointer<UInt32>
    let zeroMasks: UnsafeMutableBufferPointer<UInt64>
    /// Every entity's running sum after the base's last day, with the tail's users of that day.
    let lastPrefix: UnsafeMutableBufferPointer<UInt32>
    /// Every entity's running sum after the next day (``lastPrefix`` when none is on it).
    let nextPrefix: UnsafeMutableBufferPointer<UInt32>
    /// Each app slot's first day with the tail's (an app first used on the last day).
    let firstSeenOffset: [Int32]
    /// The apps of the client version this tail was made for: the base's and those added since,
    /// which take the base's spare slots (``UsageIndex/appSlots``; docs/APPENDS.md, "New apps in
    /// the tail").
    let appCount: Int
    /// What only the writer reads, shared along one chain of versions (``WriterState``).
    let state: WriterState
    let serial: Int
    /// Per row of ``rows``, its ``TailPair`` and the user's previous row (or -1): each user's
    /// rows as a chain from ``pairHead``, newest first. Read only past ``grouped``'s rows.
    let links: TailList<PairLink>
    /// Per user, the newest of their rows in ``rows``, or -1. Copied per version: O(users).
    @usableFromInline let pairHead: [Int32]
    /// The rows up to a recent version, grouped by user.
    @usableFromInline let grouped: Grouped
    /// Each user's pairs, the base's and the tail's (the writer's counts when this was made).
    @usableFromInline let pairCounts: [UInt32]
    /// The base's pairs over the client version's users: the base's own, or, when users were
    /// added since the base was built, the same pairs with empty ones for them
    /// (``PairIndex/init(padding:users:)``). ``pairHead``, ``pairCounts`` and the index read
    /// with this tail cover the same users.
    let pairs: PairIndex
    /// Whether the base's department masks no longer hold for the client version: a user it
    /// held joined a department, or a department was added (``ClientStore/withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``).
    /// The index read with this tail then keeps no masks (``UsageIndex/hasDepartmentMasks``), and
    /// queries count departments from the users' own, until a merge makes them again. Kept
    /// along the chain of versions.
    public let masksStale: Bool

    public var rowCount: Int { rows.count }
    /// Rows grouped by user (``grouped``); the rest are read through their chains.
    public var groupedRows: Int { grouped.count }
    /// Rows in ``Grouped``'s old run and in its young run.
    public var groupedRuns: (old: Int, young: Int) { (grouped.old.end, grouped.young.end - grouped.young.from) }

    /// The entity's tail users of the base's last day, when it has any.
    @inline(__always) public func users(_ e: Int) -> TailList<UInt32>? {
        guard let t = entities[e], t.users.count > 0 else { return nil }
        return t.users
    }

    /// The entity's users of the next day, when it has any.
    @inline(__always) public func nextUsers(_ e: Int) -> TailList<UInt32>? {
        guard let t = entities[e], t.next.count > 0 else { return nil }
        return t.next
    }

    /// Which of the tail's days block `block` of a level of `size` days holds: bit 0 the base's
    /// last day, bit 1 the next day (with rows on it).
    @inline(__always) public func days(inBlock block: Int, size: Int) -> UInt8 {
        (block == day / size ? 1 : 0) | (hasNext && block == nextDay / size ? 2 : 0)
    }

    /// Calls `body` with each list of entity `e`'s tail users of the days `days` (bits as in
    /// ``days(inBlock:size:)``); a user may be in both lists.
    @inline(__always) public func forEachUsers(_ e: Int, days: UInt8, _ body: (UnsafePointer<UInt32>, Int) -> Void) {
        guard let t = entities[e] else { return }
        if days & 1 != 0, t.users.count > 0 { t.users.withPointer(body) }
        if days & 2 != 0, t.next.count > 0 { t.next.withPointer(body) }
    }

    /// Users of entity `e` the tail adds to the range `lo…hi` (`hi ≥ B`, the base's last
    /// day): those with a tail day in it and no base day in it.
    @inline(__always) public func novel(entity e: Int, _ lo: Int, _ hi: Int) -> Int {
        guard let t = entities[e] else { return 0 }
        if lo > day { return hasNext && hi >= nextDay && lo <= nextDay ? t.next.count : 0 }
        if !hasNext || hi < nextDay { return Int(t.before[lo]) }
        return Int((t.beforeEither ?? t.before)[lo])
    }

    /// Users of entity `e` in the tail with no base day with it at all.
    @inline(__always) public func novelUsers(entity e: Int) -> Int {
        guard let t = entities[e] else { return 0 }
        return Int((t.beforeEither ?? t.before)[0])
    }

    /// The writer's bookkeeping for one chain of tails: the (user, entity) pairs settled on the
    /// last day — in the tail already, or active that day in the base (nothing to add, ever) —
    /// and each user's number of pairs with the tail's.
    /// Only the newest tail of a chain may be appended to; a tail whose chain moved on (never the
    /// case for the commit thread, which appends to what it published) starts a state of its own.
    final class WriterState: @unchecked Sendable {
        var serial = 0
        /// The (user, entity, day) the chain holds: rows (an app's entity) and the classes their
        /// users are settled in (``HeldBits``).
        var held: HeldBits
        /// Each user's pairs, the base's and the tail's (the order by pair count reads them).
        var pairCounts: [UInt32]
        /// The chain's rows grouped off the commit thread (``Grouped``): the newest made, for the
        /// next version to take, and whether one is being made.
        let regrouped = Mutex<(made: Grouped?, running: Bool)>((nil, false))

        /// Each user's place in id order, for the users there were when it was made: the tie-break
        /// of the order by pair count (``ClientStore/usersByPairCount``) as a 4-byte read. Reading
        /// the ids themselves, 88 bytes apart in the users' array and at random, was 84% of the time
        /// of a version's reordering, and that a quarter of a 1,000-row batch's apply on the
        /// 47.6 M-row client (`perf` of `tally bench --tail-fraction 0.01`, 2026-12-04).
        private(set) var idRanks: [UInt32] = []
        /// What ``UsageTail/warm(users:apps:held:pairs:classEntity:)`` read, kept so that its
        /// loads are not optimized away.
        var warmed: UInt64 = 0

        init(pairs: PairIndex, userCount: Int, entities: Int) {
            pairCounts = (0..<userCount).map { UInt32(pairs.pairCount(user: $0)) }
            held = HeldBits(entities: entities)
        }

        /// The base's cardinality of each entity's bitmap in the block of each level that holds
        /// day `day` (the base's last): what each version's ``lastCards`` adds its rows to. The
        /// same for every version of the chain (one base), so read once (3,250 bitmap lookups a
        /// version on the 47.6 M-row client).
        private var baseCards: (day: Int, cards: [[UInt32]])?
        private weak var cardsBase: UsageIndex?

        func lastBlockCards(_ base: UsageIndex, day: Int) -> [[UInt32]] {
            if let c = baseCards, c.day == day, cardsBase === base { return c.cards }
            cardsBase = base
            let cards = (0..<base.levelSizes.count).map { k in
                let b = day / base.levelSizes[k]
                return (0..<base.entityCount).map { e in UInt32(base.levels[k].view.cardinality(base.bitmap(entity: e, level: k, block: b))) }
            }
            baseCards = (day, cards)
            return cards
        }

        /// ``idRanks``, made for `users` on first use (users added later compare by id).
        func idRanks(_ users: [UserInfo]) -> [UInt32] {
            if idRanks.isEmpty && !users.isEmpty {
                let order = (0..<UInt32(users.count)).sorted { users[Int($0)].id < users[Int($1)].id }
                var rank = [UInt32](repeating: 0, count: users.count)
                for (i, u) in order.enumerated() { rank[Int(u)] = UInt32(i) }
                idRanks = rank
            }
            return idRanks
        }
    }

    init(day: Int, nextDay: Int, since: Double, nextSince: Double?, lateAt: Double?, nextRows: Int, entities: [EntityTail?], rows: TailList<UInt64>,
         links: TailList<PairLink>, pairHead: [Int32], grouped: Grouped, base: UsageIndex, pairs: PairIndex, masksStale: Bool,
         state: WriterState, serial: Int, appCount: Int) {
        precondition(appCount >= base.appCount && appCount <= base.appSlots, "added apps take spare slots")
        self.appCount = appCount
        self.masksStale = masksStale
        precondition(pairs.userCount == pairHead.count && state.pairCounts.count == pairHead.count, "one user domain")
        self.pairs = pairs
        self.day = day
        self.nextDay = nextDay
        hasNext = nextRows > 0
        self.nextRows = nextRows
        self.nextSince = nextSince
        self.lateAt = lateAt
        self.links = links
        self.pairHead = pairHead
        self.grouped = grouped
        pairCounts = state.pairCounts
        dayRaw = base.firstDay.adding(day).raw
        self.since = since
        self.entities = entities
        self.rows = rows
        self.state = state
        self.serial = serial
        let E = base.entityCount, W = base.departmentMaskWords, hasNext = nextRows > 0, masks = base.hasDepartmentMasks && !masksStale
        // Whether the next day is in the last block of level `k` (else in a block past it).
        let sameBlock = base.levelSizes.map { nextDay / $0 == day / $0 }
        let baseCards = state.lastBlockCards(base, day: day)
        lastCards = (0..<base.levelSizes.count).map { k in
            let start = day / base.levelSizes[k] * base.levelSizes[k]
            let row = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, E))
            for e in 0..<E {
                let added = entities[e].map { hasNext && sameBlock[k] ? ($0.beforeEither ?? $0.before)[start] : $0.before[start] } ?? 0
                row[e] = baseCards[k][e] &+ added
            }
            return row
        }
        nextCards = (0..<base.levelSizes.count).map { k in
            guard hasNext && !sameBlock[k] else { return nil }
            let row = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, E))
            for e in 0..<E { row[e] = UInt32(entities[e]?.next.count ?? 0) }
            return row
        }
        func orMasks(into row: UnsafeMutableBufferPointer<UInt64>, _ mask: (EntityTail) -> [UInt64]) {
            for e in 0..<E {
                guard let t = entities[e] else { continue }
                let m = mask(t)
                guard !m.isEmpty else { continue }
                let (at, shift) = base.maskPosition(e)
                for w in 0..<W { row[at + w * base.maskWordStride] |= m[w] << UInt64(shift) }
            }
        }
        lastMasks = masks ? (0..<base.levelSizes.count).map { k in
            let b = day / base.levelSizes[k]
            let from = base.departmentMaskRow(level: k, block: b)!
            let row = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, base.maskRowWords))
            for i in 0..<base.maskRowWords { row[i] = from[i] }
            orMasks(into: row) { $0.mask }
            if hasNext && sameBlock[k] { orMasks(into: row) { $0.nextMask } }
            return row
        } : nil
        nextMasks = (0..<base.levelSizes.count).map { k in
            guard masks && hasNext && !sameBlock[k] else { return nil }
            let row = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, base.maskRowWords))
            row.initialize(repeating: 0)
            orMasks(into: row) { $0.nextMask }
            return row
        }
        zeroCards = .allocate(capacity: max(1, E))
        zeroCards.initialize(repeating: 0)
        zeroMasks = .allocate(capacity: base.hasDepartmentMasks ? max(1, base.maskRowWords) : 1)
        zeroMasks.initialize(repeating: 0)
        let prefix = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, E))
        let after = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, E))
        for e in 0..<E {
            prefix[e] = UInt32(base.prefixSum(e, base.dayCount)) &+ UInt32(entities[e]?.users.count ?? 0)
            after[e] = prefix[e] &+ UInt32(entities[e]?.next.count ?? 0)
        }
        lastPrefix = prefix
        nextPrefix = after
        var first = base.firstSeenOffset
        for a in 0..<appCount where first[a] < 0 {
            if (entities[a]?.users.count ?? 0) > 0 { first[a] = Int32(day) } else if (entities[a]?.next.count ?? 0) > 0 { first[a] = Int32(nextDay) }
        }
        firstSeenOffset = first
    }

    deinit {
        for r in lastCards { r.deallocate() }
        for r in lastMasks ?? [] { r.deallocate() }
        for case let r? in nextCards { r.deallocate() }
        for case let r? in nextMasks { r.deallocate() }
        lastPrefix.deallocate()
        nextPrefix.deallocate()
        zeroCards.deallocate()
        zeroMasks.deallocate()
    }

    /// Calls `body` with the app and the base pair (or -1: a pair new in the tail) of each of
    /// user `u`'s rows in the tail, newest first.
    /// - Complexity: O(the user's rows in the tail).
    @inlinable @inline(__always)
    func forEachPair(user u: Int, _ body: (TailPair) -> Void) {
        let g = grouped
        g.forEach(user: u, body)
        if pairHead[u] >= g.count { forEachRecentPair(user: u, body) }
    }

    /// The rows of user `u` past ``grouped``'s, following their links.
    @usableFromInline
    func forEachRecentPair(user u: Int, _ body: (TailPair) -> Void) {
        var i = Int(pairHead[u])
        while i >= grouped.count {
            let l = links[i]
            body(l.pair)
            i = Int(l.next)
        }
    }

    /// Whether user `u` has rows in the tail.
    @inlinable @inline(__always)
    func hasPairs(user u: Int) -> Bool { pairHead[u] >= 0 }

    var byteCount: Int {
        var n = rows.count * 28 + pairHead.count * 4 + grouped.byteCount
        for case let t? in entities {
            n += (t.users.count + t.next.count) * 4 + (t.before.count + (t.beforeEither?.count ?? 0)) * 4 + (t.mask.count + t.nextMask.count) * 8
        }
        n += nextCards.reduce(0) { $0 + ($1?.count ?? 0) * 4 } + nextMasks.reduce(0) { $0 + ($1?.count ?? 0) * 8 }
            + zeroCards.count * 4 + zeroMasks.count * 8
        return n + lastCards.reduce(0) { $0 + $1.count * 4 } + (lastMasks?.reduce(0) { $0 + $1.count * 8 } ?? 0) + lastPrefix.count * 8
    }
}
