import CLZ4
import Foundation
import TallyStorage

/// Writes generated clients as a dump in the SPEC §1 format: small tables as plain CSV, usage
/// rows in LZ4-framed part files, and no manifest (tables are found by name).
public enum DumpExport {
    public static func write(catalog: Catalog, clients: [ClientStoreBuilder], to folder: String,
                             rowsPerPart: Int = 2_000_000) throws {
        let fm = FileManager.default
        try? fm.removeItem(atPath: folder)
        try fm.createDirectory(atPath: folder + "/app_usage_reports", withIntermediateDirectories: true)
        func save(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"))
        }
        func opt(_ s: String?) -> String { s.map(quote) ?? "" }
        try save("catalog_categories.csv", "id,name,is_ai\n" + catalog.categories.map {
            "\($0.id),\(quote($0.name)),\($0.isAI)\n" }.joined())
        try save("catalog_vendors.csv", "id,name\n" + catalog.vendors.map { "\($0.id),\(quote($0.name))\n" }.joined())
        try save("catalog_applications.csv", "id,canonical_name,logo,type,category_id,vendor_id\n" + catalog.applications.map {
            "\($0.id),\(quote($0.canonicalName)),\(opt($0.logo)),\($0.type),"
                + "\($0.category.map { catalog.categories[Int($0)].id.description } ?? ""),"
                + "\($0.vendor.map { catalog.vendors[Int($0)].id.description } ?? "")\n" }.joined())
        var clientsCSV = "id,name,timezone,licensed_seats\n", apps = "id,client_id,catalog_application_id,is_approved,is_favorite\n"
        var depts = "id,client_id,name,description\n", users = "id,client_id,email,display_name,is_active,role,created_at\n"
        var members = "user_id,department_id\n"
        for b in clients {
            let c = b.info
            clientsCSV += "\(c.id),\(quote(c.name)),\(c.timezone),\(c.licensedSeats.map(String.init) ?? "")\n"
            for a in b.apps {
                apps += "\(a.id),\(c.id),\(catalog.applications[Int(a.catalogIndex)].id),\(a.isApproved ? "t" : "f"),\(a.isFavorite ? "t" : "f")\n"
            }
            for d in b.departments { depts += "\(d.id),\(c.id),\(quote(d.name)),\(opt(d.description))\n" }
            for u in b.users {
                users += "\(u.id),\(c.id),\(quote(u.email)),\(opt(u.displayName)),\(u.isActive),\(opt(u.role)),\(u.createdAt ?? "")\n"
            }
            for m in b.membershipPairs { members += "\(b.users[Int(m.user)].id),\(b.departments[Int(m.department)].id)\n" }
        }
        try save("clients.csv", clientsCSV)
        try save("apps.csv", apps)
        try save("departments.csv", depts)
        try save("users.csv", users)
        try save("user_departments.csv", members)

        // Usage: formatted straight into bytes; ids as lower-case UUID text.
        var part = 0
        var buffer: [UInt8] = []
        var rows = 0
        let header = Array("client_id,user_id,application_id,activity_date\n".utf8)
        func flush() throws {
            if rows == 0 { return }
            let out = try lz4Frame(buffer)
            try Data(out).write(to: URL(fileURLWithPath: String(format: "%@/app_usage_reports/part-%05d.csv.lz4", folder, part)))
            part += 1
            rows = 0
            buffer.removeAll(keepingCapacity: true)
        }
        for b in clients {
            let cid = Array(b.info.id.description.utf8)
            let userText = b.users.map { Array($0.id.description.utf8) }
            let appText = b.apps.map { Array($0.id.description.utf8) }
            var dayText: [Int32: [UInt8]] = [:]
            var failure: Error?
            b.forEachUsageRow { u, a, d in
                if failure != nil { return }
                if rows == 0 { buffer += header }
                buffer += cid; buffer.append(44)
                buffer += userText[Int(u)]; buffer.append(44)
                buffer += appText[Int(a)]; buffer.append(44)
                if dayText[d.raw] == nil { dayText[d.raw] = Array(d.description.utf8) }
                buffer += dayText[d.raw]!; buffer.append(10)
                rows += 1
                if rows == rowsPerPart { do { try flush() } catch { failure = error } }
            }
            if let failure { throw failure }
        }
        try flush()
    }

    static func quote(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : (s.isEmpty ? "\"\"" : s)
    }

    public struct CompressionFailed: Error {}

    /// `b` as one LZ4 frame with its content size in the header (as `tally generate` writes
    /// part files; the fuzzers' seeds use it too).
    public static func lz4Frame(_ b: [UInt8]) throws -> [UInt8] {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.contentSize = UInt64(b.count)
        let bound = LZ4F_compressFrameBound(b.count, &prefs)
        var out = [UInt8](repeating: 0, count: bound)
        let n = LZ4F_compressFrame(&out, bound, b, b.count, &prefs)
        if LZ4F_isError(n) != 0 { throw CompressionFailed() }
        return Array(out[0..<n])
    }
}
