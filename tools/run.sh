#!/usr/bin/env bash
# Builds Tally (release) and runs it on the bundled sample dump in data/sample.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh
swift build -c release --product tally
exec .build/release/tally "$@"
