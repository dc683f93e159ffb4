/// A client version's (user, app) pairs as the query layer reads them: the base's
/// ``PairIndex``, and when the version has a tail (``UsageTail``), the tail's rows read beside it
/// instead of a pair index made again with them. Every tail row is on the base's last day `B` or
/// the tail's next day `D` (the day after, or up to a week on), so a tail row either gives a base
/// pair one of those days (its `basePair`) or belongs to a new pair whose only days are those; a
/// base pair never holds a day a tail row of it has, and a pair has at most one tail row a day.
///
/// Why not a copy: the copy cost O(pairs + stored days) per version — 27–28 ms on the 47.6 M-row
/// client with a 1% tail, paid by the first request of each version that read the pairs (D, L,
/// department filters read user-major), and every append makes a version: with appends
/// streaming in, D's pages over HTTP had p99 77 ms (docs/BENCHMARKS.md, "Appends into tails").
/// The view costs nothing to make. A user's tail rows are read contiguously (the tail's rows
/// grouped by user, ``UsageTail/Grouped``) and through a short chain for the rows appended
/// since the last grouping; each row carries its day and its base pair's last day.
///
/// Loops over a user's pairs read `base`'s pairs as before, then the user's tail rows
/// (``forEachTailPair(user:_:)``), with what the tail changes:
/// - a count of apps with a day in `lo…hi` adds a tail row when its day is in the range, its base
///   pair (if any) has no day in it (the pair's last base day is before `lo`) and the pair's
///   other tail row, if it came first, is not in it (``UsageTail/TailPair/isNew(_:_:)``,
///   ``tailApps(user:_:_:mask:)``);
/// - a union of days adds each tail row's day in the range;
/// - a pair's last day becomes its last tail row's, its day count one more a row.
/// Pair reads of the base past its last day (a range ending on `D`) read no word past a pair's.
public struct PairView: Sendable {
    /// The base's pairs: a version without a tail reads only these.
    public let base: PairIndex
    @usableFromInline let tail: UsageTail?

    init(base: PairIndex, tail: UsageTail?) {
        self.base = base
        self.tail = tail
    }

    /// The base's last day offset `B` (the day of the tail's rows, or of those not on its next day),
    /// or `nil` without a tail.
    @inlinable public var tailDay: Int? { tail?.day }

    /// The tail's last day (its next day with rows on it, else `B`), or `nil` without a tail.
    @inlinable public var tailLastDay: Int? { tail?.lastDay }

    /// Whether the version has tail rows on a day of `lo…hi` (the tail's days are `B` and, with
    /// rows on it, its next day `D`).
    @inlinable public func tailOverlaps(_ lo: Int, _ hi: Int) -> Bool {
        guard let tail else { return false }
        return lo <= tail.lastDay && tail.day <= hi
    }

    /// Calls `body` with each of user `u`'s tail rows (``UsageTail/TailPair``: the app, the
    /// base pair or -1, that pair's last base day or -1, the row's day and the pair's first tail
    /// day), newest first. Nothing without a tail.
    @inlinable @inline(__always)
    public func forEachTailPair(user u: Int, _ body: (UsageTail.TailPair) -> Void) {
        guard let tail, tail.hasPairs(user: u) else { return }
        tail.forEachPair(user: u, body)
    }

    /// Number of pairs (apps over the whole history) of user `u`, the tail's new ones included.
    @inlinable @inline(__always)
    public func pairCount(user u: Int) -> Int {
        guard let tail else { return base.pairCount(user: u) }
        return Int(tail.pairCounts[u])
    }

    /// Every pair of the version.
    public var pairCount: Int {
        var n = base.pairCount
        if let tail { for i in 0..<tail.rows.count where tail.links[i].pair.basePair < 0 && !tail.links[i].pair.twin { n += 1 } }
        return n
    }

