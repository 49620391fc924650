#!/usr/bin/env bash
# demo.sh BUILD_DIR: the body of `make demo`. Runs every example binary in
# BUILD_DIR/bin (example-*), shows what each prints, then summarizes the
# "example=NAME scenario=S result=ok|FAIL" lines they end their scenarios
# with. Exits 1 if any scenario failed, an example exited non-zero or printed
# no result line, or no example was found; 2 on a usage error.
#
# Each example starts its own trellisd and services (see examples/); they use
# the binaries of this BUILD_DIR (TRELLIS_BUILD_DIR) and its test-data/ for
# scratch. EXAMPLE_TIMEOUT (seconds, default 300) bounds each example.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
export TRELLIS_BUILD_DIR="$build"
timeout_s=${EXAMPLE_TIMEOUT:-300}

shopt -s nullglob
examples=("$build"/bin/example-*)
if [ ${#examples[@]} -eq 0 ]; then
  echo "demo: no example binaries in $build/bin (build first: make build)" >&2
  exit 1
fi

out=$(mktemp)
results=$(mktemp)
trap 'rm -f "$out" "$results"' EXIT
problems=()

# Run one example, show its output, keep its result lines.
run_example() {
  local ex=$1 name rc
  name=$(basename "$ex")
  echo
  echo "======== $name"
  timeout --kill-after=10 "$timeout_s" "$ex" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  grep -E '^example=[^ ]+ scenario=[^ ]+ result=' "$out" >>"$results"
  if [ "$rc" -eq 124 ]; then
    problems+=("$name: timed out after ${timeout_s}s")
  elif [ "$rc" -ne 0 ]; then
    problems+=("$name: exited with status $rc")
  fi
  if ! grep -qE '^example=[^ ]+ scenario=[^ ]+ result=' "$out"; then
    problems+=("$name: printed no result line")
  fi
}

for ex in "${examples[@]}"; do
  [ -x "$ex" ] && run_example "$ex"
done

echo
echo "======== summary"
n_ok=0
n_fail=0
while read -r ex sc res; do
  ex=${ex#example=}
  sc=${sc#scenario=}
  res=${res#result=}
  printf '  %-4s  %-12s %s\n' "$res" "$ex" "$sc"
  if [ "$res" = ok ]; then
    n_ok=$((n_ok + 1))
  else
    n_fail=$((n_fail + 1))
  fi
done <"$results"
for p in "${problems[@]}"; do
  echo "  !!    $p"
done
echo "$n_ok scenario(s) ok, $n_fail failed, ${#problems[@]} problem(s)"
[ "$n_fail" -eq 0 ] && [ ${#problems[@]} -eq 0 ]
