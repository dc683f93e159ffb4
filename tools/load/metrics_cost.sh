#!/usr/bin/env bash
# What keeping metrics costs (issue 13): the dashboard mix (A–J, tools/load/dashboard.lua) with
# wrk against `tally serve --synthetic 20000x600x366`, with metrics (the default) and with
# --no-metrics, alternated ROUNDS times in one run; prints each run's req/s and the ratio of the
# medians. Loopback only; every wrk run stops by itself.
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
declare -A RATES=([on]="" [off]="")
for round in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    extra=()
    [ "$mode" = off ] && extra=(--no-metrics)
    start_tally "$PORT" --synthetic 20000x600x366 "${extra[@]}"
    export TALLY_CLIENT=$(grep -o 'client=[0-9a-f-]*' "$TALLY_LOG" | head -1 | cut -d= -f2)
    # Warm up (first-use derivations), then measure.
    TALLY_MIX=dashboard wrk -t2 -c"$CONNS" -d2s -s tools/load/dashboard.lua "$URL" >/dev/null
    rate=$(TALLY_MIX=dashboard wrk -t2 -c"$CONNS" -d"${SECS}s" -s tools/load/dashboard.lua "$URL" | awk '/Requests\/sec/ {print $2}')
    echo "round $round metrics $mode: $rate req/s"
    RATES[$mode]="${RATES[$mode]} $rate"
    kill "$TALLY_PID"; wait "$TALLY_PID" 2>/dev/null || true
  done
done
python3 - "${RATES[on]}" "${RATES[off]}" <<'PY'
import statistics, sys
on = [float(x) for x in sys.argv[1].split()]
off = [float(x) for x in sys.argv[2].split()]
print(f"median with metrics {statistics.median(on):,.0f} req/s, without {statistics.median(off):,.0f} req/s: "
      f"{statistics.median(on) / statistics.median(off) * 100:.1f}% kept")
PY
