import TallyStorage

/// What the endpoint renderer writes to: one document, as JSON text (``JSONWriter``) or in the
/// binary protocol's compact encoding (``CompactWriter``). Keys are static strings.
public protocol DocumentWriter {
    mutating func beginObject()
    mutating func endObject()
    mutating func beginArray()
    mutating func endArray()
    /// An object key; the next value written is its value.
    mutating func key(_ k: StaticString)
    mutating func null()
    mutating func bool(_ b: Bool)
    mutating func int(_ v: Int)
    /// A number with one decimal, given in tenths (`130` is `13.0`).
    mutating func tenths(_ t: Int)
    mutating func string(_ s: String)
    mutating func uuid(_ u: UUID128)
    mutating func day(_ d: Day)
}

extension DocumentWriter {
    public mutating func tenths(_ t: Int?) { if let t { tenths(t) } else { null() } }
    public mutating func int(_ v: Int?) { if let v { int(v) } else { null() } }
    public mutating func string(_ s: String?) { if let s { string(s) } else { null() } }
    public mutating func day(_ d: Day?) { if let d { day(d) } else { null() } }
}

/// The compact encoding of docs/PROTOCOL.md §4: tagged values, object keys as indexes into a key
/// table written once in front of the body. The body is written as calls come; the table is
/// prepended by ``finish()``.
public struct CompactWriter: DocumentWriter {
    enum Tag: UInt8 {
        case null = 0, `false`, `true`, integer, decimal, string, uuid, date, array, object, endArray
    }

    var body: OutputBytes
    /// Keys seen so far, in table order (a document has a few dozen at most).
    var keys: [StaticString] = []
    /// The table index after the last key written: rows repeat one sequence of keys, so the
    /// next key is almost always the one there.
    var predicted = 0

    public init(capacity: Int = 1024) { body = OutputBytes(capacity: capacity) }

    @inline(__always) mutating func varint(_ v: UInt64) {
        body.write(atMost: 10) { OutputBytes.varint(v, at: $0) }
    }

    @inline(__always) static func zigzag(_ v: Int) -> UInt64 { UInt64(bitPattern: Int64((v << 1) ^ (v >> 63))) }

    /// A tag followed by a varint.
    @inline(__always) mutating func tagged(_ tag: Tag, _ v: UInt64) {
        body.write(atMost: 11) { p in
            p[0] = tag.rawValue
            return 1 &+ OutputBytes.varint(v, at: p + 1)
        }
    }

    public mutating func beginObject() { body.append(Tag.object.rawValue) }
    public mutating func endObject() { body.append(0) }
    public mutating func beginArray() { body.append(Tag.array.rawValue) }
    public mutating func endArray() { body.append(Tag.endArray.rawValue) }

    public mutating func key(_ k: StaticString) {
        varint(UInt64(keyIndex(k) &+ 1))
    }

    /// The table index of `k`, added to the table when new. Static strings of one literal share
    /// storage, so the pointer identifies a key; equal text at another address is the same key.
    @inline(__always) mutating func keyIndex(_ k: StaticString) -> Int {
        let start = k.utf8Start
        if predicted < keys.count && keys[predicted].utf8Start == start {
            predicted &+= 1
            return predicted &- 1
        }
        var index = keys.firstIndex { $0.utf8Start == start }
            ?? keys.firstIndex { $0.utf8CodeUnitCount == k.utf8CodeUnitCount
                && $0.withUTF8Buffer { a in k.withUTF8Buffer { b in a.elementsEqual(b) } } }
        if index == nil {
            index = keys.count
            keys.append(k)
        }
        predicted = index! &+ 1
        return index!
    }

    public mutating func null() { body.append(Tag.null.rawValue) }
    public mutating func bool(_ b: Bool) { body.append(b ? Tag.true.rawValue : Tag.false.rawValue) }
    public mutating func int(_ v: Int) { tagged(.integer, Self.zigzag(v)) }
    public mutating func tenths(_ t: Int) { tagged(.decimal, Self.zigzag(t)) }

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { u in
            tagged(.string, UInt64(u.count))
            body.append(u)
        }
    }

    public mutating func uuid(_ u: UUID128) {
        body.write(atMost: 17) { p in
            p[0] = Tag.uuid.rawValue
            for k in 0..<8 {
                p[1 &+ k] = UInt8(truncatingIfNeeded: u.high >> UInt64(56 &- 8 &* k))
                p[9 &+ k] = UInt8(truncatingIfNeeded: u.low >> UInt64(56 &- 8 &* k))
            }
            return 17
        }
    }

    public mutating func day(_ d: Day) { tagged(.date, Self.zigzag(Int(d.raw))) }

    /// The finished body: the key table, then the document.
    public func finish() -> [UInt8] {
        var table = OutputBytes(capacity: 16 &* keys.count &+ 10)
        table.write(atMost: 10) { OutputBytes.varint(UInt64(keys.count), at: $0) }
        for k in keys {
            table.write(atMost: 10) { OutputBytes.varint(UInt64(k.utf8CodeUnitCount), at: $0) }
            k.withUTF8Buffer { table.append($0) }
        }
        var out = [UInt8]()
        out.reserveCapacity(table.count &+ body.count)
        table.storage.withUnsafeBufferPointer { out.append(contentsOf: $0[..<table.count]) }
        body.storage.withUnsafeBufferPointer { out.append(contentsOf: $0[..<body.count]) }
        return out
    }
}
