#!/usr/bin/env bash
# Two server variants under the dashboard mix (A–J, tools/load/dashboard.lua) with wrk against
# `tally serve --snapshot` of the generated 20,000-user client, alternated ROUNDS times in one
# run (the machine is shared and noisy: only one run's ratios mean anything); prints each run's
# req/s and the server's CPU time per request, and the ratios of the medians. Loopback only;
# every wrk run stops by itself. Used by metrics_cost.sh and checked_builds.sh.
# A variant is a label, a tally binary, extra `serve` options and, optionally, variables for the
# server's environment (A_ENV/B_ENV, e.g. "MALLOC_ARENA_MAX=16"):
#   A_LABEL=O A_BIN=.build-release/release/tally A_ARGS="" B_LABEL=… B_BIN=… B_ARGS="--no-metrics" \
#   tools/load/ab_mix.sh [seconds per run] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-32}
ROUNDS=${3:-3}
PORT=${PORT:-18281}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
. tools/lib/serve.sh
URL="http://127.0.0.1:$PORT"
SNAP=${SNAP:-/tmp/tally-metrics-cost.tsnap}
[ -f "$SNAP" ] || "$A_BIN" snapshot save --synthetic 20000x600x366 --out "$SNAP" >/dev/null
declare -A RATES=([A]="" [B]="") CPUS=([A]="" [B]="") P99=([A]="" [B]="")
for round in $(seq 1 "$ROUNDS"); do
  for v in A B; do
    label_var=${v}_LABEL bin_var=${v}_BIN args_var=${v}_ARGS env_var=${v}_ENV
    TALLY_BIN=${!bin_var}
    # shellcheck disable=SC2206
    extra=(${!args_var:-}) vars=(${!env_var:-})
    for kv in "${vars[@]}"; do export "${kv?}"; done  # for the server only: unset once it runs
    start_tally "$PORT" --snapshot "$SNAP" "${extra[@]}"
    for kv in "${vars[@]}"; do unset "${kv%%=*}"; done
    export TALLY_CLIENT=$(curl -s "$URL/v2/status" -H "Authorization: Bearer YOUR_API_TOKEN" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_list"][0]["id"])')
    # Warm up (first-use derivations), then measure.
    TALLY_MIX=dashboard wrk -t2 -c"$CONNS" -d2s -s tools/load/dashboard.lua "$URL" >/dev/null
    ticks() { awk '{print $14 + $15}' "/proc/$TALLY_PID/stat"; }
    before=$(ticks)
    out=$(TALLY_MIX=dashboard wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s tools/load/dashboard.lua "$URL")
    after=$(ticks)
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    # The server's CPU time per request (user + system, clock ticks of 1/100 s).
    cpu=$(python3 -c "print(f'{($after - $before) * 1e4 / $requests:.1f}')")
    echo "round $round ${!label_var}: $rate req/s, p99 $p99, $cpu µs of server CPU per request"
    RATES[$v]="${RATES[$v]} $rate"
    CPUS[$v]="${CPUS[$v]} $cpu"
    kill "$TALLY_PID"; wait "$TALLY_PID" 2>/dev/null || true
  done
done
python3 - "$A_LABEL" "$B_LABEL" "${RATES[A]}" "${RATES[B]}" "${CPUS[A]}" "${CPUS[B]}" <<'PY'
import statistics, sys
la, lb = sys.argv[1:3]
a, b, ca, cb = ([float(x) for x in s.split()] for s in sys.argv[3:7])
print(f"median {la} {statistics.median(a):,.0f} req/s, {lb} {statistics.median(b):,.0f} req/s: "
      f"{la} at {statistics.median(a) / statistics.median(b) * 100:.1f}% of {lb}")
print(f"median server CPU per request: {la} {statistics.median(ca):.1f} µs, {lb} {statistics.median(cb):.1f} µs: "
      f"{la} serves {statistics.median(cb) / statistics.median(ca) * 100:.1f}% of {lb}'s requests per CPU-second")
PY
