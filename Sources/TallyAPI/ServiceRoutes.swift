import Foundation
import TallyQuery
import TallyStorage

extension API {
    /// The console's Content-Security-Policy: nothing from anywhere but this server, inline
    /// script and style (the page is one file), no framing.
    static let consolePolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// Whether `address` may read `/metrics`: loopback, a configured peer, or an in-process call.
    func mayReadMetrics(_ address: String?) -> Bool {
        guard let a = address else { return true }
        if a.hasPrefix("127.") || a == "::1" || a.hasPrefix("::ffff:127.") { return true }
        return observability.metricsPeers.contains(a)
    }

    /// `GET /metrics`: the Prometheus text exposition (SPEC §3d); no token, loopback and the
    /// configured peers only.
    func metricsExposition(_ r: APIRequest) throws(APIError) -> APIResponse {
        guard mayReadMetrics(r.remoteAddress) else {
            throw APIError(status: 403, code: "forbidden", message: "/metrics answers loopback and the addresses given with --metrics-peer")
        }
        guard let emit = observability.exposition else {
            throw APIError(status: 404, code: "not_found", message: "this server keeps no metrics")
        }
        observability.metrics.observe(store: store, walBytes: writer.logBytes, pins: writer.pins.figures)
        return APIResponse(status: 200, body: emit(), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    /// `GET /v2/status` (any valid token): what the console shows about the service — version,
    /// uptime, data source, clients, rows, bytes, last reload — the clients the token may read,
    /// and the request counters and latency histograms of `/metrics`, per endpoint and listener.
    func status(_ r: APIRequest) throws(APIError) -> APIResponse {
        guard let token = tokens.authenticate(r.authorization) else { throw .unauthorized }
        let o = observability
        let store = store
        let iso = ISO8601DateFormatter()
        var w = JSONWriter(capacity: 8192)
        w.beginObject()
        w.key("version"); w.string(TallyVersion.string)
        w.key("started_at"); w.string(iso.string(from: o.startedAt))
        w.key("uptime_seconds"); w.double(Date().timeIntervalSince(o.startedAt))
        w.key("ready"); w.bool(store != nil)
        w.key("data_source"); w.string(token.readsAllClients ? o.source : nil)
        w.key("clients"); w.int(store?.clients.count ?? 0)
        w.key("usage_rows"); w.int(store?.usageRowCount ?? 0)
        w.key("store_bytes"); w.int(store?.byteCount ?? 0)
        w.key("resident_bytes"); w.int(ServiceStatus.residentBytes())
        w.key("last_reload")
        if let l = o.lastReloadRecord {
            w.beginObject()
            w.key("finished_at"); w.string(iso.string(from: l.finishedAt))
            w.key("source"); w.string(token.readsAllClients ? l.source : nil)
            w.key("seconds"); w.double(l.seconds)
            w.key("ok"); w.bool(l.error == nil)
            w.key("error"); w.string(token.readsAllClients ? l.error : l.error.map { _ in "the load failed" })
            w.endObject()
        } else {
            w.null()
        }
        // The clients this token may read (the console's picker), by name.
        let readable = (store?.clients ?? []).filter { token.mayRead($0.info.id) }
            .sorted { $0.info.name != $1.info.name ? $0.info.name < $1.info.name : $0.info.id < $1.info.id }
        w.key("client_list")
        w.beginArray()
        for c in readable.prefix(1000) {
            w.beginObject()
            w.key("id"); w.string(c.info.id.description)
            w.key("name"); w.string(c.info.name)
            w.key("usage_rows"); w.int(c.usage?.rowCount ?? 0)
            w.key("newest_date"); w.string(c.usage.map { $0.newestDay.description })
            w.endObject()
        }
        w.endArray()
        w.key("client_list_truncated"); w.bool(readable.count > 1000)
        w.key("requests")
        if let emit = o.exposition {
            let samples = PrometheusText.parse(emit())
            w.beginObject()
            w.key("buckets_seconds")
            w.beginArray()
            for b in ServiceMetrics.latencyBuckets { w.double(Double(b.components.seconds) + Double(b.components.attoseconds) / 1e18) }
            w.endArray()
            let gauges: [(StaticString, String)] = [("in_flight", "tally_requests_in_flight"), ("connections", "tally_connections_open")]
            for (key, name) in gauges {
                w.key(key)
                w.beginObject()
                for s in samples where s.name == name { w.key(s.labels["listener"] == "http" ? "http" : "binary"); w.double(s.value) }
                w.endObject()
            }
            // Answers by status (non-zero only), per listener: the console's error rate.
            w.key("responses")
            w.beginObject()
            for listener in Listener.allCases {
                w.key(listener == .http ? "http" : "binary")
                w.beginArray()
                for s in samples where s.name == "tally_responses_total" && s.labels["listener"] == listener.label && s.value > 0 {
                    w.beginObject()
                    w.key("status"); w.string(s.labels["status"] ?? "other")
                    w.key("count"); w.double(s.value)
                    w.endObject()
                }
                w.endArray()
            }
            w.endObject()
            // One series per endpoint and listener that has answered at least once.
            struct Series { var count = 0.0, sum = 0.0, buckets: [Double] = [] }
            var series: [String: Series] = [:]
            for s in samples where s.name.hasPrefix("tally_request_duration_seconds") {
                guard let e = s.labels["endpoint"], let l = s.labels["listener"] else { continue }
                let k = e + "\u{0}" + l
                var x = series[k] ?? Series()
                switch s.name {
                case "tally_request_duration_seconds_count": x.count = s.value
                case "tally_request_duration_seconds_sum": x.sum = s.value
                case "tally_request_duration_seconds_bucket": x.buckets.append(s.value)
                default: break
                }
                series[k] = x
            }
            w.key("series")
            w.beginArray()
            for (k, x) in series.sorted(by: { $0.key < $1.key }) where x.count > 0 {
                let parts = k.split(separator: "\u{0}", omittingEmptySubsequences: false)
                w.beginObject()
                w.key("endpoint"); w.string(String(parts[0]))
                w.key("listener"); w.string(String(parts[1]))
                w.key("count"); w.double(x.count)
                w.key("sum_seconds"); w.double(x.sum)
                w.key("buckets")
                w.beginArray()
                for b in x.buckets { w.double(b) }
                w.endArray()
                w.endObject()
            }
            w.endArray()
            w.endObject()
        } else {
            w.null()
        }
        w.endObject()
        return APIResponse(status: 200, headers: [("Cache-Control", "no-store")], body: w.bytes)
    }
}

/// A reader of the Prometheus text exposition format, for the service's own `/metrics` (the
/// console's figures come from the same counters): one sample per line, comments skipped.
public enum PrometheusText {
    public struct Sample: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public static func parse(_ bytes: [UInt8]) -> [Sample] {
        var out: [Sample] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            var labels: [String: String] = [:]
            let name: Substring, rest: Substring
            if let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") {
                name = line[..<open]
                rest = line[line.index(after: close)...]
                var s = line[line.index(after: open)..<close]
                while let eq = s.firstIndex(of: "=") {
                    let key = String(s[..<eq]).trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                    var i = s.index(after: eq)
                    guard i < s.endIndex, s[i] == "\"" else { break }
                    i = s.index(after: i)
                    var value = ""
                    while i < s.endIndex, s[i] != "\"" {
                        if s[i] == "\\", s.index(after: i) < s.endIndex {
                            i = s.index(after: i)
                            value.append(s[i] == "n" ? "\n" : s[i])
                        } else {
                            value.append(s[i])
                        }
                        i = s.index(after: i)
                    }
                    labels[key] = value
                    s = i < s.endIndex ? s[s.index(after: i)...] : ""
                }
            } else if line.contains("{") {
                continue  // a label set that does not close
            } else if let space = line.firstIndex(of: " ") {
                name = line[..<space]
                rest = line[space...]
            } else {
                continue
            }
            guard let value = rest.split(separator: " ").first.flatMap({ Double($0) }) else { continue }
            out.append(Sample(name: String(name), labels: labels, value: value))
        }
        return out
    }
}
