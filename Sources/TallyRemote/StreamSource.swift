import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TallyIngest

/// A remote object read as a stream: the body arrives on the HTTP client's event loop and is
/// handed to the parsing thread through a small queue (the download pauses while 8 MB wait).
/// A request that fails before the end (5xx, timeout, dropped connection) is made again from
/// the byte reached, with `Range`, after a backoff, up to ``Remote/attempts`` times.
final class StreamSource: ObservableByteSource, @unchecked Sendable {
    let location: String
    let url: URL
    let sign: (URL) -> [(String, String)]
    let failure: (Whole) -> RemoteError
    var observer: ((UnsafeRawBufferPointer) -> Void)?
    private(set) var storedBytesRead = 0

    let condition = NSCondition()
    // Guarded by `condition`:
    var chunks: [ByteBuffer] = []
    var buffered = 0
    var paused: EventLoopPromise<Void>?
    var generation = 0
    var status: UInt?
    var errorBody: [UInt8] = []
    var finished = false
    var failed: Error?
    /// Bytes of this response still to drop (a server that answered a Range request with the whole object).
    var skip = 0

    var attempt = 0
    var lastFailure = ""
    static let highWater = 8 << 20

    init(location: String, url: URL, sign: @escaping (URL) -> [(String, String)], failure: @escaping (Whole) -> RemoteError) throws {
        self.location = location
        self.url = url
        self.sign = sign
        self.failure = failure
        try start(from: 0)
    }

    deinit {
        condition.lock()
        paused?.succeed()
        paused = nil
        condition.unlock()
    }

    func start(from offset: Int) throws {
        condition.lock()
        generation += 1
        let g = generation
        chunks = []
        buffered = 0
        status = nil
        errorBody = []
        finished = false
        failed = nil
        skip = 0
        paused?.succeed()
        paused = nil
        condition.unlock()
        var request = try HTTPClient.Request(url: url.absoluteString, method: .GET)
        var extra: [(String, String)] = []
        if offset > 0 { extra.append(("range", "bytes=\(offset)-")) }
        for (k, v) in sign(url) + extra { request.headers.add(name: k, value: v) }
        _ = Remote.client.execute(request: request, delegate: Delegate(owner: self, generation: g, offset: offset))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            condition.lock()
            while chunks.isEmpty && !finished && failed == nil { condition.wait() }
            if var first = chunks.first {
                let n = min(buffer.count, first.readableBytes)
                first.withUnsafeReadableBytes { src in buffer.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n) }
                first.moveReaderIndex(forwardBy: n)
                if first.readableBytes == 0 { chunks.removeFirst() } else { chunks[0] = first }
                buffered -= n
                if buffered < Self.highWater / 2, let p = paused {
                    paused = nil
                    p.succeed()
                }
                condition.unlock()
                storedBytesRead += n
                if let o = observer { o(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<n])) }
                return n
            }
            let status = self.status, body = errorBody, error = failed
            condition.unlock()
            if let status, !(200..<300).contains(status) && !Remote.retriable(status: status) {
                throw failure(Whole(status: status, body: body))
            }
            if error == nil, let status, (200..<300).contains(status) { return 0 }
            // A failure worth another attempt: from the byte reached.
            lastFailure = error.map { "\($0)" } ?? "HTTP \(status ?? 0)\(Remote.describe(body))"
            attempt += 1
            guard attempt < Remote.attempts else {
                throw RemoteError(location: location, reason: "failed after \(Remote.attempts) attempts, \(storedBytesRead) bytes in: \(lastFailure)")
            }
            Remote.pause(attempt)
            try start(from: storedBytesRead)
        }
    }

    // Delegate callbacks (on the client's event loop).

    func head(_ g: Int, _ s: UInt, offset: Int) {
        condition.lock()
        if g == generation {
            status = s
            if offset > 0 && s == 200 { skip = offset }
        }
        condition.unlock()
    }

    func body(_ g: Int, _ part: ByteBuffer, on loop: EventLoop) -> EventLoopFuture<Void> {
        condition.lock()
        defer { condition.unlock() }
        guard g == generation else { return loop.makeSucceededVoidFuture() }
        guard let s = status, (200..<300).contains(s) else {
            errorBody += part.readableBytesView.prefix(4096)
            return loop.makeSucceededVoidFuture()
        }
        var part = part
        if skip > 0 {
            let drop = min(skip, part.readableBytes)
            part.moveReaderIndex(forwardBy: drop)
            skip -= drop
            if part.readableBytes == 0 { return loop.makeSucceededVoidFuture() }
        }
        chunks.append(part)
        buffered += part.readableBytes
        condition.signal()
        if buffered >= Self.highWater {
            let p = loop.makePromise(of: Void.self)
            paused = p
            return p.futureResult
        }
        return loop.makeSucceededVoidFuture()
    }

    func end(_ g: Int, _ error: Error?) {
        condition.lock()
        if g == generation {
            if let error { failed = error } else { finished = true }
            condition.signal()
        }
        condition.unlock()
    }

    final class Delegate: HTTPClientResponseDelegate, @unchecked Sendable {
        typealias Response = Void
        let owner: StreamSource
        let generation: Int
        let offset: Int

        init(owner: StreamSource, generation: Int, offset: Int) {
            self.owner = owner
            self.generation = generation
            self.offset = offset
        }

        func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
            owner.head(generation, head.status.code, offset: offset)
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
            owner.body(generation, buffer, on: task.eventLoop)
        }

        func didReceiveError(task: HTTPClient.Task<Void>, _ error: Error) { owner.end(generation, error) }

        func didFinishRequest(task: HTTPClient.Task<Void>) throws { owner.end(generation, nil) }
    }
}
