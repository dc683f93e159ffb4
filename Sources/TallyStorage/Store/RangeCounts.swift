import Foundation

/// Exact distinct users of an entity (an app or a class) over every day range of at most `span`
/// days, for the entities busy enough to pay for it: a range's count is then one read, instead
/// of a union of its blocks' bitmaps (which streams kilobytes per app, mostly from memory in a
/// mixed workload).
///
/// Built from the per-day bitmaps with the "previous day" identity: a user counts in
/// `[lo, hi]` on the first day of the range they were active, so
/// `count(lo, hi) = count(lo, hi - 1) + #{users active on hi whose previous active day < lo}`.
/// Per entity that is one pass over its rows plus `days × span` additions.
///
/// A table is kept for an entity when it has at least `minRowsPerEntry` rows (user-days) per
/// table entry — twice that in clients of 65,536 users or more — so the tables cost at most
/// `2 / minRowsPerEntry` bytes per row of the entities that have one. Each table's counts are
/// as wide as its entity's users need, 1 to 32 bits, packed (``bits(maxCount:)``). On the
/// enterprise client (100,000 users) the tables, all 32-bit, took 208 of its 1,359 MB under the
/// one-row rule and 127 MB under the two-row rule, with no endpoint of `tally synth --shape
/// enterprise` slower by more than the run's noise; as wide as their entities, 52 MB
/// (docs/BENCHMARKS.md, "The enterprise client"); packed to their bits, 44 MB.
/// Immutable after `init`.
public final class RangeCounts: @unchecked Sendable {
    /// Longest range a table answers, in days (the API refuses ranges over 366 days).
    public static let maxSpan = 366
    /// The default: tables for entities with at least a row per entry (at most 2 bytes a row of
    /// those entities; on the 20,000-user benchmark client 0.46 bytes a row of the client).
    public static let defaultMinRowsPerEntry = 1
    /// Entities listed in full by every request of some endpoint (AI apps: the AI endpoints count
    /// every one of them, page after page) get a table at this fraction of the rows: counting
    /// them by unions was half of such a request's time. On the benchmark client: 41 more
    /// tables, 5.5 MB (`tally synth --iterations 1 --only summary`).
    public static let listedRowsDivisor = 16
    /// ... but only in clients of this many usage rows or more. A table holds every range of up
    /// to 366 days: about 100 KB at 12 bits, whatever its entity's rows. In a client of 24,000
    /// rows (scale M's median) one AI app's table cost about 4 bytes a row of the client, to save
    /// a union of a few small bitmaps: without them scale M (seed 5) took 4.74 bytes a row by
    /// accounting instead of 4.96 (5.16–5.18 against 5.38–5.40 as RSS growth), and the AI
    /// users list (F) of its eleven clients under 1 M rows, 30 and 366 days, was as fast: 9–25 µs
    /// in process either way, geometric mean of the ratios ×0.92 (`tally bench --runs 201`, four
    /// alternated rounds; docs/BENCHMARKS.md, "AI apps' range tables in small clients"). Clients
    /// of a million rows or more keep them, the 20,000-user client too.
    public static let listedMinClientRows = 1_000_000

    public let dayCount: Int
    public let span: Int
    /// The bits of a table's counts: the fewest that hold every count up to `maxCount`. Any
    /// width from 1 to 32: packed, each count read with one unaligned 64-bit load, a shift and
    /// a mask. With the widths of 8, 12, 16 and 32 bits only, scale M (seed 5) held 4.7 MiB of
    /// tables; the largest client's (900 users over 800 days) took 12 bits where 10 hold them
    /// (docs/BENCHMARKS.md, "Range tables packed to their entity's bits").
    static func bits(maxCount: Int) -> Int { max(1, Int.bitWidth - maxCount.leadingZeroBitCount) }

    /// Bytes of a table of `entries` counts of `bits` bits (whole bytes: each table starts on one).
    static func bytes(entries: Int, bits: Int) -> Int { (entries * bits + 7) >> 3 }

    /// Bytes past the last table that a count's 64-bit load may read.
    static let padding = 8

    /// Per entity, where its table starts in ``counts`` (in bytes) shifted left by 6, with its
    /// counts' bits in the low six; -1 when it has none. One read tells a count where and how
    /// wide it is.
    ///
    /// Each table takes the width of the most users its entity can have over any range (its
    /// users over the whole history, ``init``'s `entityUsers`), not the client's: on scale L's
    /// largest client (20,000 users) 144 of its 191 tables are of entities under 4,096 users,
    /// and took 16 bits a count when the client's users set the width (docs/BENCHMARKS.md,
    /// "Range tables as wide as their entity").
    let tableStart: [Int]
    /// The tables, one after another, each from a whole byte, then ``padding`` bytes.
    let counts: UnsafeMutableBufferPointer<UInt8>
    /// The region the tables are in (``StoreMemory``), or `nil` for the heap.
    let memory: StoreMemory?
    /// Number of entities with a table.
    public let tableCount: Int
    /// Number of tables of each width: entry `b` counts the tables of `b`-bit counts (0…32).
    public let tablesByBits: [Int]

