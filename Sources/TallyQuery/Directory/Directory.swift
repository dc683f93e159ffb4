import TallyStorage

/// What the directory endpoints (SPEC §3b) derive from a client's users on first use and keep
/// with the client (``ClientStore/derived``): case-folded sort keys, `created_at` in RFC 3339
/// UTC, the users in each sortable order and the departments in name order. A user list then
/// pays for its page and a filter test per user, not for a sort.
final class UserDirectory: DirectoryDerived {
    /// Unicode lower case of each user's email and display name, as scalars (K's `q` and sorts).
    let email: [[UInt32]]
    let displayName: [[UInt32]?]
    /// `created_at` normalised (SPEC §3b), and its instant as fixed-width sortable digits.
    let created: [String?]
    let createdKey: [[UInt32]?]
    /// Users in each sortable order: ascending (a `nil` key last) and descending (a `nil` key
    /// first), ties by id ascending in both.
    let byEmail: (asc: [UInt32], desc: [UInt32])
    let byDisplayName: (asc: [UInt32], desc: [UInt32])
    let byCreated: (asc: [UInt32], desc: [UInt32])
    /// Each department's position in name order (then id).
    let departmentRank: [Int]
    /// Users in id order, and each user's place in it: the tie-break of every sorted list as a
    /// 32-bit number (``RankedPage``), so that a list sorted by a number compares integers.
    let byId: [UInt32]
    let idRank: [UInt32]

    init(_ c: ClientStore) {
        func fold(_ s: String) -> [UInt32] { s.lowercased().unicodeScalars.map(\.value) }
        email = c.users.map { fold($0.email) }
        displayName = c.users.map { $0.displayName.map(fold) }
        created = c.users.map { $0.createdAt.flatMap(Timestamp.rfc3339UTC) }
        createdKey = c.users.map { u in
            u.createdAt.flatMap(Timestamp.micros).map { m in
                // Shifted so that year 1 is 0: every instant is non-negative, 20 digits sort as numbers.
                let s = String(m + 62_135_596_800_000_000)
                return Array(repeating: 48, count: max(0, 20 - s.utf8.count)) + s.unicodeScalars.map(\.value)
            }
        }
        let ids = c.users.map(\.id)
        func order(_ key: (Int) -> [UInt32]?) -> (asc: [UInt32], desc: [UInt32]) {
            func sorted(_ o: SortOrder) -> [UInt32] {
                (0..<UInt32(c.users.count)).sorted { a, b in
                    Executor.compare(PageKey(value: .text(key(Int(a))), id: ids[Int(a)]),
                                     PageKey(value: .text(key(Int(b))), id: ids[Int(b)]), o) < 0
                }
            }
            return (sorted(.asc), sorted(.desc))
        }
        let e = email, d = displayName, k = createdKey
        byEmail = order { e[$0] }
        byDisplayName = order { d[$0] }
        byCreated = order { k[$0] }
        let names = c.departments.map { fold($0.name) }
        let depOrder = c.departments.indices.sorted { a, b in
            names[a] != names[b] ? names[a].lexicographicallyPrecedes(names[b]) : c.departments[a].id < c.departments[b].id
        }
        var rank = [Int](repeating: 0, count: c.departments.count)
        for (i, x) in depOrder.enumerated() { rank[x] = i }
        departmentRank = rank
        let idOrder = (0..<UInt32(c.users.count)).sorted { ids[Int($0)] < ids[Int($1)] }
        var idRank = [UInt32](repeating: 0, count: c.users.count)
        for (i, u) in idOrder.enumerated() { idRank[Int(u)] = UInt32(i) }
        byId = idOrder
        self.idRank = idRank
    }

    static func of(_ c: ClientStore) -> UserDirectory { c.derived.get { UserDirectory(c) } }

    /// Bytes held (arrays' elements and headers; strings' UTF-8 and headers).
    var byteCount: Int {
        let header = 32
        func keys(_ k: [[UInt32]?]) -> Int { k.reduce(k.count * 8 + header) { $0 + ($1.map { header + $0.count * 4 } ?? 0) } }
        var n = keys(email) + keys(displayName) + keys(createdKey)
        n += created.reduce(created.count * 16 + header) { $0 + ($1.map { $0.utf8.count > 15 ? $0.utf8.count + header : 0 } ?? 0) }
        n += 8 * (header + email.count * 4) + departmentRank.count * 8 + header
        return n
    }
}

extension DirectoryReports {
    /// Derives what the directory keeps for client `c` (if not yet) and returns its bytes.
    public static func derivedByteCount(_ c: ClientStore) -> Int { UserDirectory.of(c).byteCount }
}

/// A document writer that is either JSON or compact, chosen per request (the directory
/// endpoints write through one code path for both formats).
struct AnyWriter: DocumentWriter {
    var json: JSONWriter?
    var compact: CompactWriter?

    init(_ format: ResultFormat, capacity: Int) {
        if format == .json { json = JSONWriter(capacity: capacity) } else { compact = CompactWriter(capacity: capacity) }
    }

    var bytes: [UInt8] { json?.bytes ?? compact!.finish() }

    mutating func beginObject() { if json != nil { json!.beginObject() } else { compact!.beginObject() } }
    mutating func endObject() { if json != nil { json!.endObject() } else { compact!.endObject() } }
    mutating func beginArray() { if json != nil { json!.beginArray() } else { compact!.beginArray() } }
    mutating func endArray() { if json != nil { json!.endArray() } else { compact!.endArray() } }
    mutating func key(_ k: StaticString) { if json != nil { json!.key(k) } else { compact!.key(k) } }
    mutating func null() { if json != nil { json!.null() } else { compact!.null() } }
    mutating func bool(_ b: Bool) { if json != nil { json!.bool(b) } else { compact!.bool(b) } }
    mutating func int(_ v: Int) { if json != nil { json!.int(v) } else { compact!.int(v) } }
    mutating func tenths(_ t: Int) { if json != nil { json!.tenths(t) } else { compact!.tenths(t) } }
    mutating func string(_ s: String) { if json != nil { json!.string(s) } else { compact!.string(s) } }
    mutating func uuid(_ u: UUID128) { if json != nil { json!.uuid(u) } else { compact!.uuid(u) } }
    mutating func day(_ d: Day) { if json != nil { json!.day(d) } else { compact!.day(d) } }
}

/// One page of a keyset-paged list: rows after `after` in `order`, at most `size`.
struct Paged<Row> {
    var rows: [(key: PageKey, row: Row)]
    var total: Int
    var next: PageKey?

    /// - Complexity: O(n log size).
    init(_ items: [(key: PageKey, row: Row)], order: SortOrder, after: PageKey?, size: Int) {
        total = items.count
        let remaining = after.map { a in items.filter { Executor.compare($0.key, a, order) > 0 } } ?? items
        rows = Executor.smallest(size, of: remaining) { Executor.compare($0.key, $1.key, order) < 0 }
        next = remaining.count > size ? rows.last?.key : nil
    }

    /// A page already chosen (``RankedPage``).
    init(rows: [(key: PageKey, row: Row)], total: Int, next: PageKey?) {
        self.rows = rows
        self.total = total
        self.next = next
    }
}

/// How a directory list is sorted and paged (validated by the API layer).
public struct DirectoryPage: Sendable {
    public var sortBy: String?
    public var order: SortOrder?
    public var size: Int
    public var after: PageKey?
    public init(sortBy: String? = nil, order: SortOrder? = nil, size: Int = 50, after: PageKey? = nil) {
        self.sortBy = sortBy
        self.order = order
        self.size = size
        self.after = after
    }
}
