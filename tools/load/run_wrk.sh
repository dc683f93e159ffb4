#!/usr/bin/env bash
# Load test of the HTTP listener on the generated 20,000-user client (20,000 × 600 × 366):
# req/s and latency for /healthz and for the mixed dashboard query set, then the latency of
# light queries alone and while heavy ones run on other connections. Loopback only; every wrk
# run stops by itself. Usage: tools/load/run_wrk.sh [seconds per run] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-15}
CONNS=${2:-32}
PORT=${PORT:-18181}
export TALLY_BIN=${TALLY_BIN:-.build/release/tally}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
. tools/lib/serve.sh
# SNAP=file: serve that snapshot of the client instead (starts in a second; `tally snapshot save
# --synthetic 20000x600x366 --out FILE` makes one).
# TALLY_SERVE_ARGS: more `tally serve` options (e.g. "--query-threads 1"). LANES_ONLY=1: only the
# light/heavy phases. LIGHT_RATE=N: the light queries at a fixed N requests a second (over 8
# connections, on dashboard.lua's fixed schedule) instead of as fast as 4 connections can: the
# latency of a light load that does not itself fill the two cores.
# shellcheck disable=SC2086
if [ -n "${SNAP:-}" ]; then start_tally "$PORT" --snapshot "$SNAP" ${TALLY_SERVE_ARGS:-}; else start_tally "$PORT" --synthetic 20000x600x366 ${TALLY_SERVE_ARGS:-}; fi
export TALLY_CLIENT=$(curl -s "http://127.0.0.1:$PORT/v2/status" -H "Authorization: Bearer YOUR_API_TOKEN" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_list"][0]["id"])')
URL="http://127.0.0.1:$PORT"
# The heavy mix's category (dashboard.lua): the client's largest category of the year.
export TALLY_CATEGORY=$(curl -s "$URL/v2/clients/$TALLY_CLIENT/analytics/apps/utilization/categories?start_date=2025-01-01&end_date=2026-01-01&granularity=monthly" \
  -H "Authorization: Bearer YOUR_API_TOKEN" | python3 -c 'import json,sys; print(next(c["category"]["id"] for c in json.load(sys.stdin)["data"] if c.get("category")))')
summary() { grep -E "Requests/sec|^\s+(50|90|99)%|p99\.9|Non-2xx|errors" ; }
if [ "${LANES_ONLY:-0}" != 1 ]; then
echo "== /healthz, $CONNS connections, ${SECS}s"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$URL/healthz" | summary
echo "== dashboard mix (A–J, 4 periods with comparison), $CONNS connections, ${SECS}s"
TALLY_MIX=dashboard wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s tools/load/dashboard.lua "$URL" | summary
PATHS_FILE=$(mktemp /tmp/tally-realistic-XXXXXX.txt)
python3 tools/load/realistic_paths.py --url "$URL" --client "$TALLY_CLIENT" --count 400 --out "$PATHS_FILE"
echo "== realistic mix (filters, sorts, cursor pages 2–3, 7–366-day periods), $CONNS connections, ${SECS}s"
TALLY_PATHS="$PATHS_FILE" wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s tools/load/dashboard.lua "$URL" | summary
rm -f "$PATHS_FILE"
fi
if [ -n "${LIGHT_RATE:-}" ]; then
  light() { TALLY_RATE_PER_THREAD="$LIGHT_RATE" TALLY_MIX=light wrk -t1 -c8 -d"${SECS}s" --latency -s tools/load/dashboard.lua "$URL" | summary; }
  LIGHT_LOAD="at $LIGHT_RATE req/s over 8 connections"
else
  light() { TALLY_MIX=light wrk -t1 -c4 -d"${SECS}s" --latency -s tools/load/dashboard.lua "$URL" | summary; }
  LIGHT_LOAD="4 connections"
fi
echo "== light queries alone (summary cards), $LIGHT_LOAD, ${SECS}s"
light
echo "== light queries while heavy ones (users under an approval filter by app count ascending, users of one category by active days; 366 days) run on 8 other connections"
TALLY_MIX=heavy wrk -t1 -c8 -d"$((SECS + 4))s" -s tools/load/dashboard.lua "$URL" > /tmp/tally-wrk-heavy.txt &
HEAVY=$!
sleep 2
light
wait $HEAVY
echo "   (heavy, meanwhile:)"; summary < /tmp/tally-wrk-heavy.txt
echo "== light queries while the heavy-query queue is full: 96 heavy connections against --max-heavy-queue 64"
echo "   (the heavy requests past the bound get 503 overloaded at once; their connections wait the"
echo "   Retry-After second before the next, as a well-behaved client does)"
TALLY_RETRY_AFTER=1 TALLY_MIX=heavy wrk -t1 -c96 --timeout 10s -d"$((SECS + 4))s" -s tools/load/dashboard.lua "$URL" > /tmp/tally-wrk-full.txt &
HEAVY=$!
sleep 2
light
wait $HEAVY
echo "   (heavy, meanwhile: all requests, and the 503s among them)"; grep -E "requests in|Non-2xx|errors" /tmp/tally-wrk-full.txt
