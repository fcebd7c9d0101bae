#!/usr/bin/env bash
# Builds and runs diffuse's main demo: the bundled Fashion-MNIST U-Net draws one row of images per class
# (examples/image_demo.cpp; e.g. tools/demo.sh --sampler dpmpp_2m --steps 20 --guidance 3 --seed 0).
#   tools/demo.sh --quickstart [ARGS]   the training example instead (examples/quickstart.cpp: an MLP on 2-D data)
# The picture goes to the build folder (build-demo/fashion_mnist.png, build-demo/quickstart.png) unless
# --out FILE names another; the program prints the file it wrote.
# Environment: CXX (compiler, default g++), DIFFUSE_BUILD_DIR (build folder, default build-demo).
# Other arguments go to the demo program.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/ensure-packages.sh" build

demo=image_demo
if [[ "${1:-}" == "--quickstart" ]]; then
  demo=quickstart
  shift
fi
build=${DIFFUSE_BUILD_DIR:-$root/build-demo}
mkdir -p "$build"
build=$(cd "$build" && pwd)
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="${CXX:-g++}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DDIFFUSE_BUILD_TESTS=OFF -DDIFFUSE_BUILD_BENCHMARKS=OFF -DDIFFUSE_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" --target "example_$demo"

# Both programs take --out FILE; unless given, the picture goes to the build folder.
out=(--out "$build/fashion_mnist.png")
if [[ $demo == quickstart ]]; then out=(--out "$build/quickstart.png"); fi
for arg in "$@"; do
  if [[ "$arg" == --out ]]; then out=(); fi
done
"$build/examples/example_$demo" "${out[@]}" "$@"
