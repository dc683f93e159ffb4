/// Where a store's bytes go (issue 16): each structure's bytes by the store's own accounting
/// (``ClientStore/byteParts``), over all clients and by client size in usage rows, as bytes per
/// usage row of the clients counted. Printed by `tally load`.
public struct MemoryBreakdown: Sendable {
    /// The structures, in the order of ``ClientStore/byteParts``.
    public static let parts = ["users (emails, names, index)", "apps", "departments and memberships", "user activity (first/last days)",
                               "block unions: bitmaps", "block unions: offsets", "block unions: dept. masks",
                               "per-day sums, first days",
                               "pair index", "range tables"]
    /// Client sizes: usage rows from `lower` up to the next class's.
    public static let classes: [(name: String, lower: Int)] = [("< 10k rows", 0), ("10k–100k", 10_000), ("100k–1M", 100_000), ("≥ 1M", 1_000_000)]

    public struct Group: Sendable {
        public var clients = 0, rows = 0
        public var bytes = [Int](repeating: 0, count: MemoryBreakdown.parts.count)
        public var total: Int { bytes.reduce(0, +) }
    }

    public private(set) var all = Group()
    public private(set) var bySize = [Group](repeating: Group(), count: MemoryBreakdown.classes.count)

    public init(_ store: Store) {
        for c in store.clients {
            let rows = c.usage?.rowCount ?? 0
            let k = Self.classes.lastIndex { rows >= $0.lower }!
            let parts = c.byteParts
            bySize[k].clients += 1
            bySize[k].rows += rows
            for (i, b) in parts.enumerated() { bySize[k].bytes[i] += b }
            all.clients += 1
            all.rows += rows
            for (i, b) in parts.enumerated() { all.bytes[i] += b }
        }
    }

    /// A table: one line per structure, its MiB over the store, then bytes per usage row over all
    /// clients and in each size class that holds a client. Every line starts with `memory`.
    public var lines: [String] {
        let shown = bySize.indices.filter { bySize[$0].clients > 0 }
        func perRow(_ b: Int, _ g: Group) -> String { g.rows == 0 ? "—" : String(format: "%.2f", Double(b) / Double(g.rows)) }
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        let nameWidth = Self.parts.map(\.count).max()! + 1
        func row(_ name: String, _ cells: [String]) -> String {
            "memory  " + name + String(repeating: " ", count: max(0, nameWidth - name.count)) + cells.map { pad($0, 15) }.joined()
        }
        var out = [row("bytes per usage row, by structure", ["MiB", "all"] + shown.map { Self.classes[$0].name })]
        out.append(row("(clients; usage rows)", ["", "\(all.clients); \(all.rows)"] + shown.map { "\(bySize[$0].clients); \(bySize[$0].rows)" }))
        for (i, name) in Self.parts.enumerated() {
            out.append(row(name, [String(format: "%.1f", Double(all.bytes[i]) / 1_048_576), perRow(all.bytes[i], all)]
                                 + shown.map { perRow(bySize[$0].bytes[i], bySize[$0]) }))
        }
        out.append(row("total", [String(format: "%.1f", Double(all.total) / 1_048_576), perRow(all.total, all)]
                              + shown.map { perRow(bySize[$0].total, bySize[$0]) }))
        return out
    }
}
