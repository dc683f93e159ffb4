// MARK: New users beside the usage index

extension ClientStore {
    /// Whether this client takes directory rows that add users without a rebuild
    /// (``withNewUsers(_:catalog:)``): one with a usage index of `minRows` rows or more — the
    /// clients whose events go into a tail. A smaller client is rebuilt in milliseconds.
    public func takesNewUsers(minRows: Int = ClientStore.tailMinRows) -> Bool {
        guard let usage else { return false }
        return (usage.base ?? usage).rowCount >= minRows
    }

    /// This client with `rows` upserted when they add users (``DirectoryRows/Effect/users``):
    /// the new users numbered after the client's (`users.count…`), with their memberships (of
    /// departments the client holds); the other rows change attributes only, as
    /// ``withAttributes(_:catalog:)``'s. The usage index, its base and its tail are kept: the
    /// version gets a tail (empty when it had none) over the grown user domain, whose base pairs
    /// give the new users none (``PairIndex/init(padding:users:)``), so that their events go into
    /// the tail as anyone's. Users are numbered department by department only at the next
    /// rebuild (a merge, which every tail has within ``StoreWriter``'s age limit): until then
    /// the new users are in their departments' ``memberSpans`` as users outside the span.
    /// docs/APPENDS.md, "New users in the tail".
    /// - Complexity: O(users + departments × member words + memberships + rows), not the
    ///   client's usage rows.
    /// With `events` (ids; a row naming a user or app the client does not hold, the new users
    /// included, is skipped and counted) appended as ``appending(users:apps:days:tailMinRows:tailMaxRows:)``
    /// appends them — into the tail when they fit it — in the same version: one version a batch.
    /// - Complexity: O(users + departments × member words + memberships + rows + events).
    public func withNewUsers(_ rows: DirectoryRows, catalog: Catalog, events: [AppendBatch.Row] = [],
                             tailMinRows: Int = ClientStore.tailMinRows, tailMaxRows: Int? = nil) -> (client: ClientStore, skipped: Int) {
        let directory = addingUsers(rows, catalog: catalog)
        var skipped = 0
        var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
        for e in events {
            guard let u = directory.userIndex[e.user], let a = directory.appIndex[e.app] else {
                skipped += 1
                continue
            }
            us.append(u)
            ap.append(a)
            ds.append(e.day.raw)
        }
        if !us.isEmpty {
            // Into a tail over the grown domain, or rebuilt; not when every row was held already.
            let next = directory.appending(users: us, apps: ap, days: ds, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows)
            if next !== directory, let u = next.usage, u.basePairs.userCount == next.users.count { return (next, skipped) }
        }
        return (directory.readingNewUsers(), skipped)
    }

    /// ``withNewUsers(_:catalog:events:tailMinRows:tailMaxRows:)`` without events.
    public func withNewUsers(_ rows: DirectoryRows, catalog: Catalog) -> ClientStore {
        withNewUsers(rows, catalog: catalog, events: []).client
    }

