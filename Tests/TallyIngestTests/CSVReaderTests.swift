import Testing
import TallyIngest

/// CSVReader driven directly over an in-memory source that hands out 1…9 bytes per read, with a
/// 16-byte initial buffer, so every record boundary, quote and line end falls across refills.
@Suite struct CSVReaderTests {
    static let chunkSizes = Array(1...9)
    static let long = String(repeating: "abcdefghij", count: 10)  // 100 bytes > 16-byte buffer
    static let longQuoted = String(repeating: "x", count: 40) + "\"\n" + String(repeating: "y", count: 40)

    /// Quoted commas, doubled quotes, LF and CRLF inside quotes, NULL vs "", CRLF and LF line
    /// ends, a BOM, a record longer than the buffer, a last line without newline.
    static let document = "\u{FEFF}id,name,note\r\n"
        + "1,\"a,b\",x\r\n"
        + "2,\"say \"\"hi\"\"\",\r\n"
        + "3,\"multi\nline\",\"\"\n"
        + "4,\"crlf\r\ninside\r\nquote\",z\n"
        + "5,,\"\"\n"
        + "6,\(long),\"" + longQuoted.replacingOccurrences(of: "\"", with: "\"\"") + "\"\n"
        + "\"7\",\"\",no newline"

    static let expected: [Record] = [
        Record(1, ["id", "name", "note"]),
        Record(2, ["1", "a,b", "x"]),
        Record(3, ["2", "say \"hi\"", nil]),
        Record(4, ["3", "multi\nline", ""]),
        Record(6, ["4", "crlf\r\ninside\r\nquote", "z"]),
        Record(9, ["5", nil, ""]),
        Record(10, ["6", long, longQuoted]),
        Record(12, ["7", "", "no newline"]),
    ]

    @Test(arguments: chunkSizes)
    func documentInTinyChunks(_ chunk: Int) throws {
        #expect(try readRecords(MemorySource(Self.document, chunks: [chunk])) == Self.expected)
    }

    @Test func documentInOneRead() throws {
        #expect(try readRecords(MemorySource(Self.document), capacity: 1 << 20) == Self.expected)
    }

    /// Irregular chunk patterns, so a refill can land anywhere, including inside the BOM.
    @Test(arguments: [[1, 2], [2, 1], [2, 3], [1, 1, 5], [3, 7, 1, 2], [5, 1, 9, 4]])
    func documentInIrregularChunks(_ pattern: [Int]) throws {
        #expect(try readRecords(MemorySource(Self.document, chunks: pattern)) == Self.expected)
    }

