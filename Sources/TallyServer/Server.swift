import NIOConcurrencyHelpers
import Synchronization
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import TallyAPI
import TallyWire

/// Limits of the HTTP listener.
public struct ServerLimits: Sendable {
    public var maxHeaderCount = 100
    public var maxBodyBytes = 1 << 20
    /// A connection idle this long (no request, no response being written) is closed.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// A request begun must be received whole (head and body) within this; past it the
    /// connection is closed (a slow sender holds nothing for long).
    public var receiveTimeout: TimeAmount = .seconds(10)
    /// Heavy queries waiting for or running on the query threads, over both listeners; beyond
    /// it a heavy request gets 503 `overloaded` with `Retry-After` at once.
    public var maxQueuedHeavy = 64
    /// The nice value of the query threads (0–19): below the event loops, so that on a busy
    /// machine the loops, and the light requests they answer themselves, get the CPU first.
    public var queryThreadNice: Int32 = 19
    /// Run the query threads under `SCHED_IDLE` instead of a nice value: they then get the CPU
    /// only when no other thread wants it, and a waking event loop preempts them at once.
    public var queryThreadIdle = false
    public init() {}
}

/// Bounds the heavy queries handed to the query threads (issue 15): past `limit`, a heavy
/// request is refused at once with 503 `overloaded` and `Retry-After`, instead of joining a queue
/// that only grows; light requests, answered on the event loops, keep their latency (Druid's
/// query lanes are the model).
final class HeavyGate: Sendable {
    let limit: Int
    /// The nice value the query threads run heavy queries at.
    let nice: Int32
    let count = Atomic<Int>(0)

    init(limit: Int, nice: Int32 = 10) {
        self.limit = limit
        self.nice = nice
    }

    func tryEnter() -> Bool {
        if count.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func leave() { count.wrappingSubtract(1, ordering: .relaxed) }

    static let overloaded: APIError = {
        var e = APIError(status: 503, code: "overloaded", message: "too many heavy queries are waiting; try again shortly")
        e.retryAfter = 1
        return e
    }()
}

/// The listeners: HTTP/1.1 (keep-alive, pipelining, limits, idle timeouts) and, unless turned
/// off, the binary protocol (docs/PROTOCOL.md), on one set of event loops and query threads and
/// one ``API``. A graceful shutdown stops accepting on both, lets in-flight requests finish,
/// then closes.
public final class Server: Sendable {
    public let api: API
    public let group: MultiThreadedEventLoopGroup
    public let pool: NIOThreadPool
    let channels: [Channel]
    /// The listeners' quiescing helpers. Dropped before the loops stop: a helper fails a promise
    /// on its loop when it goes away, which must not happen after the loop is gone.
    let quiescers: NIOLockedValueBox<[ServerQuiescingHelper]>
    /// Per listener, once its shutdown has begun: completes when its connections and its socket
    /// are closed. Kept so that a second ``shutdownListener(_:)`` waits on the same drain.
    let draining: NIOLockedValueBox<[EventLoopFuture<Void>?]>
    let stopped: EventLoopPromise<Void>

    /// Binds and starts accepting: HTTP on `port`, the binary protocol on `binaryPort` (`nil`:
    /// no binary listener; 0: any free port). `threads` event loops, and `queryThreads` query
    /// threads for heavy queries (default: as many as event loops).
    public init(api: API, host: String, port: Int, binaryPort: Int? = nil, threads: Int, queryThreads: Int? = nil,
                limits: ServerLimits = ServerLimits(), binaryLimits: BinaryLimits = BinaryLimits()) throws {
        self.api = api
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.group = group
        let pool = NIOThreadPool(numberOfThreads: queryThreads ?? threads)
        self.pool = pool
        pool.start()
        stopped = group.next().makePromise(of: Void.self)
        let gate = HeavyGate(limit: limits.maxQueuedHeavy, nice: limits.queryThreadIdle ? QueryThread.idle : limits.queryThreadNice)

        func bind(_ port: Int, _ child: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) throws -> (Channel, ServerQuiescingHelper) {
            let quiesce = ServerQuiescingHelper(group: group)
            let channel = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    }
                }
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer(child)
                .bind(host: host, port: port).wait()
            return (channel, quiesce)
        }

