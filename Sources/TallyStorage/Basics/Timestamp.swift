/// Timestamps as dumps hold them (SPEC §1: ISO 8601 or PostgreSQL's text form): `YYYY-MM-DD`,
/// then optionally `T` or a space and `HH:MM[:SS[.fraction]]`, then optionally `Z` or
/// `±HH[[:]MM]`; no offset is UTC. One grammar for the loader (which refuses anything else)
/// and for the directory (which writes them in UTC, SPEC §3b).
public enum Timestamp {
    /// Microseconds since 1970-01-01T00:00:00Z, the fraction rounded to the microsecond half
    /// away from zero on its decimal digits (a second of 60 carries into the next minute), or
    /// `nil` when the bytes are not a timestamp.
    /// - Complexity: O(length).
    public static func micros(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard b.count >= 10, let day = Day(iso: UnsafeBufferPointer(rebasing: b[0..<10])) else { return nil }
        var i = 10
        func two(_ max: Int) -> Int? {
            guard i + 2 <= b.count, isDigit(b[i]), isDigit(b[i + 1]) else { return nil }
            let v = Int(b[i] - 48) * 10 + Int(b[i + 1] - 48)
            i += 2
            return v <= max ? v : nil
        }
        var seconds = 0, fraction: Int64 = 0, offset = 0
        if i < b.count {
            guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: " ") else { return nil }
            i += 1
            guard let h = two(23), i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            guard let m = two(59) else { return nil }
            seconds = h * 3600 + m * 60
            if i < b.count && b[i] == UInt8(ascii: ":") {
                i += 1
                guard let s = two(60) else { return nil }
                seconds += s
                if i < b.count && (b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",")) {
                    i += 1
                    let start = i
                    var roundUp = false
                    while i < b.count && isDigit(b[i]) {
                        let n = i - start
                        if n < 6 { fraction = fraction * 10 + Int64(b[i] - 48) } else if n == 6 { roundUp = b[i] >= 53 }
                        i += 1
                    }
                    if i == start { return nil }
                    for _ in (i - start)..<max(i - start, 6) { fraction *= 10 }
                    if roundUp { fraction += 1 }
                }
            }
            if i < b.count {
                if b[i] == UInt8(ascii: "Z") {
                    i += 1
                } else {
                    guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") else { return nil }
                    let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
                    i += 1
                    guard let oh = two(23) else { return nil }
                    var om = 0
                    if i < b.count {
                        if b[i] == UInt8(ascii: ":") { i += 1 }
                        guard let x = two(59) else { return nil }
                        om = x
                    }
                    offset = sign * (oh * 3600 + om * 60)
                }
            }
            guard i == b.count else { return nil }
        }
        return (Int64(day.raw) * 86_400 + Int64(seconds - offset)) * 1_000_000 + fraction
    }

    public static func micros(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { micros($0) }
    }

    /// RFC 3339 in UTC with `Z` (SPEC §3b): fractional seconds only when not zero, trailing
    /// zeros dropped.
    public static func rfc3339UTC(_ s: String) -> String? {
        guard let t = micros(s) else { return nil }
        let (q, r) = t.quotientAndRemainder(dividingBy: 86_400_000_000)
        let days = r < 0 ? q - 1 : q, rest = r < 0 ? r + 86_400_000_000 : r
        let secs = Int(rest / 1_000_000), us = Int(rest % 1_000_000)
        func pad(_ v: Int, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        var out = Day(raw: Int32(days)).description + "T" + pad(secs / 3600, 2) + ":" + pad(secs / 60 % 60, 2) + ":" + pad(secs % 60, 2)
        if us != 0 {
            var f = pad(us, 6)
            while f.hasSuffix("0") { f.removeLast() }
            out += "." + f
        }
        return out + "Z"
    }

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
}
