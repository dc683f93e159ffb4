"""The query set and the canonical form of an answer (SPEC §2, §3).

A `Case` is one request: endpoint, client, period, optional comparison, filters.  Every engine's
answer is turned into the same canonical value (`canon_*`), which is compared with `==`:

- A  utilization              [[app_id, users, c_users, usage_level, category_id, vendor_id], ...]
- B  utilization/departments  [[dept_id, users, c_users, apps, c_apps], ...]
- C  utilization/categories   [[category_id|None, users, c_users, apps, c_apps], ...]
- D  utilization/users        [[user_id, apps, c_apps, days, c_days, [dept ids sorted]], ...]
- E  utilization/summary      {card: [value, compare_value]}
- H  ai/departments           [[dept_id, users, c_users, approved, c_approved, unapproved, c_unapproved], ...]
- J  utilization/trend        {"series": [[start, end, users, apps, complete], ...], "compare_series": ...|None}

Lists are compared in order (the default sort of SPEC §3: the count descending, ties by id
ascending).  `change_pct` is not part of the canonical value: the peers' counts are exact integers
and `change_pct` is a function of them, so it is recomputed here exactly (`change_pct`) and Tally's
own `change_pct` is checked against that formula separately (`check_tally_change_pct`).
A user's `departments` in D are compared as a set (SPEC does not define their order).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction

ENDPOINTS = {
    "A": "utilization",
    "B": "utilization/departments",
    "C": "utilization/categories",
    "D": "utilization/users",
    "E": "utilization/summary",
    "H": "ai/departments",
    "J": "utilization/trend",
}
# filters each endpoint takes (SPEC §3 table)
TAKES = {
    "A": {"is_approved", "category_ids", "vendor_ids", "department_ids"},
    "B": {"is_approved", "category_ids", "vendor_ids"},
    "C": {"is_approved", "vendor_ids", "department_ids"},
    "D": {"is_approved", "category_ids", "vendor_ids", "department_ids"},
    "E": {"is_approved", "category_ids", "vendor_ids", "department_ids"},
    "H": set(),
    "J": {"is_approved", "category_ids", "vendor_ids", "department_ids", "app_ids"},
}
LISTS = {"A", "B", "C", "D", "H"}


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


@dataclass(frozen=True)
class Case:
    endpoint: str                   # A B C D E H J
    client: str
    client_label: str               # "largest" / "median"
    start: dt.date
    end: dt.date
    cstart: dt.date | None = None
    cend: dt.date | None = None
    filter_label: str = "none"
    filters: tuple = ()             # ((name, value), ...) value: bool or tuple of ids
    granularity: str = "weekly"
    newest: dt.date | None = None   # the client's newest activity date (for J's `complete`)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def compare(self) -> bool:
        return self.cstart is not None

    @property
    def name(self) -> str:
        return (f"{self.endpoint} {self.client_label} {self.days}d"
                f"{' cmp' if self.compare else ''} {self.filter_label}")

    def fdict(self) -> dict:
        return dict(self.filters)

    def params(self) -> dict:
        p = {"granularity": self.granularity, "start_date": self.start.isoformat(),
             "end_date": self.end.isoformat()}
        if self.compare:
            p["compare_start_date"] = self.cstart.isoformat()
            p["compare_end_date"] = self.cend.isoformat()
        for k, v in self.filters:
            p[k] = ("true" if v else "false") if isinstance(v, bool) else ",".join(v)
        return p

    def to_json(self) -> dict:
        return {"name": self.name, "endpoint": self.endpoint, "path": ENDPOINTS[self.endpoint],
                "client": self.client, "client_label": self.client_label, "days": self.days,
                "compare": self.compare, "filter": self.filter_label, "params": self.params()}


def build_cases(clients: list[dict], endpoints="ABCDEHJ", lengths=(30, 366)) -> list[Case]:
    """clients: [{"id", "label", "newest": date, "top_department": id|None, "ai_category": id|None}]"""
    cases = []
    for cl in clients:
        newest = cl["newest"]
        for days in lengths:
            start = newest - dt.timedelta(days=days - 1)
            cend = start - dt.timedelta(days=1)
            cstart = cend - dt.timedelta(days=days - 1)
            for cmp in (False, True):
                for ep in endpoints:
                    variants = [("none", ())]
                    if TAKES[ep]:
                        variants.append(("unapproved", (("is_approved", False),)))
                        if "department_ids" in TAKES[ep] and cl.get("top_department"):
                            variants.append(("department", (("department_ids", (cl["top_department"],)),)))
                        elif "category_ids" in TAKES[ep] and cl.get("ai_category"):
                            variants.append(("ai-category", (("category_ids", (cl["ai_category"],)),)))
                    for flabel, filters in variants:
                        cases.append(Case(ep, cl["id"], cl["label"], start, newest,
                                          cstart if cmp else None, cend if cmp else None,
                                          flabel, filters, "weekly", newest))
    return cases


# ---------------------------------------------------------------- numbers

def change_pct(value, compare):
    """(value − compare) / compare × 100, one decimal, half away from zero; None for None or 0."""
    if compare is None or compare == 0 or value is None:
        return None
    x = Fraction(value - compare, compare) * 100
    sign = -1 if x < 0 else 1
    q = (abs(x) * 10 + Fraction(1, 2)).__floor__()
    return sign * q / 10


def usage_level(users: int, user_days: int, days: int) -> str:
    if 7 * user_days >= 3 * users * days:
        return "heavy"
    if 7 * user_days >= 1 * users * days:
        return "medium"
    return "light"


# ---------------------------------------------------------------- trend buckets

def bucket_floor(day: dt.date, g: str) -> dt.date:
    if g == "daily":
        return day
    if g == "weekly":
        return day - dt.timedelta(days=day.weekday())
    if g == "monthly":
        return day.replace(day=1)
    if g == "quarterly":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    raise ValueError(g)


def bucket_next(start: dt.date, g: str) -> dt.date:
    if g == "daily":
        return start + dt.timedelta(days=1)
    if g == "weekly":
        return start + dt.timedelta(days=7)
    months = 1 if g == "monthly" else 3
    m = start.month - 1 + months
    return dt.date(start.year + m // 12, m % 12 + 1, 1)


def buckets(start: dt.date, end: dt.date, g: str, newest: dt.date):
    """[(clipped start, clipped end, calendar start, complete)] for every bucket overlapping the period."""
    out = []
    b = bucket_floor(start, g)
    while b <= end:
        nb = bucket_next(b, g)
        cal_end = nb - dt.timedelta(days=1)
        s, e = max(b, start), min(cal_end, end)
        complete = s == b and e == cal_end and cal_end <= newest
        out.append((s, e, b, complete))
        b = nb
    return out


def trend_series(start, end, g, newest, counts: dict) -> list:
    """counts: {calendar bucket start (date): (users, apps)} -> canonical series."""
    return [[s.isoformat(), e.isoformat(), *counts.get(b, (0, 0)), complete]
            for s, e, b, complete in buckets(start, end, g, newest)]


# ---------------------------------------------------------------- Tally's JSON -> canonical

def _m(x):
    return [x["value"], x["compare_value"]]


def canon_tally(case: Case, body) -> object:
    ep = case.endpoint
    if ep == "A":
        return [[r["app"]["id"], *_m(r["unique_users"]), r["usage_level"],
                 (r["category"] or {}).get("id"), (r["vendor"] or {}).get("id")] for r in body]
    if ep == "B":
        return [[r["department"]["id"], *_m(r["user_count"]), *_m(r["app_count"])] for r in body]
    if ep == "C":
        return [[(r["category"] or {}).get("id"), *_m(r["user_count"]), *_m(r["app_count"])] for r in body]
    if ep == "D":
        return [[r["user"]["id"], *_m(r["app_count"]), *_m(r["active_days"]),
                 sorted(x["id"] for x in r["user"]["departments"])] for r in body]
    if ep == "H":
        return [[r["department"]["id"], *_m(r["user_count"]), *_m(r["approved_user_count"]),
                 *_m(r["unapproved_user_count"])] for r in body]
    if ep == "E":
        return {k: _m(body[k]) for k in E_CARDS}
    if ep == "J":
        def ser(s):
            if s is None:
                return None
            return [[x["bucket_start"], x["bucket_end"], x["unique_users"], x["app_count"], x["complete"]] for x in s]
        return {"series": ser(body["series"]), "compare_series": ser(body["compare_series"])}
    raise ValueError(ep)


E_CARDS = ["unique_users", "app_count", "approved_app_count", "unapproved_app_count", "unapproved_user_count"]


def metrics_of(body, ep):
    """Every MetricWithDelta in an answer (for the change_pct check)."""
    out = []
    if ep == "E":
        return [body[k] for k in E_CARDS]
    for r in body:
        for v in r.values():
            if isinstance(v, dict) and "change_pct" in v:
                out.append(v)
    return out


def check_tally_change_pct(case: Case, body) -> list[str]:
    problems = []
    if case.endpoint == "J":
        return problems
    for m in metrics_of(body, case.endpoint):
        want = change_pct(m["value"], m["compare_value"])
        got = m["change_pct"]
        if (want is None) != (got is None) or (want is not None and abs(float(want) - float(got)) > 1e-9):
            problems.append(f"change_pct {got} for value {m['value']} vs compare {m['compare_value']}, expected "
                            f"{None if want is None else float(want)}")
        if not case.compare and m["compare_value"] is not None:
            problems.append(f"compare_value {m['compare_value']} without a comparison period")
    return problems


# ---------------------------------------------------------------- SQL rows -> canonical

def _i(x):
    return None if x is None else int(x)


def canon_sql(case: Case, rows) -> object:
    ep = case.endpoint
    if ep == "A":   # id, users, user_days, c_users, category_id, vendor_id, usage_level
        return [[r[0], _i(r[1]), _i(r[3]), r[6], r[4], r[5]] for r in rows]
    if ep in ("B", "C"):   # id, users, apps, c_users, c_apps
        return [[r[0], _i(r[1]), _i(r[3]), _i(r[2]), _i(r[4])] for r in rows]
    if ep == "D":   # id, apps, days, c_apps, c_days, depts
        return [[r[0], _i(r[1]), _i(r[3]), _i(r[2]), _i(r[4]), sorted(r[5].split(",")) if r[5] else []]
                for r in rows]
    if ep == "H":   # id, users, approved, unapproved, c_users, c_approved, c_unapproved
        return [[r[0], _i(r[1]), _i(r[4]), _i(r[2]), _i(r[5]), _i(r[3]), _i(r[6])] for r in rows]
    if ep == "E":
        (r,) = rows
        return {k: [_i(r[i]), _i(r[i + 5])] for i, k in enumerate(E_CARDS)}
    if ep == "J":
        per = {"p": {}, "c": {}}
        for tag, b, users, apps in rows:
            per[tag][d(str(b)[:10])] = (int(users), int(apps))
        out = {"series": trend_series(case.start, case.end, case.granularity, case.newest, per["p"]),
               "compare_series": None}
        if case.compare:
            out["compare_series"] = trend_series(case.cstart, case.cend, case.granularity, case.newest, per["c"])
        return out
    raise ValueError(ep)


def first_difference(want, got, path="") -> str | None:
    """A short description of the first place two canonical answers differ."""
    if type(want) is not type(got):
        return f"{path or 'answer'}: expected {want!r}, got {got!r}"
    if isinstance(want, dict):
        for k in want:
            r = first_difference(want[k], got.get(k), f"{path}.{k}")
            if r:
                return r
        return None
    if isinstance(want, list):
        if want and isinstance(want[0], list) or got and isinstance(got[0], list):
            for i, (a, b) in enumerate(zip(want, got)):
                if a != b:
                    return f"{path}[{i}]: expected {a}, got {b}"
            if len(want) != len(got):
                extra = want[len(got):len(got) + 1] or got[len(want):len(want) + 1]
                return f"{path}: expected {len(want)} rows, got {len(got)} (first extra/missing: {extra})"
            return None
        return None if want == got else f"{path}: expected {want}, got {got}"
    return None if want == got else f"{path}: expected {want!r}, got {got!r}"
