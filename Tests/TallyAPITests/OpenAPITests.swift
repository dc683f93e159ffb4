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
        #expect(Set(responses.keys) == ["200", "400", "401", "403", "404", "503"])
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
        #expect(Set((append["responses"] as? [String: Any] ?? [:]).keys) == ["200", "400", "401", "403", "404", "413", "503"])
        let snapshot = try #require((paths["/v2/admin/snapshot"] as? [String: Any])?["post"] as? [String: Any])
        #expect(Set((snapshot["responses"] as? [String: Any] ?? [:]).keys) == ["200", "400", "401", "403", "422", "503"])
    }
}
