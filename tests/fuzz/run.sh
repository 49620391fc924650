#!/usr/bin/env bash
# Run every fuzz target (or those named) over its checked-in corpus for
# SECONDS each, FUZZ_JOBS targets at a time (default: one per core); fail
# on any crash, leak, UB report or timeout. New inputs the fuzzer finds go
# to BUILD_DIR/fuzz-work/<target>/corpus, never into the repository; a
# failing input to BUILD_DIR/fuzz-work/<target>/. `make fuzz` calls this;
# README "Fuzzing" says how to keep a finding.
#
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2; exit 2; }
build=$1
secs=$2
shift 2
jobs=${FUZZ_JOBS:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$here"/corpus/*/; do targets+=("$(basename "$d")"); done
fi

# One target; its verdict goes to fuzz-work/<target>/result.
fuzz_one() {
  local t=$1 bin=$build/bin/fuzz_$1 work=$build/fuzz-work/$1
  mkdir -p "$work/corpus"
  rm -f "$work/result"
  if [ ! -x "$bin" ]; then
    echo "no $bin (build the fuzz_all target first)" >"$work/log"
    echo fail >"$work/result"
    return
  fi
  local start=$SECONDS
  # The first corpus dir receives new inputs; the checked-in one is read.
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/" \
      "$work/corpus" "$here/corpus/$t" >"$work/log" 2>&1; then
    local runs cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 || true)
    echo "ok, ${runs:-?} runs in $((SECONDS - start)) s, $cov" >"$work/result"
  else
    echo fail >"$work/result"
  fi
}

for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  result=$(cat "$work/result" 2>/dev/null || echo fail)
  if [ "$result" = fail ]; then
    echo "fuzz $t: FAILED; the end of $work/log:"
    tail -40 "$work/log"
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* \
      2>/dev/null || true
    failed+=("$t")
  else
    echo "fuzz $t: $result"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ok, $secs s each"
