import Foundation
import NIOCore
import Testing
import TallyAPI
import TallyQuery
@testable import TallyServer
import TallyStorage
import TallyWire

/// The binary protocol's connection logic without a socket: every row of PROTOCOL.md §5, the
/// precedence between them, and the life of §6 (HELLO, open, draining, idle, closed).
@Suite struct BinaryConnectionTests {
    static let token = "machine-token"
    static let client = UUID(uuidString: "11111111-2222-3333-4444-555555555555")!

    static func connection(maxInFlight: Int = 256) -> BinaryConnection {
        var limits = BinaryLimits()
        limits.maxInFlight = maxInFlight
        limits.idleTimeout = .seconds(300)
        let tokens = TokenStore(entries: [TokenEntry(name: "all", digest: TokenStore.sha256(token), clients: nil)])
        return BinaryConnection(tokens: tokens, limits: limits)
    }

    static func frame(_ type: MessageType, id: UInt32, _ write: (inout ByteBuffer) -> Void = { _ in }) -> Frame {
        var b = ByteBuffer()
        write(&b)
        return Frame(type: type.rawValue, requestID: id, payload: b)
    }

    static func hello(_ token: String = token, id: UInt32 = 1) -> Frame {
        frame(.hello, id: id) { HelloMessage(token: token).write(to: &$0) }
    }

    static func query(endpoint: UInt8 = 5, format: UInt8 = 0, id: UInt32, parameters: [(String, String)] = []) -> Frame {
        frame(.query, id: id) { QueryMessage(endpoint: endpoint, format: format, client: client, parameters: parameters).write(to: &$0) }
    }

    /// An open connection.
    static func open(maxInFlight: Int = 256) -> BinaryConnection {
        var c = connection(maxInFlight: maxInFlight)
        _ = c.received(hello())
        return c
    }

    /// The ERROR a `.send` or `.sendAndClose` carries, with its id and whether it is fatal.
    static func error(_ a: BinaryConnection.Action) -> (ErrorMessage, UInt32, fatal: Bool, closes: Bool)? {
        let frame: BinaryConnection.Outbound, closes: Bool
        switch a {
        case .send(let f): (frame, closes) = (f, false)
        case .sendAndClose(let f): (frame, closes) = (f, true)
        default: return nil
        }
        guard case .error(let e) = frame.payload, frame.type == .error else { return nil }
        return (e, frame.requestID, frame.flags & Wire.flagFatal != 0, closes)
    }

    static func job(_ a: BinaryConnection.Action) -> BinaryConnection.QueryJob? {
        if case .query(let j) = a { return j }
        return nil
    }

    @Test func helloOpensTheConnectionAndWelcomesWithTheLimits() throws {
        var c = Self.connection(maxInFlight: 7)
        #expect(c.state == .awaitingHello)
        guard case .send(let w) = c.received(Self.hello(id: 42)), case .welcome(let welcome) = w.payload else {
            Issue.record("no WELCOME")
            return
        }
        #expect(w.type == .welcome && w.requestID == 42)
        #expect(welcome.maxInFlight == 7 && welcome.maxFrame == UInt32(Wire.defaultMaxFrame))
        #expect(c.state == .open && c.token?.name == "all")
        // What is written reads back as the same WELCOME.
        var bytes = ByteBuffer()
        w.write(to: &bytes)
        #expect(bytes.readInteger(as: UInt32.self) == UInt32(bytes.readableBytes))
        bytes.moveReaderIndex(forwardBy: Wire.headerBytes)
        let back = try WelcomeMessage(reading: bytes)
        #expect(back.maxInFlight == 7 && back.server == "tally/\(Wire.version)")
    }

    @Test func anythingButAGoodHelloFirstIsFatal() {
        let cases: [(Frame, UInt16, String, UInt32)] = [
            (Self.query(id: 5), 401, "unauthorized", 5),
            (Self.frame(.ping, id: 6), 401, "unauthorized", 6),
            (Frame(type: 0x7F, requestID: 8, payload: ByteBuffer()), 401, "unauthorized", 8),
            (Self.hello("wrong"), 401, "unauthorized", 1),
            (Self.hello(""), 401, "unauthorized", 1),
            (Self.frame(.hello, id: 3) { $0.writeBytes([0, 40, 65]) }, 400, "malformed_request", 3),
        ]
        for (frame, status, code, id) in cases {
            var c = Self.connection()
            let e = Self.error(c.received(frame))
            #expect(e?.0.status == status && e?.0.code == code && e?.1 == id, "\(code)")
            #expect(e?.fatal == true && e?.closes == true)
            #expect(c.state == .closed)
            // Nothing more is answered on a closed connection, not even a good HELLO.
            if case .none = c.received(Self.hello()) {} else { Issue.record("answered after close") }
        }
    }

