#!/usr/bin/env python3
"""Walks every page of lists through their cursors against a fresh `tally serve` (started on
loopback and stopped): the first visit of each page at every depth, before any cache holds its
list. Prints, per list, the number of pages and the median, p99 and maximum time of a page.

  python3 tools/load/walk_pages.py --tally .build-release/release/tally --snapshot FILE \\
      [--lists 'utilization/users?sort_by=app_count&sort_order=desc' ...] [--page-size 50] [--days 366]

Each list is a path under /v2/clients/{client}/analytics/apps/ (the snapshot's largest client) with its query;
the period is the last `--days` days ending on the client's newest day.
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
    a = ap.parse_args()
    with served_snapshot(a.tally, a.snapshot, a.port):
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
        status, _ = get(c, "/v2/status")
        largest = max(status["client_list"], key=lambda x: x["usage_rows"])
        client = largest["id"]
        end = datetime.date.fromisoformat(largest["newest_date"])
        start = end - datetime.timedelta(days=a.days - 1)
        for lst in a.lists:
            path, _, query = lst.partition("?")
            params = dict(urllib.parse.parse_qsl(query))
            params.update({"granularity": "weekly", "page_size": str(a.page_size), "start_date": start.isoformat(), "end_date": end.isoformat()})
            times, pages, cursor = [], 0, None
            while pages < 100_000:
                p = dict(params)
                if cursor:
                    p["cursor"] = cursor
                doc, dt = get(c, f"/v2/clients/{client}/analytics/apps/{path}?" + urllib.parse.urlencode(p))
                times.append(dt * 1000)
                pages += 1
                cursor = doc.get("next_cursor")
                if not cursor:
                    break
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{lst:60s} {pages:4d} pages  median {statistics.median(times):6.2f} ms  "
                  f"p99 {p99:6.2f} ms  max {times[-1]:6.2f} ms")


if __name__ == "__main__":
    main()