    /// Records wider than the reader's first field table (16) and than the one before them:
    /// the table grows mid-record, in tiny reads (where a refill re-reads the record) and in one
    /// read (where the fields already read must move to the bigger table).
    @Test(arguments: chunkSizes)
    func recordsOfManyFields(_ chunk: Int) throws {
        func row(_ n: Int, _ tag: String) -> [String?] {
            (0..<n).map { k in k % 7 == 3 ? nil : k % 5 == 1 ? "\(tag)\"\(k)\"" : "\(tag)\(k)" }
        }
        func line(_ fields: [String?]) -> String {
            fields.map { f in f.map { $0.contains("\"") ? "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : $0 } ?? "" }
                .joined(separator: ",") + "\n"
        }
        let rows = [row(3, "a"), row(17, "b"), row(40, "c"), row(5, "d"), row(70, "e")]
        let text = rows.map(line).joined()
        #expect(try readRecords(MemorySource(text, chunks: [chunk])).map(\.fields) == rows)
        // In one read no refill starts a record again: the table grows in the middle of one.
        #expect(try readRecords(MemorySource(text), capacity: 1 << 20).map(\.fields) == rows)
    }

    @Test(arguments: chunkSizes)
    func nullVersusEmptyString(_ chunk: Int) throws {
        let csv = CSVReader(source: MemorySource("a,b,c\n,\"\",\n\"\",,\"\"\n", chunks: [chunk]), file: "t.csv",
                            initialCapacity: 16)
        #expect(try csv.next())
        #expect(try csv.next())
        #expect(csv.fieldCount == 3)
        #expect(csv.isNull(0) && !csv.isNull(1) && csv.isNull(2))
        #expect(try csv.string(0) == nil && csv.string(1) == "" && csv.string(2) == nil)
        #expect(try csv.next())
        #expect(!csv.isNull(0) && csv.isNull(1) && !csv.isNull(2))
        #expect(try !csv.next())
        #expect(try !csv.next())  // stays at the end
    }

    @Test(arguments: chunkSizes)
    func lineEndsAndLastLine(_ chunk: Int) throws {
        let cases: [(String, [Record])] = [
            ("a\nb", [Record(1, ["a"]), Record(2, ["b"])]),
            ("a\r\nb\r\n", [Record(1, ["a"]), Record(2, ["b"])]),
            ("a,b\r\nc,d\ne,f", [Record(1, ["a", "b"]), Record(2, ["c", "d"]), Record(3, ["e", "f"])]),
            ("\"q\"", [Record(1, ["q"])]),
            ("\"q\"\r\n", [Record(1, ["q"])]),
            ("a,", [Record(1, ["a", nil])]),
            ("a,\"\"", [Record(1, ["a", ""])]),
            ("x\n\"a\nb\"", [Record(1, ["x"]), Record(2, ["a\nb"])]),
            ("", []),
            ("\u{FEFF}", []),
            ("\u{FEFF}a", [Record(1, ["a"])]),
            ("\n", [Record(1, [nil])]),
        ]
        for (text, want) in cases {
            #expect(try readRecords(MemorySource(text, chunks: [chunk])) == want, "\(text.debugDescription)")
        }
    }

    /// Only a BOM at the very start is dropped; U+FEFF anywhere else is data.
    @Test(arguments: chunkSizes.map { [$0] } + [[2, 3], [1, 3], [2, 7], [4, 3]])
    func bomOnlyAtStart(_ pattern: [Int]) throws {
        let text = "\u{FEFF}id,name\n1,\u{FEFF}x\n\u{FEFF}2,\"\u{FEFF}\"\n"
        #expect(try readRecords(MemorySource(text, chunks: pattern)) ==
                [Record(1, ["id", "name"]), Record(2, ["1", "\u{FEFF}x"]), Record(3, ["\u{FEFF}2", "\u{FEFF}"])])
        let noBOM = "ab\u{FEFF}c,d\n"
        #expect(try readRecords(MemorySource(noBOM, chunks: pattern)) == [Record(1, ["ab\u{FEFF}c", "d"])])
    }

    /// A 10 kB quoted field with escaped quotes and line breaks, read 7 bytes at a time into a
    /// buffer that starts at 16 bytes.
    @Test(arguments: [1, 7])
    func recordMuchLongerThanTheBuffer(_ chunk: Int) throws {
        var big = ""
        for i in 0..<500 { big += "\(i % 10)\"\",\n" + String(repeating: "z", count: i % 13) }
        let quoted = "\"" + big.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let text = "h1,h2\n" + quoted + ",tail\r\nnext,row\n"
        let lines = big.filter { $0 == "\n" }.count
        let got = try readRecords(MemorySource(text, chunks: [chunk]))
        #expect(got == [Record(1, ["h1", "h2"]), Record(2, [big, "tail"]), Record(3 + lines, ["next", "row"])])
    }

    struct SyntaxError: Sendable, CustomTestStringConvertible {
        var text: String
        var line: Int
        var column: Int
        var mentions: String
        var testDescription: String { text.debugDescription }
    }

    static let syntaxErrors: [SyntaxError] = [
        SyntaxError(text: "h1,h2\n1,\"a\nb\"\n2,x\"y\n", line: 4, column: 2, mentions: "no quote inside an unquoted field"),
        SyntaxError(text: "h1,h2\n1,\"a\r\nb\"\n2,\"open\n3,4\n", line: 4, column: 2, mentions: "closing quote"),
        SyntaxError(text: "h1,h2\n\"a\nb\",\"c\nd\"\n1,2\r3\n", line: 5, column: 2, mentions: "LF after CR"),
        SyntaxError(text: "h1,h2\n1,2\r", line: 2, column: 2, mentions: "LF after CR"),
        SyntaxError(text: "h1,h2\n\"a\"b,c\n", line: 2, column: 1, mentions: "comma or line end after a closing quote"),
        SyntaxError(text: "h1,h2\nx,\"a\"\rc\n", line: 2, column: 2, mentions: "comma or line end after a closing quote"),
        SyntaxError(text: "h1,h2\n\"\"\"", line: 2, column: 1, mentions: "closing quote"),
        SyntaxError(text: "\"h1", line: 1, column: 1, mentions: "closing quote"),
    ]

    @Test(arguments: syntaxErrors, chunkSizes)
    func syntaxErrorsNameLineAndColumn(_ e: SyntaxError, _ chunk: Int) throws {
        let error = try #require(throws: LoadError.self) {
            _ = try readRecords(MemorySource(e.text, chunks: [chunk]), file: "dir/t.csv")
        }
        #expect(error.kind == .badCSV)
        #expect(error.file == "dir/t.csv")
        #expect(error.line == e.line)
        #expect(error.column == e.column)
        #expect(error.expected.contains(e.mentions), "\(error)")
        #expect(error.description.hasPrefix("dir/t.csv:\(e.line):\(e.column)"))
    }

    @Test(arguments: chunkSizes)
    func invalidUTF8IsRefusedOnlyWhenReadAsText(_ chunk: Int) throws {
        let bytes = Array("a,b\n\"x\ny\",".utf8) + [0xE2, 0x82] + Array(",ok\n".utf8)
        let csv = CSVReader(source: MemorySource(bytes, chunks: [chunk]), file: "t.csv", initialCapacity: 16)
        #expect(try csv.next())
        #expect(try csv.next())
        #expect(csv.line == 2 && csv.fieldCount == 3)
        #expect(Array(csv.bytes(1)) == [0xE2, 0x82])  // raw bytes are available
        #expect(try csv.string(2) == "ok")
        let error = try #require(throws: LoadError.self) { _ = try csv.string(1, name: "name") }
        #expect(error.kind == .badText && error.line == 2 && error.column == 2 && error.columnName == "name")
        #expect(error.expected.contains("UTF-8"))
    }

    /// Many records of varying length: the buffer keeps only the current record, so no record
    /// is lost or split however the reads fall.
    @Test(arguments: [1, 3, 8, 64])
    func manyRecords(_ chunk: Int) throws {
        var text = "n,s\r\n"
        var want = [Record(1, ["n", "s"])]
        var line = 2
        for i in 0..<300 {
            let s = String(repeating: "é", count: i % 17) + (i % 5 == 0 ? "\n," : "")
            text += "\(i),\(s.isEmpty || s.contains(",") ? "\"\(s)\"" : s)" + (i % 2 == 0 ? "\n" : "\r\n")
            want.append(Record(line, [String(i), s]))
            line += 1 + (i % 5 == 0 ? 1 : 0)
        }
        #expect(try readRecords(MemorySource(text, chunks: [chunk])) == want)
    }
}
