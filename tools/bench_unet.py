#!/usr/bin/env python3
"""PyTorch peer of the U-Net benchmark, and the ratio printer.

Times one UNet2DModel forward pass of google/ddpm-cifar10-32's architecture (35,746,307 parameters, 32x32) in
float32 on CPU under torch.inference_mode(), at batch 1 and 8 with 1 and 2 torch threads: warm-up, then the
median of --reps timings of wall time (time.perf_counter) and process CPU time (time.process_time, which adds
up the CPU time of all threads). The model is loaded from tests/golden/unet-large/cifar10/ when present (write it
with `python3 tools/gen_unet_golden.py --large`), otherwise built from the config with random weights. Also
reports the time and the peak RSS (resource.getrusage) of UNet2DModel.from_pretrained on that folder, measured in
a fresh interpreter.

With --ours PATH it also runs the C++ Google Benchmark binary in the same run:
    PATH --benchmark_format=json --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
with DIFFUSE_UNET_DIR=<model folder>, takes the `median` aggregate of each benchmark whose name contains
batch:B and threads:N (e.g. BM_unet2d_forward/batch:1/threads:1), and prints ours/torch ratios.

    python3 tools/bench_unet.py [--ours build/benchmarks/bench_unet] [--model DIR] [--reps 7]
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "tests", "golden", "unet-large", "cifar10")
BATCHES = (1, 8)
THREADS = (1, 2)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mib():
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return float("nan")


def load_probe(model_dir):
    """Run in a fresh interpreter: time and peak RSS of from_pretrained, printed as one JSON line."""
    import torch
    from diffusers import UNet2DModel
    from diffusers.utils import logging as dlogging
    dlogging.set_verbosity_error()
    torch.set_num_threads(1)
    before, cur0 = peak_rss_mib(), current_rss_mib()
    t0 = time.perf_counter()
    model = UNet2DModel.from_pretrained(model_dir)
    dt = time.perf_counter() - t0
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"load_s": dt, "rss_before_mib": before, "rss_peak_mib": peak_rss_mib(),
                      "rss_now_before_mib": cur0, "rss_now_after_mib": current_rss_mib(), "params": n}))


def load_stats(model_dir):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--load-probe", model_dir],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def torch_model(model_dir):
    import torch
    from diffusers import UNet2DModel
    from diffusers.utils import logging as dlogging
    dlogging.set_verbosity_error()
    if os.path.isdir(model_dir):
        return UNet2DModel.from_pretrained(model_dir).eval(), model_dir
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gen_unet_golden import CIFAR10, randomize
    torch.manual_seed(0)
    model = UNet2DModel(**CIFAR10).eval()
    randomize(model, 32)
    return model, None


def time_torch(model, batch, threads, reps, warmup=2):
    import torch
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(batch)
    c, s = model.config.in_channels, model.config.sample_size
    x = torch.randn(batch, c, s, s, generator=g)
    t = torch.linspace(10, 990, batch).round()
    wall, cpu = [], []
    with torch.inference_mode():
        for i in range(warmup + reps):
            w0, c0 = time.perf_counter(), time.process_time()
            model(x, t).sample
            w1, c1 = time.perf_counter(), time.process_time()
            if i >= warmup:
                wall.append((w1 - w0) * 1e3)
                cpu.append((c1 - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


UNIT_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def run_ours(binary, model_dir):
    env = dict(os.environ, DIFFUSE_UNET_DIR=model_dir)
    cmd = [binary, "--benchmark_format=json", "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_unet: {binary} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    results = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        if b.get("aggregate_name", "") != "median":
            continue
        name = b.get("run_name", b["name"])
        mb, mt = re.search(r"batch:(\d+)", name), re.search(r"threads:(\d+)", name)
        if not (mb and mt):
            continue
        f = UNIT_MS[b.get("time_unit", "ns")]
        results[(int(mb.group(1)), int(mt.group(1)))] = (b["real_time"] * f, b["cpu_time"] * f)
    return results


def main():
    ap = argparse.ArgumentParser(description="UNet2DModel forward: PyTorch timings and ours/torch ratios")
    ap.add_argument("--ours", metavar="PATH", help="the C++ Google Benchmark binary to run as well")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="UNet2DModel folder (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per point (median; default 7)")
    ap.add_argument("--load-probe", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_probe:
        return load_probe(args.load_probe)

    import torch
    import diffusers
    model, folder = torch_model(args.model)
    n = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, {os.cpu_count()} CPUs; "
          f"UNet2DModel {n:,d} parameters, {model.config.sample_size}x{model.config.sample_size}, float32, "
          f"{'from ' + os.path.relpath(folder) if folder else 'random weights (no folder: run gen_unet_golden.py --large)'}")
    if folder:
        ls = load_stats(folder)
        print(f"torch load (UNet2DModel.from_pretrained, fresh process): {ls['load_s'] * 1e3:.0f} ms; peak RSS "
              f"{ls['rss_peak_mib']:.0f} MiB ({ls['rss_before_mib']:.0f} MiB peak after importing torch + diffusers); "
              f"RSS {ls['rss_now_before_mib']:.0f} -> {ls['rss_now_after_mib']:.0f} MiB across the load")

    ours = {}
    if args.ours:
        if not folder:
            sys.exit("bench_unet: --ours needs the model folder (python3 tools/gen_unet_golden.py --large)")
        ours = run_ours(args.ours, folder)

    print(f"\nforward pass, median of {args.reps} (wall / process CPU, ms)")
    head = f"{'batch':>5} {'threads':>7} {'torch wall':>11} {'torch cpu':>10}"
    if args.ours:
        head += f" {'ours wall':>10} {'ours cpu':>9} {'ours/torch':>10}"
    print(head)
    for threads in THREADS:
        for batch in BATCHES:
            w, c = time_torch(model, batch, threads, args.reps)
            line = f"{batch:5d} {threads:7d} {w:11.1f} {c:10.1f}"
            if args.ours:
                if (batch, threads) in ours:
                    ow, oc = ours[(batch, threads)]
                    line += f" {ow:10.1f} {oc:9.1f} {ow / w:10.2f}"
                else:
                    line += f" {'-':>10} {'-':>9} {'-':>10}"
            print(line, flush=True)
    extra = sorted(set(ours) - {(b, t) for b in BATCHES for t in THREADS})
    for batch, threads in extra:
        ow, oc = ours[(batch, threads)]
        print(f"{batch:5d} {threads:7d} {'-':>11} {'-':>10} {ow:10.1f} {oc:9.1f} {'-':>10}")


if __name__ == "__main__":
    sys.exit(main())
