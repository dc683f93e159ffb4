/// A standalone roaring-style bitmap: one ``BitmapRef`` in an arena of its own.
///
/// Stores keep thousands of bitmaps in one shared arena; this type is for everything else
/// (filters built from a request, tests, benchmarks).
public struct Bitmap: Sendable {
    public let arena: BitmapArena
    public let ref: BitmapRef

    /// Builds from values in any order, duplicates allowed; every value must be `< domain`.
    /// - Complexity: O(n log n).
    /// - Parameter headerless: the arena's layout (``BitmapArena/headerless``); by default the
    ///   builder's choice for the domain.
    /// - Parameter packed: whether packed arrays may be written (``BitmapArenaBuilder``).
    public init<S: Sequence>(_ values: S, domain: Int, headerless: Bool? = nil, packed: Bool? = nil) where S.Element == UInt32 {
        var sorted = Array(values)
        sorted.sort()
        var unique: [UInt32] = []
        unique.reserveCapacity(sorted.count)
        for v in sorted where unique.last != v { unique.append(v) }
        var b = BitmapArenaBuilder(domain: domain, headerless: headerless, packed: packed)
        ref = b.append(sorted: unique)
        arena = b.finish()
    }

    public var cardinality: Int { arena.cardinality(ref) }

    /// Whether `v` is in the bitmap.
    /// - Complexity: O(containers + log(values in its container)).
    public func contains(_ v: UInt32) -> Bool { arena.view.contains(ref, v) }
    public var values: [UInt32] { arena.values(ref) }

    /// Container kinds, in order (for tests and diagnostics).
    public var containerKinds: [ContainerKind] { arena.containerKinds(ref) }

    /// ORs this bitmap into `set`.
    public func formUnion(into set: UserSet) { arena.formUnion(ref, into: set) }

    /// Number of values also in `set`.
    public func intersectionCount(_ set: UserSet) -> Int { arena.intersectionCount(ref, set) }

    /// Cardinality of the union of `bitmaps`, without building it.
    /// - Complexity: O(Σ container work + touched chunks × 1024).
    public static func unionCardinality(_ bitmaps: [Bitmap], scratch: UserSet) -> Int {
        scratch.clear()
        for b in bitmaps { b.formUnion(into: scratch) }
        let n = scratch.count
        scratch.clear()
        return n
    }

    /// Cardinality of the intersection with `other`, without building it (container by
    /// container; no scratch needed).
    public func intersectionCardinality(_ other: Bitmap) -> Int {
        arena.view.intersectionCardinality(ref, other.arena.view, other.ref)
    }

    /// The union of `bitmaps` as a new bitmap.
    public static func union(_ bitmaps: [Bitmap], domain: Int, scratch: UserSet) -> Bitmap {
        scratch.clear()
        for b in bitmaps { b.formUnion(into: scratch) }
        let v = scratch.sortedValues()
        scratch.clear()
        return Bitmap(v, domain: domain)
    }
}
