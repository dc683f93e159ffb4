import Testing
import TallyStorage

/// A department's members read from the client's dense copy (`memberWords`) are the same whatever
/// the domain of the set they are read into (docs/APPENDS.md §12.10: the stride was once the
/// scratch set's word count, right only when its domain was the client's user count).
@Suite struct MembersTests {
    @Test(arguments: [130, 200, 1_000, 70_000])
    func membersAreTheSameInAnyDomain(domain: Int) throws {
        var b = ClientStoreBuilder(info: ClientInfo(id: UUID128(high: 1, low: 7), name: "m", timezone: "UTC", licensedSeats: nil))
        for d in 0..<5 { _ = b.addDepartment(DepartmentInfo(id: UUID128(high: 4, low: UInt64(d)), name: "D\(d)", description: nil)) }
        var state: UInt64 = 12345
        var expected = [Set<UUID128>](repeating: [], count: 5)
        for u in 0..<130 {
            let id = UUID128(high: 2, low: UInt64(u))
            let added = b.addUser(UserInfo(id: id, email: "u\(u)", displayName: nil, isActive: true, role: nil, createdAt: nil))
            let dense = try #require(added)
            for _ in 0..<(u % 3) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let d = Int(state >> 33) % 5
                b.addMembership(user: dense, department: UInt32(d))
                expected[d].insert(id)
            }
        }
        let c = b.build()
        #expect(c.memberWords != nil && c.memberWordCount == 3)
        for d in 0..<5 {
            let dense = try #require(c.departmentIndex[UUID128(high: 4, low: UInt64(d))])
            let set = UserSet(domain: domain)
            c.addMembers(of: Int(dense), into: set)
            #expect(Set(set.sortedValues().map { c.users[Int($0)].id }) == expected[d], "department \(d), domain \(domain)")
        }
    }
}
