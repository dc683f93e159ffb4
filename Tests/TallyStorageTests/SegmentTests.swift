import Testing
@testable import TallyStorage

@Suite struct SegmentTests {
    @Test func encodeDecodeRoundTrip() {
        var state: UInt64 = 7
        func rnd() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        for n in [1, 2, 10, 1000, 50_000] {
            var rows = Set<SegmentRow>()
            while rows.count < n {
                rows.insert(SegmentRow(app: UInt32(rnd() % 600), user: UInt32(rnd() % 20_000), day: UInt8(rnd() % 31)))
            }
            let sorted = rows.sorted { ($0.app, $0.user, $0.day) < ($1.app, $1.user, $1.day) }
            let seg = sorted.withUnsafeBufferPointer { Segment.encode(month: Day("2024-02-01")!, rows: $0) }
            #expect(seg.rowCount == n)
            #expect(seg.decode() == sorted)
        }
    }

    /// A segment from another build or a crafted snapshot: `problem` finds what `decode` would
    /// trap on or misread (apps, users or days the client lacks, a wrong count, a month that
    /// does not start on its first day), and thousands of random byte changes, compressed or
    /// not, never trap it; whatever it accepts decodes to rows within the client.
    @Test func problemsAreFoundWithoutTrapping() {
        var state: UInt64 = 11
        func rnd() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let month = Day("2024-02-01")!, days = Day("2024-01-01")!...Day("2024-12-31")!
        func segment(_ n: Int, apps: UInt64, users: UInt64) -> (Segment, [SegmentRow]) {
            var rows = Set<SegmentRow>()
            while rows.count < n {
                let d = UInt8(rnd() % 4) * 7  // weekly routines: LZ4 finds the repeated day masks
                rows.insert(SegmentRow(app: UInt32(rnd() % apps), user: UInt32(rnd() % users), day: d))
            }
            let sorted = rows.sorted { ($0.app, $0.user, $0.day) < ($1.app, $1.user, $1.day) }
            return (sorted.withUnsafeBufferPointer { Segment.encode(month: month, rows: $0) }, sorted)
        }
        // A few rows: deflate cannot shrink them, so they are stored as encoded.
        let plainRows = [SegmentRow(app: 1, user: 5, day: 0), SegmentRow(app: 1, user: 150, day: 3), SegmentRow(app: 7, user: 20, day: 28),
                         SegmentRow(app: 39, user: 199, day: 10)]
        let plain = plainRows.withUnsafeBufferPointer { Segment.encode(month: month, rows: $0) }
        let (packed, packedRows) = segment(3000, apps: 5, users: 300)
        // A snapshot of format 3 or earlier holds LZ4 segments: the same columns, masks in place.
        let lz4 = Segment(month: month, rowCount: packed.rowCount, encodedByteCount: packed.encodedByteCount, codec: .lz4,
                          bytes: packed.encoded()!.withUnsafeBufferPointer { LZ4Block.compress($0)! })
        #expect(plain.codec == .stored && packed.codec == .deflate && lz4.decode() == packedRows, "one segment of each kind")
        for (seg, apps, users) in [(plain, 40, 200), (packed, 5, 300), (lz4, 5, 300)] {
            #expect(seg.problem(appCount: apps, userCount: users, days: days) == nil)
            #expect(seg.problem(appCount: apps, userCount: users - 100, days: days) != nil, "a user the client lacks")
            #expect(seg.problem(appCount: 1, userCount: users, days: days) != nil, "an app the client lacks")
            #expect(seg.problem(appCount: apps, userCount: users, days: Day("2024-02-10")!...Day("2024-12-31")!) != nil, "a day before the client's")
            let miscounted = Segment(month: seg.month, rowCount: seg.rowCount + 1, encodedByteCount: seg.encodedByteCount,
                                     codec: seg.codec, bytes: seg.bytes)
            #expect(miscounted.problem(appCount: apps, userCount: users, days: days) != nil, "a wrong count")
            // FuzzSnapshot (crash-segment-row-count-overflow): a huge stated count trapped in a product.
            let huge = Segment(month: seg.month, rowCount: Int.max, encodedByteCount: seg.encodedByteCount,
                               codec: seg.codec, bytes: seg.bytes)
            #expect(huge.problem(appCount: apps, userCount: users, days: days) != nil, "an implausible count")
            let shifted = Segment(month: Day("2024-02-02")!, rowCount: seg.rowCount, encodedByteCount: seg.encodedByteCount,
                                  codec: seg.codec, bytes: seg.bytes)
            #expect(shifted.problem(appCount: apps, userCount: users, days: days) != nil, "a month that does not start on its first day")
            let cut = Segment(month: seg.month, rowCount: seg.rowCount, encodedByteCount: seg.encodedByteCount,
                              codec: seg.codec, bytes: Array(seg.bytes.dropLast(5)))
            #expect(cut.problem(appCount: apps, userCount: users, days: days) != nil, "cut short")
            var accepted = 0
            for _ in 0..<3000 {
                var bytes = seg.bytes
                for _ in 0...(rnd() % 4) { bytes[Int(rnd() % UInt64(bytes.count))] = UInt8(rnd() % 256) }
                let changed = Segment(month: seg.month, rowCount: seg.rowCount, encodedByteCount: seg.encodedByteCount,
                                      codec: seg.codec, bytes: bytes)
                guard changed.problem(appCount: apps, userCount: users, days: days) == nil else { continue }
                accepted += 1
                let rows = changed.decode()
                #expect(rows.count == seg.rowCount && rows.allSatisfy { Int($0.app) < apps && Int($0.user) < users && $0.day < 29 })
            }
            #expect(accepted < 3000)
        }
        #expect(plain.decode() == plainRows)
        // Deflated columns that inflate to their stated size but leave a day column that is not
        // whole masks (three bytes short of the last one): refused, not misread.
        var columns = packed.encoded()!
        columns.removeLast(3)
        let short = Segment(month: month, rowCount: packed.rowCount, encodedByteCount: columns.count, codec: .deflate,
                            bytes: columns.withUnsafeBufferPointer { Deflate.compress($0, level: Segment.deflateLevel)! })
        #expect(short.problem(appCount: 5, userCount: 300, days: days) != nil, "a day column of broken masks")
    }

