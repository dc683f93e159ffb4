// MARK: New users, departments, memberships and apps beside the usage index

extension ClientStore {
    /// App entities with no row that the builder reserves beyond a large client's apps
    /// (``UsageIndex/appSlots``, ``ClientStoreBuilder/spareAppsMinRows``): apps added later take
    /// them without a rebuild, until the next merge or rebuild reserves as many again: the
    /// writer merges within 300 s, at 1% of the client's rows, and once half the slots are
    /// taken. Each costs its entity's share of the level offsets, sums, cardinalities and masks
    /// (docs/BENCHMARKS.md, "New apps in the tail").
    public static let spareApps = 16

    /// Apps this client version can add without a rebuild: the spare slots its index has left
    /// (0 without usage).
    public var appRoom: Int {
        guard let usage else { return 0 }
        return (usage.base ?? usage).appSlots - apps.count
    }

    /// Clients of at least this many usage rows get spare app slots (``ClientStoreBuilder``'s
    /// default; a writer whose tail threshold is lower, as in tests, gives its own). A smaller
    /// client is rebuilt for a new app, off the commit thread (21 ms once a client held about
    /// 303,000 rows, docs/BENCHMARKS.md), while the slots of every client from 200,000 rows cost
    /// scale M 0.03–0.04 bytes a row by accounting and 0.08–0.09 as RSS growth of a dump's load,
    /// where its margin to 5 bytes is a tenth of a byte (docs/BENCHMARKS.md, "New apps in the
    /// tail").
    public static let spareAppsMinRows = 1_000_000

    /// The ``ClientStoreBuilder/spareAppsMinRows`` a rebuild of this client uses: 0 when its index
    /// was built with spare app slots, else the default.
    var rebuildSpareAppsMinRows: Int {
        guard let usage else { return ClientStore.spareAppsMinRows }
        let base = usage.base ?? usage
        return base.appSlots > base.appCount ? 0 : ClientStore.spareAppsMinRows
    }

    /// Whether this client takes directory rows that add users, departments or memberships
    /// without a rebuild (``withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``): one
    /// with a usage index of `minRows` rows or more — the clients whose events go into a tail. A
    /// smaller client is rebuilt in milliseconds.
    public func takesOrganization(minRows: Int = ClientStore.tailMinRows) -> Bool {
        guard let usage else { return false }
        return (usage.base ?? usage).rowCount >= minRows
    }

    /// This client with `rows` upserted when they add users, departments or memberships
    /// (``DirectoryRows/Effect/organization``), and `events` (ids; a row naming a user or app
    /// the client does not hold, the new users included, is skipped and counted) appended as
    /// ``appending(users:apps:days:tailMinRows:tailMaxRows:masksStale:)`` appends them — into the
    /// tail when they fit it — in the same version. New users and departments are numbered after
    /// the client's (`users.count…`, `departments.count…`), in the order of their first row; the
    /// other rows change attributes only, as ``withAttributes(_:catalog:)``'s. The usage index,
    /// its base and its tail are kept: the version gets a tail (with no row when it had none)
    /// over the grown user domain, whose base pairs give the new users none
    /// (``PairIndex/init(padding:users:)``). When a held user joined a department or a department
    /// was added, the base's department masks no longer hold: the tail marks them stale
    /// (``UsageTail/masksStale``) and queries count departments without them until the next merge,
    /// which numbers users department by department again (every tail has one within
    /// ``StoreWriter``'s age limit). docs/APPENDS.md, "New users, departments and memberships in
    /// the tail".
    /// - Complexity: O(users + departments × member words + memberships + rows + events), not
    ///   the client's usage rows.
    public func withOrganization(_ rows: DirectoryRows, catalog: Catalog, events: [AppendBatch.Row] = [],
                                 tailMinRows: Int = ClientStore.tailMinRows, tailMaxRows: Int? = nil) -> (client: ClientStore, skipped: Int) {
        let (directory, stale) = addingOrganization(rows, catalog: catalog)
        let (us, ap, ds, skipped) = directory.dense(events)
        if !us.isEmpty {
            // Into a tail over the grown domain, or rebuilt; not when every row was held already.
            let next = directory.appending(users: us, apps: ap, days: ds, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows,
                                           masksStale: stale)
            if next !== directory { return (next, skipped) }  // a tail over its users, or rebuilt
        }
        return (directory.readingOrganization(masksStale: stale), skipped)
    }