    @Test func framingErrorsAreFatalWithIdZero() {
        for state in ["awaiting", "open"] {
            var c = state == "open" ? Self.open() : Self.connection()
            let e = Self.error(c.received(.framingError(.frameTooLarge(1 << 20))))
            #expect(e?.0.code == "frame_too_large" && e?.1 == 0 && e?.fatal == true && e?.closes == true)
            #expect(c.state == .closed)
            if case .none = c.received(.framingError(.malformedFrame("again"))) {} else { Issue.record("second fatal error") }
        }
    }

    @Test func openConnectionErrorsKeepItOpen() {
        var c = Self.open()
        let cases: [(Frame, UInt16, String)] = [
            (Self.hello(), 400, "already_authenticated"),
            (Frame(type: 0x7F, requestID: 9, payload: ByteBuffer()), 400, "unknown_message_type"),
            (Frame(type: 0, requestID: 9, payload: ByteBuffer()), 400, "unknown_message_type"),
            (Self.frame(.welcome, id: 9), 400, "unknown_message_type"),
            (Self.frame(.result, id: 9), 400, "unknown_message_type"),
            (Self.frame(.ping, id: 9) { $0.writeBytes([UInt8](repeating: 1, count: Wire.maxPingPayload + 1)) }, 400, "malformed_request"),
            (Self.frame(.query, id: 9) { $0.writeBytes([5, 0, 1]) }, 400, "malformed_request"),
            (Self.frame(.query, id: 9) { QueryMessage(endpoint: 5, format: 0, client: Self.client, parameters: []).write(to: &$0); $0.writeInteger(UInt8(0)) },
             400, "malformed_request"),
            (Self.frame(.append, id: 9) { $0.writeBytes([1, 2, 3]) }, 400, "malformed_request"),
            (Self.query(endpoint: 0, id: 9), 404, "not_found"),
            (Self.query(endpoint: 200, id: 9), 404, "not_found"),
            (Self.query(endpoint: 5, format: 9, id: 9), 400, "unsupported_format"),
        ]
        for (frame, status, code) in cases {
            let e = Self.error(c.received(frame))
            #expect(e?.0.status == status && e?.0.code == code, "\(code) for type \(frame.type)")
            #expect(e?.1 == 9 || frame.messageType == .hello)
            #expect(e?.fatal == false && e?.closes == false)
            #expect(c.state == .open && c.inFlight == 0)
        }
    }

    @Test func theFirstCheckThatAppliesWins() {
        var c = Self.open(maxInFlight: 1)
        // Unknown endpoint and unknown format: the endpoint is checked first.
        #expect(Self.error(c.received(Self.query(endpoint: 99, format: 9, id: 1)))?.0.code == "not_found")
        // Fill the one slot; then a bad endpoint or format is still that error, not 429.
        #expect(Self.job(c.received(Self.query(id: 2))) != nil)
        #expect(Self.error(c.received(Self.query(endpoint: 99, id: 3)))?.0.code == "not_found")
        #expect(Self.error(c.received(Self.query(format: 9, id: 3)))?.0.code == "unsupported_format")
        #expect(Self.error(c.received(Self.query(id: 3)))?.0.code == "too_many_in_flight")
        // A PING is not a request in flight: answered while the slots are full.
        if case .send(let p) = c.received(Self.frame(.ping, id: 4) { $0.writeBytes([7, 8]) }), case .pong(var b) = p.payload {
            #expect(p.requestID == 4 && b.readBytes(length: b.readableBytes) == [7, 8])
        } else { Issue.record("no PONG") }
        // While draining, shutting_down wins over a bad payload.
        _ = c.quiesce()
        #expect(Self.error(c.received(Self.frame(.query, id: 5) { $0.writeBytes([1]) }))?.0.code == "shutting_down")
        #expect(Self.error(c.received(Self.query(endpoint: 99, id: 5)))?.0.status == 503)
        // An unknown type is still that, and a second HELLO still that.
        #expect(Self.error(c.received(Frame(type: 0x7F, requestID: 6, payload: ByteBuffer())))?.0.code == "unknown_message_type")
        #expect(Self.error(c.received(Self.hello()))?.0.code == "already_authenticated")
    }

