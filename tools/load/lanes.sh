#!/usr/bin/env bash
# Light queries against heavy ones under three settings of the heavy lane, alternated twice
# (docs/BENCHMARKS.md, "Light queries while the heavy-query queue is full"): two query threads at
# nice 10 (the default), one query thread, two at nice 19, two under SCHED_IDLE. Each is run_wrk.sh's light/heavy
# phases on a snapshot of the 20,000-user client. Loopback only; every run stops by itself.
#   SNAP=/tmp/tally-metrics-cost.tsnap tools/load/lanes.sh [seconds per phase]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
export SNAP=${SNAP:?SNAP=snapshot of the 20,000-user client (tally snapshot save --synthetic 20000x600x366 --out FILE)}
export TALLY_BIN=${TALLY_BIN:-.build-release/release/tally} LANES_ONLY=1
for round in 1 2; do
  echo "#### round $round: 2 query threads, nice 10 (default)"; PORT=18401 tools/load/run_wrk.sh "$SECS"
  echo "#### round $round: --query-threads 1"; PORT=18411 TALLY_SERVE_ARGS="--query-threads 1" tools/load/run_wrk.sh "$SECS"
  echo "#### round $round: nice 19"; PORT=18421 TALLY_QUERY_NICE=19 tools/load/run_wrk.sh "$SECS"
  echo "#### round $round: SCHED_IDLE"; PORT=18431 TALLY_QUERY_SCHED=idle tools/load/run_wrk.sh "$SECS"
done
