import Testing
import TallyStorage

/// Bitmaps against `Set<UInt32>`, on seeded random data of every density, across containers.
@Suite struct BitmapTests {
    struct RNG: RandomNumberGenerator {
        var s: UInt64
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func values(_ r: inout RNG, domain: Int, density: Double, runs: Bool) -> Set<UInt32> {
        var s = Set<UInt32>()
        if runs {
            var v = Int.random(in: 0..<min(domain, 500), using: &r)
            while v < domain {
                let len = Int.random(in: 1...300, using: &r)
                for x in v..<min(domain, v + len) { s.insert(UInt32(x)) }
                v += len + Int.random(in: 1...400, using: &r)
            }
        } else {
            // Capped so the million-value domain stays quick in debug builds; still dense per chunk.
            let n = min(Int(Double(domain) * density), 60_000)
            // When capped, crowd the values into the first chunks so that bitset containers appear.
            let span = n < Int(Double(domain) * density) ? min(domain, 65_536) : domain
            for _ in 0..<n { s.insert(UInt32.random(in: 0..<UInt32(span), using: &r)) }
        }
        return s
    }

    /// The kinds a layout has: headerless arenas of at most 32,768 users also pack arrays.
    static func expectedKinds(domain: Int, headerless: Bool, packed: Bool = true) -> Set<ContainerKind> {
        guard headerless else { return [.array, .bitset, .run] }
        return packed && domain <= BitmapArena.packableMaxDomain ? [.array, .packed, .bitset] : [.array, .bitset]
    }

