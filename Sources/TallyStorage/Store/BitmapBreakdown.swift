/// Where the level arenas' bytes go (issue 16): per level, container headers and payload by
/// container kind, apps against classes, and how many containers hold 1, 2, 3–4, 5–16 or more
/// values. Printed by `tally load --bitmaps`.
public struct BitmapBreakdown: Sendable {
    public struct Level: Sendable {
        public var headers = 0, arrays = 0, packed = 0, bitsets = 0, runs = 0, starts = 0
        public var appBytes = 0, classBytes = 0
        public var byCardinality = [Int](repeating: 0, count: 5)
        public var emptyBitmaps = 0, bitmaps = 0
    }
    public private(set) var levels: [[Level]] = []  // [size class][level]
    public private(set) var rows = [Int](repeating: 0, count: MemoryBreakdown.classes.count)

    public init(_ store: Store) {
        let levelCount = store.clients.compactMap { $0.usage?.levels.count }.max() ?? 0
        levels = [[Level]](repeating: [Level](repeating: Level(), count: levelCount), count: MemoryBreakdown.classes.count)
        for c in store.clients {
            guard let u = c.usage else { continue }
            let k = MemoryBreakdown.classes.lastIndex { u.rowCount >= $0.lower }!
            rows[k] += u.rowCount
            for l in u.levels.indices {
                let arena = u.levels[l], view = arena.view
                let (starts, blocks) = u.starts(level: l)
                var s = levels[k][l]
                s.starts += starts.byteCount
                for e in 0..<u.entityCount {
                    for b in 0..<blocks {
                        let ref = starts.bitmap(e * blocks + b)
                        s.bitmaps += 1
                        if ref.isEmpty { s.emptyBitmaps += 1 }
                        var bytes = 0
                        for i in 0..<view.containerCount(ref) {
                            let c = view.slot(ref, i)
                            // Headerless: the bitmap's range is its one container, count and padding included.
                            let payload = arena.headerless ? 2 * Int(ref.end - ref.start) : Self.payloadBytes(c, view)
                            switch c.kind {
                            case .array: s.arrays += payload
                            case .bitset: s.bitsets += payload
                            case .run: s.runs += payload
                            case .packed: s.packed += payload
                            }
                            let header = arena.headerless ? 0 : MemoryLayout<ContainerHeader>.stride
                            s.headers += header
                            bytes += header + payload
                            let n = c.cardinality
                            s.byCardinality[n == 1 ? 0 : n == 2 ? 1 : n <= 4 ? 2 : n <= 16 ? 3 : 4] += 1
                        }
                        if e < u.appSlots { s.appBytes += bytes } else { s.classBytes += bytes }
                    }
                }
                levels[k][l] = s
            }
        }
    }

    /// Bytes of a container's payload in an arena with headers.
    static func payloadBytes(_ c: ContainerSlot, _ view: ArenaView) -> Int {
        switch c.kind {
        case .array: 2 * c.cardinality
        case .bitset: view.chunkWords(c.key) * 8
        case .run: (1 + 2 * Int(c.values[0])) * 2
        case .packed: 0  // headerless arenas only, whose payload is the range
        }
    }

    public var lines: [String] {
        var out: [String] = []
        for k in levels.indices where rows[k] > 0 {
            out.append("bitmaps  class \(MemoryBreakdown.classes[k].name), \(rows[k]) rows; bytes per usage row")
            for (l, s) in levels[k].enumerated() where s.bitmaps > 0 {
                func f(_ b: Int) -> String { String(format: "%.2f", Double(b) / Double(rows[k])) }
                out.append("bitmaps    level \(l): headers \(f(s.headers)) arrays \(f(s.arrays)) packed \(f(s.packed)) bitsets \(f(s.bitsets)) runs \(f(s.runs)) starts \(f(s.starts))"
                           + " | apps \(f(s.appBytes)) classes \(f(s.classBytes)) | bitmaps \(s.bitmaps) empty \(s.emptyBitmaps)"
                           + " | containers by values 1/2/3-4/5-16/>16: \(s.byCardinality.map(String.init).joined(separator: "/"))")
            }
        }
        return out
    }
}
