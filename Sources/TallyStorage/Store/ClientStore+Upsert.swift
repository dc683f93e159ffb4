/// Directory rows arriving with appends (SPEC §6): upserts by id, applied by rebuilding the
/// clients they touch — the same cost model as appended events today (docs/APPENDS.md, stage 2).
extension ClientStore {
    /// This client with `directory` upserted (users, departments and apps replaced by id or
    /// added; memberships added) and `events` added, rebuilt from its own rows plus the new
    /// ones. Every app's category, vendor and AI flag are taken from `catalog` (which may have
    /// changed). Rows naming an id that neither this client nor the rows before them hold are
    /// skipped and counted (a replay onto data that lacks them).
    /// - Complexity: O(rows) — a full build of the client.
    public func upserting(_ directory: DirectoryRows, catalog: Catalog, events: [AppendBatch.Row]) -> (client: ClientStore, skipped: Int) {
        var skipped = 0
        var b = ClientStoreBuilder(info: info)
        b.spareAppsMinRows = rebuildSpareAppsMinRows
        // Users: the client's, each replaced by its latest upsert, then the new ones in order.
        var userUpserts: [UUID128: UserInfo] = [:], newUsers: [UUID128] = []
        for u in directory.users {
            if userUpserts.updateValue(u, forKey: u.id) == nil && userIndex[u.id] == nil { newUsers.append(u.id) }
        }
        var userAt: [UUID128: UInt32] = [:]
        for u in users { userAt[u.id] = b.addUser(userUpserts[u.id] ?? u) }
        for id in newUsers { userAt[id] = b.addUser(userUpserts[id]!) }
        // Departments, the same way.
        var departmentUpserts: [UUID128: DepartmentInfo] = [:], newDepartments: [UUID128] = []
        for d in directory.departments {
            if departmentUpserts.updateValue(d, forKey: d.id) == nil && departmentIndex[d.id] == nil { newDepartments.append(d.id) }
        }
        var departmentAt: [UUID128: UInt32] = [:]
        for d in departments { departmentAt[d.id] = b.addDepartment(departmentUpserts[d.id] ?? d) }
        for id in newDepartments { departmentAt[id] = b.addDepartment(departmentUpserts[id]!) }
        // Apps: classes follow the catalog application (category, vendor, AI).
        func app(_ id: UUID128, catalogIndex: Int32, approved: Bool, favorite: Bool) -> AppInfo {
            Self.app(id, catalogIndex: catalogIndex, approved: approved, favorite: favorite, catalog: catalog)
        }
        var appUpserts: [UUID128: AppInfo] = [:], newApps: [UUID128] = []
        for a in directory.apps {
            guard let ci = catalog.applicationIndex[a.catalogApp] else {
                skipped += 1
                continue
            }
            if appUpserts.updateValue(app(a.id, catalogIndex: ci, approved: a.isApproved, favorite: a.isFavorite), forKey: a.id) == nil
                && appIndex[a.id] == nil { newApps.append(a.id) }
        }
        var appAt: [UUID128: UInt32] = [:]
        for a in apps {
            appAt[a.id] = b.addApp(appUpserts[a.id] ?? app(a.id, catalogIndex: a.catalogIndex, approved: a.isApproved, favorite: a.isFavorite))
        }
        for id in newApps { appAt[id] = b.addApp(appUpserts[id]!) }
        // Memberships: the client's, then the added ones (the builder drops repeats).
        for u in 0..<users.count {
            for d in self.departments(ofUser: UInt32(u)) { b.addMembership(user: UInt32(u), department: d) }
        }
        for m in directory.memberships {
            guard let u = userAt[m.user], let d = departmentAt[m.department] else {
                skipped += 1
                continue
            }
            b.addMembership(user: u, department: d)
        }
        // Usage: the client's rows (users and apps keep their builder indexes: added in order),
        // then the new ones.
        let stored = storedRows()
        b.appendUsage(users: stored.users, apps: stored.apps, days: stored.days)
        let (us, ap, ds, missing) = Self.dense(events, user: { userAt[$0] }, app: { appAt[$0] })
        b.appendUsage(users: us, apps: ap, days: ds)
        return (b.build(), skipped + missing)
    }
}

