#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Where the long-lived buffers of one client version come from: mappings of its own, handed
/// out by a bump pointer and unmapped all together when the last structure using them is freed.
///
/// Why not the heap: a reload builds a whole new data set beside the served one, then frees the
/// old one. From glibc's arenas, the new data set's thousands of buffers land among the survivors
/// of the last and among the queries' own allocations, and what the old one leaves is pages
/// partly held by live allocations: `malloc_trim` cannot give them back. Measured with
/// `tools/load/soak.py` (10 minutes, a reload a minute, scale M; docs/BENCHMARKS.md, "A soak"):
/// without reloads the resident size drifts 0.5%; with them and the buffers on the heap, 6.1% and
/// 8.1% in two runs on 2026-12-01; with them in regions, 4.7% and 2.8% (each minute's median
/// 155–163 MiB, the same level as from the heap). A snapshot's sections are decompressed into a
/// scratch region and their arrays read straight into the client's (``Frozen``), so that a
/// reload no longer passes its transient arrays through the heap either: 3.1% (154–159 MiB).
///
/// Used while a client is built or decoded (``building(_:)`` sets this thread's current region);
/// each structure takes ``current`` once in its `init`, allocates its buffers with
/// ``allocate(_:capacity:in:)`` and keeps the region (so it outlives them), and frees them with
/// ``release(_:in:)`` (a no-op for region memory). Without a current region (tests, tools,
/// values derived at query time) buffers come from the heap as before.
public final class StoreMemory: @unchecked Sendable {
    /// Bump chunks of 1 MiB (pages never written are not resident); a buffer of a quarter of
    /// that or more gets a mapping of its own. `tally load` of the scale-M snapshot grew the
    /// resident size by 11.44–11.47 bytes a row with these (11.51–11.53 with 256 KiB chunks),
    /// against 10.94 with every buffer on the heap; 11.00–11.02 since the snapshot's sections and
    /// arrays no longer pass through the heap (three loads each).
    static let chunkBytes = 1 << 20
    static let pageBytes = 4096

    struct State {
        var mappings: [(base: UnsafeMutableRawPointer, bytes: Int)] = []
        var next: UnsafeMutableRawPointer?
        var left = 0
    }
    private let state = Mutex(State())

    init() {}

    deinit {
        state.withLock { s in
            for m in s.mappings { _ = munmap(m.base, m.bytes) }
        }
    }

    /// Maps at least `bytes` (whole pages) and keeps the mapping for ``deinit``.
    static func map(_ bytes: Int, into s: inout State) -> UnsafeMutableRawPointer {
        let size = (bytes + pageBytes - 1) / pageBytes * pageBytes
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("cannot map \(size) bytes for a client's data")
        }
        s.mappings.append((p, size))
        return p
    }

    /// `n` uninitialized bytes (at least 16), aligned to 16 bytes.
    func allocateRaw(bytes n: Int) -> UnsafeMutableRawPointer {
        let bytes = (max(n, 1) + 15) & ~15
        return state.withLock { s in
            if bytes >= Self.chunkBytes / 4 { return Self.map(bytes, into: &s) }
            if s.left < bytes || s.next == nil {
                let p = Self.map(Self.chunkBytes, into: &s)
                s.next = p
                s.left = Self.chunkBytes
            }
            let p = s.next!
            s.next = p + bytes
            s.left -= bytes
            return p
        }
    }

    // MARK: The current region of this thread

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// This thread's region while it builds or decodes a client (``building(_:)``), else `nil`.
    public static var current: StoreMemory? {
        guard let p = pthread_getspecific(key) else { return nil }
        return Unmanaged<StoreMemory>.fromOpaque(p).takeUnretainedValue()
    }

    /// Whether clients take regions at all: not when `TALLY_STORE_HEAP` is set (to anything).
    /// The fuzzers set it: the address sanitizer knows the bounds of each heap buffer, not of the
    /// pieces of a mapping, so a read past a buffer inside a region would go unreported.
    static let enabled = getenv("TALLY_STORE_HEAP") == nil

    /// Runs `body` with a new region as this thread's current one (or the one already current:
    /// a client decoded inside a build shares it).
    public static func building<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        if current != nil || !enabled { return try body() }
        let region = StoreMemory()
        pthread_setspecific(key, Unmanaged.passUnretained(region).toOpaque())
        defer { pthread_setspecific(key, nil) }
        return try withExtendedLifetime(region) { () throws(E) -> R in try body() }
    }

    /// `capacity` uninitialized elements from `region`, or from the heap without one.
    static func allocate<T>(_: T.Type, capacity: Int, in region: StoreMemory?) -> UnsafeMutableBufferPointer<T> {
        guard let region else {
            return UnsafeMutableBufferPointer(rebasing: UnsafeMutableBufferPointer<T>.allocate(capacity: max(capacity, 1))[0..<capacity])
        }
        let raw = region.allocateRaw(bytes: max(capacity, 1) * MemoryLayout<T>.stride)
        return UnsafeMutableBufferPointer(start: raw.bindMemory(to: T.self, capacity: max(capacity, 1)), count: capacity)
    }

    /// Frees a buffer from ``allocate(_:capacity:in:)`` (the heap's; a region's goes with it).
    static func release<T>(_ p: UnsafeMutablePointer<T>, in region: StoreMemory?) {
        if region == nil { p.deallocate() }
    }
}
