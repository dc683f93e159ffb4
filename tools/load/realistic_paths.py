#!/usr/bin/env python3
"""Writes the request paths of the realistic dashboard mix (issue 16): what people do with the
dashboard after its first load, against one client of a running `tally serve`.

Beside the first-page mix of tools/load/dashboard.lua (A–J over four fixed periods), these
requests use department filters, category and approval filters, non-default sorts and orders,
second and third pages reached through the cursors the server gave, and periods of 7, 30, 90 and
366 days ending at the client's newest day (half of them with the period before as comparison).
Every path is fetched once here and kept only if it answers 200, so a load run measures answers,
not refusals. The paths go to a file, one per line; dashboard.lua reads it (TALLY_PATHS).

  python3 tools/load/realistic_paths.py --url http://127.0.0.1:8080 --client ID --count 400 --out FILE
"""
import argparse
import datetime
import json
import random
import urllib.parse
import urllib.request

AUTH = {"Authorization": "Bearer YOUR_API_TOKEN"}

# Dashboard endpoints: (path, takes department_ids, takes category_ids, takes is_approved, sorts
# (the default first)). Every request gives a granularity (most endpoints require one).
ENDPOINTS = [
    ("utilization/summary", True, True, True, []),
    ("utilization", True, True, True, ["unique_users", "canonical_name"]),
    ("utilization/departments", False, True, True, ["user_count", "app_count", "name"]),
    ("utilization/categories", True, False, True, ["user_count", "app_count", "name"]),
    ("utilization/users", True, True, True, ["app_count", "active_days", "email"]),
    ("utilization/trend", True, True, True, []),
    ("ai/users/summary", True, False, False, []),
    ("ai/users", False, False, False, ["user_count", "canonical_name"]),
    ("ai/departments", False, False, False, ["user_count", "approved_user_count", "unapproved_user_count", "name"]),
    ("ai/new", False, False, True, ["first_seen_date", "unique_users", "canonical_name"]),
]


def get(url, path):
    req = urllib.request.Request(url + path, headers=AUTH)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--count", type=int, default=400, help="paths to write (default 400)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    r = random.Random(a.seed)
    base = f"/v2/clients/{a.client}/analytics/apps/"
    status, doc = get(a.url, "/v2/status")
    newest = next(c["newest_date"] for c in doc["client_list"] if c["id"] == a.client)
    end = datetime.date.fromisoformat(newest)
    _, deps = get(a.url, f"/v2/clients/{a.client}/departments?page_size=200")
    departments = [d["department"]["id"] for d in deps["data"]]
    start = (end - datetime.timedelta(days=365)).isoformat()
    _, cats = get(a.url, base + f"utilization/categories?start_date={start}&end_date={end}&granularity=monthly&page_size=200")
    categories = [c["category"]["id"] for c in cats["data"] if c.get("category")]
    paths, kinds = [], {"filtered": 0, "sorted": 0, "page 2": 0, "page 3": 0}
    while len(paths) < a.count:
        name, dep, cat, appr, sorts = r.choice(ENDPOINTS)
        days = r.choice([7, 30, 90, 366])
        s = end - datetime.timedelta(days=days - 1)
        q = [("start_date", s.isoformat()), ("end_date", end.isoformat())]
        if r.random() < 0.5:
            ce = s - datetime.timedelta(days=1)
            q += [("compare_start_date", (ce - datetime.timedelta(days=days - 1)).isoformat()), ("compare_end_date", ce.isoformat())]
        gran = "daily" if days <= 30 else "weekly" if days <= 90 else "monthly"
        q.append(("granularity", gran))
        filtered = False
        if dep and departments and r.random() < 0.35:
            q.append(("department_ids", ",".join(r.sample(departments, min(len(departments), r.choice([1, 1, 2]))))))
            filtered = True
        if cat and categories and r.random() < 0.2:
            q.append(("category_ids", ",".join(r.sample(categories, min(len(categories), r.choice([1, 2]))))))
            filtered = True
        if appr and r.random() < 0.25:
            q.append(("is_approved", r.choice(["true", "false"])))
            filtered = True
        sorted_ = False
        if sorts:
            if r.random() < 0.5:
                q.append(("sort_by", r.choice(sorts[1:] or sorts)))
                sorted_ = True
            if r.random() < 0.3:
                q.append(("sort_order", r.choice(["asc", "desc"])))
                sorted_ = True
            q.append(("page_size", "20"))
        path = base + name + "?" + urllib.parse.urlencode(q)
        status, body = get(a.url, path)
        if status != 200:
            continue
        paths.append(path)
        kinds["filtered"] += filtered
        kinds["sorted"] += sorted_
        # Half of the lists are paged on: the second page, and for some the third.
        cursor = body.get("next_cursor") if sorts else None
        for page in (2, 3):
            if not cursor or r.random() < 0.5 or len(paths) >= a.count:
                break
            next_path = path + "&" + urllib.parse.urlencode([("cursor", cursor)])
            status, body = get(a.url, next_path)
            if status != 200:
                break
            paths.append(next_path)
            kinds[f"page {page}"] += 1
            cursor = body.get("next_cursor")
    with open(a.out, "w") as f:
        f.write("\n".join(paths) + "\n")
    print(f"realistic_paths: {len(paths)} paths to {a.out} ({', '.join(f'{v} {k}' for k, v in kinds.items())})")


if __name__ == "__main__":
    main()
