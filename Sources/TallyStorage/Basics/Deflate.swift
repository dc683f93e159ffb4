import CZlib

/// zlib's deflate, the codec of the column segments (``Segment/Codec/deflate``).
enum Deflate {
    /// `raw` deflated (zlib format, at `level`) into an array of its exact size, or `nil` when
    /// that is not smaller (the caller then stores it as it is).
    static func compress(_ raw: UnsafeBufferPointer<UInt8>, level: Int32) -> [UInt8]? {
        guard let source = raw.baseAddress, raw.count > 0 else { return nil }
        let bound = Int(compressBound(uLong(raw.count)))
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bound) { d in
            var length = uLongf(bound)
            guard compress2(d.baseAddress, &length, source, uLong(raw.count), level) == Z_OK, Int(length) < raw.count else { return nil }
            return Array(UnsafeBufferPointer(start: d.baseAddress, count: Int(length)))
        }
    }

    /// Inflates `src` into `dst`; whether it was one whole zlib stream that filled exactly
    /// `dst.count` bytes (a wrong checksum, a cut stream or bytes past its end refuse it).
    static func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Bool {
        guard let s = src.baseAddress, let d = dst.baseAddress else { return false }
        var length = uLongf(dst.count), consumed = uLong(src.count)
        let status = uncompress2(d.assumingMemoryBound(to: Bytef.self), &length, s.assumingMemoryBound(to: Bytef.self), &consumed)
        return status == Z_OK && Int(length) == dst.count && Int(consumed) == src.count
    }
}
