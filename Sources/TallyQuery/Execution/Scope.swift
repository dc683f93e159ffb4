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
    /// The same users as an ascending list, and their number of (user, app) pairs.
    let members: [UInt32]
    let memberPairs: Int
    /// Whether per-app and per-category figures read the filter's users user-major (one pass
    /// over their pairs) rather than intersecting every app's bitmaps with `users`. Measured
    /// with `tally synth --filter department --filter-departments N --department-scan members|bitmaps`
    /// on the 20,000-user client (p50 of A, 366 days with comparison): 0.25 against 2.13 ms for
    /// one department of 24, 3.997 against 6.131 ms for all 24, so always when there is a pair
    /// index. A trend decides by its size: ``trendReadsMembers(buckets:_:_:)``.
    let readsMembers: Bool
    let departmentScan: DepartmentScan
    /// The filter's departments as bits of the index's department masks (its
    /// ``UsageIndex/departmentMaskWords`` words), when it keeps them: an app is active for the
    /// filter's users in a block exactly when its mask there shares a bit.
    let departmentBits: [UInt64]?
    /// For each ``Split``, index entities whose union is exactly the users of that split of
    /// `apps`, if any: the split's class, or (for the whole scope) the classes of the
    /// categories whose apps the filters keep, all of each and no others (a category filter).
    let splitEntities: [[Int]?]
    /// The query's scratch sets, shared by its scans.
    let scratch: Scratch

    init(client: ClientStore, catalog: Catalog, filters f: Filters, departmentScan: DepartmentScan = .cheaper) {
        self.client = client
        self.departmentScan = departmentScan
        index = client.usage
        scratch = Scratch(domain: client.users.count)
        let n = client.apps.count
        // For each ``Split``, the class whose apps are exactly the split of `apps`, if any.
        let splitClasses: [AppClass?]
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
        if let index {
            var entities = splitClasses.map { $0.map { [index.entity($0)] } }
            if appClass == nil { entities[Split.all.rawValue] = Self.categoryEntities(client, apps, index) }
            splitEntities = entities
        } else {
            splitEntities = [nil, nil, nil]
        }
        if let ds = f.departmentIds {
            let set = UserSet(domain: client.users.count)
            set.touchAll()
            let kept = Set(ds.compactMap { client.departmentIndex[$0] })
            for d in kept { client.addMembers(of: Int(d), into: set) }
            if let index, index.hasDepartmentMasks {
                var bits = [UInt64](repeating: 0, count: index.departmentMaskWords)
                for d in kept { bits[Int(d) >> 6] |= 1 << UInt64(d & 63) }
                departmentBits = bits
            } else {
                departmentBits = nil
            }
            users = set
            var list: [UInt32] = []
            var pairCount = 0
            if let pairs = index?.pairs {
                set.forEach { u in
                    list.append(u)
                    pairCount &+= pairs.pairCount(user: Int(u))
                }
            }
            members = list
            memberPairs = pairCount
            readsMembers = index != nil && departmentScan != .bitmaps
        } else {
            users = nil
            members = []
            memberPairs = 0
            readsMembers = false
            departmentBits = nil
        }
    }

    /// The class entities of the categories `apps` are all the apps of (every app of each),
    /// when the index keeps a class for each; `nil` otherwise.
    /// - Complexity: O(client's apps).
    static func categoryEntities(_ client: ClientStore, _ apps: [UInt32], _ index: UsageIndex) -> [Int]? {
        guard !apps.isEmpty else { return nil }
        let all = client.apps
        // Per category (or none): apps kept, apps in all. Few categories: a small linear map.
        var kept: [(category: Int32?, entity: Int, count: Int)] = []
        for a in apps {
            let c = all[Int(a)].category
            if let i = kept.firstIndex(where: { $0.category == c }) {
                kept[i].count += 1
            } else {
                guard let e = index.entity(category: c), kept.count < 16 else { return nil }
                kept.append((c, e, 1))
            }
        }
        var total = 0
        for a in all where kept.contains(where: { $0.category == a.category }) { total += 1 }
        return total == apps.count ? kept.map(\.entity) : nil
    }

    /// Whether a trend of `buckets` buckets (both periods) over day offsets `lo…hi` reads the
    /// filter's users user-major (``MemberActivity``, made once) rather than per bucket from the
    /// bitmaps (a class union intersected with the filter, the apps from the department masks).
    /// The estimate, in nanoseconds, fits `tally synth --filter department --filter-departments N
    /// --department-scan members|bitmaps` on the 20,000-user client (1 and 4 departments of 24,
    /// 30 and 366 days with comparison): about 9 + 1.1 × span words per member pair made, about
    /// 6 µs per bucket read from the bitmaps. One department over a year: 0.48 against 1.25 ms.
    func trendReadsMembers(buckets: Int, _ lo: Int, _ hi: Int) -> Bool {
        guard readsMembers else { return false }
        if departmentScan == .members { return true }
        let words = (hi >> 6) - (lo >> 6) + 1
        return memberPairs * (90 + 11 * words) < 60_000 * buckets
    }
}

/// How a department filter is read: user-major over its members' pairs, app-major by
/// intersecting every app's bitmaps with its members, or whichever ``Scope`` estimates cheaper
/// (the default; the other two are for comparing them, in tests and `tally synth`).
public enum DepartmentScan: String, Sendable, CaseIterable {
    case cheaper, members, bitmaps
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
    /// The department filter's members' activity, once made (``makeActivity(_:_:_:)``).
    private var members: MemberActivity?

    /// Makes the members' activity over day offsets `lo…hi`, for the scans that follow (a
    /// trend, before its buckets).
    func makeActivity(_ scope: Scope, _ lo: Int, _ hi: Int) {
        members = MemberActivity(scope: scope, lo, hi)
    }

    /// The members' activity made before, if it covers day offsets `lo…hi`.
    func activity(covering lo: Int, _ hi: Int) -> MemberActivity? {
        if let m = members, m.covers(lo, hi) { return m }
        return nil
    }

    /// Day offsets of the query's other range (a list's comparison period), set before its
    /// first: a members' pass over one counts the other too when that costs no more reads
    /// (``PeriodScan/byAppOfMembers(only:)``).
    var companion: (lo: Int, hi: Int)?
    /// Per-app counts of the members' pairs over ``companion``, made by the first range's pass.
    private var companionKept: (lo: Int, hi: Int, users: [Int32], days: [Int])?

    func keepCompanion(_ lo: Int, _ hi: Int, users: [Int32], days: [Int]) {
        companionKept = (lo, hi, users, days)
    }

    /// The counts over day offsets `lo…hi` made beside another range's pass, once (given up).
    func companionCounts(_ lo: Int, _ hi: Int) -> (users: [Int32], days: [Int])? {
        guard let k = companionKept, k.lo == lo, k.hi == hi else { return nil }
        companionKept = nil
        return (k.users, k.days)
    }

    init(domain: Int) { self.domain = domain }

    var sets: (UserSet, UserSet) {
        if let pair { return pair }
        let p = (UserSet(domain: domain), UserSet(domain: domain))
        pair = p
        return p
    }
}
