#!/usr/bin/env python3
"""Golden parity files for diffusers schedulers whose network timesteps no σ → t rule gives, configurations
DRAWN AT RANDOM from a seeded generator:

    diffusers KDPM2AncestralDiscreteScheduler   beta schedule, num_train_timesteps (trailing spacing with
                                                N + 1 steps: T = 1200/N = 14 ...), timestep spacing and
                                                steps_offset, use_karras_sigmas / use_exponential_sigmas /
                                                use_beta_sigmas, prediction type (epsilon, v_prediction:
                                                upstream has no "sample"), steps 3-50, batch and shape,
                                                float32/float64

KDPM2Ancestral feeds the network the spacing's timestep at each grid point and another timestep, log-σ
interpolated, at the DPM2 midpoint, which at η = 1 has the next grid point's σ: the spec asks for
options.network_timesteps = "diffusers" (kdpm2_ancestral_sigmas) instead of replaying a σ-keyed table.

Each case is a spec (docs/cli.md) with its initial state, recorded noise and the reference's final sample in
tests/golden/samplers/discrete_extras/; tests/samplers/test_parity.cpp runs them through `diffuse sample`'s
code. The network is the exact denoiser of a Gaussian mixture (gen_sampler_golden_discrete.analytic_x0) on
the schedule's (α, σ) at the timestep it is fed, σ linearly interpolated in t (the extra timestep −1 reads
as t = 0, as numpy.interp clamps).

Where a drawn configuration is ambiguous upstream it is drawn again, and the reason is counted in the
summary: a first timestep that occurs twice in the interleaved list (the scheduler then starts at the
second copy).

Run from the repository root:  python3 tools/gen_sampler_golden_discrete_extras.py
Needs torch (CPU), diffusers 0.42, scipy, numpy.
"""
import importlib
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from diffusers import KDPM2AncestralDiscreteScheduler  # noqa: E402

from gen_sampler_golden_discrete import analytic_x0, mixture_for, to_prediction  # noqa: E402

PART = "discrete_extras"
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "golden", "samplers", PART)
RNG = np.random.default_rng(20261202)
SCHEDULES = [
    {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
    {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    {"beta_schedule": "squaredcos_cap_v2"},
]
SKIPPED = {"first timestep repeated in the interleaved list": 0,
           "float32 sigma_down cancels upstream (sigma_interpol off the exact midpoint by > 1e-4, or NaN)": 0}
COUNTS = {}
COVERED = set()  # every option value some drawn case switched on; main() checks the list below
REQUIRED = {f"kdpm2a:{o}" for o in (
    "linear", "scaled_linear", "squaredcos_cap_v2", "leading", "trailing", "linspace", "offset", "extra_step",
    "none", "karras", "exponential", "beta", "epsilon", "v_prediction", "float32", "float64", "T1000", "T1200",
    "T850", "T600", "batch1", "batch3")}


def cover(family, *names):
    COVERED.update(f"{family}:{n}" for n in names if n)


def pick(values):
    return values[int(RNG.integers(len(values)))]


def draw_shape():
    B = int(RNG.integers(1, 4))
    return [B, int(RNG.integers(1, 3)), int(RNG.integers(1, 4))]


def save(name, arr, dtype):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(arr), dtype=dtype))


def write(name, spec, expected, init, noise, rtol, atol, reference):
    dt = np.float32 if spec["dtype"] == "float32" else np.float64
    save(name + "_init", init, dt)
    spec["init_noise"] = name + "_init.npy"
    if noise is not None and len(noise):
        save(name + "_noise", noise, dt)
        spec["step_noise"] = name + "_noise.npy"
    save(name, expected, np.float64)
    spec["test"] = {"expected": name + ".npy", "rtol": rtol, "atol": atol, "reference": reference}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    COUNTS[spec["sampler"]] = COUNTS.get(spec["sampler"], 0) + 1


# ---------------------------------------------------------------------------------------------------------
# diffusers KDPM2AncestralDiscreteScheduler


