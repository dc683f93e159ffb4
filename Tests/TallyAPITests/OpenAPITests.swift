import Foundation
import Testing
import TallyAPI
import TallyQuery

/// The OpenAPI document served is the one in the repository, and it describes exactly the
/// endpoints, sort fields, filters and requirements the server implements.
@Suite struct OpenAPITests {
    let doc = (try? JSONSerialization.jsonObject(with: Data(API.openAPIDocument))) as? [String: Any] ?? [:]

    @Test func documentIsTheRepositoryFile() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let file = try Data(contentsOf: url.appendingPathComponent("Sources/TallyAPI/openapi.json"))
        #expect(Array(file) == API.openAPIDocument)
        #expect(doc["openapi"] as? String == "3.1.0")
    }

    @Test(arguments: Endpoint.allCases)
    func endpointIsDescribed(_ e: Endpoint) throws {
        let paths = doc["paths"] as? [String: Any] ?? [:]
        let op = try #require(((paths["/v2/clients/{client_id}/analytics/apps/\(e.path)"] as? [String: Any])?["get"])
            as? [String: Any])
        let params = op["parameters"] as? [[String: Any]] ?? []
        func param(_ name: String) -> [String: Any]? { params.first { $0["name"] as? String == name } }
        #expect(param("granularity")?["required"] as? Bool == e.requiresGranularity)
        #expect(param("start_date")?["required"] as? Bool == true && param("end_date")?["required"] as? Bool == true)
        #expect((param("compare_start_date") != nil) == e.takesComparison)
        let sorts = (param("sort_by")?["schema"] as? [String: Any])?["enum"] as? [String] ?? []
        #expect(sorts == e.sortFields.map(\.name))
        #expect((param("cursor") != nil) == e.isList && (param("page_size") != nil) == e.isList)
        let filters = Set(Endpoint.FilterName.allCases.filter { param($0.rawValue) != nil })
        #expect(filters == e.filters)
        #expect((op["deprecated"] as? Bool ?? false) == (e == .aiUsers))
        let responses = op["responses"] as? [String: Any] ?? [:]
        #expect(Set(responses.keys) == ["200", "400", "401", "403", "404", "429", "503"])
    }
}

extension OpenAPITests {
    @Test func reloadIsDescribed() throws {
        let paths = doc["paths"] as? [String: Any] ?? [:]
        let op = try #require((paths["/v2/admin/reload"] as? [String: Any])?["post"] as? [String: Any])
        let responses = op["responses"] as? [String: Any] ?? [:]
        #expect(Set(responses.keys) == ["200", "400", "401", "403", "404", "409", "422"])
    }
}

extension OpenAPITests {
    @Test func appendsAndSnapshotsAreDescribed() throws {
        let paths = doc["paths"] as? [String: Any] ?? [:]
        let append = try #require((paths["/v2/clients/{client_id}/usage-events"] as? [String: Any])?["post"] as? [String: Any])
        #expect(Set((append["responses"] as? [String: Any] ?? [:]).keys) == ["200", "400", "401", "403", "404", "409", "413", "503"])
        // The body: events and the five directory tables.
        let body = ((((append["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"]
            as? [String: Any])?["oneOf"] as? [[String: Any]]
        let tables = Set(((body?.first?["properties"]) as? [String: Any] ?? [:]).keys)
        #expect(tables == ["events", "users", "apps", "catalog_applications", "departments", "user_departments"], "\(tables)")
        let snapshot = try #require((paths["/v2/admin/snapshot"] as? [String: Any])?["post"] as? [String: Any])
        #expect(Set((snapshot["responses"] as? [String: Any] ?? [:]).keys) == ["200", "400", "401", "403", "422", "503"])
    }
}

extension OpenAPITests {
    /// Every route of the registry is in the document under its path, with its method, and every
    /// query route with exactly the parameters the registry documents (path parameters in the
    /// path) and its sort fields.
    @Test func everyRouteIsDescribed() throws {
        let paths = doc["paths"] as? [String: Any] ?? [:]
        for route in Registry.routes {
            let item = try #require(paths[route.path] as? [String: Any], "\(route.path) is not in openapi.json")
            guard route.isQuery else {
                if case .deferred = route.kind { #expect(item["post"] != nil, "\(route.path): post") } else { #expect(item["get"] != nil) }
                continue
            }
            let op = try #require(item["get"] as? [String: Any], "\(route.path): get")
            let params = op["parameters"] as? [[String: Any]] ?? []
            let query = Set(params.filter { $0["in"] as? String == "query" }.compactMap { $0["name"] as? String })
            let inPath = Set(params.filter { $0["in"] as? String == "path" }.compactMap { $0["name"] as? String })
            #expect(query == Set(route.parameters.map(\.name)).subtracting([route.pathParameter].compactMap { $0 }),
                    "\(route.path): query parameters")
            #expect(inPath == Set((route.base == .client ? ["client_id"] : []) + [route.pathParameter].compactMap { $0 }),
                    "\(route.path): path parameters")
            let sorts = (params.first { $0["name"] as? String == "sort_by" }?["schema"] as? [String: Any])?["enum"] as? [String] ?? []
            #expect(sorts == route.sortBy, "\(route.path): sort_by")
        }
    }
}

extension OpenAPITests {
    /// docs/PROTOCOL.md carries the registry's parameter table as `tally routes` prints it.
    @Test func protocolDocumentHasTheParameterTable() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let text = try String(contentsOf: url.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        #expect(text.contains(Registry.parameterTable), "docs/PROTOCOL.md: paste `tally routes` into §3")
    }
}
