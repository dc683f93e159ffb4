import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import TallyWire

/// A load generator for the binary protocol: connections × requests in flight, for a bounded
/// time, on loopback only, reporting req/s and latency percentiles. Its query set is the one
/// `tools/load/dashboard.lua` sends over HTTP (keep the two in step), so both listeners can be
/// compared on the same work.
struct LoadTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test the binary protocol listener: req/s and p50/p99/p99.9 on a dashboard query mix (loopback only).")

    @Option(help: "Server address (loopback only).") var host = "127.0.0.1"
    @Option(help: "Binary protocol port.") var port = 8081
    @Option(help: "Token.") var token = "YOUR_API_TOKEN"
    @Option(help: "Client id the queries are about.") var client: String
    @Option(help: "Connections.") var connections = 4
    @Option(help: "Requests in flight on each connection.") var inFlight = 8
    @Option(help: "Seconds to run (at most 600).") var duration = 10.0
    @Option(help: "Query set: dashboard, light or heavy (as tools/load/dashboard.lua; heavy is its users list under an approval filter by app count ascending, without the category's users it adds when TALLY_CATEGORY is set).") var mix = "dashboard"
    @Option(help: "Result format: json or compact.") var format = "json"

    func validate() throws {
        guard Serve.isLoopback(host) else { throw ValidationError("the load generator talks to loopback addresses only") }
        guard UUID(uuidString: client) != nil else { throw ValidationError("--client must be a UUID") }
        guard (1...1024).contains(connections), (1...1024).contains(inFlight) else {
            throw ValidationError("--connections and --in-flight must be 1…1024")
        }
        guard duration > 0 && duration <= 600 else { throw ValidationError("--duration must be in (0, 600] seconds") }
        guard Self.mixes[mix] != nil else { throw ValidationError("--mix must be dashboard, light or heavy") }
        guard format == "json" || format == "compact" else { throw ValidationError("--format must be json or compact") }
    }

    static let periods: [[(String, String)]] = [
        [("start_date", "2025-12-03"), ("end_date", "2026-01-01"), ("compare_start_date", "2025-11-03"), ("compare_end_date", "2025-12-02")],
        [("start_date", "2025-10-04"), ("end_date", "2026-01-01"), ("compare_start_date", "2025-07-06"), ("compare_end_date", "2025-10-03")],
        [("start_date", "2025-01-01"), ("end_date", "2026-01-01"), ("compare_start_date", "2024-01-01"), ("compare_end_date", "2024-12-31")],
        [("start_date", "2025-06-01"), ("end_date", "2025-06-30"), ("compare_start_date", "2025-05-01"), ("compare_end_date", "2025-05-31")],
    ]

    static let monthly = [("granularity", "monthly")]
    static let mixes: [String: [(WireEndpoint, [(String, String)])]] = [
        "dashboard": [
            (.summary, monthly), (.utilization, monthly), (.departments, monthly + [("is_approved", "false")]),
            (.categories, monthly), (.trend, [("granularity", "weekly")]), (.aiSummary, monthly), (.aiUsers, []),
            (.aiDepartments, monthly), (.aiNew, monthly), (.users, monthly + [("page_size", "20")]),
        ],
        "light": [(.summary, monthly), (.aiSummary, monthly)],
        "heavy": [(.users, monthly + [("sort_by", "app_count"), ("sort_order", "asc"), ("is_approved", "true")])],
    ]

    /// The requests of a mix, in the order the wrk script sends them.
    static func requests(_ mix: String) -> [(WireEndpoint, [(String, String)])] {
        var out: [(WireEndpoint, [(String, String)])] = []
        for (e, params) in mixes[mix]! {
            for (i, p) in periods.enumerated() where mix != "heavy" || i == 2 {
                // The deprecated endpoint takes no comparison dates in the wrk script either
                // (they are sent and ignored); keep the same parameters.
                out.append((e, params + p))
            }
        }
        return out
    }

    func run() async throws {
        let requests = Self.requests(mix)
        let client = UUID(uuidString: self.client)!
        let format: WireFormat = format == "compact" ? .compact : .json
        // Each QUERY payload is encoded once; a request only writes its frame header.
        let payloads: [[UInt8]] = requests.map { e, params in
            var b = ByteBuffer()
            QueryMessage(endpoint: e.rawValue, format: format.rawValue, client: client, parameters: params).write(to: &b)
            return Array(b.readableBytesView)
        }
        // Like wrk, the generator runs on its own event loops (two threads at most) and keeps
        // each connection's requests in flight from there, with no task or thread hop per
        // request: on a two-core machine the load generator's own cost decides how much is left
        // for the server.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: min(2, connections))
        let start = NIODeadline.now()
        let deadline = start + .milliseconds(Int64(duration * 1000))
        var runs: [EventLoopFuture<LoadDriver.Outcome>] = []
        for c in 0..<connections {
            let done = group.next().makePromise(of: LoadDriver.Outcome.self)
            let driver = LoadDriver(payloads: payloads, first: c * inFlight, inFlight: inFlight, deadline: deadline,
                                    hello: HelloMessage(token: token, clientName: "loadtest-\(c)"), done: done)
            let channel = try await ClientBootstrap(group: done.futureResult.eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(ByteToMessageHandler(FrameDecoder(maxLength: Wire.clientMaxFrame)))
                        try sync.addHandler(driver)
                    }
                }
                .connect(host: host, port: port).get()
            runs.append(done.futureResult.always { _ in channel.close(promise: nil) })
        }
        var latencies: [Int64] = [], failures: [String] = []
        for r in runs {
            let o = try await r.get()
            latencies += o.latencies
            failures += o.failures
        }
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        try await group.shutdownGracefully()
        let sorted = latencies.sorted()
        func pct(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            let v = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
            return String(format: "%.2f ms", Double(v) / 1e6)
        }
        print("binary protocol, mix \(mix) (\(requests.count) distinct queries), \(self.format), "
              + "\(connections) connections × \(inFlight) in flight, \(String(format: "%.1f", seconds)) s")
        print("  requests:    \(sorted.count) answered, \(failures.count) failed")
        print("  Requests/sec: \(String(format: "%.0f", Double(sorted.count) / seconds))")
        print("  latency p50 \(pct(0.5))  p90 \(pct(0.9))  p99 \(pct(0.99))  p99.9 \(pct(0.999))  max \(pct(1.0))")
        for f in Set(failures).prefix(5) { print("  failure: \(f)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// One load-test connection, driven from its event loop: HELLO, then `inFlight` queries kept in
/// flight until the deadline (each answer sends the next one; writes are flushed once per read),
/// then the outcome: every answer's latency, and what failed.
final class LoadDriver: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = ByteBuffer

    struct Outcome: Sendable {
        var latencies: [Int64] = []
        var failures: [String] = []
    }

    let payloads: [[UInt8]]
    let inFlight: Int
    let deadline: NIODeadline
    let hello: HelloMessage
    let done: EventLoopPromise<Outcome>
    /// Per slot (a request kept in flight): the next query's index and when its request left.
    var next: [Int]
    var sentAt: [NIODeadline]
    var round: UInt32 = 0
    var open = 0
    var outcome = Outcome()
    var finished = false

    init(payloads: [[UInt8]], first: Int, inFlight: Int, deadline: NIODeadline, hello: HelloMessage,
         done: EventLoopPromise<Outcome>) {
        self.payloads = payloads
        self.inFlight = inFlight
        self.deadline = deadline
        self.hello = hello
        self.done = done
        next = (0..<inFlight).map { first + $0 }
        sentAt = [NIODeadline](repeating: .now(), count: inFlight)
        outcome.latencies.reserveCapacity(200_000)
    }

    func channelActive(context: ChannelHandlerContext) {
        var b = context.channel.allocator.buffer(capacity: 64)
        b.writeFrame(type: .hello, requestID: 0) { hello.write(to: &$0) }
        context.writeAndFlush(wrapOutboundOut(b), promise: nil)
    }

    /// Sends slot `slot`'s next query; the request id names the slot (`id − 1 ≡ slot mod inFlight`).
    func send(_ context: ChannelHandlerContext, slot: Int) {
        let p = payloads[next[slot] % payloads.count]
        next[slot] += 7
        let id = UInt32(slot + 1) &+ round &* UInt32(inFlight)
        var b = context.channel.allocator.buffer(capacity: 12 + p.count)
        b.writeFrame(type: .query, requestID: id) { $0.writeBytes(p) }
        sentAt[slot] = .now()
        open += 1
        context.write(wrapOutboundOut(b), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .frame(let f) = unwrapInboundIn(data) else { return finish(failure: "bad frame from the server") }
        switch f.messageType {
        case .welcome:
            for slot in 0..<inFlight { send(context, slot: slot) }
        case .result, .error:
            guard f.requestID > 0 else {
                return finish(failure: (try? ErrorMessage(reading: f.payload))?.description ?? "connection error")
            }
            let slot = Int(f.requestID - 1) % inFlight
            open -= 1
            let now = NIODeadline.now()
            if f.messageType == .result {
                outcome.latencies.append((now - sentAt[slot]).nanoseconds)
            } else {
                outcome.failures.append((try? ErrorMessage(reading: f.payload))?.description ?? "unreadable error")
            }
            if slot == inFlight - 1 { round &+= 1 }
            if now < deadline { send(context, slot: slot) } else if open == 0 { finish(failure: nil) }
        case .goaway:
            finish(failure: "the server said GOAWAY")
        default:
            finish(failure: "unexpected frame type \(f.type)")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func finish(failure: String?) {
        guard !finished else { return }
        finished = true
        if let failure { outcome.failures.append(failure) }
        done.succeed(outcome)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { finish(failure: "the connection closed") }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(failure: "\(error)")
        context.close(promise: nil)
    }
}
