#!/usr/bin/env bash
# The first requests on a fresh server and after a reload: serves a snapshot (its own reload
# source), asks the category list under is_approved=true over 90 days three times in a row and
# twice more after 0.3 s (the first starts the derivation of its per-category unions), then
# reloads three times, each followed by the same request twice; prints curl's times.
# Loopback only.
#   SNAP=/tmp/s20k5.tsnap tools/load/reload_warm.sh [tally binary]
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build-release/release/tally}; P=${PORT:-18430}; H="Authorization: Bearer YOUR_API_TOKEN"
SNAP=${SNAP:?SNAP=snapshot of the 20,000-user client}
"$BIN" serve --port "$P" --no-binary --snapshot "$SNAP" >/dev/null 2>&1 & PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$P/readyz" >/dev/null && break; sleep 0.2; done
C=$(curl -s "http://127.0.0.1:$P/v2/status" -H "$H" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_list"][0]["id"])')
END=$(curl -s "http://127.0.0.1:$P/v2/clients/$C/users?page_size=1" -H "$H" | python3 -c 'import json,sys; print(json.load(sys.stdin)["as_of"])')
START=$(python3 -c "import datetime; print(datetime.date.fromisoformat('$END') - datetime.timedelta(days=89))")
Q="/v2/clients/$C/analytics/apps/utilization/categories?start_date=$START&end_date=$END&granularity=weekly&is_approved=true"
t() { curl -s -o /dev/null -w "%{time_total}" -H "$H" "http://127.0.0.1:$P$Q"; }
echo "fresh server: requests $(t) $(t) $(t) s; after 0.3 s: $(sleep 0.3; t) $(t) s"
for _ in 1 2 3; do
  R=$(curl -s -o /dev/null -w "%{http_code} in %{time_total} s" -X POST -H "$H" "http://127.0.0.1:$P/v2/admin/reload")
  echo "reload $R; first request after it $(t) s, second $(t) s"
done
