import Foundation
import Testing
import TallyTestSupport

/// The query threads' scheduling settings of `tally serve` (docs/OPERATIONS.md): values out of
/// range are refused at start with a message naming the setting; `TALLY_QUERY_SCHED=idle` puts
/// the threads that ran heavy queries under `SCHED_IDLE` (policy 5 in `/proc`), and the default
/// lowers them to nice 19. (`TALLY_MERGE_SCHED`'s values are refused the same way; the merge
/// thread's priority is `BackgroundThreadTests`'.)
@Suite(.serialized) struct QueryThreadSettingsTests {
    /// Runs `tally serve` with `environment` until it exits (or for at most 10 s): exit status and stderr.
    static func refused(_ environment: [String: String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = SeedReplayTests.executable
        p.arguments = ["serve", "--port", "0", "--no-binary"]
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test func badValuesAreRefusedAtStart() throws {
        for (env, message) in [(["TALLY_QUERY_NICE": "25"], "TALLY_QUERY_NICE must be from 0 to 19; got 25"),
                               (["TALLY_QUERY_SCHED": "fast"], "TALLY_QUERY_SCHED must be nice or idle; got fast"),
                               (["TALLY_MERGE_SCHED": "low"], "TALLY_MERGE_SCHED must be nice or idle; got low")] {
            let (status, text) = try Self.refused(env)
            #expect(status != 0 && text.contains(message), "\(env): exit \(status), \(text.prefix(300))")
        }
    }

    /// The scheduling policy and nice value of every thread of `pid` named `TP-#…` (NIO's thread pool).
    static func queryThreads(_ pid: Int32) -> [(policy: Int, nice: Int)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { tid in
            guard let comm = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8), comm.hasPrefix("TP-#"),
                  let sched = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/sched", encoding: .utf8),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8) else { return nil }
            let policy = sched.split(separator: "\n").first { $0.hasPrefix("policy") }.flatMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
            // stat: "pid (comm) state …"; nice is field 19, counted after the closing parenthesis.
            let fields = stat[stat.lastIndex(of: ")")!...].split(separator: " ")
            guard let policy, fields.count > 17, let nice = Int(fields[17]) else { return nil }
            return (policy, nice)
        }
    }

    @Test(arguments: [("idle", 5, 0), ("nice", 0, 19)])
    func heavyQueriesRunOnThreadsOfThePolicy(setting: String, policy: Int, nice: Int) throws {
        let port = 18_960 + Int(getpid() % 20) + (setting == "idle" ? 0 : 20)
        let p = Process()
        p.executableURL = SeedReplayTests.executable
        p.arguments = ["serve", "--port", String(port), "--no-binary", "--query-threads", "2"]
        p.environment = ProcessInfo.processInfo.environment.merging(["TALLY_QUERY_SCHED": setting]) { $1 }
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { p.terminate(); p.waitUntilExit() }
        var ready = false
        for _ in 0..<400 where !ready {
            ready = (try? HTTPTestClient(port: port).request("GET", "/readyz"))?.status == 200
            if !ready { Thread.sleep(forTimeInterval: 0.025) }
        }
        try #require(ready)
        // Heavy: the users dimension sorted by active days goes to the query threads.
        let heavy = "/v2/clients/aa7cf840-9ca9-46a3-9778-9015d6580d50/analytics/apps/utilization/users"
            + "?start_date=2025-03-15&end_date=2026-03-15&granularity=monthly&sort_by=active_days"
        for _ in 0..<6 { #expect(try HTTPTestClient(port: port).request("GET", heavy, token: "YOUR_API_TOKEN").status == 200) }
        let threads = Self.queryThreads(p.processIdentifier)
        #expect(!threads.isEmpty, "no query thread found")
        #expect(threads.allSatisfy { $0.policy == policy && (policy == 5 || $0.nice == nice) }, "\(setting): \(threads)")
    }
}
