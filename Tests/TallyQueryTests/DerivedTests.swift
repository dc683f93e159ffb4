import Foundation
import Testing
@testable import TallyQuery
import TallyStorage
import TallyTestSupport

@Suite struct DerivedTests {
    @Test func changePctRoundsHalfAwayFromZero() {
        #expect(Derived.changePctTenths(value: 52, compare: 46) == 130)
        #expect(Derived.changePctTenths(value: 34, compare: 31) == 97)
        #expect(Derived.changePctTenths(value: 35, compare: 36) == -28)
        #expect(Derived.changePctTenths(value: 3, compare: 0) == nil)
        #expect(Derived.changePctTenths(value: 3, compare: nil) == nil)
        // 1/8 = 12.5% → exactly half a tenth: 0.0125 × 1000 = 12.5 tenths → 13 (away from zero).
        #expect(Derived.changePctTenths(value: 2025, compare: 2000) == 13)
        #expect(Derived.changePctTenths(value: 1975, compare: 2000) == -13)
        #expect(Derived.changePctTenths(value: 0, compare: 7) == -1000)
        // Exhaustive check against a rational computation.
        for v in 0...60 {
            for c in 1...60 {
                let n = (v - c) * 1000, twice = 2 * abs(n)
                let q = (twice + c) / (2 * c)
                #expect(Derived.changePctTenths(value: v, compare: c) == (n < 0 ? -q : q))
            }
        }
    }

    @Test func usageLevelIsDecidedExactly() {
        let t = UsageLevelThresholds()
        // 28 days = 4 weeks: heavy ⇔ user_days ≥ 12 per user; medium ⇔ ≥ 4.
        #expect(t.level(userDays: 12 * 52, users: 52, days: 28) == "heavy")
        #expect(t.level(userDays: 12 * 52 - 1, users: 52, days: 28) == "medium")
        #expect(t.level(userDays: 4 * 35, users: 35, days: 28) == "medium")
        #expect(t.level(userDays: 4 * 35 - 1, users: 35, days: 28) == "light")
        // 3 days/week over 7 days with 10 users: exactly 30 user-days is heavy (no float rounding).
        #expect(t.level(userDays: 30, users: 10, days: 7) == "heavy")
        #expect(t.level(userDays: 29, users: 10, days: 7) == "medium")
        let custom = UsageLevelThresholds(heavyTenths: 45, mediumTenths: 25)
        #expect(custom.level(userDays: 45, users: 10, days: 7) == "heavy")
        #expect(custom.level(userDays: 44, users: 10, days: 7) == "medium")
    }

    /// ``PairRecency`` counts a user's apps of a class or a category from any day to the last as
    /// the pair index's own test of every pair does, for every user, class and start day.
    @Test(arguments: [UInt64(3), 4])
    func pairRecencyCountsAsThePairIndex(seed: UInt64) throws {
        let (_, store) = try Fixtures.randomStore(seed: seed, allClasses: true)
        var checked = 0
        for c in store.clients {
            guard let index = c.usage else { continue }
            let top = index.dayCount - 1
            var sets: [(String, PairRecency, [Bool])] = AppClass.allCases.map { k in
                let apps = c.apps.map { k.contains($0) }
                return (String(describing: k), PairRecency(c, index, keeps: apps), apps)
            }
            for (i, cat) in Set(c.apps.compactMap(\.category)).enumerated() where i < 3 {
                if index.entity(category: cat) != nil {  // a category with a class entity, as the executor reads it
                    let apps = c.apps.map { $0.category == cat }
                    sets.append(("category \(cat)", PairRecency(c, index, keeps: apps), apps))
                }
            }
            for (name, recency, apps) in sets {
                try recency.lastDays.withUnsafeBufferPointer { days in
                    let d = try #require(days.baseAddress ?? UnsafePointer(bitPattern: 8))
                    try apps.withUnsafeBufferPointer { mask in
                        for u in 0..<c.users.count {
                            for lo in stride(from: 0, through: top, by: max(1, top / 9)) {
                                let want = index.pairs.appCount(user: u, lo, top, mask: mask)
                                #expect(recency.appCount(user: u, from: lo, d) == want, "\(name), user \(u), from day \(lo)")
                                checked += want > 0 ? 1 : 0
                            }
                        }
                    }
                }
            }
        }
        #expect(checked > 1_000, "only \(checked) nonzero counts checked")
    }

