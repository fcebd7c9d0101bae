#!/usr/bin/env bash
# Configures, builds and runs all of diffuse's tests with ctest.
#   tools/test.sh                     with g++, in build-g++/ (needs no clang)
#   CXX=clang++ tools/test.sh         with clang++, in build-clang++/
#   CXX=clang++ DIFFUSE_BUILD_FUZZERS=ON tools/test.sh    also builds the libFuzzer targets (tests/fuzz)
#   CXX=clang++ DIFFUSE_SANITIZE=ON tools/test.sh         every test under AddressSanitizer + UBSan, in
#                                                         build-clang++-sanitize/ (a report fails the test)
#   CXX=clang++ DIFFUSE_SANITIZE=ON DIFFUSE_BUILD_FUZZERS=ON tools/test.sh   both, as CI: the fuzzers are linked
#                                                         from the sanitizer build's objects (tests/fuzz), and
#                                                         DIFFUSE_FUZZ_BUILD_DIR=build-clang++-sanitize tools/fuzz.sh
#                                                         runs them there
# Environment: CXX (compiler, default g++), DIFFUSE_BUILD_DIR (build folder, default build-<compiler>, with
# -sanitize appended when sanitizing), BUILD_TYPE (default Release), DIFFUSE_WARNINGS_AS_ERRORS (ON in CI,
# default OFF), DIFFUSE_BUILD_FUZZERS (default OFF; clang only), DIFFUSE_SANITIZE (default OFF:
# -fsanitize=address,undefined -fno-sanitize-recover=all at -O1 for the whole build, without the standalone
# header check and the benchmarks unless DIFFUSE_CHECK_HEADERS / DIFFUSE_BUILD_BENCHMARKS say ON; the tests run
# with ASAN_OPTIONS / UBSAN_OPTIONS that stop at the first report unless the environment sets them),
# DIFFUSE_TEST_COMPILE_OPTIONS (options for the test programs but the compute-heavy ones named in
# tests/CMakeLists.txt, default -O0: most tests cost far more to compile than to run; set it empty for tests
# at the build type's optimisation), JOBS (default nproc).
# Extra arguments go to ctest (e.g. tools/test.sh -R adapt).
# It prints what it will do and how long a full run usually takes, and at the end the time it took; a
# rerun rebuilds only what changed.
set -euo pipefail

start=$(date +%s)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cxx=${CXX:-g++}
build=${DIFFUSE_BUILD_DIR:-$root/build-$(basename "$cxx")}
jobs=${JOBS:-$(nproc)}
build_type=${BUILD_TYPE:-Release}
werror=${DIFFUSE_WARNINGS_AS_ERRORS:-OFF}
fuzzers=${DIFFUSE_BUILD_FUZZERS:-OFF}
sanitize=${DIFFUSE_SANITIZE:-OFF}
sanitizer_flags=()
test_options=${DIFFUSE_TEST_COMPILE_OPTIONS--O0}
if [[ "$sanitize" == ON ]]; then
  build=${DIFFUSE_BUILD_DIR:-$root/build-$(basename "$cxx")-sanitize}
  flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
  # -O1 (AddressSanitizer's recommendation) instead of -O3: a shorter compile, which is most of the run
  # The standalone header check and the benchmarks run no code under test: the plain build compiles them, the
  # sanitizer build leaves them out (DIFFUSE_CHECK_HEADERS / DIFFUSE_BUILD_BENCHMARKS=ON put them back).
  sanitizer_flags=(-DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG"
                   -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
                   -DDIFFUSE_CHECK_HEADERS="${DIFFUSE_CHECK_HEADERS:-OFF}"
                   -DDIFFUSE_BUILD_BENCHMARKS="${DIFFUSE_BUILD_BENCHMARKS:-OFF}")
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

# clang (Debian package "clang") only for a clang build, which the libFuzzer targets need as well; libtorch
# only for a gcc build (libtorch 1.13's headers do not compile as C++20 with clang: diffuse::torch needs gcc).
case "$(basename "$cxx")" in
  clang*) "$root/tools/ensure-packages.sh" test --without libtorch-dev ;;
  *) "$root/tools/ensure-packages.sh" test --without clang ;;
esac

elapsed() {
  local s=$(( $(date +%s) - start ))
  printf '%d min %02d s' $(( s / 60 )) $(( s % 60 ))
}
trap 'status=$?; echo "diffuse: tools/test.sh $( (( status == 0 )) && echo passed || echo "failed (status $status)") after $(elapsed)" >&2' EXIT

if [[ -f "$build/CMakeCache.txt" ]]; then what="rebuilds what changed"; else what="builds everything"; fi
cat >&2 <<EOF
diffuse: tools/test.sh $what with $cxx ($build_type, warnings as errors: $werror, fuzzers: $fuzzers,
         sanitizers: $sanitize, $jobs jobs)
         in $build, then runs every test with ctest.
         From an empty build folder this takes about 15 minutes on a 2-core machine (with CI's -O0 test
         programs, 2026-12-03: 15 min 00 s with g++ 12, libtorch tests included; 15 min 51 s with clang 14
         under the sanitizers), nearly all of it compiling; a rerun rebuilds only what changed.
EOF

cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DDIFFUSE_WARNINGS_AS_ERRORS="$werror" \
  -DDIFFUSE_BUILD_FUZZERS="$fuzzers" \
  -DDIFFUSE_TEST_COMPILE_OPTIONS="$test_options" \
  "${sanitizer_flags[@]}"
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" -j "$jobs" --output-on-failure "$@"