    /// This client's directory with `rows`' users added, beside its usage as it is: its per-user
    /// arrays do not cover the new users yet, so it is not served as such — an append to its tail
    /// or ``readingNewUsers()`` makes the version that is.
    private func addingUsers(_ rows: DirectoryRows, catalog: Catalog) -> ClientStore {
        guard let usage else { preconditionFailure("a client with usage: takesNewUsers()") }
        let (users, userIndex, departments, apps) = upserted(rows, catalog: catalog)
        let n0 = self.users.count, n1 = users.count
        // Memberships: only the new users' are new (``DirectoryRows/effect(on:catalog:)``).
        var joined = [[UInt32]](repeating: [], count: n1 - n0)
        for m in rows.memberships {
            let u = Int(userIndex[m.user]!), d = departmentIndex[m.department]!
            if u >= n0 && !joined[u - n0].contains(d) { joined[u - n0].append(d) }
        }
        var m = membership
        m.userDepartmentStart.reserveCapacity(n1 + 1)
        for k in joined.indices {
            joined[k].sort()
            m.userDepartments += joined[k]
            m.userDepartmentStart.append(UInt32(m.userDepartments.count))
        }
        let W = departmentMaskWords
        if m.userDepartmentMasks != nil {
            for ds in joined {
                var mask = [UInt64](repeating: 0, count: W)
                for d in ds { mask[Int(d) >> 6] |= 1 << UInt64(d & 63) }
                m.userDepartmentMasks! += mask
            }
        }
        // Each department's members, over the grown domain: the arena made again (O(memberships)).
        var newMembers = [[UInt32]](repeating: [], count: departments.count)
        for k in joined.indices { for d in joined[k] { newMembers[Int(d)].append(UInt32(n0 + k)) } }
        var builder = BitmapArenaBuilder(domain: n1)
        var values: [UInt32] = []
        m.members = departments.indices.map { d in
            values.removeAll(keepingCapacity: true)
            membersArena.appendValues(of: members[d], to: &values)
            values += newMembers[d]  // after every held user's index: still ascending
            return builder.append(sorted: values)
        }
        m.membersArena = builder.finish()
        // The dense copy, when the client keeps one: the same rows, wider, with the new bits; each
        // new member outside their department's span (a few words of the users numbered with it).
        if let old = memberWords {
            let words = max(1, (n1 + 63) >> 6), heap = HeapWords(count: departments.count * words)
            for d in departments.indices {
                for w in 0..<memberWordCount { heap.words[d * words + w] = old[d * memberWordCount + w] }
                for u in newMembers[d] {
                    heap.words[d * words + Int(u >> 6)] |= 1 << UInt64(u & 63)
                    if !m.memberSpans[d].words.contains(Int(u >> 6)) { m.memberSpans[d].outside.append(u) }
                }
            }
            m.memberWords = heap.words
            m.memberWordCount = words
            m.heapWords = heap
        }
        // No activity and no pair yet: -1 days, and last in the order by pair count among the
        // users with none, by id.
        var first = activity.firstOffset, last = activity.lastOffset
        first += repeatElement(-1, count: n1 - n0)
        last += repeatElement(-1, count: n1 - n0)
        func pairCount(_ u: UInt32) -> Int { usage.pairs.pairCount(user: Int(u)) }
        var order = usersByPairCount
        var zeroFrom = order.count
        while zeroFrom > 0 && pairCount(order[zeroFrom - 1]) == 0 { zeroFrom -= 1 }
        let added = (UInt32(n0)..<UInt32(n1)).sorted { users[Int($0)].id < users[Int($1)].id }
        var merged: [UInt32] = []
        merged.reserveCapacity(order.count - zeroFrom + added.count)
        var i = zeroFrom, j = 0
        while i < order.count || j < added.count {
            if j == added.count || (i < order.count && users[Int(order[i])].id < users[Int(added[j])].id) {
                merged.append(order[i])
                i += 1
            } else {
                merged.append(added[j])
                j += 1
            }
        }
        order.replaceSubrange(zeroFrom..., with: merged)
        return ClientStore(sharing: self, users: users, userIndex: userIndex, departments: departments, apps: apps,
                           membership: m, usage: usage,
                           activity: UserActivity(firstOffset: first, lastOffset: last, sortedFirst: activity.sortedFirst),
                           usersByPairCount: order)
    }

    /// This version (from ``addingUsers(_:catalog:)``) with its usage read over its users: a
    /// tail of no new row, whose per-user arrays cover them.
    private func readingNewUsers() -> ClientStore {
        let usage = usage!, base = usage.base ?? usage
        guard let (tail, _, _) = UsageTail.appending(to: usage.tail, base: base, client: self, users: [], apps: []) else {
            preconditionFailure("users were added: a tail over them")
        }
        return ClientStore(previous: self, base: base, tail: tail, added: [], newPairUsers: [])
    }
}
