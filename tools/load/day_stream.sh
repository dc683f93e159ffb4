#!/usr/bin/env bash
# A stream of appends across a large client's day change: serve SNAP with a write-ahead log and
# post 1,000-event batches of the client's newest day for SECONDS (default 30); TURN seconds in
# (default 8) the batches are dated the next day, a tenth of their events still on the day before
# (late rows). Prints `append_today.py`'s figures, before and after the change too. Loopback only;
# the server is stopped at the end.
#
# Usage: tools/load/day_stream.sh BIN SNAP DUMP [SECONDS] [TURN] [PORT] [GAP]
#   GAP   days from the newest day to the new one (default 1; 2: a day without rows between)
#   BIN   a tally binary;  SNAP  a snapshot of DUMP (`tally snapshot save --dump DUMP --out SNAP`)
#   DUMP  the dump folder: its largest client (most users) gets the batches
set -euo pipefail
BIN=$1; SNAP=$2; DUMP=$3; SECONDS_=${4:-30}; TURN=${5:-8}; PORT=${6:-18422}; GAP=${7:-1}
W=$(mktemp -d)/day_stream.wal
"$BIN" serve --port "$PORT" --no-binary --snapshot "$SNAP" --wal "$W" > "$W.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$(dirname "$W")"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.3; done
cd "$(dirname "$0")"
python3 append_today.py --port "$PORT" --dump "$DUMP" --batch 1000 --seconds "$SECONDS_" --bodies 500 --turn-at "$TURN" --late 0.1 --gap "$GAP"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^tally_merges_total' || true
