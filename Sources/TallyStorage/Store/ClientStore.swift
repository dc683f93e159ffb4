import Synchronization

/// A client organisation's own row.
public struct ClientInfo: Sendable, Hashable {
    public var id: UUID128
    public var name: String
    public var timezone: String
    public var licensedSeats: Int?
    public init(id: UUID128, name: String, timezone: String, licensedSeats: Int?) {
        self.id = id
        self.name = name
        self.timezone = timezone
        self.licensedSeats = licensedSeats
    }
}

/// A client's instance of a catalog application (`apps` table), denormalised for queries.
public struct AppInfo: Sendable, Hashable {
    public var id: UUID128
    public var catalogIndex: Int32
    public var isApproved: Bool
    public var isFavorite: Bool
    /// Catalog category index, or `nil` when the catalog application has none.
    public var category: Int32?
    public var vendor: Int32?
    public var isAI: Bool
    public init(id: UUID128, catalogIndex: Int32, isApproved: Bool, isFavorite: Bool,
                category: Int32?, vendor: Int32?, isAI: Bool) {
        self.id = id
        self.catalogIndex = catalogIndex
        self.isApproved = isApproved
        self.isFavorite = isFavorite
        self.category = category
        self.vendor = vendor
        self.isAI = isAI
    }
}

public struct UserInfo: Sendable, Hashable {
    public var id: UUID128
    public var email: String
    public var displayName: String?
    public var isActive: Bool
    public var role: String?
    /// As loaded (ISO 8601 or PostgreSQL text form), or `nil`.
    public var createdAt: String?
    public init(id: UUID128, email: String, displayName: String?, isActive: Bool, role: String?, createdAt: String?) {
        self.id = id
        self.email = email
        self.displayName = displayName
        self.isActive = isActive
        self.role = role
        self.createdAt = createdAt
    }
}

public struct DepartmentInfo: Sendable, Hashable {
    public var id: UUID128
    public var name: String
    public var description: String?
    public init(id: UUID128, name: String, description: String?) {
        self.id = id
        self.name = name
        self.description = description
    }
}

/// Everything Tally holds for one client: dictionaries that map ids to dense 32-bit indexes,
/// department membership, and the usage index. Immutable once built; a new version is built
/// beside it and swapped in.
/// (`@unchecked` for `memberWords`, raw storage written once in `init`.)
public final class ClientStore: @unchecked Sendable {
    public let info: ClientInfo
    /// Dense user index → user. User bitmaps are over `0..<users.count`.
    public let users: [UserInfo]
    public let userIndex: [UUID128: UInt32]
    /// Dense app index → app.
    public let apps: [AppInfo]
    public let appIndex: [UUID128: UInt32]
    public let departments: [DepartmentInfo]
    public let departmentIndex: [UUID128: UInt32]
    /// Departments of user `u`: `userDepartments[userDepartmentStart[u]..<userDepartmentStart[u+1]]`, ascending.
    public let userDepartmentStart: [UInt32]
    public let userDepartments: [UInt32]
    /// With at most ``maxMaskDepartments`` departments, each user's departments as one bit per
    /// department index, ``departmentMaskWords`` words a user (the hot loop of the department
    /// dimension ORs these); `nil` otherwise.
    public let userDepartmentMasks: [UInt64]?
    /// Words of a department mask: one per 64 departments (at least one).
    public var departmentMaskWords: Int { Self.departmentMaskWords(departments: departments.count) }
    /// Past this many departments no masks are kept (a mask would take more than 8 words).
    public static let maxMaskDepartments = 512

    public static func departmentMaskWords(departments: Int) -> Int { max(1, (departments + 63) / 64) }

