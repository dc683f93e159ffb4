import Foundation
import Testing
import TallyIngest
@testable import TallyStorage
import TallyTestSupport
@testable import TallyWrite

/// The hand-written scanner of events-only bodies (``AppendBody/scanEvents(_:_:)``) gives the rows
/// `JSONSerialization`'s path gives, or leaves the body to that path: on random bodies in the
/// form clients send and on every kind of variation (whitespace, key order, the bare array,
/// unknown keys, escapes, nulls, numbers, repeated keys, unknown or malformed ids, dates out of
/// the window or malformed, empty lists, trailing bytes, directory tables).
@Suite struct AppendBodyScanTests {
    @Test func scannedRowsAreTheParsedRows() throws {
        let dump = RandomDump(seed: 91, clientCount: 2, maxRowsPerClient: 300)
        let folder = NSTemporaryDirectory() + "tally-scan-\(getpid())"
        try DumpWriter.write(dump.tables(), to: folder)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try DumpLoader.load(folder: folder).0
        let client = dump.clients[0].id
        let c = try #require(store.client(client))
        let users = c.users.map(\.id), apps = c.apps.map(\.id)
        var r = SeededRandom(seed: 91)
        var scanned = 0, leftToJSON = 0
        for n in 0..<600 {
            let rowCount = Int.random(in: 0...12, using: &r)
            var objects: [String] = []
            let ws = { (r: inout SeededRandom) -> String in r.chance(0.2) ? [" ", "\n", "\t ", "\r\n  "].randomElement(using: &r)! : "" }
            let variant = n % 3 == 0 ? Int.random(in: 0..<16, using: &r) : -1
            for k in 0..<rowCount {
                var user = users.randomElement(using: &r)!.description, app = apps.randomElement(using: &r)!.description
                var date = RandomDump.lastDay.adding(-Int.random(in: 0...400, using: &r)).description
                if r.chance(0.3) { user = user.uppercased() }
                var fields = [("user_id", "\"\(user)\""), ("application_id", "\"\(app)\""), ("activity_date", "\"\(date)\"")]
                if k == 0 {
                    switch variant {
                    case 0: fields.append(("extra", "1"))
                    case 1: fields[0].1 = "\"\(user.dropLast())\\u0041\""
                    case 2: fields[1].1 = "null"
                    case 3: fields[2].1 = "20240101"
                    case 4: fields.append(("user_id", "\"\(users.randomElement(using: &r)!)\""))
                    case 5: user = UUID128(high: 1, low: 2).description; fields[0].1 = "\"\(user)\""
                    case 6: fields[1].1 = "\"\(app.prefix(35))\""
                    case 7: date = "1999-12-31"; fields[2].1 = "\"\(date)\""
                    case 8: date = "2024-02-30"; fields[2].1 = "\"\(date)\""
                    case 9: fields.removeLast()
                    case 10: fields[2].1 = "\"2099-01-01\""
                    default: break
                    }
                }
                fields.shuffle(using: &r)
                objects.append(ws(&r) + "{" + fields.map { ws(&r) + "\"\($0.0)\"" + ws(&r) + ":" + ws(&r) + $0.1 + ws(&r) }.joined(separator: ",") + "}" + ws(&r))
            }
            let list = "[" + objects.joined(separator: ",") + "]"
            var body = r.chance(0.5) ? list : "{" + ws(&r) + "\"events\"" + ws(&r) + ":" + list + ws(&r) + "}"
            switch variant {
            case 11: body += "x"
            case 12: body = "{\"events\": \(list), \"users\": []}"
            case 13: body = "{\"evants\": \(list)}"
            case 14: body = ws(&r) + body + ws(&r)
            case 15: body = String(body.dropLast())
            default: break
            }
            let bytes = Array(body.utf8)
            let v = AppendBody.Validator(client: client, c: c, store: store, mayChangeCatalog: false)
            let fast = AppendBody.scanEvents(bytes, v)
            let slow: Result<AppendBatch, WriteError>
            do { slow = .success(try AppendBody.parseJSON(client: client, c: c, body: bytes, store: store, mayChangeCatalog: false)) }
            catch { slow = .failure(error) }
            if let fast {
                scanned += 1
                guard case .success(let batch) = slow else {
                    Issue.record("body \(n) scanned into \(fast.count) rows, refused by JSONSerialization's path: \(body)")
                    continue
                }
                #expect(batch.rows == fast && batch.directory.count == 0, "body \(n): \(body)")
            } else {
                leftToJSON += 1
                // Left to the other path: rightly, unless that path accepts it with exactly the
                // canonical three fields of every row (then the scanner missed it).
                if case .success = slow, variant < 0 || variant == 14 {
                    Issue.record("body \(n) in the canonical form was left to JSONSerialization: \(body)")
                }
            }
        }
        #expect(scanned > 200 && leftToJSON > 100, "\(scanned) scanned, \(leftToJSON) left to JSONSerialization")
    }
}
