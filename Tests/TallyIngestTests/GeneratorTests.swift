import Foundation
import Testing
import TallyGenerate
import TallyIngest
import TallyStorage

/// `tally generate`: the dump loads strictly, holds what it says, and has the features the
/// benchmarks rely on; the same seed writes the same dump.
@Suite struct GeneratorTests {
    @Test func scaleSLoadsAndHasTheFeatures() throws {
        let folder = NSTemporaryDirectory() + "tally-gen-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let summary = try DumpGenerator.write(.s, seed: 7, to: folder)
        #expect(summary.usageRows > 700_000 && summary.usageRows < 1_400_000)
        let (store, report) = try DumpLoader.load(folder: folder)
        #expect(report.recordsByTable["app_usage_reports"] == summary.usageRows)
        #expect(store.clients.count == summary.clients && summary.clients >= 20)
        #expect(store.catalog.categories.filter(\.isAI).count == 1)
        #expect(store.catalog.applications.contains { $0.category == nil })
        #expect(store.catalog.applications.contains { $0.vendor == nil })
        let clients = store.clients
        let sizes = clients.map { $0.usage?.rowCount ?? 0 }.sorted()
        #expect(sizes.last! > 5 * sizes[sizes.count / 2], "skewed sizes")
        let users = clients.flatMap(\.users)
        #expect(users.contains { !$0.isActive } && users.contains(where: \.isActive))
        let inDepartments = clients.flatMap { c in c.users.indices.map { c.departments(ofUser: UInt32($0)).count } }
        #expect(inDepartments.contains(0) && inDepartments.contains(2))
        #expect(clients.contains { c in c.apps.contains(where: \.isAI) })

        // Same seed, same bytes; another seed, other data.
        let again = folder + "-again"
        defer { try? FileManager.default.removeItem(atPath: again) }
        _ = try DumpGenerator.write(.s, seed: 7, to: again)
        for name in ["clients.csv", "users.csv", "app_usage_reports/part-00000.csv.lz4"] {
            #expect(FileManager.default.contents(atPath: "\(folder)/\(name)") == FileManager.default.contents(atPath: "\(again)/\(name)"))
        }
        #expect(DumpGenerator.plan(.s, seed: 7) != DumpGenerator.plan(.s, seed: 8))
    }

    @Test func scalesGrow() {
        func users(_ s: DumpGenerator.Scale) -> Int { DumpGenerator.plan(s, seed: 1).map(\.users).reduce(0, +) }
        #expect(users(.s) < users(.m) && users(.m) < users(.l))
        let l = DumpGenerator.plan(.l, seed: 1)[0]
        #expect(l.users == 20_000 && l.apps == 600 && l.days == 400)
    }
}

/// Load progress: by the end, every stored byte and every record has been counted.
@Suite struct LoadProgressTests {
    @Test func countsEveryByteAndRecord() throws {
        let folder = NSTemporaryDirectory() + "tally-progress-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try DumpGenerator.write(.s, seed: 3, to: folder)
        var seen: LoadProgress?
        let (_, report) = try DumpLoader.load(folder: folder) { seen = $0 }
        let p = try #require(seen).now
        #expect(p.totalBytes > 0 && p.bytes == p.totalBytes && p.fraction == 1 && p.eta == 0)
        #expect(p.rows == report.recordsByTable.values.reduce(0, +))
    }

    /// `--synthetic` shapes: the three numbers, an optional department count, or `enterprise`;
    /// anything else is refused. The enterprise shape's departments are Zipf-like: the largest
    /// holds many times the median's members, where the uniform shape's are within a few percent.
    @Test func syntheticShapesParseAndTheEnterpriseShapeHasSkewedDepartments() throws {
        let s = try #require(SyntheticShape.parse("200x30x40x7"))
        #expect(s.users == 200 && s.apps == 30 && s.days == 40 && s.departments == 7 && !s.skewedDepartments)
        #expect(SyntheticShape.parse("200x30x40")?.departments == 24)
        let e = try #require(SyntheticShape.parse("enterprise"))
        #expect(e.users == 100_000 && e.apps == 2_000 && e.days == 366 && e.departments == 240 && e.skewedDepartments)
        for bad in ["", "x", "200x30", "200x30x40x7x1", "200xx40", "0x30x40", "200x30x-4", "200x30x40x", "Enterprise", "2e3x30x40"] {
            #expect(SyntheticShape.parse(bad) == nil, "\(bad)")
        }
        func sizes(_ shape: SyntheticShape) -> [Int] {
            let c = SyntheticClient.make(shape).1.build()
            return c.departments.indices.map { d in c.userDepartments.filter { $0 == UInt32(d) }.count }.sorted()
        }
        var skewed = SyntheticShape(users: 4_000, apps: 20, days: 10)
        skewed.departments = 60
        skewed.skewedDepartments = true
        var uniform = skewed
        uniform.skewedDepartments = false
        let k = sizes(skewed), u = sizes(uniform)
        #expect(k.last! > 10 * k[k.count / 2], "\(k)")
        #expect(u.last! < 2 * u[u.count / 2], "\(u)")
    }
}
