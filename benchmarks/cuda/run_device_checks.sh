#!/usr/bin/env bash
# The device checks of the CUDA backend, for a machine with an NVIDIA GPU (none in CI), in about 5 minutes:
#   1. configure with DIFFUSE_ENABLE_CUDA=ON for this GPU's architecture (nvidia-smi's compute_cap),
#      without the host tests (no Catch2/RapidCheck needed), warnings as errors;
#   2. build test_cuda_gpu and bench_cuda (and test_cudnn_gpu, bench_cudnn: 4b);
#   3. run test_cuda_gpu (every device primitive against the host primitive, bit for bit; cuBLAS's GEMMs in
#      fp32, tf32, bf16, fp16; the device U-Net against the CPU one in each precision; sampling runs and U-Net
#      forwards captured as CUDA graphs against the direct runs, bit for bit; when torch with CUDA imports,
#      torch.randn on this GPU against torch_cuda_generator, tools/gen_torch_cuda_randn.py);
#   4. print bench_cuda's table: lincomb (3 inputs) bandwidth against cudaMemcpy device to device in the same
#      run (goal >= 85 %), fill_normal and lincomb_noise rates, sum_squares, and the device U-Net forward
#      (batch 1 and 64; GEMM operands fp32, tf32, bf16, fp16 with float accumulation) of a UNet2DModel folder,
#      and a 50-step DDIM run over it (fp32, batch 1 and 64) directly and as one CUDA graph replay;
#   4b. with the cuDNN frontend's headers (tools/fetch_cudnn_frontend.sh, or the wheel in .whl extracted here):
#      test_cudnn_gpu (cudnn_conv_engine against the direct convolution and inside the device U-Net) and
#      bench_cudnn (the U-Net forward with im2col against cuDNN, same run), 60 s each at most;
#   5. the same forwards in PyTorch eager (tools/bench_unet_cuda.py: fp32 with TF32 off, tf32 with TF32 on,
#      the model in bfloat16 / float16), when torch with CUDA and diffusers import, and the same-run ratios
#      diffuse ms / torch ms per batch and precision (goal <= 0.8).
# Usage: benchmarks/cuda/run_device_checks.sh [build-dir] [elements-per-tensor] [unet-folder]
#   (exit status: the tests' (test_cuda_gpu, else test_cudnn_gpu); unet-folder: tests/golden/unet-large/cifar10 — google/ddpm-cifar10-32's config,
#   written here by tools/gen_unet_golden.py --large when diffusers imports and the folder is absent — else
#   the bundled Fashion-MNIST model, examples/fashion_mnist/unet)
# On a machine without PyPI (the device library's H200): run tools/fetch_device_wheels.sh where pip works
# first, and carry .whl: the wheels found there are installed into /tmp/diffuse-site for this script's Python.
# Time: the whole run keeps within DIFFUSE_DEVICE_BUDGET_S seconds (default 540, under the device tool's 600 s a
# command): each phase's timeout is its own cap or what is left, whichever is less, and a phase that would get
# under 20 s is skipped with a line saying so. Each phase's output also goes to a file in $OUT when it is set
# (the device tool brings that folder back even from a command stopped at its limit), else beside the build.
# The test and the benchmark print line by line, so what ran before a stop is kept.
set -euo pipefail

start=$SECONDS
budget=${DIFFUSE_DEVICE_BUDGET_S:-540}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build-device-checks}
elements=${2:-67108864}
logs=${OUT:-$build-logs}
mkdir -p "$logs"
# the timeout of a phase: its cap, or the time left in the budget when that is less; 0 when under 20 s are left
limit() {
  local left=$((budget - (SECONDS - start)))
  if ((left < 20)); then echo 0; elif ((left < $1)); then echo "$left"; else echo "$1"; fi
}
# runs a phase under limit CAP, or says that it is skipped: phase NAME CAP command...
phase() {
  local name=$1 t
  t=$(limit "$2")
  shift 2
  if ((t == 0)); then
    echo "== $name: skipped (the time budget of ${budget} s is spent)"
    return 124
  fi
  timeout "$t" "$@"
}

