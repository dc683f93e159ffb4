// Query strings, parameter validation and cursors (TallyAPI) for every query route of the
// registry, answered over the tiny store as both listeners answer them. Input: byte 0 picks the
// route (its wire number), byte 1 the format, the token (every client, or Vandelay's only), the
// client (one of the three, or one the store does not hold) and whether the request also goes
// through HTTP (`API.handle`, path matching included); the rest is the query string as sent.
// A thrown `APIError` is a correct refusal.
//
// Checked: every answer and error is whole JSON (format 0); a page's `next_cursor`, sent back
// with the same parameters, is accepted (not refused as a cursor of other parameters); a
// cursor that decodes encodes again to one that decodes to the same key and fingerprint.
import Foundation
import FuzzSupport
import TallyAPI
import TallyQuery
import TallyStorage

let api = SeedQueries.api
let store = TinyDump.store
let queryRoutes = Registry.routes.filter(\.isQuery)
let vandelay = store.clients[2].info.id
let tokens = [SeedQueries.allClients,
              TokenEntry(name: "vandelay", digest: TokenStore.sha256("vandelay"), clients: [vandelay])]
let clients = store.clients.map(\.info.id) + [UUID128("00000000-0000-4000-8000-000000000000")!]

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Seeds.writeIfAsked {
        var seeds: [(String, [UInt8])] = []
        for (i, q) in SeedQueries.all.enumerated() {
            // Vandelay (client 2), JSON, every client's token; every fourth also over HTTP.
            let flags: UInt8 = 2 << 2 | (i % 4 == 0 ? 0x10 : 0)
            seeds.append(("route-\(q.wire)-\(i)", [q.wire - 1, flags] + Array(q.query.utf8)))
        }
        // A cursor from a first page, with its page's parameters.
        for (i, q) in SeedQueries.all.enumerated() where q.query.contains("page_size") {
            if let body = try? SeedQueries.answer(wire: q.wire, query: q.query, format: .json), let c = nextCursor(body) {
                seeds.append(("cursor-\(q.wire)-\(i)", [q.wire - 1, 2 << 2] + Array("\(q.query)&cursor=\(c)".utf8)))
            }
        }
        return seeds
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count <= 1 << 13 else { return 0 }
    var input = FuzzInput(start, count)
    let route = queryRoutes[Int(input.byte()) % queryRoutes.count]
    let flags = input.byte()
    let format: ResultFormat = flags & 1 == 0 ? .json : .compact
    let token = tokens[Int(flags >> 1 & 1)]
    let client = clients[Int(flags >> 2 & 3)]
    let overHTTP = flags & 0x10 != 0
    let query = String(decoding: input.rest(), as: UTF8.self)

    // The raw pairs (what the heavy estimate reads), then the decoded ones.
    var raw: [(Substring, Substring)] = []
    QueryString.forEachRawPair(query) { raw.append(($0, $1)) }
    let parameters = QueryString.parse(query)
    guard raw.count == parameters.count else { fuzzFailure("\(raw.count) raw pairs but \(parameters.count) decoded") }
    for (_, value) in parameters { checkCursor(value) }

    // The binary protocol's way: the path parameter is a query parameter of its name.
    let pathValue = route.pathParameter.flatMap { name in parameters.first { $0.0 == name }?.1 }
    _ = api.isHeavy(route, client: client, token: token, parameters: parameters)
    let body: [UInt8]
    do {
        body = try api.answer(route, client: client, pathValue: pathValue, token: token, query: parameters, format: format)
    } catch {
        checkJSON(error.body, "the error body")
        return 0
    }
    if format == .json {
        checkJSON(body, "an answer")
        followCursor(route, client: client, pathValue: pathValue, token: token, parameters: parameters, body: body)
    }
    if overHTTP { http(route, client: client, query: query, raw: raw) }
    return 0
}

/// The same request over HTTP: the route found from its path, the token from the header.
func http(_ route: Route, client: UUID128, query: String, raw: [(Substring, Substring)]) {
    var path = route.path.replacingOccurrences(of: "{client_id}", with: client.description)
    if let name = route.pathParameter {
        let value = raw.first { $0.0 == name }?.1 ?? ""
        path = path.replacingOccurrences(of: "{\(name)}", with: String(value))
    }
    let request = APIRequest(method: "GET", path: path, query: query, authorization: "Bearer \(TokenStore.demoToken)")
    _ = api.isHeavy(request)
    let response = api.handle(request)
    checkJSON(response.body, "an HTTP answer (\(response.status))")
}

/// A page's `next_cursor` sent back with the parameters of the page must be taken.
func followCursor(_ route: Route, client: UUID128, pathValue: String?, token: TokenEntry, parameters: [(String, String)],
                  body: [UInt8]) {
    guard let cursor = nextCursor(body) else { return }
    let again = parameters.filter { $0.0 != "cursor" } + [("cursor", cursor)]
    do {
        _ = try api.answer(route, client: client, pathValue: pathValue, token: token, query: again, format: .json)
    } catch where error.parameter == "cursor" {
        fuzzFailure("route \(route.name) refused its own next_cursor: \(error.message)")
    } catch {
        // Another refusal (a quota, say) is not the cursor's.
    }
}

/// The value of `"next_cursor":"…"` in a JSON answer (cursors are base64url: no escapes).
func nextCursor(_ body: [UInt8]) -> String? {
    let key = Array(#""next_cursor":""#.utf8)
    guard let r = body.firstRange(of: key) else { return nil }
    guard let end = body[r.upperBound...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
    return String(decoding: body[r.upperBound..<end], as: UTF8.self)
}

func checkJSON(_ body: [UInt8], _ what: String) {
    guard (try? JSONSerialization.jsonObject(with: Data(body))) != nil else {
        fuzzFailure("\(what) is not JSON: \(String(decoding: body.prefix(300), as: UTF8.self))")
    }
}

/// A cursor that decodes encodes again to one that decodes the same.
func checkCursor(_ value: String) {
    guard let (key, fingerprint, version) = Cursor.decode(value) else { return }
    let again = Cursor.encode(key, fingerprint: fingerprint, version: version)
    guard let (key2, fingerprint2, version2) = Cursor.decode(again), key2 == key, fingerprint2 == fingerprint, version2 == version else {
        fuzzFailure("cursor \(value) decodes to \(key), which encodes to \(again), which does not decode the same")
    }
}

/// SwiftPM's debug builds link `main` to this symbol: hand over to libFuzzer's driver.
@_cdecl("FuzzQuery_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz(UnsafeRawPointer($0), size) } ?? 0 }
}
