/// A client version's (user, app) pairs as the query layer reads them: the base's
/// ``PairIndex``, and when the version has a tail (``UsageTail``), the tail's rows read beside it
/// instead of a pair index made again with them. Every tail row is on the base's last day `L`, so
/// a tail row either gives a base pair the day `L` (its `basePair`) or is a new pair whose only
/// day is `L`; and a base pair never holds `L` for a row the tail has.
///
/// Why not a copy: the copy cost O(pairs + stored days) per version — 27–28 ms on the 47.6 M-row
/// client with a 1% tail, paid by the first request of each version that read the pairs (D, L,
/// department filters read user-major), and every append makes a version: with appends
/// streaming in, D's pages over HTTP had p99 77 ms (docs/BENCHMARKS.md, "Appends into tails").
/// The view costs nothing to make. A user's tail rows are read contiguously (the tail's rows
/// grouped by user, ``UsageTail/Grouped``) and through a short chain for the rows appended
/// since the last grouping; each row carries its base pair's last day.
///
/// Loops over a user's pairs read `base`'s pairs as before, then the user's tail rows
/// (``forEachTailPair(user:_:)``), with what the tail changes:
/// - a count of apps with a day in `lo…hi` adds a tail row when `lo ≤ L ≤ hi` and its base pair
///   (if any) has no day in `lo…hi`, that is when the pair's last base day is before `lo`
///   (``tailApps(user:_:_:mask:)``);
/// - a union of days adds `L` when `lo ≤ L ≤ hi` and the user has a tail row of the apps;
/// - a pair's last day becomes `L`, its day count one more.
public struct PairView: Sendable {
    /// The base's pairs: a version without a tail reads only these.
    public let base: PairIndex
    @usableFromInline let tail: UsageTail?

    init(base: PairIndex, tail: UsageTail?) {
        self.base = base
        self.tail = tail
    }

    /// The tail's day offset (the index's last day), or `nil` without a tail.
    @inlinable public var tailDay: Int? { tail?.day }

    /// Calls `body` with the app, the base pair (or -1, a pair only the tail has) and that
    /// pair's last day in the base (or -1) of each of user `u`'s tail rows. Nothing without a
    /// tail.
    @inlinable @inline(__always)
    public func forEachTailPair(user u: Int, _ body: (_ app: Int, _ basePair: Int, _ baseLast: Int) -> Void) {
        guard let tail, tail.hasPairs(user: u) else { return }
        tail.forEachPair(user: u) { body(Int($0.app), Int($0.basePair), Int($0.baseLast)) }
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
        if let tail { for i in 0..<tail.rows.count where tail.links[i].pair.basePair < 0 { n += 1 } }
        return n
    }

    /// Apps of user `u` (all, or those `mask` keeps) that the tail makes active within `lo…hi`
    /// and the base does not: what a count of the base's pairs misses.
    @inlinable @inline(__always)
    public func tailApps(user u: Int, _ lo: Int, _ hi: Int, mask: UnsafeBufferPointer<Bool>? = nil) -> Int {
        guard let tail, tail.hasPairs(user: u), lo <= tail.day, tail.day <= hi else { return 0 }
        var n = 0
        if let mask {
            tail.forEachPair(user: u) { n &+= mask[Int($0.app)] && Int($0.baseLast) < lo ? 1 : 0 }
            return n
        }
        let g = tail.grouped
        if !g.start.isEmpty {
            let s = Int(g.start[u]), e = Int(g.start[u &+ 1])
            let key = UInt16(truncatingIfNeeded: lo)  // baseLast < lo ⇔ baseLast + 1 ≤ lo (lo ≤ the tail's day < 65,536)
            g.lastPlusOne.withUnsafeBufferPointer { b in
                var k = s
                while k < e {
                    n &+= b[k] <= key ? 1 : 0
                    k &+= 1
                }
            }
        }
        if tail.pairHead[u] >= g.count { tail.forEachRecentPair(user: u) { n &+= Int($0.baseLast) < lo ? 1 : 0 } }
        return n
    }

    /// Whether user `u` has a tail row (of an app `mask` keeps) within `lo…hi`.
    @inlinable @inline(__always)
    public func hasTailDay(user u: Int, _ lo: Int, _ hi: Int, mask: UnsafeBufferPointer<Bool>? = nil) -> Bool {
        guard let tail, tail.hasPairs(user: u), lo <= tail.day, tail.day <= hi else { return false }
        guard let mask else { return true }
        var any = false
        tail.forEachPair(user: u) { any = any || mask[Int($0.app)] }
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
        if let tail, tail.hasPairs(user: u), lo <= tail.day, tail.day <= hi {
            var kept = mask == nil
            tail.forEachPair(user: u) { kept = kept || mask![Int($0.app)] }
            if kept { return tail.day }
        }
        return base.lastDay(user: u, lo, hi, mask: mask)
    }

    /// The first day offset within `lo…hi` on which user `u` used any app (or any app `mask`
    /// keeps), or `nil`.
    public func firstDay(user u: Int, _ lo: Int, _ hi: Int, mask: [Bool]? = nil) -> Int? {
        if let d = base.firstDay(user: u, lo, hi, mask: mask) { return d }
        guard let tail, tail.hasPairs(user: u), lo <= tail.day, tail.day <= hi else { return nil }
        var kept = mask == nil
        tail.forEachPair(user: u) { kept = kept || mask![Int($0.app)] }
        return kept ? tail.day : nil
    }
}
