import Foundation
import TallyStorage

/// The hand-written reading of append bodies in the forms clients send. Foundation's
/// `JSONSerialization` was about 15% of the samples of a server taking 1,000-event batches
/// (`perf`, 2026-12-01; docs/BENCHMARKS.md, "Appends into tails"), and 17% of one taking
/// batches with new users (2026-12-03, "New users in the tail"), where every body went to it.
extension AppendBody {
    /// What ``scan(_:_:)`` read: the events, the ids of users and apps they name that the client
    /// does not hold (the batch's directory rows must add them), and where each directory table's
    /// array is in the body.
    struct Scanned {
        var rows: [AppendBatch.Row] = []
        var newUsers: [UUID128] = [], newApps: [UUID128] = []
        /// The rows' users, apps and days as the client numbers them (the held ones: complete
        /// when `newUsers` and `newApps` are empty).
        var users: [UInt32] = [], apps: [UInt32] = [], days: [Int32] = []
        var tables: [(name: String, bytes: Range<Int>)] = []
    }

    /// The batch of a body read by ``scan(_:_:)`` — its events scanned, its directory tables (a few
    /// rows beside them, as a rule) parsed alone with `JSONSerialization` and checked as
    /// ``parseJSON(client:c:body:store:mayChangeCatalog:)`` checks them — when every row is
    /// accepted; `nil` for anything else (a refused row, a table not of an append, a table named
    /// twice, a batch over the limits, an event naming an id neither held nor added), which
    /// `parseJSON` then reads whole, naming what it refuses. The same batch either way
    /// (`AppendBodyScanTests`).
    static func parseScanned(client: UUID128, c: ClientStore, body: [UInt8], store: Store, mayChangeCatalog: Bool) -> AppendBatch? {
        var v = Validator(client: client, c: c, store: store, mayChangeCatalog: mayChangeCatalog)
        guard let scanned = scan(body, v) else { return nil }
        var tables: [String: [Any]] = [:]
        for (name, bytes) in scanned.tables {
            guard directoryTables.contains(name), tables[name] == nil,
                  let rows = try? JSONSerialization.jsonObject(with: Data(body[bytes])) as? [Any] else { return nil }
            tables[name] = rows
        }
        let directoryRows = tables.values.reduce(0) { $0 + $1.count }
        guard directoryRows + scanned.rows.count > 0, directoryRows <= maxEvents else { return nil }
        let directory = v.directory(tables)
        guard v.refused.isEmpty, scanned.newUsers.allSatisfy(v.users.contains), scanned.newApps.allSatisfy(v.apps.contains) else {
            return nil
        }
        // Events alone, every id held: numbered as `c` numbers them, for the commit thread.
        let dense = scanned.tables.isEmpty && scanned.newUsers.isEmpty && scanned.newApps.isEmpty && !scanned.rows.isEmpty
            ? DenseEvents(numbering: c.numbering, users: scanned.users, apps: scanned.apps, days: scanned.days) : nil
        return AppendBatch(client: client, rows: scanned.rows, directory: directory, dense: dense)
    }

    /// Reads a body in the form clients send: a bare array of events, or an object whose keys
    /// (in any order, each once) are `events` and directory tables. Events are objects with
    /// exactly `user_id`, `application_id` and `activity_date`, as strings without escapes, and
    /// each must be valid (ids well formed, a date in the window); an id the client does not hold
    /// is listed for the directory rows to add. A directory table's array is only delimited here.
    /// `nil` for anything else.
    static func scan(_ body: [UInt8], _ v: Validator) -> Scanned? {
        body.withUnsafeBufferPointer { b -> Scanned? in
            var r = Reader(b: b)
            var s = Scanned()
            r.skip()
            if r.i < r.n, b[r.i] == 0x5B {
                guard r.events(into: &s, v) else { return nil }
            } else {
                guard r.take(0x7B) else { return nil }
                var sawEvents = false
                repeat {
                    guard let key = r.string(), r.take(0x3A) else { return nil }
                    if r.equals(key, "events") {
                        guard !sawEvents, r.events(into: &s, v) else { return nil }
                        sawEvents = true
                    } else {
                        guard let bytes = r.array(),
                              let name = String(validating: UnsafeBufferPointer(rebasing: b[key]), as: UTF8.self) else { return nil }
                        s.tables.append((name, bytes))
                    }
                } while r.take(0x2C)
                guard r.take(0x7D) else { return nil }
            }
            r.skip()
            return r.i == r.n ? s : nil
        }
    }

