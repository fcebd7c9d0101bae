#!/usr/bin/env python3
"""PyTorch peer of benchmarks/bench_mlp.cpp, and the ratio printer.

Times one training step of the reference MLP denoiser (include/diffuse/nn/mlp.hpp) built from torch.nn.Linear
layers with the same shapes — data_dim 2, time_embed 32, 3 residual blocks, hidden 64 and 128 — on a batch of 256:
the sinusoidal time embedding, forward, the ε mean-squared loss, backward, torch.optim.Adam(lr=1e-3) and
zero_grad, in float32 on one thread (torch.set_num_threads(1)). Reports the median over --reps rounds of the
mean step time of a round in CPU time (time.process_time; the machine may be shared).

With --ours PATH it also runs the C++ Google Benchmark binary in the same run (one thread, as diffuse's default):
    PATH --benchmark_format=json --benchmark_repetitions=REPS --benchmark_report_aggregates_only=true
takes the CPU time of the `median` aggregate of bm_mlp_train_step/<hidden>, and prints torch/ours (how many times faster ours is).

    python3 tools/bench_mlp.py [--ours build/benchmarks/bench_mlp] [--reps 7]
"""
import argparse
import json
import math
import statistics
import subprocess
import time

import torch

B, D, E, BLOCKS = 256, 2, 32, 3


class MLP(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.input = torch.nn.Linear(D + E, hidden)
        self.fc1 = torch.nn.ModuleList(torch.nn.Linear(hidden, hidden) for _ in range(BLOCKS))
        self.time = torch.nn.ModuleList(torch.nn.Linear(E, hidden, bias=False) for _ in range(BLOCKS))
        self.fc2 = torch.nn.ModuleList(torch.nn.Linear(hidden, hidden) for _ in range(BLOCKS))
        self.output = torch.nn.Linear(hidden, D)
        half = E // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half))

    def forward(self, x, cond):
        c = (cond * 1000.0)[:, None] * self.freqs[None, :]
        emb = torch.cat([torch.sin(c), torch.cos(c)], 1).float()
        silu = torch.nn.functional.silu
        h = self.input(torch.cat([x, emb], 1))
        for fc1, tm, fc2 in zip(self.fc1, self.time, self.fc2):
            h = h + fc2(silu(fc1(silu(h)) + tm(emb)))
        return self.output(silu(h))


def time_torch(hidden, reps, steps):
    torch.manual_seed(0)
    m = MLP(hidden)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x, eps = torch.randn(B, D), torch.randn(B, D)
    cond = torch.rand(B, dtype=torch.float64)

    def step():
        loss = ((m(x, cond) - eps) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)

    for _ in range(steps):
        step()
    rounds = []
    for _ in range(reps):
        t0 = time.process_time()
        for _ in range(steps):
            step()
        rounds.append((time.process_time() - t0) / steps)
    return statistics.median(rounds)


def time_ours(path, reps):
    out = subprocess.run([path, "--benchmark_format=json", f"--benchmark_repetitions={reps}",
                          "--benchmark_report_aggregates_only=true"], check=True, capture_output=True, text=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            hidden = int(b["run_name"].split("/")[1])  # bm_mlp_train_step/<hidden>/process_time
            scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            res[hidden] = b["cpu_time"] * scale
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", help="path of the bench_mlp binary")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--steps", type=int, default=200, help="steps per timed round")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ours = time_ours(a.ours, a.reps) if a.ours else {}
    print(f"torch {torch.__version__}, one thread, batch {B}, float32; medians of {a.reps} rounds")
    print("| hidden | torch ms/step | diffuse ms/step | torch / diffuse |")
    print("|---|---|---|---|")
    for hidden in (64, 128):
        t = time_torch(hidden, a.reps, a.steps)
        o = ours.get(hidden)
        print(f"| {hidden} | {t * 1e3:.3f} | " + (f"{o * 1e3:.3f} | {t / o:.2f}× |" if o else "– | – |"))


if __name__ == "__main__":
    main()
