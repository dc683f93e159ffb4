// Tally's bitmap kernels against Debian's CRoaring (0.2.66, built for baseline x86-64) on the
// operation the engine does most: the cardinality of the union of the ~16 block bitmaps that
// cover a 366-day range, and the intersection cardinality of two sets.
import Benchmark
import CRoaring
import TallyStorage

struct Case {
    let name: String
    let domain: Int
    let sets: [[UInt32]]
}

func makeCase(_ name: String, domain: Int, count: Int, perSet: Int, seed: UInt64) -> Case {
    var s = seed
    func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    let sets = (0..<count).map { _ in
        Array(Set((0..<perSet).map { _ in UInt32(next() % UInt64(domain)) })).sorted()
    }
    return Case(name: name, domain: domain, sets: sets)
}

// (a) dense: 20,000 users, 16 blocks of ~6,000 users each (a popular app's week-to-quarter blocks).
// (b) sparse: 1,000,000 users, 16 blocks of 2,000 users each.
let cases = [makeCase("dense 20k", domain: 20_000, count: 16, perSet: 6_000, seed: 1),
             makeCase("sparse 1M", domain: 1_000_000, count: 16, perSet: 2_000, seed: 2)]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput], scalingFactor: .one,
                                           maxDuration: .seconds(2), maxIterations: 100_000)
    for c in cases {
        let tally = c.sets.map { Bitmap($0, domain: c.domain) }
        let scratch = UserSet(domain: c.domain)
        let roaring: [UnsafeMutablePointer<roaring_bitmap_t>] = c.sets.map { v in
            let r = v.withUnsafeBufferPointer { roaring_bitmap_of_ptr($0.count, $0.baseAddress)! }
            _ = roaring_bitmap_run_optimize(r)
            return r
        }
        let expected = Set(c.sets.joined()).count
        precondition(Bitmap.unionCardinality(tally, scratch: scratch) == expected)

        Benchmark("union cardinality of 16 (\(c.name)) — Tally") { b in
            for _ in b.scaledIterations { blackHole(Bitmap.unionCardinality(tally, scratch: scratch)) }
        }
        Benchmark("union cardinality of 16 (\(c.name)) — CRoaring or_many") { b in
            for _ in b.scaledIterations {
                var ptrs = roaring.map { UnsafePointer($0) as UnsafePointer<roaring_bitmap_t>? }
                let u = roaring_bitmap_or_many(ptrs.count, &ptrs)!
                blackHole(roaring_bitmap_get_cardinality(u))
                roaring_bitmap_free(u)
            }
        }
        Benchmark("intersection cardinality of 2 (\(c.name)) — Tally") { b in
            for _ in b.scaledIterations { blackHole(tally[0].intersectionCardinality(tally[1])) }
        }
        Benchmark("intersection cardinality of 2 (\(c.name)) — CRoaring") { b in
            for _ in b.scaledIterations { blackHole(roaring_bitmap_and_cardinality(roaring[0], roaring[1])) }
        }
    }
}