    /// This client's directory with `rows`' users, departments and memberships added, beside its
    /// usage as it is: its per-user arrays do not cover new users yet and its masks may not hold,
    /// so it is not served as such — an append to its tail or ``readingOrganization(masksStale:)``
    /// makes the version that is. Also whether the base's department masks no longer hold.
    private func addingOrganization(_ rows: DirectoryRows, catalog: Catalog) -> (client: ClientStore, masksStale: Bool) {
        guard let usage else { preconditionFailure("a client with usage: takesOrganization()") }
        let (users, userIndex, departments, departmentIndex, apps, appIndex) = upserted(rows, catalog: catalog)
        precondition(apps.count - self.apps.count <= appRoom, "new apps take the index's spare slots")
        let n0 = self.users.count, n1 = users.count, d0 = self.departments.count
        // The memberships these rows add, by user (those held change nothing).
        var joined: [Int: [UInt32]] = [:]
        for m in rows.memberships {
            let u = Int(userIndex[m.user]!), d = departmentIndex[m.department]!
            if (u < n0 && self.departments(ofUser: UInt32(u)).contains(d)) || joined[u]?.contains(d) == true { continue }
            joined[u, default: []].append(d)
        }
        let stale = joined.keys.contains { $0 < n0 } || departments.count > d0
        let m = membership(adding: joined, users: n1, departments: departments.count)
        // No activity and no pair yet: -1 days, and last in the order by pair count among the
        // users with none, by id.
        var first = activity.firstOffset, last = activity.lastOffset
        first += repeatElement(-1, count: n1 - n0)
        last += repeatElement(-1, count: n1 - n0)
        var order = usersByPairCount
        var zeroFrom = order.count
        while zeroFrom > 0 && usage.pairs.pairCount(user: Int(order[zeroFrom - 1])) == 0 { zeroFrom -= 1 }
        let none = order[zeroFrom...] + (UInt32(n0)..<UInt32(n1))
        order.replaceSubrange(zeroFrom..., with: none.sorted { users[Int($0)].id < users[Int($1)].id })
        let client = ClientStore(sharing: self, users: users, userIndex: userIndex, departments: departments,
                                 departmentIndex: departmentIndex, apps: apps, appIndex: appIndex, membership: m, usage: usage,
                                 activity: UserActivity(firstOffset: first, lastOffset: last, sortedFirst: activity.sortedFirst),
                                 usersByPairCount: order)
        return (client, stale)
    }

