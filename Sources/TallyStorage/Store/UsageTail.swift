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

/// Usage rows appended on a client's newest day, kept beside the client's immutable usage
/// index (the base) instead of rebuilding it: docs/APPENDS.md, "the tail". Every row is new to
/// the base (a row the base or an earlier version of the tail holds is dropped at apply), and on
/// the base's last day `L`, so every stored structure changes only where it covers day `L`:
/// the last block of each level, the last running sum, the range tables' ranges that end on
/// `L`, the pairs' last days. The index that serves a client with a tail
/// (``UsageIndex/init(base:tail:)``) reads its base and adds the tail there:
/// - unions OR, per entity (app or class), the users new to it on `L` (``EntityTail/users``);
/// - counts over a range `lo…L` add the users of the entity on `L` whose last base day with it is
///   before `lo` (``EntityTail/before``: `before[lo]`), exact because no base day is after `L`;
/// - the last block's cardinalities and department masks, the last running sums and the apps'
///   first days are corrected once per version, here;
/// - the pairs are read with the tail's rows beside them (``PairView``): each user's rows are a
///   contiguous run (``grouped``, remade every ``regroupRows`` rows) and a chain of the rows
///   since (``links``, ``pairHead``), read by the pair loops after the base's pairs.
/// A class's users on `L` are only those new to the class that day (not active in it on `L` in
/// the base through another app), so that counts stay sums. Immutable once made.
public final class UsageTail: @unchecked Sendable {
    /// A row's place in the pairs: see ``links``.
    struct PairLink: BitwiseCopyable {
        var pair: TailPair
        var next: Int32
    }

    /// A tail row as the pair loops read it.
    @usableFromInline struct TailPair: BitwiseCopyable, Sendable {
        @usableFromInline var app: UInt32
        /// The user's pair with the app in the base, or -1 (a pair the tail adds).
        @usableFromInline var basePair: Int32
        /// The pair's last day in the base, or -1: the row makes the app active in a range
        /// `lo…hi` holding the tail's day that the base's pair is not active in iff this is
        /// before `lo` (no base day is on or after the tail's).
        @usableFromInline var baseLast: Int32
    }

    /// The first `count` rows of a chain of tails, grouped by user (each user's rows contiguous):
    /// shared by every version from the one that made it until the next is made. A full pass
    /// over every user's rows (D's whole list, a department's members) reads these in order
    /// instead of following chains: on the 47.6 M-row client with a 1% tail (476,537 rows), the
    /// dashboard mix's D took 17–20 ms on average with chains alone, against 3.7–4.3 merged
    /// (`tools/load/mix_bench.sh`, docs/BENCHMARKS.md).
    @usableFromInline final class Grouped: Sendable {
        @usableFromInline let count: Int
        /// Rows of user `u`: `start[u] ..< start[u + 1]` of `pairs` (empty: none).
        @usableFromInline let start: [UInt32]
        @usableFromInline let pairs: [TailPair]
        /// Each of `pairs`' base last day plus one (0: none), 2 bytes: an unfiltered count of a
        /// user's apps reads these (a loop the compiler vectorizes) instead of 12-byte rows. D
        /// ascending over 366 days with a static 1% tail: 2.0 ms in process against 0.6 merged
        /// when it read the rows.
        @usableFromInline let lastPlusOne: [UInt16]

        init(count: Int, start: [UInt32], pairs: [TailPair]) {
            self.count = count
            self.start = start
            self.pairs = pairs
            lastPlusOne = pairs.map { UInt16(truncatingIfNeeded: $0.baseLast &+ 1) }
        }

        /// These rows with `links` (the rows from `count` on) grouped with them.
        /// - Complexity: O(users + rows).
        func adding(_ links: TailList<PairLink>, rows: TailList<UInt64>, userCount: Int) -> Grouped {
            var start = [UInt32](repeating: 0, count: userCount + 1)
            for u in 0..<userCount { start[u + 1] = self.start.isEmpty ? 0 : self.start[u + 1] - self.start[u] }
            for i in count..<rows.count { start[Int(rows[i] >> 32) + 1] += 1 }
            for u in 0..<userCount { start[u + 1] += start[u] }
            var at = start
            var out = [TailPair](repeating: TailPair(app: 0, basePair: 0, baseLast: 0), count: Int(start[userCount]))
            if !self.start.isEmpty {
                for u in 0..<userCount {
                    for k in Int(self.start[u])..<Int(self.start[u + 1]) { out[Int(at[u])] = pairs[k]; at[u] += 1 }
                }
            }
            for i in count..<rows.count {
                let u = Int(rows[i] >> 32)
                out[Int(at[u])] = links[i].pair
                at[u] += 1
            }
            return Grouped(count: rows.count, start: start, pairs: out)
        }

