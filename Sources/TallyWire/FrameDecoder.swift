import NIOCore

/// What the frame decoder hands on: a frame, or the framing error after which the stream can no
/// longer be trusted (everything after it is discarded).
public enum InboundFrame: Sendable {
    case frame(Frame)
    case framingError(ErrorMessage)
}

/// Cuts the byte stream into frames (docs/PROTOCOL.md §2). A length below the header size or
/// above `maxLength`, or a version other than 1, ends decoding: one ``InboundFrame/framingError``
/// is passed on and the rest of the stream is dropped.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundFrame

    public let maxLength: Int
    var failed = false

    public init(maxLength: Int) { self.maxLength = maxLength }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if failed {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        if length < UInt32(Wire.headerBytes) {
            return fail(context, &buffer, .malformedFrame("a frame's length must be at least \(Wire.headerBytes); got \(length)"))
        }
        if Int(length) > maxLength { return fail(context, &buffer, .frameTooLarge(maxLength)) }
        if let version = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self), version != Wire.version {
            return fail(context, &buffer, .unsupportedVersion(version))
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 5)
        let type = buffer.readInteger(as: UInt8.self)!
        let flags = buffer.readInteger(as: UInt16.self)!
        let id = buffer.readInteger(as: UInt32.self)!
        let payload = buffer.readSlice(length: Int(length) - Wire.headerBytes)!
        context.fireChannelRead(NIOAny(InboundFrame.frame(Frame(type: type, flags: flags, requestID: id, payload: payload))))
        return .continue
    }

    mutating func fail(_ context: ChannelHandlerContext, _ buffer: inout ByteBuffer, _ e: ErrorMessage) -> DecodingState {
        failed = true
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        context.fireChannelRead(NIOAny(InboundFrame.framingError(e)))
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        // Whole frames still buffered are passed on; a partial one at the end of the stream is dropped.
        let state = try decode(context: context, buffer: &buffer)
        if state == .needMoreData { buffer.moveReaderIndex(forwardBy: buffer.readableBytes) }
        return state
    }
}
