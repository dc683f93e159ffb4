#!/usr/bin/env python3
"""The first requests after a merge (issue 14): queries that read values derived on first use
from a client's base index — the category list under an approval filter (per-category unions of
the approved apps), the users list by active days under it (user days), the users list by app
count over 30 days ending on the newest day under it (pair recency) — timed over HTTP against a
running `tally serve --wal` (loopback only):

1. each query twice (the first derives, the second reads what was derived);
2. newest-day rows of the client posted (they go into its tail), then the tail merged by age
   (start the server with TALLY_MERGE_AFTER_SECONDS=3), waited for on `/readyz` (`delta_rows` 0);
3. each query again, first and second request after the merge.

Before merges made these values again for the merged base, the first request of each after every
merge paid the derivation again.

Usage: python3 tools/load/merge_warm.py --port P --dump DIR [--rounds 3]"""
import argparse
import http.client
import json
import random
import statistics
import time

from append_bench import largest_client

TOKEN = {"Authorization": "Bearer YOUR_API_TOKEN"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    client, users, apps = largest_client(a.dump)
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)

    def get(path):
        t = time.perf_counter()
        conn.request("GET", path, headers=TOKEN)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return json.loads(body), (time.perf_counter() - t) * 1000

    newest = get(f"/v2/clients/{client}/users?page_size=1")[0]["as_of"]
    end = newest
    y, m, d = (int(x) for x in end.split("-"))
    import datetime
    start90 = (datetime.date(y, m, d) - datetime.timedelta(days=89)).isoformat()
    start30 = (datetime.date(y, m, d) - datetime.timedelta(days=29)).isoformat()
    base = f"/v2/clients/{client}/analytics/apps/utilization"
    queries = {
        "C, is_approved=true, 90 days": f"{base}/categories?start_date={start90}&end_date={end}&granularity=weekly&is_approved=true",
        "D by active_days, is_approved=true, 90 days": f"{base}/users?start_date={start90}&end_date={end}&granularity=weekly&is_approved=true&sort_by=active_days",
        "D by app_count, is_approved=true, 30 days": f"{base}/users?start_date={start30}&end_date={end}&granularity=daily&is_approved=true",
    }

    def ready():
        conn.request("GET", "/readyz")
        r = conn.getresponse()
        return json.loads(r.read())

    rnd = random.Random(11)
    first_after = {k: [] for k in queries}
    second_after = {k: [] for k in queries}
    for k, q in queries.items():
        t1 = get(q)[1]
        t2 = get(q)[1]
        print(f"{k}: first request {t1:.2f} ms, second {t2:.2f} ms", flush=True)
    for round in range(a.rounds):
        batch = [{"user_id": rnd.choice(users), "application_id": rnd.choice(apps), "activity_date": newest} for _ in range(1000)]
        conn.request("POST", f"/v2/clients/{client}/usage-events", body=json.dumps(batch).encode(),
                     headers={**TOKEN, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
        assert ready()["delta_rows"] > 0, "the rows did not go into a tail"
        waited = time.perf_counter()
        while ready()["delta_rows"] > 0:
            assert time.perf_counter() - waited < 120, "no merge within 120 s (TALLY_MERGE_AFTER_SECONDS=3?)"
            time.sleep(0.05)
        for k, q in queries.items():
            first_after[k].append(get(q)[1])
            second_after[k].append(get(q)[1])
    for k in queries:
        f, s = first_after[k], second_after[k]
        print(f"after {a.rounds} merges, {k}: first request median {statistics.median(f):.2f} ms "
              f"(largest {max(f):.2f}), second {statistics.median(s):.2f} ms", flush=True)


if __name__ == "__main__":
    main()