extension ClientStore {
    /// An app of catalog application `catalogIndex`: its category, vendor and AI flag are the
    /// catalog's.
    static func app(_ id: UUID128, catalogIndex: Int32, approved: Bool, favorite: Bool, catalog: Catalog) -> AppInfo {
        let c = catalog.applications[Int(catalogIndex)]
        return AppInfo(id: id, catalogIndex: catalogIndex, isApproved: approved, isFavorite: favorite, category: c.category,
                       vendor: c.vendor, isAI: c.category.map { catalog.categories[Int($0)].isAI } ?? false)
    }

    /// `events` as this client's dense user and app indexes and days (since 1970), for
    /// ``appending(users:apps:days:tailMinRows:tailMaxRows:masksStale:)``; a row naming a user or
    /// app the client does not hold is skipped and counted.
    public func dense(_ events: [AppendBatch.Row]) -> (users: [UInt32], apps: [UInt32], days: [Int32], skipped: Int) {
        Self.dense(events, user: { userIndex[$0] }, app: { appIndex[$0] })
    }

    /// `batch`'s events as ``dense(_:)-([AppendBatch.Row])`` makes them — read from
    /// ``AppendBatch/dense`` when they were numbered by a version of this client's numbering
    /// (``numbering``), without looking an id up again.
    public func dense(_ batch: AppendBatch) -> (users: [UInt32], apps: [UInt32], days: [Int32], skipped: Int) {
        if let d = batch.dense, d.numbering === numbering { return (d.users, d.apps, d.days, 0) }
        return dense(batch.rows)
    }

    /// The version whose ids this one numbers alike: its owner (``owner``), or itself. Versions
    /// of one owner — a tail's, a directory change's, apps added — only ever add ids, numbered
    /// after the others (``upserted(_:catalog:)``, ``addingApps(of:)``), so an id's dense index
    /// in one of them is its index in every later one; a merge, a rebuild or a reload makes a
    /// new owner, which may number them otherwise.
    public var numbering: ClientStore { owner ?? self }

    /// `events` with each user and app numbered by `user` and `app` (`nil`: skipped and counted).
    static func dense(_ events: [AppendBatch.Row], user: (UUID128) -> UInt32?, app: (UUID128) -> UInt32?)
        -> (users: [UInt32], apps: [UInt32], days: [Int32], skipped: Int) {
        var us: [UInt32] = [], ap: [UInt32] = [], ds: [Int32] = []
        var skipped = 0
        us.reserveCapacity(events.count)
        ap.reserveCapacity(events.count)
        ds.reserveCapacity(events.count)
        for e in events {
            guard let u = user(e.user), let a = app(e.app) else {
                skipped += 1
                continue
            }
            us.append(u)
            ap.append(a)
            ds.append(e.day.raw)
        }
        return (us, ap, ds, skipped)
    }
}

/// A batch's events as dense indexes — users, apps, days since 1970 — made while it was parsed
/// against a client version, with that version's ``ClientStore/numbering``: the commit thread
/// takes them as they are when the client it applies the batch to has the same numbering
/// (``ClientStore/dense(_:)-(AppendBatch)``), instead of looking every id up again. Its lookups
/// in the refusal check and in the dense rows were 13% of its `perf` samples in a trickle of
/// 1,000 new rows a batch on the 47.6 M-row client (2026-12-04).
public final class DenseEvents: Sendable {
    public let numbering: ClientStore
    public let users: [UInt32], apps: [UInt32], days: [Int32]

    public init(numbering: ClientStore, users: [UInt32], apps: [UInt32], days: [Int32]) {
        precondition(users.count == apps.count && apps.count == days.count, "one user, app and day a row")
        self.numbering = numbering
        self.users = users
        self.apps = apps
        self.days = days
    }
}

extension DirectoryRows {
    /// What directory rows do to a client (``effect(on:catalog:)``).
    public enum Effect: Sendable {
        /// They leave its directory as it is.
        case nothing
        /// They change only what the usage index does not read: users' email, name, activity
        /// flag, role and creation time; departments' name and description; apps' favourite flag.
        /// The client keeps its usage index (``ClientStore/withAttributes(_:catalog:)``).
        case attributes
        /// They add users, departments, memberships (a new employee, a new team, a move) or apps
        /// (at most the index's spare slots: ``ClientStore/appRoom``), and change at most
        /// attributes otherwise: a client whose events go into a tail keeps its usage index
        /// (``ClientStore/withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)``;
        /// docs/APPENDS.md, "New users, departments and memberships in the tail", "New apps in
        /// the tail").
        case organization
        /// They add more apps than the index has room for, change an app's catalog application
        /// or approval (its classes), or the catalog: the client is rebuilt.
        case more
    }

