/// The running sums' readers (``UsageIndex/prefixByDay``, ``UsageIndex/prefixByDay16``,
/// ``UsageIndex/sumsFromDays``, ``UsageIndex/prefixOffsets16``): user-days over a range, which
/// apps are active over one, an entity's first and last active day in one.
extension UsageIndex {
    /// Sets `active[a]` to whether app `a` has activity within day offsets `lo…hi`.
    /// - Complexity: O(apps): two contiguous rows of sums, or (``sumsFromDays``) two day-bitmap
    ///   starts an app.
    public func activeApps(_ lo: Int, _ hi: Int, into active: UnsafeMutablePointer<Bool>) {
        let n = appCount, stride = entityCount
        if let tail, tail.hasNext, hi > tail.day {
            // A range reaching the tail's next day: its sums are the tail's rows.
            for a in 0..<n { active[a] = prefixSum(a, hi &+ 1) != prefixSum(a, lo) }
            return
        }
        let lastRow = base?.dayCount ?? dayCount  // the row after the base's last day (the tail's `lastPrefix`)
        if sumsFromDays {
            if hi &+ 1 == lastRow, let tail {
                let to = tail.lastPrefix.baseAddress!
                for a in 0..<n { active[a] = Int(to[a]) != prefixSum(a, lo) }
                return
            }
            // Each app's day bitmaps are consecutive: none over the range holds a value when
            // the start of its first day is the start of the day after its last.
            let starts = levelStarts[0], days = levelBlockCounts[0]
            for a in 0..<n { active[a] = starts[a &* days &+ hi &+ 1] != starts[a &* days &+ lo] }
            return
        }
        if prefixByDay.isEmpty {
            // 16 bits: the tail's last row is 32-bit (its sums may pass 65,535).
            let from = prefixByDay16.baseAddress! + lo &* stride
            if hi &+ 1 == lastRow, let tail {
                let to = tail.lastPrefix.baseAddress!
                for a in 0..<n { active[a] = to[a] != UInt32(from[a]) }
            } else {
                let to = prefixByDay16.baseAddress! + (hi &+ 1) &* stride
                for a in 0..<n { active[a] = to[a] != from[a] }
            }
            return
        }
        if !prefixOffsets16.isEmpty {
            let fromBase = prefixByDay.baseAddress! + (lo &>> 4) &* stride, fromOffset = prefixOffsets16.baseAddress! + lo &* stride
            if hi &+ 1 == lastRow, let tail {
                let to = tail.lastPrefix.baseAddress!
                for a in 0..<n { active[a] = to[a] != fromBase[a] &+ UInt32(fromOffset[a]) }
            } else {
                let toBase = prefixByDay.baseAddress! + ((hi &+ 1) &>> 4) &* stride
                let toOffset = prefixOffsets16.baseAddress! + (hi &+ 1) &* stride
                for a in 0..<n { active[a] = toBase[a] &+ UInt32(toOffset[a]) != fromBase[a] &+ UInt32(fromOffset[a]) }
            }
            return
        }
        let from = prefixByDay.baseAddress! + lo &* stride
        let to = hi &+ 1 == lastRow && tail != nil ? UnsafeMutablePointer(tail!.lastPrefix.baseAddress!)
            : prefixByDay.baseAddress! + (hi &+ 1) &* stride
        var a = 0
        while a < n {
            active[a] = to[a] != from[a]
            a &+= 1
        }
    }

    /// Σ over the days of `range` of the users of `entity` that day: its user-days.
    /// - Complexity: O(1).
    public func userDays(entity: Int, _ range: DayRange) -> Int {
        guard let (lo, hi) = offsets(range) else { return 0 }
        return prefixSum(entity, hi + 1) - prefixSum(entity, lo)
    }

    /// The last day of `range` on which `entity` had activity, or `nil`: a binary search of
    /// the running sums (a day with activity is one where the sum grows).
    /// - Complexity: O(log days).
    public func lastActiveDay(entity: Int, _ range: DayRange) -> Day? {
        guard let (lo, hi) = offsets(range) else { return nil }
        let end = prefixSum(entity, hi + 1)
        guard end > prefixSum(entity, lo) else { return nil }
        // The smallest t in lo+1…hi+1 with sum(t) == end; the day before it is the last active one.
        var a = lo + 1, b = hi + 1
        while a < b {
            let m = (a + b) >> 1
            if prefixSum(entity, m) == end { b = m } else { a = m + 1 }
        }
        return firstDay.adding(a - 1)
    }

    /// The first day of `range` on which `entity` had activity, or `nil`.
    /// - Complexity: O(log days).
    public func firstActiveDay(entity: Int, _ range: DayRange) -> Day? {
        guard let (lo, hi) = offsets(range) else { return nil }
        let start = prefixSum(entity, lo)
        guard prefixSum(entity, hi + 1) > start else { return nil }
        // The smallest t in lo+1…hi+1 with sum(t) > start; day t-1 is the first active one.
        var a = lo + 1, b = hi + 1
        while a < b {
            let m = (a + b) >> 1
            if prefixSum(entity, m) > start { b = m } else { a = m + 1 }
        }
        return firstDay.adding(a - 1)
    }

    /// Users of `entity` summed over the days before offset `d`.
    @inline(__always) func prefixSum(_ entity: Int, _ d: Int) -> Int {
        // Past the base's last day: its sums with the tail's users of that day up to the next
        // day (days without rows between add nothing), and the next day's users after it.
        if let tail, d > tail.day { return Int(d <= tail.nextDay || !tail.hasNext ? tail.lastPrefix[entity] : tail.nextPrefix[entity]) }
        if sumsFromDays { return sumFromDays(entity, d) }
        if prefixByDay.isEmpty { return Int(prefixByDay16[d &* entityCount &+ entity]) }
        if !prefixOffsets16.isEmpty {
            return Int(prefixByDay[(d &>> 4) &* entityCount &+ entity]) &+ Int(prefixOffsets16[d &* entityCount &+ entity])
        }
        return Int(prefixByDay[d &* entityCount &+ entity])
    }

    /// ``prefixSum(_:_:)`` from the nearer checkpoint and the day bitmaps between (``sumsFromDays``).
    /// Not inlined: ``prefixSum(_:_:)`` is, into every loop over apps, and this loop in each of
    /// them made the enterprise client's queries slower (`tally synth --shape enterprise`).
    @inline(never) func sumFromDays(_ entity: Int, _ d: Int) -> Int {
        let days = levelBlockCounts[0], within = d & 15
        let view = levels[0].view, starts = levelStarts[0], first = entity &* days
        if within > 8 && d &- within &+ 16 <= days {
            // From the next checkpoint back.
            var sum = Int(prefixByDay16[((d &>> 4) &+ 1) &* entityCount &+ entity]), k = d
            while k < d &- within &+ 16 { sum &-= view.cardinality(starts.bitmap(first &+ k)); k &+= 1 }
            return sum
        }
        var sum = Int(prefixByDay16[(d &>> 4) &* entityCount &+ entity]), k = d &- within
        while k < d { sum &+= view.cardinality(starts.bitmap(first &+ k)); k &+= 1 }
        return sum
    }
}
