import Foundation
import NIOCore

/// The endpoints as the protocol numbers them (docs/PROTOCOL.md §3), with their HTTP paths.
/// The server's table is TallyAPI's `Registry`; a test checks that the two agree.
public enum WireEndpoint: UInt8, Sendable, CaseIterable {
    case utilization = 1, departments, categories, users, summary, aiUsers, aiSummary, aiDepartments, aiNew, trend
    case directoryUsers = 11, directoryUser, directoryDepartments, directoryDepartment, activeUsers, champions, churn,
         reengagement, license, licenseUtilization
    case clientChurn = 21, clientReengagement, clientGrowth, clientAttrition, chart

    /// The HTTP path, with `{client_id}` and the path parameter (`{user_id}`, `{department_id}`,
    /// `{chart_type}`) as placeholders. Over the binary protocol, a path parameter is sent as a
    /// query parameter of that name, and routes outside a client ignore the QUERY's client id.
    public var path: String {
        let apps = "/v2/clients/{client_id}/analytics/apps/", client = "/v2/clients/{client_id}/"
        switch self {
        case .utilization: return apps + "utilization"
        case .departments: return apps + "utilization/departments"
        case .categories: return apps + "utilization/categories"
        case .users: return apps + "utilization/users"
        case .summary: return apps + "utilization/summary"
        case .aiUsers: return apps + "ai/users"
        case .aiSummary: return apps + "ai/users/summary"
        case .aiDepartments: return apps + "ai/departments"
        case .aiNew: return apps + "ai/new"
        case .trend: return apps + "utilization/trend"
        case .directoryUsers: return client + "users"
        case .directoryUser: return client + "users/{user_id}"
        case .directoryDepartments: return client + "departments"
        case .directoryDepartment: return client + "departments/{department_id}"
        case .activeUsers: return client + "usage-statistics/active-users"
        case .champions: return client + "analytics/users/champions"
        case .churn: return client + "analytics/users/churn"
        case .reengagement: return client + "analytics/users/reengagement"
        case .license: return client + "license"
        case .licenseUtilization: return client + "license/utilization"
        case .clientChurn: return "/v2/analytics/clients/churn"
        case .clientReengagement: return "/v2/analytics/clients/reengagement"
        case .clientGrowth: return "/v2/analytics/clients/growth"
        case .clientAttrition: return "/v2/analytics/clients/attrition"
        case .chart: return "/v2/analytics/charts/{chart_type}"
        }
    }

    public init?(path: String) {
        guard let e = Self.allCases.first(where: { $0.path == path }) else { return nil }
        self = e
    }
}

/// Body formats of RESULT.
public enum WireFormat: UInt8, Sendable, CaseIterable {
    case json = 0
    case compact = 1
}

public struct HelloMessage: Sendable, Equatable {
    public var token: String
    public var clientName: String

    public init(token: String, clientName: String = "") {
        self.token = token
        self.clientName = clientName
    }

    public func write(to b: inout ByteBuffer) {
        b.writeStr16(token)
        b.writeStr16(clientName)
    }

    public init(reading payload: ByteBuffer) throws(MalformedPayload) {
        var r = PayloadReader(payload)
        token = try r.str16("HELLO token")
        clientName = try r.str16("HELLO client_name")
        try r.end("HELLO")
    }
}

public struct WelcomeMessage: Sendable, Equatable {
    public var maxFrame: UInt32
    public var maxInFlight: UInt32
    public var server: String

    public init(maxFrame: UInt32, maxInFlight: UInt32, server: String) {
        self.maxFrame = maxFrame
        self.maxInFlight = maxInFlight
        self.server = server
    }

    public func write(to b: inout ByteBuffer) {
        b.writeInteger(maxFrame)
        b.writeInteger(maxInFlight)
        b.writeStr16(server)
    }

    public init(reading payload: ByteBuffer) throws(MalformedPayload) {
        var r = PayloadReader(payload)
        maxFrame = try r.u32("WELCOME max_frame")
        maxInFlight = try r.u32("WELCOME max_in_flight")
        server = try r.str16("WELCOME server")
        try r.end("WELCOME")
    }
}

