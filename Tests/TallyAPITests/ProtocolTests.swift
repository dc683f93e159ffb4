import Foundation
import Testing
import TallyAPI
import TallyTestSupport

/// HTTP/1.1 behaviour over a real socket: keep-alive, pipelining, HEAD, limits, bad requests.
@Suite struct ProtocolTests {
    let f = ServerFixture.shared

    @Test func healthAndReadiness() throws {
        let c = try f.client()
        let h = try c.request("GET", "/healthz")
        #expect(h.status == 200 && h.object["status"] as? String == "ok")
        let r = try c.request("GET", "/readyz")
        #expect(r.status == 200 && r.object["usage_rows"] as? Int == f.store.usageRowCount)
        let doc = try c.request("GET", "/v2/openapi.json")
        #expect(doc.status == 200 && doc.header("content-type")?.hasPrefix("application/json") == true)
        #expect(doc.body == API.openAPIDocument)
    }

    @Test func keepAliveAndPipelining() throws {
        let c = try f.client()
        let path = ServerFixture.path(f.dump.clients[0].id, .summary)
            + "?granularity=monthly&start_date=2024-01-01&end_date=2024-06-30"
        // Three requests in one write; three answers, in order, on the same connection.
        let text = HTTPTestClient.requestText("GET", "/healthz")
            + HTTPTestClient.requestText("GET", path, token: ServerFixture.allToken)
            + HTTPTestClient.requestText("GET", "/nope")
        try c.send(text)
        let a = try c.readResponse(), b = try c.readResponse(), d = try c.readResponse()
        #expect(a.status == 200 && a.object["status"] as? String == "ok")
        #expect(b.status == 200 && b.object["unique_users"] != nil)
        #expect(d.status == 404)
        #expect(a.header("connection") == "keep-alive")
        // And the connection still serves.
        #expect(try c.request("GET", "/healthz").status == 200)
    }

    @Test func headHasNoBodyAndConnectionCloseCloses() throws {
        let c = try f.client()
        let h = try c.request("HEAD", "/healthz")
        #expect(h.status == 200 && h.body.isEmpty && h.header("content-length") == "15")
        let last = try c.request("GET", "/healthz", headers: [("Connection", "close")])
        #expect(last.status == 200 && last.header("connection") == "close")
        #expect(c.isClosedByPeer())
    }

    @Test func methodsAndPaths() throws {
        let c = try f.client()
        let p = ServerFixture.path(f.dump.clients[0].id, .utilization)
        let post = try c.request("POST", p, token: ServerFixture.allToken, body: "{}")
        #expect(post.status == 405 && post.header("allow") == "GET, HEAD")
        #expect((post.object["error"] as? [String: Any])?["code"] as? String == "method_not_allowed")
        let console = try c.request("GET", "/", token: nil)
        #expect(console.status == 200 && console.header("content-type") == "text/html; charset=utf-8")
        #expect(console.header("content-security-policy")?.contains("default-src 'none'") == true)
        for bad in ["/index.html", "/v2", "/v2/clients", "/v2/clients/x/analytics/apps/nope", "/v3/clients/x/analytics/apps/utilization"] {
            let r = try c.request("GET", bad, token: ServerFixture.allToken)
            #expect(r.status == 404, "\(bad)")
            #expect((r.object["error"] as? [String: Any])?["status"] as? Int == 404)
        }
    }

    @Test func limitsAreEnforced() throws {
        let c1 = try f.client()
        let many = (0..<50).map { ("X-Filler-\($0)", "v") }
        let r1 = try c1.request("GET", "/healthz", headers: many)
        #expect(r1.status == 431)
        #expect(c1.isClosedByPeer())
        let c2 = try f.client()
        let r2 = try c2.request("POST", "/healthz", body: String(repeating: "x", count: 5000))
        #expect(r2.status == 413)
        #expect(c2.isClosedByPeer())
    }

    /// The fixture closes connections idle for 2 s.
    @Test func idleConnectionsAreClosed() throws {
        let c = try f.client()
        #expect(try c.request("GET", "/healthz").status == 200)
        Thread.sleep(forTimeInterval: 3)
        #expect(c.isClosedByPeer())
    }

    @Test func malformedRequestIsA400() throws {
        let c = try f.client()
        try c.send("THIS IS NOT HTTP\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 400)
    }
}