    /// Whether every mask of `masks` (`words` words each) sets only bits of departments
    /// `0..<departments`: the readers index per-department counters by bit.
    static func masksInRange<M: RandomAccessCollection<UInt64>>(_ masks: [M], words: Int, departments: Int) -> Bool where M.Index == Int {
        guard departments <= words * 64 else { return false }
        let spare = departments - (words - 1) * 64  // bits in use of the last word
        let outside: UInt64 = spare >= 64 ? 0 : ~((UInt64(1) << UInt64(spare)) - 1)
        for m in masks {
            var i = words - 1
            while i < m.count {
                if m[i] & outside != 0 { return false }
                i += words
            }
        }
        return true
    }
    /// Members of each department, as bitmaps in ``membersArena``.
    public let members: [BitmapRef]
    public let membersArena: BitmapArena
    /// `nil` when the client has no usage rows.
    public let usage: UsageIndex?
    /// Users by their number of (user, app) pairs — apps over the whole history — most first,
    /// ties by id ascending: the visiting order of "top users by apps" (a user's apps in any range
    /// are at most their pairs, and among equal bounds the id decides).
    public let usersByPairCount: [UInt32]
    /// Each department's members as a dense bitset over the user domain (`wordCount` words a
    /// department, one after the other), kept when that costs at most a byte per usage row (or
    /// 512 KiB): per-department queries then read them instead of building them.
    public let memberWords: UnsafeMutableBufferPointer<UInt64>?
    /// Words a department takes in ``memberWords``: the client's user domain, whatever the domain
    /// of the set they are read into.
    public let memberWordCount: Int
    /// With ``memberWords``: per department, the words that hold the members it comes first
    /// for (their smallest department), and its other members, outside those words. Users are
    /// numbered department by department (``ClientStoreBuilder/build()``), so the span is a few
    /// words and the others are the few users of several departments: counting a set's members
    /// of the department reads the span and tests the others, not every word of the domain.
    public let memberSpans: [(words: Range<Int>, outside: [UInt32])]
    /// Per app, bit `c.rawValue` set when it belongs to ``AppClass`` `c`.
    public let appClassBits: [UInt8]
    /// Every app's index, ascending, and an all-true mask: the scope of a query without an app
    /// filter, kept once rather than built per query.
    public let allApps: [UInt32]
    public let allAppsMask: [Bool]
    /// Each user's first and last active day (derived from the pair index).
    public let activity: UserActivity
    /// What the query layer derives from this client on first use (the directory's orders).
    public let derived = DerivedSlot()
    /// ``byteParts``, once asked.
    private let bytePartsMade = Mutex<[Int]?>(nil)
    /// What the query layer derives from this client's base usage index, without its tail: the
    /// slot of the client version built with that index, shared by every version with a tail on
    /// it (``owner``). A value derived from the pairs is made once per base and read with each
    /// version's tail beside it (``PairView``), instead of made again per append.
    public var baseDerived: DerivedSlot { (owner ?? self).derived }
    /// The region this client's raw buffers are in (``StoreMemory``), or `nil` for the heap.
    let memory: StoreMemory?
    /// The client whose directory buffers (``memberWords``) this one reads and keeps alive, and
    /// whose usage index is this one's base: set for a client whose usage has a tail
    /// (``appending(users:apps:days:tailMinRows:)``) and for one with other attributes of its
    /// directory (``withAttributes(_:catalog:)``).
    let owner: ClientStore?
    /// What holds ``memberWords`` when they were made for a version with users added
    /// (``withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``) rather than read from its owner's region.
    let heapWords: HeapWords?

