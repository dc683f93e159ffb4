#!/usr/bin/env bash
# libFuzzer targets of Fuzz/ (docs/FUZZING.md): builds them with -sanitize=fuzzer,address, then
# runs each on a copy of its committed seeds (Fuzz/Corpus/<Name>/, which never grow), one after
# the other. Exits non-zero when any target reports a crash, a trap, a sanitizer error, a leak,
# a timeout or running out of memory; the reproducer is kept under Fuzz/.build/fuzz-artifacts/.
#
#   ./tools/fuzz.sh                      # each target for 10 s (the test command's short run)
#   ./tools/fuzz.sh --seconds 60         # each for a minute
#   ./tools/fuzz.sh --runs 1000000 --only FuzzWAL   # a long run: a number of executions
#   ./tools/fuzz.sh --make-corpus        # rewrite the seeds (seed-*) from the targets' own encoders
#   ./tools/fuzz.sh --keep-corpus DIR    # leave each target's grown corpus in DIR/<Name>/
#
# Installs nothing: the toolchain's libFuzzer and sanitizers, and the package dependencies the
# main package resolved already (Package.resolved is copied so that the same versions are used).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(FuzzCSV FuzzFrame FuzzCompact FuzzQuery FuzzAppendBody FuzzSnapshot FuzzWAL)
SECONDS_EACH=10
RUNS=""
ONLY=""
MAKE_CORPUS=0
KEEP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --make-corpus) MAKE_CORPUS=1; shift ;;
        --keep-corpus) KEEP="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$ONLY" ]; then IFS=, read -r -a TARGETS <<< "$ONLY"; fi

START=$(date +%s)
if [ -d /dev/shm ] && [ -w /dev/shm ]; then WORK=$(mktemp -d /dev/shm/tally-fuzz.XXXXXX); else WORK=$(mktemp -d); fi
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/scratch"

# The main package's pins (Fuzz/Package.resolved is not committed): the same versions, offline.
if [ ! -f Fuzz/Package.resolved ] || [ Package.resolved -nt Fuzz/Package.resolved ]; then cp Package.resolved Fuzz/Package.resolved; fi
# SwiftPM keeps its build plan (Fuzz/.build/debug.yaml) across runs and does not notice a Swift
# file added to or removed from the main package (a path dependency here): the build then fails
# on the missing declarations. A file or folder of Sources/ newer than the plan makes it again.
if [ -f Fuzz/.build/debug.yaml ] && [ -n "$(find Sources -newer Fuzz/.build/debug.yaml \( -name '*.swift' -o -type d \) -print -quit)" ]; then
    rm -f Fuzz/.build/debug.yaml
fi
# Optimized (-O keeps overflow checks and preconditions; the main package's release-only
# -Ounchecked does not apply to a debug build): about 7 times the executions of -Onone.
if ! swift build --package-path Fuzz --scratch-path Fuzz/.build -c debug \
        -Xswiftc -O -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library > "$WORK/build.log" 2>&1; then
    grep -v -e "ld.gold: warning: Cannot export local symbol" "$WORK/build.log" | tail -40
    echo "fuzz.sh: the build failed" >&2
    exit 1
fi
BIN=Fuzz/.build/debug
for t in "${TARGETS[@]}"; do
    [ -x "$BIN/$t" ] || { echo "fuzz.sh: no fuzzer $t in $BIN" >&2; exit 1; }
done
BUILT=$(date +%s)

# The Swift runtime's own crash reporter would race libFuzzer's and ASan's (and can hang).
export SWIFT_BACKTRACE=enable=no
export TALLY_STORE_HEAP=1   # every buffer on the heap, where the address sanitizer sees its bounds (StoreMemory)
export TALLY_FUZZ_SCRATCH="$WORK/scratch"

if [ "$MAKE_CORPUS" = 1 ]; then
    for t in "${TARGETS[@]}"; do
        mkdir -p "Fuzz/Corpus/$t"
        rm -f "Fuzz/Corpus/$t"/seed-*
        TALLY_FUZZ_SEEDS="$PWD/Fuzz/Corpus/$t" "$BIN/$t" -runs=0 2>&1 | grep -e "seeds to" -e rror
    done
    du -sh Fuzz/Corpus
    exit 0
fi

FAILED=()
printf '\n%-15s %10s %8s %7s %7s %16s  %s\n' target runs exec/s cov ft corpus result
for t in "${TARGETS[@]}"; do
    dir="$WORK/$t"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -r "Fuzz/Corpus/$t/." "$dir/corpus/"
    limit=(-max_total_time="$SECONDS_EACH")
    [ -n "$RUNS" ] && limit=(-runs="$RUNS")
    extra=()
    # These two run every input through DispatchQueue.concurrentPerform, whose worker threads
    # free what a run allocated after it ends: libFuzzer would take every input for a possible
    # leak and scan the heap (20 times slower) until it gives up after 1,000. In a short run the
    # leak check is left to LeakSanitizer at exit; a long run keeps libFuzzer's.
    if [ -z "$RUNS" ] && { [ "$t" = FuzzCSV ] || [ "$t" = FuzzSnapshot ]; }; then extra=(-detect_leaks=0); fi
    status=0
    "$BIN/$t" "${limit[@]}" "${extra[@]}" -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "$dir/corpus" > "$dir/log" 2>&1 || status=$?
    final=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -1 || true)
    [ -n "$final" ] || final=$(grep -E '^#[0-9]+[[:space:]]+(pulse|NEW|REDUCE|INITED)' "$dir/log" | tail -1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$final")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$final")
    corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<< "$final")
    if [ "$status" = 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY: ' "$dir/log"; then
        result=ok
    else
        result="FAILED (exit $status)"
        FAILED+=("$t")
        keep="Fuzz/.build/fuzz-artifacts/$t"
        mkdir -p "$keep"
        cp "$dir/log" "$keep/log"
        cp "$dir/artifacts/"* "$keep/" 2>/dev/null || true
    fi
    printf '%-15s %10s %8s %7s %7s %16s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
    if [ -n "$KEEP" ]; then mkdir -p "$KEEP/$t"; cp -r "$dir/corpus/." "$KEEP/$t/"; fi
done
END=$(date +%s)
echo "build $((BUILT - START)) s, fuzzing $((END - BUILT)) s, total $((END - START)) s"

if [ ${#FAILED[@]} -gt 0 ]; then
    for t in "${FAILED[@]}"; do
        echo
        echo "== $t: Fuzz/.build/fuzz-artifacts/$t/ (reproduce: $BIN/$t <file>)"
        grep -E -A12 'ERROR: |Fatal error|SUMMARY: ' "Fuzz/.build/fuzz-artifacts/$t/log" | head -40
        ls "Fuzz/.build/fuzz-artifacts/$t/"
    done
    exit 1
fi
