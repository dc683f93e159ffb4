"""The SQL of SPEC §2 for endpoints A, B, C, D, E, H, J, in three dialects.

dialect: "pg" (PostgreSQL 15), "duckdb", "ch" (ClickHouse / chDB).

Every query scans `app_usage_reports` of one client over the period (or over the period and the
comparison period, with conditional aggregates per period), joins the client's `apps` and the
catalog, applies the filters, and returns full lists (no LIMIT), sorted as SPEC §3's default: the
count descending, ties by id ascending (ids compared as lower-case text, which is the byte order
of a UUID).  Ids come back as text.  Compare values are NULL for a row with no matching activity
in the comparison period.

Columns returned, per endpoint (the canonical form is built from them in engines.py):
  A: id, users, user_days, c_users, category_id, vendor_id, usage_level
  B: id, users, apps, c_users, c_apps
  C: id, users, apps, c_users, c_apps
  D: id, apps, days, c_apps, c_days, depts ("," separated)
  E: users, apps, approved_apps, unapproved_apps, unapproved_users, then c_ of each
  H: id, users, approved, unapproved, c_users, c_approved, c_unapproved
  J: tag ('p' | 'c'), bucket (calendar start), users, apps
"""
from __future__ import annotations

from .spec import Case


class Dialect:
    def __init__(self, name: str):
        self.name = name

    def date(self, x) -> str:
        return f"toDate('{x.isoformat()}')" if self.name == "ch" else f"DATE '{x.isoformat()}'"

    def uuid(self, s: str) -> str:
        if self.name == "ch":
            return f"toUUID('{s}')"
        return f"'{s}'::UUID" if self.name == "duckdb" else f"'{s}'::uuid"

    def text(self, e: str) -> str:
        if self.name == "ch":
            return f"toString({e})"
        return f"CAST({e} AS VARCHAR)" if self.name == "duckdb" else f"{e}::text"

    def cd(self, exprs: list[str], conds: list[str]) -> str:
        """COUNT(DISTINCT exprs) over the rows matching every cond."""
        if self.name == "ch":
            if conds:
                return f"uniqExactIf({', '.join(exprs)}, {' AND '.join(conds)})"
            return f"uniqExact({', '.join(exprs)})"
        e = exprs[0] if len(exprs) == 1 else f"({', '.join(exprs)})"
        base = f"COUNT(DISTINCT {e})"
        return f"{base} FILTER (WHERE {' AND '.join(conds)})" if conds else base

    def count_if(self, cond: str) -> str:
        return f"countIf({cond})" if self.name == "ch" else f"COUNT(*) FILTER (WHERE {cond})"

    def if_active(self, cond: str, agg: str) -> str:
        """agg, or NULL when no row matched cond (the row had no activity in that period)."""
        if self.name == "ch":
            return f"if({self.count_if(cond)} > 0, {agg}, NULL)"
        return f"CASE WHEN {self.count_if(cond)} > 0 THEN {agg} END"

    def bucket(self, e: str, g: str) -> str:
        if g == "daily":
            return e
        if self.name == "ch":
            return {"weekly": f"toMonday({e})", "monthly": f"toStartOfMonth({e})",
                    "quarterly": f"toStartOfQuarter({e})"}[g]
        unit = {"weekly": "week", "monthly": "month", "quarterly": "quarter"}[g]
        return f"CAST(date_trunc('{unit}', {e}) AS DATE)"

    def str_agg(self, e: str) -> str:
        """The distinct values, comma separated (a user's departments are a set: user_departments
        may hold the same pair twice)."""
        if self.name == "ch":
            return f"arrayStringConcat(groupUniqArray({self.text(e)}), ',')"
        return f"string_agg(DISTINCT {self.text(e)}, ',')"


def _between(dl: Dialect, col: str, a, b) -> str:
    return f"{col} BETWEEN {dl.date(a)} AND {dl.date(b)}"


