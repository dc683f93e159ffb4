import Foundation
import TallyStorage

/// An append's body (SPEC §6): `{"events": [{"user_id", "application_id", "activity_date"}, …]}`
/// or the bare array, parsed and checked against the served data.
public enum AppendBody {
    /// Largest batch accepted.
    public static let maxEvents = 10_000

    /// The directory tables a batch may carry beside `events`, in the order they are applied.
    public static let directoryTables = ["catalog_applications", "departments", "users", "apps", "user_departments"]

    /// Parses and checks a batch for `client` against `store` (the served data). The body is
    /// `{"events": […], "users": […], "apps": […], "catalog_applications": […], "departments":
    /// […], "user_departments": […]}` (any of them; at least one row) or a bare array of events.
    /// Directory rows have the dump's columns (SPEC §1; `client_id` may be left out, and must be
    /// this client's if given) and are upserts by id; events and memberships may name users,
    /// apps and departments of the same batch. Every event names a user and an app and a date
    /// from 2000-01-01 to the day after the newest of today (UTC) and the client's data.
    /// Changing a catalog application that exists needs `mayChangeCatalog` (a token that may
    /// read every client: the catalog is shared by all of them). A refused batch lists every
    /// refused row, by table and index; nothing of it is applied.
    /// What ``StoreWriter/submit(client:body:mayChangeCatalog:completion:)`` does first; public
    /// for tools that check a batch before sending it, and for the append-body fuzzer.
    public static func parse(client: UUID128, body: [UInt8], store: Store?, mayChangeCatalog: Bool = false) throws(WriteError) -> AppendBatch {
        guard let store else { throw .notReady }
        guard let c = store.client(client) else { throw .clientNotFound }
        if let batch = parseScanned(client: client, c: c, body: body, store: store, mayChangeCatalog: mayChangeCatalog) {
            return batch
        }
        return try parseJSON(client: client, c: c, body: body, store: store, mayChangeCatalog: mayChangeCatalog)
    }

    /// ``parse(client:body:store:mayChangeCatalog:)`` through `JSONSerialization`, every row
    /// checked and every refusal named.
    static func parseJSON(client: UUID128, c: ClientStore, body: [UInt8], store: Store, mayChangeCatalog: Bool) throws(WriteError) -> AppendBatch {
        let json = try? JSONSerialization.jsonObject(with: Data(body))
        let shape = "the body must be {\"events\": [{\"user_id\", \"application_id\", \"activity_date\"}, …]}, with any of "
            + directoryTables.joined(separator: ", ") + " beside events, or a bare array of events"
        var tables: [String: [Any]] = [:]
        if let events = json as? [Any] {
            tables["events"] = events
        } else if let object = json as? [String: Any] {
            for (key, value) in object {
                guard key == "events" || directoryTables.contains(key) else {
                    throw .invalid(key, "\(key) is not a table of an append (events, \(directoryTables.joined(separator: ", ")))")
                }
                guard let rows = value as? [Any] else { throw .invalid(key, "\(key) must be an array of rows") }
                tables[key] = rows
            }
        } else {
            throw .invalid("events", shape)
        }
        let total = tables.values.reduce(0) { $0 + $1.count }
        let onlyEvents = tables.count == 1 && tables["events"] != nil
        guard total > 0 else {
            throw onlyEvents ? .invalid("events", "events must not be empty") : .invalid("body", "the batch holds no rows")
        }
        let eventCount = tables["events"]?.count ?? 0
        guard eventCount <= maxEvents else {
            throw .invalid("events", "at most \(maxEvents) events per batch; this one has \(eventCount)")
        }
        guard total - eventCount <= maxEvents else {
            throw .invalid("body", "at most \(maxEvents) directory rows per batch; this one has \(total - eventCount)")
        }
        var v = Validator(client: client, c: c, store: store, mayChangeCatalog: mayChangeCatalog)
        let directory = v.directory(tables)
        var rows: [AppendBatch.Row] = []
        for (i, row) in (tables["events"] ?? []).enumerated() {
            if let r = v.event(i, row) { rows.append(r) }
        }
        if !v.refused.isEmpty {
            let what = onlyEvents ? "events" : "rows"
            let refusedRows = Set(v.refused.map { "\($0.table)\u{0}\($0.index)" }).count
            throw WriteError(.invalidRows, field: tables.count == 1 ? tables.keys.first! : "body",
                             "\(refusedRows) of \(total) \(what) are refused; nothing was applied", rows: v.refused)
        }
        return AppendBatch(client: client, rows: rows, directory: directory)
    }

