import Dispatch
import Synchronization
import TallyStorage
#if canImport(Glibc)
import CMalloc
#endif

/// Gives the memory of replaced stores back to the system. A reload or an append swaps in a new
/// ``Store`` and the old one is freed when the last request using it ends — but glibc's
/// allocator keeps freed memory in its arenas: measured with `tools/load/soak.py` on the
/// scale-M snapshot (247 MiB resident), one reload a minute grew the server to 552 MiB after
/// four reloads, and reloads with appends to 717 MiB in ten minutes (2026-11-30). Once a
/// replaced store is gone, `malloc_trim(0)` returns the free pages of every arena (at most once
/// a second; it walks the heap). Only stores whose replacement let a client's index go are
/// watched (``StoreWriter/freesIndexes(_:keptBy:)``): a version that only grew a tail frees
/// next to nothing, and trimming after each one walked the free chunks every second. The commit
/// thread has the heap trimmed once more when appends stop (``StoreWriter/idleTrimSeconds``).
public final class MemoryReclaimer: Sendable {
    static let shared = MemoryReclaimer()

    private struct Watched: @unchecked Sendable { weak var store: Store? }
    private let state = Mutex<(watched: [Watched], polling: Bool)>(([], false))
    private let queue = DispatchQueue(label: "tally.memory-reclaimer", qos: .utility)

    /// `store` was just replaced: trim once it has been freed.
    func watch(_ store: Store) {
        let start = state.withLock { s -> Bool in
            s.watched.append(Watched(store: store))
            defer { s.polling = true }
            return !s.polling
        }
        if start { queue.asyncAfter(deadline: .now() + .milliseconds(200)) { self.poll() } }
    }

    private func poll() {
        let (freed, more) = state.withLock { s -> (Bool, Bool) in
            let before = s.watched.count
            s.watched.removeAll { $0.store == nil }
            let freed = s.watched.count < before
            s.polling = !s.watched.isEmpty
            return (freed, s.polling)
        }
        if freed { Self.trim() }
        if more { queue.asyncAfter(deadline: .now() + .seconds(1)) { self.poll() } }
    }

    /// The allocator's heap, every arena: bytes handed out and not yet freed (`allocated`, small
    /// chunks and mmapped ones), and bytes it holds free (`free`, not yet given back). Their sum
    /// against the resident size tells growth (live data) from fragmentation (free memory the
    /// allocator keeps). `nil` where glibc's `mallinfo2` is not available. Walks every arena's
    /// bins under its lock: for a scrape, not a request.
    public static func heap() -> (allocated: Int, free: Int)? {
        #if canImport(Glibc)
        let m = mallinfo2()
        return (Int(m.uordblks) + Int(m.hblkhd), Int(m.fordblks))
        #else
        return nil
        #endif
    }

    /// Trims on this reclaimer's queue, then calls `then` (the commit thread, idle for a while
    /// after appends: ``StoreWriter/idleTrimSeconds``).
    func trimSoon(then: @escaping @Sendable () -> Void) {
        queue.async {
            Self.trim()
            then()
        }
    }

    static func trim() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
