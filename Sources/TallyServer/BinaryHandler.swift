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
    /// A frame begun must be received whole within this; past it the connection gets a fatal
    /// ERROR 408 `request_timeout` and is closed.
    public var receiveTimeout: TimeAmount = .seconds(30)
    public init() {}
}

/// One binary-protocol connection's bytes: frames from the decoder go to ``BinaryConnection``,
/// which decides every answer; this handler writes the frames it is given and runs the requests
/// it is asked to run — quick ones on the event loop, heavy ones on the query threads, exactly as
/// the HTTP listener splits them.
final class BinaryHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = ByteBuffer

    let api: API
    let pool: NIOThreadPool
    var connection: BinaryConnection
    /// Frames written on the event loop since the last flush (flushed when the read burst ends).
    var unflushed = false

    let gate: HeavyGate
    /// The clock on receiving a frame (first in this connection's pipeline).
    let deadline: ReceiveDeadline

    init(api: API, pool: NIOThreadPool, limits: BinaryLimits, gate: HeavyGate, deadline: ReceiveDeadline) {
        self.api = api
        self.pool = pool
        self.connection = BinaryConnection(tokens: api.tokens, limits: limits)
        self.gate = gate
        self.deadline = deadline
    }

    func channelActive(context: ChannelHandlerContext) {
        api.observability.metrics.connectionOpened(.binary)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        api.observability.metrics.connectionClosed(.binary)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.received()
        let action = connection.received(unwrapInboundIn(data))
        // The protocol's own refusals (PROTOCOL.md §5) count as answers of no endpoint.
        switch action {
        case .send(let f), .sendAndClose(let f):
            if case .error(let e) = f.payload {
                api.observability.metrics.record(.binary, route: ServiceMetrics.unmatched, status: Int(e.status), nanoseconds: 0)
                if f.flags & Wire.flagFatal != 0 {
                    api.observability.binary.info("closing a connection after a fatal error", metadata: [
                        "peer": "\(context.remoteAddress?.description ?? "?")", "code": "\(e.code)", "message": "\(e.message)"])
                }
            }
        default:
            break
        }
        perform(action, context, flush: false)
    }

    /// An answered QUERY or APPEND: counted, timed, maybe logged.
    func finished(_ route: Int, _ started: UInt64, _ result: Result<[UInt8], APIError>, path: String) {
        let o = api.observability
        let elapsed = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds &- started)
        let status: Int
        switch result {
        case .success: status = 200
        case .failure(let e): status = e.status
        }
        o.metrics.record(.binary, route: route, status: status, nanoseconds: elapsed)
        o.metrics.requestFinished(.binary)
        if o.accessLog != .off {
            let id = o.nextRequestID()
            if o.logsAccess(status: status, id: id) {
                let bytes = (try? result.get().count) ?? 0
                o.logAccess(.binary, id: id, method: "QUERY", path: path, route: route, status: status, nanoseconds: elapsed, bytes: bytes)
            }
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
            perform(connection.quiesce(), context, flush: true)
        } else if event is IdleStateHandler.IdleStateEvent {
            perform(connection.idle(), context, flush: true)
        } else if event is ReceiveTimeoutEvent {
            perform(connection.receiveTimedOut(), context, flush: true)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        api.observability.binary.debug("connection error", metadata: ["peer": "\(context.remoteAddress?.description ?? "?")",
                                                                      "error": "\(error)"])
        perform(connection.failed(), context, flush: true)
    }

    /// Carries out what the connection decided. `flush`: outside a read burst (an answer from
    /// the query threads, an event), so nothing else will flush what is written.
    func perform(_ action: BinaryConnection.Action, _ context: ChannelHandlerContext, flush: Bool) {
        switch action {
        case .none:
            return
        case .send(let frame):
            write(frame, context, flush: flush)
        case .sendAndClose(let frame):
            write(frame, context, flush: false)
            closeAfterFlush(context)
        case .close:
            closeAfterFlush(context)
        case .query(let job):
            run(job, context)
        case .append(let job):
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let started = NIODeadline.now().uptimeNanoseconds
            api.observability.metrics.requestStarted(.binary)
            let route = ServiceMetrics.index(of: Registry.appendRoute)
            do throws(APIError) {
                try api.append(token: job.token, client: job.client, body: job.body) { result in
                    loop.execute {
                        let (handler, context) = bound.value
                        handler.finished(route, started, result, path: "APPEND \(job.client)")
                        handler.perform(handler.connection.answered(job.requestID, deprecated: false, format: .json, result: result),
                                        context, flush: true)
                    }
                }
            } catch {
                finished(route, started, .failure(error), path: "APPEND \(job.client)")
                perform(connection.answered(job.requestID, deprecated: false, format: .json, result: .failure(error)),
                        context, flush: flush)
            }
        }
    }

    func run(_ job: BinaryConnection.QueryJob, _ context: ChannelHandlerContext) {
        let api = self.api
        let run: @Sendable () -> Result<[UInt8], APIError> = {
            do throws(APIError) {
                return .success(try api.answer(job.route, client: job.client, pathValue: job.pathValue,
                                               token: job.token, query: job.parameters, format: job.format))
            } catch { return .failure(error) }
        }
        let deprecated = job.route.deprecated
        let started = NIODeadline.now().uptimeNanoseconds
        let route = ServiceMetrics.index(of: job.route)
        api.observability.metrics.requestStarted(.binary)
        guard api.isHeavy(job.route, client: job.client, token: job.token, parameters: job.parameters) else {
            let result = run()
            finished(route, started, result, path: job.route.path)
            perform(connection.answered(job.requestID, deprecated: deprecated, format: job.format, result: result),
                    context, flush: false)
            return
        }
        guard gate.tryEnter() else {
            let refused: Result<[UInt8], APIError> = .failure(HeavyGate.overloaded)
            finished(route, started, refused, path: job.route.path)
            perform(connection.answered(job.requestID, deprecated: deprecated, format: job.format, result: refused),
                    context, flush: false)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let gate = self.gate
        QueryThread.run(on: pool, nice: gate.nice, eventLoop: context.eventLoop, run).whenComplete { result in
            gate.leave()
            let (handler, context) = bound.value
            let answer = result.mapError { _ in APIError(status: 503, code: "shutting_down", message: "the server is shutting down") }
                .flatMap { $0 }
            handler.finished(route, started, answer, path: job.route.path)
            handler.perform(handler.connection.answered(job.requestID, deprecated: deprecated, format: job.format,
                                                        result: answer), context, flush: true)
        }
    }

    func write(_ frame: BinaryConnection.Outbound, _ context: ChannelHandlerContext, flush: Bool) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        frame.write(to: &buffer)
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            unflushed = false
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            unflushed = true
        }
    }

    func closeAfterFlush(_ context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        unflushed = false
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
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
