// The binary protocol's frame decoder and payload readers (TallyWire, docs/PROTOCOL.md §2–§5):
// a byte stream cut into chunks at fuzzed places, fed through `FrameDecoder` in NIO's
// `ByteToMessageHandler` as the server and the client run it, and every frame's payload read as
// each message type. Input: byte 0 picks the frame limit, byte 1 how the stream is cut; the rest
// is the stream.
//
// Checked: the frames and the framing error are those of a reference reading of §2 (and so do
// not depend on the cut); a payload that reads as a message is written back byte for byte.
import Foundation
import FuzzSupport
import NIOCore
import NIOEmbedded
import TallyAPI
import TallyWire

let limits = [16, 64, 1024, Wire.defaultMaxFrame, Wire.clientMaxFrame]

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked(makeSeeds)
    return 0
}

/// One thing the decoder passed on, in a comparable form.
enum Output: Equatable {
    case frame(type: UInt8, flags: UInt16, id: UInt32, payload: [UInt8])
    case error(ErrorMessage)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count <= 1 << 16 else { return 0 }
    var input = FuzzInput(start, count)
    let maxLength = limits[Int(input.byte()) % limits.count]
    let cut = input.byte()
    let stream = input.rest()

    let got = decode(stream, maxLength: maxLength, cut: cut)
    let expected = reference(stream, maxLength: maxLength)
    guard got == expected else {
        fuzzFailure("the decoder passed on \(got.count) outputs, the reference reading \(expected.count): \(got) vs \(expected)")
    }
    for case .frame(_, _, _, let payload) in got { readPayload(payload) }
    return 0
}

/// The stream through `FrameDecoder`, in chunks: whole when `cut` is 0, else pseudo-random
/// pieces of 1 to `cut % 64 + 1` bytes.
func decode(_ stream: [UInt8], maxLength: Int, cut: UInt8) -> [Output] {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxLength: maxLength)))
    var out: [Output] = []
    func drain() {
        while let f = try? channel.readInbound(as: InboundFrame.self) {
            switch f {
            case .frame(let frame):
                var p = frame.payload
                out.append(.frame(type: frame.type, flags: frame.flags, id: frame.requestID,
                                  payload: p.readBytes(length: p.readableBytes) ?? []))
            case .framingError(let e): out.append(.error(e))
            }
        }
    }
    var at = 0
    var state = UInt32(cut) &* 2_654_435_761 | 1
    while at < stream.count {
        var n = stream.count - at
        if cut != 0 {
            state ^= state << 13; state ^= state >> 17; state ^= state << 5
            n = min(n, Int(state % (UInt32(cut) % 64 + 1)) + 1)
        }
        var b = channel.allocator.buffer(capacity: n)
        b.writeBytes(stream[at..<(at + n)])
        do { try channel.writeInbound(b) } catch { fuzzFailure("writeInbound threw \(error)") }
        drain()
        at += n
    }
    do { _ = try channel.finish() } catch { fuzzFailure("finish threw \(error)") }
    drain()
    return out
}

/// §2 read directly: frames until the stream ends (a partial frame is dropped) or a framing
/// error (after which nothing is read).
func reference(_ s: [UInt8], maxLength: Int) -> [Output] {
    var out: [Output] = []
    var at = 0
    func be<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
        var v: T = 0
        for k in 0..<MemoryLayout<T>.size { v = v << 8 | T(s[i + k]) }
        return v
    }
    while s.count - at >= 4 {
        let length = be(at, UInt32.self)
        if length < 8 { out.append(.error(.malformedFrame("a frame's length must be at least 8; got \(length)"))); break }
        if Int(length) > maxLength { out.append(.error(.frameTooLarge(maxLength))); break }
        if s.count - at >= 5, s[at + 4] != Wire.version { out.append(.error(.unsupportedVersion(s[at + 4]))); break }
        guard s.count - at >= 4 + Int(length) else { break }
        out.append(.frame(type: s[at + 5], flags: be(at + 6, UInt16.self), id: be(at + 8, UInt32.self),
                          payload: Array(s[(at + 12)..<(at + 4 + Int(length))])))
        at += 4 + Int(length)
    }
    return out
}

