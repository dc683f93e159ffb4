import Foundation
import Testing
import TallyIngest
import TallyStorage
import TallyTestSupport

/// gzip and LZ4 frame input read through the decompressing sources must give exactly the records
/// of the plain CSV, however the compressed bytes are chunked; damaged streams are refused with
/// `.truncated` / `.badCompression` naming the file.
@Suite struct DecompressionTests {
    /// A usage table with line breaks inside quoted fields, as plain CSV text.
    static let text: [UInt8] = {
        var d = TestDump(seed: 5, clients: 3, rowsPerClient: 300)
        _ = try? d.deepUsageRow()
        return Array(DumpWriter.csv(d["app_usage_reports"]).utf8)
    }()
    /// A smaller table, for sweeps over every truncation point.
    static let small: [UInt8] = Array(DumpWriter.csv(TestDump(seed: 5, clients: 2, rowsPerClient: 10)["users"]).utf8)

    static func plainRecords(_ b: [UInt8]) throws -> [Record] { try readRecords(MemorySource(b), capacity: 1 << 20) }

    static func source(_ c: FileCompression, _ bytes: [UInt8], chunks: [Int] = [Int.max]) throws -> any ByteSource {
        let m = MemorySource(bytes, chunks: chunks)
        switch c {
        case .none: return m
        case .gzip: return try GzipSource(m)
        case .lz4: return try LZ4FrameSource(m)
        }
    }