    /// Apps of user `u` (all, or those `mask` keeps) that the tail makes active within `lo…hi`
    /// and the base does not: what a count of the base's pairs misses.
    @inlinable @inline(__always)
    public func tailApps(user u: Int, _ lo: Int, _ hi: Int, mask: UnsafeBufferPointer<Bool>? = nil) -> Int {
        guard let tail, tailOverlaps(lo, hi), tail.hasPairs(user: u) else { return 0 }
        var n = 0
        if tail.hasNext {
            // Two days: each row tested on its own (``UsageTail/TailPair/isNew(_:_:)``).
            tail.forEachPair(user: u) { n &+= $0.isNew(lo, hi) && (mask == nil || mask![Int($0.app)]) ? 1 : 0 }
            return n
        }
        if let mask {
            tail.forEachPair(user: u) { n &+= mask[Int($0.app)] && Int($0.baseLast) < lo ? 1 : 0 }
            return n
        }
        let g = tail.grouped
        let key = UInt16(truncatingIfNeeded: lo)  // baseLast < lo ⇔ baseLast + 1 ≤ lo (lo ≤ the tail's day < 65,536)
        n &+= g.old.countNew(user: u, key: key) &+ g.young.countNew(user: u, key: key)
        if tail.pairHead[u] >= g.count { tail.forEachRecentPair(user: u) { n &+= Int($0.baseLast) < lo ? 1 : 0 } }
        return n
    }

    /// Whether user `u` has a tail row (of an app `mask` keeps) within `lo…hi`.
    @inlinable @inline(__always)
    public func hasTailDay(user u: Int, _ lo: Int, _ hi: Int, mask: UnsafeBufferPointer<Bool>? = nil) -> Bool {
        guard let tail, tailOverlaps(lo, hi), tail.hasPairs(user: u) else { return false }
        guard mask != nil || tail.hasNext else { return true }
        var any = false
        tail.forEachPair(user: u) { any = any || ($0.isIn(lo, hi) && (mask == nil || mask![Int($0.app)])) }
        return any
    }

    /// Distinct apps of user `u` with a day within offsets `lo…hi` (every app, or those `mask`
    /// keeps).
    /// - Complexity: O(pairs of the user × range words).
    @inlinable @inline(__always)
    public func appCount(user u: Int, _ lo: Int, _ hi: Int, mask: UnsafeBufferPointer<Bool>? = nil) -> Int {
        base.appCount(user: u, lo, hi, mask: mask) &+ tailApps(user: u, lo, hi, mask: mask)
    }

    /// Distinct users of app `a` over the whole history is ``UsageIndex/lifetimeUsers(app:)``.

    /// The last day offset within `lo…hi` on which user `u` used any app (or any app `mask`
    /// keeps), or `nil`.
    public func lastDay(user u: Int, _ lo: Int, _ hi: Int, mask: [Bool]? = nil) -> Int? {
        if let tail, tailOverlaps(lo, hi), tail.hasPairs(user: u) {
            var last = -1
            tail.forEachPair(user: u) { if $0.isIn(lo, hi) && (mask == nil || mask![Int($0.app)]) { last = max(last, Int($0.day)) } }
            if last >= 0 { return last }
        }
        return base.lastDay(user: u, lo, hi, mask: mask)
    }

    /// The first day offset within `lo…hi` on which user `u` used any app (or any app `mask`
    /// keeps), or `nil`.
    public func firstDay(user u: Int, _ lo: Int, _ hi: Int, mask: [Bool]? = nil) -> Int? {
        if let d = base.firstDay(user: u, lo, hi, mask: mask) { return d }
        guard let tail, tailOverlaps(lo, hi), tail.hasPairs(user: u) else { return nil }
        var first = Int.max
        tail.forEachPair(user: u) { if $0.isIn(lo, hi) && (mask == nil || mask![Int($0.app)]) { first = min(first, Int($0.day)) } }
        return first == .max ? nil : first
    }
}
