/// Streams RFC 4180 records out of a ``ByteSource`` without holding the file: one buffer that
/// grows only to the longest record, refilled as records are consumed.
///
/// An empty unquoted field is NULL; `""` is an empty string. Line ends are LF or CRLF; a quoted
/// field may span lines. A UTF-8 byte-order mark at the start is skipped.
public final class CSVReader {
    public let file: String
    var source: any ByteSource
    var buffer: UnsafeMutableRawBufferPointer
    var pos = 0
    var end = 0
    var eof = false
    var firstChunk = true
    /// Physical line of the next record.
    var nextLine = 1
    /// Physical line where the current record starts (1-based).
    public private(set) var line = 0
    public private(set) var fieldCount = 0
    /// The current record's fields (``fieldCapacity`` of them allocated). A raw table, and the
    /// record parsed into locals: with four arrays and counters kept in this class's properties,
    /// every write inside the loop was a dynamic exclusivity check, about 30% of a CSV load's
    /// samples under `perf` (2026-12-01; docs/BENCHMARKS.md).
    var fields: UnsafeMutablePointer<Field>
    var fieldCapacity = 16

    struct Field {
        var start: Int
        var end: Int
        var quoted: Bool
        var escaped: Bool
    }

    public init(source: any ByteSource, file: String, initialCapacity: Int = 1 << 20) {
        self.source = source
        self.file = file
        buffer = .allocate(byteCount: initialCapacity, alignment: 16)
        fields = .allocate(capacity: fieldCapacity)
    }

    deinit {
        buffer.deallocate()
        fields.deallocate()
    }

    /// Twice the room for fields; returns the new table.
    private func growFields() -> UnsafeMutablePointer<Field> {
        let bigger = UnsafeMutablePointer<Field>.allocate(capacity: fieldCapacity * 2)
        bigger.moveInitialize(from: fields, count: fieldCapacity)
        fields.deallocate()
        fields = bigger
        fieldCapacity *= 2
        return bigger
    }

    /// Bytes of text read so far (after decompression).
    public private(set) var bytesConsumed = 0

    /// Bytes consumed from storage so far (compressed, for compressed files).
    public var storedBytesRead: Int { source.storedBytesRead }

    func error(_ expected: String, column: Int, found: String? = nil, kind: LoadError.Kind = .badCSV) -> LoadError {
        LoadError(kind, file: file, line: line, column: column, expected: expected, found: found)
    }

