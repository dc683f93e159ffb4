import Dispatch
import Synchronization

/// Each user's first and last day with any activity over the client's whole history, derived
/// from the pair index when a client is built or loaded (O(pairs), 8 bytes a user), and the
/// first days again in ascending order: the directory reports (SPEC §3b, §3c) read a user's
/// first/last active date and "users whose first activity falls in a window" from these
/// instead of scanning rows.
public struct UserActivity: Sendable {
    /// Day offset (from the usage index's first day) of each user's first activity, or -1.
    public let firstOffset: [Int32]
    /// Day offset of each user's last activity, or -1.
    public let lastOffset: [Int32]
    /// Every active user's first offset, ascending.
    public let sortedFirst: [Int32]

    init(pairs: PairIndex, userCount: Int) {
        var first = [Int32](repeating: -1, count: userCount), last = [Int32](repeating: -1, count: userCount)
        for u in 0..<userCount {
            var lo = Int32.max, hi = Int32(-1)
            for p in Int(pairs.userStart[u])..<Int(pairs.userStart[u + 1]) {
                if let (a, b) = pairs.bounds(pair: p) {
                    lo = min(lo, Int32(a))
                    hi = max(hi, Int32(b))
                }
            }
            if hi >= 0 {
                first[u] = lo
                last[u] = hi
            }
        }
        firstOffset = first
        lastOffset = last
        sortedFirst = first.filter { $0 >= 0 }.sorted()
    }

    init(firstOffset: [Int32], lastOffset: [Int32], sortedFirst: [Int32]) {
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.sortedFirst = sortedFirst
    }

    init() {
        firstOffset = []
        lastOffset = []
        sortedFirst = []
    }

    /// Number of values of `sorted` within `lo…hi`.
    /// - Complexity: O(log users).
    public static func count(_ sorted: [Int32], _ lo: Int, _ hi: Int) -> Int {
        guard lo <= hi else { return 0 }
        return lowerBound(sorted, hi + 1) - lowerBound(sorted, lo)
    }

    static func lowerBound(_ a: [Int32], _ v: Int) -> Int {
        var l = 0, h = a.count
        while l < h {
            let m = (l + h) >> 1
            if Int(a[m]) < v { l = m + 1 } else { h = m }
        }
        return l
    }

    public var byteCount: Int { (firstOffset.count + lastOffset.count + sortedFirst.count) * 4 }
}

/// Values derived from an immutable store on first use and kept with it (the query layer's
/// directory orders, its per-class user-day bitsets), told apart by type and `variant`. Each is
/// made once, under its own lock: a request that needs one value does not wait for another being
/// made (the 20,000-user client's directory orders take 73 ms); a read takes two uncontended
/// locks.
public final class DerivedSlot: Sendable {
    struct Key: Hashable {
        let type: ObjectIdentifier
        let variant: Int
    }
    final class Cell: Sendable {
        let value = Mutex<AnyObject?>(nil)
        /// Whether ``DerivedSlot/madeOrStarted(variant:_:)`` started making the value.
        let started = Mutex(false)
    }
    private let cells = Mutex<[Key: Cell]>([:])

    public init() {}

    /// The cell of `key`, made empty the first time.
    private func cell(_ key: Key) -> Cell {
        cells.withLock { c in
            if let cell = c[key] { return cell }
            let cell = Cell()
            c[key] = cell
            return cell
        }
    }

    /// The kept value of type `T` (and `variant`), made by `make` the first time.
    public func get<T: AnyObject & Sendable>(variant: Int = 0, _ make: () -> T) -> T {
        cell(Key(type: ObjectIdentifier(T.self), variant: variant)).value.withLock { v in
            if let t = v as? T { return t }
            let t = make()
            v = t
            return t
        }
    }

    /// The kept value of type `T` (and `variant`) if it is made; if not, `nil` at once, and the
    /// value is made by `make` on a background queue (started once): a request that can answer
    /// another way does so meanwhile, instead of waiting for a derivation that takes longer than
    /// the answer (the 20,000-user client's per-category unions of its approved apps: 57 ms in
    /// process, against 1–4 ms for the category list without them).
    public func madeOrStarted<T: AnyObject & Sendable>(variant: Int = 0, _ make: @escaping @Sendable () -> T) -> T? {
        let c = cell(Key(type: ObjectIdentifier(T.self), variant: variant))
        // Being made (or read) elsewhere: not waited for.
        if case let t?? = c.value.withLockIfAvailable({ $0 as? T }) { return t }
        guard c.started.withLock({ s in defer { s = true }; return !s }) else { return nil }
        DispatchQueue.global(qos: .utility).async { _ = self.get(variant: variant, make) }
        return nil
    }