def kdpm2a_case(k):
    while True:
        block = dict(pick(SCHEDULES))
        T = int(pick([1000, 1000, 1200, 850, 600]))
        block["num_train_timesteps"] = T
        block["timestep_spacing"] = pick(["leading", "trailing", "linspace"])
        block["steps_offset"] = int(RNG.integers(0, 2)) if block["timestep_spacing"] == "leading" else 0
        steps = int(RNG.integers(3, 51))
        walks_extra = [n for n in range(3, 51) if len(np.arange(T, 0, -T / n)) > n]
        if block["timestep_spacing"] == "trailing" and walks_extra and RNG.random() < 0.6:
            steps = int(pick(walks_extra))  # a step count whose trailing list has N + 1 values
        spacing = pick(["none", "none", "karras", "exponential", "beta"])
        pred = pick(["epsilon", "v_prediction"])
        cfg = dict(block, prediction_type=pred)
        if spacing != "none":
            cfg[f"use_{spacing}_sigmas"] = True
        sched = KDPM2AncestralDiscreteScheduler(**cfg)
        sched.set_timesteps(steps)
        if int((sched.timesteps == sched.timesteps[0]).sum()) != 1:
            SKIPPED["first timestep repeated in the interleaved list"] += 1
            continue
        # upstream computes σ_up and σ_down = √(σ_{i+1}² − σ_up²) in float32, which cancels where σ_{i+1} ≪ σ_i
        # (squaredcos_cap_v2's first step) or σ_{i+1} ≈ σ_i (beta σ near the ends): its midpoint then leaves the
        # exact √(σ_i·σ_down) (= σ_{i+1}) by up to 1e-2, or is NaN; diffuse computes the step in double
        sig = np.concatenate([sched.sigmas.double().numpy()[:1], sched.sigmas.double().numpy()[1::2][:-1]])
        mid = sched.sigmas_interpol.double().numpy()[0::2][:len(sig) - 2]
        exact = sig[1:len(sig) - 1]
        if np.all(np.isfinite(mid)) and np.all(np.abs(mid - exact) <= 1e-4 * exact):
            break
        SKIPPED["float32 sigma_down cancels upstream (sigma_interpol off the exact midpoint by > 1e-4, or NaN)"] += 1
    dtype = torch.float32 if RNG.random() < 0.3 else torch.float64
    shape = draw_shape()
    mix = mixture_for(11000 + k, shape[1] * shape[2])
    extra = block["timestep_spacing"] == "trailing" and len(np.arange(T, 0, -T / steps)) > steps
    sig_train = np.sqrt((1 - sched.alphas_cumprod.double().numpy()) / sched.alphas_cumprod.double().numpy())
    g = torch.Generator().manual_seed(11000 + k)
    z = torch.randn(*shape, generator=g, dtype=torch.float64)
    x = (z * sched.init_noise_sigma).to(dtype)
    init = x.clone()
    draws = []
    rec_gen = torch.Generator().manual_seed(12000 + k)

    def randn(shape_, generator=None, device=None, dtype=None, layout=None):
        d = torch.randn(shape_, generator=rec_gen, dtype=torch.float64).to(x.dtype)
        draws.append(d.clone())
        return d

    importlib.import_module(type(sched).__module__).randn_tensor = randn
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t)
        sn = float(np.interp(float(t), np.arange(T), sig_train))  # the network's σ at its timestep (t = −1 → 0)
        a = 1 / math.sqrt(1 + sn * sn)
        s = sn * a
        out = to_prediction(pred, x_in, analytic_x0(mix, x_in, a, s), a, s).to(dtype)
        x = sched.step(out, t, x).prev_sample
    f32 = dtype == torch.float32
    grid = {"type": "diffusers"}
    if spacing != "none":
        grid[f"use_{spacing}_sigmas"] = True
    if extra:
        grid["trailing_extra_timestep"] = True
    spec = {"sampler": "dpm_2_ancestral", "dtype": "float32" if f32 else "float64", "shape": shape,
            "num_inference_steps": steps, "schedule": dict(block, alphas_dtype="float32"), "grid": grid,
            "denoiser": dict(mix, time="discrete", interpolation="linear_sigma", prediction_type=pred),
            "options": {"network_timesteps": "diffusers"}}
    noise = torch.stack(draws).double().numpy() if draws else None
    out = x.double().numpy()
    # diffusers holds σ, σ_interpol and the input scale in float32 (2e-6 of the run's scale; 2e-5 in float32
    # runs), as the Euler goldens of schedule_options
    scale = max(1.0, float(np.abs(out).max()))
    tol = 2e-5 if f32 else 2e-6
    cover("kdpm2a", block["beta_schedule"], block["timestep_spacing"], "offset" if block["steps_offset"] else None,
          "extra_step" if extra else None, spacing, pred, "float32" if f32 else "float64", f"T{T}",
          f"batch{shape[0]}")
    write(f"kdpm2a_{k:02d}", spec, out, init.double().numpy(), noise, 0.0, tol * scale,
          "diffusers 0.42 KDPM2AncestralDiscreteScheduler" + (" float32" if f32 else "") + (" N+1 trailing" if extra else ""))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    torch.set_default_dtype(torch.float64)
    for k in range(40):
        kdpm2a_case(k)
    torch.set_default_dtype(torch.float32)
    print(f"{PART}: {sum(COUNTS.values())} specs {COUNTS}; redrawn: {SKIPPED}")
    missing = sorted(REQUIRED - COVERED)
    if missing:
        sys.exit(f"options never switched on by a drawn case: {missing} (draw more cases or change the seed)")


if __name__ == "__main__":
    main()
