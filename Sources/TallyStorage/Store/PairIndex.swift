/// The user-major view of a client's usage: for every user, the apps they ever used (ascending)
/// and, per (user, app) pair, the days they used it — a bitset over the client's days when the
/// pair is busy, a sorted list of day offsets when it is not (whichever is smaller).
///
/// The app-major bitmaps answer "how many users did each app have"; this answers the transposed
/// question, "how many apps and how many days did each user have", in one pass over the pairs
/// reading only the words of the range, whatever app filter applies.
public final class PairIndex: @unchecked Sendable {
    /// Pairs of user `u`: `userStart[u] ..< userStart[u + 1]`.
    public let userStart: UnsafeMutableBufferPointer<UInt32>
    /// The app of each pair.
    public let pairApp: UnsafeMutableBufferPointer<UInt32>
    /// Per pair: bit 63 set for a bitset (offset in `words`, `wordsPerPair` words), clear for a
    /// list (offset in `days`); bits 32…62 the number of days; bits 0…31 the offset.
    public let pairInfo: UnsafeMutableBufferPointer<UInt64>
    public let words: UnsafeMutableBufferPointer<UInt64>
    public let days: UnsafeMutableBufferPointer<UInt16>
    public let wordsPerPair: Int
    /// Distinct users of each app over the whole history (its number of pairs).
    public let appUsers: [UInt32]
    /// Per pair, its days from offset ``recentStart`` on (the client's last 64 days), bit 0 =
    /// that day — kept by clients of at least ``recentMinRows`` rows, empty otherwise. A range
    /// inside those days (a 30-day period and its comparison ending on the newest day) is one
    /// 8-byte read a pair, read in pair order, instead of the pair's information and its words
    /// or day list: docs/BENCHMARKS.md, "The pairs' recent days".
    public let recent: UnsafeMutableBufferPointer<UInt64>
    /// The first day offset ``recent`` holds; `Int.max` when it is empty.
    public let recentStart: Int
    /// The client's last day offset: a range from 0 to it holds every day of every pair.
    public let lastDayOffset: Int
    /// Rows from which a client keeps ``recent`` (8 bytes a pair).
    public static let recentMinRows = 1_000_000

    /// The region the buffers are in (``StoreMemory``), or `nil` for the heap.
    let memory: StoreMemory?
    /// The index whose buffers this one reads (and keeps alive) beside user starts of its own,
    /// for a user domain grown past it (``init(padding:users:)``).
    let source: PairIndex?

    /// Users the index covers: `userStart.count - 1`.
    @inlinable public var userCount: Int { userStart.count &- 1 }

