import Foundation

/// One frame of the binary protocol as read off a raw socket (docs/PROTOCOL.md §2).
public struct RawFrame: Equatable {
    public var type: UInt8
    public var flags: UInt16
    public var requestID: UInt32
    public var payload: [UInt8]

    public init(type: UInt8, flags: UInt16, requestID: UInt32, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.requestID = requestID
        self.payload = payload
    }

    /// An ERROR frame's status and code (nil for other frames).
    public var error: (status: Int, code: String)? {
        guard type == 5, payload.count >= 4 else { return nil }
        let status = Int(payload[0]) << 8 | Int(payload[1])
        let n = Int(payload[2]) << 8 | Int(payload[3])
        guard payload.count >= 4 + n else { return nil }
        return (status, String(decoding: payload[4..<(4 + n)], as: UTF8.self))
    }
}

/// Frame building by hand, independent of the server's and client's own codecs.
public enum RawFrames {
    public static func frame(type: UInt8, id: UInt32, flags: UInt16 = 0, version: UInt8 = 1, payload: [UInt8] = []) -> [UInt8] {
        be32(UInt32(8 + payload.count)) + [version, type] + be16(flags) + be32(id) + payload
    }

    public static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    public static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    public static func str16(_ s: String) -> [UInt8] { be16(UInt16(s.utf8.count)) + Array(s.utf8) }

    public static func hello(id: UInt32 = 1, token: String, name: String = "test") -> [UInt8] {
        frame(type: 1, id: id, payload: str16(token) + str16(name))
    }

    /// A QUERY payload: endpoint, format, the client's 16 bytes, parameters.
    public static func queryPayload(endpoint: UInt8, format: UInt8 = 0, client: [UInt8], _ params: [(String, String)]) -> [UInt8] {
        [endpoint, format] + client + be16(UInt16(params.count)) + params.flatMap { str16($0.0) + str16($0.1) }
    }
}

extension HTTPTestClient {
    /// Reads one frame; `nil` when the server closed the connection first.
    public func readFrame() throws -> RawFrame? {
        do {
            while pending.count < 4 { try fill() }
            let length = Int(pending[0]) << 24 | Int(pending[1]) << 16 | Int(pending[2]) << 8 | Int(pending[3])
            while pending.count < 4 + length { try fill() }
            let f = RawFrame(type: pending[5], flags: UInt16(pending[6]) << 8 | UInt16(pending[7]),
                             requestID: UInt32(pending[8]) << 24 | UInt32(pending[9]) << 16 | UInt32(pending[10]) << 8 | UInt32(pending[11]),
                             payload: Array(pending[12..<(4 + length)]))
            pending.removeFirst(4 + length)
            return f
        } catch let e as Failure where e.description == "connection closed" {
            return nil
        }
    }

    /// Reads frames until one with `id` and `type` arrives (returning the ones before it), or
    /// the connection closes (`nil`).
    public func readFrames(until type: UInt8, id: UInt32) throws -> [RawFrame]? {
        var seen: [RawFrame] = []
        while let f = try readFrame() {
            if f.type == type && f.requestID == id { return seen }
            seen.append(f)
        }
        return nil
    }
}

extension HTTPTestClient {
    /// Ends the sending side (the peer reads end of stream) and keeps reading possible.
    public func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }
}