        static let empty = Grouped(count: 0, start: [], pairs: [])
    }

    /// Rows past ``Grouped/count`` before the rows are grouped again: a pass over every user
    /// follows about this many links (more while a background regrouping runs, at most four
    /// times as many). Regrouping costs O(users + tail rows), about once per eight 1,000-row
    /// batches (a small tail after 16 rows or a quarter of it); past 65,536 rows it runs off the
    /// commit thread (``appending(to:base:client:users:apps:)``).
    static let regroupRows = 8_192

    /// What the tail adds to one entity.
    struct EntityTail {
        /// Users new to the entity on the last day, unsorted.
        var users: TailList<UInt32>
        /// `before[j]`: how many of them had no base day with the entity at offset `j` or later
        /// (their last base day is before `j`), for `j` in `0…dayCount`.
        var before: [UInt32]
        /// The OR of their departments' bits (``UsageIndex/departmentMaskWords`` words), when the
        /// index keeps masks.
        var mask: [UInt64]
    }

    /// Offset of the base's last day (the day of every row of the tail).
    public let day: Int
    /// The same day, as days since 1970.
    public let dayRaw: Int32
    /// When the first row of this tail (of its chain of versions) was applied: seconds since
    /// 1970 (the freshness figures' "oldest unmerged row").
    public let since: Double
    let entities: [EntityTail?]
    /// Rows of the tail, `user << 32 | app`, in arrival order (for merges and snapshots).
    let rows: TailList<UInt64>
    /// Per level, the last block's cardinality of every entity with the tail's users.
    let lastCards: [UnsafeMutableBufferPointer<UInt32>]
    /// Per level, the last block's department masks of every entity with the tail's, when the
    /// base keeps masks.
    let lastMasks: [UnsafeMutableBufferPointer<UInt64>]?
    /// Every entity's running sum after the last day, with the tail's users.
    let lastPrefix: UnsafeMutableBufferPointer<UInt32>
    /// Each app's first day with the tail's (an app first used on the last day).
    let firstSeenOffset: [Int32]
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

    public var rowCount: Int { rows.count }
    /// Rows grouped by user (``grouped``); the rest are read through their chains.
    public var groupedRows: Int { grouped.count }

    /// The entity's tail users, when it has any.
    @inline(__always) public func users(_ e: Int) -> TailList<UInt32>? {
        guard let t = entities[e], t.users.count > 0 else { return nil }
        return t.users
    }

    /// Users of entity `e` on the last day who had no base day with it at offset `lo` or later:
    /// what a count over `lo…last day` adds to the base's.
    @inline(__always) public func novel(entity e: Int, from lo: Int) -> Int {
        guard let t = entities[e] else { return 0 }
        return Int(t.before[lo])
    }

    /// The writer's bookkeeping for one chain of tails: the (user, entity) pairs settled on the
    /// last day — in the tail already, or active that day in the base (nothing to add, ever) —
    /// and each user's number of pairs with the tail's.
    /// Only the newest tail of a chain may be appended to; a tail whose chain moved on (never the
    /// case for the commit thread, which appends to what it published) starts a state of its own.
    final class WriterState: @unchecked Sendable {
        var serial = 0
        var held: Set<UInt64> = []
        /// Each user's pairs, the base's and the tail's (the order by pair count reads them).
        var pairCounts: [UInt32]
        /// The chain's rows grouped off the commit thread (``Grouped``): the newest made, for the
        /// next version to take, and whether one is being made.
        let regrouped = Mutex<(made: Grouped?, running: Bool)>((nil, false))

        init(pairs: PairIndex, userCount: Int) {
            pairCounts = (0..<userCount).map { UInt32(pairs.pairCount(user: $0)) }
        }
    }