    /// This client's memberships with `joined` (departments a user joins, by dense user; the
    /// users past the client's are new) over `n1` users and `departmentCount` departments: every
    /// user's list (a held user's grows in place), their department bits at the grown count's
    /// width (none past ``maxMaskDepartments``), each department's member bitmap made again over
    /// the grown domain, and, when the client keeps them, the member words a row wider with the
    /// new bits and rows, each new member outside their department's span (the words of the users
    /// numbered with it) in its `outside` list.
    /// - Complexity: O(users × mask words + memberships + departments × member words).
    private func membership(adding joined: [Int: [UInt32]], users n1: Int, departments departmentCount: Int) -> Membership {
        let n0 = users.count, d0 = departments.count
        var m = membership
        if joined.keys.contains(where: { $0 < n0 }) {
            var start: [UInt32] = [0], list: [UInt32] = []
            start.reserveCapacity(n1 + 1)
            list.reserveCapacity(userDepartments.count + joined.values.reduce(0) { $0 + $1.count })
            for u in 0..<n1 {
                var ds = u < n0 ? Array(departments(ofUser: UInt32(u))) : []
                if let more = joined[u] { ds = (ds + more).sorted() }
                list += ds
                start.append(UInt32(list.count))
            }
            m.userDepartmentStart = start
            m.userDepartments = list
        } else {
            m.userDepartmentStart.reserveCapacity(n1 + 1)
            for u in n0..<n1 {
                m.userDepartments += (joined[u] ?? []).sorted()
                m.userDepartmentStart.append(UInt32(m.userDepartments.count))
            }
        }
        if departmentCount > Self.maxMaskDepartments {
            m.userDepartmentMasks = nil
        } else if userDepartmentMasks != nil {
            let W = Self.departmentMaskWords(departments: departmentCount)
            var masks = [UInt64](repeating: 0, count: n1 * W)
            for u in 0..<n1 {
                for d in m.userDepartments[Int(m.userDepartmentStart[u])..<Int(m.userDepartmentStart[u + 1])] {
                    masks[u * W + Int(d) >> 6] |= 1 << UInt64(d & 63)
                }
            }
            m.userDepartmentMasks = masks
        }
        var newMembers = [[UInt32]](repeating: [], count: departmentCount)
        for (u, ds) in joined { for d in ds { newMembers[Int(d)].append(UInt32(u)) } }
        for d in newMembers.indices { newMembers[d].sort() }
        var builder = BitmapArenaBuilder(domain: n1)
        var values: [UInt32] = []
        m.members = (0..<departmentCount).map { d in
            values.removeAll(keepingCapacity: true)
            if d < d0 { membersArena.appendValues(of: members[d], to: &values) }
            if !newMembers[d].isEmpty {
                values += newMembers[d]
                values.sort()
            }
            return builder.append(sorted: values)
        }
        m.membersArena = builder.finish()
        if let old = memberWords {
            let words = max(1, (n1 + 63) >> 6), heap = HeapWords(count: departmentCount * words)
            m.memberSpans += repeatElement((words: 0..<0, outside: [UInt32]()), count: departmentCount - d0)
            for d in 0..<departmentCount {
                if d < d0 { for w in 0..<memberWordCount { heap.words[d * words + w] = old[d * memberWordCount + w] } }
                for u in newMembers[d] { heap.words[d * words + Int(u >> 6)] |= 1 << UInt64(u & 63) }
                let outside = newMembers[d].filter { !m.memberSpans[d].words.contains(Int($0 >> 6)) }
                if !outside.isEmpty { m.memberSpans[d].outside = (m.memberSpans[d].outside + outside).sorted() }
            }
            m.memberWords = heap.words
            m.memberWordCount = words
            m.heapWords = heap
        }
        return m
    }

    /// This client (a merged version) with the apps `later` (a later version of the same data)
    /// added after it began — the same apps first, then the new ones, numbered alike — in its
    /// spare slots; `nil` when they do not fit (``appRoom``). A merge that ran while apps were
    /// added takes them at its catch-up and its install instead of being dropped: under a stream
    /// of discovery it would otherwise never be installed.
    /// - Complexity: O(apps + users) — a tail of no row over the same users.
    public func addingApps(of later: ClientStore) -> ClientStore? {
        guard later.apps.count > apps.count else { return self }
        let more = later.apps[apps.count...]
        guard more.count <= appRoom else { return nil }
        var index = appIndex
        for (i, a) in more.enumerated() { index[a.id] = UInt32(apps.count + i) }
        let version = ClientStore(sharing: self, users: users, userIndex: userIndex, departments: departments,
                                  departmentIndex: departmentIndex, apps: apps + more, appIndex: index, membership: membership,
                                  usage: usage, activity: activity, usersByPairCount: usersByPairCount)
        return version.readingOrganization(masksStale: false)
    }

    /// This version (from ``addingOrganization(_:catalog:)``) with its usage read over its users
    /// and memberships: a tail of no new row, whose per-user arrays cover them.
    private func readingOrganization(masksStale: Bool) -> ClientStore {
        let usage = usage!, base = usage.base ?? usage
        guard let (tail, _, _) = UsageTail.appending(to: usage.tail, base: base, client: self, users: [], apps: [],
                                                     masksStale: masksStale) else {
            return self  // no user added and the tail's masks stale already: its per-user arrays cover them
        }
        return ClientStore(previous: self, base: base, tail: tail, added: [], newPairUsers: [])
    }
}
