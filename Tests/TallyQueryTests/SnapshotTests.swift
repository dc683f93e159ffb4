import Foundation
import Testing
import TallyIngest
import TallyQuery
import TallyStorage
import TallyTestSupport

/// Native snapshots: a store read back answers every query exactly as the one written; a
/// flipped byte anywhere or a truncated file is refused with a clear error, never read.
@Suite struct SnapshotTests {
    static func path(_ name: String) -> String { NSTemporaryDirectory() + "tally-snapshot-\(name)-\(getpid()).tsnap" }

    @Test func roundTripAnswersEveryQueryIdentically() throws {
        let (dump, store) = try Fixtures.randomStore(seed: 41)
        let file = Self.path("round")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let report = try Snapshot.write(store, to: file)
        #expect(report.usageRows == store.usageRowCount && report.sections == store.clients.count + 1)
        let back = try Snapshot.read(path: file)
        #expect(back.usageRowCount == store.usageRowCount && back.byteCount == store.byteCount)
        #expect(back.clients.map(\.info.id) == store.clients.map(\.info.id))
        let a = Executor(store: store), b = Executor(store: back)
        var r = SeededRandom(seed: 4141)
        let shapes = EquivalenceTests()
        for n in 0..<600 {
            let q = shapes.randomQuery(dump, &r)
            let x = try a.run(q), y = try b.run(q)
            #expect("\(x.rows)" == "\(y.rows)" && x.totalCount == y.totalCount && "\(x.series)" == "\(y.series)"
                    && "\(String(describing: x.compareSeries))" == "\(String(describing: y.compareSeries))", "query \(n): \(q)")
        }
        // And a second write of what was read gives the same file.
        let again = Self.path("again")
        defer { try? FileManager.default.removeItem(atPath: again) }
        try Snapshot.write(back, to: again)
        #expect(FileManager.default.contents(atPath: again)?.count == FileManager.default.contents(atPath: file)?.count)
    }

    @Test func sampleDumpRoundTrip() throws {
        let (store, _) = try DumpLoader.load(folder: Fixtures.samplePath)
        let file = Self.path("sample")
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Snapshot.write(store, to: file)
        #expect(Snapshot.looksLikeSnapshot(path: file) && !Snapshot.looksLikeSnapshot(path: Fixtures.samplePath + "/clients.csv"))
        let back = try Snapshot.read(path: file)
        let acme = UUID128("aa7cf840-9ca9-46a3-9778-9015d6580d50")!
        let feb = DayRange(Day("2026-02-01")!, Day("2026-02-28")!), jan = DayRange(Day("2026-01-01")!, Day("2026-01-31")!)
        for e in Endpoint.allCases {
            let req = EndpointRequest(client: acme, period: feb, comparison: jan, granularity: .weekly)
            #expect(try e.respond(req, executor: Executor(store: store)) == e.respond(req, executor: Executor(store: back)), "\(e)")
        }
    }

    /// Every byte of the structure (headers, section and chunk headers, trailer) and a few
    /// thousand bytes of data, each flipped in turn: every one is refused.
    @Test func everyFlippedByteIsRefused() throws {
        let (_, store) = try Fixtures.randomStore(seed: 43, clients: 3, rows: 900)
        let file = Self.path("flip")
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Snapshot.write(store, to: file)
        let good = Array(FileManager.default.contents(atPath: file)!)
        var r = SeededRandom(seed: 43)
        var positions = Set(0..<min(200, good.count)).union(max(0, good.count - 64)..<good.count)
        while positions.count < min(good.count, 2_300) { positions.insert(Int.random(in: 0..<good.count, using: &r)) }
        let damaged = Self.path("flipped")
        defer { try? FileManager.default.removeItem(atPath: damaged) }
        var reasons: [String: Int] = [:]
        for p in positions.sorted() {
            var bad = good
            bad[p] ^= UInt8.random(in: 1...255, using: &r)
            try Data(bad).write(to: URL(fileURLWithPath: damaged))
            do {
                _ = try Snapshot.read(path: damaged)
                Issue.record("a flipped byte at \(p) of \(good.count) was not noticed")
            } catch let e as SnapshotError {
                #expect(e.path == damaged)
                reasons[e.reason.components(separatedBy: ":").first ?? "", default: 0] += 1
            }
        }
        #expect(reasons.count >= 3, "\(reasons)")
    }

    @Test func truncatedFilesAreRefused() throws {
        let (_, store) = try Fixtures.randomStore(seed: 44, clients: 2, rows: 600)
        let file = Self.path("cut")
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Snapshot.write(store, to: file)
        let good = Array(FileManager.default.contents(atPath: file)!)
        var r = SeededRandom(seed: 44)
        var lengths: Set<Int> = [0, 1, 7, 8, 35, 43, 44, 45, good.count - 16, good.count - 8, good.count - 1]
        while lengths.count < 300 { lengths.insert(Int.random(in: 0..<good.count, using: &r)) }
        let cut = Self.path("cut-short")
        defer { try? FileManager.default.removeItem(atPath: cut) }
        for n in lengths.sorted() {
            try Data(good[0..<n]).write(to: URL(fileURLWithPath: cut))
            #expect(throws: SnapshotError.self, "cut to \(n) of \(good.count)") { _ = try Snapshot.read(path: cut) }
        }
        do {
            _ = try Snapshot.read(path: cut + "-missing")
            Issue.record("a missing file was read")
        } catch let e as SnapshotError {
            #expect(e.description.contains("cannot read"))
        }
    }
}
