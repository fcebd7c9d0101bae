#!/usr/bin/env bash
# Configures, builds and runs all of diffuse's tests with ctest.
#   tools/test.sh                     with g++, in build-g++/
#   CXX=clang++ tools/test.sh         with clang++, in build-clang++/
# Environment: CXX (compiler, default g++), DIFFUSE_BUILD_DIR (build folder, default build-<compiler>),
# BUILD_TYPE (default Release), DIFFUSE_WARNINGS_AS_ERRORS (ON in CI, default OFF), JOBS (default nproc).
# Extra arguments go to ctest (e.g. tools/test.sh -R adapt).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/ensure-packages.sh" test

cxx=${CXX:-g++}
build=${DIFFUSE_BUILD_DIR:-$root/build-$(basename "$cxx")}
jobs=${JOBS:-$(nproc)}

cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  -DDIFFUSE_WARNINGS_AS_ERRORS="${DIFFUSE_WARNINGS_AS_ERRORS:-OFF}"
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" -j "$jobs" --output-on-failure "$@"
