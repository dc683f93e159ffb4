import TallyStorage

/// Opaque keyset cursors: the last row's sort value and id, bound to the parameters that
/// produced them by a fingerprint, so a cursor reused with other parameters can be refused, and
/// to the served version the first page was read from, so that the next pages can read the same
/// one while it is kept (the API's pins).
public enum Cursor {
    /// `base64url("2|fingerprint|version|kind|b64(id)|b64(value)")`, or the first format,
    /// `base64url("1|fingerprint|kind|b64(id)|b64(value)")`, without a version.
    public static func encode(_ key: PageKey, fingerprint: UInt64, version: UInt64? = nil) -> String {
        let (kind, value): (String, String)
        switch key.value {
        case .int(let v): (kind, value) = ("i", String(v))
        case .day(let d): (kind, value) = ("d", d.description)
        case .text(nil): (kind, value) = ("n", "")
        case .text(let s?): (kind, value) = ("t", String(String.UnicodeScalarView(s.compactMap(Unicode.Scalar.init))))
        }
        // Id and value are themselves base64url, so any text is safe between the separators.
        let head = version.map { "2|\(String(fingerprint, radix: 16))|\(String($0, radix: 16))" } ?? "1|\(String(fingerprint, radix: 16))"
        let raw = "\(head)|\(kind)|\(base64url(Array(key.id.description.utf8)))|\(base64url(Array(value.utf8)))"
        return base64url(Array(raw.utf8))
    }

    /// The key, fingerprint and version (second format) of a cursor, or `nil` when it is not
    /// one of ours.
    public static func decode(_ token: String) -> (key: PageKey, fingerprint: UInt64, version: UInt64?)? {
        guard let bytes = unbase64url(token), let raw = String(validating: bytes, as: UTF8.self) else { return nil }
        // Id and value are base64url (no separator in them): five parts, or six with a version.
        var parts = raw.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        let version: UInt64?
        switch (parts.first, parts.count) {
        case ("1"?, 5): version = nil
        case ("2"?, 6):
            guard let v = UInt64(parts.remove(at: 2), radix: 16) else { return nil }
            version = v
        default: return nil
        }
        guard let fp = UInt64(parts[1], radix: 16) else { return nil }
        guard let idBytes = unbase64url(parts[3]), let vBytes = unbase64url(parts[4]),
              let idText = String(validating: idBytes, as: UTF8.self), let id = UUID128(idText),
              let v = String(validating: vBytes, as: UTF8.self)
        else { return nil }
        let value: SortValue
        switch parts[2] {
        case "i": guard let n = Int(v) else { return nil }; value = .int(n)
        case "d": guard let d = Day(v) else { return nil }; value = .day(d)
        case "n": value = .text(nil)
        case "t": value = .text(v.unicodeScalars.map(\.value))
        default: return nil
        }
        return (PageKey(value: value, id: id), fp, version)
    }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func base64url(_ b: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            let n = min(3, b.count - i)
            var v = UInt32(b[i]) << 16
            if n > 1 { v |= UInt32(b[i + 1]) << 8 }
            if n > 2 { v |= UInt32(b[i + 2]) }
            for j in 0..<(n + 1) { out.append(alphabet[Int((v >> UInt32(18 - 6 * j)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unbase64url(_ s: String) -> [UInt8]? {
        var map = [Int](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { map[Int(c)] = i }
        var out: [UInt8] = []
        var acc = 0, bits = 0
        for c in s.utf8 {
            let v = map[Int(c)]
            if v < 0 { return nil }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> bits) & 0xFF))
            }
        }
        return out
    }
}