    init(info: ClientInfo, users: [UserInfo], userIndex: [UUID128: UInt32], apps: [AppInfo],
         appIndex: [UUID128: UInt32], departments: [DepartmentInfo], departmentIndex: [UUID128: UInt32],
         userDepartmentStart: [UInt32], userDepartments: [UInt32], userDepartmentMasks: [UInt64]?,
         members: [BitmapRef],
         membersArena: BitmapArena, usage: UsageIndex?) {
        let memory = StoreMemory.current
        self.memory = memory
        owner = nil
        heapWords = nil
        self.info = info
        // At their exact size: the loaders append to these, and an array grown by doubling
        // keeps up to twice its elements' room. On scale L the users' arrays held 3.3 MB for
        // about 1.7 MB of users (heaptrack of `tally load`; docs/BENCHMARKS.md, "Segments in
        // planes, deflated").
        self.users = exactSize(users)
        self.userIndex = userIndex
        self.apps = exactSize(apps)
        self.appIndex = appIndex
        self.departments = exactSize(departments)
        self.departmentIndex = departmentIndex
        self.userDepartmentStart = exactSize(userDepartmentStart)
        self.userDepartments = exactSize(userDepartments)
        self.userDepartmentMasks = userDepartmentMasks.map(exactSize)
        self.members = exactSize(members)
        self.membersArena = membersArena
        self.usage = usage
        appClassBits = apps.map(Self.classBits)
        allApps = (0..<UInt32(apps.count)).map { $0 }
        allAppsMask = [Bool](repeating: true, count: apps.count)
        let words = max(1, (users.count + 63) >> 6)
        memberWordCount = words
        if !departments.isEmpty && departments.count * words <= max(65_536, (usage?.rowCount ?? 0) / 8) {
            let m = StoreMemory.allocate(UInt64.self, capacity: departments.count * words, in: memory)
            m.initialize(repeating: 0)
            for d in departments.indices {
                membersArena.forEach(members[d]) { u in m[d * words + Int(u >> 6)] |= 1 << UInt64(u & 63) }
            }
            memberWords = m
            var first = [Range<Int>?](repeating: nil, count: departments.count)
            for u in users.indices where userDepartmentStart[u] < userDepartmentStart[u + 1] {
                let d = Int(userDepartments[Int(userDepartmentStart[u])]), w = u >> 6
                first[d] = first[d].map { min($0.lowerBound, w)..<max($0.upperBound, w + 1) } ?? w..<(w + 1)
            }
            memberSpans = departments.indices.map { d in
                let span = first[d] ?? 0..<0
                var outside: [UInt32] = []
                membersArena.forEach(members[d]) { u in if !span.contains(Int(u >> 6)) { outside.append(u) } }
                return (span, outside)
            }
        } else {
            memberWords = nil
            memberSpans = []
        }
        if let pairs = usage?.basePairs {
            var order = (0..<UInt32(users.count)).map { $0 }
            order.sort { a, b in
                let ca = pairs.pairCount(user: Int(a)), cb = pairs.pairCount(user: Int(b))
                return ca != cb ? ca > cb : users[Int(a)].id < users[Int(b)].id
            }
            usersByPairCount = order
            activity = UserActivity(pairs: pairs, userCount: users.count)
        } else {
            usersByPairCount = []
            activity = UserActivity()
        }
    }

    /// `previous` with `tail` (its usage's base with the tail's rows): the directory and what
    /// was derived from it shared, each user's first and last days and the order by pair count
    /// corrected for the rows the tail added after `previous`'s (`added`: `user << 32 | app`,
    /// `newPairUsers`: users with a new pair among them).
    /// - Complexity: O(users + added rows), not the client's rows.
    convenience init(previous: ClientStore, base: UsageIndex, tail: UsageTail, added: [UInt64], newPairUsers: [UInt32]) {
        precondition((previous.owner ?? previous).usage === base, "a tail's client version owns its base")
        // First and last days: the tail's days are the last of all (`B`, `D`), so an added
        // row's day is its user's last day unless they have a later one, and the first of those
        // who had none (or only `D`, for a row of `B`).
        var first = previous.activity.firstOffset, last = previous.activity.lastOffset
        var sortedFirst = previous.activity.sortedFirst
        for r in added {
            let row = UsageTail.row(r), u = Int(row.user), d = Int32(row.next ? tail.nextDay : tail.day)
            last[u] = max(last[u], d)
            if first[u] < 0 || first[u] > d {
                // The first days from `B` on are the sorted list's last; `D` sorts after `B`.
                if first[u] >= 0, let i = sortedFirst.lastIndex(of: first[u]) { sortedFirst.remove(at: i) }
                first[u] = d
                var i = sortedFirst.count
                while i > 0 && sortedFirst[i - 1] > d { i -= 1 }
                sortedFirst.insert(d, at: i)
            }
        }
        // Users whose pair count grew leave their place and come back in order.
        var order = previous.usersByPairCount
        if !newPairUsers.isEmpty {
            // The writer's counts are this version's: it was just made from them.
            let counts = tail.state.pairCounts, users = previous.users, rank = tail.state.idRanks(users)
            var moved = [Bool](repeating: false, count: users.count)
            for u in newPairUsers { moved[Int(u)] = true }
            func before(_ a: UInt32, _ b: UInt32) -> Bool {
                let ca = counts[Int(a)], cb = counts[Int(b)]
                if ca != cb { return ca > cb }
                return Int(a) < rank.count && Int(b) < rank.count ? rank[Int(a)] < rank[Int(b)] : users[Int(a)].id < users[Int(b)].id
            }
            let back = Set(newPairUsers).sorted(by: before)
            order = []
            order.reserveCapacity(previous.usersByPairCount.count)
            var i = 0
            for u in previous.usersByPairCount where !moved[Int(u)] {
                // Only a user ahead of `u` by count (or by id at the same count) goes first.
                while i < back.count && counts[Int(back[i])] >= counts[Int(u)] && before(back[i], u) {
                    order.append(back[i])
                    i += 1
                }
                order.append(u)
            }
            order.append(contentsOf: back[i...])
        }
        self.init(sharing: previous, users: previous.users, departments: previous.departments, apps: previous.apps,
                  usage: UsageIndex(base: base, tail: tail),
                  activity: UserActivity(firstOffset: first, lastOffset: last, sortedFirst: sortedFirst), usersByPairCount: order)
        derived.inherit(from: previous.derived)
    }

