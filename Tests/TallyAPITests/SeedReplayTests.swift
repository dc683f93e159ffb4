import Foundation
import Testing
import TallyTestSupport

/// The seeds' four example requests (seed 000's two, seed 001's two), host replaced, against
/// `tally serve` started with no arguments: the bundled sample on 127.0.0.1:8080 with the demo
/// token. Every number SPEC §6 lists is checked, with the two corrected slips.
@Suite(.serialized) struct SeedReplayTests {
    static var repository: URL {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }

    /// The `tally` executable built beside this test bundle.
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tally")
    }

    @Test func seedRequestsAgainstTheDefaultServer() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path),
                     "build the tally executable first (swift build): \(Self.executable.path)")
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["serve"]
        process.currentDirectoryURL = Self.repository
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        // Wait for readiness (the sample loads after the listener is up).
        var ready = false
        for _ in 0..<600 where !ready {
            if let c = try? HTTPTestClient(port: 8080), let r = try? c.request("GET", "/readyz"), r.status == 200 {
                ready = true
            } else {
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        try #require(ready, "tally serve did not become ready on 127.0.0.1:8080")
        let c = try HTTPTestClient(port: 8080)
        let base = "/v2/clients/aa7cf840-9ca9-46a3-9778-9015d6580d50/analytics/apps"

        // Seed 000, basic list for February 2026.
        let f1 = try c.request("GET", base + "/ai/users?start_date=2026-02-01&end_date=2026-02-28", token: "YOUR_API_TOKEN")
        #expect(f1.status == 200)
        #expect(f1.header("deprecation") != nil && f1.header("link")?.contains("rel=\"successor-version\"") == true)
        let rows1 = f1.object["data"] as? [[String: Any]] ?? []
        #expect(rows1.map { ($0["app"] as? [String: Any])?["canonical_name"] as? String } == ["ChatGPT", "Jasper", "Bard", "Claude"])
        #expect(rows1.map { ($0["user_count"] as? [String: Any])?["value"] as? Int } == [52, 40, 35, 28])
        #expect(rows1.map { $0["usage_level"] as? String } == ["heavy", "heavy", "medium", "light"])
        #expect(f1.object["total_count"] as? Int == 4 && f1.object["next_cursor"] is NSNull && f1.object["period"] == nil)

        // Seed 000, with comparison, sorted by name.
        let f2 = try c.request("GET", base + "/ai/users?start_date=2026-02-01&end_date=2026-02-28&compare_start_date=2026-01-01"
                               + "&compare_end_date=2026-01-31&sort_by=canonical_name&sort_order=asc", token: "YOUR_API_TOKEN")
        let rows2 = f2.object["data"] as? [[String: Any]] ?? []
        func m(_ row: [String: Any], _ k: String) -> [String: Any] { row[k] as? [String: Any] ?? [:] }
        #expect(rows2.map { m($0, "app")["canonical_name"] as? String } == ["Bard", "ChatGPT", "Claude", "Jasper"])
        #expect(rows2.map { m($0, "user_count")["compare_value"] as? Int } == [36, 46, nil, 37])
        #expect(rows2.map { m($0, "user_count")["change_pct"] as? Double } == [-2.8, 13.0, nil, 8.1])
        #expect(m(rows2[2], "user_count")["compare_value"] is NSNull)
        // change_pct is written with one decimal, as the seed shows it.
        #expect(f2.text.contains("\"change_pct\":13.0"))

        // Seed 001, departments using unapproved apps, with and without comparison.
        let b1 = try c.request("GET", base + "/utilization/departments?granularity=monthly&start_date=2026-02-01"
                               + "&end_date=2026-02-28&is_approved=false", token: "YOUR_API_TOKEN")
        let d1 = b1.object["data"] as? [[String: Any]] ?? []
        #expect(d1.map { m($0, "department")["name"] as? String } == ["Engineering", "Product", "Design", "Marketing", "Sales"])
        #expect(d1.map { m($0, "user_count")["value"] as? Int } == [34, 22, 18, 15, 12])
        #expect(d1.map { m($0, "app_count")["value"] as? Int } == [6, 5, 4, 3, 2])
        #expect(b1.object["total_count"] as? Int == 5)
        let b2 = try c.request("GET", base + "/utilization/departments?granularity=monthly&start_date=2026-02-01"
                               + "&end_date=2026-02-28&compare_start_date=2026-01-01&compare_end_date=2026-01-31"
                               + "&is_approved=false", token: "YOUR_API_TOKEN")
        let d2 = b2.object["data"] as? [[String: Any]] ?? []
        #expect(d2.map { m($0, "user_count")["compare_value"] as? Int } == [31, 20, 19, 14, 10])
        #expect(d2.map { m($0, "user_count")["change_pct"] as? Double } == [9.7, 10.0, -5.3, 7.1, 20.0])
        #expect(d2.map { m($0, "app_count")["compare_value"] as? Int } == [5, 5, 3, 2, 2])
        #expect(d2.map { m($0, "app_count")["change_pct"] as? Double } == [20.0, 0.0, 33.3, 50.0, 0.0])
        let period = b2.object["period"] as? [String: Any]
        #expect(period?["start_date"] as? String == "2026-02-01" && period?["compare_end_date"] as? String == "2026-01-31")

        // SIGTERM: a clean stop.
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}

/// `tally serve` refuses what it must not start with, before listening: a non-loopback address
/// without a tokens file, and thread counts below one.
@Suite struct ServeOptionTests {
    /// Runs `tally ARGS` to its end; its exit status and standard error.
    static func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = SeedReplayTests.executable
        process.arguments = arguments
        process.currentDirectoryURL = SeedReplayTests.repository
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test(arguments: [
        (["serve", "--host", "0.0.0.0", "--port", "0"], "--tokens is required"),
        (["serve", "--threads", "0", "--port", "0"], "--threads must be at least 1"),
        (["serve", "--query-threads", "0", "--port", "0"], "--query-threads must be at least 1"),
    ])
    func refuses(_ arguments: [String], _ message: String) throws {
        try #require(FileManager.default.isExecutableFile(atPath: SeedReplayTests.executable.path))
        let (status, stderr) = try Self.run(arguments)
        #expect(status != 0)
        #expect(stderr.contains(message), "\(arguments): \(stderr)")
    }
}
