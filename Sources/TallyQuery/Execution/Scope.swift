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
    /// The query's scratch sets, shared by its scans.
    let scratch: Scratch

    init(client: ClientStore, catalog: Catalog, filters f: Filters) {
        self.client = client
        index = client.usage
        scratch = Scratch(domain: client.users.count)
        let n = client.apps.count
        if f.approved == nil && !f.aiOnly && f.categoryIds == nil && f.vendorIds == nil && f.appIds == nil {
            // No app filter: every app, and the fixed classes as they are.
            appMask = client.allAppsMask
            apps = client.allApps
            splitClasses = [.all, .approved, .unapproved]
        } else {
            // Approval and AI filters test class bits (byte loops over the apps); the id lists,
            // rarer, test each app's category, vendor or id.
            let membership = client.appClassBits
            let approvedBit = UInt8(1) << UInt8(AppClass.approved.rawValue)
            var required: UInt8 = 0, forbidden: UInt8 = 0
            if let want = f.approved { if want { required |= approvedBit } else { forbidden |= approvedBit } }
            if f.aiOnly { required |= UInt8(1) << UInt8(AppClass.ai.rawValue) }
            var mask = [Bool](repeating: false, count: n)
            membership.withUnsafeBufferPointer { m in
                mask.withUnsafeMutableBufferPointer { out in
                    for i in 0..<n { out[i] = m[i] & required == required && m[i] & forbidden == 0 }
                }
            }
            if f.categoryIds != nil || f.vendorIds != nil || f.appIds != nil {
                let categories = f.categoryIds.map { Set($0.compactMap { catalog.categoryIndex[$0] }) }
                let vendors = f.vendorIds.map { Set($0.compactMap { catalog.vendorIndex[$0] }) }
                let appIds = f.appIds.map { Set($0.compactMap { client.appIndex[$0] }) }
                for (i, a) in client.apps.enumerated() where mask[i] {
                    if let cs = categories, !(a.category.map { cs.contains($0) } ?? false) { mask[i] = false }
                    if let vs = vendors, !(a.vendor.map { vs.contains($0) } ?? false) { mask[i] = false }
                    if let ids = appIds, !ids.contains(UInt32(i)) { mask[i] = false }
                }
            }
            appMask = mask
            var kept: [UInt32] = []
            kept.reserveCapacity(n)
            for i in 0..<n where mask[i] { kept.append(UInt32(i)) }
            apps = kept
            // A class matches a split when no app is in one and not the other: one pass per split
            // with a bit per class.
            let classes = AppClass.allCases
            let all = UInt8((1 << classes.count) - 1)
            splitClasses = Split.allCases.map { split in
                var mismatch: UInt8 = 0
                membership.withUnsafeBufferPointer { m in
                    mask.withUnsafeBufferPointer { keep in
                        for i in 0..<n { mismatch |= m[i] ^ (keep[i] && split.keeps(classBits: m[i]) ? all : 0) }
                    }
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

    /// The same test on an app's ``ClientStore/appClassBits`` (the approved class is its approval).
    @inline(__always) func keeps(classBits: UInt8) -> Bool {
        let approved = classBits & (1 << UInt8(AppClass.approved.rawValue)) != 0
        switch self {
        case .all: return true
        case .approved: return approved
        case .unapproved: return !approved
        }
    }
}

/// Two sets over a client's user domain for a query's scans, allocated on first use: a query
/// runs its scans one after another (primary period, comparison, buckets), each leaving the
/// sets cleared, so one pair serves them all instead of two allocations and zeroings per scan.
final class Scratch {
    let domain: Int
    private var pair: (UserSet, UserSet)?

    init(domain: Int) { self.domain = domain }

    var sets: (UserSet, UserSet) {
        if let pair { return pair }
        let p = (UserSet(domain: domain), UserSet(domain: domain))
        pair = p
        return p
    }
}
