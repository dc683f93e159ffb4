import Foundation
import Synchronization
import Testing
import TallyIngest
import TallyStorage
import TallyTestSupport

/// A crash never loses an acknowledged row (SPEC §6): `tally serve --wal` takes appends from two
/// connections and is killed with SIGKILL at a random moment, 24 times; after each restart every
/// acknowledged row is served, no row that was never sent is, and every endpoint answers.
/// Every third batch also carries a new user and their membership of a department (directory
/// rows, the log's version-2 records): every acknowledged user is served after each restart,
/// in their department, and no user that was never sent is.
///
/// Each appended row is the only one of its (app, day) in a year the dump does not cover, so a
/// daily trend filtered to one app shows exactly which rows are present.
@Suite(.serialized) struct CrashTests {
    static let token = "YOUR_API_TOKEN"

    @Test func killedAtRandomMomentsLosesNoAcknowledgedRow() throws {
        let dump = RandomDump(seed: 51, clientCount: 2, maxRowsPerClient: 800)
        let base = NSTemporaryDirectory() + "tally-crash-\(getpid())"
        let folder = base + "-dump", wal = base + ".wal"
        defer { try? FileManager.default.removeItem(atPath: folder); try? FileManager.default.removeItem(atPath: wal) }
        try? FileManager.default.removeItem(atPath: wal)
        try DumpWriter.write(dump.tables(), to: folder)
        let client = dump.clients[0].id
        let users = dump.users.filter { $0.client == client }.map(\.id)
        let apps = dump.apps.filter { $0.client == client }.map(\.id)
        let year = DayRange(Day("2025-04-01")!, Day("2026-03-31")!)
        // Row n is (app n % apps, day n / apps): one user per (app, day).
        @Sendable func row(_ n: Int) -> (user: UUID128, app: UUID128, day: Day) {
            (users[n % users.count], apps[n % apps.count], year.start.adding(n / apps.count))
        }
        let capacity = apps.count * year.length
        // The new user of the batch that starts at row n (every third batch carries one).
        @Sendable func newUser(_ n: Int) -> UUID128? { (n / 5) % 3 == 0 ? UUID128(high: 0xC0DE, low: UInt64(n)) : nil }
        let department = try #require(dump.departments.first { $0.client == client }?.id)
        let port = 18_900 + Int(getpid() % 50) * 2
        var r = SeededRandom(seed: 51)
        var acknowledged = Set<Int>(), sent = 0, usersChecked = 0
        let dumpRows = try DumpLoaderRows.count(folder)

        func start() throws -> Process { try Self.serve(folder: folder, wal: wal, port: port) }

        /// Every acknowledged row is served, rows never sent are not, and the totals agree.
        func verify(_ trial: Int) throws {
            let http = try HTTPTestClient(port: port)
            var present = Set<Int>()
            for (j, app) in apps.enumerated() {
                let target = "/v2/clients/\(client)/analytics/apps/utilization/trend?granularity=daily"
                    + "&start_date=\(year.start)&end_date=\(year.end)&app_ids=\(app)"
                let resp = try http.request("GET", target, token: Self.token)
                try #require(resp.status == 200, "trial \(trial): \(resp.text)")
                let series = resp.object["series"] as? [[String: Any]] ?? []
                for (d, bucket) in series.enumerated() where (bucket["unique_users"] as? Int ?? 0) > 0 {
                    present.insert(d * apps.count + j)
                }
            }
            // Directory rows: every acknowledged new user is served, in the department; the
            // users of batches never sent are not.
            for n in stride(from: 0, to: sent + 15, by: 5) {
                guard let u = newUser(n) else { continue }
                let resp = try http.request("GET", "/v2/clients/\(client)/users/\(u)", token: Self.token)
                let served = resp.status == 200
                if n >= sent {
                    #expect(!served, "trial \(trial): user \(u) of a batch never sent is served")
                } else {
                    // One record: the user and the batch's events are served together or not at all.
                    #expect(served == present.contains(n), "trial \(trial): user \(u) served \(served), its batch's first row \(present.contains(n))")
                    if acknowledged.contains(n) {
                        usersChecked += 1
                        #expect(served && resp.text.contains(department.description),
                                "trial \(trial): acknowledged user \(u): \(resp.status) \(resp.text.prefix(200))")
                    }
                }
            }
            let lost = acknowledged.subtracting(present)
            #expect(lost.isEmpty, "trial \(trial): \(lost.count) acknowledged rows lost, e.g. \(lost.sorted().prefix(5))")
            #expect(present.allSatisfy { $0 < sent }, "trial \(trial): a row that was never sent is served")
            let ready = try http.request("GET", "/readyz").object
            #expect(ready["usage_rows"] as? Int == dumpRows + present.count, "trial \(trial): usage rows")
            for e in ["utilization", "utilization/departments", "utilization/categories", "utilization/users", "utilization/summary",
                      "ai/users", "ai/users/summary", "ai/departments", "ai/new", "utilization/trend"] {
                let resp = try http.request("GET", "/v2/clients/\(client)/analytics/apps/\(e)?granularity=monthly"
                                            + "&start_date=\(year.start)&end_date=\(year.end)", token: Self.token)
                #expect(resp.status == 200, "trial \(trial) \(e): \(resp.status)")
            }
            // Rows sent but not acknowledged may or may not have made it; from now on they are known.
            acknowledged.formUnion(present)
        }

