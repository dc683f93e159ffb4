#!/usr/bin/env python3
"""What appends and reloads cost in resident memory, without queries (issue 15's soak, taken
apart): serves the scale-M snapshot (made once under /tmp, as soak.py makes it) with a write-ahead log on
loopback, appends 50-event batches over HTTP to 20 of its clients as fast as one connection
goes, and prints the server's resident size after every 250 batches and after a reload that
follows every 1,000 (the snapshot again, the log replayed onto it).

  python3 tools/load/append_memory.py [--tally .build-release/release/tally] [--rounds 3]
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import ROOT, append_batch, append_targets, call, rss_mib, scale_m_snapshot, serve_with_log  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build-release/release/tally"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    wal = f"/tmp/tally-append-memory-{os.getpid()}.wal"
    server, url = serve_with_log(a.tally, scale_m_snapshot(a.tally), wal, "/tmp/tally-append-memory.log")
    try:
        _, targets = append_targets(url)
        r = random.Random(1)
        print(f"start: {rss_mib(server.pid):.0f} MiB", flush=True)
        for n in range(a.rounds):
            for _ in range(4):
                for _ in range(250):
                    s, b = append_batch(url, r, targets)
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
