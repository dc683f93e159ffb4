#!/usr/bin/env bash
# The dashboard mix in process, with caches as a server's mix leaves them: the 40 requests of
# tools/load/dashboard.lua, in that order, repeated ROUNDS times, each timed once (no warm-up
# run of the same request before it) through the API core without sockets (`tally bench
# --first-page-only`). Prints each endpoint's mean time and the mean over all requests.
# Usage: tools/load/mix_bench.sh SNAPSHOT CLIENT_ID [rounds]   (make a snapshot of the
# benchmark client with: tally snapshot save --synthetic 20000x600x366 --out FILE)
set -euo pipefail
cd "$(dirname "$0")/../.."
SNAP=$1; CLIENT=$2; ROUNDS=${3:-30}
TALLY_BIN=${TALLY_BIN:-.build/release/tally}
Q=$(mktemp); OUT=$(mktemp)
trap 'rm -f "$Q" "$OUT"' EXIT
python3 - "$CLIENT" "$ROUNDS" "${MIX_SHIFT_DAYS:-0}" > "$Q" <<'PY'
import json, sys, datetime
client, rounds, shift = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
periods = [("2025-12-03", "2026-01-01", "2025-11-03", "2025-12-02"), ("2025-10-04", "2026-01-01", "2025-07-06", "2025-10-03"),
           ("2025-01-01", "2026-01-01", "2024-01-01", "2024-12-31"), ("2025-06-01", "2025-06-30", "2025-05-01", "2025-05-31")]
# MIX_SHIFT_DAYS=1: every period a day later (ending on the day after the client's newest).
periods = [tuple((datetime.date.fromisoformat(d) + datetime.timedelta(days=shift)).isoformat() for d in p) for p in periods]
monthly = {"granularity": "monthly"}
endpoints = [("utilization/summary", monthly), ("utilization", monthly),
             ("utilization/departments", dict(monthly, is_approved="false")), ("utilization/categories", monthly),
             ("utilization/trend", {"granularity": "weekly"}), ("ai/users/summary", monthly), ("ai/users", {}),
             ("ai/departments", monthly), ("ai/new", monthly), ("utilization/users", dict(monthly, page_size="20"))]
out = []
for e, p in endpoints:
    for i, (s, en, cs, ce) in enumerate(periods):
        out.append({"id": e, "client": client, "path": e,
                    "params": dict(p, start_date=s, end_date=en, compare_start_date=cs, compare_end_date=ce)})
print(json.dumps(out * rounds))
PY
# BENCH_ARGS: more options of `tally bench`, e.g. "--tail-fraction 0.01" (a 1% tail on the newest day),
# "--tail-fraction 0.01 --tail-next-share 0.5" (half of it on the day after: two days in the tail).
"$TALLY_BIN" bench --dump "$SNAP" --queries "$Q" --runs 1 --first-page-only ${BENCH_ARGS:-} > "$OUT"
python3 - "$OUT" <<'PY'
import json, sys, collections
r = json.load(open(sys.argv[1]))
bad = [x for x in r if x["status"] != 200]
if bad: sys.exit(f"{len(bad)} requests failed, e.g. {bad[0]}")
g = collections.OrderedDict()
for x in r: g.setdefault(x["id"], []).append(x["first_page_median_ms"])
def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, len(v) * 99 // 100)]
for k, v in g.items(): print(f"{k:26s} {sum(v) / len(v):.3f} ms   p99 {p99(v):.3f} ms")
allt = [x["first_page_median_ms"] for x in r]
print(f"{'mean per request':26s} {sum(allt) / len(allt):.4f} ms   p99 {p99(allt):.3f} ms")
PY
