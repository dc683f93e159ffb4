import Testing
import TallyQuery
import TallyStorage
import TallyTestSupport

/// Every bad parameter of SPEC §3 gets a 400 with the error body naming the parameter.
@Suite struct ErrorTests {
    let f = ServerFixture.shared
    static let good = "granularity=monthly&start_date=2024-01-01&end_date=2024-01-31"

    struct Case: CustomTestStringConvertible, Sendable {
        let endpoint: Endpoint
        let query: String
        let parameter: String
        var testDescription: String { "\(endpoint.path)?\(query) → \(parameter)" }
    }

    static let cases: [Case] = {
        var c: [Case] = []
        for e in Endpoint.allCases {
            let g = e.requiresGranularity ? "granularity=monthly&" : ""
            c += [
                Case(endpoint: e, query: "start_date=2024-01-01&end_date=2024-01-31", parameter: e.requiresGranularity ? "granularity" : "-"),
                Case(endpoint: e, query: "granularity=yearly&start_date=2024-01-01&end_date=2024-01-31", parameter: "granularity"),
                Case(endpoint: e, query: "\(g)end_date=2024-01-31", parameter: "start_date"),
                Case(endpoint: e, query: "\(g)start_date=2024-01-01", parameter: "end_date"),
                Case(endpoint: e, query: "\(g)start_date=2024/01/01&end_date=2024-01-31", parameter: "start_date"),
                Case(endpoint: e, query: "\(g)start_date=2023-02-29&end_date=2024-01-31", parameter: "start_date"),
                Case(endpoint: e, query: "\(g)start_date=2024-01-01&end_date=2024-13-01", parameter: "end_date"),
                Case(endpoint: e, query: "\(g)start_date=2024-02-01&end_date=2024-01-31", parameter: "end_date"),
                // 2024-01-01 … 2025-01-01 is 367 days (leap year): one too many.
                Case(endpoint: e, query: "\(g)start_date=2024-01-01&end_date=2025-01-01", parameter: "end_date"),
                Case(endpoint: e, query: "\(g)start_date=2024-01-01&end_date=2024-01-31&start_date=2024-01-02", parameter: "start_date"),
            ]
            if e.takesComparison {
                c += [
                    Case(endpoint: e, query: "\(good(e))&compare_start_date=2023-12-01", parameter: "compare_end_date"),
                    Case(endpoint: e, query: "\(good(e))&compare_end_date=2023-12-31", parameter: "compare_start_date"),
                    Case(endpoint: e, query: "\(good(e))&compare_start_date=2023-12-01&compare_end_date=12/31/2023", parameter: "compare_end_date"),
                    Case(endpoint: e, query: "\(good(e))&compare_start_date=2022-01-01&compare_end_date=2023-12-31", parameter: "compare_end_date"),
                ]
            }
            if e.isList {
                c += [
                    Case(endpoint: e, query: "\(good(e))&sort_by=nope", parameter: "sort_by"),
                    Case(endpoint: e, query: "\(good(e))&sort_order=up", parameter: "sort_order"),
                    Case(endpoint: e, query: "\(good(e))&page_size=0", parameter: "page_size"),
                    Case(endpoint: e, query: "\(good(e))&page_size=201", parameter: "page_size"),
                    Case(endpoint: e, query: "\(good(e))&page_size=ten", parameter: "page_size"),
                    Case(endpoint: e, query: "\(good(e))&cursor=garbage!", parameter: "cursor"),
                ]
            }
            if e.filters.contains(.isApproved) {
                c.append(Case(endpoint: e, query: "\(good(e))&is_approved=maybe", parameter: "is_approved"))
            }
            for name in e.filters where name != .isApproved {
                c.append(Case(endpoint: e, query: "\(good(e))&\(name.rawValue)=not-a-uuid", parameter: name.rawValue))
            }
        }
        return c
    }()

    static func good(_ e: Endpoint) -> String {
        e.requiresGranularity ? good : "start_date=2024-01-01&end_date=2024-01-31"
    }

    @Test(arguments: cases)
    func badParameterIs400(_ c: Case) throws {
        let client = try f.client()
        let r = try client.request("GET", ServerFixture.path(f.dump.clients[0].id, c.endpoint) + "?" + c.query,
                                   token: ServerFixture.allToken)
        if c.parameter == "-" {
            #expect(r.status == 200)  // the deprecated endpoint needs no granularity
            return
        }
        #expect(r.status == 400)
        let e = r.object["error"] as? [String: Any]
        #expect(e?["status"] as? Int == 400)
        #expect(e?["code"] as? String == "invalid_parameter")
        #expect(e?["parameter"] as? String == c.parameter)
        #expect((e?["message"] as? String)?.contains(c.parameter) == true)
    }

    /// Unknown ids in filter lists, and unknown parameters, are not errors.
    @Test func unknownIdsAndParametersAreNotErrors() throws {
        let c = try f.client()
        let q = "\(Self.good)&category_ids=00000000-0000-4000-8000-000000000000&colour=blue"
        let r = try c.request("GET", ServerFixture.path(f.dump.clients[0].id, .utilization) + "?" + q,
                              token: ServerFixture.allToken)
        #expect(r.status == 200 && r.object["total_count"] as? Int == 0)
    }

    /// A cursor is refused when reused with other parameters, accepted with a new page size.
    @Test func cursorBoundToParameters() throws {
        let c = try f.client()
        let client = f.dump.clients.first { cl in f.dump.usage.contains { $0.client == cl.id } }!.id
        let path = ServerFixture.path(client, .users)
        let dates = "start_date=2023-11-01&end_date=2024-10-31"
        let first = try c.request("GET", path + "?granularity=monthly&\(dates)&page_size=1", token: ServerFixture.allToken)
        let cursor = try #require(first.object["next_cursor"] as? String)
        let again = try c.request("GET", path + "?granularity=monthly&\(dates)&page_size=3&cursor=\(cursor)",
                                  token: ServerFixture.allToken)
        #expect(again.status == 200)
        for other in ["granularity=monthly&sort_by=email", "granularity=monthly&sort_order=asc",
                      "granularity=monthly&is_approved=true", "granularity=weekly",
                      "granularity=monthly&start_date=2023-11-02&end_date=2024-10-31"] {
            let q = other.contains("start_date") ? other : "\(other)&\(dates)"
            let r = try c.request("GET", path + "?\(q)&cursor=\(cursor)", token: ServerFixture.allToken)
            #expect(r.status == 400 && (r.object["error"] as? [String: Any])?["parameter"] as? String == "cursor", "\(other)")
        }
    }
}