    /// `previous` with other attributes of its users, departments and apps (same ids, dense
    /// indexes, memberships, approvals and catalog applications): its usage index (with its
    /// tail), activity and orders shared. Values derived from the directory are not inherited.
    /// - Complexity: O(1) beyond the arrays given.
    convenience init(attributesOf previous: ClientStore, users: [UserInfo], departments: [DepartmentInfo], apps: [AppInfo]) {
        precondition(users.count == previous.users.count && departments.count == previous.departments.count
                     && apps.count == previous.apps.count, "attributes only: no entity added")
        self.init(sharing: previous, users: users, departments: departments, apps: apps, usage: previous.usage,
                  activity: previous.activity, usersByPairCount: previous.usersByPairCount)
    }

    /// A version of `previous`'s client with the given directory arrays (same ids and dense
    /// indexes), usage, activity and order, and `previous`'s memberships, classes and buffers:
    /// owned by the client that owns its base (``owner``), whose memberships' buffers it reads and
    /// whose slot keeps the values derived from that base (``baseDerived``).
    private convenience init(sharing previous: ClientStore, users: [UserInfo], departments: [DepartmentInfo], apps: [AppInfo],
                             usage: UsageIndex?, activity: UserActivity, usersByPairCount: [UInt32]) {
        self.init(sharing: previous, users: users, userIndex: previous.userIndex, departments: departments,
                  departmentIndex: previous.departmentIndex, apps: apps,
                  membership: previous.membership, usage: usage, activity: activity, usersByPairCount: usersByPairCount)
    }

    /// Who belongs to which department, and the structures made of it.
    struct Membership {
        var userDepartmentStart: [UInt32]
        var userDepartments: [UInt32]
        var userDepartmentMasks: [UInt64]?
        var members: [BitmapRef]
        var membersArena: BitmapArena
        var memberWords: UnsafeMutableBufferPointer<UInt64>?
        var memberWordCount: Int
        var memberSpans: [(words: Range<Int>, outside: [UInt32])]
        /// The heap words ``memberWords`` are, for a version with users added (not its owner's).
        var heapWords: HeapWords?
    }

    /// Member words made for a version with users added (``withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``), on the
    /// heap, freed when the last version reading them is.
    final class HeapWords: @unchecked Sendable {
        let words: UnsafeMutableBufferPointer<UInt64>
        init(count: Int) {
            words = .allocate(capacity: max(1, count))
            words.initialize(repeating: 0)
        }
        deinit { words.deallocate() }
    }

    var membership: Membership {
        Membership(userDepartmentStart: userDepartmentStart, userDepartments: userDepartments,
                   userDepartmentMasks: userDepartmentMasks, members: members, membersArena: membersArena,
                   memberWords: memberWords, memberWordCount: memberWordCount, memberSpans: memberSpans, heapWords: heapWords)
    }

