#!/usr/bin/env bash
# The realistic mix (tools/load/realistic_paths.py) against `tally serve` under alternating
# environment settings: per run its req/s, p99, p99.9, `/healthz` req/s after it, and the
# server's CPU time per request of the mix (utime + stime from /proc/PID/stat over the run).
# Loopback only; every wrk run stops by itself.
#   SNAP=snapshot PATHS=paths-file tools/load/mix_env.sh ROUNDS SECONDS 'label ENV=VALUE …' 'label2 …'
# e.g. tools/load/mix_env.sh 3 12 'nice19 X=1' 'nice0 TALLY_QUERY_NICE=0'
set -uo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:?rounds}; SECS=${2:?seconds}; shift 2
BIN=${TALLY_BIN:-.build-release/release/tally}
PORT=${PORT:-18291}
SNAP=${SNAP:?SNAP=snapshot of the 20,000-user client}
URL=http://127.0.0.1:$PORT
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
run() {
  local label=$1; shift
  env "$@" "$BIN" serve --port "$PORT" --binary-port $((PORT + 1)) --snapshot "$SNAP" 2>/dev/null & local pid=$!
  for _ in $(seq 1 600); do curl -fs "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  export TALLY_CLIENT
  TALLY_CLIENT=$(curl -s "$URL/v2/status" -H "Authorization: Bearer YOUR_API_TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_list"][0]["id"])')
  if [ -z "${PATHS:-}" ]; then
    PATHS=$(mktemp /tmp/tally-mix-env-XXXXXX.txt)
    python3 tools/load/realistic_paths.py --url "$URL" --client "$TALLY_CLIENT" --count 400 --out "$PATHS" >/dev/null
  fi
  TALLY_PATHS=$PATHS wrk -t2 -c32 -d3s -s tools/load/dashboard.lua "$URL" >/dev/null
  local t0 t1 out n
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  out=$(TALLY_PATHS=$PATHS wrk -t2 -c32 -d"${SECS}s" --latency -s tools/load/dashboard.lua "$URL")
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  n=$(echo "$out" | awk '/requests in/{print $1}')
  local hz; hz=$(getconf CLK_TCK)
  local h; h=$(wrk -t2 -c32 -d5s "$URL/healthz" | awk '/Requests\/sec/{print $2}')
  echo "$label: mix $(echo "$out" | awk '/Requests\/sec/{print $2}') req/s, p99 $(echo "$out" | awk '$1=="99%"{print $2}'),"\
       "p99.9 $(echo "$out" | awk '/p99.9/{print $2}'), /healthz $h req/s,"\
       "server CPU $(python3 -c "print(round(($t1 - $t0) * 1e6 / $hz / $n, 1))") µs a request"
  kill $pid; wait $pid 2>/dev/null
}
for _ in $(seq 1 "$ROUNDS"); do
  for v in "$@"; do
    # shellcheck disable=SC2086
    run $v
  done
done
