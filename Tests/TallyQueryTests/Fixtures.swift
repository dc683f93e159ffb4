import Foundation
import TallyIngest
import TallyQuery
import TallyStorage
import TallyTestSupport

/// Random dumps written as CSV (mixed compressions, part files, a manifest) and loaded through
/// the real loader, so the engine answers from parsed rows.
enum Fixtures {
    /// `allClasses`: build every class union, however small the client (so that the queries
    /// that read them are checked on these small dumps too).
    /// - Parameter headerless: the arenas' layout (``BitmapArena/headerless``); by default the
    ///   builder's (headerless: every random client has fewer than 65,536 users).
    /// - Parameter packed: whether headerless arenas pack bitmaps (``ClientStoreBuilder/packedArrays``);
    ///   by default they do.
    /// - Parameter levels: the level block sizes (``ClientStoreBuilder/levelSizes``); by default
    ///   a small client's (no 4-day blocks).
    static func randomStore(seed: UInt64, clients: Int = 5, rows: Int = 2500, allClasses: Bool = false,
                            headerless: Bool? = nil, packed: Bool? = nil, levels: [Int]? = nil, narrowSums: Bool = true,
                            checkpointSums: Bool = true, rangeTableMinRows: Int? = nil, spareApps: Bool = false) throws -> (RandomDump, Store) {
        let dump = RandomDump(seed: seed, clientCount: clients, maxRowsPerClient: rows)
        return (dump, try store(of: dump, seed: seed, allClasses: allClasses, headerless: headerless, packed: packed, levels: levels,
                                narrowSums: narrowSums, checkpointSums: checkpointSums, rangeTableMinRows: rangeTableMinRows,
                                spareApps: spareApps))
    }

    /// `dump` written and loaded as ``randomStore(seed:clients:rows:allClasses:)`` does.
    static func store(of dump: RandomDump, seed: UInt64, allClasses: Bool = false, headerless: Bool? = nil,
                      packed: Bool? = nil, levels: [Int]? = nil, narrowSums: Bool = true, checkpointSums: Bool = true,
                      rangeTableMinRows: Int? = nil, spareApps: Bool = false) throws -> Store {
        let folder = NSTemporaryDirectory() + "tally-random-\(seed)-\(getpid())-\(UUID().uuidString)"  // tests of one seed run concurrently
        try DumpWriter.write(dump.tables(), to: folder, usageParts: 3, compressions: [.lz4, .gzip, .none], manifest: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var loader = DumpLoader(layout: try DumpLayout.discover(folder: folder))
        if allClasses { loader.extrasMinRows = 0 }
        loader.headerlessArenas = headerless
        loader.packedArrays = packed
        loader.levelSizes = levels
        loader.narrowRunningSums = narrowSums
        loader.checkpointRunningSums = checkpointSums
        loader.rangeCountsMinRowsPerEntry = rangeTableMinRows
        if spareApps { loader.spareAppsMinRows = 0 }  // every client: a large one's spare app slots
        let (store, _) = try loader.run()
        return store
    }

    static var samplePath: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("data/sample").path
    }
}
