#!/usr/bin/env bash
# A large client's new day: serve SNAP with a write-ahead log, post one batch dated the day after
# the client's newest (a rebuild of the client, off the commit thread), and print how long its
# acknowledgement took; then the same once more (the next day), so that each run gives two.
# Loopback only; the server is stopped at the end.
#
# Usage: tools/load/day_turn.sh BIN SNAP DUMP [PORT]
#   BIN   a tally binary;  SNAP  a snapshot of DUMP (`tally snapshot save --dump DUMP --out SNAP`)
#   DUMP  the dump folder: its largest client (most users) gets the batch
set -euo pipefail
BIN=$1; SNAP=$2; DUMP=$3; PORT=${4:-18421}
W=$(mktemp -d)/day_turn.wal
AUTH="Authorization: Bearer YOUR_API_TOKEN"
"$BIN" serve --port "$PORT" --no-binary --snapshot "$SNAP" --wal "$W" > "$W.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$(dirname "$W")"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.3; done
read -r C U A <<< "$(cd "$(dirname "$0")" && python3 -c "
from append_bench import largest_client
c, us, aps = largest_client('$DUMP')
print(c, us[0], aps[0])")"
NEWEST=$(curl -sf "http://127.0.0.1:$PORT/v2/clients/$C/license" -H "$AUTH" | python3 -c 'import json,sys; print(json.load(sys.stdin)["as_of"])')
for k in 1 2; do
  DAY=$(python3 -c "import datetime; print(datetime.date.fromisoformat('$NEWEST') + datetime.timedelta(days=$k))")
  curl -s -o /dev/null -w "the batch of $DAY (a new day): HTTP %{http_code} in %{time_total} s\n" -X POST \
    "http://127.0.0.1:$PORT/v2/clients/$C/usage-events" -H "$AUTH" -H "Content-Type: application/json" \
    --data "[{\"user_id\":\"$U\",\"application_id\":\"$A\",\"activity_date\":\"$DAY\"}]"
done
