import CLZ4
import Crypto
import CZlib
import Foundation

/// One table to write as CSV: header names and rows of fields (`nil` writes NULL).
public struct CSVTable {
    public var name: String
    public var header: [String]
    public var rows: [[String?]]
    public init(name: String, header: [String], rows: [[String?]]) {
        self.name = name
        self.header = header
        self.rows = rows
    }
}

public enum FileCompression: String, CaseIterable { case none, gzip, lz4 }

/// Writes dumps for tests in the SPEC §1 format.
public enum DumpWriter {
    /// RFC 4180 text of a table: quotes only where needed, empty strings as `""`.
    public static func csv(_ t: CSVTable, lineEnd: String = "\n") -> String {
        func field(_ s: String?) -> String {
            guard let s else { return "" }
            if s.isEmpty { return "\"\"" }
            // Bytes, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
            if s.utf8.contains(where: { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }) {
                return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return s
        }
        var out = t.header.joined(separator: ",") + lineEnd
        for r in t.rows { out += r.map(field).joined(separator: ",") + lineEnd }
        return out
    }

    /// Writes every table into `folder` (created), usage split into `parts` part files with the
    /// given compressions in turn. Returns the relative paths written per table.
    @discardableResult
    public static func write(_ tables: [CSVTable], to folder: String, usageParts: Int = 1,
                             compressions: [FileCompression] = [.none], manifest: Bool = false) throws -> [String: [String]] {
        let fm = FileManager.default
        try? fm.removeItem(atPath: folder)
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var paths: [String: [String]] = [:]
        var meta: [String: [String: Any]] = [:]
        for t in tables {
            let parts = t.name == "app_usage_reports" ? max(1, usageParts) : 1
            if parts > 1 { try fm.createDirectory(atPath: "\(folder)/\(t.name)", withIntermediateDirectories: true) }
            let per = (t.rows.count + parts - 1) / max(parts, 1)
            for p in 0..<parts {
                let slice = Array(t.rows[min(p * per, t.rows.count)..<min((p + 1) * per, t.rows.count)])
                let comp = compressions[(p + (parts == 1 ? tables.firstIndex { $0.name == t.name }! : 0)) % compressions.count]
                let text = Array(csv(CSVTable(name: t.name, header: t.header, rows: slice)).utf8)
                let bytes = try compress(text, comp)
                let suffix = comp == .none ? ".csv" : comp == .gzip ? ".csv.gz" : ".csv.lz4"
                let rel = parts > 1 ? "\(t.name)/part-\(String(format: "%04d", p))\(suffix)" : "\(t.name)\(suffix)"
                try Data(bytes).write(to: URL(fileURLWithPath: "\(folder)/\(rel)"))
                paths[t.name, default: []].append(rel)
                meta[rel] = ["rows": slice.count, "sha256": sha256Hex(bytes)]
            }
        }
        if manifest {
            let m: [String: Any] = ["version": 1, "tables": paths, "files": meta]
            try JSONSerialization.data(withJSONObject: m, options: [.sortedKeys])
                .write(to: URL(fileURLWithPath: "\(folder)/manifest.json"))
        }
        return paths
    }

    public static func compress(_ b: [UInt8], _ c: FileCompression) throws -> [UInt8] {
        switch c {
        case .none: return b
        case .lz4:
            let bound = LZ4F_compressFrameBound(b.count, nil)
            var out = [UInt8](repeating: 0, count: bound)
            let n = LZ4F_compressFrame(&out, bound, b, b.count, nil)
            precondition(LZ4F_isError(n) == 0)
            return Array(out[0..<n])
        case .gzip:
            var s = z_stream()
            deflateInit2_(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, UInt(b.count))) + 64)
            var input = b
            let produced: Int = input.withUnsafeMutableBufferPointer { ip in
                out.withUnsafeMutableBufferPointer { op in
                    s.next_in = ip.baseAddress
                    s.avail_in = UInt32(ip.count)
                    s.next_out = op.baseAddress
                    s.avail_out = UInt32(op.count)
                    let rc = deflate(&s, Z_FINISH)
                    precondition(rc == Z_STREAM_END)
                    return op.count - Int(s.avail_out)
                }
            }
            deflateEnd(&s)
            return Array(out[0..<produced])
        }
    }

    /// Lower-case hex SHA-256.
    public static func sha256Hex(_ b: [UInt8]) -> String {
        SHA256.hash(data: b).map { String(format: "%02x", $0) }.joined()
    }
}
