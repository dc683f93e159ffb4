#!/usr/bin/env bash
# Tally against DuckDB, chDB and PostgreSQL 15 on one dump (SPEC §7, issue 5).
#   tools/peers/compare.sh DUMP_DIR [--runs 5] [--engines duckdb,chdb,postgres] [--keep] ...
#   tools/peers/compare.sh --scale S|M|L [--seed 1] [options]   # `tally generate` into the scratch folder first
# Needs: python3 with duckdb chdb psycopg2-binary matplotlib lz4 (tools/peers/README.md),
# PostgreSQL 15 binaries in /usr/lib/postgresql/15/bin, root (PostgreSQL runs as the postgres user).
# Runs at nice 10; everything it starts (tally serve, postgres) listens on 127.0.0.1 and is stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -lt 1 ]; then
  echo "usage: $0 DUMP_DIR [options]  |  $0 --scale S|M|L [--seed N] [options]   (python3 $here/compare.py --help)" >&2
  exit 2
fi
exec nice -n "${NICE:-10}" python3 "$here/compare.py" "$@"
