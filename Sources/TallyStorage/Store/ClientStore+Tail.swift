// MARK: Appends into a tail

extension ClientStore {
    /// Clients of at least this many usage rows take rows of their newest day into a tail
    /// (``UsageTail``) instead of being rebuilt: below it a rebuild takes a few milliseconds.
    public static let tailMinRows = 200_000

    /// Most rows a tail holds before the next append rebuilds the client with them (on the
    /// commit thread): 10% of the base's rows, and at least 100,000. A merge (``StoreWriter``)
    /// starts long before, at 1%.
    public static func tailMaxRows(baseRows: Int) -> Int { max(100_000, baseRows / 10) }

    /// This client with the rows in a tail, when each is on its base's last day `B`, on the
    /// tail's next day (``UsageTail/nextDay``: a new day's first rows, and with them the late
    /// rows of the day before; while the tail has none, one day after `B` within
    /// ``UsageTail/maxGap`` days) or held by it already (``holds(user:app:day:)``: a batch sent
    /// again, a pipeline's retry), the client has `minRows` rows or more and the tail stays
    /// under ``tailMaxRows(baseRows:)``; else `nil`. Held rows of other days change nothing, so
    /// they cost no rebuild.
    /// - Complexity: O(rows × the users' pairs + users), not the client's rows.
    func appendingToTail(users newUsers: [UInt32], apps newApps: [UInt32], days newDays: [Int32], minRows: Int, maxRows: Int? = nil,
                         masksStale: Bool = false) -> ClientStore? {
        guard let usage, !newUsers.isEmpty else { return nil }
        let base = usage.base ?? usage
        let tailRows = usage.tail?.rowCount ?? 0
        guard base.rowCount >= minRows, tailRows + newUsers.count <= maxRows ?? Self.tailMaxRows(baseRows: base.rowCount),
              let nextDay = tailFit(users: newUsers, apps: newApps, days: newDays)?.nextDay else { return nil }
        let last = base.newestDay.raw
        var users = newUsers, apps = newApps, next: [Bool] = []
        if !newDays.allSatisfy({ $0 == last }) {
            users = []
            apps = []
            for i in newDays.indices where newDays[i] == last || newDays[i] == nextDay {
                users.append(newUsers[i])
                apps.append(newApps[i])
                next.append(newDays[i] != last)
            }
            if users.isEmpty { return self }
        }
        guard let (tail, added, newPairUsers) = UsageTail.appending(to: usage.tail, base: base, client: self, users: users, apps: apps,
                                                                     next: next, nextDay: Int(nextDay - base.firstDay.raw), masksStale: masksStale)
        else { return self }
        return ClientStore(previous: self, base: base, tail: tail, added: added, newPairUsers: newPairUsers)
    }

    /// Whether rows of these days (days since 1970) all go into this client's tail by their
    /// day, or are held already: what ``appending(users:apps:days:tailMinRows:tailMaxRows:)``
    /// decides before its size checks.
    public func takesInTail(users: [UInt32], apps: [UInt32], days: [Int32]) -> Bool {
        tailFit(users: users, apps: apps, days: days) != nil
    }

    /// ``tailFit(days:holds:)`` of dense rows.
    public func tailFit(users: [UInt32], apps: [UInt32], days: [Int32]) -> (nextDay: Int32, named: Bool)? {
        let base = usage.map { $0.base ?? $0 }
        return tailFit(days: days) { base?.holds(user: users[$0], app: apps[$0], day: days[$0]) ?? false }
    }

    /// How rows of these days (days since 1970) go into this client's tail: `nil` when one does
    /// not — it is on neither the base's last day nor the tail's next day (the tail's, or while
    /// it has none the one later day the rows name, at most ``UsageTail/maxGap`` days on) and
    /// row `i` is not held already (`holds(i)`, asked only of such rows); else that next day (the
    /// day after the base's last when nothing names one) and whether a row is on it. Batches of
    /// one client applied together (a group) must agree on it (``StoreWriter``'s commit checks).
    public func tailFit(days: [Int32], holds: (Int) -> Bool) -> (nextDay: Int32, named: Bool)? {
        guard let usage else { return nil }
        let base = usage.base ?? usage
        let last = base.newestDay.raw
        var next: Int32? = usage.tail.flatMap { $0.hasNext ? $0.nextDayRaw : nil }
        var named = false
        for i in days.indices where days[i] != last {
            if days[i] == next {
                named = true
            } else if next == nil && days[i] > last && days[i] - last <= Int32(UsageTail.maxGap) {
                next = days[i]
                named = true
            } else if !holds(i) {
                return nil
            }
        }
        let n = next ?? last + 1
        return Int(n - base.firstDay.raw) < Int(UInt16.max) ? (n, named) : nil
    }

    /// Whether this client holds a usage row of dense user `user` and app `app` on `day` (days
    /// since 1970): one binary search of the user's pairs. Rows of the tail (the newest day) are
    /// not looked at: only the base's (``UsageIndex/holds(user:app:day:)``).
    public func holds(user: UInt32, app: UInt32, day: Int32) -> Bool {
        usage?.holds(user: user, app: app, day: day) ?? false
    }

    /// This client with rows of another version's tail (``rows(of:from:)``: the rows appended
    /// while a merge ran), as its own tail when they fit one, else rebuilt with them.
    public func appendingTailRows(_ rows: (users: [UInt32], apps: [UInt32], days: [Int32])) -> ClientStore {
        guard !rows.users.isEmpty else { return self }
        return appending(users: rows.users, apps: rows.apps, days: rows.days, tailMinRows: 0)
    }

    /// `tail`'s rows from the `from`-th on: dense users and apps, days since 1970.
    public static func rows(of tail: UsageTail, from: Int) -> (users: [UInt32], apps: [UInt32], days: [Int32]) {
        var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
        guard tail.rowCount > from else { return (us, ap, ds) }
        us.reserveCapacity(tail.rowCount - from)
        ap.reserveCapacity(tail.rowCount - from)
        ds.reserveCapacity(tail.rowCount - from)
        tail.forEachRow(from: from) { u, a, d, _ in
            us.append(u)
            ap.append(a)
            ds.append(d)
        }
        return (us, ap, ds)
    }
}
