import CLZ4

/// Decompresses the LZ4 frame format (as the `lz4` command writes; concatenated frames allowed)
/// as it is read.
public final class LZ4FrameSource<Inner: ByteSource>: ByteSource {
    var inner: Inner
    var ctx: OpaquePointer?
    let input: UnsafeMutableRawBufferPointer
    var inPos = 0, inEnd = 0
    var innerDone = false
    /// The last `LZ4F_decompress` hint: 0 once a frame is complete.
    var hint = 1
    var sawFrame = false

    public init(_ inner: Inner) throws {
        self.inner = inner
        input = .allocate(byteCount: 1 << 18, alignment: 16)
        var c: OpaquePointer?
        let rc = LZ4F_createDecompressionContext(&c, UInt32(LZ4F_VERSION))
        if LZ4F_isError(rc) != 0 { throw DecompressionError(truncated: false, message: "lz4 init failed") }
        ctx = c
    }

    deinit {
        LZ4F_freeDecompressionContext(ctx)
        input.deallocate()
    }

    public var storedBytesRead: Int { inner.storedBytesRead }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        while produced < buffer.count {
            if inPos == inEnd && !innerDone {
                inEnd = try inner.read(into: input)
                inPos = 0
                if inEnd == 0 { innerDone = true }
            }
            if inPos == inEnd && innerDone {
                if hint != 0 || !sawFrame {
                    throw DecompressionError(truncated: true, message: "LZ4 frame ends before its end mark")
                }
                break
            }
            var dstSize = buffer.count - produced
            var srcSize = inEnd - inPos
            let rc = LZ4F_decompress(ctx, buffer.baseAddress! + produced, &dstSize,
                                     input.baseAddress! + inPos, &srcSize, nil)
            if LZ4F_isError(rc) != 0 {
                let name = String(cString: LZ4F_getErrorName(rc))
                throw DecompressionError(truncated: false, message: "corrupt LZ4 frame: \(name)")
            }
            sawFrame = true
            hint = rc
            inPos += srcSize
            produced += dstSize
            if srcSize == 0 && dstSize == 0 && inPos < inEnd { break }
        }
        return produced
    }
}