    /// Whether these rows, upserted in order into `client`, leave its directory as it is: each
    /// user, department and app's last row equals what the client holds (an app by its catalog
    /// application in `catalog`, approval and favourite), and each membership is held. Catalog
    /// rows change the catalog: never nothing. A pipeline that sends its directory rows again
    /// with every batch then costs no rebuild: the events alone are applied (docs/APPENDS.md,
    /// "Which batches").
    /// - Complexity: O(rows × log) — the rows and a look-up each, not the client.
    public func changeNothing(in client: ClientStore, catalog: Catalog) -> Bool {
        if case .nothing = effect(on: client, catalog: catalog) { return true }
        return false
    }

    /// What these rows, upserted in order into `client`, change (``Effect``): judged on each
    /// id's last row.
    /// - Complexity: O(rows × log) — the rows and a look-up each, not the client.
    public func effect(on client: ClientStore, catalog: Catalog) -> Effect {
        guard catalogApps.isEmpty else { return .more }
        var changed = false
        var lastUser: [UUID128: UserInfo] = [:]
        for u in users { lastUser[u.id] = u }
        var added: Set<UUID128> = []
        for (id, u) in lastUser {
            guard let i = client.userIndex[id] else {
                added.insert(id)
                continue
            }
            if client.users[Int(i)] != u { changed = true }
        }
        var lastDepartment: [UUID128: DepartmentInfo] = [:]
        for d in departments { lastDepartment[d.id] = d }
        var organization = !added.isEmpty
        for (id, d) in lastDepartment {
            guard let i = client.departmentIndex[id] else {
                organization = true
                continue
            }
            if client.departments[Int(i)] != d { changed = true }
        }
        var lastApp: [UUID128: App] = [:]
        for a in apps { lastApp[a.id] = a }
        var newApps = 0
        for (id, a) in lastApp {
            guard let ci = catalog.applicationIndex[a.catalogApp] else { return .more }
            guard let i = client.appIndex[id] else {
                // A new app takes one of the index's spare slots, while it has one.
                newApps += 1
                guard newApps <= client.appRoom else { return .more }
                organization = true
                continue
            }
            let held = client.apps[Int(i)]
            guard held.catalogIndex == ci, held.isApproved == a.isApproved else { return .more }
            if held.isFavorite != a.isFavorite { changed = true }
        }
        for m in memberships {
            // Each side held or added by these rows (the checks before the commit refuse others).
            let u = client.userIndex[m.user], d = client.departmentIndex[m.department]
            guard u != nil || added.contains(m.user), d != nil || lastDepartment[m.department] != nil else { return .more }
            if let u, let d, client.departments(ofUser: u).contains(d) { continue }
            organization = true
        }
        return organization ? .organization : changed ? .attributes : .nothing
    }
}

extension ClientStore {
    /// This client with `rows` upserted, when they change only attributes the usage index does
    /// not read (``DirectoryRows/Effect/attributes``): the same usage index (and tail), dense
    /// indexes, memberships and everything derived from usage; the users, departments and apps
    /// with each id's last row. Values derived from the directory (the users' orders by name and
    /// email, …) are derived again on first use. An HR system's renames and deactivations then
    /// cost O(directory), not a rebuild of the client.
    /// - Complexity: O(users + departments + apps + rows).
    public func withAttributes(_ rows: DirectoryRows, catalog: Catalog) -> ClientStore {
        let d = upserted(rows, catalog: catalog)
        precondition(d.users.count == users.count && d.departments.count == departments.count && d.apps.count == apps.count,
                     "added: withOrganization(_:catalog:events:tailMinRows:tailMaxRows:)")
        return ClientStore(attributesOf: self, users: d.users, departments: d.departments, apps: d.apps)
    }