    /// Both layouts: headers (any domain) and headerless (one chunk at most), whose bitmaps are
    /// payload ranges whose length says their kind — tiny domains (two words), a full chunk —
    /// with packed arrays and without, and at the largest domain that packs and the next.
    @Test(arguments: [(20_000, true, true), (20_000, true, false), (20_000, false, true), (100, true, true), (32_768, true, true),
                      (32_769, true, true), (65_536, true, true), (70_000, false, true), (1_000_000, false, true)])
    func operationsMatchSet(domain: Int, headerless: Bool, packed: Bool) {
        var r = RNG(s: UInt64(domain) &+ (headerless ? 1 : 0) &+ (packed ? 0 : 2))
        let scratch = UserSet(domain: domain)
        var kinds = Set<ContainerKind>()
        for trial in 0..<(domain > 100_000 ? 10 : 30) {
            let density = [0.0005, 0.01, 0.05, 0.1, 0.5, 0.9][trial % 6]  // 0.05: differences under 256
            let sets = (0..<4).map { i in Self.values(&r, domain: domain, density: density, runs: (trial + i) % 3 == 0) }
            let bitmaps = sets.map { Bitmap($0, domain: domain, headerless: headerless, packed: packed) }
            // The same sets in the other layout, where there is one: intersections across layouts.
            let others = domain > BitmapArena.headerlessMaxDomain ? bitmaps : sets.map { Bitmap($0, domain: domain, headerless: !headerless) }
            // Unions and intersection counts into a set that already holds values.
            let filled = UserSet(domain: domain)
            let prior = Self.values(&r, domain: domain, density: 0.05, runs: false)
            for v in prior { filled.add(v) }
            for (s, b) in zip(sets, bitmaps) {
                #expect(b.intersectionCount(filled) == s.intersection(prior).count)
                #expect(b.arena.view.intersects(b.ref, filled) == !s.isDisjoint(with: prior))
            }
            for b in bitmaps { #expect(b.arena.headerless == headerless) }
            for (s, b) in zip(sets, bitmaps) {
                #expect(b.cardinality == s.count)
                #expect(b.values == s.sorted())
                // Membership probes, hits and misses, on every container kind.
                for v in s.prefix(200) { #expect(b.contains(v)) }
                for _ in 0..<200 {
                    let v = UInt32.random(in: 0..<UInt32(domain), using: &r)
                    #expect(b.contains(v) == s.contains(v))
                }
                kinds.formUnion(b.containerKinds)
            }
            let union = sets.reduce(Set<UInt32>()) { $0.union($1) }
            #expect(Bitmap.unionCardinality(bitmaps, scratch: scratch) == union.count)
            #expect(Bitmap.union(bitmaps, domain: domain, scratch: scratch).values == union.sorted())
            for x in 0..<4 {
                for y in 0..<4 {
                    #expect(bitmaps[x].intersectionCardinality(bitmaps[y]) == sets[x].intersection(sets[y]).count)
                    #expect(bitmaps[x].intersectionCardinality(others[y]) == sets[x].intersection(sets[y]).count)
                    #expect(others[x].intersectionCardinality(bitmaps[y]) == sets[x].intersection(sets[y]).count)
                }
            }
            // UserSet algebra.
            let a = UserSet(domain: domain), b = UserSet(domain: domain)
            bitmaps[2].formUnion(into: a)
            bitmaps[3].formUnion(into: b)
            #expect(a.intersectionCount(b) == sets[2].intersection(sets[3]).count)
            a.formUnion(b)
            #expect(a.count == sets[2].union(sets[3]).count)
            a.formIntersection(b)
            #expect(a.sortedValues() == sets[3].sorted())
            var seen: [UInt32] = []
            a.forEach { seen.append($0) }
            #expect(seen.sorted() == sets[3].sorted())
            a.clear()
            #expect(a.isEmpty && a.count == 0)
        }
        #expect(kinds == Self.expectedKinds(domain: domain, headerless: headerless, packed: packed))
    }

    /// Packed arrays at the edges of their encoding: differences of 1 and of 255 (the widest
    /// packed), the domain's last value, and an odd and an even count of differences (a
    /// padding byte or none).
    @Test func packedArraysAtTheEdgesOfTheirDifferences() {
        let domain = BitmapArena.packableMaxDomain
        let dense = (0..<40).map { UInt32($0) }
        let cases: [[UInt32]] = [
            dense,
            dense + [40],
            dense.map { $0 * 255 },
            (0..<300).map { UInt32(domain - 300 + $0) },
            [1000] + dense.map { $0 + 1001 } + [1040 + 255],
            (0..<2049).map { UInt32($0 * 15) },  // the longest array under a bitset's 2,050 entries
        ]
        let scratch = UserSet(domain: domain)
        for values in cases {
            let b = Bitmap(values, domain: domain)
            #expect(b.containerKinds == [.packed], "\(values.suffix(3))")
            #expect(b.values == values && b.cardinality == values.count)
            for v in values { #expect(b.contains(v)) }
            for v in values.map({ $0 + 1 }) where !values.contains(v) && Int(v) < domain { #expect(!b.contains(v)) }
            scratch.clear()
            b.formUnion(into: scratch)
            #expect(scratch.sortedValues() == values && b.intersectionCount(scratch) == values.count)
            #expect(b.intersectionCardinality(Bitmap(values, domain: domain, packed: false)) == values.count)
        }
        // One value, or two, stays a plain array: packing would be longer.
        #expect(Bitmap([7], domain: domain).containerKinds == [.array])
        #expect(Bitmap([7, 8], domain: domain).containerKinds == [.array])
        // A difference of 256 does not fit a byte: the array stays plain.
        #expect(Bitmap(dense + [39 + 256], domain: domain).containerKinds == [.array])
        // A narrow domain's bitset is packed when that is shorter, a wider one's is not
        // (``BitmapTuning/packedInsteadOfBitsetMaxWords``): a tenth of 1,024 users (16 words),
        // then of 1,088 (17).
        let narrow = (0..<103).map { UInt32($0 * 10) }, wide = (0..<109).map { UInt32($0 * 10) }
        #expect(BitmapTuning.packedInsteadOfBitsetMaxWords == 16)
        #expect(Bitmap(narrow, domain: 1024).containerKinds == [.packed] && Bitmap(narrow, domain: 1024).values == narrow)
        #expect(Bitmap(wide, domain: 1088).containerKinds == [.bitset])
        // Past 32,768 users a value may have its top bit: arrays stay plain.
        #expect(Bitmap(dense, domain: domain + 1).containerKinds == [.array])
    }

    /// A set appended from its words gives the very containers its sorted values give (the
    /// index's coarser levels and the derived category unions are built the first way, the
    /// days the second), on every density and at chunk and word edges, domains not a multiple
    /// of a chunk or a word included.
    @Test(arguments: [(1_000, false), (1_000, true), (20_000, true), (65_536, true), (70_001, false), (200_000, false)])
    func appendingASetWritesTheContainersOfItsValues(domain: Int, headerless: Bool) {
        var r = RNG(s: UInt64(domain) &* 7)
        var bySet = BitmapArenaBuilder(domain: domain, headerless: headerless)
        var byValues = BitmapArenaBuilder(domain: domain, headerless: headerless)
        var refs: [BitmapRef] = [], expected: [[UInt32]] = []
        let set = UserSet(domain: domain)
        var scratch: [UInt32] = []
        var kinds = Set<ContainerKind>()
        for trial in 0..<40 {
            var values = Self.values(&r, domain: domain, density: [0.0005, 0.01, 0.05, 0.1, 0.5, 0.9, 1.0][trial % 7], runs: trial % 3 == 0)
            if trial % 4 == 1 {
                // Edges: the last value, word and chunk boundaries, a full last word.
                for v in [0, 63, 64, 65_535, 65_536, domain - 1] where v < domain { values.insert(UInt32(v)) }
                for v in max(0, domain - 70)..<domain { values.insert(UInt32(v)) }
            }
            if trial == 5 { values = [] }
            set.clear()
            if trial % 5 == 2 { set.touchAll() }  // touched chunks left empty write nothing
            for v in values { set.add(v) }
            let a = bySet.append(set, scratch: &scratch)
            let b = byValues.append(sorted: values.sorted())
            #expect(a == b)
            #expect(set.count == values.count, "the set is left as it was")
            refs.append(a)
            expected.append(values.sorted())
        }
        let x = bySet.finish(), y = byValues.finish()
        #expect(x.headerless == headerless)
        for (ref, v) in zip(refs, expected) {
            #expect(x.values(ref) == v && x.cardinality(ref) == v.count)
            kinds.formUnion(x.containerKinds(ref))
        }
        #expect(Array(x.pool16) == Array(y.pool16))
        #expect(Array(x.pool64) == Array(y.pool64))
        #expect(x.headers.count == y.headers.count)
        for (h, g) in zip(x.headers, y.headers) {
            #expect(h.key == g.key && h.kind == g.kind && h.cardinality == g.cardinality && h.offset == g.offset)
            kinds.insert(h.kind)
        }
        #expect(domain < 2_000 || kinds == Self.expectedKinds(domain: domain, headerless: headerless))
    }

    /// A set of another (wider) domain goes through its values, ascending whatever order its
    /// chunks were touched in.
    @Test func appendingASetOfAnotherDomain() {
        var bySet = BitmapArenaBuilder(domain: 70_001), byValues = BitmapArenaBuilder(domain: 70_001)
        let set = UserSet(domain: 200_000)
        for v: UInt32 in [66_000, 66_001, 70_000, 5, 64] { set.add(v) }  // chunk 1 touched first
        var scratch: [UInt32] = []
        #expect(bySet.append(set, scratch: &scratch) == byValues.append(sorted: [5, 64, 66_000, 66_001, 70_000]))
        let x = bySet.finish(), y = byValues.finish()
        #expect(Array(x.pool16) == Array(y.pool16) && Array(x.pool64) == Array(y.pool64))
        #expect(x.values(BitmapRef(start: 0, end: UInt32(x.headers.count))) == [5, 64, 66_000, 66_001, 70_000])
    }

    @Test func wholeChunkEdges() {
        // Values at chunk edges and a full chunk, which must become one run.
        let domain = 200_000
        let full = Set((65_536..<131_072).map(UInt32.init))
        let edges: Set<UInt32> = [0, 63, 64, 65_535, 65_536, 131_071, 131_072, 199_999]
        let b = Bitmap(full.union(edges), domain: domain)
        #expect(b.values == full.union(edges).sorted())
        #expect(b.containerKinds.contains(.run))
        let s = UserSet(domain: domain)
        b.formUnion(into: s)
        #expect(s.count == full.union(edges).count)
        #expect(s.contains(199_999) && !s.contains(199_998))
    }

    @Test func radixSortMatchesSort() {
        var r = RNG(s: 9)
        for n in [0, 1, 100, 5000, 70_000] {
            var a = (0..<n).map { _ in r.next() >> UInt64.random(in: 0...40, using: &r) }
            let want = a.sorted()
            radixSort(&a, significantBits: 64)
            #expect(a == want)
        }
    }
}
