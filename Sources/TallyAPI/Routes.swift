import Foundation
import TallyQuery
import TallyStorage

extension Registry {
    /// `/healthz`, `/readyz`, `/v2/openapi.json` (no token) and the admin `POST`s.
    static let serviceRoutes: [Route] = [
        Route("healthz", "healthz", kind: .service({ _, _ throws(APIError) in APIResponse(status: 200, body: Array(#"{"status":"ok"}"#.utf8)) }),
              base: .top),
        Route("readyz", "readyz", kind: .service({ api, _ throws(APIError) in
            guard let store = api.store else { throw .notReady }
            var w = JSONWriter(capacity: 64)
            w.beginObject()
            w.key("status"); w.string("ready")
            w.key("clients"); w.int(store.clients.count)
            w.key("usage_rows"); w.int(store.usageRowCount)
            // Freshness: the newest append acknowledged, and when (null if not by this process).
            let f = api.writer.freshness
            w.key("acked_sequence"); w.int(Int(clamping: f.ackedSequence))
            w.key("acked_at"); w.string(f.ackedAt.map { ISO8601DateFormatter().string(from: $0) })
            // Rows appended into tails and not yet merged into their clients' indexes.
            let tails = store.tails
            w.key("delta_rows"); w.int(tails.rows)
            w.key("oldest_delta_age_seconds"); w.double(tails.oldestSince.map { max(0, Date().timeIntervalSince1970 - $0) } ?? 0)
            w.endObject()
            return APIResponse(status: 200, body: w.bytes)
        }), base: .top),
        Route("openapi", "openapi.json", kind: .service({ _, _ throws(APIError) in APIResponse(status: 200, body: API.openAPIDocument) }),
              base: .root),
        Route("console", "", kind: .service({ _, _ throws(APIError) in
            APIResponse(status: 200, headers: [("Content-Security-Policy", API.consolePolicy), ("Cache-Control", "no-cache")],
                        body: API.consolePage, contentType: "text/html; charset=utf-8")
        }), base: .top),
        Route("metrics", "metrics", kind: .service({ api, r throws(APIError) in try api.metricsExposition(r) }), base: .top),
        Route("status", "status", kind: .service({ api, r throws(APIError) in try api.status(r) }), base: .root),
        // Reloads and snapshots take seconds: on a thread of their own, never the loop or a query thread.
        Route("reload", "admin/reload", kind: .deferred({ api, r, _, done in DispatchQueue.global().async { done(api.respond { () throws(APIError) in try api.reload(r) }) } }),
              base: .root),
        Route("snapshot", "admin/snapshot", kind: .deferred({ api, r, _, done in DispatchQueue.global().async { done(api.respond { () throws(APIError) in try api.snapshot(r) }) } }),
              base: .root),
        Route("append", "usage-events", kind: .deferred({ api, r, m, done in api.append(r, clientSegment: m.client ?? "", done: done) })),
    ]

    /// A–J (SPEC §3), from the query layer's ``Endpoint`` definitions; wire numbers 1–10.
    static let dashboardRoutes: [Route] = Endpoint.allCases.enumerated().map { i, e in
        Route(String(UnicodeScalar(UInt8(ascii: "A") + UInt8(i))), "analytics/apps/" + e.path, wire: UInt8(i + 1),
              parameters: dashboardParameters(e), sortBy: e.sortFields.map(\.name), deprecated: e == .aiUsers,
              heavy: { p in API.isHeavy(e, probe: p) },
              answer: { c throws(APIError) in try c.api.dashboard(e, c) })
    }

    static func dashboardParameters(_ e: Endpoint) -> [ParameterRule] {
        var p: [ParameterRule] = [
            .init("start_date", "required; YYYY-MM-DD"),
            .init("end_date", "required; YYYY-MM-DD, not before start_date, at most 366 days from it inclusive"),
        ]
        if e.takesComparison {
            p.append(.init("compare_start_date", "optional, with compare_end_date; YYYY-MM-DD"))
            p.append(.init("compare_end_date", "optional, with compare_start_date; not before it, at most 366 days"))
        }
        p.append(.init("granularity", (e.requiresGranularity ? "required" : "optional") + "; daily, weekly, monthly or quarterly"))
        for f in Endpoint.FilterName.allCases where e.filters.contains(f) {
            p.append(.init(f.rawValue, f == .isApproved ? "true or false (also 1, 0)" : "comma-separated UUIDs"))
        }
        p += listParameters(e.sortFields.map(\.name))
        return p
    }

    /// `sort_by`, `sort_order` and paging of a list route.
    static func listParameters(_ sortBy: [String]) -> [ParameterRule] {
        guard !sortBy.isEmpty else { return [] }
        return [
            .init("sort_by", sortBy.joined(separator: ", ") + "; default " + sortBy[0]),
            .init("sort_order", "asc or desc"),
        ] + pageParameters
    }

    static let pageParameters: [ParameterRule] = [
        .init("page_size", "an integer from 1 to 200; default 50"),
        .init("cursor", "the next_cursor of the previous page, with every other parameter repeated as it was"),
    ]
}