    /// The kept value of type `T` (and `variant`) if one was made, without making it.
    public func existing<T: AnyObject & Sendable>(_: T.Type, variant: Int = 0) -> T? {
        let cell = cells.withLock { $0[Key(type: ObjectIdentifier(T.self), variant: variant)] }
        return cell?.value.withLock { $0 as? T }
    }

    /// Takes over `other`'s values that are ``DirectoryDerived`` (made from the same users,
    /// departments and apps as this slot's client has). Values already made here stay.
    func inherit(from other: DerivedSlot) {
        let kept: [(Key, any DirectoryDerived)] = other.cells.withLock { c in
            c.compactMap { key, cell in cell.value.withLock { $0 as? any DirectoryDerived }.map { (key, $0) } }
        }
        guard !kept.isEmpty else { return }
        cells.withLock { c in
            for (key, value) in kept where c[key] == nil {
                let cell = Cell()
                cell.value.withLock { $0 = value }
                c[key] = cell
            }
        }
    }
}

extension DerivedSlot {
    /// Makes here, for `client` (whose base index this slot belongs to), each ``UsageDerived``
    /// value `other` holds and this slot lacks: what a client rebuilt with more rows (a merge, a
    /// rebuild off the commit thread) makes on its writer's thread before it is served, and a
    /// reloaded client just after, so that the first request after the swap does not pay for it.
    /// Made under the value's own lock, as ``get(variant:_:)`` makes it: a request that asks
    /// for it meanwhile waits for it rather than making it twice. Returns how many were made.
    /// - Complexity: each value's own derivation (57 ms for the 20,000-user client's per-category
    ///   unions of its approved apps, docs/BENCHMARKS.md).
    @discardableResult
    public func warm(from other: DerivedSlot, client: ClientStore) -> Int {
        guard other !== self else { return 0 }
        let wanted: [(Key, any UsageDerived)] = other.cells.withLock { c in
            c.compactMap { key, cell in cell.value.withLock { $0 as? any UsageDerived }.map { (key, $0) } }
        }
        var made = 0
        for (key, value) in wanted {
            cell(key).value.withLock { v in
                guard v == nil, let next = type(of: value).remade(for: client, variant: key.variant) else { return }
                precondition(ObjectIdentifier(type(of: next)) == key.type, "a value is remade as its own type")
                v = next
                made += 1
            }
        }
        return made
    }
}

/// A value derived from a client's usage (``DerivedSlot``, per base index) that can be made
/// again for a client rebuilt with more rows: ``DerivedSlot/warm(from:client:)``.
public protocol UsageDerived: AnyObject, Sendable {
    /// The value of the same `variant` made for `client`'s base index (its index without a tail),
    /// or `nil` when it does not apply to that client.
    static func remade(for client: ClientStore, variant: Int) -> (any UsageDerived)?
}

/// A derived value (``DerivedSlot``) made only from a client's directory — its users, departments
/// and memberships, its apps (rows and dense numbering) — and not from its usage: a client
/// rebuilt with new usage rows and the same directory keeps it (``ClientStore/appending(users:apps:days:)``)
/// instead of making it again on the next request (the 20,000-user client's user directory took
/// 73 ms after every append: docs/APPENDS.md §12.9).
public protocol DirectoryDerived: AnyObject, Sendable {}

extension PairIndex {
    /// The first and last day offsets of pair `p`, or `nil` when it has none.
    public func bounds(pair p: Int) -> (Int, Int)? {
        // Every day offset is below the bitset width, lists included (a client's days fit it).
        let top = wordsPerPair * 64 - 1
        guard let a = firstDay(pair: p, 0, top), let b = lastDay(pair: p, 0, top) else { return nil }
        return (a, b)
    }

