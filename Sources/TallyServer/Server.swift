import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import TallyAPI

/// Limits of the HTTP listener.
public struct ServerLimits: Sendable {
    public var maxHeaderCount = 100
    public var maxBodyBytes = 1 << 20
    /// A connection idle this long (no request, no response being written) is closed.
    public var idleTimeout: TimeAmount = .seconds(60)
    public init() {}
}

/// The HTTP/1.1 listener: keep-alive, pipelining, limits, idle timeouts, and a graceful
/// shutdown that stops accepting, lets in-flight requests finish, then closes.
public final class HTTPServer: Sendable {
    public let api: API
    public let group: MultiThreadedEventLoopGroup
    public let pool: NIOThreadPool
    let quiesce: ServerQuiescingHelper
    let channel: Channel
    let stopped: EventLoopPromise<Void>

    /// Binds and starts accepting. `threads` event loops, and as many threads for queries.
    public init(api: API, host: String, port: Int, threads: Int, limits: ServerLimits = ServerLimits()) throws {
        self.api = api
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        let quiesce = ServerQuiescingHelper(group: group)
        self.quiesce = quiesce
        let pool = self.pool
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(allTimeout: limits.idleTimeout))
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try sync.addHandler(HTTPHandler(api: api, pool: pool, limits: limits))
                }
            }
        stopped = group.next().makePromise(of: Void.self)
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            stopped.succeed()
            try? group.syncShutdownGracefully()
            try? pool.syncShutdownGracefully()
            throw error
        }
    }

    /// The port actually bound (useful with port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Stops accepting and lets in-flight requests be answered; ``run()`` then returns.
    /// Safe to call from any thread, more than once.
    public func initiateShutdown() {
        quiesce.initiateShutdown(promise: stopped)
    }

    /// Blocks until ``initiateShutdown()`` has completed, then stops the threads.
    public func run() {
        try? stopped.futureResult.wait()
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    /// Shuts down and waits (tests).
    public func shutdown() {
        initiateShutdown()
        run()
    }
}
