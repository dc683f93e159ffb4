#!/usr/bin/env python3
"""Walks every page of lists through their cursors against a fresh `tally serve` (started on
loopback and stopped): the first visit of each page at every depth, before any cache holds its
list. Prints, per list, the number of pages and the median, p99 and maximum time of a page.

  python3 tools/load/walk_pages.py --tally .build-release/release/tally --snapshot FILE \\
      [--lists 'utilization/users?sort_by=app_count&sort_order=desc' ...] [--page-size 50] [--days 366]

Each list is a path under /v2/clients/{client}/analytics/apps/ (the snapshot's largest client) with its query;
the period is the last `--days` days ending on the client's newest day. A list starting with `/`
is a path under /v2/clients/{client} taken as it is, with only `page_size` added (the directory
and insight lists of SPEC §3b: `/users?sort_by=email`, `/analytics/users/champions?report_interval=30`).
`--reports` walks every §3b list in every sort and order, with and without filters; `--dashboards`
every list of A, C and D the same way.
"""
import argparse
import datetime
import http.client
import json
import statistics
import time
import urllib.parse

from served import served_snapshot

AUTH = {"Authorization": "Bearer YOUR_API_TOKEN"}
DEFAULT_LISTS = [
    "utilization/users?sort_by=app_count&sort_order=desc",
    "utilization/users?sort_by=app_count&sort_order=asc",
    "utilization/users?sort_by=app_count&sort_order=desc&is_approved=true",
    "utilization/users?sort_by=app_count&sort_order=asc&is_approved=true",
]


def dashboard_lists(department, category):
    """Every paged list of A, C and D in every sort and order, without a filter and under each
    kind: approval, the client's first department, one category."""
    sorts = {"utilization": ("unique_users", "canonical_name"), "utilization/categories": ("user_count", "app_count", "name"),
             "utilization/users": ("app_count", "active_days", "email")}
    filters = ("", "&is_approved=true", f"&department_ids={department}", f"&category_ids={category}")
    return [f"{path}?sort_by={s}&sort_order={o}{f}" for path, ss in sorts.items() for s in ss for o in ("desc", "asc") for f in filters]


def report_lists(department, category):
    """Every paged list of SPEC §3b in every sort and order: K with and without filters, M1, and
    O, P, Q for each interval, unfiltered and under an approval or category filter."""
    out = []
    for sort in ("email", "display_name", "created_at", "last_active_date"):
        for order in ("asc", "desc"):
            out.append(f"/users?sort_by={sort}&sort_order={order}")
    out += ["/users?is_active=true&sort_by=last_active_date", f"/users?department_id={department}",
            "/users?has_department=false", "/users?q=user1&sort_by=display_name"]
    for sort in ("name", "member_count", "active_member_count"):
        for order in ("asc", "desc"):
            out.append(f"/departments?sort_by={sort}&sort_order={order}")
    for n in (30, 60, 90):
        out += [f"/analytics/users/champions?report_interval={n}&sort_order={o}" for o in ("desc", "asc")]
        out.append(f"/analytics/users/champions?report_interval={n}&is_approved=true")
    for n in (7, 14, 30):
        out += [f"/analytics/users/churn?report_interval={n}&sort_by={s}" for s in ("last_active_date", "days_inactive")]
        out.append(f"/analytics/users/churn?report_interval={n}&category_ids={category}")
    for n in ("weekly", "monthly"):
        out += [f"/analytics/users/reengagement?report_interval={n}&sort_by={s}" for s in ("days_inactive", "reengaged_on")]
        out.append(f"/analytics/users/reengagement?report_interval={n}&is_approved=false")
    return out


def get(c, path):
    t = time.perf_counter()
    c.request("GET", path, headers=AUTH)
    r = c.getresponse()
    body = r.read()
    dt = time.perf_counter() - t
    if r.status != 200:
        raise SystemExit(f"{path}: {r.status} {body[:200]!r}")
    return json.loads(body), dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tally", required=True)
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--lists", nargs="*", default=DEFAULT_LISTS)
    ap.add_argument("--page-size", type=int, default=50)
    ap.add_argument("--days", type=int, default=366)
    ap.add_argument("--port", type=int, default=18791)
    ap.add_argument("--reports", action="store_true", help="walk every list of SPEC §3b instead (see report_lists)")
    ap.add_argument("--dashboards", action="store_true", help="walk every list of A, C and D instead (see dashboard_lists)")
    a = ap.parse_args()
    with served_snapshot(a.tally, a.snapshot, a.port):
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
        status, _ = get(c, "/v2/status")
        largest = max(status["client_list"], key=lambda x: x["usage_rows"])
        client = largest["id"]
        end = datetime.date.fromisoformat(largest["newest_date"])
        start = end - datetime.timedelta(days=a.days - 1)
        lists = a.lists
        if a.reports or a.dashboards:
            deps, _ = get(c, f"/v2/clients/{client}/departments?page_size=1")
            cats, _ = get(c, f"/v2/clients/{client}/analytics/apps/utilization/categories?start_date={start}&end_date={end}&granularity=monthly")
            category = next(x["category"]["id"] for x in cats["data"] if x.get("category"))
            lists = (report_lists if a.reports else dashboard_lists)(deps["data"][0]["department"]["id"], category)
        failed = []
        for lst in lists:
            path, _, query = lst.partition("?")
            params = dict(urllib.parse.parse_qsl(query))
            if path.startswith("/"):
                params["page_size"] = str(a.page_size)
            else:
                params.update({"granularity": "weekly", "page_size": str(a.page_size), "start_date": start.isoformat(), "end_date": end.isoformat()})
            times, pages, cursor = [], 0, None
            while pages < 100_000:
                p = dict(params)
                if cursor:
                    p["cursor"] = cursor
                base = f"/v2/clients/{client}{path}" if path.startswith("/") else f"/v2/clients/{client}/analytics/apps/{path}"
                doc, dt = get(c, base + "?" + urllib.parse.urlencode(p))
                times.append(dt * 1000)
                pages += 1
                cursor = doc.get("next_cursor")
                if not cursor:
                    break
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{lst:60s} {pages:4d} pages  median {statistics.median(times):6.2f} ms  "
                  f"p99 {p99:6.2f} ms  max {times[-1]:6.2f} ms", flush=True)
            if p99 > 2:
                failed.append(lst)
        print(f"{len(lists) - len(failed)} of {len(lists)} lists with every page within 2 ms at p99"
              + (": over it " + ", ".join(failed) if failed else ""))


if __name__ == "__main__":
    main()