echo "== tools: $(command -v nvcc || echo 'no nvcc on PATH'); $(cmake --version | head -n 1); $(g++ --version | head -n 1)"
wheels=()
for w in "$root"/.whl/*.whl; do
  [[ -f $w && $(basename "$w") != nvidia_cudnn_frontend-* ]] && wheels+=("$w")  # (the frontend's: headers, below)
done
if ((${#wheels[@]})); then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/diffuse-site \
    "${wheels[@]}" && export PYTHONPATH=/tmp/diffuse-site${PYTHONPATH:+:$PYTHONPATH} ||
    echo "run_device_checks: the wheels in .whl did not install: the PyTorch comparison may be skipped" >&2
fi
# the cuDNN frontend's headers (cuda/cudnn_conv.hpp) into .deps from the wheel in .whl (no PyPI here)
if [[ ! -f $root/.deps/cudnn-frontend/include/cudnn_frontend.h ]] && compgen -G "$root/.whl/nvidia_cudnn_frontend-*.whl" >/dev/null; then
  "$root/tools/fetch_cudnn_frontend.sh" || echo "run_device_checks: the cuDNN frontend's wheel did not extract" >&2
fi
unet=${3:-$root/tests/golden/unet-large/cifar10}
if [[ -z ${3:-} && ! -d $unet ]] && python3 -c 'import torch, diffusers' 2>/dev/null; then
  (cd "$root" && phase "gen_unet_golden.py --large" 60 python3 tools/gen_unet_golden.py --large) ||
    echo "run_device_checks: gen_unet_golden.py --large failed" >&2
fi
[[ -d $unet ]] || unet=$root/examples/fashion_mnist/unet
echo "== U-Net folder: $unet"

command -v nvidia-smi >/dev/null || { echo "run_device_checks: nvidia-smi not found: no NVIDIA GPU here" >&2; exit 2; }
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' ')
arch=${cap/./}
[[ $arch =~ ^[0-9]+$ ]] || { echo "run_device_checks: unexpected compute capability '$cap'" >&2; exit 2; }
nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
echo "== GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1), sm_$arch; nvcc: $nvcc"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
phase configure 90 cmake -S "$root" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DDIFFUSE_ENABLE_CUDA=ON -DDIFFUSE_WARNINGS_AS_ERRORS=ON \
  -DDIFFUSE_BUILD_TESTS=OFF -DDIFFUSE_BUILD_BENCHMARKS=OFF -DDIFFUSE_BUILD_EXAMPLES=OFF -DDIFFUSE_BUILD_CLI=OFF \
  -DDIFFUSE_CHECK_HEADERS=OFF -DDIFFUSE_INSTALL=OFF -DDIFFUSE_ENABLE_MPI=OFF -DDIFFUSE_ENABLE_TORCH=OFF >"$logs/configure.log" 2>&1 ||
  { tail -n 40 "$logs/configure.log"; exit 3; }
echo "== configured at $((SECONDS - start)) s"
targets=(test_cuda_gpu bench_cuda)
cudnn=0  # whether diffuse::cudnn was configured (the frontend's headers in .deps, cuDNN in the toolkit)
if cmake --build "$build" --target help 2>/dev/null | grep -q test_cudnn_gpu; then
  cudnn=1
  targets+=(test_cudnn_gpu bench_cudnn)
else
  echo "== cuDNN: the frontend's headers or cuDNN not found (tools/fetch_cudnn_frontend.sh): test_cudnn_gpu and bench_cudnn skipped"
fi
phase build 240 cmake --build "$build" --target "${targets[@]}" -j "$(nproc)" >"$logs/build.log" 2>&1 ||
  { tail -n 60 "$logs/build.log"; exit 4; }
echo "== built at $((SECONDS - start)) s"

status=0
randn_dir=
if python3 -c 'import torch, numpy; assert torch.cuda.is_available()' 2>/dev/null; then
  randn_dir=$build/torch_cuda_randn  # torch.randn on this GPU, which test_cuda_gpu compares with torch_cuda_generator
  phase gen_torch_cuda_randn.py 45 python3 "$root/tools/gen_torch_cuda_randn.py" --out "$randn_dir" || randn_dir=
fi
echo "== test_cuda_gpu at $((SECONDS - start)) s"
{
  DIFFUSE_TORCH_RANDN_DIR=$randn_dir phase test_cuda_gpu 150 "$build/tests/cuda/test_cuda_gpu" 2>&1 | tee "$logs/test_cuda_gpu.txt"
  status=${PIPESTATUS[0]}
} || true
echo "== bench_cuda ($elements floats per tensor) at $((SECONDS - start)) s"
phase bench_cuda 150 "$build/benchmarks/cuda/bench_cuda" "$elements" "$unet" 2>&1 | tee "$logs/bench_cuda.txt" ||
  echo "bench_cuda failed: ${PIPESTATUS[0]}"
if ((cudnn)); then
  echo "== test_cudnn_gpu at $((SECONDS - start)) s"
  {
    phase test_cudnn_gpu 60 "$build/tests/cuda/test_cudnn_gpu" 2>&1 | tee "$logs/test_cudnn_gpu.txt"
    cudnn_status=${PIPESTATUS[0]}
    ((status != 0 || cudnn_status == 0)) || status=$cudnn_status
  } || true
  echo "== bench_cudnn ($unet) at $((SECONDS - start)) s"
  phase bench_cudnn 60 "$build/benchmarks/cuda/bench_cudnn" "$unet" 2>&1 | tee "$logs/bench_cudnn.txt" ||
    echo "bench_cudnn failed: ${PIPESTATUS[0]}"
fi
if python3 -c 'import torch, diffusers; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "== PyTorch eager, same U-Net ($unet) at $((SECONDS - start)) s"
  PYTHONUNBUFFERED=1 phase bench_unet_cuda.py 120 python3 "$root/tools/bench_unet_cuda.py" --model "$unet" 2>&1 |
    tee "$logs/bench_torch.txt" || echo "bench_unet_cuda.py failed: ${PIPESTATUS[0]}"
  echo "== diffuse / torch eager time, same run (goal <= 0.8)"
  # lines "... forward, batch B HxW (precision) ms img/s": join on (B, precision)
  awk 'FNR == NR && /^unet2d forward/ { for (i = 1; i <= NF; ++i) if ($i == "batch") k = $(i + 1) " " $(i + 3); d[k] = $(NF - 2); next }
       /^torch eager unet forward/ { for (i = 1; i <= NF; ++i) if ($i == "batch") k = $(i + 1) " " $(i + 3);
         if (k in d) printf "unet forward, batch %-4s %-6s diffuse %10.3f ms  torch %10.3f ms  ratio %.2f\n", \
           substr(k, 1, index(k, " ") - 1), substr(k, index(k, " ") + 1), d[k], $(NF - 2), d[k] / $(NF - 2) }' \
    "$logs/bench_cuda.txt" "$logs/bench_torch.txt" | tee "$logs/ratios.txt" || true
else
  echo "== PyTorch eager: torch with CUDA or diffusers not importable: skipped"
fi
echo "== done in $((SECONDS - start)) s; test status $status"
exit "$status"
