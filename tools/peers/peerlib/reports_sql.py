"""The insight reports O, P, Q (SPEC §3b) and the admin client reports (SPEC §3c) as DuckDB SQL.

A `Report` is one request.  `build(report)` gives one SQL statement that returns the report's full
answer, in the order of SPEC §3b/§3c; `rows(report, result)` turns its result into the JSON rows
Tally sends (`data` of every page, concatenated), so the two are compared with `==`.

The SQL is the SPEC's definitions written plainly, nothing tuned to Tally's internals:
- `as_of`: the one given, else the client's newest `activity_date` over all its rows whatever the
  filters (admin reports: the whole store's); activity after it is ignored; every window is
  inclusive and ends on it, "the last N days" = `[as_of − N + 1, as_of]`.
- activity filters (`app_ids`, `category_ids`, `is_approved`) restrict which usage rows count, by
  joining `apps` and `catalog_applications`; other clients' ids match nothing because the usage
  rows are the client's own.
- O: `COUNT(DISTINCT activity_date)` per user over the window.  P: users whose newest matching day
  (up to `as_of`) is before the window.  Q: per user, the first day in W1 = the last N days, no day
  in W0 = the N days before, the last day before W0 (`FILTER` aggregates over one scan).
- UserRow: `users` + `created_at` rendered as RFC 3339 UTC (macro `rfc3339`, below) + all the
  user's departments (`list(… ORDER BY lower(name), id)`) + first/last day with any activity (no
  filter) up to `as_of`.
- growth: per (client, user) the first day over the whole history and the last day up to `as_of`;
  added = first in the window, removed = last in the N days before it.  attrition: the same rows
  with removed > 0.  churn / reengagement: P's and Q's rules on a client's days.
- order: the report's sort key (descending unless `sort_order=asc`), ties by id ascending (as text,
  = the 128-bit order), SPEC §3.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass

from . import dump as dumplib

CLIENT_REPORTS = {"O": "champions", "P": "churn", "Q": "reengagement"}
ADMIN_REPORTS = ("growth", "churn", "reengagement", "attrition")
INTERVALS = {"O": ("30", "60", "90"), "P": ("7", "14", "30"), "Q": ("weekly", "monthly"),
             "growth": ("30", "60", "90"), "attrition": ("30", "60", "90"), "churn": ("7", "14", "30"),
             "reengagement": ("weekly", "monthly")}
DEFAULT_SORT = {"O": "num_active_days", "P": "last_active_date", "Q": "days_inactive"}
SORTS = {"O": ("num_active_days",), "P": ("last_active_date", "days_inactive"),
         "Q": ("days_inactive", "reengaged_on")}
USER_FIELDS = ["id", "email", "display_name", "is_active", "role", "created_at", "departments",
               "first_active_date", "last_active_date"]


def days_of(interval: str) -> int:
    return {"weekly": 7, "monthly": 30}.get(interval) or int(interval)


@dataclass(frozen=True)
class Report:
    kind: str                       # O P Q (per client) or growth churn reengagement attrition (admin)
    interval: str                   # report_interval as sent
    client: str | None = None       # the client (admin reports: None)
    client_label: str = "admin"     # largest / median / admin
    as_of: dt.date | None = None
    filters: tuple = ()             # ((name, value), ...): app_ids, category_ids, is_approved
    sort_by: str | None = None
    sort_order: str | None = None
    tag: str = ""                   # a short label of the filter for the query name

    @property
    def admin(self) -> bool:
        return self.kind in ADMIN_REPORTS

    @property
    def name(self) -> str:
        parts = [self.kind, self.interval]
        if self.tag:
            parts.append(self.tag)
        if self.as_of:
            parts.append(f"asof{self.as_of.isoformat()}")
        if self.sort_by:
            parts.append(f"by-{self.sort_by}")
        if self.sort_order:
            parts.append(self.sort_order)
        return "-".join(parts) + ("" if self.admin else f"-{self.client_label}")

    @property
    def path(self) -> str:
        if self.admin:
            return f"/v2/analytics/clients/{self.kind}"
        return f"/v2/clients/{self.client}/analytics/users/{CLIENT_REPORTS[self.kind]}"

    def params(self) -> dict:
        p = {"report_interval": self.interval}
        if self.as_of:
            p["as_of"] = self.as_of.isoformat()
        p.update(dict(self.filters))
        if self.sort_by:
            p["sort_by"] = self.sort_by
        if self.sort_order:
            p["sort_order"] = self.sort_order
        return p

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "interval": self.interval, "client": self.client,
                "client_label": self.client_label, "path": self.path, "params": self.params()}


# --- loading what the reports need beyond peerlib.engines' tables --------------------------------

USERS_SCHEMA = dumplib.DIM_SCHEMA["users"] + [("created_at", "text")]

# created_at (SPEC §3b UserRow): the instant in microseconds, the fraction rounded to the microsecond
# half away from zero on its decimal digits (input "as PostgreSQL does"; DuckDB's own cast would
# truncate the 7th digit), no offset = UTC; then RFC 3339 in UTC with `Z`, fractional seconds only
# when not zero, trailing zeros dropped.
MACROS = [
    r"""CREATE OR REPLACE MACRO created_us(s) AS
        epoch_us(CAST(regexp_replace(s, '[.][0-9]+', '') AS TIMESTAMPTZ))
        + CASE WHEN regexp_matches(s, ':[0-9]{2}[.][0-9]')
               THEN (CAST(rpad(left(regexp_extract(s, ':[0-9]{2}[.]([0-9]+)', 1), 7), 7, '0') AS BIGINT) + 5) // 10
               ELSE 0 END""",
    r"""CREATE OR REPLACE MACRO rfc3339(s) AS CASE WHEN s IS NULL THEN NULL ELSE
        strftime(make_timestamp(created_us(s)), '%Y-%m-%dT%H:%M:%S')
        || CASE WHEN created_us(s) % 1000000 = 0 THEN ''
                ELSE '.' || rtrim(lpad(CAST((created_us(s) % 1000000 + 1000000) % 1000000 AS VARCHAR), 6, '0'), '0')
           END || 'Z' END""",
]


def prepare_duckdb(con, plain: str) -> dict:
    """Adds to a DuckDB loaded by peerlib.engines.DuckDB what the reports need: `users` again with
    `created_at` (kept as loaded, as text; the RFC 3339 rendering is part of each query), and the
    macros above.  Returns {"users": rows}."""
    import pandas as pd
    con.execute("SET TimeZone = 'UTC'")
    recs = dumplib.parse_csv(dumplib.read_text(os.path.join(plain, "users.csv")))
    idx = {h: k for k, h in enumerate(recs[0])}
    rows = [tuple(None if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
                  for v in (dumplib.convert(r[idx[c]] if c in idx and idx[c] < len(r) else None, kind)
                            for c, kind in USERS_SCHEMA))
            for r in recs[1:]]
    con.execute("DROP TABLE IF EXISTS users")
    con.execute("CREATE TABLE users (id UUID, client_id UUID, email VARCHAR, display_name VARCHAR,"
                " is_active BOOLEAN, role VARCHAR, created_at VARCHAR)")
    if rows:
        df = pd.DataFrame(rows, columns=[c for c, _ in USERS_SCHEMA], dtype=object)
        con.register("users_df", df)
        con.execute("INSERT INTO users SELECT * FROM users_df")
        con.unregister("users_df")
    for m in MACROS:
        con.execute(m)
    return {"users": len(rows)}


# --- SQL -----------------------------------------------------------------------------------------

def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _ids(csv: str) -> str:
    return ", ".join(_lit(x.strip().lower()) for x in csv.split(",")) or "NULL"


def as_of_sql(r: Report) -> str:
    """The report's as_of as a scalar expression."""
    if r.as_of:
        return f"DATE '{r.as_of.isoformat()}'"
    if r.admin:
        return "(SELECT max(activity_date) FROM app_usage_reports)"
    return f"(SELECT max(activity_date) FROM app_usage_reports WHERE client_id = {_lit(r.client)})"