    init(day: Int, since: Double, entities: [EntityTail?], rows: TailList<UInt64>, links: TailList<PairLink>, pairHead: [Int32],
         grouped: Grouped, base: UsageIndex, state: WriterState, serial: Int) {
        self.day = day
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
        let E = base.entityCount, W = base.departmentMaskWords
        lastCards = (0..<base.levelSizes.count).map { k in
            let b = day / base.levelSizes[k], start = b * base.levelSizes[k]
            let row = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, E))
            for e in 0..<E {
                let card = base.levels[k].view.cardinality(base.bitmap(entity: e, level: k, block: b))
                row[e] = UInt32(card) &+ (entities[e].map { $0.before[start] } ?? 0)
            }
            return row
        }
        lastMasks = base.hasDepartmentMasks ? (0..<base.levelSizes.count).map { k in
            let b = day / base.levelSizes[k]
            let from = base.departmentMaskRow(level: k, block: b)!
            let row = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, base.maskRowWords))
            for i in 0..<base.maskRowWords { row[i] = from[i] }
            for e in 0..<E {
                guard let mask = entities[e]?.mask else { continue }
                let (at, shift) = base.maskPosition(e)
                for w in 0..<W { row[at + w] |= mask[w] << UInt64(shift) }
            }
            return row
        } : nil
        let prefix = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, E))
        for e in 0..<E { prefix[e] = UInt32(base.prefixSum(e, base.dayCount)) &+ UInt32(entities[e]?.users.count ?? 0) }
        lastPrefix = prefix
        var first = base.firstSeenOffset
        for a in 0..<base.appCount where first[a] < 0 && (entities[a]?.users.count ?? 0) > 0 { first[a] = Int32(day) }
        firstSeenOffset = first
    }

    deinit {
        for r in lastCards { r.deallocate() }
        for r in lastMasks ?? [] { r.deallocate() }
        lastPrefix.deallocate()
    }

    /// Calls `body` with the app and the base pair (or -1: a pair new in the tail) of each of
    /// user `u`'s rows in the tail, newest first.
    /// - Complexity: O(the user's rows in the tail).
    @inlinable @inline(__always)
    func forEachPair(user u: Int, _ body: (TailPair) -> Void) {
        let g = grouped
        if !g.start.isEmpty {
            let s = Int(g.start[u]), end = Int(g.start[u &+ 1])
            if s < end {
                g.pairs.withUnsafeBufferPointer { p in
                    var k = s
                    while k < end {
                        body(p[k])
                        k &+= 1
                    }
                }
            }
        }
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
        var n = rows.count * 24 + pairHead.count * 4 + grouped.pairs.count * 12 + grouped.start.count * 4
        for case let t? in entities { n += t.users.count * 4 + t.before.count * 4 + t.mask.count * 8 }
        return n + lastCards.reduce(0) { $0 + $1.count * 4 } + (lastMasks?.reduce(0) { $0 + $1.count * 8 } ?? 0) + lastPrefix.count * 4
    }

    /// `previous` (or nothing) with the rows `users[i]`, `apps[i]`, all on the base's last day,
    /// that neither the base nor `previous` holds; with those rows (`user << 32 | app`) and the
    /// users they gave a new pair. `nil` when no row is new.
    /// - Complexity: O(rows × (the user's pairs + days)) — the batch, not the client.
    static func appending(to previous: UsageTail?, base: UsageIndex, client: ClientStore,
                          users: [UInt32], apps: [UInt32]) -> (tail: UsageTail, added: [UInt64], newPairUsers: [UInt32])? {
        let L = base.dayCount - 1, E = base.entityCount, W = base.departmentMaskWords
        let pairs = base.basePairs
        // The writer's state: the previous tail's if it is the newest of its chain, else rebuilt.
        let state: WriterState
        if let previous, previous.state.serial == previous.serial {
            state = previous.state
        } else {
            state = WriterState(pairs: pairs, userCount: client.users.count)
            if let previous {
                for e in 0..<E { previous.users(e)?.forEach { state.held.insert(UInt64($0) << 32 | UInt64(e)) } }
                previous.rows.forEach { r in
                    let u = UInt32(truncatingIfNeeded: r >> 32), a = Int(UInt32(truncatingIfNeeded: r))
                    if pairs.pair(user: Int(u), app: a) == nil { state.pairCounts[Int(u)] += 1 }
                }
            }
        }
        var entities = previous?.entities ?? [EntityTail?](repeating: nil, count: E)
        var rows: [UInt64] = []
        var links: [PairLink] = []
        var head = previous?.pairHead ?? [Int32](repeating: -1, count: client.users.count)
        let rowBase = previous?.rows.count ?? 0
        var newPairUsers: [UInt32] = []
        var added: [[UInt32]] = .init(repeating: [], count: E)
        let classBits = client.appClassBits
        let masks = client.userDepartmentMasks
        func add(_ u: UInt32, _ e: Int, baseLast: Int) {
            if entities[e] == nil {
                entities[e] = EntityTail(users: .empty, before: [UInt32](repeating: 0, count: base.dayCount + 1),
                                         mask: [UInt64](repeating: 0, count: base.hasDepartmentMasks ? W : 0))
            }
            entities[e]!.before.withUnsafeMutableBufferPointer { b in
                var j = baseLast + 1
                while j <= base.dayCount { b[j] &+= 1; j &+= 1 }
            }
            if base.hasDepartmentMasks, let masks {
                for w in 0..<W { entities[e]!.mask[w] |= masks[Int(u) * W + w] }
            }
            added[e].append(u)
        }
        for (u, a) in zip(users, apps) {
            let ai = Int(a), key = UInt64(u) << 32 | UInt64(a)
            guard !state.held.contains(key) else { continue }
            state.held.insert(key)  // added now, or held by the base: nothing more to do for it
            let pair = pairs.pair(user: Int(u), app: ai)
            let last = pair.flatMap { pairs.lastDay(pair: $0, 0, L) } ?? -1
            guard last < L else { continue }  // the base holds the row
            if pair == nil {
                state.pairCounts[Int(u)] += 1
                newPairUsers.append(u)
            }
            links.append(PairLink(pair: TailPair(app: a, basePair: pair.map { Int32($0) } ?? -1, baseLast: Int32(last)), next: head[Int(u)]))
            head[Int(u)] = Int32(rowBase + rows.count)
            rows.append(key)
            add(u, ai, baseLast: last)
            // Each class with the app the user is not settled in yet: the user's last base day
            // over the class's apps, all such classes in one pass over the user's pairs; the
            // user is new to a class on the last day when that is before it. Settled either way.
            var classes: [(entity: Int, last: Int)] = []
            for c in AppClass.allCases where classBits[ai] & (1 << UInt8(c.rawValue)) != 0 { classes.append((base.entity(c), -1)) }
            if let e = base.entity(category: client.apps[ai].category) { classes.append((e, -1)) }
            classes.removeAll { state.held.contains(UInt64(u) << 32 | UInt64($0.entity)) }
            guard !classes.isEmpty else { continue }
            for p in Int(pairs.userStart[Int(u)])..<Int(pairs.userStart[Int(u) + 1]) {
                let x = Int(pairs.pairApp[p])
                var d: Int?? = .none  // the pair's last day, read once if some class needs it
                for j in classes.indices where Self.app(x, isIn: classes[j].entity, base: base, client: client) {
                    if d == nil { d = .some(pairs.lastDay(pair: p, 0, L)) }
                    if let day = d!, day > classes[j].last { classes[j].last = day }
                }
            }
            for (e, classLast) in classes {
                state.held.insert(UInt64(u) << 32 | UInt64(e))
                if classLast < L { add(u, e, baseLast: classLast) }  // else active in the class on the last day already
            }
        }
        guard !rows.isEmpty else { return nil }
        for e in 0..<E where !added[e].isEmpty { entities[e]!.users = entities[e]!.users.appending(added[e]) }
        state.serial += 1
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let allRows = (previous?.rows ?? .empty).appending(rows), allLinks = (previous?.links ?? .empty).appending(links)
        var grouped = previous?.grouped ?? .empty
        if let made = state.regrouped.withLock({ r in defer { r.made = nil }; return r.made }), made.count > grouped.count { grouped = made }
        let recent = allRows.count - grouped.count
        if recent > min(regroupRows, max(16, grouped.count / 4)) {
            // A large tail is grouped again off the commit thread, taken by a later version
            // (3–10 ms on the commit thread at 476,537 rows, every eighth 1,000-row batch: a
            // tenth of the acknowledgements, in `tally bench --tail-fraction 0.01` timed per
            // batch); a small one, or one whose regrouping fell far behind, here.
            if allRows.count <= 65_536 || recent > 4 * regroupRows {
                grouped = grouped.adding(allLinks, rows: allRows, userCount: client.users.count)
            } else if state.regrouped.withLock({ r in defer { r.running = true }; return !r.running }) {
                let from = grouped, users = client.users.count
                DispatchQueue.global(qos: .utility).async {
                    let made = from.adding(allLinks, rows: allRows, userCount: users)
                    state.regrouped.withLock { $0 = (made, false) }
                }
            }
        }
        let tail = UsageTail(day: L, since: previous?.since ?? Double(now.tv_sec) + Double(now.tv_nsec) / 1e9, entities: entities, rows: allRows,
                             links: allLinks, pairHead: head, grouped: grouped, base: base,
                             state: state, serial: state.serial)
        return (tail, rows, newPairUsers)
    }

    /// Whether app `a` is in class entity `e` (a fixed class or a category's).
    @inline(__always)
    static func app(_ a: Int, isIn e: Int, base: UsageIndex, client: ClientStore) -> Bool {
        let fixed = e - base.appCount
        if fixed < AppClass.allCases.count { return client.appClassBits[a] & (1 << UInt8(fixed)) != 0 }
        return base.entity(category: client.apps[a].category) == e
    }
}

extension PairIndex {
    /// The pair of user `u` and app `a`, if the user ever used the app: a binary search of the
    /// user's apps (ascending).
    public func pair(user u: Int, app a: Int) -> Int? {
        var lo = Int(userStart[u]), hi = Int(userStart[u + 1])
        while lo < hi {
            let m = (lo + hi) >> 1
            let x = Int(pairApp[m])
            if x == a { return m }
            if x < a { lo = m + 1 } else { hi = m }
        }
        return nil
    }
}
