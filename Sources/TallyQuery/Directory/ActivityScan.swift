import TallyStorage

/// A page of users sorted by a number (a day, a count) with ties by id ascending, as ``Paged``
/// sorts ``PageKey``s, but over 64-bit integers: the key, then the user's rank in id order
/// (``UserDirectory/idRank``), packed so that one unsigned comparison orders two users. A list
/// of every user of a 20,000-user client is paged without a `PageKey` per user (measured with
/// `tally bench-reports`: K by last_active_date went from 1.6 ms to … on the synthetic client).
struct RankedPage {
    /// The rows of the page, in order, and the key of the last one when more follow.
    var rows: [(user: UInt32, key: Int?)]
    var total: Int
    var next: PageKey?

    /// Packs a key (`nil`: no value, which sorts after every value ascending and before every
    /// value descending) and an id rank (doubled: odd for a user, even for a place between
    /// users) into one number that sorts as the page does.
    @inline(__always)
    static func pack(_ key: Int?, rank2: UInt64, _ order: SortOrder) -> UInt64 {
        guard let k = key else { return order == .asc ? (1 << 63) | rank2 : rank2 }
        let biased = UInt64(UInt32(bitPattern: Int32(clamping: k)) ^ 0x8000_0000)
        let value = order == .asc ? biased : (~biased & 0xFFFF_FFFF)
        return (order == .asc ? 0 : 1 << 63) | value << 31 | rank2
    }

    /// What the numbers are: counts (`SortValue.int`) or days (`SortValue.day`, by `Day.raw`).
    enum Kind {
        case int, day
        func value(_ k: Int) -> SortValue { self == .int ? .int(k) : .day(Day(raw: Int32(k))) }
    }

    /// `nil` when the cursor's value is not a number of this list's kind (an old or foreign
    /// cursor): the caller pages the generic way.
    init?(users: [UInt32], key: (UInt32) -> Int?, kind: Kind, order: SortOrder, after: PageKey?,
          size: Int, directory dir: UserDirectory, client: ClientStore) {
        var floor: UInt64?
        if let after {
            let k: Int?
            switch (after.value, kind) {
            case (.int(let n), .int): k = n
            case (.day(let d), .day): k = Int(d.raw)
            case (.text(nil), _): k = nil
            default: return nil
            }
            // The cursor's id: a user (odd rank) or a place between users (even rank).
            let rank2: UInt64
            if let u = client.userIndex[after.id] {
                rank2 = UInt64(dir.idRank[Int(u)]) &* 2 &+ 1
            } else {
                var a = 0, b = dir.byId.count
                while a < b {
                    let m = (a + b) / 2
                    if client.users[Int(dir.byId[m])].id < after.id { a = m + 1 } else { b = m }
                }
                rank2 = UInt64(a) &* 2
            }
            floor = Self.pack(k, rank2: rank2, order)
        }
        total = users.count
        // The `size` smallest packed keys after the cursor: a sorted buffer that most users miss
        // with one comparison against its last entry.
        var best: [UInt64] = []
        best.reserveCapacity(size + 1)
        var remaining = 0
        dir.idRank.withUnsafeBufferPointer { rank in
            for u in users {
                let p = Self.pack(key(u), rank2: UInt64(rank[Int(u)]) &* 2 &+ 1, order)
                if let floor, p <= floor { continue }
                remaining &+= 1
                if best.count == size {
                    guard p < best[size - 1] else { continue }
                    best.removeLast()
                }
                var a = 0, b = best.count
                while a < b {
                    let m = (a + b) >> 1
                    if best[m] < p { a = m + 1 } else { b = m }
                }
                best.insert(p, at: a)
            }
        }
        rows = best.map { p in
            let u = dir.byId[Int((p & 0x7FFF_FFFF) >> 1)]
            return (u, key(u))
        }
        if remaining > size, let last = rows.last {
            next = PageKey(value: last.key.map(kind.value) ?? .text(nil), id: client.users[Int(last.user)].id)
        }
    }
}

/// Activity of every user at once, from the day-major bitmaps (the index's level 0, one bitmap
/// per entity and day), for the reports that need a number per user: K's last active day before
/// an `as_of`, O's active days in a window. A per-user walk of the pair index costs the user's
/// pairs each (4 ms for O on the 20,000-user client); these cost the window's days × the
/// client's users / 64 words.
struct ActivityScan {
    let client: ClientStore
    let index: UsageIndex

    init?(_ client: ClientStore) {
        guard let index = client.usage else { return nil }
        self.client = client
        self.index = index
    }