def _activity(r: Report) -> str:
    """The client's usage rows up to as_of that pass the activity filters."""
    f = dict(r.filters)
    joins, where = [], [f"u.client_id = {_lit(r.client)}", "u.activity_date <= (SELECT as_of FROM params)"]
    if "is_approved" in f or "category_ids" in f:
        joins.append("JOIN apps a ON a.id = u.application_id")
    if "category_ids" in f:
        joins.append("JOIN catalog_applications ca ON ca.id = a.catalog_application_id")
        where.append(f"ca.category_id IN ({_ids(f['category_ids'])})")
    if "is_approved" in f:
        where.append(f"a.is_approved = {'true' if f['is_approved'] == 'true' else 'false'}")
    if "app_ids" in f:
        where.append(f"u.application_id IN ({_ids(f['app_ids'])})")
    return (f"SELECT u.user_id, u.activity_date FROM app_usage_reports u {' '.join(joins)}\n"
            f"  WHERE {' AND '.join(where)}")


def _user_rows(r: Report, order: str) -> str:
    """SELECT of UserRow columns + the report's columns (`res`) in the report's order."""
    return f"""span AS (
  SELECT user_id, min(activity_date) AS first_active_date, max(activity_date) AS last_active
  FROM app_usage_reports
  WHERE client_id = {_lit(r.client)} AND activity_date <= (SELECT as_of FROM params)
    AND user_id IN (SELECT user_id FROM res)
  GROUP BY user_id),
depts AS (
  SELECT m.user_id,
         list({{'id': CAST(d.id AS VARCHAR), 'name': d.name, 'description': d.description}}
              ORDER BY lower(d.name), CAST(d.id AS VARCHAR)) AS departments
  FROM (SELECT DISTINCT user_id, department_id FROM user_departments) m
  JOIN departments d ON d.id = m.department_id
  WHERE m.user_id IN (SELECT user_id FROM res)
  GROUP BY m.user_id)
SELECT CAST(us.id AS VARCHAR) AS id, us.email, us.display_name, us.is_active, us.role,
       rfc3339(us.created_at) AS created_at, coalesce(g.departments, []) AS departments,
       CAST(s.first_active_date AS VARCHAR) AS first_active_date,
       CAST(s.last_active AS VARCHAR) AS user_last_active_date,
       res.* EXCLUDE (user_id)
FROM res
JOIN users us ON us.id = res.user_id
LEFT JOIN span s ON s.user_id = res.user_id
LEFT JOIN depts g ON g.user_id = res.user_id
ORDER BY {order}"""