    /// Reads a source to its end without parsing, returning the decompressed bytes.
    static func drain(_ s: any ByteSource) throws -> [UInt8] {
        var s = s
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try buf.withUnsafeMutableBytes { try s.read(into: $0) }
            if n == 0 { return out }
            out += buf[0..<n]
        }
    }

    /// `bytes` split at `cuts` (mid-record), each piece compressed on its own, then concatenated.
    static func members(_ c: FileCompression, _ bytes: [UInt8], cuts: [Int]) throws -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        for cut in cuts + [bytes.count] {
            out += try DumpWriter.compress(Array(bytes[start..<cut]), c)
            start = cut
        }
        return out
    }

    @Test(arguments: [Codec.gzip, .lz4], [1, 7, 4096, Int.max])
    func roundTripSameAsPlain(_ codec: Codec, _ chunk: Int) throws {
        let c = codec.compression
        let want = try Self.plainRecords(Self.text)
        try #require(want.count > 100)
        let packed = try DumpWriter.compress(Self.text, c)
        #expect(packed.count < Self.text.count)
        #expect(try Self.drain(Self.source(c, packed, chunks: [chunk])) == Self.text)
        #expect(try readRecords(Self.source(c, packed, chunks: [chunk]), capacity: 16) == want)
        #expect(try readRecords(Self.source(c, packed, chunks: [chunk]), capacity: 1 << 20) == want)
    }

    /// Concatenated gzip members / LZ4 frames (as `cat a.gz b.gz` gives), split mid-record, with an
    /// empty member first, in the middle and last.
    @Test(arguments: [Codec.gzip, .lz4], [3, 4096])
    func concatenatedMembers(_ codec: Codec, _ chunk: Int) throws {
        let c = codec.compression
        let n = Self.text.count
        let cuts = [0, n / 3 + 1, n / 3 + 1, (2 * n) / 3 + 7, n]
        let packed = try Self.members(c, Self.text, cuts: cuts)
        #expect(try Self.drain(Self.source(c, packed, chunks: [chunk])) == Self.text)
        #expect(try readRecords(Self.source(c, packed, chunks: [chunk])) == Self.plainRecords(Self.text))
    }

    /// Cut anywhere before its end, a stream is `.truncated`, never silently short.
    @Test(arguments: [Codec.gzip, .lz4])
    func everyTruncationIsReported(_ codec: Codec) throws {
        let c = codec.compression
        let packed = try DumpWriter.compress(Self.small, c)
        var kinds: [LoadError.Kind: Int] = [:]
        for cut in 0..<packed.count {
            let source = try Self.source(c, Array(packed.prefix(cut)), chunks: [5])
            do {
                _ = try readRecords(source, file: "t.csv.x", capacity: 16)
                Issue.record("cut at \(cut) of \(packed.count) loaded silently")
            } catch let e as LoadError {
                kinds[e.kind, default: 0] += 1
                #expect(e.file == "t.csv.x")
            }
        }
        #expect(kinds == [.truncated: packed.count])
    }

    /// A concatenated file cut exactly between members is complete; cut anywhere else it is not.
    @Test func gzipCutBetweenMembers() throws {
        let first = try DumpWriter.compress(Array(Self.small.prefix(40)), .gzip)
        let packed = first + (try DumpWriter.compress(Array(Self.small.dropFirst(40)), .gzip))
        #expect(try Self.drain(Self.source(.gzip, first)) == Array(Self.small.prefix(40)))
        for cut in [first.count + 1, first.count + 10, packed.count - 1] {
            #expect(throws: DecompressionError.self) { try Self.drain(Self.source(.gzip, Array(packed.prefix(cut)))) }
        }
    }

    /// No single-bit flip after the gzip header (deflate data, CRC-32, length) gives different
    /// data silently: each is caught, or lands in the unused padding bits of the last deflate byte.
    @Test func everyGzipBitFlipAfterTheHeaderIsCaught() throws {
        let packed = try DumpWriter.compress(Self.small, .gzip)
        var truncated = 0, corrupt = 0, harmless = 0
        for i in 10..<packed.count {
            for bit in 0..<8 {
                var b = packed
                b[i] ^= UInt8(1 << bit)
                do {
                    let out = try Self.drain(Self.source(.gzip, b, chunks: [64]))
                    if out == Self.small && i == packed.count - 9 { harmless += 1 } else {
                        Issue.record("flip of bit \(bit) of byte \(i) gave \(out.count) bytes silently")
                    }
                } catch let e as DecompressionError {
                    if e.truncated { truncated += 1 } else { corrupt += 1 }
                }
            }
        }
        #expect(corrupt > 0 && harmless < 8)
        #expect(truncated + corrupt + harmless == (packed.count - 10) * 8)
    }

    /// Flips in the LZ4 magic and frame descriptor are caught (the header checksum covers it).
    @Test func everyLZ4HeaderBitFlipIsCaught() throws {
        let packed = try DumpWriter.compress(Self.small, .lz4)
        for i in 0..<7 {
            for bit in 0..<8 {
                var b = packed
                b[i] ^= UInt8(1 << bit)
                let e = try #require(throws: LoadError.self, "byte \(i) bit \(bit)") {
                    _ = try readRecords(Self.source(.lz4, b), file: "t.csv.lz4")
                }
                #expect(e.kind == .badCompression, "byte \(i) bit \(bit): \(e)")
                #expect(e.expected.contains("corrupt LZ4"))
            }
        }
    }

    @Test(arguments: [Codec.gzip, .lz4])
    func corruptionNamesTheFileAndLine(_ codec: Codec) throws {
        let c = codec.compression
        var b = try DumpWriter.compress(Self.text, c)
        if c == .gzip { b[b.count - 6] ^= 0x10 } else { b[0] ^= 0x01 }
        // With the loader's 1 MiB buffer the whole stream is read before the header is parsed.
        let e = try #require(throws: LoadError.self) {
            _ = try readRecords(Self.source(c, b), file: "app_usage_reports/part-0007.csv.x", capacity: 1 << 20)
        }
        #expect(e.kind == .badCompression)
        #expect(e.file == "app_usage_reports/part-0007.csv.x")
        #expect(e.line == 1 && e.column == 1)
        #expect(e.expected.contains(c == .gzip ? "corrupt gzip" : "corrupt LZ4"))
        if c == .gzip {
            // Read in small pieces, the CRC failure shows up after the records already parsed.
            let late = try #require(throws: LoadError.self) { _ = try readRecords(Self.source(c, b), capacity: 16) }
            #expect(late.kind == .badCompression && late.line > 100)
        }
    }

    /// Through the loader: the same dump stored plain, gzip, LZ4 or mixed loads into the same store.
    @Test func loaderGivesTheSameStoreForEveryCompression() throws {
        let tmp = TempDir()
        var base = TestDump()
        base.usageParts = 3
        try base.write(to: tmp.sub("plain"))
        let (plain, _) = try DumpLoader.load(folder: tmp.sub("plain"))
        let want = StoreDigest(plain)
        #expect(want.usage == base.expectedUsage)
        for (i, comps) in [[FileCompression.gzip], [.lz4], [.lz4, .gzip, .none]].enumerated() {
            var d = base
            d.compressions = comps
            d.manifest = i == 2
            let paths = try d.write(to: tmp.sub("c\(i)"))
            let suffix = comps[0] == .gzip ? ".csv.gz" : ".csv.lz4"
            #expect(paths["app_usage_reports"]?.first == "app_usage_reports/part-0000" + suffix)
            let (store, report) = try DumpLoader.load(folder: tmp.sub("c\(i)"))
            #expect(StoreDigest(store) == want, "\(comps)")
            #expect(report.usageRecords == base["app_usage_reports"].rows.count)
        }
    }

    /// Through the loader: a usage part made of two gzip members (and one of two LZ4 frames).
    @Test(arguments: [Codec.gzip, .lz4])
    func loaderReadsConcatenatedMembers(_ codec: Codec) throws {
        let c = codec.compression
        let tmp = TempDir()
        var d = TestDump()
        d.compressions = [c]
        try d.write(to: tmp.sub("one"))
        try d.write(to: tmp.sub("two"))
        let part = d.usagePart(1)
        let table = d["app_usage_reports"]
        let text = Array(DumpWriter.csv(CSVTable(name: table.name, header: table.header, rows: Array(table.rows[part]))).utf8)
        let ext = c == .gzip ? "gz" : "lz4"
        try writeBytes(try Self.members(c, text, cuts: [text.count / 2 + 3]),
                       to: tmp.sub("two") + "/app_usage_reports/part-0001.csv.\(ext)")
        let (one, _) = try DumpLoader.load(folder: tmp.sub("one"))
        let (two, _) = try DumpLoader.load(folder: tmp.sub("two"))
        #expect(StoreDigest(one) == StoreDigest(two))
        #expect(StoreDigest(two).usage == d.expectedUsage)
    }
}
