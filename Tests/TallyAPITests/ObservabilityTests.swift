import Foundation
import Testing
@testable import TallyAPI
import TallyServer
import TallyStorage
import TallyTestSupport

/// The service routes of SPEC §3d without sockets: who may read `/metrics`, what `/v2/status`
/// shows to which token, the access-log policy, and that recorded requests reach the exposition
/// the console reads back.
@Suite struct ObservabilityTests {
    static let f = ServerFixture.shared

    static func api(_ o: Observability) -> API {
        let tokens = TokenStore(entries: [
            TokenEntry(name: "all", digest: TokenStore.sha256(ServerFixture.allToken), clients: nil),
            TokenEntry(name: "scoped", digest: TokenStore.sha256(ServerFixture.scopedToken), clients: [f.dump.clients[0].id]),
        ])
        return API(serving: f.store, tokens: tokens, observability: o)
    }

    static func get(_ api: API, _ path: String, token: String? = nil, from peer: String? = nil) -> APIResponse {
        var r = APIRequest(method: "GET", target: path, authorization: token.map { "Bearer \($0)" })
        r.remoteAddress = peer
        return api.handle(r)
    }

    @Test func metricsAnswerLoopbackAndConfiguredPeersOnly() {
        let api = Self.api(.prometheus(metricsPeers: ["10.1.2.3"]))
        for peer in [nil, "127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1", "10.1.2.3"] {
            let r = Self.get(api, "/metrics", from: peer)
            #expect(r.status == 200 && r.contentType.hasPrefix("text/plain"), "\(peer ?? "in process")")
        }
        for peer in ["10.1.2.4", "192.168.0.1", "::2", "128.0.0.1"] {
            let r = Self.get(api, "/metrics", from: peer)
            #expect(r.status == 403, "\(peer)")
            #expect(String(decoding: r.body, as: UTF8.self).contains("--metrics-peer"))
        }
        // Without metrics kept: 404, not an empty page.
        #expect(Self.get(Self.api(.quiet), "/metrics").status == 404)
        #expect(Self.get(api, "/metrics", token: "wrong").status == 200, "no token needed, a bad one is ignored")
    }

    @Test func recordedRequestsReachTheExposition() {
        let o = Observability.prometheus()
        let api = Self.api(o)
        let route = ServiceMetrics.index(of: Registry.routes.first { $0.name == "K" }!)
        for ns in [10_000, 40_000, 300_000, 2_000_000_000] as [Int64] {
            o.metrics.record(.binary, route: route, status: 200, nanoseconds: ns)
        }
        o.metrics.record(.binary, route: route, status: 418, nanoseconds: 1)
        let samples = PrometheusText.parse(o.exposition!())
        func v(_ name: String, _ labels: [String: String]) -> Double? {
            samples.first { s in
                s.name == name && labels.allSatisfy { k, x in k == "le" ? s.labels[k].flatMap(Double.init) == Double(x) : s.labels[k] == x }
            }?.value
        }
        #expect(v("tally_requests_total", ["endpoint": "K", "listener": "binary"]) == 5)
        #expect(v("tally_request_duration_seconds_bucket", ["endpoint": "K", "listener": "binary", "le": "2.5e-05"]) == 2)
        #expect(v("tally_request_duration_seconds_bucket", ["endpoint": "K", "listener": "binary", "le": "5e-05"]) == 3)
        #expect(v("tally_request_duration_seconds_bucket", ["endpoint": "K", "listener": "binary", "le": "0.00025"]) == 3)
        #expect(v("tally_request_duration_seconds_bucket", ["endpoint": "K", "listener": "binary", "le": "0.0005"]) == 4)
        #expect(v("tally_request_duration_seconds_bucket", ["endpoint": "K", "listener": "binary", "le": "1.0"]) == 4)
        #expect(v("tally_request_duration_seconds_count", ["endpoint": "K", "listener": "binary"]) == 5)
        #expect(v("tally_responses_total", ["listener": "binary", "status": "200"]) == 4)
        #expect(v("tally_responses_total", ["listener": "binary", "status": "other"]) == 1)
        // An answered request through the API core counts under its route's name.
        _ = Self.get(api, "/healthz")
        let status = Self.get(api, "/v2/status", token: ServerFixture.allToken)
        let doc = try? JSONSerialization.jsonObject(with: Data(status.body)) as? [String: Any]
        let series = ((doc?["requests"] as? [String: Any])?["series"] as? [[String: Any]]) ?? []
        let k = series.first { $0["endpoint"] as? String == "K" && $0["listener"] as? String == "binary" }
        #expect(k?["count"] as? Double == 5 || k?["count"] as? Int == 5)
        #expect((k?["buckets"] as? [Any])?.count == ServiceMetrics.latencyBuckets.count + 1)
    }

