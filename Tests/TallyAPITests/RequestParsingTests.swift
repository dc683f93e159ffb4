import Testing
@testable import TallyAPI
import TallyQuery
import TallyStorage

/// The byte-level request parsing every request goes through: query strings, bearer tokens and
/// analytics paths, against the forms a client can send (escapes, empty pairs, combining marks,
/// odd spacing and case).
@Suite struct RequestParsingTests {
    @Test func queryStrings() {
        func pairs(_ q: String) -> [String] { QueryString.parse(q).map { "\($0.0)=\($0.1)" } }
        #expect(pairs("") == [])
        #expect(pairs("a=1&b=2") == ["a=1", "b=2"])
        #expect(pairs("&&a=1&&") == ["a=1"], "empty pairs are skipped")
        #expect(pairs("flag&x=") == ["flag=", "x="], "a name without = has an empty value")
        #expect(pairs("a=x=y") == ["a=x=y"], "only the first = separates")
        #expect(pairs("n%61me=v+w%2Bz") == ["name=v w+z"], "escapes and + are decoded, after splitting")
        #expect(pairs("a=%26&b=%3D") == ["a=&", "b=="], "an escaped & or = is data")
        #expect(pairs("bad=%zz%4") == ["bad=%zz%4"], "invalid escapes are kept as written")
        #expect(pairs("caf%C3%A9=%E2%82%AC") == ["café=€"])
        // A combining mark right after a separator stays with the next name or value.
        #expect(pairs("a&\u{301}b=1") == ["a=", "\u{301}b=1"])
        #expect(pairs("a=\u{301}") == ["a=\u{301}"])
        var names: [String] = []
        QueryString.forEachRawPair("x=1&y%3D=2&z") { name, _ in names.append(String(name)) }
        #expect(names == ["x", "y%3D", "z"], "raw pairs are not decoded")
    }

    @Test func bearerTokens() {
        func token(_ h: String) -> String? { TokenStore.bearerToken(h).map { String(decoding: $0, as: UTF8.self) } }
        #expect(token("Bearer abc") == "abc")
        #expect(token("bearer abc") == "abc")
        #expect(token("BEARER abc") == "abc")
        #expect(token("  Bearer   abc \t") == "abc", "spaces around the token are not part of it")
        #expect(token("Bearer a b") == "a b")
        #expect(token("Bearer") == nil)
        #expect(token("Bearer ") == nil)
        #expect(token("Bearer    ") == nil)
        #expect(token("Bearer\tabc") == nil, "the scheme is followed by a space")
        #expect(token("Basic abc") == nil)
        #expect(token("Bearerabc") == nil)
        #expect(token("") == nil)
        let demo = TokenStore.demo
        #expect(demo.authenticate("Bearer YOUR_API_TOKEN") != nil)
        #expect(demo.authenticate("bearer  YOUR_API_TOKEN ") != nil)
        #expect(demo.authenticate("Bearer YOUR_API_TOKEN2") == nil)
        #expect(demo.authenticate(nil) == nil)
    }

    /// Every route is found by its own path (its path parameter filled in), by nothing else.
    @Test func registryPaths() {
        let client = "a1b2c3d4-0001-4000-8000-00000000000f"
        for route in Registry.routes {
            var path = route.path.replacingOccurrences(of: "{client_id}", with: client)
            if let p = route.pathParameter { path = path.replacingOccurrences(of: "{\(p)}", with: "v%20\(p)") }
            let m = Registry.match(path)
            #expect(m?.route.name == route.name, "\(path)")
            #expect(m?.client == (route.base == .client ? Substring(client) : nil), "\(path)")
            #expect(m?.pathValue == route.pathParameter.map { Substring("v%20\($0)") }, "\(path)")
            #expect(Registry.match(path + "/") == nil, "a trailing slash names no route: \(path)/")
            #expect(Registry.match(path + "x") == nil || route.pathParameter != nil, "\(path)x")
            if let w = route.wire { #expect(Registry.route(wire: w)?.name == route.name) }
        }
        #expect(Registry.match("/v2/clients//analytics/apps/utilization")?.client == "")
        #expect(Registry.match("/")?.route.name == "console", "the console is the one route at /")
        for path in ["/v2/clients/\(client)/analytics/apps/nope", "/v2/clients/\(client)/analytics/apps",
                     "/v2/clients/\(client)/analytics/appsX/utilization", "/v2/clients/\(client)", "/v2/clients",
                     "/v2/client/\(client)/analytics/apps/utilization", "", "//", "/v2", "/v2/",
                     "/v2/clients/\(client)/users/a/b", "/v2/clients/\(client)/users/", "/healthz/", "/v2/healthz"] {
            #expect(Registry.match(path) == nil, "\(path)")
        }
        let wires = Registry.routes.compactMap(\.wire)
        #expect(Set(wires).count == wires.count && Set(wires) == Set(1...UInt8(wires.count)), "wire numbers are 1…n, once each")
    }
}