        var server = try start()
        let trials = 24
        for trial in 0..<trials {
            let next = Mutex(sent)
            let acked = Mutex<[Int]>([])
            let stop = Atomic(false)
            let writers = (0..<2).map { _ in
                Thread {
                    guard let c = try? HTTPTestClient(port: port) else { return }
                    while !stop.load(ordering: .relaxed) {
                        let batch: [Int] = next.withLock { n in
                            let b = Array(n..<min(n + 5, capacity))
                            n += b.count
                            return b
                        }
                        if batch.isEmpty { return }
                        let events = batch.map { n -> String in
                            let x = row(n)
                            return "{\"user_id\":\"\(x.user)\",\"application_id\":\"\(x.app)\",\"activity_date\":\"\(x.day)\"}"
                        }
                        var directory = ""
                        if let u = newUser(batch[0]) {
                            directory = "\"users\":[{\"id\":\"\(u)\",\"email\":\"crash-\(batch[0])@example.com\",\"is_active\":true}],"
                                + "\"user_departments\":[{\"user_id\":\"\(u)\",\"department_id\":\"\(department)\"}],"
                        }
                        guard let resp = try? c.request("POST", "/v2/clients/\(client)/usage-events", token: Self.token,
                                                        headers: [("Content-Type", "application/json")],
                                                        body: "{" + directory + "\"events\":[" + events.joined(separator: ",") + "]}") else { return }
                        if resp.status == 200 { acked.withLock { $0 += batch } } else { return }
                    }
                }
            }
            writers.forEach { $0.start() }
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.4, using: &r))
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
            stop.store(true, ordering: .relaxed)
            while writers.contains(where: { !$0.isFinished }) { Thread.sleep(forTimeInterval: 0.005) }
            let got = acked.withLock { $0 }
            acknowledged.formUnion(got)
            sent = next.withLock { $0 }
            #expect(!got.isEmpty || trial > 0, "trial \(trial): nothing was acknowledged before the kill")
            server = try start()
            try verify(trial)
        }
        server.terminate()
        server.waitUntilExit()
        #expect(acknowledged.count > trials * 5, "\(acknowledged.count) rows acknowledged over \(trials) kills")
        #expect(usersChecked > trials, "\(usersChecked) acknowledged new users checked over \(trials) restarts")
    }

    /// The same with tails and merges: every client takes its newest day's rows into a tail
    /// (`TALLY_TAIL_MIN_ROWS=0`), and the next day's with them (two days in the tail; once a
    /// merge has folded the next day in, the newest day's late rows rebuild the client), tails
    /// are merged every 25 rows and every 0.2 s, so kills land during appends into tails,
    /// merges, installs and rebuilds. After each restart every acknowledged (user, app, day) of
    /// the two days is served (each user's apps each day, report L), no row never sent is, and
    /// the totals agree. A third writer sends new employees, every other one with a new app
    /// (the user, the membership, the app and its event in one batch): every acknowledged one is
    /// served with its event after each restart, none never sent is.
    @Test func killedDuringTailAppendsAndMergesLosesNoAcknowledgedRow() throws {
        let dump = RandomDump(seed: 52, clientCount: 2, maxRowsPerClient: 2000)
        let base = NSTemporaryDirectory() + "tally-crash-tail-\(getpid())"
        let folder = base + "-dump", wal = base + ".wal"
        defer { if ProcessInfo.processInfo.environment["KEEP_CRASH"] == nil { try? FileManager.default.removeItem(atPath: folder); try? FileManager.default.removeItem(atPath: wal) } }
        try? FileManager.default.removeItem(atPath: wal)
        try DumpWriter.write(dump.tables(), to: folder)
        let client = dump.clients[0].id
        let users = dump.users.filter { $0.client == client }.map(\.id)
        let apps = dump.apps.filter { $0.client == client }.map(\.id)
        let day = try #require(dump.usage.filter { $0.client == client }.map(\.day).max()), nextDay = day.adding(1)
        let held = Set(dump.usage.filter { $0.client == client && $0.day == day }.map { "\($0.user)|\($0.app)" })
        // Rows n: the (user, app) pairs the dump lacks on that day, each followed by the pair on
        // the next day, user-major.
        let rows = users.flatMap { u in apps.flatMap { a in
            (held.contains("\(u)|\(a)") ? [] : [(u, a, day)]) + [(u, a, nextDay)]
        } }
        let port = 18_800 + Int(getpid() % 50) * 2
        var r = SeededRandom(seed: 52)
        var acknowledged = Set<Int>(), sent = 0, trialsRun = 0, merges = 0, dropped = 0
        // New employees, one a batch from a third writer: a user in a department, with one
        // event of the newest day (their index in `hires`). They go beside the index too
        // (docs/APPENDS.md, "New users in the tail"), and merges renumber them.
        let departments = dump.departments.filter { $0.client == client }.map(\.id)
        // Every other hire uses an app the client did not have, sent in the same batch (an
        // `apps` row naming a catalog application): new apps take the spare app slots of the
        // tail (docs/APPENDS.md, "New apps in the tail"), start merges at half of them, are
        // refused with 503 while a merge is behind (sent again), and rebuild the client past them.
        // (Their ids come from a stream of their own: the dump's ids are drawn from seed 52 too,
        // and a hire's id drawn at the dump's position named one of its users.)
        let catalog = dump.catalog.map(\.id)
        var ids = SeededRandom(seed: 0x5EED_0052)
        let hires = (0..<400).map { k in
            (user: ids.uuid(), department: departments[k % departments.count],
             app: k % 2 == 1 ? ids.uuid() : apps[k % apps.count], catalog: k % 2 == 1 ? catalog[k % catalog.count] : nil)
        }
        var hired = Set<Int>(), hiresSent = 0, refused = 0, refusals: [String] = []
        // A fourth writer flips the approval of the client's first app, one `apps` row a batch:
        // each flip rebuilds the client off the commit thread (its classes), and the writers'
        // events of its newest day pass the rebuild meanwhile (docs/APPENDS.md, "Events past a
        // rebuild"). After `flips` flips it is approved when `approvedAfter(flips)`.
        let flipped = try #require(dump.apps.first { $0.client == client })
        @Sendable func approvedAfter(_ flips: Int) -> Bool { flipped.approved != (flips % 2 == 1) }
        var flips = 0, flipsChecked = 0
        let dumpRows = try DumpLoaderRows.count(folder)
        let index = Dictionary(uniqueKeysWithValues: rows.enumerated().map { ("\($1.0)|\($1.1)|\($1.2)", $0) })

        func start() throws -> Process {
            try Self.serve(folder: folder, wal: wal, port: port,
                           environment: ["TALLY_TAIL_MIN_ROWS": "0", "TALLY_MERGE_MIN_ROWS": "25", "TALLY_MERGE_AFTER_SECONDS": "0.2"])
        }

        /// Also the flipped app's approval as served, when a response names it.
        func verify(_ trial: Int, flipsAcked: Int, flipsSent: Int) throws {
            let http = try HTTPTestClient(port: port)
            var present = Set<Int>()
            var approvals = Set<Bool>()
            for u in users {
                for d in [day, nextDay] {
                    let resp = try http.request("GET", "/v2/clients/\(client)/users/\(u)?start_date=\(d)&end_date=\(d)", token: Self.token)
                    try #require(resp.status == 200, "trial \(trial): \(resp.text.prefix(200))")
                    for a in resp.object["apps"] as? [[String: Any]] ?? [] {
                        if let app = a["app"] as? [String: Any], app["id"] as? String == flipped.id.description,
                           let approved = app["is_approved"] as? Bool { approvals.insert(approved) }
                        if let id = (a["app"] as? [String: Any])?["id"] as? String, let n = index["\(u)|\(id)|\(d)"] { present.insert(n) }
                    }
                }
            }
            // Each new user sent: served with their event if acknowledged; never sent, unknown.
            var hiresPresent = Set<Int>()
            for (k, h) in hires.enumerated() where k < hiresSent + 1 {
                let resp = try http.request("GET", "/v2/clients/\(client)/users/\(h.user)?start_date=\(day)&end_date=\(day)", token: Self.token)
                if resp.status == 200 {
                    let apps = (resp.object["apps"] as? [[String: Any]] ?? []).compactMap { ($0["app"] as? [String: Any])?["id"] as? String }
                    #expect(apps == [h.app.description], "trial \(trial): new user \(k)'s event: \(apps)")
                    hiresPresent.insert(k)
                }
            }
            #expect(hired.subtracting(hiresPresent).isEmpty, "trial \(trial): acknowledged new users lost: \(hired.subtracting(hiresPresent).sorted().prefix(5))")
            #expect(hiresPresent.allSatisfy { $0 < hiresSent }, "trial \(trial): a new user never sent is served")
            hired.formUnion(hiresPresent)
            let lost = acknowledged.subtracting(present)
            #expect(lost.isEmpty, "trial \(trial): \(lost.count) acknowledged rows lost, e.g. \(lost.sorted().prefix(5))")
            #expect(present.allSatisfy { $0 < sent }, "trial \(trial): a row that was never sent is served")
            let ready = try http.request("GET", "/readyz").object
            #expect(ready["usage_rows"] as? Int == dumpRows + present.count + hiresPresent.count, "trial \(trial): usage rows")
            acknowledged.formUnion(present)
            // Every acknowledged flip is served; the one in flight at the kill may be too (it may
            // be in the log). The next flips go on from what is served.
            #expect(approvals.count <= 1, "trial \(trial): the app served approved and not")
            if let served = approvals.first {
                #expect(served == approvedAfter(flipsAcked) || served == approvedAfter(flipsSent),
                        "trial \(trial): after \(flipsAcked) flips acknowledged (\(flipsSent) sent) the app is served approved \(served)")
                flips = served == approvedAfter(flipsAcked) ? flipsAcked : flipsSent
                flipsChecked += flipsSent == flipsAcked && trial >= 24 ? 1 : 0
            } else {
                flips = flipsAcked
            }
        }

        var server = try start()
        let trials = 32  // the last 8 with approval flips
        for trial in 0..<trials {
            let next = Mutex(sent)
            let acked = Mutex<[Int]>([])
            let stop = Atomic(false)
            let writers = (0..<2).map { _ in
                Thread {
                    guard let c = try? HTTPTestClient(port: port) else { return }
                    while !stop.load(ordering: .relaxed) {
                        let batch: [Int] = next.withLock { n in
                            let b = Array(n..<min(n + 1, rows.count))
                            n += b.count
                            return b
                        }
                        if batch.isEmpty { return }
                        let events = batch.map { n in
                            "{\"user_id\":\"\(rows[n].0)\",\"application_id\":\"\(rows[n].1)\",\"activity_date\":\"\(rows[n].2)\"}"
                        }
                        guard let resp = try? c.request("POST", "/v2/clients/\(client)/usage-events", token: Self.token,
                                                        headers: [("Content-Type", "application/json")],
                                                        body: "{\"events\":[" + events.joined(separator: ",") + "]}") else { return }
                        if resp.status == 200 { acked.withLock { $0 += batch } } else { return }
                        Thread.sleep(forTimeInterval: 0.015)  // the two days' rows (1,656) last all the trials
                    }
                }
            }
            let nextHire = Mutex(hiresSent)
            let newAppsRefused = Atomic(0)
            let hireRefusal = Mutex("")
            let hiresAcked = Mutex<[Int]>([])
            let hiring = Thread {
                guard let c = try? HTTPTestClient(port: port) else { return }
                while !stop.load(ordering: .relaxed) {
                    let k: Int = nextHire.withLock { n in defer { n += 1 }; return n }
                    guard k < hires.count else { return }
                    let h = hires[k]
                    let newApp = h.catalog.map { "\"apps\":[{\"id\":\"\(h.app)\",\"catalog_application_id\":\"\($0)\",\"is_approved\":false,\"is_favorite\":false}]," } ?? ""
                    let body = "{" + newApp + "\"users\":[{\"id\":\"\(h.user)\",\"email\":\"hire\(k)@example.com\",\"is_active\":true}],"
                        + "\"user_departments\":[{\"user_id\":\"\(h.user)\",\"department_id\":\"\(h.department)\"}],"
                        + "\"events\":[{\"user_id\":\"\(h.user)\",\"application_id\":\"\(h.app)\",\"activity_date\":\"\(day)\"}]}"
                    var acknowledged = false
                    // Refused while a merge is behind on new apps (503 merge_behind): sent again.
                    for _ in 0..<100 {
                        guard let resp = try? c.request("POST", "/v2/clients/\(client)/usage-events", token: Self.token,
                                                        headers: [("Content-Type", "application/json")], body: body) else { return }
                        if resp.status == 503 && resp.text.contains("merge_behind") {
                            newAppsRefused.add(1, ordering: .relaxed)
                            Thread.sleep(forTimeInterval: 0.05)
                            continue
                        }
                        acknowledged = resp.status == 200
                        if !acknowledged { hireRefusal.withLock { $0 = "\(resp.status) \(resp.text.prefix(300))" } }
                        break
                    }
                    if acknowledged { hiresAcked.withLock { $0.append(k) } } else { return }
                    Thread.sleep(forTimeInterval: 0.04)
                }
            }
            let flipsAcked = Mutex(flips), flipsSent = Mutex(flips)
            // In the last 8 trials only: while flips come one after another the client is being
            // rebuilt nearly all the time, and merges (which skip it) do not run; and a log
            // holding an odd number of flips rebuilds the client at each start, with no tail.
            // The first 24 trials are those of the test before the flips, merges and all.
            // In every other such trial the flips stop (the last one answered) before the kill,
            // so that the served approval is known exactly: a flip in flight may or may not be in
            // the log, and on a busy host one is in flight at most kills.
            let flipsStop = Atomic(false)
            let flipping = Thread {
                guard trial >= 24, let c = try? HTTPTestClient(port: port) else { return }
                while !stop.load(ordering: .relaxed) && !flipsStop.load(ordering: .relaxed) {
                    let n = flipsSent.withLock { n in defer { n += 1 }; return n + 1 }
                    let body = "{\"apps\":[{\"id\":\"\(flipped.id)\",\"catalog_application_id\":\"\(flipped.catalog)\","
                        + "\"is_approved\":\(approvedAfter(n)),\"is_favorite\":\(flipped.favorite)}]}"
                    guard let resp = try? c.request("POST", "/v2/clients/\(client)/usage-events", token: Self.token,
                                                    headers: [("Content-Type", "application/json")], body: body),
                          resp.status == 200 else { return }
                    flipsAcked.withLock { $0 = n }
                    Thread.sleep(forTimeInterval: 0.03)
                }
            }
            writers.forEach { $0.start() }
            hiring.start()
            flipping.start()
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.3, using: &r))
            if trial >= 24 && trial % 2 == 0 {
                flipsStop.store(true, ordering: .relaxed)
                for _ in 0..<6_000 where !flipping.isFinished { Thread.sleep(forTimeInterval: 0.005) }  // up to 30 s
            }
            if let text = try? HTTPTestClient(port: port).request("GET", "/metrics").text {
                merges += Int(AppendTests.metric("tally_merges_total{result=\"ok\"}", in: text) ?? 0)
                dropped += Int(AppendTests.metric("tally_merges_total{result=\"dropped\"}", in: text) ?? 0)
            }
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
            stop.store(true, ordering: .relaxed)
            while writers.contains(where: { !$0.isFinished }) || !hiring.isFinished || !flipping.isFinished { Thread.sleep(forTimeInterval: 0.005) }
            acknowledged.formUnion(acked.withLock { $0 })
            sent = next.withLock { $0 }
            hired.formUnion(hiresAcked.withLock { $0 })
            hiresSent = min(hires.count, nextHire.withLock { $0 })
            refused += newAppsRefused.load(ordering: .relaxed)
            if let why = Optional(hireRefusal.withLock { $0 }), !why.isEmpty { refusals.append(why) }
            server = try start()
            try verify(trial, flipsAcked: flipsAcked.withLock { $0 }, flipsSent: flipsSent.withLock { $0 })
            trialsRun += 1
            if sent >= rows.count { break }
        }
        server.terminate()
        server.waitUntilExit()
        // (Fewer merges than with one day: once a merge has folded the next day in, the newest
        // day's late rows rebuild the client instead, and a merge that meets them is dropped.)
        // (Fewer merges again with the new apps, 17 begun in a run against 54 without them: the
        // hires' batches of the newest day rebuild the client too once a merge has folded the next
        // day in. The kills still land during merges: begun, installed or dropped.)
        let appsHired = hired.filter { hires[$0].catalog != nil }.count
        #expect(trialsRun == trials && acknowledged.count > 300 && merges + dropped >= 12 && merges >= 6
                && hired.count > 50 && appsHired > 20 && flips > 15 && flipsChecked >= 2,
                "\(trialsRun) kills, \(acknowledged.count) of \(rows.count) rows and \(hired.count) new users (\(appsHired) with a new app, \(refused) refusals sent again) acknowledged, \(merges) merges installed before the kills (\(dropped) dropped), \(flips) approval flips (checked exactly after \(flipsChecked) kills); refused: \(refusals.prefix(3))")
    }

    /// `tally serve` on `folder` with the log `wal` on `port` (settings `environment` added to
    /// this process's), once its `/readyz` answers 200.
    static func serve(folder: String, wal: String, port: Int, environment: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = SeedReplayTests.executable
        p.arguments = ["serve", "--port", String(port), "--no-binary", "--dump", folder, "--wal", wal]
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        p.standardError = FileHandle.nullDevice
        try p.run()
        for _ in 0..<400 {
            if let c = try? HTTPTestClient(port: port), let resp = try? c.request("GET", "/readyz"), resp.status == 200 { return p }
            Thread.sleep(forTimeInterval: 0.025)
        }
        p.terminate()
        throw NotReady()
    }
}

struct NotReady: Error {}

/// Usage rows of a dump as the loader counts them (distinct rows).
enum DumpLoaderRows {
    static func count(_ folder: String) throws -> Int {
        try TallyIngest.DumpLoader.load(folder: folder).0.usageRowCount
    }
}
