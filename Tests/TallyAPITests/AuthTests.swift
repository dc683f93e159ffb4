import Testing
import TallyQuery
import TallyStorage
import TallyTestSupport

/// SPEC §3/§5's auth matrix on every analytics endpoint: a token never learns whether a client
/// it may not read exists.
@Suite struct AuthTests {
    let f = ServerFixture.shared
    static let query = "?granularity=monthly&start_date=2024-01-01&end_date=2024-03-31"

    func error(_ r: HTTPTestResponse) -> (Int?, String?) {
        let e = r.object["error"] as? [String: Any]
        return (e?["status"] as? Int, e?["code"] as? String)
    }

    @Test(arguments: Endpoint.allCases)
    func matrix(endpoint: Endpoint) throws {
        let c = try f.client()
        let own = f.dump.clients[0].id, other = f.dump.clients[1].id
        let unknown = UUID128(high: 0xDEAD, low: 0xBEEF)
        func get(_ client: String, _ token: String?, _ header: String? = nil) throws -> HTTPTestResponse {
            let path = "/v2/clients/\(client)/analytics/apps/\(endpoint.path)\(Self.query)"
            if let header { return try c.request("GET", path, headers: [("Authorization", header)]) }
            return try c.request("GET", path, token: token)
        }
        // No token, an unknown token, a malformed header: 401.
        for r in [try get("\(own)", nil), try get("\(own)", "wrong"), try get("\(own)", nil, "Basic abc"),
                  try get("\(own)", nil, "Bearer"), try get("\(own)", "YOUR_API_TOKEN")] {
            #expect(r.status == 401 && error(r) == (401, "unauthorized"), "\(endpoint)")
            #expect(r.header("www-authenticate") == "Bearer")
        }
        // The scoped token: its client 200; another existing client, an unknown one, a non-UUID: all 403.
        #expect(try get("\(own)", ServerFixture.scopedToken).status == 200)
        for client in ["\(other)", "\(unknown)", "not-a-uuid"] {
            let r = try get(client, ServerFixture.scopedToken)
            #expect(r.status == 403 && error(r) == (403, "forbidden"), "\(endpoint) \(client)")
        }
        // The all-clients token: any existing client 200, an unknown one 404.
        #expect(try get("\(other)", ServerFixture.allToken).status == 200)
        for client in ["\(unknown)", "not-a-uuid"] {
            let r = try get(client, ServerFixture.allToken)
            #expect(r.status == 404 && error(r) == (404, "not_found"), "\(endpoint) \(client)")
        }
        // Bearer is case-insensitive; the id in the path may be upper case.
        #expect(try get("\(own)".uppercased(), nil, "bearer \(ServerFixture.scopedToken)").status == 200)
    }
}
