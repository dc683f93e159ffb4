#!/usr/bin/env python3
"""Times each path of a paths file (tools/load/realistic_paths.py) one at a time against a
running `tally serve` — best of three, over one keep-alive connection — and prints the slowest
and each endpoint's median and maximum, with what the slow ones have in common (period length,
filters, sort, cursor page). Loopback only; one pass over the file.

  python3 tools/load/profile_paths.py --port 8080 --paths FILE [--top 25]
"""
import argparse
import collections
import datetime
import http.client
import re
import statistics
import time

AUTH = {"Authorization": "Bearer YOUR_API_TOKEN"}


def describe(path):
    endpoint = path.split("/analytics/apps/")[1].split("?")[0]
    q = path.split("?", 1)[1]
    m = re.search(r"start_date=([\d-]+)&end_date=([\d-]+)", q)
    days = (datetime.date.fromisoformat(m.group(2)) - datetime.date.fromisoformat(m.group(1))).days + 1
    features = [name for key, name in (("department_ids", "department"), ("category_ids", "category"),
                                       ("is_approved", "approval")) if key in q]
    sort = re.search(r"sort_by=(\w+)", q)
    if sort:
        features.append("sort=" + sort.group(1))
    if "cursor=" in q:
        features.append("next page")
    return endpoint, days, "+".join(features) or "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--paths", required=True)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    paths = [line.strip() for line in open(a.paths) if line.strip()]
    c = http.client.HTTPConnection("127.0.0.1", a.port)
    rows = []
    for p in paths:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            c.request("GET", p, headers=AUTH)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"{r.status} for {p}")
            best = min(best, time.perf_counter() - t)
        rows.append((best * 1000,) + describe(p))
    rows.sort(reverse=True)
    print(f"slowest {a.top} of {len(rows)} (ms, best of 3; endpoint, days, what it asks):")
    for ms, endpoint, days, features in rows[:a.top]:
        print(f"{ms:8.2f}  {endpoint:26} {days:4}  {features}")
    by = collections.defaultdict(list)
    for ms, endpoint, _, _ in rows:
        by[endpoint].append(ms)
    print("per endpoint: requests, median ms, max ms")
    for endpoint, v in sorted(by.items(), key=lambda x: -max(x[1])):
        print(f"{endpoint:26} {len(v):4} {statistics.median(v):8.2f} {max(v):8.2f}")


if __name__ == "__main__":
    main()