    @Test func queriesCarryWhatTheRouteNeeds() {
        var c = Self.open()
        let j = Self.job(c.received(Self.query(endpoint: 12, format: 1, id: 77,
                                               parameters: [("user_id", "abc"), ("as_of", "2026-02-01")])))
        #expect(j?.requestID == 77 && j?.route.wire == 12 && j?.format == .compact)
        #expect(j?.pathValue == "abc" && j?.parameters.count == 2 && j?.client == UUID128(Self.client))
        #expect(j?.token.name == "all" && c.inFlight == 1)
        // A route without a path parameter has none, whatever is sent.
        #expect(Self.job(c.received(Self.query(endpoint: 1, id: 78, parameters: [("user_id", "x")])))?.pathValue == nil)
        #expect(c.inFlight == 2)
    }

    @Test func answersAreResultsOrErrorsAndFreeTheirSlot() {
        var c = Self.open(maxInFlight: 1)
        _ = c.received(Self.query(endpoint: 6, id: 1))
        guard case .send(let r) = c.answered(1, deprecated: true, format: .compact, result: .success([1, 2, 3])),
              case .result(let format, let body) = r.payload else { Issue.record("no RESULT"); return }
        #expect(r.type == .result && r.requestID == 1 && r.flags == Wire.flagDeprecated && format == .compact && body == [1, 2, 3])
        #expect(c.inFlight == 0)
        _ = c.received(Self.query(id: 2))
        let failure = APIError(status: 400, code: "invalid_events", message: "2 events refused",
                               rows: [.init(index: 0, field: "date", message: "not a date"), .init(index: 3, field: "", message: "duplicate")])
        let e = Self.error(c.answered(2, deprecated: false, format: .json, result: .failure(failure)))
        #expect(e?.1 == 2 && e?.0.status == 400 && e?.fatal == false)
        #expect(e?.0.message == "2 events refused — event 0 (date): not a date; event 3: duplicate")
        // The slot is free again.
        #expect(Self.job(c.received(Self.query(id: 3))) != nil)
    }

    @Test func appendsTakeTheClientAndTheBody() {
        var c = Self.open()
        let body = Array(#"{"events":[]}"#.utf8)
        guard case .append(let j) = c.received(Self.frame(.append, id: 5) { $0.writeUUID(Self.client); $0.writeBytes(body) }) else {
            Issue.record("no append"); return
        }
        #expect(j.requestID == 5 && j.client == UUID128(Self.client) && j.body == body && c.inFlight == 1)
    }

    @Test func drainingAnswersWhatIsInFlightThenCloses() {
        var c = Self.open()
        _ = c.received(Self.query(id: 1))
        _ = c.received(Self.query(id: 2))
        guard case .send(let g) = c.quiesce(), case .goaway = g.payload else { Issue.record("no GOAWAY"); return }
        #expect(g.requestID == 0 && c.state == .draining)
        if case .none = c.quiesce() {} else { Issue.record("second GOAWAY") }
        #expect(Self.error(c.received(Self.query(id: 3)))?.0.code == "shutting_down")
        #expect(Self.error(c.received(Self.frame(.append, id: 4) { $0.writeUUID(Self.client) }))?.0.code == "shutting_down")
        if case .send = c.answered(2, deprecated: false, format: .json, result: .success([])) {} else { Issue.record("first answer") }
        if case .sendAndClose(let last) = c.answered(1, deprecated: false, format: .json, result: .success([])) {
            #expect(last.requestID == 1)
        } else { Issue.record("the last answer does not close") }
        #expect(c.state == .closed && c.inFlight == 0)
    }

    @Test func quiescingAnIdleOrNewConnection() {
        var open = Self.open()
        if case .sendAndClose(let g) = open.quiesce(), case .goaway = g.payload {} else { Issue.record("open: GOAWAY then close") }
        #expect(open.state == .closed)
        var fresh = Self.connection()
        if case .close = fresh.quiesce() {} else { Issue.record("before HELLO: close without GOAWAY") }
        #expect(fresh.state == .closed)
    }

    @Test func idleClosesOnlyWithNothingInFlight() {
        var c = Self.open()
        _ = c.received(Self.query(id: 1))
        if case .none = c.idle() {} else { Issue.record("closed with a request in flight") }
        _ = c.answered(1, deprecated: false, format: .json, result: .success([]))
        guard case .sendAndClose(let g) = c.idle(), case .goaway(let reason) = g.payload else { Issue.record("no GOAWAY"); return }
        #expect(reason == "closing a connection idle for 300 s" && g.requestID == 0)
        #expect(c.state == .closed)
        // An answer that arrives after the close is dropped, and its slot still counted down.
        var d = Self.open()
        _ = d.received(Self.query(id: 1))
        _ = d.failed()
        if case .none = d.answered(1, deprecated: false, format: .json, result: .success([])) {} else { Issue.record("answer after close") }
        #expect(d.inFlight == 0)
    }
}