    /// ``scan(_:_:)``'s position in the body, and its steps. A value with mutating methods: as
    /// local functions capturing the position, each step's reads and writes of it were checked
    /// for exclusivity at run time — 132 of the parse's 354 `perf` samples (`swift_beginAccess`,
    /// the access set, thread-local lookups) in a trickle of 1,000-event batches (2026-12-04).
    private struct Reader {
        let b: UnsafeBufferPointer<UInt8>
        let n: Int
        var i = 0

        init(b: UnsafeBufferPointer<UInt8>) {
            self.b = b
            n = b.count
        }

        @inline(__always) mutating func skip() {
            while i < n, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i &+= 1 }
        }

        @inline(__always) mutating func take(_ c: UInt8) -> Bool {
            skip()
            guard i < n, b[i] == c else { return false }
            i &+= 1
            return true
        }

        /// A string without escapes: its bytes' range.
        mutating func string() -> Range<Int>? {
            guard take(0x22) else { return nil }
            let start = i
            while i < n, b[i] != 0x22 {
                if b[i] == 0x5C || b[i] < 0x20 { return nil }
                i &+= 1
            }
            guard i < n else { return nil }
            i &+= 1
            return start..<(i &- 1)
        }

        func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
            guard r.count == s.utf8CodeUnitCount else { return false }
            let p = s.utf8Start
            for k in 0..<r.count where b[r.lowerBound &+ k] != p[k] { return false }
            return true
        }

        /// Past an array (strings with escapes inside), without checking it: the bytes go to
        /// `JSONSerialization`, which does.
        mutating func array() -> Range<Int>? {
            skip()
            guard i < n, b[i] == 0x5B else { return nil }
            let start = i
            var depth = 0
            repeat {
                switch b[i] {
                case 0x22:
                    i &+= 1
                    while i < n, b[i] != 0x22 { i &+= b[i] == 0x5C ? 2 : 1 }
                case 0x5B, 0x7B: depth &+= 1
                case 0x5D, 0x7D: depth &-= 1
                default: break
                }
                i &+= 1
            } while depth > 0 && i < n
            return depth == 0 && i <= n ? start..<i : nil
        }

        /// The events' array, into `s`.
        mutating func events(into s: inout Scanned, _ v: Validator) -> Bool {
            guard take(0x5B) else { return false }
            if take(0x5D) { return true }  // none: beside directory tables
            let capacity = min(AppendBody.maxEvents, n / 100)
            s.rows.reserveCapacity(capacity)
            s.users.reserveCapacity(capacity)
            s.apps.reserveCapacity(capacity)
            s.days.reserveCapacity(capacity)
            let latest = v.latest
            repeat {
                guard s.rows.count < AppendBody.maxEvents, take(0x7B) else { return false }
                var user: UUID128?, app: UUID128?, day: Day?
                for k in 0..<3 {
                    guard k == 0 || take(0x2C), let key = string(), take(0x3A), let value = string() else { return false }
                    let field = UnsafeBufferPointer(rebasing: b[value])
                    if equals(key, "user_id"), user == nil {
                        guard let u = UUID128(bytes: field) else { return false }
                        if let i = v.c.userIndex[u] { s.users.append(i) } else { s.newUsers.append(u) }
                        user = u
                    } else if equals(key, "application_id"), app == nil {
                        guard let a = UUID128(bytes: field) else { return false }
                        if let i = v.c.appIndex[a] { s.apps.append(i) } else { s.newApps.append(a) }
                        app = a
                    } else if equals(key, "activity_date"), day == nil {
                        guard let d = Day(iso: field), d >= v.earliest, d <= latest else { return false }
                        day = d
                    } else {
                        return false
                    }
                }
                guard take(0x7D), let user, let app, let day else { return false }
                s.rows.append(AppendBatch.Row(user: user, app: app, day: day))
                s.days.append(day.raw)
            } while take(0x2C)
            return take(0x5D)
        }
    }
}
