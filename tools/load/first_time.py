#!/usr/bin/env python3
"""Times every path of a paths file (tools/load/realistic_paths.py) the first time it is asked,
in the file's order, against a fresh `tally serve` it starts on loopback and stops: what a
dashboard user meets before any cache holds the answer (kept lists, derived orders). Prints
the cursor pages', the users list's and all requests' median, p90 and maximum, and the
slowest five. Environment variables pass through (e.g. TALLY_LIST_CACHE_MB=0 to compare).

  python3 tools/load/first_time.py --tally .build-release/release/tally --snapshot FILE --paths FILE
"""
import argparse
import http.client
import statistics
import time

from served import served_snapshot

AUTH = {"Authorization": "Bearer YOUR_API_TOKEN"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tally", required=True)
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--paths", required=True)
    ap.add_argument("--port", type=int, default=18790)
    a = ap.parse_args()
    with served_snapshot(a.tally, a.snapshot, a.port):
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        paths = [line.strip() for line in open(a.paths) if line.strip()]
        out = []
        for path in paths:
            t = time.perf_counter()
            c.request("GET", path, headers=AUTH)
            r = c.getresponse()
            r.read()
            out.append((path, (time.perf_counter() - t) * 1000, r.status))

        def stats(xs):
            xs = sorted(xs)
            if not xs:
                return "n=0"
            return "n=%d median %.2f ms, p90 %.2f, max %.2f" % (len(xs), statistics.median(xs), xs[int(len(xs) * 0.9)], xs[-1])

        print("cursor pages:", stats([d for p, d, _ in out if "cursor=" in p]))
        print("users list (D):", stats([d for p, d, _ in out if "/utilization/users?" in p]))
        print("all:", stats([d for _, d, _ in out]), "| not 200:", sum(1 for *_, s in out if s != 200))
        for p, d, _ in sorted(out, key=lambda x: -x[1])[:5]:
            print("  %.2f ms %s" % (d, p.split("/analytics/apps/")[-1][:160]))


if __name__ == "__main__":
    main()
