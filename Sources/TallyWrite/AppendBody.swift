import Foundation
import TallyStorage

/// An append's body (SPEC §6): `{"events": [{"user_id", "application_id", "activity_date"}, …]}`
/// or the bare array, parsed and checked against the served data.
public enum AppendBody {
    /// Largest batch accepted.
    public static let maxEvents = 10_000

    /// Parses and checks a batch for `client` against `store` (the served data): every event
    /// names a user and an app of that client and a date from 2000-01-01 to the day after the
    /// newest of today (UTC) and the client's data. A refused batch lists every refused event.
    /// What ``StoreWriter/submit(client:body:completion:)`` does first; public for tools that
    /// check a batch before sending it, and for the append-body fuzzer.
    public static func parse(client: UUID128, body: [UInt8], store: Store?) throws(WriteError) -> AppendBatch {
        guard let store else { throw .notReady }
        guard let c = store.client(client) else { throw .clientNotFound }
        let json = try? JSONSerialization.jsonObject(with: Data(body))
        guard let events = (json as? [Any]) ?? ((json as? [String: Any])?["events"] as? [Any]) else {
            throw .invalid("events", "the body must be {\"events\": [{\"user_id\", \"application_id\", \"activity_date\"}, …]}")
        }
        guard !events.isEmpty else { throw .invalid("events", "events must not be empty") }
        guard events.count <= maxEvents else {
            throw .invalid("events", "at most \(maxEvents) events per batch; this one has \(events.count)")
        }
        let today = Day(raw: Int32(Date().timeIntervalSince1970 / 86_400))
        let latest = max(today, c.usage?.newestDay ?? today).adding(1), earliest = Day("2000-01-01")!
        var rows: [AppendBatch.Row] = []
        var refused: [RefusedRow] = []
        for (i, e) in events.enumerated() {
            guard let o = e as? [String: Any] else {
                refused.append(.init(index: i, field: "", message: "an event must be an object"))
                continue
            }
            func id(_ field: String, _ index: [UUID128: UInt32], _ what: String) -> UUID128? {
                guard let s = o[field] as? String else {
                    refused.append(.init(index: i, field: field, message: "\(field) is required (a UUID)"))
                    return nil
                }
                guard let u = UUID128(s) else {
                    refused.append(.init(index: i, field: field, message: "\(field) must be a UUID; got \"\(s.prefix(60))\""))
                    return nil
                }
                guard index[u] != nil else {
                    refused.append(.init(index: i, field: field, message: "no \(what) \(u) in this client"))
                    return nil
                }
                return u
            }
            let user = id("user_id", c.userIndex, "user")
            let app = id("application_id", c.appIndex, "app")
            var day: Day?
            if let s = o["activity_date"] as? String, let d = Day(s) {
                if d < earliest || d > latest {
                    refused.append(.init(index: i, field: "activity_date", message: "activity_date must be from \(earliest) to \(latest)"))
                } else {
                    day = d
                }
            } else {
                refused.append(.init(index: i, field: "activity_date", message: "activity_date must be a date in YYYY-MM-DD form"))
            }
            if let user, let app, let day { rows.append(.init(user: user, app: app, day: day)) }
        }
        if !refused.isEmpty {
            throw WriteError(.invalidRows, field: "events",
                             "\(Set(refused.map(\.index)).count) of \(events.count) events are refused; nothing was applied",
                             rows: refused)
        }
        return AppendBatch(client: client, rows: rows)
    }

    /// `store` with the rows of `records` added (each client touched rebuilt once); rows whose
    /// client, user or app the store does not hold are skipped. How the commit thread applies a
    /// group, and how the log is replayed onto loaded data at start and after a reload.
    public static func apply(_ records: [(sequence: UInt64, batch: AppendBatch)], onto store: Store) -> Store {
        guard let last = records.map(\.sequence).max() else { return store }
        var byClient: [UUID128: (users: [UInt32], apps: [UInt32], days: [Int32])] = [:]
        for (_, batch) in records {
            guard let c = store.client(batch.client) else { continue }
            var acc = byClient[batch.client] ?? ([], [], [])
            for r in batch.rows {
                guard let u = c.userIndex[r.user], let a = c.appIndex[r.app] else { continue }
                acc.users.append(u)
                acc.apps.append(a)
                acc.days.append(r.day.raw)
            }
            byClient[batch.client] = acc
        }
        let rebuilt = byClient.compactMap { id, rows -> ClientStore? in
            guard !rows.users.isEmpty, let c = store.client(id) else { return nil }
            return c.appending(users: rows.users, apps: rows.apps, days: rows.days)
        }
        return store.replacing(rebuilt, walSequence: max(last, store.walSequence))
    }
}
