/// A dump that breaks SPEC §1, with where and what: file, line, column and what was expected.
///
/// `line` is the 1-based physical line where the offending record starts (the header is line 1);
/// `column` the 1-based field position, with `columnName` its header name when known. Errors that
/// concern a whole file (checksum, row count, truncated stream) name the line reached when the
/// problem was detected and column 1.
public struct LoadError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case missingTable = "missing_table"
        case missingFile = "missing_file"
        case io
        case badManifest = "bad_manifest"
        case checksumMismatch = "checksum_mismatch"
        case rowCountMismatch = "row_count_mismatch"
        case truncated
        case badCompression = "bad_compression"
        case badCSV = "bad_csv"
        case missingColumn = "missing_column"
        case nullValue = "null_value"
        case badUUID = "bad_uuid"
        case badDate = "bad_date"
        case dateOutOfRange = "date_out_of_range"
        case badBoolean = "bad_boolean"
        case badInteger = "bad_integer"
        case badTimestamp = "bad_timestamp"
        case badText = "bad_text"
        case duplicateId = "duplicate_id"
        case unknownClient = "unknown_client"
        case unknownUser = "unknown_user"
        case unknownApp = "unknown_app"
        case unknownDepartment = "unknown_department"
        case unknownReference = "unknown_reference"
        case wrongClient = "wrong_client"
    }

    public var kind: Kind
    public var file: String
    public var line: Int
    public var column: Int
    public var columnName: String?
    public var expected: String
    public var found: String?

    public init(_ kind: Kind, file: String, line: Int, column: Int, columnName: String? = nil,
                expected: String, found: String? = nil) {
        self.kind = kind
        self.file = file
        self.line = line
        self.column = column
        self.columnName = columnName
        self.expected = expected
        self.found = found
    }

    public var description: String {
        var s = "\(file):\(line):\(column)"
        if let c = columnName { s += " (\(c))" }
        s += ": expected \(expected)"
        if let f = found {
            let shown = f.count > 60 ? String(f.prefix(60)) + "…" : f
            s += ", found \"\(shown)\""
        }
        return s + " [\(kind.rawValue)]"
    }
}

/// How strict a load is.
public enum LoadMode: Sendable {
    /// The first bad input stops the load; nothing is built.
    case strict
    /// Bad rows are skipped and counted by reason; bad files and missing columns still stop it.
    case lenient
}
