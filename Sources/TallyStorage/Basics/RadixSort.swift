/// Sorts `keys` ascending with an LSD radix sort on 16-bit digits, skipping digits above
/// `significantBits`. Used to order a client's usage rows packed into one `UInt64` each.
/// - Complexity: O(n × ⌈significantBits / 16⌉), plus one buffer of n keys.
public func radixSort(_ keys: inout [UInt64], significantBits: Int) {
    let n = keys.count
    if n < 2 { return }
    if n < 4096 {
        keys.sort()
        return
    }
    let passes = max(1, (significantBits + 15) / 16)
    var tmp = [UInt64](repeating: 0, count: n)
    var counts = [Int](repeating: 0, count: 65537)
    keys.withUnsafeMutableBufferPointer { a in
        tmp.withUnsafeMutableBufferPointer { b in
            var src = a.baseAddress!, dst = b.baseAddress!
            for pass in 0..<passes {
                let shift = UInt64(pass * 16)
                for i in 0..<counts.count { counts[i] = 0 }
                counts.withUnsafeMutableBufferPointer { c in
                    for i in 0..<n { c[Int((src[i] &>> shift) & 0xFFFF) &+ 1] &+= 1 }
                    for i in 1...65536 { c[i] &+= c[i &- 1] }
                    for i in 0..<n {
                        let d = Int((src[i] &>> shift) & 0xFFFF)
                        dst[c[d]] = src[i]
                        c[d] &+= 1
                    }
                }
                swap(&src, &dst)
            }
            if src != a.baseAddress! { a.baseAddress!.update(from: src, count: n) }
        }
    }
}
