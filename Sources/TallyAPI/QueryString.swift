/// `application/x-www-form-urlencoded` query strings: `+` is a space, `%XX` a byte.
public enum QueryString {
    /// Name–value pairs in order; a name without `=` has an empty value. Invalid percent escapes
    /// are kept as written.
    public static func parse(_ query: String) -> [(String, String)] {
        if query.isEmpty { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { part in
            if let eq = part.firstIndex(of: "=") {
                return (decode(part[..<eq]), decode(part[part.index(after: eq)...]))
            }
            return (decode(part), "")
        }
    }

    public static func decode<S: StringProtocol>(_ s: S) -> String {
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
