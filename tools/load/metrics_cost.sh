#!/usr/bin/env bash
# What keeping metrics costs (issue 13): the dashboard mix with metrics (the default) against
# --no-metrics, alternated in one run (tools/load/ab_mix.sh).
# Usage: tools/load/metrics_cost.sh [seconds per run] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${TALLY_BIN:-.build/release/tally}
A_LABEL="with metrics" A_BIN=$BIN A_ARGS="" B_LABEL="without" B_BIN=$BIN B_ARGS="--no-metrics" \
  exec tools/load/ab_mix.sh "$@"
