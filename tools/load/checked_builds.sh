#!/usr/bin/env bash
# Checked (`-O`, the shipped release build) against unchecked (`-Ounchecked`) release builds
# under the dashboard mix, alternated in one run (tools/load/ab_mix.sh). Builds both first
# (two scratch folders; the unchecked one with TALLY_UNCHECKED=1, see Package.swift).
# Usage: tools/load/checked_builds.sh [seconds per run] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --scratch-path .build-release --product tally >/dev/null
TALLY_UNCHECKED=1 swift build -c release --scratch-path .build-unchecked --product tally >/dev/null
A_LABEL="-O" A_BIN=.build-release/release/tally A_ARGS="" \
B_LABEL="-Ounchecked" B_BIN=.build-unchecked/release/tally B_ARGS="" \
  exec tools/load/ab_mix.sh "$@"