    @Test func statusShowsEachTokenWhatItMayRead() throws {
        let api = Self.api(.prometheus())
        #expect(Self.get(api, "/v2/status").status == 401)
        #expect(Self.get(api, "/v2/status", token: "nope").status == 401)
        let all = try #require(try JSONSerialization.jsonObject(with: Data(Self.get(api, "/v2/status", token: ServerFixture.allToken).body))
            as? [String: Any])
        let scoped = try #require(try JSONSerialization.jsonObject(with: Data(Self.get(api, "/v2/status", token: ServerFixture.scopedToken).body))
            as? [String: Any])
        #expect((all["client_list"] as? [Any])?.count == Self.f.store.clients.count)
        let list = try #require(scoped["client_list"] as? [[String: Any]])
        #expect(list.count == 1 && list[0]["id"] as? String == Self.f.dump.clients[0].id.description)
        #expect(all["version"] as? String == TallyVersion.string && all["ready"] as? Bool == true)
        #expect(all["usage_rows"] as? Int == Self.f.store.usageRowCount && all["clients"] as? Int == Self.f.store.clients.count)
        #expect(scoped["data_source"] is NSNull, "a scoped token does not learn where the data comes from")
        #expect(Self.get(Self.api(.quiet), "/v2/status", token: ServerFixture.allToken).status == 200)
    }

    @Test func accessLogPolicy() {
        #expect(AccessLogPolicy("all") == .all && AccessLogPolicy("errors") == .errors && AccessLogPolicy("off") == .off)
        #expect(AccessLogPolicy("sample:10") == .sample(10) && AccessLogPolicy("sample:1") == .sample(1))
        for bad in ["sample:0", "sample:", "sample:-3", "some", "ALL", ""] { #expect(AccessLogPolicy(bad) == nil, "\(bad)") }
        let o = Observability(accessLog: .sample(3), logLevel: .info)
        #expect((1...9).filter { o.logsAccess(status: 200, id: UInt64($0)) } == [3, 6, 9])
        #expect(o.logsAccess(status: 404, id: 1) && o.logsAccess(status: 500, id: 2))
        let errors = Observability(accessLog: .errors, logLevel: .info)
        #expect(!errors.logsAccess(status: 200, id: 3) && errors.logsAccess(status: 400, id: 3))
        // Above info, nothing is logged whatever the policy.
        #expect(!Observability(accessLog: .all, logLevel: .warning).logsAccess(status: 500, id: 1))
        #expect(!Observability(accessLog: .off, logLevel: .trace).logsAccess(status: 500, id: 1))
    }

    @Test func prometheusTextReader() {
        let text = """
            # HELP x a help line
            # TYPE x counter
            x_total{a="1",b="q\\"uote\\\\",c="line\\nbreak"} 42
            plain 3.5
            h_bucket{le="+Inf"} 7
            broken{a="1" 9
            """
        let s = PrometheusText.parse(Array(text.utf8))
        #expect(s.count == 3)
        #expect(s[0].name == "x_total" && s[0].value == 42 && s[0].labels == ["a": "1", "b": "q\"uote\\", "c": "line\nbreak"])
        #expect(s[1].name == "plain" && s[1].value == 3.5 && s[1].labels.isEmpty)
        #expect(s[2].labels["le"] == "+Inf" && s[2].value == 7)
    }
}
