import TallyStorage

/// A query's filters resolved against one client: the apps that remain, whether they form one
/// of the precomputed ``AppClass`` sets, and the users the department filter keeps.
struct Scope {
    let client: ClientStore
    let index: UsageIndex?
    /// Dense indexes of the apps the filters keep, ascending.
    let apps: [UInt32]
    let appMask: [Bool]
    /// The class whose apps are exactly `apps`, if any: its precomputed unions stand in for them.
    let appClass: AppClass?
    /// Users kept by the department filter; `nil` when there is none.
    let users: UserSet?
    /// For each ``Split``, the class whose apps are exactly the split of `apps`, if any.
    let splitClasses: [AppClass?]

    init(client: ClientStore, catalog: Catalog, filters f: Filters) {
        self.client = client
        index = client.usage
        let n = client.apps.count
        if f.approved == nil && !f.aiOnly && f.categoryIds == nil && f.vendorIds == nil && f.appIds == nil {
            // No app filter: every app, and the fixed classes as they are.
            appMask = [Bool](repeating: true, count: n)
            apps = (0..<UInt32(n)).map { $0 }
            splitClasses = [.all, .approved, .unapproved]
        } else {
            var mask = [Bool](repeating: true, count: n)
            let categories = f.categoryIds.map { Set($0.compactMap { catalog.categoryIndex[$0] }) }
            let vendors = f.vendorIds.map { Set($0.compactMap { catalog.vendorIndex[$0] }) }
            let appIds = f.appIds.map { Set($0.compactMap { client.appIndex[$0] }) }
            for (i, a) in client.apps.enumerated() {
                if let want = f.approved, a.isApproved != want { mask[i] = false }
                if f.aiOnly && !a.isAI { mask[i] = false }
                if let cs = categories, !(a.category.map { cs.contains($0) } ?? false) { mask[i] = false }
                if let vs = vendors, !(a.vendor.map { vs.contains($0) } ?? false) { mask[i] = false }
                if let ids = appIds, !ids.contains(UInt32(i)) { mask[i] = false }
            }
            appMask = mask
            apps = mask.indices.filter { mask[$0] }.map { UInt32($0) }
            // A class matches a split when no app is in one and not the other: one pass per split
            // with a bit per class.
            let classes = AppClass.allCases
            let membership = client.appClassBits
            let all = UInt8((1 << classes.count) - 1)
            splitClasses = Split.allCases.map { split in
                var mismatch: UInt8 = 0
                for i in 0..<n {
                    let kept = mask[i] && split.keeps(client.apps[i])
                    mismatch |= membership[i] ^ (kept ? all : 0)
                }
                return classes.first { mismatch & (1 << UInt8($0.rawValue)) == 0 }
            }
        }
        appClass = splitClasses[Split.all.rawValue]
        if let ds = f.departmentIds {
            let set = UserSet(domain: client.users.count)
            set.touchAll()
            for d in Set(ds.compactMap { client.departmentIndex[$0] }) {
                client.addMembers(of: Int(d), into: set)
            }
            users = set
        } else {
            users = nil
        }
    }
}

/// The scope's apps, or only its approved or unapproved ones.
enum Split: Int, CaseIterable {
    case all, approved, unapproved

    func keeps(_ a: AppInfo) -> Bool {
        switch self {
        case .all: return true
        case .approved: return a.isApproved
        case .unapproved: return !a.isApproved
        }
    }
}
