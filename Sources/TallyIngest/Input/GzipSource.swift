import CZlib

/// Inflates a gzip stream (RFC 1952, concatenated members allowed) as it is read.
public final class GzipSource<Inner: ByteSource>: ByteSource {
    var inner: Inner
    var stream = z_stream()
    var input: UnsafeMutableRawBufferPointer
    var innerDone = false
    var memberDone = false
    static var chunk: Int { 1 << 18 }

    public init(_ inner: Inner) throws {
        self.inner = inner
        input = .allocate(byteCount: Self.chunk, alignment: 16)
        // 15 + 16: gzip wrapper only.
        let rc = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw DecompressionError(truncated: false, message: "zlib init failed (\(rc))") }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    public var storedBytesRead: Int { inner.storedBytesRead }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = UInt32(buffer.count)
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !innerDone {
                let n = try inner.read(into: input)
                if n == 0 { innerDone = true } else {
                    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = UInt32(n)
                }
            }
            if stream.avail_in == 0 && innerDone {
                if memberDone { break }
                throw DecompressionError(truncated: true, message: "gzip stream ends before its end marker")
            }
            let rc = inflate(&stream, Z_NO_FLUSH)
            switch rc {
            case Z_STREAM_END:
                // Another member may follow; a reset with no more input is harmless.
                memberDone = true
                inflateReset(&stream)
            case Z_OK:
                memberDone = false
            case Z_BUF_ERROR:
                continue  // needs more input
            default:
                let msg = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw DecompressionError(truncated: false, message: "corrupt gzip data: \(msg)")
            }
        }
        return buffer.count - Int(stream.avail_out)
    }
}