    /// Checks rows one by one against the served data and the rows of the batch before them,
    /// collecting what it refuses.
    struct Validator {
        let client: UUID128
        let c: ClientStore
        let store: Store
        let mayChangeCatalog: Bool
        var refused: [RefusedRow] = []
        // Ids the batch adds or upserts, table by table.
        var catalogApps: Set<UUID128> = [], departments: Set<UUID128> = [], users: Set<UUID128> = [], apps: Set<UUID128> = []
        let today = Day(raw: Int32(Date().timeIntervalSince1970 / 86_400))
        let earliest = Day("2000-01-01")!
        var latest: Day { max(today, c.usage?.newestDay ?? today).adding(1) }

        init(client: UUID128, c: ClientStore, store: Store, mayChangeCatalog: Bool) {
            self.client = client
            self.c = c
            self.store = store
            self.mayChangeCatalog = mayChangeCatalog
        }

        /// The directory tables' rows checked in the order they are applied (catalog
        /// applications, departments, users, apps, memberships), before any event.
        mutating func directory(_ tables: [String: [Any]]) -> DirectoryRows {
            var directory = DirectoryRows()
            for (i, row) in (tables["catalog_applications"] ?? []).enumerated() {
                if let r = catalogApp(i, row) { directory.catalogApps.append(r) }
            }
            for (i, row) in (tables["departments"] ?? []).enumerated() {
                if let r = department(i, row) { directory.departments.append(r) }
            }
            for (i, row) in (tables["users"] ?? []).enumerated() {
                if let r = user(i, row) { directory.users.append(r) }
            }
            for (i, row) in (tables["apps"] ?? []).enumerated() {
                if let r = app(i, row) { directory.apps.append(r) }
            }
            for (i, row) in (tables["user_departments"] ?? []).enumerated() {
                if let r = membership(i, row) { directory.memberships.append(r) }
            }
            return directory
        }

        /// One row's fields, read with its refusals recorded.
        struct Row {
            let table: String, index: Int
            let o: [String: Any]
            var refused: [RefusedRow] = []

            mutating func refuse(_ field: String, _ message: String) {
                refused.append(RefusedRow(table: table, index: index, field: field, message: message))
            }
            func present(_ field: String) -> Any? {
                guard let v = o[field], !(v is NSNull) else { return nil }
                return v
            }
            mutating func uuid(_ field: String) -> UUID128? {
                guard let v = present(field) else { refuse(field, "\(field) is required (a UUID)"); return nil }
                guard let s = v as? String, let u = UUID128(s) else {
                    refuse(field, "\(field) must be a UUID; got \(Self.show(v))")
                    return nil
                }
                return u
            }
            mutating func optionalUUID(_ field: String) -> UUID128?? {
                guard let v = present(field) else { return .some(nil) }
                guard let s = v as? String, let u = UUID128(s) else {
                    refuse(field, "\(field) must be a UUID or null; got \(Self.show(v))")
                    return nil
                }
                return .some(u)
            }
            mutating func text(_ field: String) -> String? {
                guard let v = present(field) else { refuse(field, "\(field) is required (a string)"); return nil }
                guard let s = v as? String, !s.isEmpty else {
                    refuse(field, "\(field) must be a non-empty string; got \(Self.show(v))")
                    return nil
                }
                return s
            }
            mutating func optionalText(_ field: String) -> String?? {
                guard let v = present(field) else { return .some(nil) }
                guard let s = v as? String else { refuse(field, "\(field) must be a string or null; got \(Self.show(v))"); return nil }
                return .some(s)
            }
            mutating func bool(_ field: String) -> Bool? {
                guard let v = present(field) else { refuse(field, "\(field) is required (true or false)"); return nil }
                // JSON true and false only (Foundation gives numbers as NSNumber, booleans as a subclass).
                guard let b = v as? Bool, type(of: v) != NSNumber.self else {
                    refuse(field, "\(field) must be true or false; got \(Self.show(v))")
                    return nil
                }
                return b
            }
            static func show(_ v: Any) -> String {
                if let s = v as? String { return "\"\(s.prefix(60))\"" }
                if v is [Any] { return "an array" }
                if v is [String: Any] { return "an object" }
                return "\(v)".prefix(60).description
            }
        }

