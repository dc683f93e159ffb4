import Testing
@testable import TallyStorage

/// ``LevelStarts`` reads back every offset it was made from: grouped with 8-bit offsets where
/// every group of 16 spans at most 255, with 16-bit ones where every group spans at most 65,535,
/// and flat where one does not, at group edges and lengths that are not a multiple of a group.
@Suite struct LevelStartsTests {
    @Test(arguments: [(1, 40), (17, 300), (33, 70_000), (1_000, 5), (4_097, 5_000), (65, 65_535), (64, 65_536),
                      (2_000, 17), (300, 16), (97, 1)])
    func everyOffsetReadsBack(count: Int, maxGap: Int) {
        var r = BitmapTests.RNG(s: UInt64(count &* 31 &+ maxGap))
        var starts: [UInt32] = [0]
        while starts.count < count { starts.append(starts.last! + UInt32.random(in: 0...UInt32(maxGap), using: &r)) }
        let s = starts.withUnsafeBufferPointer { LevelStarts.make($0, in: nil) }
        defer { s.release(in: nil) }
        #expect(s.count == count && s.values == starts)
        for i in 0..<(count - 1) { #expect(s.bitmap(i) == BitmapRef(start: starts[i], end: starts[i + 1])) }
        let widest = stride(from: 0, to: count, by: 16).map { Int(starts[min(count, $0 + 16) - 1]) - Int(starts[$0]) }.max()!
        let bits = widest <= 255 ? 8 : widest <= 65_535 ? 16 : 32
        #expect(s.offsetBits == bits, "widest group \(widest)")
        #expect(s.byteCount == (bits == 32 ? count * 4 : count * bits / 8 + (count + 15) / 16 * 4))
    }

    /// A group spanning exactly 255 entries keeps 8-bit offsets; 256, 16-bit ones; past 65,535,
    /// the level is flat. The last group spans what its own entries span (here 7 of them).
    @Test func theWidthsEdges() {
        for (span, bits) in [(255, 8), (256, 16), (65_535, 16), (65_536, 32)] {
            let first: [UInt32] = [0, 3] + Array(repeating: 10, count: 13) + [UInt32(span)]
            let starts = first + (0..<7).map { UInt32(span + $0 * 40) }
            let s = starts.withUnsafeBufferPointer { LevelStarts.make($0, in: nil) }
            defer { s.release(in: nil) }
            #expect(s.offsetBits == bits, "span \(span)")
            #expect(s.values == starts)
        }
    }
}