    /// A version of `previous`'s client (the same info, apps' classes, usage's base and
    /// buffers) with the given directory and membership: owned by the client that owns its base.
    /// `appIndex`: with apps added (``withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``,
    /// numbered after `previous`'s), the grown index; their classes are made for the grown list.
    init(sharing previous: ClientStore, users: [UserInfo], userIndex: [UUID128: UInt32], departments: [DepartmentInfo],
         departmentIndex: [UUID128: UInt32], apps: [AppInfo], appIndex: [UUID128: UInt32]? = nil, membership m: Membership,
         usage: UsageIndex?, activity: UserActivity, usersByPairCount: [UInt32]) {
        let root = previous.owner ?? previous
        owner = root
        memory = root.memory
        info = previous.info
        self.users = users
        self.userIndex = userIndex
        self.apps = apps
        self.appIndex = appIndex ?? previous.appIndex
        precondition(self.appIndex.count == apps.count, "every app indexed")
        self.departments = departments
        self.departmentIndex = departmentIndex
        userDepartmentStart = m.userDepartmentStart
        userDepartments = m.userDepartments
        userDepartmentMasks = m.userDepartmentMasks
        members = m.members
        membersArena = m.membersArena
        memberWords = m.memberWords
        memberWordCount = m.memberWordCount
        memberSpans = m.memberSpans
        heapWords = m.heapWords
        if apps.count == previous.apps.count {
            appClassBits = previous.appClassBits
            allApps = previous.allApps
            allAppsMask = previous.allAppsMask
        } else {
            appClassBits = previous.appClassBits + apps[previous.apps.count...].map(Self.classBits)
            allApps = (0..<UInt32(apps.count)).map { $0 }
            allAppsMask = [Bool](repeating: true, count: apps.count)
        }
        self.usage = usage
        self.activity = activity
        self.usersByPairCount = usersByPairCount
    }

    /// App `a`'s fixed classes, bit ``AppClass/rawValue`` each (``appClassBits``).
    static func classBits(_ a: AppInfo) -> UInt8 {
        AppClass.allCases.reduce(UInt8(0)) { $0 | ($1.contains(a) ? 1 << UInt8($1.rawValue) : 0) }
    }

    deinit {
        if owner == nil, heapWords == nil, let w = memberWords { release(w, in: memory) }
    }

    /// ORs the members of department `d` into `set`: from the dense copy when the client keeps
    /// one, else from the membership arena.
    public func addMembers(of d: Int, into set: UserSet) {
        if let w = memberWords {
            set.formUnion(words: UnsafePointer(w.baseAddress! + d * memberWordCount), count: memberWordCount)
        } else {
            membersArena.formUnion(members[d], into: set)
        }
    }

    /// This client with more usage rows (dense user and app indexes; duplicates count once),
    /// rebuilt from its own rows (decoded from its segments) plus the new ones.
    /// - Complexity: O(rows) — a full build of the client.
    /// `tailMaxRows`: the most rows a tail holds (``tailMaxRows(baseRows:)`` unless given).
    /// `masksStale`: this version's memberships no longer match its base's department masks
    /// (``UsageTail/masksStale``).
    public func appending(users newUsers: [UInt32], apps newApps: [UInt32], days newDays: [Int32],
                          tailMinRows: Int = ClientStore.tailMinRows, tailMaxRows: Int? = nil, masksStale: Bool = false) -> ClientStore {
        if let next = appendingToTail(users: newUsers, apps: newApps, days: newDays, minRows: tailMinRows, maxRows: tailMaxRows,
                                      masksStale: masksStale) { return next }
        return rebuilt(users: newUsers, apps: newApps, days: newDays)
    }

    /// This client rebuilt whole (its tail's rows in its base): what a merge makes, and what a
    /// snapshot stores. With `keepingNextDay`, a tail's rows of the day after its base's last
    /// day are left out of the rebuild and go into the rebuilt client's tail: the base then
    /// still ends on the day it ended on, so that late rows of that day still go into a tail
    /// (docs/APPENDS.md, "Two days in the tail").
    /// - Parameter extrasMinRows: the builder's (``ClientStoreBuilder/extrasMinRows``), if not its default.
    public func merged(extrasMinRows: Int? = nil, keepingNextDay: Bool = false) -> ClientStore {
        guard let tail = usage?.tail else { return self }
        guard keepingNextDay && tail.hasNext && tail.nextRows < tail.rowCount else {
            return rebuilt(users: [], apps: [], days: [], extrasMinRows: extrasMinRows)
        }
        let next = tail.nextDayRaw
        let whole = rebuilt(users: [], apps: [], days: [], extrasMinRows: extrasMinRows, withoutNextDay: true)
        var nu: [UInt32] = [], na: [UInt32] = []
        tail.forEachRow { u, a, _, onNext in
            if onNext {
                nu.append(u)
                na.append(a)
            }
        }
        nu = whole.renumbering(nu, from: self)
        return whole.appending(users: nu, apps: na, days: [Int32](repeating: next, count: nu.count), tailMinRows: 0,
                               tailMaxRows: max(nu.count, Self.tailMaxRows(baseRows: whole.usage?.rowCount ?? 0)))
    }

