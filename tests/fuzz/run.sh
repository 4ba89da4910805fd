#!/usr/bin/env bash
# Runs every libFuzzer target (or those in FUZZ_TARGETS) for FUZZ_SECONDS each,
# one at a time under nice, and prints per target: execs, execs/s, coverage
# (libFuzzer's cov = edges, ft = features) and the corpus size.
#
#   tests/fuzz/run.sh [build-dir]        (default build-fuzz; make fuzz runs it)
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>/,
# read only: they include every input that once crashed, so each run replays
# them first) plus what earlier runs found (<build-dir>/corpus/<target>/,
# where new inputs go). A crash, a leak, a sanitizer report or a timeout stops
# that target with its input in <build-dir>/crashes/; the script then exits 1
# naming it. Reproduce: <build-dir>/bin/fuzz_<target> <that file>.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-build-fuzz}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-command event projection cursor params wait query_body control admin admin_path schema_path jsonschema auth http json jwks}

# Per-target options: the HTTP target's inputs must reach the 8 KiB request
# line, 32 KiB header and 2 KiB body limits; query bodies go past libFuzzer's
# 4 KiB default (long strings, deep nesting), with JSON's tokens and escapes
# in a dictionary (without it, 60 s did not find a "\u0000").
opts_for() {
  case $1 in
  http) echo "-max_len=40960" ;;
  query_body) echo "-max_len=16384 -dict=$ROOT/tests/fuzz/query_body.dict" ;;
  *) echo "" ;;
  esac
}

mkdir -p "$BUILD/crashes" "$BUILD/fuzz-logs"
failed=()
printf '%-11s %6s %11s %9s %6s %6s %8s\n' target secs execs execs/s cov ft corpus
for t in $TARGETS; do
  bin=$BUILD/bin/fuzz_$t
  [[ -x $bin ]] || { echo "missing $bin (build with: make fuzz)" >&2; exit 2; }
  mkdir -p "$BUILD/corpus/$t"
  log=$BUILD/fuzz-logs/$t.log
  # shellcheck disable=SC2046
  nice -n 10 "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$BUILD/crashes/$t-" $(opts_for "$t") \
    "$BUILD/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  printf '%-11s %6s %11s %9s %6s %6s %8s\n' "$t" "$SECONDS_EACH" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}"
  if ((rc != 0)); then
    failed+=("$t")
    echo "  fuzz_$t failed (exit $rc): $(grep -m1 -E 'ERROR|property violated|SUMMARY' "$log")" >&2
    grep -E "Test unit written to" "$log" | sed 's/^/  /' >&2
    echo "  log: $log" >&2
  fi
done
if ((${#failed[@]})); then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
