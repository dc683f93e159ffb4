import Foundation
import Testing
@testable import TallyAPI
import TallyServer
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// Appended events of a client's newest day go to a tail beside its usage index instead of a
/// rebuild (``UsageTail``); here every client takes them (`tailMinRows` 0). After every batch
/// every dashboard route, directory, insight and admin report answers as a store loaded from
/// scratch from the mirrored dump (and the reports as the brute-force reference); a row of
/// another day rebuilds the client with its tail; a snapshot stores the tails' rows and a
/// restart from it and the log answers the same.
@Suite(.serialized) struct TailAppendTests {
    /// `mergeMinRows` 1: every batch starts a merge in the background, installed with the rows
    /// that arrived meanwhile as the merged client's tail; answers are exact whichever is served.
    @Test(arguments: [nil, 1] as [Int?])
    func newestDayEventsAnswerAsIfTheDumpHeldThem(mergeMinRows: Int?) throws {
        let rig = try AppendTests.rig("tail", seed: 73, tailMinRows: 0, mergeMinRows: mergeMinRows)
        var dump = rig.dump
        var r = SeededRandom(seed: 73)
        let snapshot = NSTemporaryDirectory() + "tally-tail-\(getpid()).tsnap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        func batch(_ n: Int, backdated: Bool = false) throws {
            for client in dump.clients.map(\.id) {
                guard let day = rig.writer.store!.client(client)?.usage?.newestDay else { continue }
                let users = dump.users.filter { $0.client == client }.map(\.id), apps = dump.apps.filter { $0.client == client }.map(\.id)
                let held = dump.usage.filter { $0.client == client && $0.day == day }
                var events: [String] = []
                for k in 0..<Int.random(in: 1...40, using: &r) {
                    var row = RandomDump.Usage(client: client, user: users.randomElement(using: &r)!, app: apps.randomElement(using: &r)!, day: day)
                    if let h = held.randomElement(using: &r), r.chance(0.2) { row = h }
                    if backdated && k == 0 { row.day = day.adding(-Int.random(in: 1...200, using: &r)) }
                    dump.usage.append(row)
                    events.append(AppendTests.event(row.user, row.app, row.day.description))
                }
                let response = try AppendTests.post(rig, "[" + events.joined(separator: ",") + "]", client: client.description)
                try #require(response.status == 200, "batch \(n): \(response.text)")
            }
        }
        for n in 0..<5 {
            try batch(n, backdated: n == 3)
            let tailed = rig.writer.store!.clients.filter { $0.usage?.tail != nil }.count
            // Without merges: every client with usage has a tail, but after the backdated row.
            if mergeMinRows == nil {
                #expect(n == 3 ? tailed == 0 : tailed == rig.writer.store!.clients.filter { $0.usage != nil }.count,
                        "batch \(n): \(tailed) clients with a tail")
            }
            try DirectoryAppendTests.compare(rig.writer, dump, &r, "after batch \(n)")
        }
        // Freshness: the rows only in tails, and the age of the oldest, in /readyz and /metrics.
        let inTails = rig.writer.store!.tails.rows
        #expect(mergeMinRows != nil || inTails > 0)
        let ready = try HTTPTestClient(port: rig.server.port).request("GET", "/readyz")
        #expect(ready.object["delta_rows"] as? Int == inTails, "\(ready.text)")
        #expect((ready.object["oldest_delta_age_seconds"] as? Double).map { $0 >= 0 && $0 < 600 } == true, "\(ready.text)")
        let metrics = try HTTPTestClient(port: rig.server.port).request("GET", "/metrics").text
        func metric(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        #expect(metric("tally_delta_rows") == Double(inTails) && metric("tally_delta_clients") == Double(rig.writer.store!.tails.clients), "\(metrics.prefix(300))")
        #expect(metric("tally_delta_oldest_age_seconds").map { $0 >= 0 && $0 < 600 } == true)
        if mergeMinRows != nil {
            // Merges ran and were installed (the metrics say so), and their answers were checked.
            var merged = 0.0
            for _ in 0..<100 where merged == 0 {
                let text = try HTTPTestClient(port: rig.server.port).request("GET", "/metrics").text
                merged = text.split(separator: "\n").first { $0.hasPrefix("tally_merges_total{result=\"ok\"} ") }
                    .flatMap { Double($0.split(separator: " ")[1]) } ?? 0
                if merged == 0 { usleep(100_000) }
            }
            #expect(merged > 0, "no merge was installed")
            try DirectoryAppendTests.compare(rig.writer, dump, &r, "after merges")
        }
        #expect(try AppendTests.saveSnapshot(rig.server.port, snapshot).status == 200)
        try batch(5)
        try DirectoryAppendTests.compare(rig.writer, dump, &r, "after a snapshot and a batch")
        rig.shutdown()
        let again = try AppendTests.rig("tail", seed: 73, wal: rig.wal, snapshot: snapshot, tailMinRows: 0, mergeMinRows: mergeMinRows)
        defer { again.shutdown() }
        #expect(mergeMinRows != nil || again.writer.store!.clients.contains { $0.usage?.tail != nil }, "the log's last batch replayed into tails")
        try DirectoryAppendTests.compare(again.writer, dump, &r, "after a restart from the snapshot and the log")
    }
}
