#!/usr/bin/env bash
# The Python client of the binary protocol against a live `tally serve` on the bundled sample:
# its unit tests, then the equivalence check of both listeners (HTTP JSON, binary JSON and the
# compact encoding give the same answers; cursors, pipelining and the error rules of
# docs/PROTOCOL.md §5).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18095}
python3 tools/test_tally_client.py -q
. tools/lib/serve.sh
start_tally "$PORT"
python3 tools/check_binary.py --http-port "$PORT" --binary-port "$((PORT + 1))" --dump data/sample --queries "${QUERIES:-400}"
