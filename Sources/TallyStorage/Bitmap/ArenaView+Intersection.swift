extension ArenaView {
    /// |a ∩ b| for a bitmap of this arena and one of `other` (same or another arena), without
    /// building the intersection: containers are matched by key and each pair of kinds has its
    /// own kernel (CRoaring's `*_intersection_cardinality` family), dispatched here in one place.
    /// - Complexity: O(Σ over matching keys of the pair's kernel cost).
    public func intersectionCardinality(_ a: BitmapRef, _ other: ArenaView, _ b: BitmapRef) -> Int {
        let na = containerCount(a), nb = other.containerCount(b)
        var i = 0, j = 0
        var n = 0
        while i < na && j < nb {
            let ca = slot(a, i), cb = other.slot(b, j)
            if ca.key < cb.key { i &+= 1; continue }
            if cb.key < ca.key { j &+= 1; continue }
            n &+= pairCardinality(ca, cb)
            i &+= 1
            j &+= 1
        }
        return n
    }

    @inline(__always)
    func pairCardinality(_ ca: ContainerSlot, _ cb: ContainerSlot) -> Int {
        // A packed array is read as the array it packs (no caller is hot: tests, benchmarks).
        if ca.kind == .packed { return Self.unpacked(ca) { pairCardinality($0, cb) } }
        if cb.kind == .packed { return Self.unpacked(cb) { pairCardinality(ca, $0) } }
        let pa = ca.values, pb = cb.values
        let wa = ca.words, wb = cb.words
        let words = chunkWords(ca.key)
        switch (ca.kind, cb.kind) {
        case (.array, .array):
            return Self.arrayArray(pa, ca.cardinality, pb, cb.cardinality)
        case (.array, .bitset):
            return Self.arrayBitset(pa, ca.cardinality, wb)
        case (.bitset, .array):
            return Self.arrayBitset(pb, cb.cardinality, wa)
        case (.bitset, .bitset):
            var n = 0
            for k in 0..<words { n &+= (wa[k] & wb[k]).nonzeroBitCount }
            return n
        case (.run, .array):
            return Self.runArray(pa, pb, cb.cardinality)
        case (.array, .run):
            return Self.runArray(pb, pa, ca.cardinality)
        case (.run, .bitset):
            return Self.runBitset(pa, wb)
        case (.bitset, .run):
            return Self.runBitset(pb, wa)
        case (.run, .run):
            return Self.runRun(pa, pb)
        case (.packed, _), (_, .packed):
            preconditionFailure("packed arrays are unpacked above")
        }
    }

    /// `body` with the array slot of a packed one's values.
    static func unpacked(_ c: ContainerSlot, _ body: (ContainerSlot) -> Int) -> Int {
        withUnsafeTemporaryAllocation(of: UInt16.self, capacity: c.cardinality) { buf in
            var i = 0
            forEachPacked(c.values, c.cardinality) { v in
                buf[i] = UInt16(truncatingIfNeeded: v)
                i &+= 1
            }
            return body(ContainerSlot(key: c.key, kind: .array, cardinality: c.cardinality,
                                      values: UnsafePointer(buf.baseAddress!), words: c.words))
        }
    }

    /// Merge of two sorted arrays; gallops through the longer one when sizes differ a lot.
    @inline(__always)
    static func arrayArray(_ a: UnsafePointer<UInt16>, _ na: Int, _ b: UnsafePointer<UInt16>, _ nb: Int) -> Int {
        if na > nb { return arrayArray(b, nb, a, na) }
        var n = 0
        if nb > 32 * na {
            // Binary search each value of the short array in the remaining long one.
            var lo = 0
            for i in 0..<na {
                let v = a[i]
                var hi = nb
                while lo < hi {
                    let mid = (lo &+ hi) &>> 1
                    if b[mid] < v { lo = mid &+ 1 } else { hi = mid }
                }
                if lo < nb && b[lo] == v { n &+= 1 }
            }
            return n
        }
        // Runs of advances on one side are tight inner loops, which predict well on real data.
        if na == 0 || nb == 0 { return 0 }
        var i = 0, j = 0
        var x = a[0], y = b[0]
        while true {
            while x < y {
                i &+= 1
                if i == na { return n }
                x = a[i]
            }
            while y < x {
                j &+= 1
                if j == nb { return n }
                y = b[j]
            }
            if x == y {
                n &+= 1
                i &+= 1
                j &+= 1
                if i == na || j == nb { return n }
                x = a[i]
                y = b[j]
            }
        }
    }

    @inline(__always)
    static func arrayBitset(_ a: UnsafePointer<UInt16>, _ na: Int, _ w: UnsafePointer<UInt64>) -> Int {
        var n = 0
        for i in 0..<na {
            let v = Int(a[i])
            n &+= Int((w[v &>> 6] &>> UInt64(v & 63)) & 1)
        }
        return n
    }

    /// Runs are `[count, start0, length0 − 1, …]`.
    @inline(__always)
    static func runArray(_ r: UnsafePointer<UInt16>, _ a: UnsafePointer<UInt16>, _ na: Int) -> Int {
        var n = 0, k = 0
        let runs = Int(r[0])
        for i in 0..<na {
            let v = Int(a[i])
            while k < runs && Int(r[1 &+ 2 &* k]) &+ Int(r[2 &+ 2 &* k]) < v { k &+= 1 }
            if k == runs { break }
            if Int(r[1 &+ 2 &* k]) <= v { n &+= 1 }
        }
        return n
    }

    @inline(__always)
    static func runBitset(_ r: UnsafePointer<UInt16>, _ w: UnsafePointer<UInt64>) -> Int {
        var n = 0
        for k in 0..<Int(r[0]) {
            let s = Int(r[1 &+ 2 &* k])
            n &+= UserSet.countRange(UnsafeMutablePointer(mutating: w), s, s &+ Int(r[2 &+ 2 &* k]))
        }
        return n
    }

    @inline(__always)
    static func runRun(_ a: UnsafePointer<UInt16>, _ b: UnsafePointer<UInt16>) -> Int {
        var n = 0, i = 0, j = 0
        let na = Int(a[0]), nb = Int(b[0])
        while i < na && j < nb {
            let s1 = Int(a[1 &+ 2 &* i]), e1 = s1 &+ Int(a[2 &+ 2 &* i])
            let s2 = Int(b[1 &+ 2 &* j]), e2 = s2 &+ Int(b[2 &+ 2 &* j])
            let lo = max(s1, s2), hi = min(e1, e2)
            if lo <= hi { n &+= hi &- lo &+ 1 }
            if e1 < e2 { i &+= 1 } else { j &+= 1 }
        }
        return n
    }
}