    /// `source`'s pairs over a domain of `users` users (at least its own): the users past its
    /// own, added to the client since (docs/APPENDS.md, "New users, departments and memberships in the tail"), have no pair.
    /// Every buffer is `source`'s but the user starts.
    /// - Complexity: O(users).
    init(padding source: PairIndex, users: Int) {
        let n = source.userCount
        precondition(users >= n, "a domain grows")
        let s = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: users + 1)
        _ = s.initialize(from: source.userStart)
        s[(n + 1)...].initialize(repeating: source.userStart[n])
        self.source = source
        memory = nil
        userStart = s
        pairApp = source.pairApp
        pairInfo = source.pairInfo
        words = source.words
        days = source.days
        wordsPerPair = source.wordsPerPair
        appUsers = source.appUsers
        recent = source.recent
        recentStart = source.recentStart
        lastDayOffset = source.lastDayOffset
    }

    convenience init(userStart: [UInt32], pairApp: [UInt32], pairInfo: [UInt64], words: [UInt64], days: [UInt16], wordsPerPair: Int,
                     dayCount: Int, keepsRecent: Bool) {
        let memory = StoreMemory.current
        self.init(adopting: frozenCopy(userStart, in: memory), pairApp: frozenCopy(pairApp, in: memory),
                  pairInfo: frozenCopy(pairInfo, in: memory), words: frozenCopy(words, in: memory), days: frozenCopy(days, in: memory),
                  wordsPerPair: wordsPerPair, memory: memory, dayCount: dayCount, keepsRecent: keepsRecent)
    }

    /// Takes buffers allocated from `memory` (``StoreMemory/allocate(_:capacity:in:)``) and frees them with itself.
    /// - Parameters:
    ///   - dayCount: the client's days (``recent`` holds the last 64).
    ///   - keepsRecent: whether to keep ``recent`` (a client of ``recentMinRows`` rows or more;
    ///     tests keep it on small ones).
    init(adopting userStart: UnsafeMutableBufferPointer<UInt32>, pairApp: UnsafeMutableBufferPointer<UInt32>,
         pairInfo: UnsafeMutableBufferPointer<UInt64>, words: UnsafeMutableBufferPointer<UInt64>, days: UnsafeMutableBufferPointer<UInt16>,
         wordsPerPair: Int, memory: StoreMemory?, dayCount: Int, keepsRecent: Bool) {
        self.memory = memory
        source = nil
        self.userStart = userStart
        self.pairApp = pairApp
        self.pairInfo = pairInfo
        self.words = words
        self.days = days
        self.wordsPerPair = wordsPerPair
        var counts = [UInt32]()
        for a in pairApp {
            if Int(a) >= counts.count { counts.append(contentsOf: repeatElement(0, count: Int(a) + 1 - counts.count)) }
            counts[Int(a)] += 1
        }
        appUsers = counts
        lastDayOffset = dayCount - 1
        // Past 64 days only: within them a bitset pair is one word already.
        if keepsRecent && dayCount > 64 && !pairInfo.isEmpty {
            let start = dayCount - 64
            recentStart = start
            recent = StoreMemory.allocate(UInt64.self, capacity: pairInfo.count, in: memory)
            for p in 0..<pairInfo.count {
                let info = pairInfo[p]
                let off = Int(truncatingIfNeeded: info & 0xFFFF_FFFF)
                var x: UInt64 = 0
                if info >> 63 != 0 {
                    let k = off + start >> 6, shift = UInt64(start & 63)
                    x = words[k] >> shift
                    if shift != 0 && start >> 6 + 1 < wordsPerPair { x |= words[k + 1] << (64 - shift) }
                } else {
                    let count = Self.dayCount(info: info)
                    for i in off..<(off + count) where Int(days[i]) >= start { x |= 1 << UInt64(Int(days[i]) - start) }
                }
                recent[p] = x
            }
        } else {
            recentStart = Int.max
            recent = UnsafeMutableBufferPointer(start: nil, count: 0)
        }
    }

    /// The number of days a pair's information (``pairInfo``) states: bits 32…62.
    @inlinable @inline(__always)
    public static func dayCount(info: UInt64) -> Int { Int(truncatingIfNeeded: (info >> 32) & 0x7FFF_FFFF) }

    /// How a range `lo…hi` inside ``recent`` is read from it: a pair's days there are
    /// `recent[p] >> shift & mask` (bit 0 = day `lo`); `nil` when the range is not inside it.
    /// For loops over many pairs, which then read one word a pair with no test of the range.
    @inlinable @inline(__always)
    public func recentWindow(_ lo: Int, _ hi: Int) -> (shift: UInt64, mask: UInt64)? {
        let shift = lo &- recentStart
        guard shift >= 0 && shift < 64 && hi >= lo else { return nil }  // (an empty range: as before)
        let n = hi &- lo &+ 1
        return (UInt64(shift), n >= 64 ? ~0 : (1 &<< UInt64(n)) &- 1)
    }

    /// The days of pair `p` within `lo…hi` from ``recent`` (bit 0 = day `lo`), when the range
    /// lies within it; `nil` otherwise.
    @inlinable @inline(__always)
    func recentDays(pair p: Int, _ lo: Int, _ hi: Int) -> UInt64? {
        guard let (shift, mask) = recentWindow(lo, hi) else { return nil }
        return recent[p] &>> shift & mask
    }

    /// Number of pairs (apps over the whole history) of user `u`.
    @inlinable @inline(__always)
    public func pairCount(user u: Int) -> Int { Int(userStart[u &+ 1] &- userStart[u]) }

    /// Distinct apps of user `u` with a day within offsets `lo…hi` (every app, or those `mask`
    /// keeps).
    /// - Complexity: O(pairs of the user × range words).
    @inlinable
    public func appCount(user u: Int, _ lo: Int, _ hi: Int, mask: UnsafeBufferPointer<Bool>? = nil) -> Int {
        var n = 0
        var p = Int(userStart[u])
        let end = Int(userStart[u &+ 1])
        if let mask {
            while p < end {
                if mask[Int(pairApp[p])] && hasDay(pair: p, lo, hi) { n &+= 1 }
                p &+= 1
            }
        } else {
            while p < end {
                if hasDay(pair: p, lo, hi) { n &+= 1 }
                p &+= 1
            }
        }
        return n
    }

    /// Distinct users of app `a` over the whole history.
    public func lifetimeUsers(app a: Int) -> Int { a < appUsers.count ? Int(appUsers[a]) : 0 }

    deinit {
        guard source == nil else {  // the other buffers are the source's
            userStart.deallocate()
            return
        }
        release(recent, in: memory)
        release(userStart, in: memory)
        release(pairApp, in: memory)
        release(pairInfo, in: memory)
        release(words, in: memory)
        release(days, in: memory)
    }

    public var pairCount: Int { pairApp.count }

    public var byteCount: Int {
        userStart.count * 4 + pairApp.count * 4 + pairInfo.count * 8 + words.count * 8 + days.count * 2
            + appUsers.count * 4 + recent.count * 8
    }

    /// Builds from rows sorted by (app, user, day), unique, as `(app, user, day offset)`.
    /// - Parameter recentMinRows: the rows from which ``recent`` is kept.
    /// - Complexity: O(rows + pairs log pairs).
    static func build(rowCount n: Int, userCount: Int, dayCount: Int, recentMinRows: Int = PairIndex.recentMinRows, row: (Int) -> (app: Int, user: UInt32, day: Int)) -> PairIndex {
        // Pairs in (app, user) order, with where their rows start.
        var pairs: [(key: UInt64, first: Int, count: Int)] = []
        var i = 0
        while i < n {
            let (a, u, _) = row(i)
            var j = i + 1
            while j < n {
                let (a2, u2, _) = row(j)
                if a2 != a || u2 != u { break }
                j += 1
            }
            pairs.append((UInt64(u) << 32 | UInt64(a), i, j - i))
            i = j
        }
        pairs.sort { $0.key < $1.key }
        let wordsPerPair = (dayCount + 63) / 64
        var userStart = [UInt32](repeating: 0, count: userCount + 1)
        var pairApp: [UInt32] = [], pairInfo: [UInt64] = [], words: [UInt64] = [], days: [UInt16] = []
        pairApp.reserveCapacity(pairs.count)
        pairInfo.reserveCapacity(pairs.count)
        for p in pairs { userStart[Int(p.key >> 32) + 1] += 1 }
        for u in 0..<userCount { userStart[u + 1] += userStart[u] }
        for p in pairs {
            pairApp.append(UInt32(truncatingIfNeeded: p.key))
            // A list costs 2 bytes a day, a bitset 8 bytes a word of the client's days.
            if p.count * 2 < wordsPerPair * 8 && dayCount <= 65_536 {
                pairInfo.append(UInt64(p.count) << 32 | UInt64(days.count))
                for k in p.first..<(p.first + p.count) { days.append(UInt16(row(k).day)) }
            } else {
                pairInfo.append(1 << 63 | UInt64(p.count) << 32 | UInt64(words.count))
                let base = words.count
                words.append(contentsOf: repeatElement(0, count: wordsPerPair))
                for k in p.first..<(p.first + p.count) {
                    let d = row(k).day
                    words[base + d >> 6] |= 1 << UInt64(d & 63)
                }
            }
        }
        return PairIndex(userStart: userStart, pairApp: pairApp, pairInfo: pairInfo, words: words, days: days,
                         wordsPerPair: wordsPerPair, dayCount: dayCount, keepsRecent: n >= recentMinRows)
    }

    /// ORs the days of pair `p` within offsets `lo…hi` into `acc` (bit 0 = day `lo`), and tells
    /// whether there were any.
    /// - Complexity: O(words of the range) for a bitset, O(log days + days in range) for a list.
    @inlinable @inline(__always)
    public func days(pair p: Int, _ lo: Int, _ hi: Int, into acc: UnsafeMutablePointer<UInt64>) -> Bool {
        if let x = recentDays(pair: p, lo, hi) {
            acc[0] |= x
            return x != 0
        }
        let info = pairInfo[p]
        let off = Int(truncatingIfNeeded: info & 0xFFFF_FFFF)
        if info >> 63 != 0 {
            // A range past the last day (a tail's next day) reads no word past the pair's.
            let hi = min(hi, lastDayOffset)
            guard lo <= hi else { return false }
            let w = words.baseAddress! + off
            var any: UInt64 = 0
            let shift = lo & 63
            let first = lo >> 6, last = hi >> 6
            // Shift the range so that day `lo` lands on bit 0 of acc[0].
            var k = 0
            var wi = first
            while wi <= last {
                var x = w[wi] >> UInt64(shift)
                if shift != 0 && wi &+ 1 <= last { x |= w[wi &+ 1] << UInt64(64 &- shift) }
                let remaining = hi &- lo &- (k &<< 6) &+ 1
                if remaining < 64 { x &= (1 << UInt64(remaining)) &- 1 }
                acc[k] |= x
                any |= x
                k &+= 1
                wi &+= 1
                if (k &<< 6) > hi &- lo { break }
            }
            return any != 0
        }
        let count = Self.dayCount(info: info)
        let d = days.baseAddress! + off
        var a = Self.firstDay(atLeast: lo, d, count)
        var any = false
        while a < count && Int(d[a]) <= hi {
            let x = Int(d[a]) &- lo
            acc[x &>> 6] |= 1 << UInt64(x & 63)
            any = true
            a &+= 1
        }
        return any
    }

    /// Writes words `first…last` of pair `p`'s days as a bitset (word `k` holds days `64k…64k+63`)
    /// to `out[0…last − first]`, whole words, and tells whether any day was there.
    /// - Complexity: O(words) for a bitset, O(log days + days in the words) for a list.
    @inlinable @inline(__always)
    public func copyWords(pair p: Int, _ first: Int, _ last: Int, into out: UnsafeMutablePointer<UInt64>) -> Bool {
        let info = pairInfo[p]
        let off = Int(truncatingIfNeeded: info & 0xFFFF_FFFF)
        let n = last &- first &+ 1
        if info >> 63 != 0 {
            // Words past the pair's (a tail's next day in a word of its own) are empty.
            let stored = min(n, (lastDayOffset >> 6) &+ 1 &- first)
            let w = words.baseAddress! + off + first
            var any: UInt64 = 0
            for k in 0..<max(0, stored) {
                out[k] = w[k]
                any |= w[k]
            }
            if stored < n { (out + max(0, stored)).update(repeating: 0, count: n &- max(0, stored)) }
            return any != 0
        }
        out.update(repeating: 0, count: n)
        let count = Self.dayCount(info: info)
        let d = days.baseAddress! + off
        let base = first &<< 6, end = (last &+ 1) &<< 6
        var a = count <= 8 ? 0 : Self.firstDay(atLeast: base, d, count)
        var any = false
        while a < count {
            let x = Int(d[a]) &- base
            a &+= 1
            if x < 0 { continue }
            if x >= end &- base { break }
            out[x &>> 6] |= 1 << UInt64(x & 63)
            any = true
        }
        return any
    }

    /// Whether pair `p` has a day within offsets `lo…hi`.
    /// - Complexity: O(words of the range) for a bitset, O(log days) for a list.
    @inlinable @inline(__always)
    public func hasDay(pair p: Int, _ lo: Int, _ hi: Int) -> Bool {
        if let x = recentDays(pair: p, lo, hi) { return x != 0 }
        if lo <= 0 && hi >= lastDayOffset { return true }  // every pair has a day
        let info = pairInfo[p]
        let off = Int(truncatingIfNeeded: info & 0xFFFF_FFFF)
        if info >> 63 != 0 {
            let hi = min(hi, lastDayOffset)  // (a tail's next day: past every pair's words)
            return lo <= hi && Self.hasBit(words.baseAddress! + off, lo, hi)
        }
        let count = Self.dayCount(info: info)
        let d = days.baseAddress! + off
        let a = Self.firstDay(atLeast: lo, d, count)
        return a < count && Int(d[a]) <= hi
    }

    /// The number of days of pair `p` within offsets `lo…hi`.
    /// - Complexity: O(words of the range) for a bitset, O(log days) for a list.
    @inlinable @inline(__always)
    public func dayCount(pair p: Int, _ lo: Int, _ hi: Int) -> Int {
        if let x = recentDays(pair: p, lo, hi) { return x.nonzeroBitCount }
        let info = pairInfo[p]
        if lo <= 0 && hi >= lastDayOffset { return Self.dayCount(info: info) }
        let off = Int(truncatingIfNeeded: info & 0xFFFF_FFFF)
        if info >> 63 != 0 {
            let hi = min(hi, lastDayOffset)  // (a tail's next day: past every pair's words)
            return lo <= hi ? Self.bitCount(words.baseAddress! + off, lo, hi) : 0
        }
        let count = Self.dayCount(info: info)
        let d = days.baseAddress! + off
        return Self.firstDay(atLeast: hi &+ 1, d, count) &- Self.firstDay(atLeast: lo, d, count)
    }

    /// The number of set bits `lo…hi` of the bitset at `w` (bit `d` of the set is bit `d & 63` of
    /// word `d >> 6`): a pair's days in a range, or a user's (the query layer's user-day bitsets).
    @inlinable @inline(__always)
    public static func bitCount(_ w: UnsafePointer<UInt64>, _ lo: Int, _ hi: Int) -> Int {
        let first = lo &>> 6, last = hi &>> 6
        let headMask = ~UInt64(0) << UInt64(lo & 63), tailMask = ~UInt64(0) >> UInt64(63 &- (hi & 63))
        if first == last { return (w[first] & headMask & tailMask).nonzeroBitCount }
        var n = (w[first] & headMask).nonzeroBitCount &+ (w[last] & tailMask).nonzeroBitCount
        var k = first &+ 1
        while k < last { n &+= w[k].nonzeroBitCount; k &+= 1 }
        return n
    }

    /// Whether any of bits `lo…hi` of the bitset at `w` is set (same layout as ``bitCount(_:_:_:)``).
    @inlinable @inline(__always)
    public static func hasBit(_ w: UnsafePointer<UInt64>, _ lo: Int, _ hi: Int) -> Bool {
        let first = lo &>> 6, last = hi &>> 6
        let headMask = ~UInt64(0) << UInt64(lo & 63), tailMask = ~UInt64(0) >> UInt64(63 &- (hi & 63))
        if first == last { return w[first] & headMask & tailMask != 0 }
        if w[first] & headMask != 0 || w[last] & tailMask != 0 { return true }
        var k = first &+ 1
        while k < last { if w[k] != 0 { return true }; k &+= 1 }
        return false
    }

    /// The words of a bitset pair (at `off` in `words`) that hold days `lo…hi`: `w[first…last]`,
    /// with the masks that keep the range's bits of the first and of the last word.
    @inlinable @inline(__always)
    func rangeWords(_ off: Int, _ lo: Int, _ hi: Int)
        -> (w: UnsafeMutablePointer<UInt64>, first: Int, last: Int, headMask: UInt64, tailMask: UInt64) {
        (words.baseAddress! + off, lo >> 6, hi >> 6, ~UInt64(0) << UInt64(lo & 63), ~UInt64(0) >> UInt64(63 - (hi & 63)))
    }

    /// Rows held: the days of every pair.
    public var rowCount: Int {
        var n = 0
        for info in pairInfo { n &+= Self.dayCount(info: info) }
        return n
    }

    /// Calls `body` with every row, `(user, app, day offset)`, in (user, app, day) order: the
    /// client's rows as the pair index holds them, for a rebuild or an older snapshot format.
    /// The index is the only copy of the rows a client keeps (docs/BENCHMARKS.md, "The rows
    /// kept once").
    /// - Complexity: O(rows + bitset words).
    public func forEachRow(_ body: (UInt32, UInt32, Int) -> Void) {
        for u in 0..<(userStart.count - 1) {
            for p in Int(userStart[u])..<Int(userStart[u + 1]) {
                let info = pairInfo[p], a = pairApp[p]
                let off = Int(truncatingIfNeeded: info & 0xFFFF_FFFF), n = Self.dayCount(info: info)
                if info >> 63 != 0 {
                    for k in 0..<wordsPerPair {
                        var w = words[off + k]
                        while w != 0 {
                            body(UInt32(u), a, k << 6 | w.trailingZeroBitCount)
                            w &= w &- 1
                        }
                    }
                } else {
                    for k in off..<(off + n) { body(UInt32(u), a, Int(days[k])) }
                }
            }
        }
    }

    /// Index of the first of `count` ascending day offsets at `d` that is `lo` or later.
    @inlinable @inline(__always)
    static func firstDay(atLeast lo: Int, _ d: UnsafeMutablePointer<UInt16>, _ count: Int) -> Int {
        var a = 0, b = count
        while a < b {
            let mid = (a &+ b) &>> 1
            if Int(d[mid]) < lo { a = mid &+ 1 } else { b = mid }
        }
        return a
    }
}