        var listeners: [(channel: Channel, quiesce: ServerQuiescingHelper)] = []
        do {
            listeners.append(try bind(port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let deadline = ReceiveDeadline(timeout: limits.receiveTimeout)
                    try sync.addHandler(deadline)
                    try sync.addHandler(IdleStateHandler(allTimeout: limits.idleTimeout))
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try sync.addHandler(HTTPHandler(api: api, pool: pool, limits: limits, gate: gate, deadline: deadline))
                }
            })
            if let binaryPort {
                listeners.append(try bind(binaryPort) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        let deadline = ReceiveDeadline(timeout: binaryLimits.receiveTimeout)
                        try sync.addHandler(deadline)
                        try sync.addHandler(IdleStateHandler(allTimeout: binaryLimits.idleTimeout))
                        try sync.addHandler(ByteToMessageHandler(FrameDecoder(maxLength: binaryLimits.maxFrame)))
                        try sync.addHandler(BinaryHandler(api: api, pool: pool, limits: binaryLimits, gate: gate, deadline: deadline))
                    }
                })
            }
        } catch {
            for l in listeners { try? l.channel.close().wait() }
            listeners.removeAll()
            stopped.succeed()
            try? group.syncShutdownGracefully()
            try? pool.syncShutdownGracefully()
            throw error
        }
        channels = listeners.map(\.channel)
        quiescers = NIOLockedValueBox(listeners.map(\.quiesce))
        draining = NIOLockedValueBox(Array(repeating: nil, count: listeners.count))
    }

    /// The HTTP port actually bound (useful with port 0).
    public var port: Int { channels[0].localAddress?.port ?? 0 }
    /// The binary port actually bound, if that listener is on.
    public var binaryPort: Int? { channels.count > 1 ? channels[1].localAddress?.port : nil }

    /// Stops accepting and lets in-flight requests be answered on both listeners; ``run()`` then
    /// returns. Safe to call from any thread, more than once.
    public func initiateShutdown() {
        let done = channels.indices.map { shutdownListener($0) }
        let stopped = self.stopped
        EventLoopFuture.andAllComplete(done, on: group.next()).whenComplete { _ in stopped.succeed() }
    }

    /// Stops accepting on one listener (0: HTTP, 1: binary) and lets its in-flight requests be
    /// answered; the future completes once its connections and its socket are closed. Safe to
    /// call more than once: every call returns the same drain.
    @discardableResult
    public func shutdownListener(_ index: Int) -> EventLoopFuture<Void> {
        draining.withLockedValue { draining in
            if let started = draining[index] { return started }
            let quiesce = quiescers.withLockedValue { $0.indices.contains(index) ? $0[index] : nil }
            let loop = channels[index].eventLoop
            let p = loop.makePromise(of: Void.self)
            if let quiesce { quiesce.initiateShutdown(promise: p) } else { p.succeed() }
            // The helper reports done as soon as the accepted connections are closed, which can
            // be before its listening socket has finished closing: wait for that too, so that the
            // event loops are not stopped under it. Both on the listener's own loop: nothing
            // hops to another loop that may already be stopping.
            let drained = EventLoopFuture.andAllComplete([p.futureResult, channels[index].closeFuture], on: loop)
            draining[index] = drained
            return drained
        }
    }

    /// Completes when listener `index`'s socket has closed (after ``shutdownListener(_:)``, or
    /// on an error); its accepted connections may still be answering — wait on
    /// ``shutdownListener(_:)`` for those.
    public func closed(_ index: Int) -> EventLoopFuture<Void> { channels[index].closeFuture }

    /// Stops the query threads and the event loops once both listeners are closed (the end of
    /// ``run()``, for a caller that waited on the listeners itself).
    public func stopThreads() {
        stopped.succeed()  // when the listeners were shut down one by one (a second completion is ignored)
        try? pool.syncShutdownGracefully()
        quiescers.withLockedValue { $0 = [] }
        for loop in group.makeIterator() { try? loop.submit {}.wait() }
        try? group.syncShutdownGracefully()
    }

    /// Blocks until ``initiateShutdown()`` has completed, then stops the threads.
    public func run() {
        try? stopped.futureResult.wait()
        // Dropping the helpers fails a promise on their loops: each loop gets a turn to run it.
        stopThreads()
    }

    /// Shuts down and waits (tests).
    public func shutdown() {
        initiateShutdown()
        run()
    }
}
