#!/usr/bin/env bash
# The whole test suite: unit, equivalence and load-error tests, plus the sample dump's own check.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh
python3 tools/check_sample_dump.py >/dev/null
swift build --build-tests  # the seed replay test starts the tally executable
swift test --parallel --skip-build
./tools/binary_check.sh
python3 tools/metrics_check.py               # /metrics read with prometheus_client's parser
python3 tools/lifecycle_check.py               # SIGHUP and SIGTERM under load
python3 tools/console_check.py --tally .build/debug/tally   # the console in headless Chromium
python3 tools/s3_check.py          # object storage against moto_server on loopback
./tools/schemathesis.sh
# The shipped configuration (release, -O with every check on): the protocol and API checks again.
swift build -c release --scratch-path .build-release --product tally
TALLY_BIN=.build-release/release/tally PORT=18195 ./tools/binary_check.sh
TALLY_BIN=.build-release/release/tally PORT=18189 ./tools/schemathesis.sh
python3 tools/load/connections.py --tally .build-release/release/tally --check   # slow and idle connections
# Every libFuzzer target for a few seconds each (docs/FUZZING.md), replaying its committed seeds
# and the reproducers of past findings (crash-*): non-zero on a trap, sanitizer report or leak.
./tools/fuzz.sh
