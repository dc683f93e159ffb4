// Tally's JSON writer against Foundation's JSONEncoder on the commonest answer: a page of 50
// per-app utilization rows (endpoint A) with comparison values.
import Benchmark
import Foundation
import TallyQuery
import TallyStorage

struct AppRef: Encodable {
    let id: String, canonical_name: String, logo: String?, type: String, is_favorite: Bool, is_approved: Bool
}
struct Metric: Encodable { let value: Int, change_pct: Double?, compare_value: Int? }
struct CategoryRef: Encodable { let id: String, name: String, is_ai: Bool }
struct Row: Encodable {
    let app: AppRef, category: CategoryRef?, unique_users: Metric, usage_level: String
}
struct Page: Encodable { let data: [Row], total_count: Int, next_cursor: String? }

struct Sample {
    let uuid: UUID128, name: String, users: Int, compare: Int
}

let samples = (0..<50).map { i in
    Sample(uuid: UUID128(high: 0xA1B2_C3D4_0001_4000 &+ UInt64(i), low: 0x8000_0000_0000_0001), name: "App \(i) \"quoted\"",
           users: 20_000 - i * 37, compare: 19_000 - i * 41)
}

/// The direct writer the endpoints use.
func tallyWriter() -> [UInt8] {
    var w = JSONWriter(capacity: 4096)
    w.beginObject()
    w.key("data")
    w.beginArray()
    for s in samples {
        w.beginObject()
        w.key("app"); w.beginObject()
        w.key("id"); w.uuid(s.uuid)
        w.key("canonical_name"); w.string(s.name)
        w.key("logo"); w.null()
        w.key("type"); w.string("browser")
        w.key("is_favorite"); w.bool(false)
        w.key("is_approved"); w.bool(true)
        w.endObject()
        w.key("category"); w.beginObject()
        w.key("id"); w.uuid(s.uuid)
        w.key("name"); w.string("Productivity")
        w.key("is_ai"); w.bool(false)
        w.endObject()
        w.key("unique_users"); w.beginObject()
        w.key("value"); w.int(s.users)
        w.key("change_pct"); w.tenths(Derived.changePctTenths(value: s.users, compare: s.compare))
        w.key("compare_value"); w.int(s.compare)
        w.endObject()
        w.key("usage_level"); w.string("heavy")
        w.endObject()
    }
    w.endArray()
    w.key("total_count"); w.int(600)
    w.key("next_cursor"); w.string("abc")
    w.endObject()
    return w.bytes
}

func foundationJSON(_ encoder: JSONEncoder) -> Data {
    let rows = samples.map { s in
        Row(app: AppRef(id: s.uuid.description, canonical_name: s.name, logo: nil, type: "browser", is_favorite: false, is_approved: true),
            category: CategoryRef(id: s.uuid.description, name: "Productivity", is_ai: false),
            unique_users: Metric(value: s.users,
                                 change_pct: Derived.changePctTenths(value: s.users, compare: s.compare).map { Double($0) / 10 },
                                 compare_value: s.compare),
            usage_level: "heavy")
    }
    return try! encoder.encode(Page(data: rows, total_count: 600, next_cursor: "abc"))
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .one,
                                           maxDuration: .seconds(2), maxIterations: 20_000)
    precondition((try? JSONSerialization.jsonObject(with: Data(tallyWriter()))) != nil)
    Benchmark("50 utilization rows — Tally direct writer") { b in
        for _ in b.scaledIterations { blackHole(tallyWriter()) }
    }
    Benchmark("50 utilization rows — Foundation JSONEncoder") { b in
        let encoder = JSONEncoder()
        for _ in b.scaledIterations { blackHole(foundationJSON(encoder)) }
    }
}
