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

    var body: [UInt8] = []
    /// Keys seen so far, in table order (a document has a few dozen at most).
    var keys: [StaticString] = []

    public init(capacity: Int = 1024) { body.reserveCapacity(capacity) }

    @inline(__always) mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            body.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        body.append(UInt8(v))
    }

    @inline(__always) mutating func zigzag(_ v: Int) {
        varint(UInt64(bitPattern: Int64((v << 1) ^ (v >> 63))))
    }

    public mutating func beginObject() { body.append(Tag.object.rawValue) }
    public mutating func endObject() { body.append(0) }
    public mutating func beginArray() { body.append(Tag.array.rawValue) }
    public mutating func endArray() { body.append(Tag.endArray.rawValue) }

    public mutating func key(_ k: StaticString) {
        // Static strings of one literal share storage, so the pointer identifies a key; equal
        // text at another address is compared to be safe.
        let start = k.utf8Start
        var index = -1
        for (i, known) in keys.enumerated() where known.utf8Start == start
            || (known.utf8CodeUnitCount == k.utf8CodeUnitCount
                && known.withUTF8Buffer({ a in k.withUTF8Buffer { b in a.elementsEqual(b) } })) {
            index = i
            break
        }
        if index < 0 {
            index = keys.count
            keys.append(k)
        }
        varint(UInt64(index + 1))
    }

    public mutating func null() { body.append(Tag.null.rawValue) }
    public mutating func bool(_ b: Bool) { body.append(b ? Tag.true.rawValue : Tag.false.rawValue) }
    public mutating func int(_ v: Int) { body.append(Tag.integer.rawValue); zigzag(v) }
    public mutating func tenths(_ t: Int) { body.append(Tag.decimal.rawValue); zigzag(t) }

    public mutating func string(_ s: String) {
        body.append(Tag.string.rawValue)
        var s = s
        s.withUTF8 { u in
            varint(UInt64(u.count))
            body.append(contentsOf: u)
        }
    }

    public mutating func uuid(_ u: UUID128) {
        body.append(Tag.uuid.rawValue)
        for shift in stride(from: 56, through: 0, by: -8) { body.append(UInt8(truncatingIfNeeded: u.high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { body.append(UInt8(truncatingIfNeeded: u.low >> UInt64(shift))) }
    }

    public mutating func day(_ d: Day) { body.append(Tag.date.rawValue); zigzag(Int(d.raw)) }

    /// The finished body: the key table, then the document.
    public func finish() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 16 * keys.count + 2)
        var w = CompactWriter(capacity: 0)
        w.varint(UInt64(keys.count))
        for k in keys {
            w.varint(UInt64(k.utf8CodeUnitCount))
            k.withUTF8Buffer { w.body.append(contentsOf: $0) }
        }
        out.append(contentsOf: w.body)
        out.append(contentsOf: body)
        return out
    }
}
