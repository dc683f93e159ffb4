/// Where the level arenas' bytes go (issue 16): per level, container headers and payload by
/// container kind, apps against classes, and how many containers hold 1, 2, 3–4, 5–16 or more
/// values. Printed by `tally load --bitmaps`.
public struct BitmapBreakdown: Sendable {
    public struct Level: Sendable {
        public var headers = 0, arrays = 0, bitsets = 0, runs = 0, starts = 0
        public var appBytes = 0, classBytes = 0
        public var byCardinality = [Int](repeating: 0, count: 5)
        public var emptyBitmaps = 0, bitmaps = 0
    }
    public private(set) var levels: [[Level]] = []  // [size class][level]
    public private(set) var rows = [Int](repeating: 0, count: MemoryBreakdown.classes.count)

    public init(_ store: Store) {
        levels = [[Level]](repeating: [Level](repeating: Level(), count: 5), count: MemoryBreakdown.classes.count)
        for c in store.clients {
            guard let u = c.usage else { continue }
            let k = MemoryBreakdown.classes.lastIndex { u.rowCount >= $0.lower }!
            rows[k] += u.rowCount
            for l in 0..<min(5, u.levels.count) {
                let arena = u.levels[l], view = arena.view
                let (starts, blocks) = u.starts(level: l)
                var s = levels[k][l]
                s.starts += (u.entityCount * blocks + 1) * 4
                for e in 0..<u.entityCount {
                    for b in 0..<blocks {
                        let i = e * blocks + b
                        let lo = Int(starts[i]), hi = Int(starts[i + 1])
                        s.bitmaps += 1
                        if lo == hi { s.emptyBitmaps += 1 }
                        var bytes = 0
                        if arena.headerless {
                            guard hi > lo else { continue }
                            let c = view.slot(BitmapRef(start: UInt32(lo), end: UInt32(hi)), 0)
                            bytes = 2 * (hi - lo)
                            if c.kind == .bitset { s.bitsets += bytes } else { s.arrays += bytes }
                            let n = c.cardinality
                            s.byCardinality[n == 1 ? 0 : n == 2 ? 1 : n <= 4 ? 2 : n <= 16 ? 3 : 4] += 1
                            if e < u.appCount { s.appBytes += bytes } else { s.classBytes += bytes }
                            continue
                        }
                        for h in lo..<hi {
                            let hd = view.headers[h]
                            bytes += 12
                            s.headers += 12
                            switch hd.kind {
                            case .array: s.arrays += 2 * Int(hd.cardinality); bytes += 2 * Int(hd.cardinality)
                            case .bitset: let w = view.chunkWords(Int(hd.key)) * 8; s.bitsets += w; bytes += w
                            case .run: let r = (1 + 2 * Int(arena.pool16[Int(hd.offset)])) * 2; s.runs += r; bytes += r
                            }
                            let n = Int(hd.cardinality)
                            s.byCardinality[n == 1 ? 0 : n == 2 ? 1 : n <= 4 ? 2 : n <= 16 ? 3 : 4] += 1
                        }
                        if e < u.appCount { s.appBytes += bytes } else { s.classBytes += bytes }
                    }
                }
                levels[k][l] = s
            }
        }
    }

    public var lines: [String] {
        var out: [String] = []
        for k in levels.indices where rows[k] > 0 {
            out.append("bitmaps  class \(MemoryBreakdown.classes[k].name), \(rows[k]) rows; bytes per usage row")
            for (l, s) in levels[k].enumerated() where s.bitmaps > 0 {
                func f(_ b: Int) -> String { String(format: "%.2f", Double(b) / Double(rows[k])) }
                out.append("bitmaps    level \(l): headers \(f(s.headers)) arrays \(f(s.arrays)) bitsets \(f(s.bitsets)) runs \(f(s.runs)) starts \(f(s.starts))"
                           + " | apps \(f(s.appBytes)) classes \(f(s.classBytes)) | bitmaps \(s.bitmaps) empty \(s.emptyBitmaps)"
                           + " | containers by values 1/2/3-4/5-16/>16: \(s.byCardinality.map(String.init).joined(separator: "/"))")
            }
        }
        return out
    }
}
