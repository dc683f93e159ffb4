import CLZ4

/// LZ4 block compression, the one path the snapshots' chunks take, and the column segments read
/// from snapshots of format 3 and before (new segments are deflated: ``Deflate``).
enum LZ4Block {
    /// `raw` compressed into an array of its exact size, or `nil` when LZ4 does not make it
    /// smaller (the caller then stores it as it is). A buffer sized for LZ4's bound and trimmed
    /// in place would keep that capacity: built segments held 30.6 MB for 19.9 MiB of bytes on the
    /// 48.1 M-row client (docs/BENCHMARKS.md, "Memory after appends and merges").
    static func compress(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard raw.count > 0 else { return nil }
        let bound = Int(LZ4_compressBound(Int32(raw.count)))
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: bound) { d in
            let n = raw.withMemoryRebound(to: CChar.self) { s in
                LZ4_compress_default(s.baseAddress, d.baseAddress, Int32(raw.count), Int32(bound))
            }
            guard n > 0, Int(n) < raw.count else { return nil }
            return Array(UnsafeRawBufferPointer(start: d.baseAddress, count: Int(n)))
        }
    }

    /// Decompresses `src` into `dst`; whether it filled exactly `dst.count` bytes.
    static func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Bool {
        guard let s = src.baseAddress, let d = dst.baseAddress else { return src.count == 0 && dst.count == 0 }
        let n = LZ4_decompress_safe(s.assumingMemoryBound(to: CChar.self), d.assumingMemoryBound(to: CChar.self),
                                    Int32(src.count), Int32(dst.count))
        return Int(n) == dst.count
    }
}
