#!/usr/bin/env python3
"""What appends and reloads cost in resident memory, without queries (issue 15's soak, taken
apart): serves the scale-M snapshot (made by soak.py under /tmp) with a write-ahead log on
loopback, appends 50-event batches over HTTP to 20 of its clients as fast as one connection
goes, and prints the server's resident size after every 250 batches and after a reload that
follows every 1,000 (the snapshot again, the log replayed onto it).

  python3 tools/load/append_memory.py [--tally .build-release/release/tally] [--rounds 3]
"""
import argparse
import os
import random
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import ROOT, call, free_port, rss_mib  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build-release/release/tally"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    snap = "/tmp/tally-soak-M.tsnap"
    if not os.path.exists(snap):
        sys.exit("run tools/load/soak.py once first: it makes " + snap)
    wal = f"/tmp/tally-append-memory-{os.getpid()}.wal"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([a.tally, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-binary", "--snapshot", snap,
                               "--wal", wal, "--access-log", "errors"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=1).read()
                break
            except Exception:
                time.sleep(0.1)
        _, body = call(url + "/v2/status")
        clients = sorted(body["client_list"], key=lambda c: -c["usage_rows"])
        targets = []
        for c in clients[1:21]:
            q = "?granularity=monthly&start_date=2025-04-01&end_date=2026-03-31&page_size=50"
            s1, users = call(f"{url}/v2/clients/{c['id']}/analytics/apps/utilization/users{q}")
            s2, apps = call(f"{url}/v2/clients/{c['id']}/analytics/apps/utilization{q}")
            if s1 == 200 and s2 == 200 and users["data"] and apps["data"]:
                targets.append((c["id"], [u["user"]["id"] for u in users["data"]], [x["app"]["id"] for x in apps["data"]], c["newest_date"]))
        r = random.Random(1)
        print(f"start: {rss_mib(server.pid):.0f} MiB", flush=True)
        for n in range(a.rounds):
            for _ in range(4):
                for _ in range(250):
                    cid, users, apps, newest = r.choice(targets)
                    ev = [{"user_id": r.choice(users), "application_id": r.choice(apps), "activity_date": newest} for _ in range(50)]
                    s, b = call(f"{url}/v2/clients/{cid}/usage-events", "POST", {"events": ev})
                    if s != 200:
                        sys.exit(f"append failed: {s} {b}")
                print(f"round {n}: +250 batches: {rss_mib(server.pid):.1f} MiB", flush=True)
            s, b = call(url + "/v2/admin/reload", "POST", {})
            if s != 200:
                sys.exit(f"reload failed: {s} {b}")
            time.sleep(3)  # the replaced data freed and trimmed
            print(f"round {n}: after the reload: {rss_mib(server.pid):.1f} MiB", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if os.path.exists(wal):
            os.remove(wal)


if __name__ == "__main__":
    main()
