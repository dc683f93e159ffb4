import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TallyWire

/// A client of Tally's binary protocol (docs/PROTOCOL.md): one TCP connection, authenticated
/// once, carrying any number of concurrent requests — each `query` call can run in its own task
/// and answers are matched to them by request id, in whatever order the server finishes them.
///
/// ```swift
/// let tally = try await TallyClient.connect(host: "127.0.0.1", port: 8081, token: "YOUR_API_TOKEN")
/// let result = try await tally.query(.departments, client: id, parameters: [
///     ("start_date", "2026-02-01"), ("end_date", "2026-02-28"), ("granularity", "monthly")])
/// print(String(decoding: result.body, as: UTF8.self))
/// try await tally.close()
/// ```
public final class TallyClient: Sendable {
    let channel: Channel
    let nextID: NIOLockedValueBox<UInt32>
    /// What the server said in WELCOME: its limits and version.
    public let welcome: WelcomeMessage

    init(channel: Channel, welcome: WelcomeMessage, nextID: UInt32) {
        self.channel = channel
        self.welcome = welcome
        self.nextID = NIOLockedValueBox(nextID)
    }

    /// Connects and authenticates (HELLO → WELCOME). Throws ``TallyClientError/server(_:)`` with
    /// the server's 401 when the token is refused.
    public static func connect(host: String, port: Int, token: String, clientName: String = "",
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TallyClient {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(maxLength: Wire.clientMaxFrame)))
                    try sync.addHandler(ClientHandler())
                }
            }
            .connect(host: host, port: port).get()
        let hello = HelloMessage(token: token, clientName: clientName)
        do {
            let frame = try await send(on: channel, type: .hello, id: 0) { hello.write(to: &$0) }
            guard frame.messageType == .welcome else { throw TallyClientError.protocolViolation("expected WELCOME, got type \(frame.type)") }
            let welcome = try WelcomeMessage(reading: frame.payload)
            return TallyClient(channel: channel, welcome: welcome, nextID: 1)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Runs one query. The parameters are HTTP's query parameters, in plain text.
    public func query(_ endpoint: WireEndpoint, client: UUID, parameters: [(String, String)],
                      format: WireFormat = .json) async throws -> TallyResult {
        let message = QueryMessage(endpoint: endpoint.rawValue, format: format.rawValue, client: client, parameters: parameters)
        return try await query(message)
    }

    /// Sends a QUERY as given, even with an endpoint or format number the client does not know.
    public func query(_ message: QueryMessage) async throws -> TallyResult {
        let frame = try await Self.send(on: channel, type: .query, id: takeID()) { message.write(to: &$0) }
        guard frame.messageType == .result else { throw TallyClientError.protocolViolation("expected RESULT, got type \(frame.type)") }
        var payload = frame.payload
        guard let f = payload.readInteger(as: UInt8.self), let format = WireFormat(rawValue: f) else {
            throw TallyClientError.protocolViolation("RESULT without a known format")
        }
        return TallyResult(format: format, body: payload.readBytes(length: payload.readableBytes) ?? [],
                           deprecated: frame.flags & Wire.flagDeprecated != 0)
    }

    /// PING → PONG; returns the round trip.
    @discardableResult
    public func ping(_ payload: [UInt8] = []) async throws -> Duration {
        let start = ContinuousClock.now
        let frame = try await Self.send(on: channel, type: .ping, id: takeID()) { $0.writeBytes(payload) }
        guard frame.messageType == .pong, Array(frame.payload.readableBytesView) == payload else {
            throw TallyClientError.protocolViolation("PING not answered by a PONG with its payload")
        }
        return ContinuousClock.now - start
    }

    /// Sends any frame and waits for the answer with its request id (tests of odd inputs).
    public func raw(type: UInt8, flags: UInt16 = 0, payload: [UInt8]) async throws -> Frame {
        let id = takeID()
        var buffer = channel.allocator.buffer(capacity: 12 + payload.count)
        buffer.writeInteger(UInt32(8 + payload.count))
        buffer.writeInteger(Wire.version)
        buffer.writeInteger(type)
        buffer.writeInteger(flags)
        buffer.writeInteger(id)
        buffer.writeBytes(payload)
        let promise = channel.eventLoop.makePromise(of: Frame.self)
        channel.writeAndFlush(ClientHandler.Request(id: id, bytes: buffer, answer: promise), promise: nil)
        return try await promise.futureResult.get().checked()
    }

    /// Closes the connection; requests still in flight fail with ``TallyClientError/connectionClosed``.
    public func close() async throws {
        try await channel.close()
    }

    /// Whether the server has said GOAWAY or the connection is gone.
    public var isOpen: Bool { channel.isActive }

    func takeID() -> UInt32 {
        nextID.withLockedValue { id in
            defer { id &+= 1 }
            return id
        }
    }

    static func send(on channel: Channel, type: MessageType, id: UInt32,
                     payload: (inout ByteBuffer) -> Void) async throws -> Frame {
        var buffer = channel.allocator.buffer(capacity: 128)
        buffer.writeFrame(type: type, requestID: id, payload: payload)
        let promise = channel.eventLoop.makePromise(of: Frame.self)
        channel.writeAndFlush(ClientHandler.Request(id: id, bytes: buffer, answer: promise), promise: nil)
        return try await promise.futureResult.get().checked()
    }
}

