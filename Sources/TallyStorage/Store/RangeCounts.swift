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
/// table entry — twice that when counts are 32-bit (clients of 65,536 users or more; 16-bit
/// below, 12-bit under 4,096) — so the tables cost at most `2 / minRowsPerEntry` bytes per row
/// of the entities that have one, at any width. On the enterprise client (100,000 users) the 32-bit tables under
/// the 16-bit rule took 208 of its 1,359 MB; under this one, 127 MB, with no endpoint of
/// `tally synth --shape enterprise` slower by more than the run's noise (docs/BENCHMARKS.md).
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

    public let dayCount: Int
    public let span: Int
    /// Per entity, the first entry of its table, or -1 when it has none.
    let tableStart: [Int]
    let wide: Bool
    /// Counts of 12 bits, two in three bytes, for clients of fewer than 4,096 users (every
    /// client of scale M): the tables were 0.64 of its 5.43 bytes a usage row in 16 bits. Each
    /// table has an even number of entries, so that it starts on a byte.
    let packed: Bool
    let counts16: UnsafeMutableBufferPointer<UInt16>
    let counts32: UnsafeMutableBufferPointer<UInt32>
    let counts12: UnsafeMutableBufferPointer<UInt8>
    /// The region the tables are in (``StoreMemory``), or `nil` for the heap.
    let memory: StoreMemory?
    /// Number of entities with a table.
    public let tableCount: Int

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
    ///   - listed: entities listed in full by some endpoint (see ``listedRowsDivisor``); may be
    ///     shorter than `entityRows` (the rest are not).
    ///   - usersOnDay: appends the users of `entity` on day `day` to its buffer (a day at a time:
    ///     one call per entity and day, not per user). Called from several threads at once.
    public init(dayCount: Int, userCount: Int, entityRows: [Int], minRowsPerEntry: Int, listed: [Bool] = [],
                usersOnDay: (_ entity: Int, _ day: Int, _ users: inout [UInt32]) -> Void) {
        self.dayCount = dayCount
        span = min(dayCount, Self.maxSpan)
        wide = userCount > Int(UInt16.max)
        packed = userCount < 1 << 12
        let entries = dayCount > 0 ? Self.entries(dayCount: dayCount, span: span) : 0
        let perEntity = packed ? (entries + 1) & ~1 : entries
        var starts = [Int](repeating: -1, count: entityRows.count)
        var total = 0
        // 32-bit counts need twice the rows per entry for the same bytes per row.
        let widthFactor = wide ? 2 : 1
        for (e, rows) in entityRows.enumerated() where perEntity > 0 && rows > 0 {
            let divisor = e < listed.count && listed[e] ? Self.listedRowsDivisor : 1
            guard rows &* divisor >= minRowsPerEntry &* entries &* widthFactor else { continue }
            starts[e] = total
            total += perEntity
        }
        tableStart = starts
        tableCount = starts.filter { $0 >= 0 }.count
        let memory = StoreMemory.current
        self.memory = memory
        counts16 = StoreMemory.allocate(UInt16.self, capacity: wide || packed ? 0 : total, in: memory)
        counts32 = StoreMemory.allocate(UInt32.self, capacity: wide ? total : 0, in: memory)
        // No padding: every table has an even number of entries, so the 16 bits read for a count
        // (``count(entity:_:_:)``) never pass its table's last byte.
        counts12 = StoreMemory.allocate(UInt8.self, capacity: packed ? total / 2 * 3 : 0, in: memory)
        if total == 0 { return }
        // The tables are independent: entities are dealt to one part per core, heaviest first
        // to the lightest part, and the parts filled in parallel (each with its own scratch).
        // A snapshot's load rebuilds them, so this is most of its time.
        let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, tableCount))
        var parts = [[Int]](repeating: [], count: threads), load = [Int](repeating: 0, count: threads)
        for e in entityRows.indices.filter({ starts[$0] >= 0 }).sorted(by: { entityRows[$0] > entityRows[$1] }) {
            let p = load.indices.min { load[$0] < load[$1] }!
            parts[p].append(e)
            load[p] += entityRows[e]
        }
        let dealt = parts
        withoutActuallyEscaping(usersOnDay) { usersOnDay in
            let source = UnsafeMutableSendable(usersOnDay)
            let counts = UnsafeMutableSendable((counts16.baseAddress, counts32.baseAddress, counts12.baseAddress))
            DispatchQueue.concurrentPerform(iterations: threads) { i in
                if wide {
                    fill(userCount: userCount, entities: dealt[i], usersOnDay: source.value) { counts.value.1! + tableStart[$0] }
                } else if packed {
                    // Each table in 16 bits, then packed into its place. Every entry but the
                    // padding one is written, so the scratch is cleared once.
                    let scratch = UnsafeMutablePointer<UInt16>.allocate(capacity: perEntity)
                    defer { scratch.deallocate() }
                    scratch.initialize(repeating: 0, count: perEntity)
                    fill(userCount: userCount, entities: dealt[i], usersOnDay: source.value, table: { _ in scratch }) { e in
                        Self.pack12(scratch, count: perEntity, into: counts.value.2! + tableStart[e] / 2 * 3)
                    }
                } else {
                    fill(userCount: userCount, entities: dealt[i], usersOnDay: source.value) { counts.value.0! + tableStart[$0] }
                }
            }
        }
    }

    /// Packs `count` (even) counts below 4,096 two into three bytes at `out`: the first in bits
    /// 0–11, the second in bits 12–23.
    static func pack12(_ counts: UnsafePointer<UInt16>, count: Int, into out: UnsafeMutablePointer<UInt8>) {
        for k in stride(from: 0, to: count, by: 2) {
            let a = counts[k], b = counts[k + 1], o = out + k / 2 * 3
            o[0] = UInt8(truncatingIfNeeded: a)
            o[1] = UInt8(truncatingIfNeeded: a >> 8) | UInt8(truncatingIfNeeded: b << 4)
            o[2] = UInt8(truncatingIfNeeded: b >> 4)
        }
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

    deinit {
        release(counts16, in: memory)
        release(counts32, in: memory)
        release(counts12, in: memory)
    }

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
        let i = s &+ rowOffset(lo) &+ (hi &- lo)
        if packed {
            // Entry i's 12 bits start at bit 12·i: byte 3·(i/2), low nibble or high.
            let at = (i &>> 1) &* 3 &+ (i & 1)
            let w = Int(UnsafeRawPointer(counts12.baseAddress!).loadUnaligned(fromByteOffset: at, as: UInt16.self))
            return (w &>> ((i & 1) &<< 2)) & 0xFFF
        }
        return wide ? Int(counts32[i]) : Int(counts16[i])
    }

    public var byteCount: Int { counts16.count * 2 + counts32.count * 4 + counts12.count + tableStart.count * 8 }
}
