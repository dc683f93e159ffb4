import Foundation
import Testing
import TallyStorage

/// Inputs the fuzzers of Fuzz/ found (docs/FUZZING.md), each refused now instead of trapping.
/// Their reproducers are also in the fuzzers' corpora (Fuzz/Corpus/<Name>/crash-*).
@Suite struct FuzzRegressionTests {
    static func path(_ name: String) -> String { NSTemporaryDirectory() + "tally-fuzz-regression-\(name)-\(getpid())" }

    /// FuzzWAL: a log header whose base is `UInt64.max` opened (no record could follow it), and
    /// the next append trapped counting the next sequence (WriteAheadLog.record).
    @Test func walBaseNearTheEndOfTheSequenceIsRefused() throws {
        let p = Self.path("wal-base")
        defer { try? FileManager.default.removeItem(atPath: p) }
        func header(base: UInt64) -> Data {
            var d = Data("TALLYWAL".utf8)
            withUnsafeBytes(of: UInt32(1).littleEndian) { d.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(0).littleEndian) { d.append(contentsOf: $0) }
            withUnsafeBytes(of: base.littleEndian) { d.append(contentsOf: $0) }
            return d
        }
        try header(base: .max).write(to: URL(fileURLWithPath: p))
        #expect(throws: WriteAheadLog.Failure.self) { _ = try WriteAheadLog(path: p) }
        try header(base: WriteAheadLog.maxBase + 1).write(to: URL(fileURLWithPath: p))
        #expect(throws: WriteAheadLog.Failure.self) { _ = try WriteAheadLog(path: p) }

        // The largest base still opens, and appends follow it.
        try header(base: WriteAheadLog.maxBase).write(to: URL(fileURLWithPath: p))
        let log = try WriteAheadLog(path: p)
        let (sequence, bytes) = log.record(AppendBatch(client: UUID128(high: 1, low: 2), rows: []))
        try log.write(bytes)
        #expect(sequence == WriteAheadLog.maxBase + 1)
        #expect(try WriteAheadLog(path: p).readRecords().map(\.sequence) == [WriteAheadLog.maxBase + 1])
        // Nor can a truncation take the log there.
        #expect(throws: WriteAheadLog.Failure.self) { try log.truncate(through: .max) }
    }

    /// The same sequence reaches the log through a snapshot (its data's log position, which a
    /// reload truncates the log through): a snapshot claiming more is refused.
    @Test func snapshotWithAnImplausibleLogSequenceIsRefused() throws {
        let p = Self.path("snapshot-sequence")
        defer { try? FileManager.default.removeItem(atPath: p) }
        let catalog = Catalog(categories: [], vendors: [], applications: [])
        try Snapshot.write(Store(catalog: catalog, clients: [], walSequence: WriteAheadLog.maxBase), to: p)
        #expect(try Snapshot.read(path: p).walSequence == WriteAheadLog.maxBase)
        try Snapshot.write(Store(catalog: catalog, clients: [], walSequence: .max), to: p)
        #expect(throws: SnapshotError.self) { _ = try Snapshot.read(path: p) }
    }

    /// A chunk header that claims more raw bytes than its stored bytes can hold had the reader
    /// allocate them before looking: 96 bytes of snapshot (checksums right) asked for 4 GB, 48 KB
    /// for 12 TB (a crash). An LZ4 block expands at most 255 times.
    @Test func chunkLargerThanItsStoredBytesCanHoldIsRefused() throws {
        func crc(_ b: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for x in b {
                c ^= UInt32(x)
                for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return ~c
        }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func snapshot(raw: UInt32, stored: [UInt8], chunks: Int = 1) -> [UInt8] {
            var h = Array("TALLYSNP".utf8) + le(UInt32(1)) + le(UInt32(0)) + le(UInt64(1)) + le(UInt64(0)) + le(UInt64(0))
            h += le(crc(h))
            var s = le(UInt32(1)) + le(UInt32(chunks)) + le(UInt64(raw) * UInt64(chunks))
            s += le(crc(s))
            var c = le(raw) + le(UInt32(stored.count)) + le(crc(stored))
            c += le(crc(c))
            let body = h + s + Array([[UInt8]](repeating: c + stored, count: chunks).joined())
            return body + Array("TALLYEND".utf8) + le(UInt64(body.count + 16))
        }
        // 3,000 chunks of 4 GB: 12 TB, which no allocator gives (the reader crashed).
        #expect(throws: SnapshotError.self) { _ = try Snapshot.read(bytes: snapshot(raw: .max, stored: [], chunks: 3_000), name: "crafted") }
        for (raw, stored) in [(UInt32.max, [UInt8]()), (256, [0]), (255 * 2 + 1, [0, 0])] {
            #expect(throws: SnapshotError.self) { _ = try Snapshot.read(bytes: snapshot(raw: raw, stored: stored), name: "crafted") }
        }
    }
}