    /// Reads more bytes, keeping the current record (from `keep`) at the buffer start.
    /// Returns the shift applied to offsets, or `nil` at end of input.
    func refill(keep: Int) throws -> Int? {
        if eof { return nil }
        let shift = keep
        let live = end - keep
        if live > 0 && keep > 0 {
            (buffer.baseAddress! ).copyMemory(from: buffer.baseAddress! + keep, byteCount: live)
        }
        end = live
        if end == buffer.count {
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
            bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: end)
            buffer.deallocate()
            buffer = bigger
        }
        var n = try read(at: end)
        if firstChunk {
            // Only the first three bytes of the stream can be a BOM; they may come over several reads.
            firstChunk = false
            while n > 0 && n < 3 && end + n < buffer.count {
                let m = try read(at: end + n)
                if m == 0 { break }
                n += m
            }
            let b = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            if n >= 3 && b[end] == 0xEF && b[end + 1] == 0xBB && b[end + 2] == 0xBF {
                (buffer.baseAddress! + end).copyMemory(from: buffer.baseAddress! + end + 3, byteCount: n - 3)
                n -= 3
                if n == 0 { n = try read(at: end) }  // the BOM was all that came: 0 bytes is not the end
            }
        }
        if n == 0 { eof = true }
        bytesConsumed += n
        end += n
        return shift
    }

    /// Reads from the source into the buffer from `offset`, turning decompression errors into load errors.
    private func read(at offset: Int) throws -> Int {
        do {
            return try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]))
        } catch let e as DecompressionError {
            line = nextLine
            throw error(e.message, column: 1, kind: e.truncated ? .truncated : .badCompression)
        }
    }

    /// Advances to the next record; `false` at the end of the file.
    public func next() throws -> Bool {
        restart: while true {
            let b = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            // This record is parsed into locals: a refill changes the buffer, `pos` and `end`,
            // and every path that refills starts the record again from here.
            let end = self.end
            var i = pos
            var lines = 0
            var count = 0
            var anyEscaped = false
            var f = fields
            var capacity = fieldCapacity
            fieldCount = 0
            line = nextLine
            if i == end {
                guard let s = try refill(keep: pos) else { return false }
                pos -= s
                if self.end == pos { return false }
                continue restart
            }
            while true {
                // One field starting at i.
                if count == capacity {
                    f = growFields()
                    capacity = fieldCapacity
                }
                if i < end && b[i] == 34 {  // '"'
                    var j = i + 1
                    var escaped = false
                    while true {
                        if j >= end {
                            if try refillOrEOF() { continue restart }
                            throw error("a closing quote before the end of the file", column: count + 1)
                        }
                        let c = b[j]
                        if c == 34 {
                            if j + 1 >= end {
                                if try refillOrEOF() { continue restart }
                                break
                            }
                            if b[j + 1] == 34 { escaped = true; j += 2; continue }
                            break
                        }
                        if c == 10 { lines += 1 }
                        j += 1
                    }
                    // j is the closing quote.
                    f[count] = Field(start: i + 1, end: j, quoted: true, escaped: escaped)
                    anyEscaped = anyEscaped || escaped
                    count += 1
                    i = j + 1
                    if i >= end {
                        if try refillOrEOF() { continue restart }
                        return finish(at: end, lines: lines, count: count, anyEscaped: anyEscaped)
                    }
                    let c = b[i]
                    if c == 44 { i += 1; continue }
                    if c == 10 { return finish(at: i + 1, lines: lines + 1, count: count, anyEscaped: anyEscaped) }
                    if c == 13 {
                        if i + 1 >= end { if try refillOrEOF() { continue restart } }
                        if i + 1 < end && b[i + 1] == 10 { return finish(at: i + 2, lines: lines + 1, count: count, anyEscaped: anyEscaped) }
                    }
                    throw error("a comma or line end after a closing quote", column: count,
                                found: String(decoding: [c], as: UTF8.self))
                } else {
                    var j = i
                    while j < end {
                        let c = b[j]
                        if c == 44 || c == 10 || c == 13 || c == 34 { break }
                        j += 1
                    }
                    if j >= end {
                        if try refillOrEOF() { continue restart }
                        f[count] = Field(start: i, end: j, quoted: false, escaped: false)
                        count += 1
                        return finish(at: end, lines: lines, count: count, anyEscaped: anyEscaped)
                    }
                    let c = b[j]
                    if c == 34 {
                        throw error("no quote inside an unquoted field (quote the whole field)", column: count + 1)
                    }
                    f[count] = Field(start: i, end: j, quoted: false, escaped: false)
                    count += 1
                    if c == 44 { i = j + 1; continue }
                    if c == 10 { return finish(at: j + 1, lines: lines + 1, count: count, anyEscaped: anyEscaped) }
                    // CR
                    if j + 1 >= end { if try refillOrEOF() { continue restart } }
                    if j + 1 < end && b[j + 1] == 10 { return finish(at: j + 2, lines: lines + 1, count: count, anyEscaped: anyEscaped) }
                    throw error("LF after CR (line ends are LF or CRLF)", column: count)
                }
            }
        }
    }

    /// Refills keeping the current record; `true` when more bytes came (re-parse the record).
    private func refillOrEOF() throws -> Bool {
        guard let s = try refill(keep: pos) else { return false }
        pos -= s
        return true
    }

    private func finish(at next: Int, lines: Int, count: Int, anyEscaped: Bool) -> Bool {
        fieldCount = count
        if anyEscaped {
            // Only now: a record re-parsed after a refill must still see its original bytes.
            let b = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for k in 0..<count where fields[k].escaped { fields[k].end = unescape(b, fields[k].start, fields[k].end) }
        }
        pos = next
        nextLine += lines
        return true
    }

    /// Collapses doubled quotes in place; returns the new end.
    private func unescape(_ b: UnsafeMutablePointer<UInt8>, _ s: Int, _ e: Int) -> Int {
        var r = s, w = s
        while r < e {
            b[w] = b[r]
            if b[r] == 34 { r += 1 }
            r += 1
            w += 1
        }
        return w
    }

    /// The raw bytes of field `i` of the current record (quotes removed, `""` collapsed).
    @inline(__always)
    public func bytes(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        let b = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: UInt8.self)
        let f = fields[i]
        return UnsafeBufferPointer(start: b + f.start, count: f.end - f.start)
    }

    /// Whether field `i` is NULL: empty and unquoted.
    @inline(__always)
    public func isNull(_ i: Int) -> Bool {
        let f = fields[i]
        return !f.quoted && f.end == f.start
    }

    /// Field `i` as text, `nil` for NULL; throws on invalid UTF-8.
    public func string(_ i: Int, name: String? = nil) throws -> String? {
        if isNull(i) { return nil }
        guard let s = String(validating: bytes(i), as: UTF8.self) else {
            throw LoadError(.badText, file: file, line: line, column: i + 1, columnName: name,
                            expected: "UTF-8 text")
        }
        return s
    }

    /// Field `i` shown for an error message.
    public func display(_ i: Int) -> String { String(decoding: bytes(i), as: UTF8.self) }
}
