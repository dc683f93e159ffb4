import ArgumentParser
import Foundation
import NIOPosix
import TallyClient
import TallyWire

/// A load generator for the binary protocol: connections × requests in flight, for a bounded
/// time, on loopback only, reporting req/s and latency percentiles. Its query set is the one
/// `tools/load/dashboard.lua` sends over HTTP (keep the two in step), so both listeners can be
/// compared on the same work.
struct LoadTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test the binary protocol listener: req/s and p50/p99/p99.9 on a dashboard query mix (loopback only).")

    @Option(help: "Server address (loopback only).") var host = "127.0.0.1"
    @Option(help: "Binary protocol port.") var port = 8081
    @Option(help: "Token.") var token = "YOUR_API_TOKEN"
    @Option(help: "Client id the queries are about.") var client: String
    @Option(help: "Connections.") var connections = 4
    @Option(help: "Requests in flight on each connection.") var inFlight = 8
    @Option(help: "Seconds to run (at most 600).") var duration = 10.0
    @Option(help: "Query set: dashboard, light or heavy (as tools/load/dashboard.lua).") var mix = "dashboard"
    @Option(help: "Result format: json or compact.") var format = "json"

    func validate() throws {
        guard Serve.isLoopback(host) else { throw ValidationError("the load generator talks to loopback addresses only") }
        guard UUID(uuidString: client) != nil else { throw ValidationError("--client must be a UUID") }
        guard (1...1024).contains(connections), (1...1024).contains(inFlight) else {
            throw ValidationError("--connections and --in-flight must be 1…1024")
        }
        guard duration > 0 && duration <= 600 else { throw ValidationError("--duration must be in (0, 600] seconds") }
        guard Self.mixes[mix] != nil else { throw ValidationError("--mix must be dashboard, light or heavy") }
        guard format == "json" || format == "compact" else { throw ValidationError("--format must be json or compact") }
    }

    static let periods: [[(String, String)]] = [
        [("start_date", "2025-12-03"), ("end_date", "2026-01-01"), ("compare_start_date", "2025-11-03"), ("compare_end_date", "2025-12-02")],
        [("start_date", "2025-10-04"), ("end_date", "2026-01-01"), ("compare_start_date", "2025-07-06"), ("compare_end_date", "2025-10-03")],
        [("start_date", "2025-01-01"), ("end_date", "2026-01-01"), ("compare_start_date", "2024-01-01"), ("compare_end_date", "2024-12-31")],
        [("start_date", "2025-06-01"), ("end_date", "2025-06-30"), ("compare_start_date", "2025-05-01"), ("compare_end_date", "2025-05-31")],
    ]

    static let monthly = [("granularity", "monthly")]
    static let mixes: [String: [(WireEndpoint, [(String, String)])]] = [
        "dashboard": [
            (.summary, monthly), (.utilization, monthly), (.departments, monthly + [("is_approved", "false")]),
            (.categories, monthly), (.trend, [("granularity", "weekly")]), (.aiSummary, monthly), (.aiUsers, []),
            (.aiDepartments, monthly), (.aiNew, monthly), (.users, monthly + [("page_size", "20")]),
        ],
        "light": [(.summary, monthly), (.aiSummary, monthly)],
        "heavy": [(.users, monthly + [("sort_by", "active_days")])],
    ]

    /// The requests of a mix, in the order the wrk script sends them.
    static func requests(_ mix: String) -> [(WireEndpoint, [(String, String)])] {
        var out: [(WireEndpoint, [(String, String)])] = []
        for (e, params) in mixes[mix]! {
            for (i, p) in periods.enumerated() where mix != "heavy" || i == 2 {
                // The deprecated endpoint takes no comparison dates in the wrk script either
                // (they are sent and ignored); keep the same parameters.
                out.append((e, params + p))
            }
        }
        return out
    }

    func run() async throws {
        let requests = Self.requests(mix)
        let client = UUID(uuidString: self.client)!
        let format: WireFormat = format == "compact" ? .compact : .json
        var links: [TallyClient] = []
        for i in 0..<connections {
            links.append(try await TallyClient.connect(host: host, port: port, token: token, clientName: "loadtest-\(i)"))
        }
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .milliseconds(Int(duration * 1000))
        let (latencies, failures) = try await withThrowingTaskGroup(of: ([Int64], [String]).self) { group in
            for (c, link) in links.enumerated() {
                for k in 0..<inFlight {
                    group.addTask {
                        var lat: [Int64] = []
                        var failed: [String] = []
                        lat.reserveCapacity(100_000)
                        var i = c * inFlight + k
                        while clock.now < deadline {
                            let (e, params) = requests[i % requests.count]
                            i += 7
                            let t0 = clock.now
                            do {
                                _ = try await link.query(e, client: client, parameters: params, format: format)
                                let d = clock.now - t0
                                lat.append(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
                            } catch {
                                failed.append("\(e.path): \(error)")
                                if !link.isOpen { break }
                            }
                        }
                        return (lat, failed)
                    }
                }
            }
            var all: [Int64] = [], failures: [String] = []
            for try await (l, f) in group {
                all += l
                failures += f
            }
            return (all, failures)
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        for l in links { try? await l.close() }
        let sorted = latencies.sorted()
        func pct(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            let v = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
            return String(format: "%.2f ms", Double(v) / 1e6)
        }
        print("binary protocol, mix \(mix) (\(requests.count) distinct queries), \(format), "
              + "\(connections) connections × \(inFlight) in flight, \(String(format: "%.1f", seconds)) s")
        print("  requests:    \(sorted.count) answered, \(failures.count) failed")
        print("  Requests/sec: \(String(format: "%.0f", Double(sorted.count) / seconds))")
        print("  latency p50 \(pct(0.5))  p90 \(pct(0.9))  p99 \(pct(0.99))  p99.9 \(pct(0.999))  max \(pct(1.0))")
        for f in Set(failures).prefix(5) { print("  failure: \(f)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
