import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import TallyAPI
import TallyQuery
import TallyStorage
import TallyWire

/// Limits of the binary listener (docs/PROTOCOL.md §2, §6).
public struct BinaryLimits: Sendable {
    public var maxFrame = Wire.defaultMaxFrame
    public var maxInFlight = Wire.defaultMaxInFlight
    /// A connection with nothing in flight and no frame either way this long is closed.
    public var idleTimeout: TimeAmount = .seconds(300)
    public init() {}
}

/// One binary-protocol connection (docs/PROTOCOL.md): HELLO once, then QUERY and PING in any
/// number, answered as they finish — quick ones on the event loop, heavy ones on the query
/// threads, exactly as the HTTP listener splits them — each answer carrying its request id.
final class BinaryHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = ByteBuffer

    enum State { case awaitingHello, open, draining, closed }

    let api: API
    let pool: NIOThreadPool
    let limits: BinaryLimits
    var state = State.awaitingHello
    var token: TokenEntry?
    var inFlight = 0
    /// Answers written on the event loop since the last flush (flushed when the read burst ends).
    var unflushed = false

    init(api: API, pool: NIOThreadPool, limits: BinaryLimits) {
        self.api = api
        self.pool = pool
        self.limits = limits
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .framingError(let e):
            fatal(context, e, requestID: 0)
        case .frame(let f):
            guard state != .closed else { return }
            handle(context, f)
        }
    }

    func handle(_ context: ChannelHandlerContext, _ f: Frame) {
        if state == .awaitingHello {
            guard f.messageType == .hello else { return fatal(context, .helloFirst, requestID: f.requestID) }
            let hello: HelloMessage
            do { hello = try HelloMessage(reading: f.payload) } catch {
                return fatal(context, .malformedRequest(error.description), requestID: f.requestID)
            }
            guard let entry = api.tokens.authenticate("Bearer " + hello.token) else {
                return fatal(context, .badToken, requestID: f.requestID)
            }
            token = entry
            state = .open
            let welcome = WelcomeMessage(maxFrame: UInt32(limits.maxFrame), maxInFlight: UInt32(limits.maxInFlight),
                                         server: "tally/\(Wire.version)")
            send(context, .welcome, requestID: f.requestID) { welcome.write(to: &$0) }
            return
        }
        switch f.messageType {
        case .query?:
            query(context, f)
        case .append?:
            append(context, f)
        case .ping?:
            guard f.payload.readableBytes <= Wire.maxPingPayload else {
                return error(context, .malformedRequest("a PING payload is at most \(Wire.maxPingPayload) bytes"), f.requestID)
            }
            var payload = f.payload
            send(context, .pong, requestID: f.requestID) { $0.writeBuffer(&payload) }
        case .hello?:
            error(context, .alreadyAuthenticated, f.requestID)
        default:
            error(context, .unknownType(f.type), f.requestID)
        }
    }

    func query(_ context: ChannelHandlerContext, _ f: Frame) {
        let id = f.requestID
        guard state == .open else { return error(context, .shuttingDown, id) }
        let q: QueryMessage
        do { q = try QueryMessage(reading: f.payload) } catch { return self.error(context, .malformedRequest(error.description), id) }
        guard let route = Registry.route(wire: q.endpoint) else { return error(context, .unknownEndpoint(q.endpoint), id) }
        guard let format = ResultFormat(rawValue: q.format) else { return error(context, .unsupportedFormat(q.format), id) }
        guard inFlight < limits.maxInFlight else { return error(context, .tooManyInFlight(limits.maxInFlight), id) }
        let client = UUID128(q.client)
        let api = self.api, token = self.token!
        let pathValue = route.pathParameter.flatMap { name in q.parameters.first { $0.0 == name }?.1 }
        let run: @Sendable () -> Result<[UInt8], APIError> = {
            do throws(APIError) {
                return .success(try api.answer(route, client: client, pathValue: pathValue,
                                               token: token, query: q.parameters, format: format))
            } catch { return .failure(error) }
        }
        let heavy = api.isHeavy(route, client: client, parameters: q.parameters)
        let deprecated = route.deprecated
        inFlight += 1
        if !heavy {
            answer(context, id, deprecated: deprecated, format, run(), flush: false)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        QueryThread.run(on: pool, eventLoop: context.eventLoop, run).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let r): handler.answer(context, id, deprecated: deprecated, format, r, flush: true)
            case .failure:
                handler.answer(context, id, deprecated: false, format,
                               .failure(APIError(status: 503, code: "shutting_down", message: "the server is shutting down")), flush: true)
            }
        }
    }

    /// APPEND: the client's id, then the JSON body of `POST /v2/clients/{id}/usage-events`;
    /// answered with RESULT (JSON) once durable and visible, or ERROR.
    func append(_ context: ChannelHandlerContext, _ f: Frame) {
        let id = f.requestID
        guard state == .open else { return error(context, .shuttingDown, id) }
        var r = PayloadReader(f.payload)
        let client: UUID
        do { client = try r.uuid("APPEND client_id") } catch { return self.error(context, .malformedRequest(error.description), id) }
        var rest = r.rest()
        let body = rest.readBytes(length: rest.readableBytes) ?? []
        guard inFlight < limits.maxInFlight else { return error(context, .tooManyInFlight(limits.maxInFlight), id) }
        inFlight += 1
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        do throws(APIError) {
            try api.append(token: token!, client: UUID128(client), body: body) { result in
                loop.execute {
                    let (handler, context) = bound.value
                    handler.answer(context, id, deprecated: false, .json, result, flush: true)
                }
            }
        } catch {
            answer(context, id, deprecated: false, .json, .failure(error), flush: false)
        }
    }

    /// RESULT (flagged when the endpoint is deprecated) or ERROR for request `id`.
    func answer(_ context: ChannelHandlerContext, _ id: UInt32, deprecated: Bool, _ format: ResultFormat,
                _ result: Result<[UInt8], APIError>, flush: Bool) {
        inFlight -= 1
        guard state != .closed else { return }
        switch result {
        case .success(let body):
            send(context, .result, flags: deprecated ? Wire.flagDeprecated : 0, requestID: id, flush: flush) {
                $0.writeInteger(format.rawValue)
                $0.writeBytes(body)
            }
        case .failure(let e):
            error(context, ErrorMessage(e), id, flush: flush)
        }
        if state == .draining && inFlight == 0 { closeAfterFlush(context) }
    }

    func error(_ context: ChannelHandlerContext, _ e: ErrorMessage, _ id: UInt32, flush: Bool = false) {
        send(context, .error, requestID: id, flush: flush) { e.write(to: &$0) }
    }

    /// An error after which the stream cannot be trusted: say why, then close.
    func fatal(_ context: ChannelHandlerContext, _ e: ErrorMessage, requestID: UInt32) {
        guard state != .closed else { return }
        send(context, .error, flags: Wire.flagFatal, requestID: requestID, flush: true) { e.write(to: &$0) }
        closeAfterFlush(context)
    }

    func closeAfterFlush(_ context: ChannelHandlerContext) {
        state = .closed
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
    }

    func send(_ context: ChannelHandlerContext, _ type: MessageType, flags: UInt16 = 0, requestID: UInt32,
              flush: Bool = false, payload: (inout ByteBuffer) -> Void) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeFrame(type: type, flags: flags, requestID: requestID, payload: payload)
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            unflushed = false
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            unflushed = true
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: no more queries; finish what is in flight, then close.
            guard state == .open || state == .awaitingHello else { return }
            if state == .open {
                send(context, .goaway, requestID: 0, flush: true) { $0.writeStr16("the server is shutting down") }
            }
            state = .draining
            if inFlight == 0 { closeAfterFlush(context) }
            return
        }
        if event is IdleStateHandler.IdleStateEvent {
            if inFlight == 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        state = .closed
        context.close(promise: nil)
    }
}

extension ErrorMessage {
    /// HTTP's error; refused events (which HTTP lists in `rows`) are listed in the message.
    init(_ e: APIError) {
        var message = e.message
        if let rows = e.rows, !rows.isEmpty {
            message += " — " + rows.prefix(50).map { "event \($0.index)\($0.field.isEmpty ? "" : " (\($0.field))"): \($0.message)" }
                .joined(separator: "; ") + (rows.count > 50 ? "; …" : "")
        }
        self.init(status: UInt16(e.status), code: e.code, parameter: e.parameter, message: message)
    }
}

extension UUID128 {
    init(_ u: UUID) {
        let b = u.uuid
        let bytes = [b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7, b.8, b.9, b.10, b.11, b.12, b.13, b.14, b.15]
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
        self.init(high: high, low: low)
    }
}