/// Reads `payload` as every message type; one that reads is written back and must give the
/// same bytes (every field is read, nothing may follow, and no length is rounded).
func readPayload(_ payload: [UInt8]) {
    var buffer = ByteBuffer(bytes: payload)
    func same(_ what: String, _ write: (inout ByteBuffer) -> Void) {
        var b = ByteBuffer()
        write(&b)
        guard b == buffer else { fuzzFailure("\(what) written back differs from the payload it was read from") }
    }
    if let m = try? HelloMessage(reading: buffer) { same("HELLO") { m.write(to: &$0) } }
    if let m = try? WelcomeMessage(reading: buffer) { same("WELCOME") { m.write(to: &$0) } }
    if let m = try? QueryMessage(reading: buffer) { same("QUERY") { m.write(to: &$0) } }
    if let m = try? ErrorMessage(reading: buffer) {
        same("ERROR") { m.write(to: &$0) }
        _ = m.description
    }
    // APPEND: a client id, then the body.
    var r = PayloadReader(buffer)
    if let client = try? r.uuid("APPEND client_id") {
        var rest = r.rest()
        let body = rest.readBytes(length: rest.readableBytes) ?? []
        same("APPEND") { $0.writeUUID(client); $0.writeBytes(body) }
    }
    // GOAWAY: one str16.
    r = PayloadReader(buffer)
    if let reason = try? r.str16("GOAWAY reason"), (try? r.end("GOAWAY")) != nil {
        same("GOAWAY") { $0.writeStr16(reason) }
    }
    // RESULT: a format, then the body; a compact body is decoded as the client does.
    if let format = buffer.readInteger(as: UInt8.self), format == WireFormat.compact.rawValue {
        let body = buffer.readBytes(length: buffer.readableBytes) ?? []
        if let doc = try? CompactValue(decoding: body) { _ = doc.json }
    }
}

func makeSeeds() throws -> [(name: String, bytes: [UInt8])] {
    func frame(_ type: MessageType, id: UInt32 = 1, flags: UInt16 = 0, _ payload: (inout ByteBuffer) -> Void = { _ in }) -> [UInt8] {
        var b = ByteBuffer()
        b.writeFrame(type: type, flags: flags, requestID: id, payload: payload)
        return b.readBytes(length: b.readableBytes)!
    }
    let client = UUID(uuidString: "5f0c1a2e-7d3b-4c8e-9a61-0b2d4e6f8a10")!
    let hello = frame(.hello) { HelloMessage(token: "YOUR_API_TOKEN", clientName: "fuzz").write(to: &$0) }
    var seeds: [(String, [UInt8])] = []
    func add(_ name: String, limit: Int = 3, cut: UInt8 = 0, _ stream: [UInt8]) {
        seeds.append((name, [UInt8(limit), cut] + stream))
    }
    add("hello", hello)
    add("hello-cut", cut: 7, hello)
    add("welcome", frame(.welcome) { WelcomeMessage(maxFrame: 1 << 20, maxInFlight: 256, server: "tally/1").write(to: &$0) })
    var session = hello
    for (i, q) in SeedQueries.all.enumerated() where i % 3 == 0 {
        let query = frame(.query, id: UInt32(i + 2)) {
            QueryMessage(endpoint: q.wire, format: UInt8(i % 2), client: client, parameters: QueryString.parse(q.query)).write(to: &$0)
        }
        session += query
        add("query-\(i)", cut: UInt8(i), query)
    }
    add("session", cut: 13, session)
    let answer = try SeedQueries.answer(wire: 5, query: SeedQueries.all[12].query, format: .compact)
    add("result-compact", frame(.result, id: 2) { $0.writeInteger(UInt8(1)); $0.writeBytes(answer) })
    add("result-json", frame(.result, id: 3, flags: Wire.flagDeprecated) { $0.writeInteger(UInt8(0)); $0.writeBytes(Array(#"{"a":1}"#.utf8)) })
    add("error", frame(.error, id: 4, flags: Wire.flagFatal) { ErrorMessage.badToken.write(to: &$0) })
    add("error-parameter", frame(.error, id: 4) {
        ErrorMessage(status: 400, code: "invalid_parameter", parameter: "start_date", message: "no").write(to: &$0)
    })
    add("ping-pong", frame(.ping, id: 5) { $0.writeString("12345678") } + frame(.pong, id: 5) { $0.writeString("12345678") })
    add("goaway", frame(.goaway, id: 0) { $0.writeStr16("the server is shutting down") })
    add("append", frame(.append, id: 6) {
        $0.writeUUID(client)
        $0.writeString(#"{"events":[{"user_id":"0f4b5a6c-0000-4000-8000-000000000001","application_id":"0f4b5a6c-0000-4000-8000-000000000002","activity_date":"2026-01-02"}]}"#)
    })
    add("short-length", [0, 0, 0, 7, 1, 1, 0, 0])
    add("too-large", limit: 1, [0, 0, 0, 65] + Array(repeating: 0, count: 8))
    add("bad-version", hello.prefix(4) + [9] + hello.dropFirst(5))
    add("partial", Array(hello.dropLast(3)))
    return seeds
}

/// SwiftPM's debug builds link `main` to this symbol: hand over to libFuzzer's driver.
@_cdecl("FuzzFrame_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz(UnsafeRawPointer($0), size) } ?? 0 }
}
