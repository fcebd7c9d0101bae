#!/usr/bin/env python3
"""Time diffusers' scheduler.step per model evaluation, on the sizes of benchmarks/bench_samplers.cpp.

Run from the repository root (one thread, CPU):
    python3 tools/bench_diffusers_step.py [--repeats 5] [--json out.json] [--only bm_euler bm_flow_euler ...]

For each scheduler: set_timesteps(50), a fixed random float32 model output, and a loop over the whole
schedule calling step() (Heun: twice per timestep; ScoreSdeVe: step_correct + step_pred per step), as a
pipeline would, without the model. The time of one loop divided by its number of step() calls is one
measurement; the script reports the median of --repeats loops, in CPU time (time.process_time: the
measurement is insensitive to other processes on a shared machine), and wall time alongside.
"""
import argparse
import json
import statistics
import time

import torch
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler,
                       HeunDiscreteScheduler, LMSDiscreteScheduler, ScoreSdeVeScheduler)

STEPS = 50
SIZES = {"1/64": (1, 4, 64, 64), "16/128": (16, 4, 128, 128)}


def loop_standard(make):
    def run(shape):
        s = make()
        s.set_timesteps(STEPS)
        if hasattr(s, "is_scale_input_called"):
            s.is_scale_input_called = True  # a pipeline scales the model input; it is not part of step()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=g) * float(getattr(s, "init_noise_sigma", 1.0))
        out = torch.randn(shape, generator=g)
        calls = 0
        c0, w0 = time.process_time(), time.perf_counter()
        for t in s.timesteps:
            x = s.step(out, t, x, generator=g).prev_sample if needs_generator(s) else s.step(out, t, x).prev_sample
            calls += 1
        return (time.process_time() - c0) / calls, (time.perf_counter() - w0) / calls
    return run


def needs_generator(s):
    return isinstance(s, (DDPMScheduler, EulerAncestralDiscreteScheduler, DDIMScheduler))


def loop_score_sde_ve(shape):
    s = ScoreSdeVeScheduler()
    s.set_timesteps(STEPS)
    s.set_sigmas(STEPS)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g) * s.config.sigma_max
    out = torch.randn(shape, generator=g)
    calls = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for t in s.timesteps:
        x = s.step_correct(out, x, generator=g).prev_sample
        x = s.step_pred(out, t, x, generator=g).prev_sample
        calls += 2
    return (time.process_time() - c0) / calls, (time.perf_counter() - w0) / calls


# diffusers scheduler ↔ the bench_samplers.cpp benchmark it is compared with
BENCHES = {
    "bm_ddpm": loop_standard(lambda: DDPMScheduler(clip_sample=False)),
    "bm_ddim": loop_standard(lambda: DDIMScheduler(clip_sample=False)),
    "bm_euler": loop_standard(lambda: EulerDiscreteScheduler()),
    "bm_euler_ancestral": loop_standard(lambda: EulerAncestralDiscreteScheduler()),
    "bm_heun": loop_standard(lambda: HeunDiscreteScheduler()),
    "bm_lms": loop_standard(lambda: LMSDiscreteScheduler()),
    "bm_dpmpp_2m": loop_standard(lambda: DPMSolverMultistepScheduler()),
    "bm_pc_ve": loop_score_sde_ve,
    "bm_flow_euler": loop_standard(lambda: FlowMatchEulerDiscreteScheduler(shift=3.0)),
    "bm_flow_heun": loop_standard(lambda: FlowMatchHeunDiscreteScheduler(shift=3.0)),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--only", nargs="*", help="benchmark names to run (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = {}
    for name, run in BENCHES.items():
        if args.only and name not in args.only:
            continue
        for size, shape in SIZES.items():
            run(shape)  # warm-up
            cpu, wall = zip(*(run(shape) for _ in range(args.repeats)))
            results[f"{name}/{size}"] = {"cpu_us": statistics.median(cpu) * 1e6, "wall_us": statistics.median(wall) * 1e6}
            print(f"{name}/{size:7s} cpu {results[f'{name}/{size}']['cpu_us']:10.1f} us/step   "
                  f"wall {results[f'{name}/{size}']['wall_us']:10.1f} us/step", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
