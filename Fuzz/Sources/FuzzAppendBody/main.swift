// The append body (`POST /v2/clients/{id}/usage-events` and the binary APPEND): JSON parsed
// and every event checked against the tiny store (`AppendBody.parse(client:body:store:)`, TallyWrite), then,
// when accepted, applied as the commit thread applies it (`AppendBody.apply`) and the client
// queried. Input: byte 0 picks the client (one of the three, or one the store does not hold),
// byte 1 whether an accepted batch is applied; the rest is the body. A thrown `WriteError` (answered as
// the API answers it) is a correct refusal.
//
// Checked: a refusal is a 400 that lists refused rows by index inside the batch (or a 404 for
// the unknown client); an accepted batch holds one row per event, each naming a user and an app
// of the client (or of the batch's directory rows) and a date inside the allowed window, and no
// user of another client; applying it leaves every other client as it was, adds exactly the
// batch's new users and apps, and gives the client at most the batch's rows more.
import Foundation
import FuzzSupport
import TallyAPI
import TallyQuery
import TallyStorage
import TallyWrite

let store = TinyDump.store
let clients = store.clients.map(\.info.id) + [UUID128("00000000-0000-4000-8000-000000000000")!]

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked {
        var seeds: [(String, [UInt8])] = []
        for (k, c) in store.clients.enumerated() {
            let users = c.users.map(\.id.description), apps = c.apps.map(\.id.description)
            guard !users.isEmpty, !apps.isEmpty else { continue }
            func event(_ i: Int, _ date: String) -> String {
                #"{"user_id":"\#(users[i % users.count])","application_id":"\#(apps[(i * 7) % apps.count])","activity_date":"\#(date)"}"#
            }
            let dates = ["2026-01-02", "2025-06-30", "2000-01-01", "2026-11-30"]
            let events = (0..<6).map { event($0, dates[$0 % dates.count]) }.joined(separator: ",")
            seeds.append(("events-\(k)", [UInt8(k), 1] + Array(#"{"events":[\#(events)]}"#.utf8)))
            seeds.append(("bare-\(k)", [UInt8(k), 0] + Array("[\(event(1, "2026-02-03"))]".utf8)))
            seeds.append(("refused-\(k)", [UInt8(k), 1] + Array(
                #"{"events":[\#(event(2, "1999-12-31")),{"user_id":"\#(users[0].uppercased())","application_id":7},"x",{}]}"#.utf8)))
        }
        if let c = store.clients.first(where: { !$0.users.isEmpty && !$0.apps.isEmpty && !$0.departments.isEmpty }),
           let k = store.clients.firstIndex(where: { $0 === c }) {
            let catalog = store.catalog.applications[0].id
            let directory = #"{"catalog_applications":[{"id":"d1000000-0000-4000-8000-000000000001","canonical_name":"New Tool","type":"saas","logo":null}],"#
                + #""departments":[{"id":"d1000000-0000-4000-8000-000000000002","name":"Data","description":"x"}],"#
                + #""users":[{"id":"d1000000-0000-4000-8000-000000000003","email":"new@x","is_active":true,"created_at":"2026-01-02T03:04:05Z"},"#
                + #"{"id":"\#(c.users[0].id)","email":"renamed@x","display_name":"Re Named","is_active":false}],"#
                + #""apps":[{"id":"d1000000-0000-4000-8000-000000000004","catalog_application_id":"d1000000-0000-4000-8000-000000000001","is_approved":true,"is_favorite":false},"#
                + #"{"id":"\#(c.apps[0].id)","catalog_application_id":"\#(catalog)","is_approved":false,"is_favorite":true}],"#
                + #""user_departments":[{"user_id":"d1000000-0000-4000-8000-000000000003","department_id":"\#(c.departments[0].id)"}],"#
                + #""events":[{"user_id":"d1000000-0000-4000-8000-000000000003","application_id":"d1000000-0000-4000-8000-000000000004","activity_date":"2026-01-05"}]}"#
            seeds.append(("directory-\(k)", [UInt8(k), 1] + Array(directory.utf8)))
            seeds.append(("directory-refused-\(k)", [UInt8(k), 1] + Array(
                #"{"users":[{"id":"x","email":"","is_active":1}],"apps":[{"id":"d1000000-0000-4000-8000-000000000004"}],"user_departments":[{}],"catalog_applications":[7]}"#.utf8)))
        }
        seeds.append(("empty", [2, 0] + Array(#"{"events":[]}"#.utf8)))
        seeds.append(("not-json", [2, 0] + Array(#"{"events":[{"user_id":"#.utf8)))
        return seeds
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count <= 1 << 16 else { return 0 }
    var input = FuzzInput(start, count)
    let client = clients[Int(input.byte()) % clients.count]
    let apply = input.byte() & 1 != 0
    let body = input.rest()

    let batch: AppendBatch
    do {
        batch = try AppendBody.parse(client: client, body: body, store: store)
    } catch let refusal {
        let error = APIError(refusal)
        if error.status == 400, let rows = error.rows {
            guard !rows.isEmpty, rows.allSatisfy({ $0.index >= 0 && $0.index < AppendBody.maxEvents }) else {
                fuzzFailure("a refused batch lists \(rows.count) events, indexes \(rows.map(\.index))")
            }
        } else if !(error.status == 400 || (error.status == 404 && store.client(client) == nil)) {
            fuzzFailure("an append body refused with \(error.status) \(error.code): \(error.message)")
        }
        _ = error.body
        return 0
    }
    guard let c = store.client(client) else { fuzzFailure("a batch for a client the store does not hold was accepted") }
    guard !batch.rows.isEmpty || !batch.directory.isEmpty, batch.rows.count <= AppendBody.maxEvents,
          batch.directory.count <= AppendBody.maxEvents, batch.client == client else {
        fuzzFailure("an accepted batch holds \(batch.rows.count) rows and \(batch.directory.count) directory rows")
    }
    let earliest = Day("2000-01-01")!, latest = max(Day.today, c.usage?.newestDay ?? .today).adding(1)
    let newUsers = Set(batch.directory.users.map(\.id)), newApps = Set(batch.directory.apps.map(\.id))
    for d in batch.directory.users where c.userIndex[d.id] == nil {
        guard !store.clients.contains(where: { $0.userIndex[d.id] != nil }) else { fuzzFailure("a user of another client was accepted") }
    }
    for r in batch.rows {
        guard c.userIndex[r.user] != nil || newUsers.contains(r.user), c.appIndex[r.app] != nil || newApps.contains(r.app),
              r.day >= earliest, r.day <= latest else {
            fuzzFailure("an accepted row names \(r.user), \(r.app), \(r.day): not the client's, or out of the window")
        }
    }
    guard apply else { return 0 }
    let after = AppendBody.apply([(sequence: 1, batch: batch)], onto: store)
    guard after.walSequence == 1, after.clients.count == store.clients.count else { fuzzFailure("apply changed the clients") }
    let users = Set(c.users.map(\.id)).union(newUsers)
    guard let applied = after.client(client), Set(applied.users.map(\.id)) == users,
          Set(applied.apps.map(\.id)) == Set(c.apps.map(\.id)).union(newApps) else {
        fuzzFailure("apply did not add exactly the batch's users and apps")
    }
    for (old, new) in zip(store.clients, after.clients) where old.info.id != client {
        guard old === new else { fuzzFailure("apply rebuilt client \(old.info.id), which the batch does not touch") }
    }
    guard let rebuilt = after.client(client) else { fuzzFailure("apply dropped the client") }
    let before = c.usage?.rowCount ?? 0, now = rebuilt.usage?.rowCount ?? 0
    guard now >= before, now <= before + batch.rows.count else {
        fuzzFailure("the client had \(before) usage rows; after \(batch.rows.count) more it has \(now)")
    }
    // The rebuilt client answers a query over the days the batch touched.
    let days = batch.rows.map(\.day)
    guard var first = days.min(), let last = days.max() else { return 0 }
    if first.distance(to: last) >= 366 { first = last.adding(-365) }
    let api = API(serving: after, tokens: TokenStore.demo)
    let query = [("start_date", first.description), ("end_date", last.description), ("granularity", "daily")]
    for wire: UInt8 in [5, 10, 15] {
        do {
            _ = try api.answer(Registry.route(wire: wire)!, client: client, pathValue: nil, token: TokenStore.demo.entries[0],
                               query: wire == 15 ? [("as_of", last.description)] : query)
        } catch {
            fuzzFailure("route \(wire) refused a query over appended days: \(error.status) \(error.message)")
        }
    }
    return 0
}

/// SwiftPM's debug builds link `main` to this symbol: hand over to libFuzzer's driver.
@_cdecl("FuzzAppendBody_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz(UnsafeRawPointer($0), size) } ?? 0 }
}