def _direction(r: Report, default_desc: bool = True) -> str:
    if r.sort_order:
        return "DESC" if r.sort_order == "desc" else "ASC"
    return "DESC" if default_desc else "ASC"


def build(r: Report) -> str:
    n = days_of(r.interval)
    head = f"WITH params AS (SELECT {as_of_sql(r)} AS as_of),\n"
    asof = "(SELECT as_of FROM params)"
    if r.kind == "O":
        res = f"""act AS ({_activity(r)}),
res AS (
  SELECT user_id, COUNT(DISTINCT activity_date) AS num_active_days
  FROM act WHERE activity_date >= {asof} - {n - 1}
  GROUP BY user_id),
"""
        return head + res + _user_rows(r, f"num_active_days {_direction(r)}, id")
    if r.kind == "P":
        res = f"""act AS ({_activity(r)}),
res AS (
  SELECT user_id, CAST(max(activity_date) AS VARCHAR) AS last_active_date,
         date_diff('day', max(activity_date), {asof}) AS days_inactive
  FROM act
  GROUP BY user_id
  HAVING max(activity_date) < {asof} - {n - 1}),
"""
        key = "days_inactive" if r.sort_by == "days_inactive" else "last_active_date"
        return head + res + _user_rows(r, f"{key} {_direction(r)}, id")
    if r.kind == "Q":
        res = f"""act AS ({_activity(r)}),
per_user AS (
  SELECT user_id,
         min(activity_date) FILTER (WHERE activity_date >= {asof} - {n - 1}) AS w1_first,
         count(*) FILTER (WHERE activity_date BETWEEN {asof} - {2 * n - 1} AND {asof} - {n}) AS w0_days,
         max(activity_date) FILTER (WHERE activity_date < {asof} - {2 * n - 1}) AS before_last
  FROM act GROUP BY user_id),
res AS (
  SELECT user_id, CAST(w1_first AS VARCHAR) AS reengaged_on, CAST(before_last AS VARCHAR) AS previous_active_date,
         date_diff('day', before_last, w1_first) - 1 AS days_inactive
  FROM per_user
  WHERE w1_first IS NOT NULL AND w0_days = 0 AND before_last IS NOT NULL),
"""
        key = "reengaged_on" if r.sort_by == "reengaged_on" else "days_inactive"
        return head + res + _user_rows(r, f"{key} {_direction(r)}, id")
    tail = """
  JOIN clients c ON c.id = x.client_id
  LEFT JOIN (SELECT client_id, count(*) AS num_users FROM users GROUP BY client_id) nu ON nu.client_id = x.client_id"""
    ref = "CAST(c.id AS VARCHAR) AS id, c.name, coalesce(nu.num_users, 0) AS num_users"
    if r.kind in ("growth", "attrition"):
        body = f"""per_user AS (
  SELECT client_id, user_id, min(activity_date) AS first_active,
         max(activity_date) FILTER (WHERE activity_date <= {asof}) AS last_active
  FROM app_usage_reports GROUP BY client_id, user_id),
x AS (
  SELECT client_id,
         count(*) FILTER (WHERE first_active BETWEEN {asof} - {n - 1} AND {asof}) AS num_users_added,
         count(*) FILTER (WHERE last_active BETWEEN {asof} - {2 * n - 1} AND {asof} - {n}) AS num_users_removed
  FROM per_user GROUP BY client_id)
SELECT {ref}, x.num_users_added, x.num_users_removed, x.num_users_added - x.num_users_removed AS net_growth
FROM x{tail}
"""
        if r.kind == "growth":
            return head + body + "WHERE x.num_users_added <> 0 OR x.num_users_removed <> 0\nORDER BY net_growth DESC, id"
        return head + body + "WHERE x.num_users_removed > 0\nORDER BY x.num_users_removed DESC, id"
    if r.kind == "churn":
        return head + f"""x AS (
  SELECT client_id, max(activity_date) AS last_active
  FROM app_usage_reports WHERE activity_date <= {asof} GROUP BY client_id)
SELECT {ref}, CAST(x.last_active AS VARCHAR) AS last_active_date
FROM x{tail}
WHERE x.last_active < {asof} - {n - 1}
ORDER BY x.last_active DESC, id"""
    if r.kind == "reengagement":
        return head + f"""per_client AS (
  SELECT client_id,
         min(activity_date) FILTER (WHERE activity_date >= {asof} - {n - 1}) AS w1_first,
         count(*) FILTER (WHERE activity_date BETWEEN {asof} - {2 * n - 1} AND {asof} - {n}) AS w0_rows,
         max(activity_date) FILTER (WHERE activity_date < {asof} - {2 * n - 1}) AS before_last
  FROM app_usage_reports WHERE activity_date <= {asof} GROUP BY client_id),
x AS (SELECT * FROM per_client WHERE w1_first IS NOT NULL AND w0_rows = 0 AND before_last IS NOT NULL)
SELECT {ref}, CAST(x.w1_first AS VARCHAR) AS reengaged_on, CAST(x.before_last AS VARCHAR) AS previous_active_date
FROM x{tail}
ORDER BY x.w1_first DESC, id"""
    raise ValueError(r.kind)