extension Frame {
    /// ERROR frames become thrown errors.
    func checked() throws -> Frame {
        guard messageType == .error else { return self }
        throw TallyClientError.server(try ErrorMessage(reading: payload), fatal: flags & Wire.flagFatal != 0)
    }
}

/// An answer: its format and body (JSON text, or the compact encoding).
public struct TallyResult: Sendable {
    public var format: WireFormat
    public var body: [UInt8]
    /// The endpoint is deprecated (F).
    public var deprecated: Bool

    /// The body as a document, whatever its format.
    public func document() throws -> CompactValue? {
        format == .compact ? try CompactValue(decoding: body) : nil
    }

    /// The body as JSON text, decoding a compact body (byte for byte what format 0 would give).
    public func json() throws -> [UInt8] {
        format == .json ? body : try CompactValue(decoding: body).json
    }
}

public enum TallyClientError: Error, CustomStringConvertible, Sendable {
    /// The server answered with ERROR; `fatal` when it closes the connection after it.
    case server(ErrorMessage, fatal: Bool)
    /// The connection closed before the answer came.
    case connectionClosed
    /// The server said GOAWAY: no new requests on this connection.
    case goingAway
    /// The server sent something the protocol does not allow.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .server(let e, let fatal): return "server error \(e)" + (fatal ? " (connection closed)" : "")
        case .connectionClosed: return "the connection closed before the answer came"
        case .goingAway: return "the server is shutting down (GOAWAY)"
        case .protocolViolation(let s): return "protocol violation: \(s)"
        }
    }

    /// The server's error, if this is one.
    public var serverError: ErrorMessage? {
        if case .server(let e, _) = self { return e }
        return nil
    }
}

/// Matches answers to requests by id. Runs on the channel's event loop.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    struct Request {
        var id: UInt32
        var bytes: ByteBuffer
        var answer: EventLoopPromise<Frame>
    }

    var pending: [UInt32: EventLoopPromise<Frame>] = [:]
    var goingAway = false
    var flushScheduled = false
    var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let r = unwrapOutboundIn(data)
        if closed { return r.answer.fail(TallyClientError.connectionClosed) }
        if goingAway { return r.answer.fail(TallyClientError.goingAway) }
        pending[r.id] = r.answer
        context.write(wrapOutboundOut(r.bytes), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        // Requests sent from many tasks at once go out in one write when they can.
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            handler.flushScheduled = false
            context.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .framingError(let e):
            failAll(TallyClientError.protocolViolation("bad frame from the server: \(e.message)"))
            context.close(promise: nil)
        case .frame(let f):
            if f.messageType == .goaway && f.requestID == 0 {
                goingAway = true
                return
            }
            if let p = pending.removeValue(forKey: f.requestID) {
                p.succeed(f)
            } else if f.messageType == .error {
                // A connection-level error (framing, id 0): every request in flight is lost.
                let e = (try? ErrorMessage(reading: f.payload)) ?? .malformedFrame("unreadable error")
                failAll(TallyClientError.server(e, fatal: f.flags & Wire.flagFatal != 0))
            }
        }
    }

    func failAll(_ error: Error) {
        let all = pending
        pending = [:]
        for p in all.values { p.fail(error) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        failAll(TallyClientError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(error)
        context.close(promise: nil)
    }
}
