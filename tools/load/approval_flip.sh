#!/usr/bin/env bash
# An app's approval changed during today's trickle: serve SNAP with a write-ahead log, post
# 1,000-event batches of the largest client's newest day on one connection for SECONDS
# (`append_today.py`), and AT seconds in one `apps` row flipping the approval of its first app
# (no events: its classes change, so the client is rebuilt off the commit thread). Prints
# append_today.py's JSON: the run's acknowledgement p50/p99/max and `approval_flip` — the
# flip's acknowledgement and the client's event batches sent while it waited.
# Loopback only; the server is stopped at the end.
#
# Usage: tools/load/approval_flip.sh BIN SNAP DUMP [SECONDS] [AT] [PORT]
#   BIN   a tally binary;  SNAP  a snapshot of DUMP (`tally snapshot save --dump DUMP --out SNAP`)
#   DUMP  the dump folder (its largest client gets the batches)
set -euo pipefail
BIN=$1; SNAP=$2; DUMP=$3; SECONDS_=${4:-25}; AT=${5:-14}; PORT=${6:-18423}
W=$(mktemp -d)/approval_flip.wal
"$BIN" serve --port "$PORT" --no-binary --snapshot "$SNAP" --wal "$W" > "$W.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$(dirname "$W")"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.3; done
python3 "$(dirname "$0")/append_today.py" --port "$PORT" --dump "$DUMP" --batch 1000 --bodies 500 \
  --seconds "$SECONDS_" --flip-approval-at "$AT"
