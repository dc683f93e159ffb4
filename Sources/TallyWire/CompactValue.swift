import Foundation

/// A document in the compact encoding (docs/PROTOCOL.md §4), decoded.
public indirect enum CompactValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    /// A decimal with one digit, in tenths.
    case decimal(Int64)
    case string(String)
    case uuid(UUID)
    /// Days since 1970-01-01.
    case date(Int64)
    case array([CompactValue])
    /// Members in order.
    case object([(String, CompactValue)])

    public static func == (a: CompactValue, b: CompactValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)), (.decimal(let x), .decimal(let y)), (.date(let x), .date(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.uuid(let x), .uuid(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> CompactValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    public struct DecodingError: Error, CustomStringConvertible, Sendable {
        public var offset: Int
        public var reason: String
        public var description: String { "compact body, byte \(offset): \(reason)" }
    }

    /// Decodes a whole compact body: the key table, one value, nothing after it.
    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var d = Decoder(bytes: bytes)
        let n = try d.count("key table size")
        var keys: [String] = []
        for _ in 0..<n {
            let len = try d.count("key length")
            keys.append(try d.text(len))
        }
        d.keys = keys
        self = try d.value(depth: 0)
        guard d.at == bytes.count else { throw DecodingError(offset: d.at, reason: "bytes after the document") }
    }

    struct Decoder {
        let bytes: [UInt8]
        var at = 0
        var keys: [String] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ r: String) -> DecodingError { DecodingError(offset: at, reason: r) }

        mutating func byte() throws(DecodingError) -> UInt8 {
            guard at < bytes.count else { throw fail("the body ends early") }
            defer { at += 1 }
            return bytes[at]
        }

        mutating func varint() throws(DecodingError) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<10 {
                let b = try byte()
                v |= UInt64(b & 0x7F) << UInt64(7 * i)
                if b < 0x80 { return v }
            }
            throw fail("a varint is longer than 10 bytes")
        }

        mutating func zigzag() throws(DecodingError) -> Int64 {
            let u = try varint()
            return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
        }

        mutating func count(_ what: String) throws(DecodingError) -> Int {
            let v = try varint()
            guard v <= UInt64(bytes.count - at) else { throw fail("\(what) \(v) is more than the bytes left") }
            return Int(v)
        }

        mutating func text(_ n: Int) throws(DecodingError) -> String {
            guard n <= bytes.count - at else { throw fail("a string runs past the end") }
            guard let s = String(validating: bytes[at..<(at + n)], as: UTF8.self) else { throw fail("a string is not valid UTF-8") }
            at += n
            return s
        }

        mutating func value(depth: Int) throws(DecodingError) -> CompactValue {
            guard depth < 64 else { throw fail("nested more than 64 deep") }
            let tag = try byte()
            switch tag {
            case 0x00: return .null
            case 0x01: return .bool(false)
            case 0x02: return .bool(true)
            case 0x03: return .int(try zigzag())
            case 0x04: return .decimal(try zigzag())
            case 0x05: return .string(try text(try count("string length")))
            case 0x06:
                guard bytes.count - at >= 16 else { throw fail("a UUID runs past the end") }
                let b = Array(bytes[at..<(at + 16)])
                at += 16
                return .uuid(UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])))
            case 0x07:
                // A day number is 32 bits (the server's `Day`); one beyond would overflow `isoDate`.
                let d = try zigzag()
                guard Int32(exactly: d) != nil else { throw fail("date \(d) is outside the 32-bit range of day numbers") }
                return .date(d)
            case 0x08:
                var items: [CompactValue] = []
                while true {
                    guard at < bytes.count else { throw fail("an array is not closed") }
                    if bytes[at] == 0x0A { at += 1; return .array(items) }
                    items.append(try value(depth: depth + 1))
                }
            case 0x09:
                var members: [(String, CompactValue)] = []
                while true {
                    let k = try varint()
                    if k == 0 { return .object(members) }
                    guard k <= UInt64(keys.count) else { throw fail("key index \(k - 1) is not in the key table") }
                    members.append((keys[Int(k - 1)], try value(depth: depth + 1)))
                }
            default:
                throw fail("unknown tag \(tag)")
            }
        }
    }

    /// The document as JSON text, written the way the server writes JSON (no spaces; UUIDs in
    /// lower case; dates `YYYY-MM-DD`; decimals with one digit), so that it can be compared byte
    /// for byte with a format-0 body.
    public var json: [UInt8] {
        var out: [UInt8] = []
        writeJSON(into: &out)
        return out
    }

    func writeJSON(into out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .int(let v): out += Array(String(v).utf8)
        case .decimal(let t):
            if t < 0 { out.append(UInt8(ascii: "-")) }
            out += Array("\(t.magnitude / 10).\(t.magnitude % 10)".utf8)
        case .string(let s): Self.quote(s, into: &out)
        case .uuid(let u): Self.quote(u.uuidString.lowercased(), into: &out)
        case .date(let d): Self.quote(Self.isoDate(d), into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, v) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.writeJSON(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.quote(k, into: &out)
                out.append(UInt8(ascii: ":"))
                v.writeJSON(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func quote(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [92, 34]
            case UInt8(ascii: "\\"): out += [92, 92]
            case 10: out += [92, UInt8(ascii: "n")]
            case 13: out += [92, UInt8(ascii: "r")]
            case 9: out += [92, UInt8(ascii: "t")]
            case 0..<32: out += [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `YYYY-MM-DD` of a day number (days since 1970-01-01, proleptic Gregorian).
    public static func isoDate(_ days: Int64) -> String {
        // Howard Hinnant's civil-from-days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }
}
