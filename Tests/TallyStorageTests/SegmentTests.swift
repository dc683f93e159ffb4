import Testing
import TallyStorage

@Suite struct SegmentTests {
    @Test func encodeDecodeRoundTrip() {
        var state: UInt64 = 7
        func rnd() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        for n in [1, 2, 10, 1000, 50_000] {
            var keys = Set<UInt64>()
            while keys.count < n { keys.insert((rnd() % 600) << 32 | (rnd() % 20_000)) }
            let sorted = keys.sorted()
            let seg = sorted.withUnsafeBufferPointer { Segment.encode(day: Day(raw: 1), keys: $0) }
            #expect(seg.rowCount == n)
            #expect(seg.decode() == sorted)
        }
    }
}
