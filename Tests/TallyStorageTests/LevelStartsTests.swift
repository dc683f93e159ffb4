import Testing
@testable import TallyStorage

/// ``LevelStarts`` reads back every offset it was made from, grouped where each group of 16
/// spans fewer than 65,536 and flat where one does not, at group edges and lengths that are
/// not a multiple of a group.
@Suite struct LevelStartsTests {
    @Test(arguments: [(1, 40), (17, 300), (33, 70_000), (1_000, 5), (4_097, 5_000), (65, 65_535), (64, 65_536)])
    func everyOffsetReadsBack(count: Int, maxGap: Int) {
        var r = BitmapTests.RNG(s: UInt64(count &* 31 &+ maxGap))
        var starts: [UInt32] = [0]
        while starts.count < count { starts.append(starts.last! + UInt32.random(in: 0...UInt32(maxGap), using: &r)) }
        let s = starts.withUnsafeBufferPointer { LevelStarts.make($0, in: nil) }
        defer { s.release(in: nil) }
        #expect(s.count == count && s.values == starts)
        for i in 0..<(count - 1) { #expect(s.bitmap(i) == BitmapRef(start: starts[i], end: starts[i + 1])) }
        let fits = stride(from: 0, to: count, by: 16).allSatisfy { Int(starts[min(count, $0 + 16) - 1]) - Int(starts[$0]) <= 65_535 }
        #expect((s.flat == nil) == fits)
        #expect(s.byteCount == (fits ? count * 2 + (count + 15) / 16 * 4 : count * 4))
    }
}
