"""A third, independent answer by brute force on the raw rows (plain Python sets), used to decide
which side is wrong when an engine and Tally disagree.  Slow (it reads the client's rows with the
csv module), so it only runs on a disagreement, or on every query with --brute on small dumps."""
from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict

from .spec import Case, E_CARDS, trend_series, bucket_floor, usage_level


class Reference:
    def __init__(self, prepared):
        self.p = prepared
        dims = prepared.dims
        self.apps = {r[0]: r for r in dims["apps"]}                   # id, client, catalog, approved, fav
        self.catalog = {r[0]: r for r in dims["catalog_applications"]}  # id, name, logo, type, category, vendor
        self.categories = {r[0]: r for r in dims["catalog_categories"]}  # id, name, is_ai
        self.dept_client = {r[0]: r[1] for r in dims["departments"]}
        self.user_depts = defaultdict(set)
        for u, dpt in dims["user_departments"]:
            self.user_depts[u].add(dpt)
        self.rows = {}

    def client_rows(self, client: str):
        if client not in self.rows:
            s = set()
            for f in self.p.usage_files:
                with open(f, newline="", encoding="utf-8") as fh:
                    r = csv.reader(fh)
                    h = next(r)
                    ic, iu, ia, idd = (h.index(c) for c in ("client_id", "user_id", "application_id", "activity_date"))
                    for rec in r:
                        if rec and rec[ic].lower() == client:
                            s.add((rec[iu].lower(), rec[ia].lower(), dt.date.fromisoformat(rec[idd])))
            self.rows[client] = s
        return self.rows[client]

    def _keep(self, c: Case):
        f = c.fdict()
        depts = set(f.get("department_ids", ()))
        depts = {x for x in depts if self.dept_client.get(x) == c.client}

        def keep(u, a):
            app = self.apps[a]
            cat = self.catalog[app[2]]
            if "is_approved" in f and app[3] != f["is_approved"]:
                return False
            if "category_ids" in f and cat[4] not in f["category_ids"]:
                return False
            if "vendor_ids" in f and cat[5] not in f["vendor_ids"]:
                return False
            if "app_ids" in f and a not in f["app_ids"]:
                return False
            if "department_ids" in f and not (self.user_depts.get(u, set()) & depts):
                return False
            return True
        return keep

    def _period(self, c: Case, start, end):
        keep = self._keep(c)
        return [(u, a, day) for (u, a, day) in self.client_rows(c.client) if start <= day <= end and keep(u, a)]

    def _is_ai(self, a):
        cat = self.catalog[self.apps[a][2]][4]
        return cat is not None and self.categories.get(cat, (None, None, False))[2]

    def answer(self, c: Case):
        ep = c.endpoint
        P = self._period(c, c.start, c.end)
        C = self._period(c, c.cstart, c.cend) if c.compare else None

        def group(rows, key, metrics):
            g = defaultdict(lambda: [set() for _ in metrics])
            for r in rows:
                for k in key(r):
                    for i, m in enumerate(metrics):
                        v = m(r)
                        if v is not None:
                            g[k][i].add(v)
            return {k: [len(s) for s in v] for k, v in g.items()}

        def listing(key, metrics, sort_index=0, extra=lambda k: []):
            p = group(P, key, metrics)
            cm = group(C, key, metrics) if C is not None else {}
            out = []
            for k, v in p.items():
                cv = cm.get(k)
                row = [k]
                for i in range(len(metrics)):
                    row += [v[i], None if cv is None else cv[i]]
                out.append(row + extra(k))
            out.sort(key=lambda r: (-r[1 + 2 * sort_index], r[0] is None, r[0] or ""))
            return out

        udept = lambda r: [x for x in self.user_depts.get(r[0], ()) if self.dept_client.get(x) == c.client]
        if ep == "A":
            p = group(P, lambda r: [r[1]], [lambda r: r[0], lambda r: (r[0], r[2])])
            cm = group(C, lambda r: [r[1]], [lambda r: r[0]]) if C is not None else {}
            out = []
            for a, (users, udays) in p.items():
                cat = self.catalog[self.apps[a][2]]
                out.append([a, users, cm[a][0] if a in cm else None, usage_level(users, udays, c.days), cat[4], cat[5]])
            out.sort(key=lambda r: (-r[1], r[0]))
            return out
        if ep == "B":
            return listing(udept, [lambda r: r[0], lambda r: r[1]])
        if ep == "C":
            return listing(lambda r: [self.catalog[self.apps[r[1]][2]][4]], [lambda r: r[0], lambda r: r[1]])
        if ep == "D":
            return listing(lambda r: [r[0]], [lambda r: r[1], lambda r: r[2]],
                           extra=lambda u: [sorted(x for x in self.user_depts.get(u, ())
                                                   if self.dept_client.get(x) == c.client)])
        if ep == "H":
            P = [r for r in P if self._is_ai(r[1])]
            C = [r for r in C if self._is_ai(r[1])] if C is not None else None
            appr = lambda r: self.apps[r[1]][3]
            return listing(udept, [lambda r: r[0], lambda r: r[0] if appr(r) else None,
                                   lambda r: r[0] if not appr(r) else None])
        if ep == "E":
            def cards(rows):
                appr = lambda r: self.apps[r[1]][3]
                return [len({r[0] for r in rows}), len({r[1] for r in rows}),
                        len({r[1] for r in rows if appr(r)}), len({r[1] for r in rows if not appr(r)}),
                        len({r[0] for r in rows if not appr(r)})]
            pv = cards(P)
            cv = cards(C) if C is not None else [None] * 5
            return {k: [pv[i], cv[i]] for i, k in enumerate(E_CARDS)}
        if ep == "J":
            def series(rows, s, e):
                g = defaultdict(lambda: (set(), set()))
                for u, a, day in rows:
                    b = bucket_floor(day, c.granularity)
                    g[b][0].add(u)
                    g[b][1].add(a)
                return trend_series(s, e, c.granularity, c.newest, {k: (len(v[0]), len(v[1])) for k, v in g.items()})
            return {"series": series(P, c.start, c.end),
                    "compare_series": series(C, c.cstart, c.cend) if C is not None else None}
        raise ValueError(ep)
