import Foundation
import TallyQuery
import TallyWrite

/// An error answered to a caller, shaped as SPEC §3 says:
/// `{"error": {"status": 400, "code": "invalid_parameter", "parameter": "start_date", "message": "…"}}`.
public struct APIError: Error, Equatable, Sendable {
    public var status: Int
    public var code: String
    public var parameter: String?
    public var message: String
    /// For a refused batch of appended events: each refused event's index, field and reason.
    public var rows: [RefusedRow]?
    /// For 429 and 503: seconds after which to try again (the `Retry-After` header).
    public var retryAfter: Int?

    public typealias RefusedRow = TallyWrite.RefusedRow

    public init(status: Int, code: String, parameter: String? = nil, message: String, rows: [RefusedRow]? = nil) {
        self.status = status
        self.code = code
        self.parameter = parameter
        self.message = message
        self.rows = rows
    }

    /// The answer to what the write path refused.
    public init(_ e: WriteError) {
        switch e.kind {
        case .notReady: self = .notReady
        case .clientNotFound: self = .clientNotFound
        case .invalidBody: self = .invalid(e.field ?? "body", e.message)
        case .invalidRows: self.init(status: 400, code: "invalid_events", parameter: e.field ?? "events", message: e.message, rows: e.rows)
        case .notDurable: self.init(status: 503, code: "not_durable", message: e.message)
        case .shuttingDown: self.init(status: 503, code: "shutting_down", message: e.message)
        case .mergeBehind:
            self.init(status: 503, code: "merge_behind", message: e.message)
            retryAfter = 1
        case .conflict: self.init(status: 409, code: "data_changed", message: e.message)
        case .reloadInProgress: self.init(status: 409, code: "reload_in_progress", message: e.message)
        case .loadFailed: self.init(status: 422, code: "load_failed", message: e.message)
        case .snapshotFailed: self.init(status: 422, code: "snapshot_failed", message: e.message)
        case .noSource, .noLog: self.init(status: 404, code: "not_found", message: e.message)
        }
    }

    public static func invalid(_ parameter: String, _ message: String) -> APIError {
        APIError(status: 400, code: "invalid_parameter", parameter: parameter, message: message)
    }

    public static let unauthorized = APIError(
        status: 401, code: "unauthorized", message: "a valid bearer token is required (Authorization: Bearer <token>)")
    public static let forbidden = APIError(
        status: 403, code: "forbidden", message: "this token may not read this client")
    public static let clientNotFound = APIError(status: 404, code: "not_found", message: "no such client")
    public static let pathNotFound = APIError(status: 404, code: "not_found", message: "no such path")
    public static let methodNotAllowed = APIError(status: 405, code: "method_not_allowed", message: "only GET is allowed here")
    public static let notReady = APIError(status: 503, code: "not_ready", message: "no data is loaded yet")

    /// Over the token's quota (429, `Retry-After`).
    public static func rateLimited(_ token: TokenEntry, retryAfter: Int) -> APIError {
        var e = APIError(status: 429, code: "rate_limited",
                         message: "token \(token.name) is over its quota of \(token.quota.map { String(format: "%g", $0.perSecond) } ?? "?") requests per second; retry after \(retryAfter) s")
        e.retryAfter = retryAfter
        return e
    }

    /// The JSON body.
    public var body: [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key("error")
        w.beginObject()
        w.key("status"); w.int(status)
        w.key("code"); w.string(code)
        w.key("parameter"); w.string(parameter)
        w.key("message"); w.string(message)
        if let rows {
            w.key("rows")
            w.beginArray()
            for r in rows {
                w.beginObject()
                w.key("table"); w.string(r.table)
                w.key("index"); w.int(r.index)
                w.key("field"); w.string(r.field)
                w.key("message"); w.string(r.message)
                w.endObject()
            }
            w.endArray()
        }
        w.endObject()
        w.endObject()
        return w.bytes
    }
}