def _scope(dl: Dialect, c: Case, lo, hi, ai=False, dept_rows=False) -> str:
    """FROM … WHERE … of the client's usage rows in [lo, hi] after the case's filters."""
    cl = dl.uuid(c.client)
    f = [f"FROM app_usage_reports u",
         f"JOIN (SELECT id, catalog_application_id, is_approved FROM apps WHERE client_id = {cl}) a"
         f" ON a.id = u.application_id",
         "JOIN catalog_applications ca ON ca.id = a.catalog_application_id"]
    if ai:
        f.append("JOIN catalog_categories cc ON cc.id = ca.category_id")
    if dept_rows:
        f.append("JOIN (SELECT ud.user_id, ud.department_id FROM user_departments ud"
                 f" WHERE ud.department_id IN (SELECT id FROM departments WHERE client_id = {cl})) ud"
                 " ON ud.user_id = u.user_id")
    w = [f"u.client_id = {cl}", _between(dl, "u.activity_date", lo, hi)]
    if ai:
        w.append("cc.is_ai = true")
    for k, v in c.filters:
        if k == "is_approved":
            w.append(f"a.is_approved = {'true' if v else 'false'}")
        elif k == "category_ids":
            w.append(f"ca.category_id IN ({', '.join(dl.uuid(x) for x in v)})")
        elif k == "vendor_ids":
            w.append(f"ca.vendor_id IN ({', '.join(dl.uuid(x) for x in v)})")
        elif k == "app_ids":
            w.append(f"u.application_id IN ({', '.join(dl.uuid(x) for x in v)})")
        elif k == "department_ids":
            w.append("u.user_id IN (SELECT ud2.user_id FROM user_departments ud2 WHERE ud2.department_id IN"
                     f" (SELECT id FROM departments WHERE client_id = {cl}"
                     f" AND id IN ({', '.join(dl.uuid(x) for x in v)})))")
        else:
            raise ValueError(k)
    return "\n".join(f) + "\nWHERE " + "\n  AND ".join(w)


def build_filter_form(dialect: str, c: Case) -> str:
    """The comparison as conditional aggregates (FILTER / uniqExactIf) over one scan of both periods."""
    dl = Dialect(dialect)
    ep = c.endpoint
    if c.compare:
        lo, hi = min(c.start, c.cstart), max(c.end, c.cend)
        P = [_between(dl, "u.activity_date", c.start, c.end)]
        C = _between(dl, "u.activity_date", c.cstart, c.cend)
    else:
        lo, hi, P, C = c.start, c.end, [], None

    def cmp_cols(items):
        """[(alias, exprs, extra conds)] -> compare-period columns (NULL when the row was inactive)."""
        if C is None:
            return [f"NULL AS c_{a}" for a, _, _ in items]
        return [f"{dl.if_active(C, dl.cd(e, [C] + x))} AS c_{a}" for a, e, x in items]

    def having():
        return f"\nHAVING {dl.count_if(P[0])} > 0" if P else ""

    if ep == "A":
        items = [("users", ["u.user_id"], [])]
        cols = [f"{dl.text('u.application_id')} AS id",
                f"{dl.cd(['u.user_id'], P)} AS users",
                f"{dl.cd(['u.user_id', 'u.activity_date'], P)} AS user_days",
                *cmp_cols(items),
                f"{dl.text('ca.category_id')} AS category_id",
                f"{dl.text('ca.vendor_id')} AS vendor_id"]
        inner = (f"SELECT {', '.join(cols)}\n{_scope(dl, c, lo, hi)}\n"
                 f"GROUP BY u.application_id, ca.category_id, ca.vendor_id{having()}")
        n = c.days
        lvl = (f"CASE WHEN 7 * user_days >= 3 * users * {n} THEN 'heavy'"
               f" WHEN 7 * user_days >= users * {n} THEN 'medium' ELSE 'light' END")
        return (f"SELECT id, users, user_days, c_users, category_id, vendor_id, {lvl} AS usage_level\n"
                f"FROM ({inner}) t\nORDER BY users DESC, id")

    if ep in ("B", "C"):
        key = "ud.department_id" if ep == "B" else "ca.category_id"
        items = [("users", ["u.user_id"], []), ("apps", ["u.application_id"], [])]
        cols = [f"{dl.text(key)} AS id", f"{dl.cd(['u.user_id'], P)} AS users",
                f"{dl.cd(['u.application_id'], P)} AS apps", *cmp_cols(items)]
        # C: the no-category row has a NULL id; on a tie it sorts after the ids (SPEC §3: a null
        # sorts last ascending, and ties break by id ascending)
        nulls = " NULLS LAST" if ep == "C" else ""
        return (f"SELECT {', '.join(cols)}\n{_scope(dl, c, lo, hi, dept_rows=(ep == 'B'))}\n"
                f"GROUP BY {key}{having()}\nORDER BY users DESC, id{nulls}")

    if ep == "D":
        items = [("apps", ["u.application_id"], []), ("days", ["u.activity_date"], [])]
        cols = ["u.user_id AS uid", f"{dl.cd(['u.application_id'], P)} AS apps",
                f"{dl.cd(['u.activity_date'], P)} AS days", *cmp_cols(items)]
        inner = f"SELECT {', '.join(cols)}\n{_scope(dl, c, lo, hi)}\nGROUP BY u.user_id{having()}"
        cl = dl.uuid(c.client)
        depts = (f"SELECT ud.user_id, {dl.str_agg('ud.department_id')} AS depts FROM user_departments ud"
                 f" WHERE ud.department_id IN (SELECT id FROM departments WHERE client_id = {cl})"
                 " GROUP BY ud.user_id")
        return (f"SELECT {dl.text('t.uid')} AS id, t.apps, t.days, t.c_apps, t.c_days, g.depts\n"
                f"FROM ({inner}) t\nLEFT JOIN ({depts}) g ON g.user_id = t.uid\n"
                "ORDER BY t.apps DESC, id")

    if ep == "E":
        cards = [("users", ["u.user_id"], []), ("apps", ["u.application_id"], []),
                 ("approved_apps", ["u.application_id"], ["a.is_approved = true"]),
                 ("unapproved_apps", ["u.application_id"], ["a.is_approved = false"]),
                 ("unapproved_users", ["u.user_id"], ["a.is_approved = false"])]
        cols = [f"{dl.cd(e, P + x)} AS {a}" for a, e, x in cards]
        if C is not None:
            cols += [f"{dl.cd(e, [C] + x)} AS c_{a}" for a, e, x in cards]
        else:
            cols += [f"NULL AS c_{a}" for a, _, _ in cards]
        return f"SELECT {', '.join(cols)}\n{_scope(dl, c, lo, hi)}"

    if ep == "H":
        items = [("users", ["u.user_id"], []), ("approved", ["u.user_id"], ["a.is_approved = true"]),
                 ("unapproved", ["u.user_id"], ["a.is_approved = false"])]
        cols = [f"{dl.text('ud.department_id')} AS id"]
        cols += [f"{dl.cd(e, P + x)} AS {a}" for a, e, x in items]
        cols += cmp_cols(items)
        return (f"SELECT {', '.join(cols)}\n{_scope(dl, c, lo, hi, ai=True, dept_rows=True)}\n"
                f"GROUP BY ud.department_id{having()}\nORDER BY users DESC, id")

    if ep == "J":
        b = dl.bucket("u.activity_date", c.granularity)
        parts = [(f"SELECT 'p' AS tag, {dl.text(b)} AS bucket, {dl.cd(['u.user_id'], [])} AS users,"
                  f" {dl.cd(['u.application_id'], [])} AS apps\n{_scope(dl, c, c.start, c.end)}\nGROUP BY {b}")]
        if c.compare:
            parts.append(f"SELECT 'c' AS tag, {dl.text(b)} AS bucket, {dl.cd(['u.user_id'], [])} AS users,"
                         f" {dl.cd(['u.application_id'], [])} AS apps\n{_scope(dl, c, c.cstart, c.cend)}"
                         f"\nGROUP BY {b}")
        return "\nUNION ALL\n".join(parts)
    raise ValueError(ep)


