import Foundation
import NIOCore
import TallyAPI
import TallyQuery
import TallyStorage
import TallyWire

/// The binary protocol's connection logic (docs/PROTOCOL.md §5, §6) as a value: frames and
/// events in, actions out. It owns the connection's state (awaiting HELLO, open, draining,
/// closed), its token and its count of unanswered requests; it decides every answer the protocol
/// itself gives (WELCOME, PONG, the errors of §5, GOAWAY) and which requests to run. It touches
/// no socket and no event loop, so every path through it is tested without one
/// (`BinaryConnectionTests`); ``BinaryHandler`` only moves bytes and runs what it is asked to.
///
/// The checks on a frame run in a fixed order, and the first that applies is the answer
/// (PROTOCOL.md §5 "Precedence"): framing (in the decoder) → HELLO first → message type →
/// draining → payload → endpoint → format → in-flight limit → the HTTP checks of the route.
struct BinaryConnection {
    enum State: Equatable {
        case awaitingHello
        case open
        /// GOAWAY sent (or the server quiesced before HELLO): answers in flight are written, new
        /// requests get 503.
        case draining
        case closed
    }

    /// A frame to write: header fields and what the payload holds.
    struct Outbound {
        enum Payload {
            case welcome(WelcomeMessage)
            case pong(ByteBuffer)
            case error(ErrorMessage)
            case result(ResultFormat, [UInt8])
            case goaway(String)
        }
        var type: MessageType
        var flags: UInt16 = 0
        var requestID: UInt32
        var payload: Payload

        func write(to buffer: inout ByteBuffer) {
            buffer.writeFrame(type: type, flags: flags, requestID: requestID) { b in
                switch payload {
                case .welcome(let w): w.write(to: &b)
                case .pong(var p): b.writeBuffer(&p)
                case .error(let e): e.write(to: &b)
                case .result(let format, let body):
                    b.writeInteger(format.rawValue)
                    b.writeBytes(body)
                case .goaway(let reason): b.writeStr16(reason)
                }
            }
        }
    }

    /// A QUERY that passed the protocol's checks: the route's own (HTTP) checks run with it.
    struct QueryJob: @unchecked Sendable {  // Route holds @Sendable closures; parameters are values
        var requestID: UInt32
        var route: Route
        var client: UUID128
        var pathValue: String?
        var token: TokenEntry
        var parameters: [(String, String)]
        var format: ResultFormat
    }

    /// An APPEND that passed the protocol's checks.
    struct AppendJob: Sendable {
        var requestID: UInt32
        var token: TokenEntry
        var client: UUID128
        var body: [UInt8]
    }

    enum Action {
        case none
        /// Write this frame; the connection stays as it is.
        case send(Outbound)
        /// Write this frame, flush, then close (a fatal error, the last answer while draining,
        /// GOAWAY with nothing in flight).
        case sendAndClose(Outbound)
        /// Flush what is written, then close.
        case close
        /// Run the query; report its answer with ``answered(_:deprecated:format:result:)``.
        case query(QueryJob)
        /// Run the append; report its answer the same way.
        case append(AppendJob)
    }

    let tokens: TokenStore
    let limits: BinaryLimits
    private(set) var state = State.awaitingHello
    private(set) var token: TokenEntry?
    /// QUERY and APPEND frames read and not yet answered.
    private(set) var inFlight = 0

    init(tokens: TokenStore, limits: BinaryLimits) {
        self.tokens = tokens
        self.limits = limits
    }

    /// What the frame decoder passed on.
    mutating func received(_ input: InboundFrame) -> Action {
        switch input {
        case .framingError(let e): return fatal(e, requestID: 0)
        case .frame(let f): return received(f)
        }
    }

    mutating func received(_ f: Frame) -> Action {
        let id = f.requestID
        switch state {
        case .closed:
            return .none
        case .awaitingHello:
            guard f.messageType == .hello else { return fatal(.helloFirst, requestID: id) }
            let hello: HelloMessage
            do { hello = try HelloMessage(reading: f.payload) } catch { return fatal(.malformedRequest(error.description), requestID: id) }
            guard let entry = tokens.authenticate("Bearer " + hello.token) else { return fatal(.badToken, requestID: id) }
            token = entry
            state = .open
            let welcome = WelcomeMessage(maxFrame: UInt32(limits.maxFrame), maxInFlight: UInt32(limits.maxInFlight),
                                         server: "tally/\(Wire.version)")
            return .send(Outbound(type: .welcome, requestID: id, payload: .welcome(welcome)))
        case .open, .draining:
            break
        }
        switch f.messageType {
        case .query?: return query(f)
        case .append?: return append(f)
        case .ping?:
            guard f.payload.readableBytes <= Wire.maxPingPayload else {
                return error(.malformedRequest("a PING payload is at most \(Wire.maxPingPayload) bytes"), id)
            }
            return .send(Outbound(type: .pong, requestID: id, payload: .pong(f.payload)))
        case .hello?:
            return error(.alreadyAuthenticated, id)
        default:
            return error(.unknownType(f.type), id)
        }
    }

