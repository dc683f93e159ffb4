/// `application/x-www-form-urlencoded` query strings: `+` is a space, `%XX` a byte.
public enum QueryString {
    /// Name–value pairs in order; a name without `=` has an empty value. Invalid percent escapes
    /// are kept as written.
    public static func parse(_ query: String) -> [(String, String)] {
        var out: [(String, String)] = []
        forEachRawPair(query) { name, value in out.append((decode(name), decode(value))) }
        return out
    }

    /// Calls `body` with each name and value as written (not decoded), in order; a name without
    /// `=` has an empty value. No copies: both are slices of `query`.
    public static func forEachRawPair(_ query: String, _ body: (Substring, Substring) -> Void) {
        let u = query.utf8
        var start = u.startIndex
        while start < u.endIndex {
            let end = u[start...].firstIndex(of: UInt8(ascii: "&")) ?? u.endIndex
            if start < end {
                // Slices of the UTF-8 view: a String subscript would round a bound that falls
                // before a combining mark down to the previous character, taking the `&` or `=`.
                if let eq = u[start..<end].firstIndex(of: UInt8(ascii: "=")) {
                    body(Substring(u[start..<eq]), Substring(u[u.index(after: eq)..<end]))
                } else {
                    body(Substring(u[start..<end]), "")
                }
            }
            start = end < u.endIndex ? u.index(after: end) : end
        }
    }

    public static func decode<S: StringProtocol>(_ s: S) -> String {
        // Most names and values have nothing to decode: one scan, one copy (none for short ones).
        if !s.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) { return String(s) }
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "+") {
                out.append(32)
            } else if b == UInt8(ascii: "%"), bytes.count >= 2, let h = hex(bytes[bytes.startIndex]),
                      let l = hex(bytes[bytes.startIndex + 1]) {
                out.append(h << 4 | l)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}