    /// This client's users, departments and apps with `rows` upserted, when they change no held
    /// app's classes: held ids replaced by their last row (an app's favourite flag only), and
    /// users, departments and apps the client does not hold numbered after its own, in the order
    /// of their first row (an app with its catalog application's category, vendor and AI flag).
    func upserted(_ rows: DirectoryRows, catalog: Catalog)
        -> (users: [UserInfo], userIndex: [UUID128: UInt32], departments: [DepartmentInfo], departmentIndex: [UUID128: UInt32],
            apps: [AppInfo], appIndex: [UUID128: UInt32]) {
        var users = self.users, userIndex = self.userIndex, departments = self.departments, apps = self.apps
        var departmentIndex = self.departmentIndex, appIndex = self.appIndex
        /// Each row in place of the held one of its id, or numbered after the others.
        func upsert<T>(_ rows: [T], into list: inout [T], _ index: inout [UUID128: UInt32], id: (T) -> UUID128) {
            for row in rows {
                if let i = index[id(row)] {
                    list[Int(i)] = row
                } else {
                    index[id(row)] = UInt32(list.count)
                    list.append(row)
                }
            }
        }
        upsert(rows.users, into: &users, &userIndex) { $0.id }
        upsert(rows.departments, into: &departments, &departmentIndex) { $0.id }
        // Held apps change their favourite flag only; new ones (and their later rows) are upserted whole.
        let held = self.apps.count
        upsert(rows.apps.filter { (appIndex[$0.id].map(Int.init) ?? held) >= held }.map {
            Self.app($0.id, catalogIndex: catalog.applicationIndex[$0.catalogApp]!, approved: $0.isApproved, favorite: $0.isFavorite,
                     catalog: catalog)
        }, into: &apps, &appIndex) { $0.id }
        // Each held app's last row counts (the rows are upserts in order): a flip and its flip
        // back in one group of batches, or in the log replayed at a start, change nothing. Checking
        // every row stopped the server there (found by CrashTests with approval flips).
        var last: [UUID128: Int] = [:]
        for (k, a) in rows.apps.enumerated() { last[a.id] = k }
        for (k, a) in rows.apps.enumerated() where last[a.id] == k {
            guard let i = appIndex[a.id].map(Int.init), i < held else { continue }
            precondition(apps[i].catalogIndex == catalog.applicationIndex[a.catalogApp] && apps[i].isApproved == a.isApproved,
                         "an app's catalog application or approval changes its classes: a rebuild")
            apps[i].isFavorite = a.isFavorite
        }
        return (users, userIndex, departments, departmentIndex, apps, appIndex)
    }

    /// This client with `other`'s users, departments and apps (matched by id), when they differ
    /// from this client's only in attributes: a merge that ran while they changed is installed
    /// with them (``withAttributes(_:catalog:)``).
    /// - Complexity: O(users + departments + apps).
    public func takingAttributes(of other: ClientStore) -> ClientStore {
        let users = self.users.map { other.users[Int(other.userIndex[$0.id]!)] }
        let departments = self.departments.map { other.departments[Int(other.departmentIndex[$0.id]!)] }
        let apps = self.apps.map { a in
            let b = other.apps[Int(other.appIndex[a.id]!)]
            precondition(a.catalogIndex == b.catalogIndex && a.isApproved == b.isApproved, "attributes only")
            return b
        }
        return ClientStore(attributesOf: self, users: users, departments: departments, apps: apps)
    }
}

extension Catalog {
    /// This catalog with `rows` upserted by id: a changed application keeps its index, a new one
    /// is added at the end (so every client's catalog indexes stay valid). Rows naming a category
    /// or vendor the catalog does not hold are skipped. Also returns the indexes of the
    /// applications that changed (the clients with an app of one are rebuilt: its category or AI
    /// flag may have moved).
    public func upserting(_ rows: [DirectoryRows.CatalogApp]) -> (catalog: Catalog, changed: Set<Int32>, skipped: Int) {
        var applications = self.applications, index = applicationIndex
        var changed: Set<Int32> = [], skipped = 0
        for r in rows {
            var category: Int32?, vendor: Int32?
            if let c = r.category {
                guard let i = categoryIndex[c] else { skipped += 1; continue }
                category = i
            }
            if let v = r.vendor {
                guard let i = vendorIndex[v] else { skipped += 1; continue }
                vendor = i
            }
            let info = CatalogAppInfo(id: r.id, canonicalName: r.canonicalName, logo: r.logo, type: r.type, category: category, vendor: vendor)
            if let i = index[r.id] {
                if applications[Int(i)] != info {
                    applications[Int(i)] = info
                    if i < Int32(self.applications.count) { changed.insert(i) }
                }
            } else {
                index[r.id] = Int32(applications.count)
                applications.append(info)
            }
        }
        return (Catalog(categories: categories, vendors: vendors, applications: applications), changed, skipped)
    }
}

extension Store {
    /// This store with `replaced` clients (by id) and another catalog.
    public func replacing(_ replaced: [ClientStore], catalog: Catalog, walSequence: UInt64) -> Store {
        var list = clients
        for c in replaced { if let i = clientIndex[c.info.id] { list[i] = c } }
        return Store(catalog: catalog, clients: list, walSequence: walSequence)
    }
}