    /// D's rows written in one piece (``JSONRows``) are the bytes the token-by-token path
    /// writes: every page of random users lists, with and without comparisons, sorts and page
    /// sizes, on stores whose department descriptions hold quotes and names non-ASCII text, and
    /// users without display names or departments, or with many.
    @Test(arguments: [UInt64(3), 4])
    func usersRowsWrittenInOnePieceEqualTheTokenPath(seed: UInt64) throws {
        let (dump, store) = try Fixtures.randomStore(seed: seed, allClasses: seed == 4)
        let ex = Executor(store: store)
        var r = SeededRandom(seed: seed &* 31)
        var rows = 0, escaped = 0
        defer { JSONRows.enabled = true }
        for n in 0..<40 {
            let client = dump.clients.randomElement(using: &r)!.id
            let c = store.client(client)!
            guard let newest = c.usage?.newestDay else { continue }
            let start = newest.adding(-Int.random(in: 0..<200, using: &r))
            var req = EndpointRequest(client: client, period: DayRange(start, newest),
                                      comparison: r.chance(0.5) ? DayRange(start.adding(-40), start.adding(-1)) : nil,
                                      granularity: .weekly, sortBy: ["app_count", "active_days", "email"].randomElement(using: &r),
                                      sortOrder: r.chance(0.5) ? .asc : .desc, pageSize: Int.random(in: 1...40, using: &r))
            var pages = 0
            while pages < 50 {
                JSONRows.enabled = true
                let fast = try Endpoint.users.respond(req, executor: ex)
                JSONRows.enabled = false
                let slow = try Endpoint.users.respond(req, executor: ex)
                #expect(fast == slow, "query \(n), page \(pages): \(String(decoding: fast.prefix(300), as: UTF8.self))")
                let doc = try #require(try JSONSerialization.jsonObject(with: Data(fast)) as? [String: Any])
                let data = doc["data"] as? [[String: Any]] ?? []
                rows += data.count
                escaped += fast.contains(UInt8(ascii: "\\")) ? 1 : 0
                pages += 1
                guard let next = try ex.run(Endpoint.users.query(req)).next else { break }
                req.after = next
            }
        }
        #expect(rows > 300, "only \(rows) rows compared")
        #expect(escaped > 0, "no page held an escaped character")
    }

    @Test func cursorsRoundTrip() {
        let u = UUID128(high: 0xA1B2, low: 7)
        for key in [PageKey(value: .int(42), id: u), PageKey(value: .name("Éclair|x"), id: u),
                    PageKey(value: .text(nil), id: UUID128(high: 0, low: 0)), PageKey(value: .day(.init(raw: 20000)), id: u)] {
            let token = Cursor.encode(key, fingerprint: 0xABC)
            let back = Cursor.decode(token)
            #expect(back?.key == key && back?.fingerprint == 0xABC && back?.version == nil)
            for version: UInt64 in [0, 1, 0xFFFF_FFFF_FFFF_FFFF] {
                let pinned = Cursor.decode(Cursor.encode(key, fingerprint: 0xABC, version: version))
                #expect(pinned?.key == key && pinned?.fingerprint == 0xABC && pinned?.version == version)
            }
        }
        #expect(Cursor.decode("not a cursor!") == nil)
        // Neither a second-format cursor without its version nor a first-format one with six parts.
        #expect(Cursor.decode(Cursor.base64url(Array("2|abc|i|AA|AA".utf8))) == nil)
        #expect(Cursor.decode(Cursor.base64url(Array("1|abc|5|i|AA|AA".utf8))) == nil)
        #expect(Cursor.decode(Cursor.base64url(Array("2|abc|zz|i|AA|AA".utf8))) == nil)
    }
}

@Suite struct JSONWriterTests {
    /// The direct writer's output parses (Foundation) to the same values, escapes included.
    @Test func writesValidJSON() throws {
        var w = JSONWriter()
        w.beginObject()
        w.key("a"); w.int(-42)
        w.key("b"); w.tenths(-28)
        w.key("c"); w.string("quote \" backslash \\ newline \n tab \t control \u{1} é")
        w.key("d"); w.beginArray(); w.int(1); w.null(); w.bool(true); w.tenths(130); w.beginObject(); w.endObject(); w.endArray()
        w.key("e"); w.uuid(UUID128("A1B2C3D4-0001-4000-8000-00000000000F")!)
        w.key("f"); w.day(Day("2024-02-29")!)
        w.key("g"); w.int(Int.min + 1)
        w.endObject()
        let text = String(decoding: w.bytes, as: UTF8.self)
        #expect(text.contains("\"b\":-2.8") && text.contains("13.0"))
        let o = try #require(try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any])
        #expect(o["a"] as? Int == -42 && o["b"] as? Double == -2.8)
        #expect(o["c"] as? String == "quote \" backslash \\ newline \n tab \t control \u{1} é")
        #expect((o["d"] as? [Any])?.count == 5)
        #expect(o["e"] as? String == "a1b2c3d4-0001-4000-8000-00000000000f" && o["f"] as? String == "2024-02-29")
        #expect(o["g"] as? Int == Int.min + 1)
    }
}
