#!/usr/bin/env bash
# Builds and runs diffuse's main demo (examples/quickstart.cpp).
# Environment: CXX (compiler, default g++), DIFFUSE_BUILD_DIR (build folder, default build-demo).
# Extra arguments go to the demo program.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/ensure-packages.sh" build

build=${DIFFUSE_BUILD_DIR:-$root/build-demo}
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="${CXX:-g++}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DDIFFUSE_BUILD_TESTS=OFF -DDIFFUSE_BUILD_BENCHMARKS=OFF -DDIFFUSE_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" --target example_quickstart
"$build/examples/example_quickstart" "$@"
