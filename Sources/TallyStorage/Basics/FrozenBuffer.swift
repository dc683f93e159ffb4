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
