/// An open-addressing hash table from UUIDs to small values, for the loader's per-row lookups.
///
/// UUIDs are already uniformly random in their bits (v4) or at least well spread, so one
/// multiply-xor stands in for SipHash, which dominated row parsing with `Dictionary`.
public struct UUIDTable<Value> {
    @usableFromInline var keys: [UUID128]
    @usableFromInline var values: [Value?]
    @usableFromInline var mask: Int
    @usableFromInline var _count = 0
    public var count: Int { _count }

    public init(minimumCapacity: Int = 16) {
        var cap = 16
        while cap < minimumCapacity * 2 { cap <<= 1 }
        keys = [UUID128](repeating: UUID128(high: 0, low: 0), count: cap)
        values = [Value?](repeating: nil, count: cap)
        mask = cap - 1
    }

    @inlinable @inline(__always)
    func slot(_ k: UUID128) -> Int {
        Int(truncatingIfNeeded: ((k.high ^ k.low.byteSwapped) &* 0x9E37_79B9_7F4A_7C15) >> 17) & mask
    }

    /// - Complexity: O(1) expected. Inlinable so that callers get it specialized: a generic
    /// call per row costs more in runtime metadata lookups than the probe itself.
    @inlinable @inline(__always)
    public subscript(key: UUID128) -> Value? {
        get {
            var i = slot(key)
            while let v = values[i] {
                if keys[i] == key { return v }
                i = (i &+ 1) & mask
            }
            return nil
        }
        set {
            guard let newValue else { preconditionFailure("UUIDTable does not remove") }
            if (_count + 1) * 2 > keys.count { grow() }
            var i = slot(key)
            while values[i] != nil {
                if keys[i] == key { values[i] = newValue; return }
                i = (i &+ 1) & mask
            }
            keys[i] = key
            values[i] = newValue
            _count &+= 1
        }
    }

    @usableFromInline mutating func grow() {
        var bigger = UUIDTable(minimumCapacity: keys.count)
        for i in keys.indices { if let v = values[i] { bigger[keys[i]] = v } }
        self = bigger
    }
}

extension UUIDTable: Sendable where Value: Sendable {}
