#!/usr/bin/env python3
"""torch.randn on a CUDA device, for the check of torch_cuda_generator (include/diffuse/core/torch_cuda_generator.hpp)
on a GPU machine: benchmarks/cuda/run_device_checks.sh runs it, then test_cuda_gpu compares (no GPU in CI, so the
files are not committed).

    python3 tools/gen_torch_cuda_randn.py --out DIR

Needs torch with CUDA and numpy. Writes to DIR:
  device.npy     uint64 [multiprocessors, max threads per multiprocessor] of device 0 (torch's launch reads both)
  float32.npy    for each seed of SEEDS: g = torch.Generator("cuda").manual_seed(seed), then randn(n, generator=g)
  float64.npy    for each n of SIZES in order (one generator per seed, so the offsets advance), concatenated
(tests/cuda/test_cuda_gpu.cu hard-codes the same lists.)
"""
import argparse
import os

import numpy as np
import torch

SEEDS = [0, 42, 2**40 + 3]
SIZES = [1, 7, 4096, 300000, 5]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    p = torch.cuda.get_device_properties(0)
    np.save(os.path.join(args.out, "device.npy"),
            np.array([p.multi_processor_count, p.max_threads_per_multi_processor], dtype=np.uint64))
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        parts = []
        for seed in SEEDS:
            g = torch.Generator("cuda").manual_seed(seed)
            for n in SIZES:
                parts.append(torch.randn(n, generator=g, device="cuda", dtype=dtype).cpu().numpy())
        np.save(os.path.join(args.out, name + ".npy"), np.concatenate(parts))
    print(f"wrote {args.out}: {p.name}, {p.multi_processor_count} multiprocessors x {p.max_threads_per_multi_processor} threads")


if __name__ == "__main__":
    main()