    /// The day list of pair `p` (`nil` for a bitset pair).
    @inline(__always) func list(pair p: Int) -> (days: UnsafeMutablePointer<UInt16>, count: Int)? {
        let info = pairInfo[p]
        guard info >> 63 == 0 else { return nil }
        return (days.baseAddress! + Int(truncatingIfNeeded: info & 0xFFFF_FFFF), Self.dayCount(info: info))
    }

    /// The last day offset of pair `p` within `lo…hi`, or `nil`.
    /// - Complexity: O(1) when the pair has a day in ``recent`` up to `hi` (a client of a
    ///   million rows or more); else O(log days) for a list, O(words of the range) for a bitset.
    public func lastDay(pair p: Int, _ lo: Int, _ hi: Int) -> Int? {
        var hi = min(hi, lastDayOffset)  // (a tail's next day: past every pair's words)
        guard lo <= hi else { return nil }
        // The pair's last 64 days in one word, read first: a tail's apply asks each new row's
        // pair and the user's pairs of its classes for their last day over the whole history
        // (15% of the apply's `perf` samples on the 47.6 M-row client, 2026-12-04).
        if hi >= recentStart {
            let top = hi &- recentStart  // 0…63
            let x = recent[p] & (top >= 63 ? ~0 : (1 &<< UInt64(top &+ 1)) &- 1)
            if x != 0 {
                let d = recentStart &+ 63 &- x.leadingZeroBitCount
                return d >= lo ? d : nil
            }
            if lo >= recentStart { return nil }
            hi = recentStart &- 1
        }
        if let (d, count) = list(pair: p) {
            let i = Self.firstDay(atLeast: hi + 1, d, count) - 1
            return i >= 0 && Int(d[i]) >= lo ? Int(d[i]) : nil
        }
        let (w, first, last, headMask, tailMask) = rangeWords(Int(truncatingIfNeeded: pairInfo[p] & 0xFFFF_FFFF), lo, hi)
        for k in stride(from: last, through: first, by: -1) {
            let x = w[k] & (k == last ? tailMask : ~0) & (k == first ? headMask : ~0)
            if x != 0 { return k * 64 + 63 - x.leadingZeroBitCount }
        }
        return nil
    }

    /// The first day offset of pair `p` within `lo…hi`, or `nil`.
    /// - Complexity: O(log days) for a list, O(words of the range) for a bitset.
    public func firstDay(pair p: Int, _ lo: Int, _ hi: Int) -> Int? {
        let hi = min(hi, lastDayOffset)  // (a tail's next day: past every pair's words)
        guard lo <= hi else { return nil }
        if let (d, count) = list(pair: p) {
            let i = Self.firstDay(atLeast: lo, d, count)
            return i < count && Int(d[i]) <= hi ? Int(d[i]) : nil
        }
        let (w, first, last, headMask, tailMask) = rangeWords(Int(truncatingIfNeeded: pairInfo[p] & 0xFFFF_FFFF), lo, hi)
        for k in first...last {
            let x = w[k] & (k == last ? tailMask : ~0) & (k == first ? headMask : ~0)
            if x != 0 { return k * 64 + x.trailingZeroBitCount }
        }
        return nil
    }

    /// The last day offset within `lo…hi` on which user `u` used any app (or any app `mask`
    /// keeps), or `nil`.
    /// - Complexity: O(pairs of the user × range words).
    public func lastDay(user u: Int, _ lo: Int, _ hi: Int, mask: [Bool]? = nil) -> Int? {
        var best: Int?
        for p in Int(userStart[u])..<Int(userStart[u + 1]) where mask.map({ $0[Int(pairApp[p])] }) ?? true {
            if let d = lastDay(pair: p, max(lo, (best ?? -1) + 1), hi) { best = d }
        }
        return best
    }

    /// The first day offset within `lo…hi` on which user `u` used any app (or any app `mask`
    /// keeps), or `nil`.
    public func firstDay(user u: Int, _ lo: Int, _ hi: Int, mask: [Bool]? = nil) -> Int? {
        var best: Int?
        for p in Int(userStart[u])..<Int(userStart[u + 1]) where mask.map({ $0[Int(pairApp[p])] }) ?? true {
            if let d = firstDay(pair: p, lo, min(hi, (best ?? Int.max) - 1)) { best = d }
        }
        return best
    }
}