        mutating func open(_ table: String, _ index: Int, _ value: Any) -> Row? {
            guard let o = value as? [String: Any] else {
                refused.append(RefusedRow(table: table, index: index, field: "", message: "a row must be an object"))
                return nil
            }
            return Row(table: table, index: index, o: o)
        }

        /// Records `row`'s refusals; true if it had none.
        mutating func close(_ row: Row) -> Bool {
            refused += row.refused
            return row.refused.isEmpty
        }

        /// `client_id`, if given, must be this client.
        func checkClient(_ r: inout Row) {
            if let given = r.optionalUUID("client_id"), let given, given != client {
                r.refuse("client_id", "client_id must be this batch's client \(client) (or left out); got \(given)")
            }
        }

        /// Whether a client other than this one satisfies `holds` (holds the id it looks up).
        func heldElsewhere(_ holds: (ClientStore) -> Bool) -> Bool {
            store.clients.contains { $0 !== c && holds($0) }
        }

        mutating func catalogApp(_ i: Int, _ value: Any) -> DirectoryRows.CatalogApp? {
            guard var r = open("catalog_applications", i, value) else { return nil }
            let id = r.uuid("id"), name = r.text("canonical_name"), type = r.text("type"), logo = r.optionalText("logo")
            let category = r.optionalUUID("category_id"), vendor = r.optionalUUID("vendor_id")
            if let category, let cu = category, store.catalog.categoryIndex[cu] == nil {
                r.refuse("category_id", "no catalog category \(cu)")
            }
            if let vendor, let vu = vendor, store.catalog.vendorIndex[vu] == nil {
                r.refuse("vendor_id", "no catalog vendor \(vu)")
            }
            if let id, catalogApps.contains(id) { r.refuse("id", "catalog application \(id) appears twice in this batch") }
            guard let id, let name, let type, let logo, let category, let vendor else { _ = close(r); return nil }
            let row = DirectoryRows.CatalogApp(id: id, canonicalName: name, logo: logo, type: type, category: category, vendor: vendor)
            // (Every nil above came with a refusal, so the row was closed refused.)
            if let existing = store.catalog.applicationIndex[id], !mayChangeCatalog {
                let e = store.catalog.applications[Int(existing)]
                let same = e.canonicalName == name && e.logo == logo && e.type == type
                    && e.category.map { store.catalog.categories[Int($0)].id } == category
                    && e.vendor.map { store.catalog.vendors[Int($0)].id } == vendor
                if !same {
                    r.refuse("id", "catalog application \(id) exists; changing it needs a token that may read every client (the catalog is shared)")
                }
            }
            guard close(r) else { return nil }
            catalogApps.insert(id)
            return row
        }

        mutating func department(_ i: Int, _ value: Any) -> DepartmentInfo? {
            guard var r = open("departments", i, value) else { return nil }
            checkClient(&r)
            let id = r.uuid("id"), name = r.text("name"), description = r.optionalText("description")
            if let id {
                if departments.contains(id) { r.refuse("id", "department \(id) appears twice in this batch") }
                else if c.departmentIndex[id] == nil, heldElsewhere({ $0.departmentIndex[id] != nil }) {
                    r.refuse("id", "department \(id) belongs to another client")
                }
            }
            guard close(r), let id, let name, let description else { return nil }
            departments.insert(id)
            return DepartmentInfo(id: id, name: name, description: description)
        }

