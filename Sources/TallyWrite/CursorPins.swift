import Foundation
import Synchronization
import TallyStorage

/// The versions of the data that list pages handed out cursors of, kept so that the next pages
/// read the same version (SPEC §3, cursors; docs/APPENDS.md §8): an append published between two
/// pages cannot then move a row across the cursor, add one before it or take one away — the
/// pages of one walk concatenate to the list as it was when the walk began.
///
/// A list under a client reads only that client (and the catalog), so its pin holds that
/// client's version alone: a client's version changes only when an append or reload replaces its
/// data (``StoreWriter/Served/clientVersions``), and first pages of a client nothing was appended
/// to share one pin, which costs nothing while that version is the one served. The reports over
/// every client pin the whole store. What pins hold beyond the served data is bounded:
/// - at most ``perScope`` pins per client (and as many for the cross-client admin reports),
///   ``maxPins`` in all, the least recently used dropped first;
/// - a pin unused for ``idleSeconds`` is dropped;
/// - the client versions only pins still hold may take at most ``budgetBytes`` (by the store's
///   accounting), checked at every publish; the least recently used pins go first;
/// - a reload drops every pin: it replaces the data wholesale, and holding the previous data set
///   for the sake of a cursor would double the server's memory.
///
/// A cursor whose version is no longer pinned continues on the version served now, from its
/// keyset (the last row's sort value and id), as cursors of the first format always do.
public final class CursorPins: Sendable {
    public static let perScope = 4
    public static let maxPins = 64
    public static let idleSeconds: Double = 600

    struct Pin {
        var version: UInt64
        var client: UUID128?
        /// The catalog and that one client (a list under a client), or the whole store.
        var store: Store
        var lastUse: Double
    }

    struct State {
        var pins: [Pin] = []
        /// Bytes of client versions held only by pins, as of the last publish.
        var heldBytes = 0
    }

    private let state = Mutex(State())
    /// What pinned client versions that are no longer served may take, in bytes.
    public let budgetBytes: Int

    /// 256 MiB unless the server is told otherwise (`TALLY_CURSOR_PIN_MIB`).
    public static let defaultBudgetBytes = 256 << 20

    public init(budgetBytes: Int = CursorPins.defaultBudgetBytes) {
        self.budgetBytes = budgetBytes
    }

    static func now() -> Double { ProcessInfo.processInfo.systemUptime }

    /// Keeps what a list of `client` read from `store` (`nil`: a report over every client, the
    /// whole store), as `version` (the client's, or the store's), for its next pages. A version
    /// no longer served (`served` false: a page that began before a reload or an append and
    /// ended after it) is not pinned anew — only touched if a pin holds it: else a request in
    /// flight across a reload would pin the replaced data set's client right after the reload
    /// dropped every pin (in the 10-minute soak the allocator's bytes in use then rose from 112
    /// to 143–149 MiB, and the resident size by up to 40 MiB, for a minute at a time).
    public func pin(_ store: Store, version: UInt64, client: UUID128?, served: Bool = true) {
        let t = Self.now()
        let found = state.withLock { s -> Bool in
            guard let i = s.pins.firstIndex(where: { $0.version == version && $0.client == client }) else { return false }
            s.pins[i].lastUse = t
            return true
        }
        if found || !served { return }
        let kept: Store
        if let client {
            guard let c = store.client(client) else { return }
            kept = Store(catalog: store.catalog, clients: [c], walSequence: store.walSequence)
        } else {
            kept = store
        }
        state.withLock { s in
            s.pins.removeAll { t - $0.lastUse > Self.idleSeconds }
            if let i = s.pins.firstIndex(where: { $0.version == version && $0.client == client }) {
                s.pins[i].lastUse = t
                return
            }
            s.pins.append(Pin(version: version, client: client, store: kept, lastUse: t))
            let mine = s.pins.indices.filter { s.pins[$0].client == client }
            if mine.count > Self.perScope, let oldest = mine.min(by: { s.pins[$0].lastUse < s.pins[$1].lastUse }) {
                s.pins.remove(at: oldest)
            }
            if s.pins.count > Self.maxPins, let oldest = s.pins.indices.min(by: { s.pins[$0].lastUse < s.pins[$1].lastUse }) {
                s.pins.remove(at: oldest)
            }
        }
    }

    /// What was pinned as `version` for `client`, if it is still kept: a store of the catalog and
    /// that client (or the whole store, for `nil`).
    public func store(version: UInt64, client: UUID128?) -> Store? {
        let t = Self.now()
        return state.withLock { s -> Store? in
            guard let i = s.pins.firstIndex(where: { $0.version == version && $0.client == client }) else { return nil }
            guard t - s.pins[i].lastUse <= Self.idleSeconds else {
                s.pins.remove(at: i)
                return nil
            }
            s.pins[i].lastUse = t
            return s.pins[i].store
        }
    }

    /// A new version is served. `replacesData`: a reload (every pin goes). Otherwise pins are
    /// dropped, least recently used first, while the client versions only they hold take more
    /// than ``budgetBytes``.
    func published(_ served: Store, replacesData: Bool) {
        state.withLock { s in
            if replacesData {
                s.pins.removeAll()
                s.heldBytes = 0
                return
            }
            guard !s.pins.isEmpty else { return }
            while true {
                let held = Self.heldBytes(s.pins, served: served)
                s.heldBytes = held
                if held <= budgetBytes || s.pins.isEmpty { return }
                let oldest = s.pins.indices.min { s.pins[$0].lastUse < s.pins[$1].lastUse }!
                s.pins.remove(at: oldest)
            }
        }
    }

    /// Bytes of the client versions that `pins` hold and `served` does not, each counted once.
    static func heldBytes(_ pins: [Pin], served: Store) -> Int {
        var stores = Set<ObjectIdentifier>(), seen = Set<ObjectIdentifier>()
        var bytes = 0
        for p in pins where p.store !== served && stores.insert(ObjectIdentifier(p.store)).inserted {
            for c in p.store.clients where served.client(c.info.id) !== c && seen.insert(ObjectIdentifier(c)).inserted {
                bytes += c.byteCount
            }
        }
        return bytes
    }

    /// Pins kept, and the bytes of the client versions only they hold (as of the last publish).
    public var figures: (pins: Int, heldBytes: Int) {
        state.withLock { ($0.pins.count, $0.heldBytes) }
    }
}
