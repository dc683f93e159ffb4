import Testing
import TallyIngest
import TallyStorage
import TallyTestSupport

@Suite struct LenientModeTests {
    /// 3 bad UUIDs, 2 unknown users and 1 bad date spread over both usage parts (one on the very
    /// last row of the last part): skipped and counted by reason; everything else loads.
    @Test(arguments: [[Codec.none], [.lz4, .gzip]])
    func skipsBadUsageRowsAndCountsThemByReason(_ codecs: [Codec]) throws {
        let compressions = codecs.map(\.compression)
        var d = TestDump()
        d.compressions = compressions
        let p0 = d.usagePart(0), p1 = d.usagePart(1)
        try #require(p0.count > 50 && p1.count > 50)
        let bad: [(row: Int, column: String, value: String, kind: LoadError.Kind)] = [
            (p0.lowerBound + 5, "user_id", "nope", .badUUID),
            (p0.lowerBound + 20, "user_id", freshUUID(), .unknownUser),
            (p0.lowerBound + 40, "activity_date", "2024-02-30", .badDate),
            (p1.lowerBound + 7, "application_id", "6ba7b810-9dad-11d1-80b4-00c04fd430cz", .badUUID),
            (p1.lowerBound + 30, "user_id", freshUUID().lowercased(), .unknownUser),
            (p1.upperBound - 1, "client_id", "", .badUUID),
        ]
        for b in bad { d.set("app_usage_reports", row: b.row, b.column, b.value) }
        let tmp = TempDir()
        try d.write(to: tmp.path)

        // Strict refuses the same dump at the first bad row.
        let strict = try #require(throws: LoadError.self) { _ = try DumpLoader.load(folder: tmp.path) }
        #expect(strict.kind == .badUUID && strict.line == 5 + 2 && strict.file.hasPrefix("app_usage_reports/part-0000.csv"))

        let (store, report) = try DumpLoader.load(folder: tmp.path, mode: .lenient)
        #expect(report.skipped == ["bad_uuid": 3, "unknown_user": 2, "bad_date": 1])
        #expect(report.skippedTotal == 6)
        #expect(report.usageRecords == d["app_usage_reports"].rows.count)

        let badRows = Set(bad.map(\.row))
        let valid = Set(d.random.usage.enumerated().filter { !badRows.contains($0.offset) }
            .map { "\($0.element.client) \($0.element.user) \($0.element.app) \($0.element.day)" })
        #expect(store.usageRowCount == valid.count)
        #expect(StoreDigest(store).usage == valid)

        // Each skipped row is reported where it is, in reading order.
        let suffix = [FileCompression.none: ".csv", .gzip: ".csv.gz", .lz4: ".csv.lz4"]
        let want = bad.map { b -> String in
            let part = p0.contains(b.row) ? 0 : 1
            let range = part == 0 ? p0 : p1
            let file = "app_usage_reports/part-000\(part)\(suffix[compressions[part % compressions.count]]!)"
            let col = d.index("app_usage_reports", b.column) + 1
            return "\(file):\(b.row - range.lowerBound + 2):\(col) \(b.column) \(b.kind.rawValue)"
        }
        let got = report.skippedExamples.map { "\($0.file):\($0.line):\($0.column) \($0.columnName ?? "-") \($0.kind.rawValue)" }
        #expect(got == want)
    }

    /// A skipped user takes its usage rows and memberships with it, each counted as an unknown user.
    @Test func skippedUserCascades() throws {
        var d = TestDump()
        let victimRow = try #require(d.random.users.indices.first { i in
            let u = d.random.users[i].id
            return d.random.usage.contains { $0.user == u } && d.random.memberships.contains { $0.user == u }
        })
        let victim = d.random.users[victimRow].id
        d.set("users", row: victimRow, "email", nil)
        let tmp = TempDir()
        try d.write(to: tmp.path)

        let (store, report) = try DumpLoader.load(folder: tmp.path, mode: .lenient)
        let usageRows = d.random.usage.filter { $0.user == victim }.count
        let memberships = d.random.memberships.filter { $0.user == victim }.count
        #expect(report.skipped == ["null_value": 1, "unknown_user": usageRows + memberships])
        #expect(report.recordsByTable["users"] == d.random.users.count)
        #expect(store.clients.allSatisfy { $0.userIndex[victim] == nil })
        let valid = Set(d.random.usage.filter { $0.user != victim }.map { "\($0.client) \($0.user) \($0.app) \($0.day)" })
        #expect(StoreDigest(store).usage == valid)
        #expect(store.usageRowCount == valid.count)
    }

    /// A clean dump loads the same in both modes and skips nothing.
    @Test func cleanDumpSkipsNothing() throws {
        let d = TestDump()
        let tmp = TempDir()
        try d.write(to: tmp.path)
        let (strict, _) = try DumpLoader.load(folder: tmp.path)
        let (lenient, report) = try DumpLoader.load(folder: tmp.path, mode: .lenient)
        #expect(report.skipped.isEmpty && report.skippedExamples.isEmpty)
        #expect(StoreDigest(lenient) == StoreDigest(strict))
        #expect(StoreDigest(strict).usage == d.expectedUsage)
    }

    /// Missing columns stop a lenient load too: they are not a row's fault.
    @Test func missingColumnStillRefused() throws {
        var d = TestDump()
        d["users"].header[d.index("users", "is_active")] = "active"
        try expectRefused(valid: TestDump(), bad: d,
                          Expected(kind: .missingColumn, file: "users.csv", line: 1, column: 8, columnName: "is_active"),
                          mode: .lenient)
    }
}