        mutating func user(_ i: Int, _ value: Any) -> UserInfo? {
            guard var r = open("users", i, value) else { return nil }
            checkClient(&r)
            let id = r.uuid("id"), email = r.text("email"), active = r.bool("is_active")
            let display = r.optionalText("display_name"), role = r.optionalText("role"), created = r.optionalText("created_at")
            if let created, let text = created {
                let ok = Array(text.utf8).withUnsafeBufferPointer { Timestamp.micros($0) != nil }
                if !ok { r.refuse("created_at", "created_at must be a timestamp (ISO 8601 or YYYY-MM-DD HH:MM:SS[.f][±HH[:MM]]); got \"\(text.prefix(60))\"") }
            }
            if let id {
                if users.contains(id) { r.refuse("id", "user \(id) appears twice in this batch") }
                else if c.userIndex[id] == nil, heldElsewhere({ $0.userIndex[id] != nil }) {
                    r.refuse("id", "user \(id) belongs to another client")
                }
            }
            guard close(r), let id, let email, let active, let display, let role, let created else { return nil }
            users.insert(id)
            return UserInfo(id: id, email: email, displayName: display, isActive: active, role: role, createdAt: created)
        }

        mutating func app(_ i: Int, _ value: Any) -> DirectoryRows.App? {
            guard var r = open("apps", i, value) else { return nil }
            checkClient(&r)
            let id = r.uuid("id"), catalog = r.uuid("catalog_application_id")
            let approved = r.bool("is_approved"), favorite = r.bool("is_favorite")
            if let catalog, store.catalog.applicationIndex[catalog] == nil, !catalogApps.contains(catalog) {
                r.refuse("catalog_application_id", "no catalog application \(catalog) (in the catalog or this batch)")
            }
            if let id {
                if apps.contains(id) { r.refuse("id", "app \(id) appears twice in this batch") }
                else if c.appIndex[id] == nil, heldElsewhere({ $0.appIndex[id] != nil }) {
                    r.refuse("id", "app \(id) belongs to another client")
                }
            }
            guard close(r), let id, let catalog, let approved, let favorite else { return nil }
            apps.insert(id)
            return DirectoryRows.App(id: id, catalogApp: catalog, isApproved: approved, isFavorite: favorite)
        }

        mutating func membership(_ i: Int, _ value: Any) -> DirectoryRows.Membership? {
            guard var r = open("user_departments", i, value) else { return nil }
            let user = r.uuid("user_id"), department = r.uuid("department_id")
            if let user, c.userIndex[user] == nil, !users.contains(user) {
                r.refuse("user_id", "no user \(user) in this client (or this batch)")
            }
            if let department, c.departmentIndex[department] == nil, !departments.contains(department) {
                r.refuse("department_id", "no department \(department) in this client (or this batch)")
            }
            guard close(r), let user, let department else { return nil }
            return DirectoryRows.Membership(user: user, department: department)
        }

        mutating func event(_ i: Int, _ value: Any) -> AppendBatch.Row? {
            guard let o = value as? [String: Any] else {
                refused.append(RefusedRow(index: i, field: "", message: "an event must be an object"))
                return nil
            }
            var r = Row(table: "events", index: i, o: o)
            func id(_ field: String, _ known: (UUID128) -> Bool, _ what: String) -> UUID128? {
                guard let s = o[field] as? String else {
                    r.refuse(field, "\(field) is required (a UUID)")
                    return nil
                }
                guard let u = UUID128(s) else {
                    r.refuse(field, "\(field) must be a UUID; got \"\(s.prefix(60))\"")
                    return nil
                }
                guard known(u) else {
                    r.refuse(field, "no \(what) \(u) in this client")
                    return nil
                }
                return u
            }
            let user = id("user_id", { c.userIndex[$0] != nil || users.contains($0) }, "user")
            let app = id("application_id", { c.appIndex[$0] != nil || apps.contains($0) }, "app")
            var day: Day?
            if let s = o["activity_date"] as? String, let d = Day(s) {
                if d < earliest || d > latest {
                    r.refuse("activity_date", "activity_date must be from \(earliest) to \(latest)")
                } else {
                    day = d
                }
            } else {
                r.refuse("activity_date", "activity_date must be a date in YYYY-MM-DD form")
            }
            guard close(r), let user, let app, let day else { return nil }
            return AppendBatch.Row(user: user, app: app, day: day)
        }
    }

