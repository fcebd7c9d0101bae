#!/usr/bin/env python3
"""torch.randn and numpy's normal generators against diffuse's normal_fill, in one run.

Times, on one thread, float32 standard normals of N = 2^20 values: torch.randn(N) (torch.set_num_threads(1)),
numpy.random.default_rng(0).standard_normal(N, dtype=float32) and numpy.random.standard_normal(N) (the legacy
generator, float64), each the median of --reps calls in CPU time (time.process_time: robust on a shared
machine). In the same run it runs the C++ benchmark

    BIN --benchmark_filter=bm_normal_fill<float>/1048576 --benchmark_format=json
        --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

and prints values/s of each normal kernel (portable, sse2, avx2, avx512; median cpu_time) and the ratios to torch.

    python3 tools/bench_noise.py [--ours build/benchmarks/bench_noise] [--reps 21]
"""
import argparse
import json
import statistics
import subprocess
import time

import numpy as np
import torch

N = 1 << 20
KERNELS = {0: "portable", 1: "sse2", 2: "avx2", 3: "avx512"}


def cpu_median(f, reps):
    f()  # warm-up
    times = []
    for _ in range(reps):
        c0 = time.process_time()
        f()
        times.append(time.process_time() - c0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", default="build/benchmarks/bench_noise")
    ap.add_argument("--reps", type=int, default=21)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    peers = {
        "torch.randn float32": cpu_median(lambda: torch.randn(N), args.reps),
        "numpy Generator.standard_normal float32": cpu_median(lambda: rng.standard_normal(N, dtype=np.float32), args.reps),
        "numpy legacy standard_normal float64": cpu_median(lambda: np.random.standard_normal(N), args.reps),
    }
    cmd = [args.ours, f"--benchmark_filter=bm_normal_fill<float>/{N}/", "--benchmark_format=json",
           "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true"]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    ours = {}
    for b in out["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        kernel = int(b["run_name"].rsplit("/", 1)[1])
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        ours[f"diffuse normal_fill<float> {KERNELS[kernel]}"] = b["cpu_time"] * scale
    torch_s = peers["torch.randn float32"]
    print(f"{'generator (one thread, 2^20 values)':45s} {'M values/s':>11s} {'vs torch.randn':>15s}")
    for name, s in list(peers.items()) + list(ours.items()):
        print(f"{name:45s} {N / s / 1e6:11.0f} {torch_s / s:14.2f}x")


if __name__ == "__main__":
    main()
