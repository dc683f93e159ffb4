import Foundation
import Testing
import TallyQuery
import TallyStorage

/// Inputs the fuzzers of Fuzz/ found (docs/FUZZING.md); their reproducers are also in the
/// fuzzers' corpora (Fuzz/Corpus/<Name>/crash-*).
@Suite struct QueryFuzzRegressionTests {
    /// FuzzSnapshot: a client whose licensed seats exceed `Int.max / 2` (a dump's clients.csv or a
    /// snapshot may hold any integer) trapped the license reports (R1, R2) computing its
    /// utilization: `2 × seats` overflowed in the rounding.
    @Test func utilizationOfHugeSeatCounts() {
        #expect(Derived.percentTenths(7, of: .max) == 0)
        #expect(Derived.percentTenths(7, of: .max / 2 + 1) == 0)
        #expect(Derived.percentTenths(Int.max / 1000, of: .max) == 1)  // 0.1 %
        // The rounding is as before: halves away from zero.
        #expect(Derived.percentTenths(1, of: 3) == 333 && Derived.percentTenths(2, of: 3) == 667)
        #expect(Derived.percentTenths(1, of: 16) == 63 && Derived.percentTenths(-1, of: 16) == -63)
        for part in 0...40 {
            for whole in 1...40 {
                #expect(Derived.percentTenths(part, of: whole) == (2 * part * 1000 + whole) / (2 * whole))
            }
        }

        var b = ClientStoreBuilder(info: ClientInfo(id: UUID128(high: 1, low: 1), name: "c", timezone: "UTC", licensedSeats: .max))
        let u = b.addUser(UserInfo(id: UUID128(high: 2, low: 1), email: "a@b", displayName: nil, isActive: true, role: nil, createdAt: nil))!
        let a = b.addApp(AppInfo(id: UUID128(high: 3, low: 1), catalogIndex: 0, isApproved: true, isFavorite: false,
                                 category: nil, vendor: nil, isAI: false))!
        b.addUsage(user: u, app: a, day: Day("2026-01-05")!)
        let client = b.build()
        let store = Store(catalog: Catalog(categories: [], vendors: [],
                                           applications: [CatalogAppInfo(id: UUID128(high: 4, low: 1), canonicalName: "x", logo: nil,
                                                                         type: "web", category: nil, vendor: nil)]),
                          clients: [client])
        let reports = DirectoryReports(store: store, client: client)
        let license = String(decoding: reports.license(asOf: Day("2026-01-31")!), as: UTF8.self)
        #expect(license.contains(#""utilization_pct":0.0"#))
        let monthly = String(decoding: reports.licenseUtilization(startMonth: Day("2025-12-01")!, asOf: Day("2026-01-31")!), as: UTF8.self)
        #expect(monthly.contains(#""utilization_pct":0.0"#))
    }
}