    /// `store` with the rows of `records` added, in order: catalog applications upserted into the
    /// catalog, then each client touched rebuilt once with its directory rows and events (and
    /// every client with an app of a changed catalog application rebuilt too). Rows whose client,
    /// user, app or department the store does not hold are skipped. How the commit thread
    /// applies a group, and how the log is replayed onto loaded data at start and after a reload.
    public static func apply(_ records: [(sequence: UInt64, batch: AppendBatch)], onto store: Store,
                             tailMinRows: Int = ClientStore.tailMinRows, tailMaxRows: Int? = nil) -> Store {
        applyCounting(records, onto: store, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows).store
    }

    /// ``apply(_:onto:)``, and how many rows it skipped because the store lacks what they name.
    /// Events of a client's newest day only go to its usage's tail when it has `tailMinRows`
    /// rows or more (``ClientStore/appending(users:apps:days:tailMinRows:)``).
    public static func applyCounting(_ records: [(sequence: UInt64, batch: AppendBatch)], onto store: Store,
                                     tailMinRows: Int = ClientStore.tailMinRows, tailMaxRows: Int? = nil) -> (store: Store, skipped: Int) {
        guard let last = records.map(\.sequence).max() else { return (store, 0) }
        if records.allSatisfy({ $0.batch.directory.isEmpty }) { return applyEvents(records, onto: store, last: last, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows) }
        var skipped = 0
        var catalog = store.catalog
        var changedCatalog: Set<Int32> = []
        var byClient: [UUID128: (directory: DirectoryRows, events: [AppendBatch.Row])] = [:]
        for (_, batch) in records {
            let d = batch.directory
            if !d.catalogApps.isEmpty {
                let (next, changed, missing) = catalog.upserting(d.catalogApps)
                catalog = next
                changedCatalog.formUnion(changed)
                skipped += missing
            }
            guard store.client(batch.client) != nil else {
                skipped += batch.rows.count + d.count - d.catalogApps.count
                continue
            }
            var acc = byClient[batch.client] ?? (DirectoryRows(), [])
            acc.directory.departments += d.departments
            acc.directory.users += d.users
            acc.directory.apps += d.apps
            acc.directory.memberships += d.memberships
            acc.events += batch.rows
            byClient[batch.client] = acc
        }
        var rebuilt: [ClientStore] = []
        for c in store.clients {
            let catalogChanged = !changedCatalog.isEmpty && c.apps.contains(where: { changedCatalog.contains($0.catalogIndex) })
            let effect = byClient[c.info.id].map { catalogChanged ? .more : $0.directory.effect(on: c, catalog: catalog) }
            if let acc = byClient[c.info.id], let effect, effect != .more,
               effect != .organization || c.takesOrganization(minRows: tailMinRows) {
                // Directory rows sent again, changing only attributes the usage index does not
                // read (names, activity flags, favourites), or adding users, departments or
                // memberships to a client whose events go into a tail: the client keeps its
                // index, and the events go in as a batch of events only (a large client's newest
                // day into its tail).
                if effect == .organization {
                    // One version: the users, departments, memberships and the events (into the tail).
                    let (next, missing) = c.withOrganization(acc.directory, catalog: catalog, events: acc.events,
                                                             tailMinRows: tailMinRows, tailMaxRows: tailMaxRows)
                    rebuilt.append(next)
                    skipped += missing
                    continue
                }
                let d = effect == .attributes ? c.withAttributes(acc.directory, catalog: catalog) : c
                var rows = DenseRows()
                rows.add(d.dense(acc.events), skipped: &skipped)
                if let next = rows.appended(to: d, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows) {
                    rebuilt.append(next)
                } else if d !== c {
                    rebuilt.append(d)
                }
            } else if let acc = byClient[c.info.id] {
                let (client, missing) = c.upserting(acc.directory, catalog: catalog, events: acc.events)
                rebuilt.append(client)
                skipped += missing
            } else if !changedCatalog.isEmpty, c.apps.contains(where: { changedCatalog.contains($0.catalogIndex) }) {
                rebuilt.append(c.upserting(DirectoryRows(), catalog: catalog, events: []).client)
            }
        }
        return (store.replacing(rebuilt, catalog: catalog, walSequence: max(last, store.walSequence)), skipped)
    }

