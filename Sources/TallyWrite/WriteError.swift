import TallyStorage

/// One refused row of an appended batch: its index in the batch, the field at fault (empty for
/// the row as a whole) and why.
public struct RefusedRow: Equatable, Sendable {
    /// The table the row is in: `events`, or a directory table (`users`, `apps`,
    /// `catalog_applications`, `departments`, `user_departments`).
    public var table: String
    public var index: Int
    public var field: String
    public var message: String
    public init(table: String = "events", index: Int, field: String, message: String) {
        self.table = table
        self.index = index
        self.field = field
        self.message = message
    }
}

/// Why the write path refused something. The API turns each kind into its answer (status, code)
/// — this module knows nothing of HTTP.
public struct WriteError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// No data is loaded yet.
        case notReady
        /// The batch names a client the served data does not hold.
        case clientNotFound
        /// The body is not a batch (`field` names the part at fault).
        case invalidBody
        /// Some rows of the batch are refused (`rows` lists them); nothing of it was applied.
        case invalidRows
        /// The log could not make the batch durable; the log takes nothing more until a restart.
        case notDurable
        /// The served data changed (a reload) between the batch's check and its commit, and no
        /// longer holds something the batch names.
        case conflict
        /// The writer has stopped (the server is shutting down).
        case shuttingDown
        /// The client's rows of its newest day outran its merge: the batch would take its tail
        /// past ``ClientStore/tailMaxRows(baseRows:)`` while the merge runs. Nothing of it was
        /// applied; send it again once the merge is in (seconds).
        case mergeBehind
        /// Another reload is running.
        case reloadInProgress
        /// A load failed; the data served before is still served.
        case loadFailed
        /// There is no source to reload from.
        case noSource
        /// Appends need a write-ahead log, and there is none.
        case noLog
        /// A snapshot could not be written.
        case snapshotFailed
    }

    public var kind: Kind
    public var field: String?
    public var message: String
    public var rows: [RefusedRow]?

    public init(_ kind: Kind, field: String? = nil, _ message: String, rows: [RefusedRow]? = nil) {
        self.kind = kind
        self.field = field
        self.message = message
        self.rows = rows
    }

    public var description: String { message }

    static let notReady = WriteError(.notReady, "no data is loaded yet")
    static let clientNotFound = WriteError(.clientNotFound, "no such client")
    static let shuttingDown = WriteError(.shuttingDown, "the server is shutting down")
    static func invalid(_ field: String, _ message: String) -> WriteError { WriteError(.invalidBody, field: field, message) }
}
