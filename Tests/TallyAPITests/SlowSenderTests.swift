import Foundation
import Testing
import TallyAPI
import TallyServer
import TallyStorage
import TallyTestSupport

/// Slow senders (issue 15): a request begun must arrive whole within the receive timeout — a
/// peer trickling one byte at a time (slowloris) is never idle, so the idle timeout alone would
/// let it hold a connection forever. Over both listeners; a connection that is merely idle
/// between requests keeps its own, longer timeout.
@Suite struct SlowSenderTests {
    static let token = "slow-token"

    func server() throws -> Server {
        let f = ServerFixture.shared
        var limits = ServerLimits()
        limits.receiveTimeout = .seconds(1)
        limits.idleTimeout = .seconds(300)
        var binaryLimits = BinaryLimits()
        binaryLimits.receiveTimeout = .seconds(1)
        binaryLimits.idleTimeout = .seconds(300)
        let tokens = TokenStore(entries: [TokenEntry(name: "t", digest: TokenStore.sha256(Self.token), clients: nil)])
        return try Server(api: API(serving: f.store, tokens: tokens), host: "127.0.0.1", port: 0, binaryPort: 0,
                          threads: 1, limits: limits, binaryLimits: binaryLimits)
    }

    /// Sends `bytes` one at a time, `gap` apart, until the server closes (true) or they run out.
    /// (The tests are synchronous and sleep on their own thread: under the parallel suite an
    /// async sleep waits for a free thread of the shared pool, seconds late.)
    func trickle(_ c: HTTPTestClient, _ bytes: [UInt8], gap: Duration) -> Bool {
        for b in bytes {
            do { try c.send([b]) } catch { return true }
            pause(gap)
        }
        return false
    }

    func pause(_ d: Duration) { usleep(UInt32(d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000)) }

    @Test func aTrickledHTTPRequestIsCutOffAndAnIdleOneIsNot() throws {
        let server = try self.server()
        defer { server.shutdown() }
        // Head bytes 200 ms apart: never idle, never whole. Closed about 1 s after its first byte.
        let slow = try HTTPTestClient(port: server.port)
        let start = ContinuousClock.now
        let text = Array(HTTPTestClient.requestText("GET", "/healthz").utf8)
        let cut = trickle(slow, text, gap: .milliseconds(200))
        let elapsed = ContinuousClock.now - start
        #expect(cut || slow.isClosedByPeer(), "a trickled request was never cut off")
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(8), "cut off after \(elapsed)")
        #expect(slow.isClosedByPeer())
        // The same for a body: a POST whose body never finishes arriving.
        let body = try HTTPTestClient(port: server.port)
        try body.send("POST /v2/admin/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        let t0 = ContinuousClock.now
        #expect(body.isClosedByPeer())
        #expect(ContinuousClock.now - t0 < .seconds(8))
        // Whole requests with idle time between them longer than the receive timeout: answered.
        let idle = try HTTPTestClient(port: server.port)
        for _ in 0..<2 {
            #expect(try idle.request("GET", "/healthz").status == 200)
            pause(.milliseconds(1500))
        }
        #expect(try idle.request("GET", "/healthz").status == 200)
        // And the listener still answers others.
        #expect(try HTTPTestClient(port: server.port).request("GET", "/healthz").status == 200)
    }

    @Test func aTrickledFrameGetsRequestTimeoutAndAnIdleConnectionDoesNot() throws {
        let server = try self.server()
        defer { server.shutdown() }
        let c = try HTTPTestClient(port: server.binaryPort!)
        try c.send(RawFrames.hello(token: Self.token))
        #expect(try c.readFrame()?.type == 2, "WELCOME")
        // Idle longer than the receive timeout between frames: still open, PING answered.
        pause(.milliseconds(1500))
        try c.send(RawFrames.frame(type: 6, id: 7, payload: [1, 2]))
        let pong = try c.readFrame()
        #expect(pong?.type == 7, "PONG after an idle pause: \(String(describing: pong))")
        // Half a frame, then silence: a fatal ERROR 408 with id 0, then the close.
        let t0 = ContinuousClock.now
        try c.send(Array(RawFrames.frame(type: 6, id: 8, payload: [1, 2, 3]).prefix(6)))
        let e = try #require(try c.readFrame(), "closed without a word")
        #expect(e.requestID == 0 && e.flags & 1 == 1 && e.error?.status == 408 && e.error?.code == "request_timeout", "\(e)")
        #expect(try c.readFrame() == nil, "closed after the error")
        let elapsed = ContinuousClock.now - t0
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(8), "after \(elapsed)")
        // Trickled a byte every 200 ms, before HELLO: the same. (Four bytes, 0.8 s: no byte is
        // sent after the close, whose reset could discard the error before it is read.)
        let slow = try HTTPTestClient(port: server.binaryPort!)
        _ = trickle(slow, Array(RawFrames.hello(token: Self.token).prefix(4)), gap: .milliseconds(200))
        #expect(try slow.readFrame()?.error?.code == "request_timeout")
    }
}
