import Dispatch
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import TallyAPI
import TallyStorage

/// One HTTP/1.1 connection: collects a request, answers quick ones on the event loop and hands
/// analytics queries to the thread pool, so that a heavy query never holds up the loop that
/// serves other connections. Pipelined requests are queued by NIO's `HTTPServerPipelineHandler`
/// in front of this one, which keeps their answers in order.
final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let api: API
    let pool: NIOThreadPool
    let limits: ServerLimits
    var head: HTTPRequestHead?
    var bodyBytes = 0
    /// The body, kept for the requests that read one (POST).
    var body: [UInt8] = []
    /// Set once the request broke a limit: the rest of it is ignored and the connection closed.
    var refused = false
    /// The request being answered (pipelined ones wait in NIO's handler in front, so there is
    /// one at a time): when it was read, its id and target, for its metrics and log line.
    var started: UInt64 = 0
    var requestID: UInt64 = 0
    var method = "", target = ""
    let observability: Observability

    let gate: HeavyGate
    /// The clock on receiving a request (first in this connection's pipeline).
    let deadline: ReceiveDeadline

    init(api: API, pool: NIOThreadPool, limits: ServerLimits, gate: HeavyGate, deadline: ReceiveDeadline) {
        self.api = api
        self.pool = pool
        self.limits = limits
        self.observability = api.observability
        self.gate = gate
        self.deadline = deadline
    }

    func channelActive(context: ChannelHandlerContext) {
        observability.metrics.connectionOpened(.http)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        observability.metrics.connectionClosed(.http)
        context.fireChannelInactive()
    }

    /// A request is in: its clock starts.
    func begin(_ h: HTTPRequestHead) {
        started = NIODeadline.now().uptimeNanoseconds
        method = h.method.rawValue
        target = h.uri
        if observability.accessLog != .off { requestID = observability.nextRequestID() }
        observability.metrics.requestStarted(.http)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
            body = []
            refused = false
            if h.headers.count > limits.maxHeaderCount {
                begin(h)
                refuse(context, APIError(status: 431, code: "headers_too_large",
                                         message: "at most \(limits.maxHeaderCount) header fields are accepted"))
            }
        case .body(let b):
            bodyBytes += b.readableBytes
            if head?.method == .POST && bodyBytes <= limits.maxBodyBytes { body += b.readableBytesView }
            if !refused && bodyBytes > limits.maxBodyBytes {
                if let h = head { begin(h) }
                refuse(context, APIError(status: 413, code: "body_too_large",
                                         message: "request bodies are limited to \(limits.maxBodyBytes) bytes"))
            }
        case .end:
            deadline.received()
            guard let h = head, !refused else { return }
            head = nil
            begin(h)
            var incoming = APIRequest(method: h.method.rawValue, target: h.uri,
                                      authorization: h.headers.first(name: "authorization"), body: body)
            // A peer whose address is unknown is not loopback (`nil` would read as an in-process
            // call, to which `/metrics` answers).
            incoming.remoteAddress = context.remoteAddress?.ipAddress ?? "unknown"
            let request = incoming
            body = []
            let keepAlive = h.isKeepAlive
            let isHead = h.method == .HEAD
            if api.isDeferred(request) {
                // Reloads and snapshots take seconds on their own thread, appends wait for the
                // log: none of them holds a query thread or the loop.
                let promise = context.eventLoop.makePromise(of: APIResponse.self)
                let route = Registry.match(request.path).map { ServiceMetrics.index(of: $0.route) } ?? ServiceMetrics.unmatched
                api.handleDeferred(request) { r in
                    var r = r
                    r.routeIndex = route
                    promise.succeed(r)
                }
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                promise.futureResult.whenSuccess { response in
                    let (handler, context) = bound.value
                    handler.write(context, response, version: h.version, keepAlive: keepAlive, isHead: isHead)
                }
            } else if api.isHeavy(request) {
                guard gate.tryEnter() else {
                    var refusal = API.response(HeavyGate.overloaded)
                    refusal.routeIndex = Registry.match(request.path).map { ServiceMetrics.index(of: $0.route) } ?? ServiceMetrics.unmatched
                    write(context, refusal, version: h.version, keepAlive: keepAlive, isHead: isHead)
                    return
                }
                let api = self.api, gate = self.gate
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                QueryThread.run(on: pool, nice: gate.nice, eventLoop: context.eventLoop) { api.handle(request) }.whenComplete { result in
                    gate.leave()
                    let (handler, context) = bound.value
                    switch result {
                    case .success(let response):
                        handler.write(context, response, version: h.version, keepAlive: keepAlive, isHead: isHead)
                    case .failure:
                        handler.write(context, API.response(APIError(status: 503, code: "shutting_down",
                                                                     message: "the server is shutting down")),
                                      version: h.version, keepAlive: false, isHead: isHead)
                    }
                }
            } else {
                write(context, api.handle(request), version: h.version, keepAlive: keepAlive, isHead: isHead)
            }
        }
    }

    func refuse(_ context: ChannelHandlerContext, _ error: APIError) {
        refused = true
        write(context, API.response(error), version: head?.version ?? .http1_1, keepAlive: false, isHead: false)
    }

    func write(_ context: ChannelHandlerContext, _ r: APIResponse, version: HTTPVersion, keepAlive: Bool, isHead: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: r.contentType)
        headers.add(name: "Content-Length", value: String(r.body.count))
        for (k, v) in r.headers { headers.add(name: k, value: v) }
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: r.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !isHead && !r.body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: r.body.count)
            buffer.writeBytes(r.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        // Counted and timed as written (the response leaves with the flush below).
        let elapsed = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds &- started)
        observability.metrics.record(.http, route: r.routeIndex, status: r.status, nanoseconds: elapsed)
        observability.metrics.requestFinished(.http)
        if observability.logsAccess(status: r.status, id: requestID) {
            observability.logAccess(.http, id: requestID, method: method, path: Self.pathOnly(target), route: r.routeIndex,
                                    status: r.status, nanoseconds: elapsed, bytes: r.body.count)
        }
        guard !keepAlive else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        done.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
    }

    /// The target without its query string (query values can hold search text; the log keeps paths).
    static func pathOnly(_ target: String) -> String {
        target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        if let e = event as? ReceiveTimeoutEvent {
            // Closed without an answer, as nginx does past `client_header_timeout`: a 408 written
            // now could be read as the answer to an earlier pipelined request still running.
            observability.http.debug("closing a connection whose request was not received within the time allowed",
                                     metadata: ["peer": "\(context.remoteAddress?.description ?? "?")", "seconds": "\(e.seconds)"])
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Malformed HTTP: NIO's error handler in front answers 400; anything else ends the connection.
        observability.http.debug("connection error", metadata: ["peer": "\(context.remoteAddress?.description ?? "?")",
                                                                "error": "\(error)"])
        context.close(promise: nil)
    }
}

/// Query threads run at a lower scheduling priority than the event loops, so that on a busy
/// machine the loops (and the quick requests they answer themselves) get the CPU first.
enum QueryThread {
    nonisolated(unsafe) static var lowered: Set<UInt> = []
    static let lock = NIOLock()

    /// Stands for `SCHED_IDLE` where a nice value is expected (``ServerLimits/queryThreadIdle``).
    static let idle: Int32 = -100

    static func lowerPriorityOnce(to nice: Int32) {
        let first = lock.withLock { lowered.insert(UInt(pthread_self())).inserted }
        guard first else { return }
        (nice == idle ? BackgroundPriority.idle : .nice(nice)).apply()
    }

    /// Runs `work` on one of `pool`'s threads, lowered to `nice` (``ServerLimits/queryThreadNice``);
    /// the future completes on `eventLoop`, failing when the pool has stopped.
    static func run<T: Sendable>(on pool: NIOThreadPool, nice: Int32, eventLoop: EventLoop,
                                 _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T> {
        pool.runIfActive(eventLoop: eventLoop) {
            lowerPriorityOnce(to: nice)
            return work()
        }
    }
}

extension ChannelHandlerContext {
    func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}
