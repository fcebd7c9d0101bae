#!/usr/bin/env python3
"""Golden parity files for diffusers schedulers whose network timesteps no σ → t rule gives, configurations
DRAWN AT RANDOM from a seeded generator:

    diffusers KDPM2AncestralDiscreteScheduler   beta schedule, num_train_timesteps (trailing spacing with
                                                N + 1 steps: T = 1200/N = 14 ...), timestep spacing and
                                                steps_offset, use_karras_sigmas / use_exponential_sigmas /
                                                use_beta_sigmas, prediction type (epsilon, v_prediction:
                                                upstream has no "sample"), steps 3-50, batch and shape,
                                                float32/float64
    diffusers TCDScheduler                      beta schedule, rescale_betas_zero_snr, num_train_timesteps,
                                                original_inference_steps, strength, eta (step argument, the
                                                paper's gamma), prediction type (epsilon, sample,
                                                v_prediction), steps 3-50, batch and shape, float32/float64;
                                                in half the cases the config keys TCDScheduler never reads
                                                (clip_sample, thresholding, set_alpha_to_one, timestep_spacing,
                                                steps_offset, timestep_scaling) drawn for diffusers only
    diffusers DDPMScheduler / DDIMScheduler     trailing spacing on the (T, N) where numpy's arange yields
                                                N + 1 timesteps, the last -1 (spec options.trailing_extra_timestep):
                                                beta schedule, T in {600, 850, 1200},
                                                prediction type, clipping / thresholding, DDPM variance type,
                                                DDIM eta / set_alpha_to_one / use_clipped_model_output,
                                                batch and shape, float32/float64

KDPM2Ancestral feeds the network the spacing's timestep at each grid point and another timestep, log-σ
interpolated, at the DPM2 midpoint, which at η = 1 has the next grid point's σ: the spec asks for
options.network_timesteps = "diffusers" (kdpm2_ancestral_sigmas) instead of replaying a σ-keyed table.

Each case is a spec (docs/cli.md) with its initial state, recorded noise and the reference's final sample in
tests/golden/samplers/discrete_extras/; tests/samplers/test_parity.cpp runs them through `diffuse sample`'s
code. The network is the exact denoiser of a Gaussian mixture (gen_sampler_golden_discrete.analytic_x0) on
the schedule's (α, σ) at the timestep it is fed, σ linearly interpolated in t (the extra timestep −1 reads
as t = 0, as numpy.interp clamps).

TCD and DDPM / DDIM use the denoiser at the scheduler's own state (α, σ) = (√ᾱ_t, √(1 − ᾱ_t)) of the timestep
it is fed; the extra timestep −1 reads as t = 0 (numpy.interp clamps), while the schedulers read its output at
alphas_cumprod[-1] = ᾱ_{T−1}. An ε-network at ᾱ = 0 (zero terminal SNR) is NaN upstream and is drawn again.

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
from diffusers import DDIMScheduler, DDPMScheduler, KDPM2AncestralDiscreteScheduler, TCDScheduler  # noqa: E402

from gen_sampler_golden_discrete import analytic_x0, mixture_for, to_prediction  # noqa: E402
# importing it also gives diffusers' DDPM / DDIM rescale_zero_terminal_snr a correctly rounded float32 sqrt
from gen_sampler_golden_schedule_options import rescale_zero_terminal_snr_exact_sqrt, state_at  # noqa: E402

importlib.import_module("diffusers.schedulers.scheduling_tcd").rescale_zero_terminal_snr = rescale_zero_terminal_snr_exact_sqrt

PART = "discrete_extras"
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "golden", "samplers", PART)
RNG = np.random.default_rng(20261202)
SCHEDULES = [
    {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
    {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    {"beta_schedule": "squaredcos_cap_v2"},
]
SKIPPED = {"epsilon at alpha_cumprod = 0 (NaN upstream)": 0,
           "first timestep repeated in the interleaved list": 0,
           "float32 sigma_down cancels upstream (sigma_interpol off the exact midpoint by > 1e-4, or NaN)": 0}
COUNTS = {}
COVERED = set()  # every option value some drawn case switched on; main() checks the list below
REQUIRED = {f"kdpm2a:{o}" for o in (
    "linear", "scaled_linear", "squaredcos_cap_v2", "leading", "trailing", "linspace", "offset", "extra_step",
    "none", "karras", "exponential", "beta", "epsilon", "v_prediction", "float32", "float64", "T1000", "T1200",
    "T850", "T600", "batch1", "batch3")} | {f"tcd:{o}" for o in (
    "linear", "scaled_linear", "squaredcos_cap_v2", "zero_snr", "no_zero_snr", "epsilon", "v_prediction", "sample",
    "eta0", "eta1", "eta_mid", "strength", "original20", "original50", "original100", "float32", "float64", "T1000",
    "T1200", "T850", "T600", "batch1", "batch3", "ignored_keys")} | {f"{s}:{o}" for s in ("ddpm", "ddim") for o in (
    "extra_step", "epsilon", "v_prediction", "sample", "clip", "float32", "float64", "T1200",
    "T850", "T600", "batch1", "batch3")} | {"ddpm:threshold", "ddpm:fixed_small", "ddpm:fixed_large", "ddpm:fixed_small_log",
                                            "ddim:eta", "ddim:alpha_one", "ddim:alpha_zero", "ddim:clipped_output"}


def cover(family, *names):
    COVERED.update(f"{family}:{n}" for n in names if n)


def pick(values):
    return values[int(RNG.integers(len(values)))]


def draw_shape():
    B = int(RNG.integers(1, 4))
    return [B, int(RNG.integers(1, 3)), int(RNG.integers(1, 4))]


def save(name, arr, dtype):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(arr), dtype=dtype))


def record_step_noise(sched, seed, out_dtype):
    """Makes the scheduler's module draw its step noise from a float64 generator seeded with `seed` (cast to
    out_dtype) and returns the list that collects the draws, for the spec's step_noise."""
    draws = []
    gen = torch.Generator().manual_seed(seed)

    def randn(shape_, generator=None, device=None, dtype=None, layout=None):
        d = torch.randn(shape_, generator=gen, dtype=torch.float64).to(out_dtype)
        draws.append(d.clone())
        return d

    importlib.import_module(type(sched).__module__).randn_tensor = randn
    return draws


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
    draws = record_step_noise(sched, 12000 + k, dtype)
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


