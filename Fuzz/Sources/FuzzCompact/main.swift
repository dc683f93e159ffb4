// The compact encoding's decoder (TallyWire `CompactValue`, docs/PROTOCOL.md §4), as the
// Swift client runs it on a RESULT body: decode, then render as JSON (`TallyResult.json()`).
// A thrown `DecodingError` is a correct refusal. Checked on every document that decodes:
// its JSON is valid JSON, and encoding it again decodes to an equal document.
import Foundation
import FuzzSupport
import TallyWire

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked {
        // Real answers of every route in the compact format, plus small hand-made documents.
        var seeds: [(String, [UInt8])] = []
        for (i, q) in SeedQueries.all.enumerated() {
            if let body = try? SeedQueries.answer(wire: q.wire, query: q.query, format: .compact) {
                seeds.append(("answer-\(q.wire)-\(i)", body))
            }
        }
        let small: [CompactValue] = [
            .null, .bool(true), .int(-1), .decimal(1234), .string("é\u{0}\"\\"), .uuid(UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))),
            .date(0), .date(-719_468), .date(2_932_896), .array([.int(1), .array([]), .object([])]),
            .object([("a", .int(1)), ("b", .object([("a", .null)])), ("a", .string(""))]),
        ]
        for (i, v) in small.enumerated() { seeds.append(("small-\(i)", encode(v))) }
        return seeds
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count <= 1 << 16 else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let value: CompactValue
    do { value = try CompactValue(decoding: bytes) } catch { return 0 }
    guard value == value else { fuzzFailure("a document is not equal to itself") }
    let json = value.json
    guard (try? JSONSerialization.jsonObject(with: Data(json), options: [.fragmentsAllowed])) != nil else {
        fuzzFailure("the JSON of a compact document is not JSON: \(String(decoding: json, as: UTF8.self))")
    }
    let again = encode(value)
    guard let back = try? CompactValue(decoding: again), back == value else {
        fuzzFailure("a document encoded again does not decode to itself")
    }
    return 0
}

/// The compact encoding of `value` (keys in first-use order, shortest varints).
func encode(_ value: CompactValue) -> [UInt8] {
    var keys: [String] = [], index: [String: Int] = [:]
    func collect(_ v: CompactValue) {
        switch v {
        case .array(let items): items.forEach(collect)
        case .object(let members):
            for (k, x) in members {
                if index[k] == nil { index[k] = keys.count; keys.append(k) }
                collect(x)
            }
        default: break
        }
    }
    collect(value)
    var out: [UInt8] = []
    func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }
    func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    func text(_ s: String) { varint(UInt64(s.utf8.count)); out += Array(s.utf8) }
    func write(_ v: CompactValue) {
        switch v {
        case .null: out.append(0)
        case .bool(let b): out.append(b ? 2 : 1)
        case .int(let i): out.append(3); zigzag(i)
        case .decimal(let d): out.append(4); zigzag(d)
        case .string(let s): out.append(5); text(s)
        case .uuid(let u): out.append(6); withUnsafeBytes(of: u.uuid) { out += Array($0) }
        case .date(let d): out.append(7); zigzag(d)
        case .array(let items): out.append(8); items.forEach(write); out.append(0x0A)
        case .object(let members):
            out.append(9)
            for (k, x) in members { varint(UInt64(index[k]! + 1)); write(x) }
            out.append(0)
        }
    }
    varint(UInt64(keys.count))
    keys.forEach(text)
    write(value)
    return out
}

/// SwiftPM's debug builds link `main` to this symbol: hand over to libFuzzer's driver.
@_cdecl("FuzzCompact_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz(UnsafeRawPointer($0), size) } ?? 0 }
}
