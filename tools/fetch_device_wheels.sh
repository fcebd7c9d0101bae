#!/usr/bin/env bash
# The Python wheels benchmarks/cuda/run_device_checks.sh needs on a GPU machine that cannot reach PyPI:
# diffusers (the PyTorch-eager U-Net peer, tools/bench_unet_cuda.py, and the full-size cifar10 folder,
# tools/gen_unet_golden.py --large), importlib_metadata, which diffusers requires, and nvidia-cudnn-frontend (the
# headers of cuda/cudnn_conv.hpp). torch, numpy, safetensors, huggingface_hub and the rest are in the GPU
# machine's image (the device library's KINDS.md).
# Run here, where pip reaches PyPI; the wheels land in .whl/ (git-ignored), which the device run carries:
#   tools/fetch_device_wheels.sh            # diffusers at the version installed here, else 0.42.1
#   device run: carry [".whl"], command "benchmarks/cuda/run_device_checks.sh"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(python3 -c 'import diffusers; print(diffusers.__version__)' 2>/dev/null || echo 0.42.1)
mkdir -p "$root/.whl"
# Pure-Python wheels (py3-none-any), so the device machine's Python (3.12) takes them whatever this one is.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$root/.whl" "diffusers==$version" importlib_metadata
# The cuDNN frontend's wheel (its include/ folder: cuda/cudnn_conv.hpp), which run_device_checks.sh extracts into
# .deps/cudnn-frontend (tools/fetch_cudnn_frontend.sh) rather than installs: any Python's wheel holds the headers.
# (the version fetch_cudnn_frontend.sh pins, which looks for this wheel in .whl by it)
frontend=$(sed -n 's/^version=//p' "$root/tools/fetch_cudnn_frontend.sh")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 -d "$root/.whl" "nvidia-cudnn-frontend==$frontend"
ls -l "$root/.whl"
