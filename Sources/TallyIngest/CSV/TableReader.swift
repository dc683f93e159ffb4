import TallyStorage

/// A column of a table, found by header name.
public struct Column: Sendable {
    public let index: Int
    public let name: String
}

/// Reads one table file: checks the header, then decodes typed fields, throwing a
/// ``LoadError`` that names file, line, column and what was expected.
public final class TableReader {
    public let csv: CSVReader
    let header: [String: Int]
    let width: Int
    public private(set) var records = 0

    /// Reads the header row; every name in `required` must be present.
    public init(csv: CSVReader, required: [String]) throws {
        self.csv = csv
        guard try csv.next() else {
            throw LoadError(.missingColumn, file: csv.file, line: 1, column: 1,
                            expected: "a header row naming the columns \(required.joined(separator: ", "))",
                            found: "an empty file")
        }
        var h: [String: Int] = [:]
        for i in 0..<csv.fieldCount {
            let name = String(decoding: csv.bytes(i), as: UTF8.self).lowercased()
            if h[name] == nil { h[name] = i }
        }
        header = h
        width = csv.fieldCount
        for r in required where h[r] == nil {
            throw LoadError(.missingColumn, file: csv.file, line: 1, column: csv.fieldCount + 1, columnName: r,
                            expected: "a column named \(r) in the header",
                            found: (0..<csv.fieldCount).map { csv.display($0) }.joined(separator: ","))
        }
    }

    public func column(_ name: String) -> Column? { header[name].map { Column(index: $0, name: name) } }

    /// A required column (the initializer checked it exists).
    public func required(_ name: String) -> Column { column(name)! }

    /// Advances to the next record. Errors thrown here concern the stream itself (it cannot be
    /// read on); a record with the wrong number of fields is a row error, reported by
    /// ``checkWidth()`` so that a lenient load can skip it.
    public func next() throws -> Bool {
        guard try csv.next() else { return false }
        records += 1
        return true
    }

    /// Throws when the current record's field count differs from the header's.
    public func checkWidth() throws {
        if csv.fieldCount != width {
            throw LoadError(.badCSV, file: csv.file, line: csv.line, column: min(csv.fieldCount, width) + 1,
                            expected: "\(width) fields as in the header", found: "\(csv.fieldCount) fields")
        }
    }

    public var line: Int { csv.line }

    func fail(_ kind: LoadError.Kind, _ c: Column, _ expected: String, showValue: Bool = true) -> LoadError {
        LoadError(kind, file: csv.file, line: csv.line, column: c.index + 1, columnName: c.name,
                  expected: expected, found: showValue ? (csv.isNull(c.index) ? "NULL" : csv.display(c.index)) : nil)
    }

    @inline(__always)
    public func uuid(_ c: Column) throws -> UUID128 {
        guard let u = UUID128(bytes: csv.bytes(c.index)) else { throw fail(.badUUID, c, "a UUID") }
        return u
    }

    public func optionalUUID(_ c: Column?) throws -> UUID128? {
        guard let c, !csv.isNull(c.index) else { return nil }
        return try uuid(c)
    }

    @inline(__always)
    public func day(_ c: Column) throws -> Day {
        guard let d = Day(iso: csv.bytes(c.index)) else { throw fail(.badDate, c, "a date in YYYY-MM-DD form") }
        return d
    }

    public func bool(_ c: Column) throws -> Bool {
        let b = csv.bytes(c.index)
        if b.count == 1 {
            switch b[0] {
            case UInt8(ascii: "1"), UInt8(ascii: "t"), UInt8(ascii: "T"): return true
            case UInt8(ascii: "0"), UInt8(ascii: "f"), UInt8(ascii: "F"): return false
            default: break
            }
        } else if b.count == 4 || b.count == 5 {
            let s = String(decoding: b, as: UTF8.self).lowercased()
            if s == "true" { return true }
            if s == "false" { return false }
        }
        throw fail(.badBoolean, c, "a boolean (true/false/t/f/1/0)")
    }

    public func text(_ c: Column) throws -> String {
        guard let s = try csv.string(c.index, name: c.name) else { throw fail(.nullValue, c, "a value (not NULL)") }
        return s
    }

    public func optionalText(_ c: Column?) throws -> String? {
        guard let c else { return nil }
        return try csv.string(c.index, name: c.name)
    }

    public func optionalInt(_ c: Column?) throws -> Int? {
        guard let c, !csv.isNull(c.index) else { return nil }
        guard let v = Int(String(decoding: csv.bytes(c.index), as: UTF8.self)) else {
            throw fail(.badInteger, c, "an integer")
        }
        return v
    }

    /// A timestamp, validated (ISO 8601 or PostgreSQL text form) and kept as loaded.
    public func optionalTimestamp(_ c: Column?) throws -> String? {
        guard let c, !csv.isNull(c.index) else { return nil }
        guard Timestamp.micros(csv.bytes(c.index)) != nil else {
            throw fail(.badTimestamp, c, "a timestamp (ISO 8601 or YYYY-MM-DD HH:MM:SS[.f][±HH[:MM]])")
        }
        return try csv.string(c.index, name: c.name)
    }
}

