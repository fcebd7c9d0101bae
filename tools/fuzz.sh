#!/usr/bin/env bash
# Builds diffuse's libFuzzer targets (tests/fuzz/fuzz_*.cpp) with clang, AddressSanitizer and UBSan, and
# runs each for a while on its committed seed corpus.
#   tools/fuzz.sh                  every target for 60 s
#   tools/fuzz.sh 600              every target for 10 minutes (before a release)
#   tools/fuzz.sh 120 json npy     only fuzz_json and fuzz_npy, 120 s each
# Environment: CXX (default clang++), DIFFUSE_FUZZ_BUILD_DIR (default build-fuzz; a folder configured with
# DIFFUSE_BUILD_FUZZERS=ON already is not reconfigured: .ci/run names its sanitizer build), JOBS (build jobs,
# default nproc), FUZZ_PARALLEL (targets run at once, default 1; .ci/run uses 2).
# Each fuzz_<name> reads tests/fuzz/corpus/<name>/ (never written to) and tests/fuzz/<name>.dict when there
# is one; the inputs it finds go to <build>/fuzz-corpus/<name>/ (kept between runs, so a rerun continues
# from them), a crashing input (or one that takes over 25 s or 2 GB) to <build>/fuzz-artifacts/<name>/ — copy it into tests/fuzz/corpus/<name>/
# (as bad_<what>.<ext> once fixed) so CTest replays it from then on. At the end a table gives each
# target's executions and crashes; the status is 1 when any target crashed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [seconds] [target...]" >&2; exit 2; }
(( $# > 0 )) && shift
cxx=${CXX:-clang++}
build=${DIFFUSE_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${JOBS:-$(nproc)}

"$root/tools/ensure-packages.sh" test

targets=()
if (( $# > 0 )); then
  for name in "$@"; do targets+=("fuzz_${name#fuzz_}"); done
else
  for src in "$root"/tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi
for t in "${targets[@]}"; do
  [[ -f "$root/tests/fuzz/$t.cpp" ]] || { echo "diffuse: no fuzz target tests/fuzz/$t.cpp" >&2; exit 2; }
done

echo "diffuse: tools/fuzz.sh builds ${targets[*]} with $cxx (ASan + UBSan) in $build," >&2
echo "         then runs each for $seconds s, ${FUZZ_PARALLEL:-1} at a time (about $(( (${#targets[@]} * seconds / ${FUZZ_PARALLEL:-1} + 59) / 60 )) min in all, plus the build)" >&2
# A build folder already configured with the fuzzers is used as it is (CI: the sanitizer build of
# `CXX=clang++ DIFFUSE_SANITIZE=ON DIFFUSE_BUILD_FUZZERS=ON tools/test.sh`, where they are built already).
if ! grep -qs '^DIFFUSE_BUILD_FUZZERS:BOOL=ON$' "$build/CMakeCache.txt"; then
  cmake -S "$root" -B "$build" -G Ninja \
    -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDIFFUSE_BUILD_FUZZERS=ON >/dev/null
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

# One target: its run's log in $build/fuzz-<name>.log, its summary line(s) in $build/fuzz-<name>.summary,
# status 1 when it crashed.
run_target() {
  local t=$1 name=${1#fuzz_}
  local seeds=$root/tests/fuzz/corpus/$name scratch=$build/fuzz-corpus/$name artifacts=$build/fuzz-artifacts/$name
  mkdir -p "$scratch" "$artifacts"
  # -timeout: an input that takes 25 s (a quadratic path, a hang) counts as a crash, as does one above 2 GB
  local args=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/")
  [[ -f "$root/tests/fuzz/$name.dict" ]] && args+=(-dict="$root/tests/fuzz/$name.dict")
  local corpora=("$scratch")
  [[ -d "$seeds" ]] && corpora+=("$seeds")
  local log=$build/fuzz-$name.log out=$build/fuzz-$name.summary
  echo "diffuse: $t for $seconds s (log: $log)" >&2
  local status=0
  "$build/tests/fuzz/$t" "${args[@]}" "${corpora[@]}" >"$log" 2>&1 || status=$?
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if (( status != 0 )); then
    {
      printf '%-22s %12s runs  CRASHED (status %d): %s\n' "$t" "${runs:-?}" "$status" \
        "$(grep -m1 -E 'ERROR|runtime error|deadly signal' "$log" || echo 'see the log')"
      printf '%-22s %12s       input: %s\n' '' '' "$(ls -t "$artifacts" | head -n 1)"
    } >"$out"
    return 1
  fi
  printf '%-22s %12s runs  no crash\n' "$t" "${runs:-?}" >"$out"
}

# FUZZ_PARALLEL targets at a time (default 1): CI runs two on its two cores.
parallel=${FUZZ_PARALLEL:-1}
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || { echo "diffuse: FUZZ_PARALLEL must be a positive integer" >&2; exit 2; }
pids=()
for t in "${targets[@]}"; do
  while (( $(jobs -rp | wc -l) >= parallel )); do wait -n || true; done
  run_target "$t" &
  pids+=($!)
done
crashed=0
for pid in "${pids[@]}"; do wait "$pid" || crashed=1; done
summary=()
for t in "${targets[@]}"; do
  while IFS= read -r line; do summary+=("$line"); done <"$build/fuzz-${t#fuzz_}.summary"
done

echo >&2
echo "diffuse: fuzzing, $seconds s per target:" >&2
printf '  %s\n' "${summary[@]}" >&2
exit "$crashed"