def build(dialect: str, c: Case, form: str = "join") -> str:
    """The SQL of one query. form "join" (default): one aggregation per period, the comparison
    period's LEFT JOINed by id (a row inactive there gets NULLs); "filter": one scan of both periods
    with conditional aggregates (build_filter_form). The join form was faster on DuckDB (about 2×),
    chDB and PostgreSQL in our runs, so it is the one timed."""
    if form == "filter" or c.endpoint == "J":
        return build_filter_form(dialect, c)
    dl = Dialect(dialect)
    ep = c.endpoint
    cd = lambda e, x=(): dl.cd(e, list(x))

    def key(e):  # join key: the id as text, the no-category row's NULL as '-'
        return f"coalesce({dl.text(e)}, '-')"

    if ep == "A":
        def agg(a, b, full):
            cols = [f"{key('u.application_id')} AS k", f"{cd(['u.user_id'])} AS users"]
            if full:
                cols = [f"{dl.text('u.application_id')} AS id"] + cols + [
                    f"{cd(['u.user_id', 'u.activity_date'])} AS user_days",
                    f"{dl.text('ca.category_id')} AS category_id", f"{dl.text('ca.vendor_id')} AS vendor_id"]
            g = "u.application_id, ca.category_id, ca.vendor_id" if full else "u.application_id"
            return f"SELECT {', '.join(cols)}\n{_scope(dl, c, a, b)}\nGROUP BY {g}"
        n = c.days
        lvl = (f"CASE WHEN 7 * p.user_days >= 3 * p.users * {n} THEN 'heavy'"
               f" WHEN 7 * p.user_days >= p.users * {n} THEN 'medium' ELSE 'light' END")
        sel = (f"SELECT p.id, p.users, p.user_days, {'q.users' if c.compare else 'NULL'} AS c_users,"
               f" p.category_id, p.vendor_id, {lvl} AS usage_level")
        return _join(c, agg(c.start, c.end, True), agg(c.cstart, c.cend, False) if c.compare else None,
                     sel, "p.users DESC, p.id")

    if ep in ("B", "C"):
        k = "ud.department_id" if ep == "B" else "ca.category_id"

        def agg(a, b):
            return (f"SELECT {dl.text(k)} AS id, {key(k)} AS k, {cd(['u.user_id'])} AS users,"
                    f" {cd(['u.application_id'])} AS apps\n{_scope(dl, c, a, b, dept_rows=(ep == 'B'))}\nGROUP BY {k}")
        q = ("q.users", "q.apps") if c.compare else ("NULL", "NULL")
        sel = f"SELECT p.id, p.users, p.apps, {q[0]} AS c_users, {q[1]} AS c_apps"
        return _join(c, agg(c.start, c.end), agg(c.cstart, c.cend) if c.compare else None, sel,
                     "p.users DESC, p.id" + (" NULLS LAST" if ep == "C" else ""))

    if ep == "D":
        def agg(a, b):
            return (f"SELECT u.user_id AS uid, {key('u.user_id')} AS k, {cd(['u.application_id'])} AS apps,"
                    f" {cd(['u.activity_date'])} AS days\n{_scope(dl, c, a, b)}\nGROUP BY u.user_id")
        cl = dl.uuid(c.client)
        depts = (f"SELECT ud.user_id, {dl.str_agg('ud.department_id')} AS depts FROM user_departments ud"
                 f" WHERE ud.department_id IN (SELECT id FROM departments WHERE client_id = {cl})"
                 " GROUP BY ud.user_id")
        q = ("q.apps", "q.days") if c.compare else ("NULL", "NULL")
        sel = f"SELECT {dl.text('p.uid')} AS id, p.apps, p.days, {q[0]} AS c_apps, {q[1]} AS c_days, g.depts"
        return _join(c, agg(c.start, c.end), agg(c.cstart, c.cend) if c.compare else None, sel,
                     "p.apps DESC, id", extra=f"LEFT JOIN ({depts}) g ON g.user_id = p.uid")

    if ep == "E":
        cards = [("users", ["u.user_id"], []), ("apps", ["u.application_id"], []),
                 ("approved_apps", ["u.application_id"], ["a.is_approved = true"]),
                 ("unapproved_apps", ["u.application_id"], ["a.is_approved = false"]),
                 ("unapproved_users", ["u.user_id"], ["a.is_approved = false"])]

        def agg(a, b):
            return f"SELECT {', '.join(f'{cd(e, x)} AS {n}' for n, e, x in cards)}\n{_scope(dl, c, a, b)}"
        if not c.compare:
            return f"SELECT p.*, {', '.join(f'NULL AS c_{n}' for n, _, _ in cards)} FROM ({agg(c.start, c.end)}) p"
        return (f"SELECT p.*, {', '.join(f'q.{n} AS c_{n}' for n, _, _ in cards)}"
                f" FROM ({agg(c.start, c.end)}) p CROSS JOIN ({agg(c.cstart, c.cend)}) q")

    if ep == "H":
        items = [("users", ["u.user_id"], []), ("approved", ["u.user_id"], ["a.is_approved = true"]),
                 ("unapproved", ["u.user_id"], ["a.is_approved = false"])]

        def agg(a, b):
            cols = ", ".join(f"{cd(e, x)} AS {n}" for n, e, x in items)
            return (f"SELECT {dl.text('ud.department_id')} AS id, {key('ud.department_id')} AS k, {cols}\n"
                    f"{_scope(dl, c, a, b, ai=True, dept_rows=True)}\nGROUP BY ud.department_id")
        q = [f"q.{n}" if c.compare else "NULL" for n, _, _ in items]
        sel = ("SELECT p.id, p.users, p.approved, p.unapproved, "
               + ", ".join(f"{x} AS c_{n}" for x, (n, _, _) in zip(q, items)))
        return _join(c, agg(c.start, c.end), agg(c.cstart, c.cend) if c.compare else None, sel,
                     "p.users DESC, p.id")
    raise ValueError(ep)


def _join(c: Case, p: str, q: str | None, select: str, order: str, extra: str = "") -> str:
    frm = f"FROM ({p}) p"
    if q is not None:
        frm += f"\nLEFT JOIN ({q}) q ON q.k = p.k"
    if extra:
        frm += "\n" + extra
    return f"{select}\n{frm}\nORDER BY {order}"
