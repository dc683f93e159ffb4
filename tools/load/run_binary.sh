#!/usr/bin/env bash
# HTTP against the binary protocol on the same mixed dashboard query set (tools/load/dashboard.lua
# and `tally loadtest` send the same 40 queries), on the generated 20,000-user client
# (20,000 × 600 × 366), at several connection counts. Loopback only; every run stops by itself.
# Usage: tools/load/run_binary.sh [seconds per run] [connection counts…]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
shift || true
CONNS=${*:-4 16 64}
PORT=${PORT:-18183}
INFLIGHT=${INFLIGHT:-8}
MIX=${MIX:-dashboard}
export TALLY_BIN=${TALLY_BIN:-.build/release/tally}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
. tools/lib/serve.sh
start_tally "$PORT" --synthetic 20000x600x366
export TALLY_CLIENT=$(grep -o 'client=[0-9a-f-]*' "$TALLY_LOG" | head -1 | cut -d= -f2)
summary() { grep -E "Requests/sec|^\s+(50|90|99|99\.9)%|p99\.9|Non-2xx|errors|latency|requests:" ; }
# Warm up both paths once (page faults, allocator).
TALLY_MIX=$MIX wrk -t1 -c4 -d2s -s tools/load/dashboard.lua "http://127.0.0.1:$PORT" >/dev/null
for c in $CONNS; do
  echo "== HTTP (wrk), mix $MIX, $c connections, ${SECS}s"
  TALLY_MIX=$MIX wrk -t2 -c"$c" -d"${SECS}s" --latency -s tools/load/dashboard.lua "http://127.0.0.1:$PORT" | summary
  # The binary client multiplexes: the same number of requests in flight on fewer connections.
  conns=$(( c / INFLIGHT )); [ "$conns" -ge 1 ] || conns=1
  inflight=$(( c / conns ))
  for fmt in json compact; do
    echo "== binary ($fmt), mix $MIX, $conns connections × $inflight in flight, ${SECS}s"
    "$TALLY_BIN" loadtest --port "$((PORT + 1))" --client "$TALLY_CLIENT" --mix "$MIX" --format "$fmt" \
      --connections "$conns" --in-flight "$inflight" --duration "$SECS" | summary
  done
done