    /// Dense users of `other` (a version of this client, holding the same users or fewer) as
    /// this client numbers them: the same indexes unless users were added to `other` since its
    /// base was built — a rebuild numbers them with their departments (``withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``).
    /// - Complexity: O(users) to compare the numberings, O(users + rows) when they differ.
    public func renumbering(_ dense: [UInt32], from other: ClientStore) -> [UInt32] {
        if other.users.count == users.count && zip(other.users, users).allSatisfy({ $0.id == $1.id }) { return dense }
        let map = other.users.map { userIndex[$0.id]! }
        return dense.map { map[Int($0)] }
    }

    /// The rows `version`'s tail holds from the `from`-th on (``rows(of:from:)``), with its users
    /// as this client numbers them (``renumbering(_:from:)``): the rows appended to the served
    /// version while this one, its merge, was built.
    public func tailRows(of version: ClientStore, from: Int) -> (users: [UInt32], apps: [UInt32], days: [Int32]) {
        guard let tail = version.usage?.tail else { return ([], [], []) }
        var rows = Self.rows(of: tail, from: from)
        rows.users = renumbering(rows.users, from: version)
        return rows
    }

    /// Whether `other` (a later version of this client's data) holds the same users, departments
    /// and memberships: each is only ever added, so their counts tell. (Apps added meanwhile a
    /// merged version takes: ``addingApps(of:)``.)
    public func sameOrganization(as other: ClientStore) -> Bool {
        users.count == other.users.count && departments.count == other.departments.count
            && userDepartments.count == other.userDepartments.count
    }

    /// - Parameter withoutNextDay: leave out the tail's rows of its next day.
    func rebuilt(users newUsers: [UInt32], apps newApps: [UInt32], days newDays: [Int32], extrasMinRows: Int? = nil,
                 withoutNextDay: Bool = false) -> ClientStore {
        var b = ClientStoreBuilder(info: info)
        if let extrasMinRows { b.extrasMinRows = extrasMinRows }
        b.spareAppsMinRows = rebuildSpareAppsMinRows
        for u in users { _ = b.addUser(u) }
        for a in apps { _ = b.addApp(a) }
        for d in departments { _ = b.addDepartment(d) }
        for u in 0..<users.count {
            for d in self.departments(ofUser: UInt32(u)) { b.addMembership(user: UInt32(u), department: d) }
        }
        let (us, ap, ds) = storedRows(withNextDay: !withoutNextDay)
        b.appendUsage(users: us, apps: ap, days: ds)
        b.appendUsage(users: newUsers, apps: newApps, days: newDays)
        let next = b.build()
        // Same directory, same numbering (the builder numbers users department by department and
        // keeps this order): what was derived from the directory alone still holds.
        if next.users == users && next.apps == apps && next.departments == departments
            && next.userDepartmentStart == userDepartmentStart && next.userDepartments == userDepartments {
            next.derived.inherit(from: derived)
        }
        return next
    }

    /// Every usage row this client holds, read from its pair index and its tail: dense user and
    /// app indexes and days (since 1970-01-01), for a rebuild. Without `withNextDay`, the tail's
    /// rows of its next day are left out (a merge that keeps them in a tail).
    public func storedRows(withNextDay: Bool = true) -> (users: [UInt32], apps: [UInt32], days: [Int32]) {
        guard let usage else { return ([], [], []) }
        var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
        let total = usage.rowCount  // the tail's rows included
        us.reserveCapacity(total)
        ap.reserveCapacity(total)
        ds.reserveCapacity(total)
        let first = usage.firstDay.raw
        usage.basePairs.forEachRow { u, a, d in
            us.append(u)
            ap.append(a)
            ds.append(first + Int32(d))
        }
        if let tail = usage.tail {
            tail.forEachRow { u, a, d, onNext in
                guard withNextDay || !onNext else { return }
                us.append(u)
                ap.append(a)
                ds.append(d)
            }
        }
        return (us, ap, ds)
    }