@Suite struct LenientFieldCountTests {
    /// A record with too many or too few fields is a row error: strict refuses it, lenient skips it.
    @Test func wrongFieldCountIsSkippedWhenLenient() throws {
        let d = TestDump()
        let tmp = TempDir()
        try d.write(to: tmp.path)
        // Append two malformed records to the plain users table.
        let users = tmp.sub("users.csv")
        var text = String(decoding: try fileBytes(users), as: UTF8.self)
        text += "a,b\n\(freshUUID()),x,y,z,1,2,3,4,5\n"
        try writeBytes(Array(text.utf8), to: users)
        let strict = try #require(throws: LoadError.self) { _ = try DumpLoader.load(folder: tmp.path) }
        #expect(strict.kind == .badCSV && strict.file == "users.csv")
        let (store, report) = try DumpLoader.load(folder: tmp.path, mode: .lenient)
        #expect(report.skipped == ["bad_csv": 2])
        #expect(store.clients.reduce(0) { $0 + $1.users.count } == d.random.users.count)
    }
}

/// Dates outside the accepted window (issue 15): one typo must not stretch a client's per-day
/// tables over millennia. Strict loads refuse the row by file, line and column; lenient loads
/// skip and count it, and cost what the clean dump costs.
@Suite struct DateWindowTests {
    @Test(arguments: ["9999-12-31", "0001-01-01", "1999-12-31"])
    func aDateOutsideTheWindowIsRefusedOrSkipped(_ date: String) throws {
        var d = TestDump()
        let row = d.usagePart(1).lowerBound + 3
        let clean = TempDir()
        try d.write(to: clean.path)
        let (cleanStore, _) = try DumpLoader.load(folder: clean.path)
        d.set("app_usage_reports", row: row, "activity_date", date)
        let tmp = TempDir()
        try d.write(to: tmp.path)

        let e = try #require(throws: LoadError.self) { _ = try DumpLoader.load(folder: tmp.path) }
        #expect(e.kind == .dateOutOfRange && e.file.hasPrefix("app_usage_reports/part-0001"))
        #expect(e.line == row - d.usagePart(1).lowerBound + 2 && e.column == d.index("app_usage_reports", "activity_date") + 1)
        #expect("\(e)".contains(date) && "\(e)".contains("--date-range"))

        let (store, report) = try DumpLoader.load(folder: tmp.path, mode: .lenient)
        #expect(report.skipped == ["date_out_of_range": 1])
        let cleanBytes = Double(cleanStore.byteCount), bytes = Double(store.byteCount)
        #expect(abs(bytes - cleanBytes) <= 0.1 * cleanBytes, "store bytes \(bytes) against the clean dump's \(cleanBytes)")
        for c in store.clients {
            let before = try #require(cleanStore.client(c.info.id))
            #expect(c.usage?.firstDay ?? Day(raw: 0) >= before.usage?.firstDay ?? Day(raw: 0))
            #expect(c.usage?.newestDay ?? Day(raw: 0) <= before.usage?.newestDay ?? Day(raw: 0))
        }

        // A window that holds the date takes the row (kept small here: the day tables follow it).
        if date == "1999-12-31" {
            let wide = DateWindow(first: Day("1999-01-01")!, last: Day("2030-12-31")!)
            let (all, r) = try DumpLoader.load(folder: tmp.path, dates: wide)
            #expect(r.skippedTotal == 0 && all.clients.contains { $0.usage?.firstDay == Day("1999-12-31")! })
        }
    }

    @Test func parsingAndTheStandardWindow() {
        #expect(DateWindow(parsing: "2000-01-01..2030-12-31") == DateWindow(first: Day("2000-01-01")!, last: Day("2030-12-31")!))
        #expect(DateWindow(parsing: "2024-02-29..2024-02-29") != nil)
        for bad in ["2000-01-01", "2030-01-01..2000-01-01", "2000-01-01..", "..2000-01-01", "2000-01-01...2001-01-01",
                    "2000-13-01..2001-01-01", "a..b", ""] {
            #expect(DateWindow(parsing: bad) == nil, "\(bad)")
        }
        let w = DateWindow.standard(today: Day("2026-11-30")!)
        #expect(w.first == Day("2000-01-01")! && w.last == Day("2027-12-01")!)
        #expect(w.contains(Day("2000-01-01")!) && w.contains(Day("2027-12-01")!))
        #expect(!w.contains(Day("1999-12-31")!) && !w.contains(Day("2027-12-02")!))
    }
}
