#!/usr/bin/env python3
"""Department-filtered queries before and after a move (issue 14): against a running `tally serve
--wal` on a dump's largest client (loopback only), times A (30 days), J (366 days, weekly) and C
(90 days) under the client's first department and the department list E (30 days), 40 requests
each over one keep-alive connection; posts one membership of a held user (a move, which marks
the index's department masks stale until a merge); then times them again at once, and E ten
times a second for --follow seconds (the merge that stale masks start).

  python3 tools/load/stale_masks.py --port P --dump DIR [--follow 16]
"""
import argparse
import http.client
import json
import statistics
import sys
import time

from append_bench import largest_client, read_table

TOKEN = {"Authorization": "Bearer YOUR_API_TOKEN"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--follow", type=float, default=16)
    a = ap.parse_args()
    client, users, _ = largest_client(a.dump)
    deps = [d["id"] for d in read_table(a.dump, "departments") if d["client_id"] == client]
    held = {(m["user_id"], m["department_id"]) for m in read_table(a.dump, "user_departments")}
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)

    def get(path):
        t = time.perf_counter()
        c.request("GET", path, headers=TOKEN)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:200])
        return (time.perf_counter() - t) * 1000

    base = f"/v2/clients/{client}/analytics/apps"
    d = deps[0]
    queries = {
        "A 30 d": f"{base}/utilization?start_date=2025-12-03&end_date=2026-01-01&granularity=monthly&department_ids={d}&page_size=50",
        "J 366 d weekly": f"{base}/utilization/trend?start_date=2025-01-01&end_date=2026-01-01&granularity=weekly&department_ids={d}",
        "C 90 d": f"{base}/utilization/categories?start_date=2025-10-04&end_date=2026-01-01&granularity=monthly&department_ids={d}",
        "E 30 d": f"{base}/utilization/departments?start_date=2025-12-03&end_date=2026-01-01&granularity=monthly",
    }

    def run(label):
        for k, p in queries.items():
            ts = [get(p) for _ in range(40)]
            print(f"{label:12} {k:16} p50 {statistics.median(ts):.2f} ms  max {max(ts):.2f} ms", flush=True)

    run("masks")
    user, dept = next((u, x) for u in users for x in deps if (u, x) not in held)
    body = json.dumps({"user_departments": [{"user_id": user, "department_id": dept}], "events": []}).encode()
    t0 = time.perf_counter()
    c.request("POST", f"/v2/clients/{client}/usage-events", body=body, headers={**TOKEN, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
    print(f"move acknowledged in {(time.perf_counter() - t0) * 1000:.1f} ms", flush=True)
    run("stale masks")
    while time.perf_counter() - t0 < a.follow:
        ts = [get(queries["E 30 d"]) for _ in range(10)]
        print(f"t={time.perf_counter() - t0:5.1f} s: E p50 {statistics.median(ts):.2f} ms", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
