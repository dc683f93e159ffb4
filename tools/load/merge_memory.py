#!/usr/bin/env python3
"""Resident memory of a store after appends and merges against the same data served fresh
(issue 14: "memory of a merged store within 5% of a store built from scratch"), on loopback:

1. serves SNAP with a write-ahead log, merges after 2 s and no cursor pins
   (`TALLY_MERGE_AFTER_SECONDS=2`, `TALLY_CURSOR_PIN_MIB=0`), runs `append_today.py` (newest-day
   1,000-event batches to the client with the most users) for --seconds, waits --idle seconds
   after every tail is merged (`tally_delta_rows` 0: the replaced versions freed and trimmed), and reads its resident
   size, its heap (`tally_heap_allocated_bytes`) and its store bytes; writes the served data as
   a snapshot;
2. serves that snapshot in a fresh process, sends it the same reads `append_today.py` sent (the
   client's users report), waits the same idle time and reads the same.

  python3 tools/load/merge_memory.py --snapshot SNAP --dump DUMP [--tally .build-release/release/tally] [--heap-timeline]

DUMP is the folder SNAP was saved from (`tally synth --write-dump` or `tally generate`): the
users and apps of the appended events come from it. Prints one line per process and the ratio.
"""
import argparse
import os
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from append_bench import largest_client  # noqa: E402
from metrics_check import ensure_packages  # noqa: E402
from soak import ROOT, call, rss_mib, serve_with_log  # noqa: E402


def scrape(url):
    """The server's /metrics, one scrape: {(sample name, sorted label pairs): value}."""
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def anonymous_mib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def heap_rss_mib(pid):
    """Resident MiB of the main arena's heap (the `[heap]` mapping), or 0 without one."""
    with open(f"/proc/{pid}/smaps") as f:
        inside = False
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                inside = fields[-1] == "[heap]"
            elif inside and fields[0] == "Rss:":
                return int(fields[1]) / 1024
    return 0.0


def heap_timeline(server, url, stop):
    """Each second until `stop`: seconds since start, the main arena's resident heap, the
    allocator's free bytes and the delta's rows."""
    t0 = time.time()
    while not stop.wait(1):
        try:
            m = scrape(url)
            print(f"  {time.time() - t0:5.1f} s  [heap] {heap_rss_mib(server.pid):5.1f} MiB resident, heap free "
                  f"{m[('tally_heap_free_bytes', ())] / 2**20:5.1f} MiB, delta {m[('tally_delta_rows', ())]:.0f} rows", flush=True)
        except (OSError, KeyError):  # the server gone, or a scrape without the samples: no line this second
            pass


def report(label, server, url, smaps=None):
    rss = rss_mib(server.pid)
    if smaps:
        with open(f"/proc/{server.pid}/smaps") as f, open(smaps, "w") as out:
            out.write(f.read())
    m = scrape(url)
    print(f"{label}: resident {rss:.1f} MiB (anonymous {anonymous_mib(server.pid):.1f}), "
          f"heap allocated {m[('tally_heap_allocated_bytes', ())] / 2**20:.1f} MiB, "
          f"free {m[('tally_heap_free_bytes', ())] / 2**20:.1f} MiB, "
          f"store {m[('tally_store_bytes', ())] / 2**20:.1f} MiB", flush=True)
    return rss, m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build-release/release/tally"))
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--idle", type=float, default=15)
    ap.add_argument("--smaps", help="a folder to write each process's /proc/PID/smaps into, as it is measured")
    ap.add_argument("--heap-timeline", action="store_true",
                    help="print the merged process's main-arena heap (resident), the allocator's free bytes and the delta each second")
    ap.add_argument("--bodies", type=int, default=2000, help="distinct batches sent (then reused, adding nothing)")
    a = ap.parse_args()
    ensure_packages()
    client = largest_client(a.dump)[0]
    tag = f"/tmp/tally-merge-memory-{os.getpid()}"
    merged_snap = tag + ".tsnap"
    # serve_with_log starts the server with this process's environment.
    os.environ.update(TALLY_MERGE_AFTER_SECONDS="2", TALLY_CURSOR_PIN_MIB="0")
    server, url = serve_with_log(a.tally, a.snapshot, tag + ".wal", tag + "-1.log")
    try:
        report("served snapshot, before appends", server, url)
        stop = threading.Event()
        if a.heap_timeline:
            threading.Thread(target=heap_timeline, args=(server, url, stop), daemon=True).start()
        port = url.rsplit(":", 1)[1]
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/load/append_today.py"), "--port", port,
                        "--dump", a.dump, "--client", client, "--batch", "1000", "--seconds", str(a.seconds),
                        "--bodies", str(a.bodies)],
                       check=True)
        # Every tail merged (a merge takes about 10 s on the 47.6 M-row client), then the idle time.
        deadline = time.time() + 300
        while scrape(url)[("tally_delta_rows", ())] > 0 and time.time() < deadline:
            time.sleep(1)
        time.sleep(a.idle)
        stop.set()
        merged, m = report("after appends and merges", server, url,
                           a.smaps and os.path.join(a.smaps, "merged.smaps"))
        print("merges: " + ", ".join(f"{dict(k[1])['result']} {v:.0f}" for k, v in m.items() if k[0] == "tally_merges_total"),
              flush=True)
        s, b = call(url + "/v2/admin/snapshot", "POST", {"path": merged_snap})
        if s != 200:
            sys.exit(f"snapshot failed: {s} {b}")
    finally:
        server.terminate()
        server.wait(timeout=60)
    server, url = serve_with_log(a.tally, merged_snap, tag + "-fresh.wal", tag + "-2.log")
    try:
        s, _ = call(f"{url}/v2/clients/{client}/users?page_size=1")
        if s != 200:
            sys.exit(f"users report failed: {s}")
        time.sleep(a.idle)
        fresh, _ = report("fresh, on a snapshot of that data", server, url,
                          a.smaps and os.path.join(a.smaps, "fresh.smaps"))
    finally:
        server.terminate()
        server.wait(timeout=60)
        for p in (merged_snap, tag + ".wal", tag + "-fresh.wal"):
            if os.path.exists(p):
                os.remove(p)
    print(f"merged / fresh resident: {merged / fresh:.3f}")


if __name__ == "__main__":
    main()
