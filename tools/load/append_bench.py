#!/usr/bin/env python3
"""Append throughput with fsync: N connections post batches of B usage events to a running
`tally serve --wal` (loopback only) for a bounded time; prints rows/s, batches/s and the p50/p99
acknowledgement time (each acknowledgement means: in the write-ahead log, fdatasync'ed, applied).

Usage: python3 tools/load/append_bench.py --port P --dump DIR [--connections 8] [--batch 100] [--seconds 10]
The dump folder (plain or .lz4 CSV as `tally generate` writes) gives the client, users and apps."""
import argparse
import csv
import datetime
import http.client
import io
import json
import os
import subprocess
import threading
import time


def read_table(folder, name):
    for suffix in (".csv", ".csv.lz4"):
        path = os.path.join(folder, name + suffix)
        if os.path.exists(path):
            data = open(path, "rb").read() if suffix == ".csv" else subprocess.run(["lz4", "-dc", path], capture_output=True, check=True).stdout
            return list(csv.DictReader(io.StringIO(data.decode())))
    raise SystemExit(f"no {name} table in {folder}")


def users_and_apps(folder):
    """Each client's user ids and app ids in a dump folder: {client_id: [users, apps]}."""
    by_client = {}
    for u in read_table(folder, "users"):
        by_client.setdefault(u["client_id"], [[], []])[0].append(u["id"])
    for x in read_table(folder, "apps"):
        by_client.setdefault(x["client_id"], [[], []])[1].append(x["id"])
    return by_client


def largest_client(folder):
    """The dump's client with the most users: (client_id, its user ids, its app ids)."""
    by_client = users_and_apps(folder)
    client = max(by_client, key=lambda c: len(by_client[c][0]))
    return client, by_client[client][0], by_client[client][1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--client", help="client id (default: the one with the fewest users that has at least 50 and 20 apps)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    by_client = users_and_apps(a.dump)
    client = a.client or min((c for c, (us, ps) in by_client.items() if len(us) >= 50 and len(ps) >= 20),
                             key=lambda c: len(by_client[c][0]))
    us, ps = by_client[client]
    latencies, rows, errors = [], [0], []
    lock = threading.Lock()
    stop = time.time() + a.seconds
    start_day = datetime.date(2026, 4, 1)

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        n = k * 1_000_000
        while time.time() < stop:
            events = []
            for _ in range(a.batch):
                events.append({"user_id": us[n % len(us)], "application_id": ps[(n // len(us)) % len(ps)],
                               "activity_date": str(start_day - datetime.timedelta(days=(n // (len(us) * len(ps))) % 300))})
                n += 1
            body = json.dumps({"events": events})
            t0 = time.perf_counter()
            conn.request("POST", f"/v2/clients/{client}/usage-events", body,
                         {"Authorization": "Bearer YOUR_API_TOKEN", "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            dt = time.perf_counter() - t0
            with lock:
                if r.status == 200:
                    latencies.append(dt)
                    rows[0] += a.batch
                else:
                    errors.append(r.status)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.time() - t0
    lat = sorted(latencies)
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")
    print(f"appends to client {client} ({len(us)} users, {len(ps)} apps): {a.connections} connections × batches of {a.batch}, {secs:.1f} s")
    print(f"  {rows[0]} rows in {len(lat)} batches: {rows[0] / secs:,.0f} rows/s, {len(lat) / secs:,.1f} batches/s; "
          f"acknowledgement p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms; {len(errors)} errors")


if __name__ == "__main__":
    main()