    /// ``apply(_:onto:)`` for batches of events only.
    static func applyEvents(_ records: [(sequence: UInt64, batch: AppendBatch)], onto store: Store, last: UInt64,
                            tailMinRows: Int, tailMaxRows: Int?) -> (store: Store, skipped: Int) {
        var byClient: [UUID128: DenseRows] = [:]
        var skipped = 0
        for (_, batch) in records {
            guard let c = store.client(batch.client) else {
                skipped += batch.rows.count
                continue
            }
            byClient[batch.client, default: DenseRows()].add(c.dense(batch), skipped: &skipped)
        }
        let rebuilt = byClient.compactMap { id, rows -> ClientStore? in
            store.client(id).flatMap { rows.appended(to: $0, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows) }
        }
        return (store.replacing(rebuilt, walSequence: max(last, store.walSequence)), skipped)
    }

    /// Events as one client's dense user and app indexes and days, for ``ClientStore/appending(users:apps:days:tailMinRows:tailMaxRows:)``.
    struct DenseRows {
        var users: [UInt32] = [], apps: [UInt32] = [], days: [Int32] = []

        /// With a client's dense rows (``ClientStore/dense(_:)-(AppendBatch)``), counting those it skipped.
        mutating func add(_ d: (users: [UInt32], apps: [UInt32], days: [Int32], skipped: Int), skipped: inout Int) {
            users += d.users
            apps += d.apps
            days += d.days
            skipped += d.skipped
        }

        /// `c` with these rows, or `nil` when they change nothing.
        func appended(to c: ClientStore, tailMinRows: Int, tailMaxRows: Int?) -> ClientStore? {
            guard !users.isEmpty else { return nil }
            let next = c.appending(users: users, apps: apps, days: days, tailMinRows: tailMinRows, tailMaxRows: tailMaxRows)
            return next === c ? nil : next
        }
    }

    /// What `batch` names that neither `store` nor the batches before it in the same group
    /// (`added`) hold — a reload may have swapped the data since the batch was checked — or nil.
    /// The commit thread refuses such a batch instead of dropping its rows.
    static func missing(_ batch: AppendBatch, in store: Store, added: inout [UUID128: AddedIds]) -> String? {
        guard let c = store.client(batch.client) else { return "client \(batch.client)" }
        let d = batch.directory
        var ids = added[batch.client] ?? AddedIds()
        for a in d.catalogApps {
            if let x = a.category, store.catalog.categoryIndex[x] == nil { return "catalog category \(x)" }
            if let x = a.vendor, store.catalog.vendorIndex[x] == nil { return "catalog vendor \(x)" }
        }
        ids.catalogApps.formUnion(d.catalogApps.map(\.id))
        ids.departments.formUnion(d.departments.map(\.id))
        ids.users.formUnion(d.users.map(\.id))
        ids.apps.formUnion(d.apps.map(\.id))
        for a in d.apps where store.catalog.applicationIndex[a.catalogApp] == nil && !ids.catalogApps.contains(a.catalogApp) {
            return "catalog application \(a.catalogApp)"
        }
        for m in d.memberships {
            if c.userIndex[m.user] == nil && !ids.users.contains(m.user) { return "user \(m.user)" }
            if c.departmentIndex[m.department] == nil && !ids.departments.contains(m.department) { return "department \(m.department)" }
        }
        // Rows numbered against a version of `c`'s numbering name ids it holds (it only adds).
        if batch.dense?.numbering !== c.numbering {
            for r in batch.rows {
                if c.userIndex[r.user] == nil && !ids.users.contains(r.user) { return "user \(r.user)" }
                if c.appIndex[r.app] == nil && !ids.apps.contains(r.app) { return "app \(r.app)" }
            }
        }
        added[batch.client] = ids
        return nil
    }

    /// Ids a group's earlier batches add to one client (and to the catalog).
    struct AddedIds {
        var catalogApps: Set<UUID128> = [], departments: Set<UUID128> = [], users: Set<UUID128> = [], apps: Set<UUID128> = []

        /// With the ids `batch`'s directory rows add.
        mutating func add(_ batch: AppendBatch) {
            let d = batch.directory
            catalogApps.formUnion(d.catalogApps.map(\.id))
            departments.formUnion(d.departments.map(\.id))
            users.formUnion(d.users.map(\.id))
            apps.formUnion(d.apps.map(\.id))
        }
    }
}