    /// The day column is deflated in four planes, and reads back mask by mask: segments of
    /// every size from one pair up, on weekly routines (a plane repeats) and on random days,
    /// decode to their rows, and from 2,000 rows on are deflated to less than half the encoded
    /// columns.
    @Test func planesReadBackInPlace() {
        var state: UInt64 = 5
        func rnd() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        for (n, weekly) in [(1, false), (7, true), (100, false), (2_000, true), (20_000, false), (20_000, true)] {
            var rows = Set<SegmentRow>()
            while rows.count < n {
                let day = weekly ? UInt8(rnd() % 5) * 7 + UInt8(rnd() % 2) : UInt8(rnd() % 30)
                rows.insert(SegmentRow(app: UInt32(rnd() % 50), user: UInt32(rnd() % 5_000), day: day))
            }
            let sorted = rows.sorted { ($0.app, $0.user, $0.day) < ($1.app, $1.user, $1.day) }
            let seg = sorted.withUnsafeBufferPointer { Segment.encode(month: Day("2024-03-01")!, rows: $0) }
            #expect(seg.decode() == sorted, "\(n) rows")
            #expect(seg.problem(appCount: 50, userCount: 5_000, days: Day("2024-01-01")!...Day("2024-12-31")!) == nil)
            if n >= 2_000 { #expect(seg.codec == .deflate && seg.bytes.count < seg.encodedByteCount / 2, "\(n) rows: \(seg.bytes.count) bytes") }
        }
    }
}
