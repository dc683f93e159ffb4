// MARK: A tail's rows grouped by user

extension UsageTail {
    /// The first `count` rows of a chain of tails, grouped by user (each user's rows contiguous):
    /// shared by every version from the one that made it until the next is made. A full pass
    /// over every user's rows (D's whole list, a department's members) reads these in order
    /// instead of following chains: on the 47.6 M-row client with a 1% tail (476,537 rows), the
    /// dashboard mix's D took 17–20 ms on average with chains alone, against 3.7–4.3 merged
    /// (`tools/load/mix_bench.sh`, docs/BENCHMARKS.md).
    ///
    /// Two runs: ``old`` (rows `0..<old.end`) and ``young`` (the rows from there to ``count``).
    /// A regrouping every ``UsageTail/regroupRows`` rows makes only the young run again, O(users +
    /// young rows); the old run is made again, O(users + rows), once the young one holds an
    /// eighth of it (``needsOld(rows:)``). With one run, every regrouping was O(users + rows): at
    /// 1.0–1.4 M tail rows on the 47.6 M-row client a third of a core went into regrouping, 60% of
    /// it the kernel's page faults for the new 16 MB arrays (`perf` during
    /// `append_today.py --bodies 4000`, 2026-12-04).
    @usableFromInline final class Grouped: Sendable {
        /// Rows grouped in all: ``old``'s, then ``young``'s.
        @usableFromInline var count: Int { young.end }
        @usableFromInline let old: Run
        @usableFromInline let young: Run

        /// Rows `from..<end` of the chain, grouped by user.
        @usableFromInline struct Run: Sendable {
            let from: Int
            let end: Int
            /// Rows of user `u`: `start[u] ..< start[u + 1]` of `pairs` (users added to the
            /// client since the run was made have none: `u + 1 ≥ start.count`).
            @usableFromInline let start: [UInt32]
            @usableFromInline let pairs: [TailPair]
            /// Each of `pairs`' base last day plus one (0: none), 2 bytes: an unfiltered count of a
            /// user's apps reads these (a loop the compiler vectorizes) instead of 12-byte rows. D
            /// ascending over 366 days with a static 1% tail: 2.0 ms in process against 0.6 merged
            /// when it read the rows.
            @usableFromInline let lastPlusOne: [UInt16]

            static func empty(at row: Int) -> Run { Run(from: row, end: row, start: [], pairs: [], lastPlusOne: []) }

            /// Rows `from..<end` of `links` and `rows`, grouped by user (each user's in row order).
            /// - Complexity: O(users + rows grouped).
            static func make(_ links: TailList<PairLink>, rows: TailList<UInt64>, from: Int, end: Int, userCount: Int) -> Run {
                guard end > from else { return .empty(at: from) }
                var start = [UInt32](repeating: 0, count: userCount + 1)
                for i in from..<end { start[Int(rows[i] >> 32) &+ 1] &+= 1 }
                for u in 0..<userCount { start[u &+ 1] &+= start[u] }
                var at = start
                let n = end - from
                // Every slot is written once (the counts above place each row), so the array is
                // not zeroed first.
                let pairs = [TailPair](unsafeUninitializedCapacity: n) { out, made in
                    for i in from..<end {
                        let u = Int(rows[i] >> 32)
                        (out.baseAddress! + Int(at[u])).initialize(to: links[i].pair)
                        at[u] &+= 1
                    }
                    made = n
                }
                let last = [UInt16](unsafeUninitializedCapacity: n) { out, made in
                    pairs.withUnsafeBufferPointer { p in
                        for k in 0..<n { out[k] = UInt16(truncatingIfNeeded: p[k].baseLast &+ 1) }
                    }
                    made = n
                }
                return Run(from: from, end: end, start: start, pairs: pairs, lastPlusOne: last)
            }

            /// User `u`'s rows of ``pairs``.
            @inlinable @inline(__always) func range(user u: Int) -> Range<Int> {
                u &+ 1 < start.count ? Int(start[u]) ..< Int(start[u &+ 1]) : 0 ..< 0
            }

            /// Calls `body` with each of user `u`'s rows in this run.
            @inlinable @inline(__always) func forEach(user u: Int, _ body: (TailPair) -> Void) {
                let r = range(user: u)
                guard !r.isEmpty else { return }
                pairs.withUnsafeBufferPointer { p in
                    var k = r.lowerBound
                    while k < r.upperBound {
                        body(p[k])
                        k &+= 1
                    }
                }
            }

            /// How many of user `u`'s rows in this run had no base day at `lo` or after (their
            /// pair's base last day plus one is at most `key`, `lo` as 2 bytes).
            @inlinable @inline(__always) func countNew(user u: Int, key: UInt16) -> Int {
                let r = range(user: u)
                guard !r.isEmpty else { return 0 }
                var n = 0
                lastPlusOne.withUnsafeBufferPointer { b in
                    var k = r.lowerBound
                    while k < r.upperBound {
                        n &+= b[k] <= key ? 1 : 0
                        k &+= 1
                    }
                }
                return n
            }

            var byteCount: Int { pairs.count * 18 + start.count * 4 }
        }

        init(old: Run, young: Run) {
            self.old = old
            self.young = young
        }

        /// Whether a regrouping up to `rows` rows makes the old run again: the young one would
        /// hold more than an eighth of the rows (at least 65,536). Each row is then copied into an
        /// old run about nine times in all (the old runs grow by an eighth), and a young run
        /// holds at most about an eighth of the tail.
        func needsOld(rows: Int) -> Bool {
            rows - old.end > max(65_536, old.end / 8)
        }

        /// The rows up to `rows.count` grouped: the young run made again, or both runs when
        /// ``needsOld(rows:)`` and `mayRemakeOld`.
        /// - Complexity: O(users + rows past the old run), or O(users + rows).
        func adding(_ links: TailList<PairLink>, rows: TailList<UInt64>, userCount: Int, mayRemakeOld: Bool = true) -> Grouped {
            if mayRemakeOld && needsOld(rows: rows.count) {
                return Grouped(old: .make(links, rows: rows, from: 0, end: rows.count, userCount: userCount), young: .empty(at: rows.count))
            }
            return Grouped(old: old, young: .make(links, rows: rows, from: old.end, end: rows.count, userCount: userCount))
        }

        /// Calls `body` with each of user `u`'s grouped rows: the old run's, then the young's.
        @inlinable @inline(__always) func forEach(user u: Int, _ body: (TailPair) -> Void) {
            old.forEach(user: u, body)
            young.forEach(user: u, body)
        }

        var byteCount: Int { old.byteCount + young.byteCount }

        static let empty = Grouped(old: .empty(at: 0), young: .empty(at: 0))
    }
}
