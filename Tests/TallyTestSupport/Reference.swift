import TallyQuery
import TallyStorage

/// A brute-force answer to a ``Query`` from the raw rows, with Swift `Set`s: a plain reading of
/// SPEC §2 that shares no code with the engine.
public struct Reference {
    public let dump: RandomDump
    let catalogById: [UUID128: RandomDump.CatalogApp]
    let categoryById: [UUID128: RandomDump.Category]
    let appById: [UUID128: RandomDump.App]
    let membership: [UUID128: Set<UUID128>]

    public init(_ dump: RandomDump) {
        self.dump = dump
        catalogById = Dictionary(uniqueKeysWithValues: dump.catalog.map { ($0.id, $0) })
        categoryById = Dictionary(uniqueKeysWithValues: dump.categories.map { ($0.id, $0) })
        appById = Dictionary(uniqueKeysWithValues: dump.apps.map { ($0.id, $0) })
        var m: [UUID128: Set<UUID128>] = [:]
        for (u, d) in dump.memberships { m[u, default: []].insert(d) }
        membership = m
    }

    func category(of app: UUID128) -> UUID128? { catalogById[appById[app]!.catalog]!.category }
    func isAI(_ app: UUID128) -> Bool { category(of: app).map { categoryById[$0]!.isAI } ?? false }

    func appPasses(_ app: UUID128, _ f: Filters) -> Bool {
        let a = appById[app]!
        let cat = catalogById[a.catalog]!
        if let want = f.approved, a.approved != want { return false }
        if f.aiOnly && !isAI(app) { return false }
        if let cs = f.categoryIds { guard let c = cat.category, cs.contains(c) else { return false } }
        if let vs = f.vendorIds { guard let v = cat.vendor, vs.contains(v) else { return false } }
        if let ids = f.appIds, !ids.contains(app) { return false }
        return true
    }

    func userPasses(_ user: UUID128, _ f: Filters) -> Bool {
        guard let ds = f.departmentIds else { return true }
        return !(membership[user] ?? []).isDisjoint(with: ds)
    }

    /// Rows of the client in `range` that pass the filters (`appFilters: false` ignores app filters).
    func rows(_ q: Query, _ range: DayRange, appFilters: Bool = true) -> [RandomDump.Usage] {
        dump.usage.filter {
            $0.client == q.client && range.contains($0.day) && userPasses($0.user, q.filters)
                && (!appFilters || appPasses($0.app, q.filters))
        }
    }

    struct Pair: Hashable { let a: UUID128; let b: Day }

    /// Metrics per row id ("" for totals and for the no-category row) over one period.
    public func evaluate(_ q: Query, _ range: DayRange) -> [String: Metrics] {
        let rs = rows(q, range)
        var out: [String: Metrics] = [:]
        func approved(_ app: UUID128) -> Bool { appById[app]!.approved }
        switch q.dimension {
        case .app:
            for (app, group) in Dictionary(grouping: rs, by: \.app) {
                if q.firstSeenInPeriod {
                    let first = dump.usage.filter { $0.app == app }.map(\.day).min()!
                    if !q.period.contains(first) { continue }
                }
                var m = Metrics()
                m.users = Set(group.map(\.user)).count
                m.userDays = Set(group.map { Pair(a: $0.user, b: $0.day) }).count
                out[app.description] = m
            }
        case .department:
            for d in dump.departments where d.client == q.client {
                let g = rs.filter { membership[$0.user]?.contains(d.id) ?? false }
                if g.isEmpty { continue }
                var m = Metrics()
                m.users = Set(g.map(\.user)).count
                m.apps = Set(g.map(\.app)).count
                m.approvedUsers = Set(g.filter { approved($0.app) }.map(\.user)).count
                m.unapprovedUsers = Set(g.filter { !approved($0.app) }.map(\.user)).count
                out[d.id.description] = m
            }
        case .category:
            for (cat, g) in Dictionary(grouping: rs, by: { category(of: $0.app) }) {
                var m = Metrics()
                m.users = Set(g.map(\.user)).count
                m.apps = Set(g.map(\.app)).count
                out[cat?.description ?? ""] = m
            }
        case .user:
            for (user, g) in Dictionary(grouping: rs, by: \.user) {
                var m = Metrics()
                m.apps = Set(g.map(\.app)).count
                m.activeDays = Set(g.map(\.day)).count
                out[user.description] = m
            }
        case .none:
            var m = Metrics()
            m.users = Set(rs.map(\.user)).count
            m.apps = Set(rs.map(\.app)).count
            m.approvedApps = Set(rs.filter { approved($0.app) }.map(\.app)).count
            m.unapprovedApps = Set(rs.filter { !approved($0.app) }.map(\.app)).count
            m.approvedUsers = Set(rs.filter { approved($0.app) }.map(\.user)).count
            m.unapprovedUsers = Set(rs.filter { !approved($0.app) }.map(\.user)).count
            m.anyAppUsers = Set(self.rows(q, range, appFilters: false).map(\.user)).count
            out[""] = m
        case .time:
            break
        }
        return out
    }

    /// Time series: calendar buckets computed from first principles.
    public func series(_ q: Query, _ range: DayRange, _ g: Granularity) -> [(DayRange, Bool, Int, Int)] {
        let newest = dump.usage.filter { $0.client == q.client }.map(\.day).max()
        var out: [(DayRange, Bool, Int, Int)] = []
        var d = range.start
        while d <= range.end {
            let (y, m, _) = d.civil
            var s = d, e = d
            switch g {
            case .daily: break
            case .weekly:
                while s.isoWeekday != 1 { s = s.adding(-1) }
                e = s.adding(6)
            case .monthly:
                s = Day(year: y, month: m, day: 1)!
                e = Day(year: m == 12 ? y + 1 : y, month: m == 12 ? 1 : m + 1, day: 1)!.adding(-1)
            case .quarterly:
                let qm = ((m - 1) / 3) * 3 + 1
                s = Day(year: y, month: qm, day: 1)!
                e = Day(year: qm == 10 ? y + 1 : y, month: qm == 10 ? 1 : qm + 3, day: 1)!.adding(-1)
            }
            let clipped = DayRange(max(s, range.start), min(e, range.end))
            let rs = rows(q, clipped)
            let complete = clipped == DayRange(s, e) && newest.map { e <= $0 } == true
            out.append((clipped, complete, Set(rs.map(\.user)).count, Set(rs.map(\.app)).count))
            d = e.adding(1)
        }
        return out
    }
}