    /// Entities whose union on a day is exactly the users of `scope`'s apps that day: the
    /// scope's class, the classes of its whole categories, or its apps when there are few. `nil` when
    /// the scope is none of these (the caller walks the pair index instead).
    static func entities(_ scope: Scope, _ index: UsageIndex, maxApps: Int = 8) -> [Int]? {
        // The class, or whole categories' classes (never more entities than apps).
        if let es = scope.splitEntities[Split.all.rawValue] { return es }
        return scope.apps.count <= maxApps ? scope.apps.map(Int.init) : nil
    }

    /// ORs the users of `entities` on day offset `d` into `set` (cleared first).
    @inline(__always)
    func day(_ d: Int, _ entities: [Int], into set: UserSet) {
        set.clear()
        for e in entities { index.formUnion(entity: e, level: 0, block: d, into: set) }
    }

    /// Each user's number of days in offsets `lo…hi` with activity of `entities`: per day, the
    /// day's users are added into a bit-sliced counter (one word operation per 64 users and
    /// carry), then read out per user.
    func activeDays(_ entities: [Int], _ lo: Int, _ hi: Int) -> [UInt16] {
        let n = client.users.count
        var counts = [UInt16](repeating: 0, count: n)
        guard lo <= hi, n > 0 else { return counts }
        let set = UserSet(domain: n)
        let words = set.wordCount
        var slices = 1
        while (1 << slices) <= hi - lo + 1 { slices += 1 }
        let counter = UnsafeMutablePointer<UInt64>.allocate(capacity: slices * words)
        counter.initialize(repeating: 0, count: slices * words)
        defer { counter.deallocate() }
        for d in lo...hi {
            day(d, entities, into: set)
            for chunk in set.touched {
                let base = chunk << 10, end = base + set.wordsInChunk(chunk)
                for w in base..<end {
                    var carry = set.words[w]
                    var k = 0
                    while carry != 0 {
                        let slot = counter + (k &* words &+ w)
                        let both = slot.pointee & carry
                        slot.pointee ^= carry
                        carry = both
                        k &+= 1
                    }
                }
            }
        }
        // Read out slice by slice: each set bit adds its weight to its user (Σ popcounts of the
        // slices, rather than every slice for every user).
        counts.withUnsafeMutableBufferPointer { out in
            for k in 0..<slices {
                let weight = UInt16(1) << UInt16(k), row = counter + k &* words
                for w in 0..<words {
                    var bits = row[w]
                    let base = w &<< 6
                    while bits != 0 {
                        out[base &+ bits.trailingZeroBitCount] |= weight
                        bits &= bits &- 1
                    }
                }
            }
        }
        return counts
    }

    /// Each of `users`' last day offset with any activity up to offset `hi` (-1: none): from the
    /// stored first/last offsets where they answer, else by walking the days back from `hi`
    /// until every such user is found.
    ///
    /// With `entities` (a filter's class, category or apps), the last day with activity of
    /// those: the stored bounds only rule out users with no activity at all up to `hi`, and the
    /// walk finds the rest (P's churned users under an activity filter: a pair-index search each
    /// took 0.95 ms for the 20,000-user client with `is_approved=true`).
    func lastActive(_ users: [UInt32], upTo hi: Int, entities: [Int]? = nil) -> [Int32] {
        var last = [Int32](repeating: -1, count: client.users.count)
        let activity = client.activity
        let n = client.users.count
        var pending = [UInt64](repeating: 0, count: (n + 63) >> 6)
        var left = 0
        for u in users {
            let a = Int(activity.firstOffset[Int(u)]), b = Int(activity.lastOffset[Int(u)])
            if b < 0 || a > hi { continue }
            if b <= hi && entities == nil {
                last[Int(u)] = Int32(b)
            } else {
                pending[Int(u) >> 6] |= 1 << UInt64(u & 63)
                left += 1
            }
        }
        guard left > 0 else { return last }
        let set = UserSet(domain: n)
        let all = entities ?? [index.entity(.all)]
        var d = min(hi, index.dayCount - 1)
        while left > 0 && d >= 0 {
            day(d, all, into: set)
            for chunk in set.touched {
                let base = chunk << 10, end = base + set.wordsInChunk(chunk)
                for w in base..<end where pending[w] != 0 {
                    var hit = pending[w] & set.words[w]
                    guard hit != 0 else { continue }
                    pending[w] &= ~hit
                    while hit != 0 {
                        last[w << 6 | hit.trailingZeroBitCount] = Int32(d)
                        hit &= hit &- 1
                        left -= 1
                    }
                }
            }
            d -= 1
        }
        return last
    }
}