def as_of_query(r: Report) -> str:
    return f"SELECT CAST({as_of_sql(r)} AS VARCHAR)"


def rows(r: Report, cols: list[str], result: list[tuple]) -> list[dict]:
    """The SQL result as Tally's JSON rows (`data`)."""
    out = []
    for t in result:
        v = dict(zip(cols, t))
        if r.admin:
            row = {"client": {"id": v["id"], "name": v["name"]}, "num_users": v["num_users"]}
            for k in cols[3:]:
                row[k] = v[k]
        else:
            user = {k: v[k] for k in USER_FIELDS if k != "last_active_date"}
            user["last_active_date"] = v["user_last_active_date"]
            user["departments"] = [dict(d) for d in user["departments"]]
            row = {"user": user}
            for k in cols[cols.index("user_last_active_date") + 1:]:
                row[k] = v[k]
        out.append(row)
    return out


def canon(x) -> str:
    """Strict equality: JSON text with sorted keys (so `true` is not `1`, `12` not `12.0`)."""
    return json.dumps(x, sort_keys=True, ensure_ascii=False)


def first_difference(want: list, got: list) -> str | None:
    """Where two answers first differ: the row index, the path of the field, both rows."""
    for i, (a, b) in enumerate(zip(want, got)):
        if canon(a) != canon(b):
            return f"row {i}: {_path(a, b, '')}\n      duckdb: {a}\n      tally:  {b}"
    if len(want) != len(got):
        i = min(len(want), len(got))
        extra = ("duckdb", want[i]) if len(want) > len(got) else ("tally", got[i])
        return f"{len(want)} rows (duckdb) vs {len(got)} (tally); first extra row {i} ({extra[0]}): {extra[1]}"
    return None


def _path(a, b, at: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=lambda k: (k != "id", k)):
            if k not in a or k not in b:
                return f"{at}{k}: {'missing' if k not in a else repr(a[k])} vs {'missing' if k not in b else repr(b[k])}"
            if canon(a[k]) != canon(b[k]):
                return _path(a[k], b[k], f"{at}{k}.")
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if canon(x) != canon(y):
                return _path(x, y, f"{at.rstrip('.')}[{i}].")
        return f"{at}: {len(a)} items vs {len(b)}"
    return f"{at.rstrip('.')}: {a!r} vs {b!r}"
