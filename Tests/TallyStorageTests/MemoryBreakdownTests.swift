import Testing
import TallyStorage

/// `tally load`'s memory breakdown (issue 16): the structures' bytes add up to the store's
/// accounting, and every client is counted in the size class its usage rows put it in.
@Suite struct MemoryBreakdownTests {
    /// A client with `users` users, one app, and `rows` distinct usage rows spread over days.
    static func client(_ n: UInt64, users: Int, rows: Int) -> ClientStore {
        var b = ClientStoreBuilder(info: ClientInfo(id: UUID128(high: 1, low: n), name: "c\(n)", timezone: "UTC", licensedSeats: nil))
        for u in 0..<users {
            _ = b.addUser(UserInfo(id: UUID128(high: 2, low: UInt64(u)), email: "u\(u)@c\(n).example", displayName: "U \(u)",
                                   isActive: true, role: nil, createdAt: nil))
        }
        _ = b.addApp(AppInfo(id: UUID128(high: 3, low: n), catalogIndex: 0, isApproved: true, isFavorite: false,
                             category: nil, vendor: nil, isAI: false))
        let first = Day("2025-01-01")!
        for r in 0..<rows { b.addUsage(user: UInt32(r % users), app: 0, day: first.adding(r / users)) }
        return b.build()
    }

    @Test func partsAddUpAndClientsFallInTheirSizeClass() throws {
        let clients = [Self.client(1, users: 10, rows: 0), Self.client(2, users: 50, rows: 9_999), Self.client(3, users: 100, rows: 10_000),
                       Self.client(4, users: 500, rows: 120_000)]
        let store = Store(catalog: Catalog(categories: [], vendors: [], applications: []), clients: clients)
        let m = MemoryBreakdown(store)
        #expect(m.all.total == store.byteCount)
        #expect(m.all.clients == 4 && m.all.rows == 139_999 && m.all.rows == store.usageRowCount)
        #expect(m.bySize.map(\.clients) == [2, 1, 1, 0])
        #expect(m.bySize.map(\.rows) == [9_999, 10_000, 120_000, 0])
        for (i, _) in MemoryBreakdown.parts.enumerated() {
            #expect(m.bySize.reduce(0) { $0 + $1.bytes[i] } == m.all.bytes[i], "part \(i)")
        }
        #expect(m.bySize[2].total == clients[3].byteCount)
        // A client with usage holds bytes in every structure but the optional ones.
        let big = clients[3].byteParts
        #expect(big.count == MemoryBreakdown.parts.count)
        for (name, bytes) in zip(MemoryBreakdown.parts, big) where !name.hasPrefix("range") && !name.hasPrefix("departments") && !name.hasSuffix("masks") {
            #expect(bytes > 0, "\(name)")
        }
        // Printed: a header, the counts, one line per structure and the total; the empty size class is left out.
        let lines = m.lines
        #expect(lines.count == MemoryBreakdown.parts.count + 3 && lines.allSatisfy { $0.hasPrefix("memory  ") })
        #expect(lines[0].contains("100k–1M") && !lines[0].contains("≥ 1M"))
        #expect(lines.last!.contains(String(format: "%.2f", Double(store.byteCount) / 139_999)))
    }
}
