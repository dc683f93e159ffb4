#!/usr/bin/env bash
# What keeping metrics costs (issue 13): the dashboard mix (A–J, tools/load/dashboard.lua) with
# wrk against `tally serve --synthetic 20000x600x366`, with metrics (the default) and with
# --no-metrics, alternated ROUNDS times in one run; prints each run's req/s and the ratio of the
# medians. Loopback only; every wrk run stops by itself.
# The client is generated once and saved as a snapshot, so that each server starts in a second.
# Usage: tools/load/metrics_cost.sh [seconds per run] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-32}
ROUNDS=${3:-3}
PORT=${PORT:-18281}
export TALLY_BIN=${TALLY_BIN:-.build/release/tally}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
. tools/lib/serve.sh
URL="http://127.0.0.1:$PORT"
SNAP=${SNAP:-/tmp/tally-metrics-cost.tsnap}
[ -f "$SNAP" ] || "$TALLY_BIN" snapshot save --synthetic 20000x600x366 --out "$SNAP" >/dev/null
declare -A RATES=([on]="" [off]="")
declare -A CPUS=([on]="" [off]="")
for round in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    extra=()
    [ "$mode" = off ] && extra=(--no-metrics)
    start_tally "$PORT" --snapshot "$SNAP" "${extra[@]}"
    export TALLY_CLIENT=$(curl -s "$URL/v2/status" -H "Authorization: Bearer YOUR_API_TOKEN" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_list"][0]["id"])')
    # Warm up (first-use derivations), then measure.
    TALLY_MIX=dashboard wrk -t2 -c"$CONNS" -d2s -s tools/load/dashboard.lua "$URL" >/dev/null
    ticks() { awk '{print $14 + $15}' "/proc/$TALLY_PID/stat"; }
    before=$(ticks)
    out=$(TALLY_MIX=dashboard wrk -t2 -c"$CONNS" -d"${SECS}s" -s tools/load/dashboard.lua "$URL")
    after=$(ticks)
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    # The server's CPU time per request (user + system, clock ticks of 1/100 s).
    cpu=$(python3 -c "print(f'{($after - $before) * 1e4 / $requests:.1f}')")
    echo "round $round metrics $mode: $rate req/s, $cpu µs of server CPU per request"
    RATES[$mode]="${RATES[$mode]} $rate"
    CPUS[$mode]="${CPUS[$mode]} $cpu"
    kill "$TALLY_PID"; wait "$TALLY_PID" 2>/dev/null || true
  done
done
python3 - "${RATES[on]}" "${RATES[off]}" "${CPUS[on]}" "${CPUS[off]}" <<'PY'
import statistics, sys
on, off, con, coff = ([float(x) for x in a.split()] for a in sys.argv[1:5])
print(f"median with metrics {statistics.median(on):,.0f} req/s, without {statistics.median(off):,.0f} req/s: "
      f"{statistics.median(on) / statistics.median(off) * 100:.1f}% kept")
print(f"median server CPU per request: with metrics {statistics.median(con):.1f} µs, without {statistics.median(coff):.1f} µs: "
      f"{statistics.median(coff) / statistics.median(con) * 100:.1f}% of the requests per CPU-second kept")
PY
