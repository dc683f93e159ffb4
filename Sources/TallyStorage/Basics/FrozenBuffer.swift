/// Copies an array into a buffer of exactly its size, owned by an immutable structure that
/// frees it in `deinit`: hot loops then read raw pointers with no reference counting.
@usableFromInline
func frozenCopy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
    let p = UnsafeMutableBufferPointer<T>.allocate(capacity: max(a.count, 1))
    _ = p.initialize(from: a)
    return UnsafeMutableBufferPointer(rebasing: p[0..<a.count])
}