    /// Entries of one entity's table: ranges starting on each day, at most `span` long, inside
    /// the client's days.
    static func entries(dayCount: Int, span: Int) -> Int {
        let full = dayCount - span + 1
        return full * span + (span - 1) * span / 2
    }

    /// Offset of the row of ranges starting at day `lo` within an entity's table.
    @inline(__always)
    func rowOffset(_ lo: Int) -> Int {
        let full = dayCount &- span &+ 1
        if lo <= full { return lo &* span }
        let t = lo &- full
        return full &* span &+ t &* (span &- 1) &- (t &* (t &- 1)) / 2
    }

    /// Builds the tables of the entities that qualify, reading each one's users day by day.
    /// - Parameters:
    ///   - entityRows: rows (user-days) of each entity.
    ///   - entityUsers: distinct users of each entity over the whole history, or at least as
    ///     many (its table's width follows: see ``tableStart``); `nil`: the client's users.
    ///   - listed: entities listed in full by some endpoint (see ``listedRowsDivisor``); may be
    ///     shorter than `entityRows` (the rest are not).
    ///   - usersOnDay: appends the users of `entity` on day `day` to its buffer (a day at a time:
    ///     one call per entity and day, not per user). Called from several threads at once.
    public init(dayCount: Int, userCount: Int, entityRows: [Int], entityUsers: [Int]? = nil, minRowsPerEntry: Int, listed: [Bool] = [],
                usersOnDay: (_ entity: Int, _ day: Int, _ users: inout [UInt32]) -> Void) {
        self.dayCount = dayCount
        span = min(dayCount, Self.maxSpan)
        let entries = dayCount > 0 ? Self.entries(dayCount: dayCount, span: span) : 0
        // Which entities have a table follows the client's width, as before tables had widths of
        // their own: 32-bit counts need twice the rows per entry for the same bytes per row.
        let widthFactor = userCount > Int(UInt16.max) ? 2 : 1
        var widths = [Int?](repeating: nil, count: entityRows.count)
        for (e, rows) in entityRows.enumerated() where entries > 0 && rows > 0 {
            let divisor = e < listed.count && listed[e] ? Self.listedRowsDivisor : 1
            guard rows &* divisor >= minRowsPerEntry &* entries &* widthFactor else { continue }
            widths[e] = Self.bits(maxCount: min(userCount, entityUsers.map { $0[e] } ?? userCount))
        }
        var starts = [Int](repeating: -1, count: entityRows.count)
        var total = 0
        var byBits = [Int](repeating: 0, count: 33)
        for case let (e, bits?) in widths.enumerated() {
            starts[e] = total << 6 | bits
            total += Self.bytes(entries: entries, bits: bits)
            byBits[bits] += 1
        }
        tableStart = starts
        tableCount = widths.filter { $0 != nil }.count
        tablesByBits = byBits
        let memory = StoreMemory.current
        self.memory = memory
        counts = StoreMemory.allocate(UInt8.self, capacity: total == 0 ? 0 : total + Self.padding, in: memory)
        if total == 0 { return }
        // The tables are independent: entities are dealt to one part per core, heaviest first
        // to the lightest part, and the parts filled in parallel (each with its own scratch) — at
        // the caller's priority, so that a merge's tables give way to the commit thread.
        // A snapshot's load rebuilds them, so this is most of its time.
        let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, tableCount))
        var parts = [[Int]](repeating: [], count: threads), load = [Int](repeating: 0, count: threads)
        for e in entityRows.indices.filter({ starts[$0] >= 0 }).sorted(by: { entityRows[$0] > entityRows[$1] }) {
            let p = load.indices.min { load[$0] < load[$1] }!
            parts[p].append(e)
            load[p] += entityRows[e]
        }
        let dealt = parts, placed = starts
        withoutActuallyEscaping(usersOnDay) { usersOnDay in
            let source = UnsafeMutableSendable(usersOnDay)
            let base = UnsafeMutableSendable(UnsafeMutableRawPointer(counts.baseAddress!))
            concurrentPerformInheriting(iterations: threads) { i in
                // Each table is counted in 32 bits, then packed at its width into its place
                // (byte by byte: a table's last byte is its own). Every entry is written, so the
                // scratch is cleared once.
                let scratch = UnsafeMutablePointer<UInt32>.allocate(capacity: entries)
                defer { scratch.deallocate() }
                scratch.initialize(repeating: 0, count: entries)
                fill(userCount: userCount, entities: dealt[i], usersOnDay: source.value, table: { _ in scratch }) { e in
                    Self.pack(scratch, count: entries, bits: placed[e] & 63, into: base.value + (placed[e] >> 6))
                }
            }
        }
    }

    /// Packs `count` counts of at most `bits` bits each at `out`, count `k` from bit `k · bits`
    /// (little-endian), writing its ``bytes(entries:bits:)`` bytes and no other.
    static func pack(_ counts: UnsafePointer<UInt32>, count: Int, bits: Int, into out: UnsafeMutableRawPointer) {
        var pending: UInt64 = 0, held = 0, at = 0
        for k in 0..<count {
            pending |= UInt64(counts[k]) << UInt64(held)
            held += bits
            while held >= 8 {
                out.storeBytes(of: UInt8(truncatingIfNeeded: pending), toByteOffset: at, as: UInt8.self)
                pending >>= 8
                held -= 8
                at += 1
            }
        }
        if held > 0 { out.storeBytes(of: UInt8(truncatingIfNeeded: pending), toByteOffset: at, as: UInt8.self) }
    }

    /// Fills the table of each of `entities` at `table(entity)`, calling `filled(entity)` after each.
    private func fill<T: FixedWidthInteger>(userCount: Int, entities: [Int],
                                            usersOnDay: (_ entity: Int, _ day: Int, _ users: inout [UInt32]) -> Void,
                                            table tableOf: (Int) -> UnsafeMutablePointer<T>,
                                            filled: (Int) -> Void = { _ in }) {
        // Scratch: each user's previous active day (-1: none yet), and per day the number of
        // today's users whose previous active day it was.
        var last = [Int32](repeating: -1, count: userCount)
        var prevHistogram = [Int](repeating: 0, count: dayCount)
        var touched: [Int32] = []
        var users: [UInt32] = []
        for e in entities {
            for u in last.indices { last[u] = -1 }
            let table = tableOf(e)
            for hi in 0..<dayCount {
                touched.removeAll(keepingCapacity: true)
                let oldest = hi - span
                users.removeAll(keepingCapacity: true)
                usersOnDay(e, hi, &users)
                let today = users.count
                for u in users {
                    let p = last[Int(u)]
                    if p >= 0 && Int(p) > oldest {
                        if prevHistogram[Int(p)] == 0 { touched.append(p) }
                        prevHistogram[Int(p)] += 1
                    }
                    last[Int(u)] = Int32(hi)
                }
                // Ranges [lo, hi], lo from hi down: today's users whose previous day is lo or
                // later were already counted in [lo, hi - 1].
                var seen = 0
                var lo = hi
                while lo > oldest && lo >= 0 {
                    if lo < hi { seen += prevHistogram[lo] }
                    let row = table + rowOffset(lo)
                    let len = hi - lo
                    let before = len == 0 ? 0 : Int(row[len - 1])
                    row[len] = T(truncatingIfNeeded: before + today - seen)
                    lo -= 1
                }
                for p in touched { prevHistogram[Int(p)] = 0 }
            }
            filled(e)
        }
    }

    deinit { release(counts, in: memory) }

    /// Whether `entity` has a table.
    @inline(__always)
    public func has(entity: Int) -> Bool { entity < tableStart.count && tableStart[entity] >= 0 }

    /// Distinct users of `entity` over day offsets `lo…hi`, or `nil` when the entity has no
    /// table or the range is longer than `span`.
    /// - Complexity: O(1).
    @inline(__always)
    public func count(entity: Int, _ lo: Int, _ hi: Int) -> Int? {
        guard entity < tableStart.count else { return nil }
        let s = tableStart[entity]
        guard s >= 0, hi &- lo < span, lo >= 0, hi < dayCount, lo <= hi else { return nil }
        let i = rowOffset(lo) &+ (hi &- lo)
        return Self.unpack(UnsafeRawPointer(counts.baseAddress!) + (s &>> 6), i, bits: s & 63)
    }

    /// Count `i` of a table packed by ``pack(_:count:bits:into:)`` at `table`.
    @inline(__always)
    static func unpack(_ table: UnsafeRawPointer, _ i: Int, bits: Int) -> Int {
        let bit = i &* bits
        let word = table.loadUnaligned(fromByteOffset: bit &>> 3, as: UInt64.self)
        return Int(truncatingIfNeeded: (word &>> UInt64(bit & 7)) & ((1 &<< UInt64(bits)) &- 1))
    }

    public var byteCount: Int { counts.count + tableStart.count * 8 }
}