# ---------------------------------------------------------------------------------------------------------
# diffusers TCDScheduler


def tcd_case(k):
    while True:
        block = dict(pick(SCHEDULES))
        T = int(pick([1000, 1000, 1200, 850, 600]))
        block["num_train_timesteps"] = T
        block["rescale_betas_zero_snr"] = bool(RNG.random() < 0.4)
        original = int(pick([50, 50, 20, 100, int(RNG.integers(4, 101))]))
        strength = 1.0 if RNG.random() < 0.6 else float(RNG.uniform(0.3, 1.0))
        L = int(original * strength)
        if L < 3:
            continue
        steps = int(RNG.integers(3, min(50, L) + 1))
        eta = float(pick([0.0, 0.3, 1.0, RNG.uniform(0.0, 1.0)]))
        pred = pick(["epsilon", "v_prediction", "sample"])
        # keys TCDScheduler accepts and never reads: drawn for diffusers only, the spec leaves them out
        ignored = {}
        if RNG.random() < 0.5:
            ignored = {"clip_sample": bool(RNG.random() < 0.5), "thresholding": bool(RNG.random() < 0.5),
                       "set_alpha_to_one": bool(RNG.random() < 0.5), "timestep_scaling": float(pick([1.0, 5.0, 10.0])),
                       "timestep_spacing": pick(["leading", "trailing", "linspace"]), "steps_offset": int(RNG.integers(0, 2))}
        sched = TCDScheduler(**block, prediction_type=pred, original_inference_steps=original, **ignored)
        sched.set_timesteps(steps, strength=strength)
        if pred == "epsilon" and float(sched.alphas_cumprod[int(sched.timesteps[0])]) == 0.0:
            SKIPPED["epsilon at alpha_cumprod = 0 (NaN upstream)"] += 1
            continue
        break
    dtype = torch.float32 if RNG.random() < 0.3 else torch.float64
    if dtype == torch.float64:  # float64 copies of diffusers' float32 ᾱ (only the step arithmetic widens)
        sched.alphas_cumprod = sched.alphas_cumprod.double()
    shape = draw_shape()
    mix = mixture_for(13000 + k, shape[1] * shape[2])
    g = torch.Generator().manual_seed(13000 + k)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    init = x.clone()
    draws = record_step_noise(sched, 14000 + k, dtype)
    for t in sched.timesteps:
        a, s = state_at(float(sched.alphas_cumprod[int(t)]))
        out = to_prediction(pred, x, analytic_x0(mix, x, a, s), a, s).to(dtype)
        x = sched.step(out, t, x, eta=eta).prev_sample
    f32 = dtype == torch.float32
    options = {"eta": eta, "original_inference_steps": original}
    if strength != 1.0:
        options["strength"] = strength
    spec = {"sampler": "tcd", "dtype": "float32" if f32 else "float64", "shape": shape, "num_inference_steps": steps,
            "schedule": dict(block), "denoiser": dict(mix, prediction_type=pred), "options": options}
    noise = torch.stack(draws).double().numpy() if draws else None
    cover("tcd", block["beta_schedule"], "zero_snr" if block["rescale_betas_zero_snr"] else "no_zero_snr", pred,
          "eta0" if eta == 0 else "eta1" if eta == 1 else "eta_mid", "strength" if strength != 1.0 else None,
          f"original{original}", "float32" if f32 else "float64", f"T{T}", f"batch{shape[0]}",
          "ignored_keys" if ignored else None)
    write(f"tcd_{k:02d}", spec, x.double().numpy(), init.double().numpy(), noise, 2e-5 if f32 else 1e-10,
          2e-5 if f32 else 1e-11, "diffusers 0.42 TCDScheduler" + (" float32" if f32 else ""))