    private mutating func query(_ f: Frame) -> Action {
        let id = f.requestID
        guard state == .open, let token else { return error(.shuttingDown, id) }
        let q: QueryMessage
        do { q = try QueryMessage(reading: f.payload) } catch { return self.error(.malformedRequest(error.description), id) }
        guard let route = Registry.route(wire: q.endpoint) else { return error(.unknownEndpoint(q.endpoint), id) }
        guard let format = ResultFormat(rawValue: q.format) else { return error(.unsupportedFormat(q.format), id) }
        guard inFlight < limits.maxInFlight else { return error(.tooManyInFlight(limits.maxInFlight), id) }
        inFlight += 1
        let pathValue = route.pathParameter.flatMap { name in q.parameters.first { $0.0 == name }?.1 }
        return .query(QueryJob(requestID: id, route: route, client: UUID128(q.client), pathValue: pathValue,
                               token: token, parameters: q.parameters, format: format))
    }

    /// APPEND: the client's id, then the JSON body of `POST /v2/clients/{id}/usage-events`.
    private mutating func append(_ f: Frame) -> Action {
        let id = f.requestID
        guard state == .open, let token else { return error(.shuttingDown, id) }
        var r = PayloadReader(f.payload)
        let client: UUID
        do { client = try r.uuid("APPEND client_id") } catch { return self.error(.malformedRequest(error.description), id) }
        var rest = r.rest()
        guard inFlight < limits.maxInFlight else { return error(.tooManyInFlight(limits.maxInFlight), id) }
        inFlight += 1
        return .append(AppendJob(requestID: id, token: token, client: UUID128(client),
                                 body: rest.readBytes(length: rest.readableBytes) ?? []))
    }

    /// The answer of a request that ``received(_:)`` asked to run: RESULT (flagged when the
    /// endpoint is deprecated) or ERROR. Dropped when the connection is already closed.
    mutating func answered(_ requestID: UInt32, deprecated: Bool, format: ResultFormat,
                           result: Result<[UInt8], APIError>) -> Action {
        precondition(inFlight > 0, "an answer for a request that was not asked to run")
        inFlight -= 1
        guard state != .closed else { return .none }
        let frame: Outbound
        switch result {
        case .success(let body):
            frame = Outbound(type: .result, flags: deprecated ? Wire.flagDeprecated : 0, requestID: requestID,
                             payload: .result(format, body))
        case .failure(let e):
            frame = Outbound(type: .error, requestID: requestID, payload: .error(ErrorMessage(e)))
        }
        if state == .draining && inFlight == 0 {
            state = .closed
            return .sendAndClose(frame)
        }
        return .send(frame)
    }

    /// The server is shutting down: no new requests; what is in flight is answered, then the
    /// connection closes. An open connection is told so with GOAWAY.
    mutating func quiesce() -> Action {
        switch state {
        case .open:
            state = .draining
            let goaway = Outbound(type: .goaway, requestID: 0, payload: .goaway("the server is shutting down"))
            if inFlight == 0 {
                state = .closed
                return .sendAndClose(goaway)
            }
            return .send(goaway)
        case .awaitingHello:
            state = .closed
            return .close
        case .draining, .closed:
            return .none
        }
    }

    /// No frame either way for the idle timeout. With nothing in flight the connection is closed,
    /// after a GOAWAY that says why (a pooled client then knows not to reuse it); with requests
    /// in flight it stays open (their answers are the traffic still to come).
    mutating func idle() -> Action {
        guard inFlight == 0 else { return .none }
        switch state {
        case .open, .awaitingHello, .draining:
            state = .closed
            let seconds = limits.idleTimeout.nanoseconds / 1_000_000_000
            return .sendAndClose(Outbound(type: .goaway, requestID: 0,
                                          payload: .goaway("closing a connection idle for \(seconds) s")))
        case .closed:
            return .none
        }
    }

    /// A frame began and was not received whole within the receive timeout: the stream stops
    /// there, with a fatal ERROR 408 (id 0, like the framing errors) that says why.
    mutating func receiveTimedOut() -> Action {
        guard state != .closed else { return .none }
        let seconds = limits.receiveTimeout.nanoseconds / 1_000_000_000
        return fatal(ErrorMessage(status: 408, code: "request_timeout",
                                  message: "a frame was not received whole within \(seconds) s"), requestID: 0)
    }

    /// The channel failed (reset, write error): nothing more is sent.
    mutating func failed() -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .close
    }

    private func error(_ e: ErrorMessage, _ id: UInt32) -> Action {
        .send(Outbound(type: .error, requestID: id, payload: .error(e)))
    }

    /// An error after which the stream cannot be trusted: say why, then close.
    private mutating func fatal(_ e: ErrorMessage, requestID: UInt32) -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .sendAndClose(Outbound(type: .error, flags: Wire.flagFatal, requestID: requestID, payload: .error(e)))
    }
}

extension ErrorMessage {
    /// HTTP's error; refused events (which HTTP lists in `rows`) are listed in the message.
    init(_ e: APIError) {
        var message = e.message
        if let rows = e.rows, !rows.isEmpty {
            message += " — " + rows.prefix(50).map { r in
                "\(r.table == "events" ? "event" : r.table) \(r.index)\(r.field.isEmpty ? "" : " (\(r.field))"): \(r.message)"
            }
                .joined(separator: "; ") + (rows.count > 50 ? "; …" : "")
        }
        self.init(status: UInt16(e.status), code: e.code, parameter: e.parameter, message: message)
    }
}