    /// Departments of a user, ascending by dense index.
    public func departments(ofUser u: UInt32) -> ArraySlice<UInt32> {
        userDepartments[Int(userDepartmentStart[Int(u)])..<Int(userDepartmentStart[Int(u) + 1])]
    }

    /// Bytes held by this client's dictionaries, membership and usage index (an estimate for
    /// strings and hash tables; exact for arenas and arrays).
    public var byteCount: Int { byteParts.reduce(0, +) }

    /// ``byteCount`` by structure, in the order of ``MemoryBreakdown/parts``. Made once (the
    /// client is immutable): it reads every user's strings, and the writer asks it of each
    /// client version a cursor keeps at every publish (`CursorPins`: 2.5% of the commit thread's
    /// `perf` samples in a trickle of 1,000-row batches, 2026-12-04).
    public var byteParts: [Int] {
        if let made = bytePartsMade.withLock({ $0 }) { return made }
        let made = countedByteParts
        bytePartsMade.withLock { $0 = made }
        return made
    }

    private var countedByteParts: [Int] {
        var users = users.count * 24  // userIndex entry
        for u in self.users { users += 16 + 48 + u.email.utf8.count + (u.displayName?.utf8.count ?? 0) }
        let apps = apps.count * (MemoryLayout<AppInfo>.stride + 24)
        let departments = departments.count * 96 + userDepartmentStart.count * 4 + userDepartments.count * 4
            + members.count * 8 + (userDepartmentMasks?.count ?? 0) * 8 + membersArena.byteCount + (memberWords?.count ?? 0) * 8
        let activity = usersByPairCount.count * 4 + activity.byteCount
        let u = usage?.byteParts ?? (unionBitmaps: 0, unionOffsets: 0, unionMasks: 0, daySums: 0, pairs: 0, ranges: 0)
        return [users, apps, departments, activity, u.unionBitmaps, u.unionOffsets, u.unionMasks, u.daySums, u.pairs, u.ranges]
    }
}

/// One version of everything served: the catalog and every client. Immutable.
public final class Store: Sendable {
    public let catalog: Catalog
    public let clients: [ClientStore]
    public let clientIndex: [UUID128: Int]
    /// The last write-ahead-log record whose rows this store holds (0: none).
    public let walSequence: UInt64

    public init(catalog: Catalog, clients: [ClientStore], walSequence: UInt64 = 0) {
        self.catalog = catalog
        self.clients = clients
        self.walSequence = walSequence
        var d = [UUID128: Int]()
        for (i, c) in clients.enumerated() { d[c.info.id] = i }
        clientIndex = d
    }

    public func client(_ id: UUID128) -> ClientStore? {
        clientIndex[id].map { clients[$0] }
    }

    /// The same store with some clients replaced (by id) and a new log position.
    public func replacing(_ replaced: [ClientStore], walSequence: UInt64) -> Store {
        var list = clients
        for c in replaced { if let i = clientIndex[c.info.id] { list[i] = c } }
        return Store(catalog: catalog, clients: list, walSequence: walSequence)
    }

    /// Rows held in tails (``UsageTail``) over all clients, in the largest one, the clients with
    /// one, and when the oldest of them began (seconds since 1970), for the freshness figures.
    /// - Complexity: O(clients).
    public var tails: (rows: Int, largest: Int, clients: Int, oldestSince: Double?) {
        var rows = 0, largest = 0, count = 0
        var oldest: Double?
        for c in clients {
            guard let t = c.usage?.tail else { continue }
            rows += t.rowCount
            largest = max(largest, t.rowCount)
            count += 1
            oldest = min(oldest ?? t.since, t.since)
        }
        return (rows, largest, count, oldest)
    }

    /// Distinct usage rows held, over all clients.
    public var usageRowCount: Int { clients.reduce(0) { $0 + ($1.usage?.rowCount ?? 0) } }
    public var byteCount: Int { clients.reduce(0) { $0 + $1.byteCount } }
}

/// `a` in storage of its own size: itself when it has no spare room, else a copy.
func exactSize<T>(_ a: [T]) -> [T] {
    a.capacity > a.count ? a.withUnsafeBufferPointer { Array($0) } : a
}
