/// A growing byte buffer that documents are written into a token at a time: one capacity check
/// per token, then raw stores (a key, a UUID or a short name is one check and a copy, not one
/// `append` per byte: per-byte appends were a fifth of a per-app list's time).
struct OutputBytes {
    /// Written bytes are `storage[0..<count]`; the rest is room to grow into.
    var storage: [UInt8]
    var count = 0

    init(capacity: Int) { storage = Self.room(max(64, capacity), keeping: []) }

    /// The bytes written so far.
    var bytes: [UInt8] { Array(storage[..<count]) }

    /// The bytes written, taken without a copy (the buffer is cut to them); the writer is left
    /// empty.
    mutating func take() -> [UInt8] {
        var all = storage
        storage = []
        all.removeSubrange(count..<all.count)
        count = 0
        return all
    }

    /// A buffer of `n` bytes starting with `old`'s; the rest is left unwritten (nothing reads
    /// past `count`, so zeroing it would be wasted work: it was 2% of a list's time).
    static func room(_ n: Int, keeping old: ArraySlice<UInt8>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: n) { buf, initialized in
            old.withUnsafeBufferPointer { o in
                if let from = o.baseAddress { buf.baseAddress!.initialize(from: from, count: o.count) }
            }
            initialized = n
        }
    }

    /// Runs `body` on room for at most `n` more bytes; it returns how many it wrote.
    @inline(__always)
    mutating func write(atMost n: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        if count &+ n > storage.count { grow(to: count &+ n) }
        let at = count
        count = at &+ storage.withUnsafeMutableBufferPointer { body($0.baseAddress! + at) }
    }

    @inline(__always) mutating func append(_ b: UInt8) { write(atMost: 1) { $0[0] = b; return 1 } }

    /// Appends `bytes`.
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let from = bytes.baseAddress, !bytes.isEmpty else { return }
        write(atMost: bytes.count) { p in p.update(from: from, count: bytes.count); return bytes.count }
    }

    @inline(never)
    mutating func grow(to n: Int) {
        storage = Self.room(max(n, 2 &* storage.count), keeping: storage[..<count])
    }

    /// Writes `v` as an unsigned LEB128 varint at `p`; returns how many bytes (at most 10).
    @inline(__always) static func varint(_ v: UInt64, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var v = v
        var i = 0
        while v >= 0x80 {
            p[i] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            i &+= 1
        }
        p[i] = UInt8(truncatingIfNeeded: v)
        return i &+ 1
    }
}
