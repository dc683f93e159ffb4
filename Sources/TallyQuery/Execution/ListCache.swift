#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TallyStorage

/// A paged list that had to be evaluated whole, kept for the pages that follow: every row's
/// metrics and the rows in the list's order. A cursor page of the same list then finds its
/// cursor by binary search and reads its rows (O(log rows + page)), instead of counting and
/// ordering every row again.
///
/// Why: a list whose page cannot be bounded (D by ascending counts, A by name, lists under
/// filters no stored order serves) evaluates every row for every page, so paging through a
/// list cost its whole price per page — 5 pages of the 900-user client's users took 3.3–4.7 ms in
/// process at scale M, ×5–×54 DuckDB's one query for the whole list (docs/BENCHMARKS.md,
/// seed-5 run): cursor pages that do not re-run the whole query, as issue 16 asks.
///
/// Kept per (client version, catalog, query without its cursor, page size and comparison, way
/// of reading department filters): a client and its catalog are immutable, so a kept list is
/// exact for as long as both are served; the entry holds them weakly and is dropped once either
/// is replaced. Bounded by `budget` bytes, least recently used out first.
final class ListCache: Sendable {
    /// 64 MiB unless `TALLY_LIST_CACHE_MB` says otherwise (0: keep nothing): by arithmetic, a
    /// list of the 20,000-user client's users is 1.5 MB (72 + 4 bytes a row), so about 44 of
    /// them, or thousands of app and category lists.
    static let shared = ListCache(budget: (getenv("TALLY_LIST_CACHE_MB").flatMap { Int(String(cString: $0)) } ?? 64) << 20)

    struct Key: Hashable {
        let client: ObjectIdentifier
        let catalog: ObjectIdentifier
        let query: Query
        let scan: DepartmentScan

        init(client: ClientStore, catalog: Catalog, query q: Query, scan: DepartmentScan) {
            self.client = ObjectIdentifier(client)
            self.catalog = ObjectIdentifier(catalog)
            var k = q
            k.after = nil
            k.pageSize = nil
            k.comparison = nil
            query = k
            self.scan = scan
        }
    }

    final class Kept: Sendable {
        weak let client: ClientStore?
        weak let catalog: Catalog?
        /// Every row's metrics, indexed like the dimension's rows.
        let metrics: [Metrics]
        /// The list's rows in its order (the rows it shows, over all pages).
        let order: [Int32]
        /// A list kept by its sort's number alone (``Executor/usersCounted(_:_:_:_:kept:)``): each
        /// listed row's number, in `order`'s order; `metrics` is then empty and a page's metrics
        /// are counted for its rows.
        let values: [Int32]
        /// Whether the list is kept by its sort's number (`values`) rather than `metrics`.
        let counted: Bool
        let bytes: Int

        init(client: ClientStore, catalog: Catalog, metrics: [Metrics], order: [Int32]) {
            self.client = client
            self.catalog = catalog
            self.metrics = metrics
            self.order = order
            values = []
            counted = false
            bytes = Self.bytes(metrics.count, order.count)
        }

        init(client: ClientStore, catalog: Catalog, order: [Int32], values: [Int32]) {
            self.client = client
            self.catalog = catalog
            metrics = []
            self.order = order
            self.values = values
            counted = true
            bytes = Self.bytes(0, order.count * 2)
        }

        static func bytes(_ rows: Int, _ listed: Int) -> Int { rows * MemoryLayout<Metrics>.stride + listed * 4 + 256 }
    }

    private struct State {
        var entries: [Key: (kept: Kept, lastUse: UInt64)] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }

    let budget: Int
    private let state = Mutex(State())

    init(budget: Int) { self.budget = budget }

    /// `key`'s kept list, if it was made for this very client and catalog.
    func list(_ key: Key, client: ClientStore, catalog: Catalog) -> Kept? {
        state.withLock { s in
            guard let e = s.entries[key] else { return nil }
            guard e.kept.client === client, e.kept.catalog === catalog else {
                s.entries[key] = nil
                s.bytes -= e.kept.bytes
                return nil
            }
            s.clock &+= 1
            s.entries[key]!.lastUse = s.clock
            return e.kept
        }
    }

    /// Keeps `metrics` and `order` for `key` (and returns them), dropping the least recently
    /// used lists (and those whose client or catalog is gone) while over the budget. A list over
    /// a quarter of the budget is not kept.
    @discardableResult
    func keep(_ metrics: [Metrics], order: [Int32], _ key: Key, client: ClientStore, catalog: Catalog) -> Kept {
        keep(Kept(client: client, catalog: catalog, metrics: metrics, order: order), key)
    }

    /// Keeps `kept` for `key` (and returns it), as above.
    @discardableResult
    func keep(_ kept: Kept, _ key: Key) -> Kept {
        guard kept.bytes <= budget / 4 else { return kept }
        state.withLock { s in
            if let old = s.entries[key] { s.bytes -= old.kept.bytes }
            s.clock &+= 1
            s.entries[key] = (kept, s.clock)
            s.bytes += kept.bytes
            guard s.bytes > budget else { return }
            for (k, e) in s.entries where e.kept.client == nil || e.kept.catalog == nil {
                s.entries[k] = nil
                s.bytes -= e.kept.bytes
            }
            while s.bytes > budget, let oldest = s.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                s.entries[oldest.key] = nil
                s.bytes -= oldest.value.kept.bytes
            }
        }
        return kept
    }

    /// Lists kept and their bytes (for tests).
    var usage: (lists: Int, bytes: Int) { state.withLock { ($0.entries.count, $0.bytes) } }
}
