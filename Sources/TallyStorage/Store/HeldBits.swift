/// Which (user, entity, day) a tail's chain holds, for its writer: a bitset of two bits an
/// entity (the base's last day, the next day) for each user the chain has touched, made on the
/// user's first row. Replaces a `Set<UInt64>` of the same keys: its lookups and inserts were a
/// fifth of a 1,000-row batch's apply on the 47.6 M-row client, and each doubling of its table
/// rehashed every key on the commit thread (a million keys and more at the 1% tail: stalls of
/// 100–300 ms in `tools/load/append_today.py`'s acknowledgements, `perf` and a timeline,
/// 2026-12-04). Bytes: `2 × entities / 8` per user touched, in whole words (160–168 on the
/// 20,000-user client's 626–642 entities).
struct HeldBits {
    /// Words a user's bits take.
    let stride: Int
    let entities: Int
    /// Each user's first word in `bits`, or -1 before their first row.
    private var start: [Int32] = []
    private var bits: [UInt64] = []

    init(entities: Int) {
        self.entities = entities
        stride = (2 * entities + 63) / 64
    }

    @inline(__always)
    func contains(_ u: UInt32, _ e: Int, next: Bool) -> Bool {
        let b = (next ? entities : 0) &+ e
        return word(u, b) & (1 << UInt64(b & 63)) != 0
    }

    /// The word holding user `u`'s bit `b` (an entity's on the base's last day; `entities` past
    /// it on the next day), or 0 before their first row; also read ahead of the apply
    /// (``UsageTail/warm(users:apps:held:pairs:classEntity:)``).
    @inline(__always)
    func word(_ u: UInt32, _ b: Int) -> UInt64 {
        let u = Int(u)
        guard u < start.count, start[u] >= 0 else { return 0 }
        return bits[Int(start[u]) &+ b >> 6]
    }

    @inline(__always)
    mutating func insert(_ u: UInt32, _ e: Int, next: Bool) {
        precondition(e < entities, "an entity of the chain's base")
        let u = Int(u)
        if u >= start.count { start += repeatElement(-1, count: u + 1 - start.count) }
        if start[u] < 0 {
            start[u] = Int32(bits.count)
            bits += repeatElement(0, count: stride)
        }
        let b = (next ? entities : 0) &+ e
        bits[Int(start[u]) &+ b >> 6] |= 1 << UInt64(b & 63)
    }
}
