// Snapshot decoding and structural validation (TallyStorage `Snapshot.read(bytes:name:)`), as
// `tally serve --snapshot` and a reload read a file. Input: byte 0 says whether the input's
// checksums (header, sections, chunks) and trailer length are fixed up before it is read —
// without that almost every mutation is refused by a checksum — and whether a store that reads
// is queried; the rest is the file. The seeds are snapshots of the tiny store (and of a
// generated client with packed arrays) written by `Snapshot.write`, with their chunks also
// stored uncompressed, so that mutations reach the decoders. A thrown `SnapshotError` is a correct refusal.
//
// Checked: a snapshot that reads is one the product can serve: every query route answers for
// every client without trapping.
import Foundation
import FuzzSupport
import TallyAPI
import TallyGenerate
import TallyStorage

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked(makeSeeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count <= 1 << 18 else { return 0 }
    var input = FuzzInput(start, count)
    let flags = input.byte()
    var file = input.rest()
    if flags & 1 != 0 { fixUp(&file) }
    let store: Store
    do {
        store = try Snapshot.read(bytes: file, name: "fuzz.snapshot")
    } catch let e as SnapshotError {
        _ = e.description
        return 0
    } catch {
        fuzzFailure("reading a snapshot threw \(error)")
    }
    guard flags & 2 != 0 else { return 0 }
    query(store)
    return 0
}

/// Every query route, for every client, over a period around the client's data.
func query(_ store: Store) {
    let api = API(serving: store, tokens: TokenStore.demo)
    let token = TokenStore.demo.entries[0]
    for c in store.clients.prefix(4) {
        let end = c.usage?.newestDay ?? Day("2026-01-31")!
        let period = [("start_date", end.adding(-90).description), ("end_date", end.description)]
        for route in Registry.routes where route.isQuery {
            let interval = [17: "7", 18: "weekly", 22: "weekly"][Int(route.wire!)] ?? "30"
            let q = period + [("granularity", "weekly"), ("report_interval", interval), ("cadence", "weekly"), ("page_size", "3")]
            let path: String? = switch route.pathParameter {
            case "user_id": c.users.first?.id.description
            case "department_id": c.departments.first?.id.description
            case "chart_type": "active_users"
            default: nil
            }
            _ = try? api.answer(route, client: c.info.id, pathValue: path, token: token, query: q)
        }
    }
}

/// Sets every checksum the reader checks, and the trailer's length, to what the bytes hold —
/// walking the layout as the reader does, and stopping where it no longer fits.
func fixUp(_ f: inout [UInt8]) {
    guard f.count >= 44, f[0..<8].elementsEqual("TALLYSNP".utf8) else { return }
    f.setLE(CRC32.of(f[0..<40]), at: 40)
    let sections = Int(truncatingIfNeeded: f.le(16, as: UInt64.self))
    var at = 44
    for _ in 0..<min(max(sections, 0), 1 << 16) {
        guard f.count - at >= 20 else { return }
        let chunks = Int(f.le(at + 4, as: UInt32.self))
        f.setLE(CRC32.of(f[at..<(at + 16)]), at: at + 16)
        at += 20
        for _ in 0..<chunks {
            guard f.count - at >= 16 else { return }
            let stored = Int(f.le(at + 4, as: UInt32.self))
            guard stored <= f.count - at - 16 else { return }
            f.setLE(CRC32.of(f[(at + 16)..<(at + 16 + stored)]), at: at + 8)
            f.setLE(CRC32.of(f[at..<(at + 12)]), at: at + 12)
            at += 16 + stored
        }
    }
    if f.count - at == 16 {
        f.replaceSubrange(at..<(at + 8), with: Array("TALLYEND".utf8))
        f.setLE(UInt64(f.count), at: at + 8)
    }
}

/// The snapshot with every chunk stored as it is (decompressed), checksums set again.
func uncompressed(_ f: [UInt8]) -> [UInt8] {
    var out = Array(f[0..<44])
    let sections = Int(f.le(16, as: UInt64.self))
    var at = 44
    for _ in 0..<sections {
        out += f[at..<(at + 20)]
        let chunks = Int(f.le(at + 4, as: UInt32.self))
        at += 20
        for _ in 0..<chunks {
            let raw = Int(f.le(at, as: UInt32.self)), stored = Int(f.le(at + 4, as: UInt32.self))
            let bytes = raw == stored ? Array(f[(at + 16)..<(at + 16 + stored)])
                : Compress.lz4BlockDecompress(f[(at + 16)..<(at + 16 + stored)], rawCount: raw)!
            var h = Array(f[at..<(at + 16)])
            h.setLE(UInt32(raw), at: 4)
            out += h + bytes
            at += 16 + stored
        }
    }
    out += Array("TALLYEND".utf8) + [UInt8](repeating: 0, count: 8)
    fixUp(&out)
    return out
}

func makeSeeds() throws -> [(name: String, bytes: [UInt8])] {
    let full = TinyDump.store
    var stores: [(String, Store)] = [("tiny", full)]
    for (i, c) in full.clients.enumerated() {
        stores.append(("client-\(i)", Store(catalog: full.catalog, clients: [c], walSequence: UInt64(i))))
    }
    stores.append(("catalog-only", Store(catalog: full.catalog, clients: [])))
    // A client wide enough for packed arrays (snapshot format 3), which the tiny store's few
    // users a day never make: 300 users × 4 apps × 4 days.
    var shape = SyntheticShape(users: 300, apps: 4, days: 4)
    shape.departments = 1
    let (catalog, builder) = SyntheticClient.make(shape)
    let packed = Store(catalog: catalog, clients: [builder.build()])
    let index = packed.clients[0].usage!
    let kinds = index.levels.indices.flatMap { l in
        let (starts, blocks) = index.starts(level: l)
        return (0..<(index.entityCount * blocks)).flatMap { index.levels[l].containerKinds(starts.bitmap($0)) }
    }
    guard kinds.contains(.packed) else { fuzzFailure("the packed seed holds no packed array") }
    stores.append(("packed", packed))
    var seeds: [(String, [UInt8])] = []
    let path = scratchDirectory + "/seed.snapshot"
    for (name, store) in stores {
        try Snapshot.write(store, to: path)
        let written = Array(FileManager.default.contents(atPath: path)!)
        let raw = uncompressed(written)
        guard (try? Snapshot.read(bytes: raw, name: name)) != nil else { fuzzFailure("the uncompressed \(name) does not read") }
        seeds.append(("\(name)-raw", [3] + raw))
        if name == "tiny" || name == "client-2" { seeds.append(("\(name)-lz4", [0] + written)) }
    }
    return seeds
}

/// SwiftPM's debug builds link `main` to this symbol: hand over to libFuzzer's driver.
@_cdecl("FuzzSnapshot_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz(UnsafeRawPointer($0), size) } ?? 0 }
}
