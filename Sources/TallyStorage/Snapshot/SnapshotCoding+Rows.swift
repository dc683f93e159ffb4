/// The rows of a client in a snapshot: the pair index, which holds them (its coding and the
/// checks that prove it holds exactly the index's rows), and the month segments that held them
/// again in files of format 4 and before (made from the pair index to write those formats).

extension PairIndex {
    func encode(_ e: inout SnapshotEncoder) {
        e.pod(UnsafeBufferPointer(userStart))
        e.pod(UnsafeBufferPointer(pairApp))
        e.pod(UnsafeBufferPointer(pairInfo))
        e.pod(UnsafeBufferPointer(words))
        e.pod(UnsafeBufferPointer(days))
        e.int(wordsPerPair)
    }

    static func decode(_ d: inout SnapshotDecoder, appCount: Int, dayCount: Int, rowCount: Int) throws(SnapshotDecodingError) -> PairIndex {
        let userStart = try d.frozen(UInt32.self), pairApp = try d.frozen(UInt32.self), pairInfo = try d.frozen(UInt64.self)
        let words = try d.frozen(UInt64.self), days = try d.frozen(UInt16.self), wordsPerPair = try d.int()
        try check(userStart: UnsafeBufferPointer(userStart.buffer), pairApp: UnsafeBufferPointer(pairApp.buffer),
                  pairInfo: UnsafeBufferPointer(pairInfo.buffer), words: UnsafeBufferPointer(words.buffer), days: UnsafeBufferPointer(days.buffer),
                  wordsPerPair: wordsPerPair, appCount: appCount, dayCount: dayCount)
        return PairIndex(adopting: userStart.adopt(), pairApp: pairApp.adopt(), pairInfo: pairInfo.adopt(), words: words.adopt(),
                         days: days.adopt(), wordsPerPair: wordsPerPair, memory: userStart.region, dayCount: dayCount,
                         keepsRecent: rowCount >= recentMinRows)
    }

    /// The parts of a decoded pair index, checked before anything reads them: users' pair
    /// ranges ascending and covering every pair, each user's apps ascending and in range, each
    /// pair's days inside `words` or `days`, day lists ascending and inside the index's days,
    /// bitsets holding their count of days and none past the index's.
    static func check(userStart: UnsafeBufferPointer<UInt32>, pairApp: UnsafeBufferPointer<UInt32>, pairInfo: UnsafeBufferPointer<UInt64>,
                      words: UnsafeBufferPointer<UInt64>, days: UnsafeBufferPointer<UInt16>, wordsPerPair: Int,
                      appCount: Int, dayCount: Int) throws(SnapshotDecodingError) {
        func fail(_ what: String) -> SnapshotDecodingError { SnapshotDecodingError(reason: "the pair index: \(what)") }
        guard !userStart.isEmpty, userStart[0] == 0, Int(userStart[userStart.count - 1]) == pairApp.count,
              pairInfo.count == pairApp.count, wordsPerPair == (dayCount + 63) / 64 else { throw fail("its sizes do not agree") }
        for u in 0..<(userStart.count - 1) where userStart[u] > userStart[u + 1] { throw fail("user ranges out of order") }
        for a in pairApp where Int(a) >= appCount { throw fail("a pair names app \(a) of \(appCount)") }
        // The rows are read from here (a rebuild, a snapshot): each user's apps once, ascending.
        for u in 0..<(userStart.count - 1) where userStart[u] < userStart[u + 1] {
            for p in Int(userStart[u])..<(Int(userStart[u + 1]) - 1) where pairApp[p] >= pairApp[p + 1] {
                throw fail("a user's apps are not ascending")
            }
        }
        let lastWordBits = dayCount & 63 == 0 ? ~UInt64(0) : (1 << UInt64(dayCount & 63)) - 1
        for info in pairInfo {
            let off = Int(info & 0xFFFF_FFFF), n = PairIndex.dayCount(info: info)
            if info >> 63 != 0 {
                guard off + wordsPerPair <= words.count, n > 0 else { throw fail("a pair's bitset lies outside its words") }
                var bits = 0
                for k in off..<(off + wordsPerPair) { bits += words[k].nonzeroBitCount }
                guard bits == n, words[off + wordsPerPair - 1] & ~lastWordBits == 0 else {
                    throw fail("a pair's bitset does not hold its count of days inside the index")
                }
            } else {
                guard n > 0, off + n <= days.count else { throw fail("a pair's day list lies outside its days") }
                for k in off..<(off + n - 1) where days[k] >= days[k + 1] { throw fail("a pair's day list is not ascending") }
                guard Int(days[off + n - 1]) < dayCount else { throw fail("a pair's day lies outside the index") }
            }
        }
    }
}

extension UsageIndex {
    /// The rows as month segments, for files of versions 1–4 (tests write them to check they are
    /// still read): a stable counting sort of the pairs' rows, (user, app, day) order, by month
    /// and app gives each month its (app, user, day) order.
    func monthSegments() -> [Segment] {
        var monthOf = [Int](repeating: 0, count: dayCount)
        var monthStarts: [Day] = []
        for d in 0..<dayCount {
            let c = firstDay.adding(d).civil
            let start = Day(year: c.year, month: c.month, day: 1)!
            if monthStarts.last != start { monthStarts.append(start) }
            monthOf[d] = monthStarts.count - 1
        }
        var keys: [(bucket: Int, row: SegmentRow)] = []
        keys.reserveCapacity(rowCount)
        basePairs.forEachRow { u, a, d in
            let m = monthOf[d]
            keys.append((m * appCount + Int(a), SegmentRow(app: a, user: u, day: UInt8(monthStarts[m].distance(to: firstDay.adding(d))))))
        }
        var bounds = [Int](repeating: 0, count: monthStarts.count * appCount + 1)
        for k in keys { bounds[k.bucket + 1] += 1 }
        for b in 0..<(bounds.count - 1) { bounds[b + 1] += bounds[b] }
        var rows = [SegmentRow](repeating: SegmentRow(app: 0, user: 0, day: 0), count: keys.count)
        var fill = bounds
        for k in keys {
            rows[fill[k.bucket]] = k.row
            fill[k.bucket] += 1
        }
        return rows.withUnsafeBufferPointer { p in
            (0..<monthStarts.count).compactMap { m in
                let lo = bounds[m * appCount], hi = bounds[(m + 1) * appCount]
                return lo < hi ? Segment.encode(month: monthStarts[m], rows: UnsafeBufferPointer(rebasing: p[lo..<hi])) : nil
            }
        }
    }
}
