import Testing
import TallyStorage

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
}
