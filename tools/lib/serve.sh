# Sourced by the load and API test scripts: start_tally PORT [serve options…] starts
# `tally serve` on loopback in the background (TALLY_PID) — HTTP on PORT, the binary protocol on
# PORT+1 — stops it when the script exits, and waits until /readyz answers (the data is loaded).
# The server's log goes to $TALLY_LOG.
TALLY_BIN=${TALLY_BIN:-.build/debug/tally}
TALLY_LOG=${TALLY_LOG:-/tmp/tally-serve-$$.log}

start_tally() {
  local port=$1
  shift
  "$TALLY_BIN" serve --port "$port" --binary-port "$((port + 1))" "$@" 2>"$TALLY_LOG" &
  TALLY_PID=$!
  trap 'kill $TALLY_PID 2>/dev/null || true; wait $TALLY_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 1200); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$TALLY_PID" 2>/dev/null || { echo "tally serve exited:" >&2; cat "$TALLY_LOG" >&2; return 1; }
    sleep 0.1
  done
  echo "tally serve did not become ready" >&2
  return 1
}
