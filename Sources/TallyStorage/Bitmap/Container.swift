/// The three roaring container kinds over one 16-bit chunk of the user domain, and a fourth of
/// headerless arenas only.
public enum ContainerKind: UInt8, Sendable {
    /// Sorted `UInt16` values; the header's cardinality is the count.
    case array = 0
    /// A bitset trimmed to the words the domain can use in this chunk (at most 1024).
    case bitset = 1
    /// `[runCount, start0, lengthMinusOne0, start1, …]` in the 16-bit pool.
    case run = 2
    /// Headerless arenas of at most 32,768 users only (``BitmapArena``): a `0x8000 | count` entry,
    /// the first value, then each later value's difference from the one before in a byte. The
    /// slot's `values` is the range's start.
    case packed = 3
}

/// Tuning constants, with why (CRoaring keeps these in `perfparameters.h`).
public enum BitmapTuning {
    /// A chunk spans 2¹⁶ values, so a container is addressed by the high 16 bits of a user id.
    public static let chunkBits = 16
    /// Words of a full bitset container.
    public static let wordsPerChunk = 1024
    // The container kind is never a fixed threshold here: a store is built once and then served
    // read-only, so each container takes whichever encoding is smallest in bytes (array: 2 per
    // value; bitset: 8 per word the domain can use; run: 2 + 4 per run). A 20,000-user client's
    // bitset is 313 words, so dense apps switch to bitsets from 1,252 users on, not 4,096.

    /// The widest bitset (in words) that a headerless arena packs instead when packing is
    /// shorter (``BitmapArena``'s packed arrays): decoding a packed array costs per value, a
    /// bitset's union per word. 16 words: clients of up to 1,024 users, which at scale M packs
    /// as much as packing every bitset does. There, packing them took the store from 5.99 to
    /// 5.91 bytes a row (seed 5; 8 words against every width), and the
    /// peer comparison's 152 queries in process were ×1.01 in geometric mean of unpacked; on
    /// the 20,000-user client (313 words) it made category, vendor and unfiltered unions
    /// ×1.3–1.75 slower (docs/BENCHMARKS.md, "Packed arrays").
    public static let packedInsteadOfBitsetMaxWords = 16
}

/// Where one container lives in an arena. 12 bytes.
public struct ContainerHeader: Sendable {
    /// The high 16 bits of every value in the container.
    public var key: UInt16
    public var kind: ContainerKind
    /// Number of values, 1…65536.
    public var cardinality: UInt32
    /// Index into `pool16` (array, run) or `pool64` (bitset).
    public var offset: UInt32

    @inlinable public init(key: UInt16, kind: ContainerKind, cardinality: UInt32, offset: UInt32) {
        self.key = key
        self.kind = kind
        self.cardinality = cardinality
        self.offset = offset
    }
}

/// One container of a bitmap, wherever it is stored: its chunk, kind, count and payload (`values`
/// for arrays and runs, `words` for bitsets). Made from a header, or, in a headerless arena,
/// from the bitmap's range itself.
@frozen public struct ContainerSlot {
    public var key: Int
    public var kind: ContainerKind
    public var cardinality: Int
    public var values: UnsafePointer<UInt16>
    public var words: UnsafePointer<UInt64>

    @inlinable public init(key: Int, kind: ContainerKind, cardinality: Int, values: UnsafePointer<UInt16>, words: UnsafePointer<UInt64>) {
        self.key = key
        self.kind = kind
        self.cardinality = cardinality
        self.values = values
        self.words = words
    }
}

/// A bitmap stored in an arena: the half-open range of its container headers, or, in a
/// headerless arena (``BitmapArena/headerless``), of its payload in the 16-bit pool.
public struct BitmapRef: Sendable, Hashable {
    public var start: UInt32
    public var end: UInt32
    @inlinable public init(start: UInt32, end: UInt32) {
        self.start = start
        self.end = end
    }
    public static let empty = BitmapRef(start: 0, end: 0)
    @inlinable public var isEmpty: Bool { start == end }
}