# ---------------------------------------------------------------------------------------------------------
# diffusers DDPMScheduler / DDIMScheduler on a trailing list with N + 1 timesteps (the last one −1)


def trailing_extra_case(k, sampler):
    while True:
        block = dict(pick(SCHEDULES))
        T = int(pick([1200, 850, 600, 600]))
        # no zero terminal SNR: the step at −1 would have the state ᾱ_{T−1} = 0 (pure noise) with the network at
        # t = 0, which diffuse's model refuses (a named error; upstream NaN for ε, a number for v and x₀)
        block.update(num_train_timesteps=T, rescale_betas_zero_snr=False, timestep_spacing="trailing", steps_offset=0)
        steps = int(pick([n for n in range(3, 51) if len(np.arange(T, 0, -T / n)) > n]))
        pred = pick(["epsilon", "v_prediction", "sample"])
        break
    clip = bool(RNG.random() < 0.4)
    thresh = sampler == "ddpm" and bool(RNG.random() < 0.2)
    common = dict(block, clip_sample=clip, thresholding=thresh, sample_max_value=1.5 if thresh else 1.0,
                  dynamic_thresholding_ratio=0.9, prediction_type=pred)
    options = {"clip_sample": clip, "thresholding": thresh, "sample_max_value": 1.5 if thresh else 1.0,
               "dynamic_thresholding_ratio": 0.9, "trailing_extra_timestep": True}
    if sampler == "ddpm":
        variance = pick(["fixed_small", "fixed_large", "fixed_small_log"])
        options["variance_type"] = variance
        sched = DDPMScheduler(**common, variance_type=variance)
    else:
        eta = float(pick([0.0, 0.3, 1.0]))
        alpha_one = bool(RNG.random() < 0.6)
        options.update(eta=eta, set_alpha_to_one=alpha_one, prev_timestep="fixed_stride",
                       use_clipped_model_output=clip and RNG.random() < 0.5)
        sched = DDIMScheduler(**common, set_alpha_to_one=alpha_one)
    sched.set_timesteps(steps)
    assert len(sched.timesteps) == steps + 1 and int(sched.timesteps[-1]) == -1
    dtype = torch.float32 if RNG.random() < 0.3 else torch.float64
    if dtype == torch.float64:  # float64 copies of diffusers' float32 ᾱ (only the step arithmetic widens)
        sched.alphas_cumprod = sched.alphas_cumprod.double()
        for attr in ("one", "final_alpha_cumprod"):
            if hasattr(sched, attr):
                setattr(sched, attr, torch.as_tensor(getattr(sched, attr)).double())
    shape = draw_shape()
    mix = mixture_for(15000 + k, shape[1] * shape[2])
    g = torch.Generator().manual_seed(15000 + k)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    init = x.clone()
    noise = torch.randn(steps + 1, *shape, generator=g, dtype=torch.float64).to(dtype)
    draws = iter(noise)
    importlib.import_module(type(sched).__module__).randn_tensor = lambda *a, **kw: next(draws)
    for i, t in enumerate(sched.timesteps):
        # the network is fed t = −1, which it reads as t = 0 (numpy.interp clamps); the scheduler reads its
        # output at alphas_cumprod[-1] = ᾱ_{T−1}
        a, s = state_at(float(sched.alphas_cumprod[max(int(t), 0)]))
        out = to_prediction(pred, x, analytic_x0(mix, x, a, s), a, s).to(dtype)
        if sampler == "ddpm":
            x = sched.step(out, t, x).prev_sample
        else:
            x = sched.step(out, t, x, eta=options["eta"], use_clipped_model_output=options["use_clipped_model_output"],
                           variance_noise=noise[i] if options["eta"] > 0 else None).prev_sample
    used = noise if (sampler == "ddpm" or options["eta"] > 0) else None
    f32 = dtype == torch.float32
    spec = {"sampler": sampler, "dtype": "float32" if f32 else "float64", "shape": shape, "num_inference_steps": steps,
            "schedule": dict(block), "denoiser": dict(mix, prediction_type=pred), "options": options}
    cover(sampler, "extra_step", pred,
          "clip" if clip else None, "threshold" if thresh else None, options.get("variance_type"),
          "eta" if options.get("eta") else None, "clipped_output" if options.get("use_clipped_model_output") else None,
          {True: "alpha_one", False: "alpha_zero", None: None}[options.get("set_alpha_to_one")],
          "float32" if f32 else "float64", f"T{T}", f"batch{shape[0]}")
    # the step at t = −1 divides by √ᾱ_{T−1} (ε-prediction), which scales the run's rounding: tolerance relative
    scale = max(1.0, float(np.abs(x.double().numpy()).max()))
    write(f"{sampler}_extra_{k:02d}", spec, x.double().numpy(), init.double().numpy(),
          None if used is None else used.double().numpy(), 2e-5 if f32 else 1e-10, (2e-5 if f32 else 1e-11) * scale,
          f"diffusers 0.42 {type(sched).__name__}" + (" float32" if f32 else "") + " N+1 trailing")


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    torch.set_default_dtype(torch.float64)
    for k in range(40):
        kdpm2a_case(k)
    for k in range(30):
        tcd_case(k)
    for k in range(36):
        trailing_extra_case(k, "ddpm" if k % 2 == 0 else "ddim")
    torch.set_default_dtype(torch.float32)
    print(f"{PART}: {sum(COUNTS.values())} specs {COUNTS}; redrawn: {SKIPPED}")
    missing = sorted(REQUIRED - COVERED)
    if missing:
        sys.exit(f"options never switched on by a drawn case: {missing} (draw more cases or change the seed)")


if __name__ == "__main__":
    main()
