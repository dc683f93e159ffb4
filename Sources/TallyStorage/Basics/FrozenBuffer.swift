/// Copies an array into a buffer of exactly its size, owned by an immutable structure that
/// frees it in `deinit`: hot loops then read raw pointers with no reference counting.
/// From `region` when one is given (``StoreMemory``), else from the heap.
@usableFromInline
func frozenCopy<T>(_ a: [T], in region: StoreMemory? = nil) -> UnsafeMutableBufferPointer<T> {
    let p = StoreMemory.allocate(T.self, capacity: a.count, in: region)
    _ = p.initialize(from: a)
    return UnsafeMutableBufferPointer(rebasing: p[0..<a.count])
}

/// Frees a buffer of ``frozenCopy(_:in:)`` or ``StoreMemory/allocate(_:capacity:in:)``.
@usableFromInline
func release<T>(_ b: UnsafeMutableBufferPointer<T>, in region: StoreMemory?) {
    if let p = b.baseAddress { StoreMemory.release(p, in: region) }
}

/// A buffer read for a structure that will own it (``SnapshotDecoder/frozen(_:)``): from the
/// current client's region when there is one, so that decoding a snapshot makes no transient
/// array per field and copies nothing twice. Freed here unless ``adopt()`` hands it over — a
/// decoder that refuses a section after reading some fields leaks nothing.
final class Frozen<T> {
    let buffer: UnsafeMutableBufferPointer<T>
    let region: StoreMemory?
    private var owned = true

    init(count: Int, region: StoreMemory?) {
        self.region = region
        buffer = StoreMemory.allocate(T.self, capacity: count, in: region)
    }

    /// The buffer, now the caller's to free (with ``release(_:in:)`` and ``region``).
    func adopt() -> UnsafeMutableBufferPointer<T> {
        owned = false
        return buffer
    }

    deinit { if owned { release(buffer, in: region) } }
}