/// QUERY: endpoint and format as sent (they may be unknown: the server answers with an error,
/// not a dropped connection), the client, and HTTP's query parameters in plain text.
public struct QueryMessage: Sendable {
    public var endpoint: UInt8
    public var format: UInt8
    public var client: UUID
    public var parameters: [(String, String)]

    public init(endpoint: UInt8, format: UInt8, client: UUID, parameters: [(String, String)]) {
        self.endpoint = endpoint
        self.format = format
        self.client = client
        self.parameters = parameters
    }

    public func write(to b: inout ByteBuffer) {
        b.writeInteger(endpoint)
        b.writeInteger(format)
        b.writeUUID(client)
        b.writeInteger(UInt16(parameters.count))
        for (k, v) in parameters {
            b.writeStr16(k)
            b.writeStr16(v)
        }
    }

    public init(reading payload: ByteBuffer) throws(MalformedPayload) {
        var r = PayloadReader(payload)
        endpoint = try r.u8("QUERY endpoint")
        format = try r.u8("QUERY format")
        client = try r.uuid("QUERY client_id")
        let n = try r.u16("QUERY count")
        parameters = []
        parameters.reserveCapacity(Int(n))
        for i in 0..<Int(n) {
            let k = try r.str16("QUERY parameter \(i + 1) name")
            let v = try r.str16("QUERY parameter \(i + 1) value")
            parameters.append((k, v))
        }
        try r.end("QUERY")
    }
}

/// ERROR: the fields of HTTP's error body.
public struct ErrorMessage: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: UInt16
    public var code: String
    public var parameter: String?
    public var message: String

    public init(status: UInt16, code: String, parameter: String? = nil, message: String) {
        self.status = status
        self.code = code
        self.parameter = parameter
        self.message = message
    }

    public func write(to b: inout ByteBuffer) {
        b.writeInteger(status)
        b.writeStr16(code)
        b.writeOptStr16(parameter)
        b.writeStr16(message)
    }

    public init(reading payload: ByteBuffer) throws(MalformedPayload) {
        var r = PayloadReader(payload)
        status = try r.u16("ERROR status")
        code = try r.str16("ERROR code")
        parameter = try r.optStr16("ERROR parameter")
        message = try r.str16("ERROR message")
        try r.end("ERROR")
    }

    public var description: String {
        "\(status) \(code)" + (parameter.map { " (\($0))" } ?? "") + ": \(message)"
    }

    // The framing and connection errors of docs/PROTOCOL.md §5.
    public static func malformedFrame(_ m: String) -> Self { .init(status: 400, code: "malformed_frame", message: m) }
    public static func frameTooLarge(_ max: Int) -> Self {
        .init(status: 413, code: "frame_too_large", message: "frames are limited to a length of \(max) bytes")
    }
    public static func unsupportedVersion(_ v: UInt8) -> Self {
        .init(status: 400, code: "unsupported_version", message: "protocol version \(v) is not supported; this server speaks version \(Wire.version)")
    }
    public static let helloFirst = Self(status: 401, code: "unauthorized", message: "send HELLO with a token first")
    public static let badToken = Self(status: 401, code: "unauthorized", message: "the token in HELLO is not a valid token")
    public static let alreadyAuthenticated = Self(status: 400, code: "already_authenticated",
                                                  message: "this connection has already said HELLO")
    public static func unknownType(_ t: UInt8) -> Self {
        .init(status: 400, code: "unknown_message_type", message: "message type \(t) is not one the server takes")
    }
    public static func malformedRequest(_ m: String) -> Self { .init(status: 400, code: "malformed_request", message: m) }
    public static func unknownEndpoint(_ e: UInt8) -> Self {
        .init(status: 404, code: "not_found", message: "no endpoint has the number \(e)")
    }
    public static func unsupportedFormat(_ f: UInt8) -> Self {
        .init(status: 400, code: "unsupported_format", message: "result format \(f) is not supported (0: JSON, 1: compact)")
    }
    public static func tooManyInFlight(_ n: Int) -> Self {
        .init(status: 429, code: "too_many_in_flight", message: "at most \(n) queries may be unanswered on one connection")
    }
    public static let shuttingDown = Self(status: 503, code: "shutting_down", message: "the server is shutting down")
}
