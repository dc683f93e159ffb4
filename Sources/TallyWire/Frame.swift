import Foundation
import NIOCore

/// The binary protocol's framing (docs/PROTOCOL.md §2): a big-endian `u32` length of what
/// follows, then `version`, `type`, `flags` and `request_id`, then the payload.
public enum Wire {
    public static let version: UInt8 = 1
    /// Bytes after the length field that every frame has: version, type, flags, request id.
    public static let headerBytes = 8
    /// The largest frame `length` the server takes from a client by default.
    public static let defaultMaxFrame = 1 << 20
    /// The largest frame a client takes from the server.
    public static let clientMaxFrame = 64 << 20
    public static let defaultMaxInFlight = 256
    public static let maxPingPayload = 64

    /// Flag of RESULT: the endpoint is deprecated.
    public static let flagDeprecated: UInt16 = 0x0001
    /// Flag of ERROR: the server closes the connection after this frame.
    public static let flagFatal: UInt16 = 0x0001
}

/// Message types (docs/PROTOCOL.md §3).
public enum MessageType: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case welcome = 0x02
    case query = 0x03
    case result = 0x04
    case error = 0x05
    case ping = 0x06
    case pong = 0x07
    case goaway = 0x08
    case append = 0x09
}

/// One frame, its payload still undecoded.
public struct Frame: Sendable {
    public var type: UInt8
    public var flags: UInt16
    public var requestID: UInt32
    public var payload: ByteBuffer

    public init(type: UInt8, flags: UInt16 = 0, requestID: UInt32, payload: ByteBuffer) {
        self.type = type
        self.flags = flags
        self.requestID = requestID
        self.payload = payload
    }

    public var messageType: MessageType? { MessageType(rawValue: type) }
}

extension ByteBuffer {
    /// Writes one frame; `payload` writes the payload after the header, and the length is filled
    /// in from what it wrote.
    @inlinable
    public mutating func writeFrame(type: MessageType, flags: UInt16 = 0, requestID: UInt32,
                                    payload: (inout ByteBuffer) -> Void = { _ in }) {
        let start = writerIndex
        writeInteger(UInt32(0))
        writeInteger(Wire.version)
        writeInteger(type.rawValue)
        writeInteger(flags)
        writeInteger(requestID)
        payload(&self)
        setInteger(UInt32(writerIndex - start - 4), at: start)
    }

    @inlinable
    public mutating func writeStr16(_ s: String) {
        var s = s
        s.withUTF8 { u in
            writeInteger(UInt16(Swift.min(u.count, 0xFFFE)))
            writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u).prefix(0xFFFE)))
        }
    }

    @inlinable
    public mutating func writeOptStr16(_ s: String?) {
        if let s { writeStr16(s) } else { writeInteger(UInt16(0xFFFF)) }
    }

    public mutating func writeUUID(_ u: UUID) {
        withUnsafeBytes(of: u.uuid) { _ = writeBytes($0) }
    }
}

/// Why a frame's payload could not be read.
public struct MalformedPayload: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Reads a payload field by field, refusing short fields and invalid UTF-8.
public struct PayloadReader {
    public var buffer: ByteBuffer

    public init(_ buffer: ByteBuffer) { self.buffer = buffer }

    public var isAtEnd: Bool { buffer.readableBytes == 0 }

    public mutating func u8(_ what: String) throws(MalformedPayload) -> UInt8 {
        guard let v = buffer.readInteger(as: UInt8.self) else { throw MalformedPayload("\(what): payload ends early") }
        return v
    }

    public mutating func u16(_ what: String) throws(MalformedPayload) -> UInt16 {
        guard let v = buffer.readInteger(as: UInt16.self) else { throw MalformedPayload("\(what): payload ends early") }
        return v
    }

    public mutating func u32(_ what: String) throws(MalformedPayload) -> UInt32 {
        guard let v = buffer.readInteger(as: UInt32.self) else { throw MalformedPayload("\(what): payload ends early") }
        return v
    }

    public mutating func str16(_ what: String) throws(MalformedPayload) -> String {
        let n = try u16(what)
        guard n != 0xFFFF else { throw MalformedPayload("\(what) may not be absent") }
        return try text(Int(n), what)
    }

    public mutating func optStr16(_ what: String) throws(MalformedPayload) -> String? {
        let n = try u16(what)
        return n == 0xFFFF ? nil : try text(Int(n), what)
    }

    mutating func text(_ n: Int, _ what: String) throws(MalformedPayload) -> String {
        guard let bytes = buffer.readSlice(length: n) else { throw MalformedPayload("\(what): payload ends early") }
        guard let s = bytes.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            throw MalformedPayload("\(what) is not valid UTF-8")
        }
        return s
    }

    public mutating func uuid(_ what: String) throws(MalformedPayload) -> UUID {
        guard let b = buffer.readBytes(length: 16) else { throw MalformedPayload("\(what): payload ends early") }
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    public mutating func rest() -> ByteBuffer { buffer.readSlice(length: buffer.readableBytes)! }

    public func end(_ what: String) throws(MalformedPayload) {
        guard isAtEnd else { throw MalformedPayload("\(what): \(buffer.readableBytes) bytes after the last field") }
    }
}
