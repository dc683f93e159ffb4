import Foundation
import TallyAPI
import TallyGenerate
import TallyIngest
import TallyStorage
import CFuzz

/// What the fuzz targets share: the input cursor, the in-memory dump, the small store, CRC-32
/// and seed writing.

/// Reads a fuzz input front to back; past the end every read gives zeros.
public struct FuzzInput {
    public let bytes: [UInt8]
    public var at = 0

    public init(_ start: UnsafeRawPointer, _ count: Int) {
        bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    }

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func byte() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }

    public mutating func u16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] {
        defer { at = bytes.count }
        return at < bytes.count ? Array(bytes[at...]) : []
    }
}

/// A file held in memory, read `chunk` bytes at a time at most (to cut records and multi-byte
/// sequences at every place a network read could).
public final class MemorySource: ObservableByteSource {
    let bytes: [UInt8]
    let chunk: Int
    var at = 0
    public private(set) var storedBytesRead = 0
    public var observer: ((UnsafeRawBufferPointer) -> Void)?

    public init(_ bytes: [UInt8], chunk: Int) {
        self.bytes = bytes
        self.chunk = max(1, chunk)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, chunk, bytes.count - at)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + at, byteCount: n)
        }
        at += n
        storedBytesRead += n
        observer?(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        return n
    }
}

/// A dump in memory, read through the product's remote-dump path (``DumpStorage``).
public struct MemoryStorage: DumpStorage, @unchecked Sendable {
    public var files: [String: [UInt8]]
    /// Bytes a read returns at most, by file (others: the whole file at once).
    public var chunks: [String: Int]

    public init(files: [String: [UInt8]], chunks: [String: Int] = [:]) {
        self.files = files
        self.chunks = chunks
    }

    public var location: String { "memory:/" }
    public func list() throws -> [String: Int]? { files.mapValues(\.count) }
    public func fetch(_ relativePath: String) throws -> [UInt8]? { files[relativePath] }
    public func open(_ relativePath: String) throws -> ObservableByteSource {
        guard let b = files[relativePath] else {
            throw LoadError(.missingFile, file: relativePath, line: 0, column: 0, expected: "a file")
        }
        return MemorySource(b, chunk: chunks[relativePath] ?? b.count)
    }
}

extension TinyDump {
    /// The dump's files as bytes, by path.
    public static var fileBytes: [String: [UInt8]] {
        Dictionary(uniqueKeysWithValues: files.map { ($0.path, Array($0.text.utf8)) })
    }

    /// The store the dump loads into, built once.
    public static let store: Store = {
        do {
            let layout = try DumpLayout.discover(storage: MemoryStorage(files: fileBytes))
            return try DumpLoader.load(layout: layout).0
        } catch {
            fatalError("the tiny dump does not load: \(error)")
        }
    }()

    /// Client ids of the dump, in its clients.csv order: Initech (usage, no departments), Hooli
    /// (no usage), Vandelay (usage and departments).
    public static var clientIDs: [UUID128] { store.clients.map(\.info.id) }
}

/// CRC-32 (IEEE, zlib's), for inputs whose checksums a target fixes up.
public enum CRC32 {
    public static func of(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    public static func of(_ bytes: [UInt8]) -> UInt32 { of(bytes[...]) }
}

/// Little-endian integers in byte arrays.
extension Array where Element == UInt8 {
    public func le<T: FixedWidthInteger>(_ at: Int, as: T.Type = T.self) -> T {
        var v: T = 0
        for k in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: self[at + k]) << (8 * k) }
        return v
    }

    public mutating func setLE<T: FixedWidthInteger>(_ v: T, at: Int) {
        for k in 0..<MemoryLayout<T>.size { self[at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
    }

    public mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        for k in 0..<MemoryLayout<T>.size { append(UInt8(truncatingIfNeeded: v >> (8 * k))) }
    }
}

/// Seed corpora are written by the fuzzers themselves, with the product's own encoders:
/// `TALLY_FUZZ_SEEDS=<dir> <fuzzer> -runs=0` writes the target's seeds into `<dir>` and exits
/// (`tools/fuzz.sh --make-corpus` does it for every target into `Fuzz/Corpus/<Name>/`).
public enum Seeds {
    /// Call from `LLVMFuzzerInitialize`.
    public static func writeIfAsked(_ make: () throws -> [(name: String, bytes: [UInt8])]) {
        guard let dir = ProcessInfo.processInfo.environment["TALLY_FUZZ_SEEDS"] else { return }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let seeds = try make()
            for s in seeds {
                try Data(s.bytes).write(to: URL(fileURLWithPath: dir).appendingPathComponent("seed-" + s.name))
            }
            print("wrote \(seeds.count) seeds to \(dir)")
            exit(0)
        } catch {
            print("cannot write seeds: \(error)")
            exit(1)
        }
    }
}

/// A bug: the fuzzer reports the input that led here.
public func fuzzFailure(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError(message, file: file, line: line)
}

/// A scratch directory for targets that need files, one per process: under `TALLY_FUZZ_SCRATCH`
/// when set (tools/fuzz.sh points it into its own working directory), else on a RAM disk when
/// the machine has one, so that `fdatasync` costs little. Removed at a normal exit.
public let scratchDirectory: String = {
    let env = ProcessInfo.processInfo.environment
    let base = env["TALLY_FUZZ_SCRATCH"] ?? (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
    let dir = "\(base)/tally-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    scratchToRemove = dir
    atexit { if let d = scratchToRemove { try? FileManager.default.removeItem(atPath: d) } }
    return dir
}()

nonisolated(unsafe) var scratchToRemove: String?

/// Runs libFuzzer's driver with `callback`. Each fuzzer's `<Target>_main` calls this: SwiftPM's
/// debug builds on Linux link `main` to that symbol instead of libFuzzer's own `main`.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                      _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}

/// Compressed forms of a file, for seeds of the decompressing readers.
public enum Compress {
    /// A gzip stream (zlib's deflate with a gzip wrapper).
    public static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        var s = z_stream()
        guard deflateInit2_(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return []
        }
        defer { deflateEnd(&s) }
        var input = bytes, out = [UInt8](repeating: 0, count: Int(deflateBound(&s, uLong(bytes.count))) + 64)
        let n: Int = input.withUnsafeMutableBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                s.next_in = i.baseAddress
                s.avail_in = uInt(i.count)
                s.next_out = o.baseAddress
                s.avail_out = uInt(o.count)
                _ = deflate(&s, Z_FINISH)
                return o.count - Int(s.avail_out)
            }
        }
        return Array(out[0..<n])
    }

    /// An LZ4 frame, with the content size in its header: the product's own writer.
    public static func lz4Frame(_ bytes: [UInt8]) -> [UInt8] { (try? DumpExport.lz4Frame(bytes)) ?? [] }

    /// An LZ4 block decompressed (snapshot chunks).
    public static func lz4BlockDecompress(_ bytes: ArraySlice<UInt8>, rawCount: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: rawCount)
        let n = out.withUnsafeMutableBytes { o in
            bytes.withUnsafeBytes { i in
                LZ4_decompress_safe(i.baseAddress!.assumingMemoryBound(to: CChar.self), o.baseAddress!.assumingMemoryBound(to: CChar.self),
                                    Int32(i.count), Int32(rawCount))
            }
        }
        return n == Int32(rawCount) ? out : nil
    }
}
