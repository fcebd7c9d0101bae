#!/usr/bin/env python3
"""Golden parity files over the schedule options, configurations DRAWN AT RANDOM from a seeded generator:

    diffusers DDPMScheduler / DDIMScheduler     beta schedule, rescale_betas_zero_snr, timestep spacing,
                                                prediction type, steps 3-50, batch and shape, eta, clipping,
                                                set_alpha_to_one, float32/float64
    diffusers EulerDiscreteScheduler and        the same schedule options
    EulerAncestralDiscreteScheduler (no churn, no Karras σ upstream): plus num_train_timesteps (trailing
                                                spacing with N + 1 steps: T = 1200/N = 14 ...),
                                                final_sigmas_type, use_karras_sigmas, s_churn (diffusers' order)
    diffusers DPMSolverMultistepScheduler,      the schedule options, final_sigmas_type, solver_type, UniPC's
    UniPCMultistepScheduler                     solver_order (their σ list replayed from a file)
    k-diffusion DiscreteSchedule.get_sigmas     the "discrete" grid (t rounded to float32) under sample_euler,
                                                sample_euler_ancestral, sample_heun, sample_dpm_2,
                                                sample_dpmpp_2m with DiscreteEps/VDDPMDenoiser

Each case is a spec (docs/cli.md) with its initial state, recorded noise and the reference's final sample in
tests/golden/samplers/schedule_options/; tests/samplers/test_parity.cpp runs them through `diffuse sample`'s
code. The network is the exact denoiser of a Gaussian mixture (gen_sampler_golden_discrete.analytic_x0) on the
schedule's own (α, σ) at the timestep it is fed; at the last timestep of a zero-terminal-SNR schedule that is
(α, σ) = (0, 1), as for a network trained on it.

Where a drawn configuration is undefined upstream it is drawn again, and the reason is counted in the summary:
epsilon prediction at ᾱ = 0 (diffusers divides by √ᾱ = 0 and returns NaN; we raise a named error, tested in
tests/samplers/zero_snr.cpp).

Run from the repository root:  python3 tools/gen_sampler_golden_schedule_options.py
Needs torch (CPU), diffusers 0.42, k-diffusion 0.1.1, numpy.
"""
import importlib
import json
import math
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.modules.setdefault("clip", types.ModuleType("clip"))  # k_diffusion imports clip only for metrics
import k_diffusion as K  # noqa: E402
from diffusers import DDIMScheduler, DDPMScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler  # noqa: E402

from gen_sampler_golden_discrete import analytic_x0, mixture_for, to_prediction  # noqa: E402

PART = "schedule_options"
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "golden", "samplers", PART)
RNG = np.random.default_rng(20240521)
SCHEDULES = [
    {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
    {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    {"beta_schedule": "squaredcos_cap_v2"},
]
SKIPPED = {"epsilon at alpha_cumprod = 0 (NaN upstream)": 0}
COUNTS = {}
COVERED = set()  # every option value some drawn case switched on; main() checks the list below
REQUIRED = {f"{s}:{o}" for s in ("ddpm", "ddim", "euler") for o in (
    "zero_snr", "no_zero_snr", "leading", "trailing", "linspace", "epsilon", "v_prediction", "sample", "float32",
    "float64")} | {"ddim:eta", "ddim:alpha_one", "ddim:alpha_zero", "ddpm:clip", "ddpm:threshold", "ddpm:fixed_large",
                   "euler:churn", "euler:no_churn", "euler:sigma_min", "euler:zero", "euler:karras", "euler:extra_step",
                   "euler:zero_snr_epsilon", "euler:churn_window"} | {
    f"kd:{s}" for s in ("euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "epsilon", "v_prediction", "churn")} | {
    f"{s}:{o}" for s in ("dpmpp_2m", "unipc") for o in ("zero_snr", "no_zero_snr", "trailing", "linspace", "leading",
                                                       "epsilon", "v_prediction", "sample", "zero", "sigma_min")} | {
    "euler_ancestral:zero_snr", "euler_ancestral:no_zero_snr", "euler_ancestral:trailing", "euler_ancestral:epsilon",
    "euler_ancestral:v_prediction", "unipc:bh1", "unipc:bh2", "unipc:order1", "unipc:order2", "unipc:order3", "dpmpp_2m:midpoint", "dpmpp_2m:heun"}


def cover(family, *names):
    COVERED.update(f"{family}:{n}" for n in names if n)


def cover_common(family, block, pred, f32):
    cover(family, "zero_snr" if block["rescale_betas_zero_snr"] else "no_zero_snr", block["timestep_spacing"], pred,
          "float32" if f32 else "float64")


def rescale_zero_terminal_snr_exact_sqrt(betas):
    """diffusers' rescale_zero_terminal_snr with a correctly rounded float32 square root. torch's CPU float32
    sqrt (MKL's vector sqrt on x86 builds) is off by one ulp on ~18 % of the values, which moves ᾱ by up to
    4e-6 relative; every other operation here is exact IEEE float32, as in include/diffuse/schedules/beta.hpp.
    The golden files therefore isolate the samplers; stock diffusers differs from them by that ᾱ rounding."""
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    alphas_bar_sqrt = torch.from_numpy(np.sqrt(alphas_cumprod.numpy()))
    s0, sT = alphas_bar_sqrt[0].clone(), alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt -= sT
    alphas_bar_sqrt *= s0 / (s0 - sT)
    alphas_bar = alphas_bar_sqrt ** 2
    alphas = torch.cat([alphas_bar[0:1], alphas_bar[1:] / alphas_bar[:-1]])
    return 1 - alphas


for _name in ("scheduling_ddpm", "scheduling_ddim", "scheduling_euler_discrete", "scheduling_euler_ancestral_discrete",
              "scheduling_dpmsolver_multistep", "scheduling_unipc_multistep"):
    importlib.import_module("diffusers.schedulers." + _name).rescale_zero_terminal_snr = rescale_zero_terminal_snr_exact_sqrt


def pick(values):
    return values[int(RNG.integers(len(values)))]


def draw_schedule(T_choices=(1000,)):
    block = dict(pick(SCHEDULES))
    block["num_train_timesteps"] = int(pick(T_choices))
    block["rescale_betas_zero_snr"] = bool(RNG.random() < 0.5)
    block["timestep_spacing"] = pick(["leading", "trailing", "linspace"])
    block["steps_offset"] = int(RNG.integers(0, 2)) if block["timestep_spacing"] == "leading" else 0
    return block


def draw_shape():
    B = int(RNG.integers(1, 4))
    dims = [int(RNG.integers(1, 3)), int(RNG.integers(1, 4))]
    return [B] + dims


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


def state_at(ac):
    """(α, σ) of the VP state at ᾱ (exactly (0, 1) at zero terminal SNR)."""
    return math.sqrt(ac), math.sqrt(1.0 - ac)


def draw_prediction(block, first_timestep_ac_zero):
    while True:
        pred = pick(["epsilon", "v_prediction", "sample"])
        if pred == "epsilon" and first_timestep_ac_zero:
            SKIPPED["epsilon at alpha_cumprod = 0 (NaN upstream)"] += 1
            continue
        return pred


# ---------------------------------------------------------------------------------------------------------
# diffusers DDPM / DDIM


def discrete_case(k, sampler):
    block = draw_schedule()
    steps = int(RNG.integers(3, 51))
    dtype = torch.float32 if RNG.random() < 0.3 else torch.float64
    shape = draw_shape()
    D = shape[1] * shape[2]
    mix = mixture_for(7000 + k, D)
    clip = bool(RNG.random() < 0.4)
    thresh = bool(RNG.random() < 0.2)
    common = dict(block, clip_sample=clip, thresholding=thresh, sample_max_value=1.5 if thresh else 1.0,
                  dynamic_thresholding_ratio=0.9)
    options = {"clip_sample": clip, "thresholding": thresh, "sample_max_value": 1.5 if thresh else 1.0,
               "dynamic_thresholding_ratio": 0.9}
    if sampler == "ddpm":
        variance = pick(["fixed_small", "fixed_large", "fixed_small_log"])
        options["variance_type"] = variance
        make = lambda pred: DDPMScheduler(**common, prediction_type=pred, variance_type=variance)  # noqa: E731
    else:
        eta = float(pick([0.0, 0.0, 0.3, 1.0]))
        alpha_one = bool(RNG.random() < 0.7)
        options.update(eta=eta, set_alpha_to_one=alpha_one, prev_timestep="fixed_stride",
                       use_clipped_model_output=clip and RNG.random() < 0.5)
        make = lambda pred: DDIMScheduler(**common, prediction_type=pred, set_alpha_to_one=alpha_one)  # noqa: E731
    probe = make("epsilon")
    probe.set_timesteps(steps)
    first_zero = float(probe.alphas_cumprod[int(probe.timesteps[0])]) == 0.0
    pred = draw_prediction(block, first_zero)
    sched = make(pred)
    sched.set_timesteps(steps)
    assert len(sched.timesteps) == steps and int(sched.timesteps[-1]) >= 0
    if dtype == torch.float64:  # float64 copies of diffusers' float32 ᾱ (only the step arithmetic widens)
        sched.alphas_cumprod = sched.alphas_cumprod.double()
        for attr in ("one", "final_alpha_cumprod"):
            if hasattr(sched, attr):
                setattr(sched, attr, torch.as_tensor(getattr(sched, attr)).double())
    g = torch.Generator().manual_seed(7000 + k)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    init = x.clone()
    noise = torch.randn(steps, *shape, generator=g, dtype=torch.float64).to(dtype)
    module = importlib.import_module(type(sched).__module__)
    draws = iter(noise)
    module.randn_tensor = lambda *a, **kw: next(draws)
    for i, t in enumerate(sched.timesteps):
        a, s = state_at(float(sched.alphas_cumprod[int(t)]))
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
    cover_common(sampler, block, pred, f32)
    cover(sampler, "clip" if clip else None, "threshold" if thresh else None, options.get("variance_type"),
          "eta" if options.get("eta") else None,
          {True: "alpha_one", False: "alpha_zero", None: None}[options.get("set_alpha_to_one")])
    write(f"{sampler}_{k:02d}", spec, x.double().numpy(), init.numpy(), None if used is None else used.numpy(),
          2e-5 if f32 else 1e-10, 2e-5 if f32 else 1e-11,
          f"diffusers 0.42 {type(sched).__name__}" + (" float32" if f32 else ""))


# ---------------------------------------------------------------------------------------------------------
# diffusers EulerDiscreteScheduler


def train_sigmas(sched, zero_snr):
    """The network's σ table: the scheduler's ᾱ (float32, 2^-24 at a zero terminal ᾱ), widened."""
    ac = sched.alphas_cumprod.numpy().astype(np.float64)
    return np.sqrt((1 - ac) / ac)


def euler_case(k, sampler="euler"):
    ancestral = sampler == "euler_ancestral"  # EulerAncestralDiscreteScheduler: no churn, Karras σ or final σ type
    block = draw_schedule(T_choices=(1000, 1000, 1200, 850, 600))
    T = block["num_train_timesteps"]
    zero_snr = block["rescale_betas_zero_snr"]
    steps = int(RNG.integers(3, 51))
    walks_extra = [n for n in range(3, 51) if len(np.arange(T, 0, -T / n)) > n]
    if block["timestep_spacing"] == "trailing" and walks_extra and RNG.random() < 0.7:
        steps = int(pick(walks_extra))  # a step count whose trailing list has N + 1 values
    final = "zero" if ancestral else pick(["zero", "sigma_min"])
    karras = not ancestral and bool(RNG.random() < 0.25)
    churn = 0.0 if ancestral else float(pick([0.0, 0.0, 0.5, 2.0, 8.0]))
    window = churn > 0 and RNG.random() < 0.5
    s_tmin, s_tmax = (0.3, 6.0) if window else (0.0, float("inf"))
    s_noise = float(pick([1.0, 1.0, 1.003]))
    dtype = torch.float32 if RNG.random() < 0.3 else torch.float64
    shape = draw_shape()
    D = shape[1] * shape[2]
    mix = mixture_for(8000 + k, D)
    # the first network call is at σ_max (ᾱ = 2^-24 upstream), where an ε-network is defined: every prediction
    pred = pick(["epsilon", "v_prediction"] if ancestral else ["epsilon", "v_prediction", "sample"])
    torch.set_default_dtype(torch.float64)
    if ancestral:
        sched = EulerAncestralDiscreteScheduler(**block, prediction_type=pred)
    else:
        sched = EulerDiscreteScheduler(**block, prediction_type=pred, final_sigmas_type=final, use_karras_sigmas=karras)
    sched.set_timesteps(steps)
    sig_train = train_sigmas(sched, zero_snr)
    extra = block["timestep_spacing"] == "trailing" and len(np.arange(T, 0, -T / steps)) > steps
    g = torch.Generator().manual_seed(8000 + k)
    z = torch.randn(*shape, generator=g, dtype=torch.float64)
    x = (z * sched.init_noise_sigma).to(dtype)
    init = x.clone()
    draws = []
    rec_gen = torch.Generator().manual_seed(9000 + k)

    def randn(shape_, generator=None, device=None, dtype=None, layout=None):
        d = torch.randn(shape_, generator=rec_gen, dtype=torch.float64).to(x.dtype)
        draws.append(d.clone())
        return d

    module = importlib.import_module(type(sched).__module__)
    module.randn_tensor = randn
    table = []
    for t in sched.timesteps:
        idx = sched.step_index if sched.step_index is not None else 0
        table.append((float(sched.sigmas[idx]), max(float(t), 0.0)))  # t = -1 reads as t = 0 (numpy.interp clamps)
        x_in = sched.scale_model_input(x, t)
        tf = float(t)
        if zero_snr and tf == T - 1:
            a, s = 0.0, 1.0
        else:
            sn = float(np.interp(tf, np.arange(T), sig_train))
            a = 1 / math.sqrt(1 + sn * sn)
            s = sn * a
        out = to_prediction(pred, x_in, analytic_x0(mix, x_in, a, s), a, s).to(dtype)
        if ancestral:
            x = sched.step(out, t, x).prev_sample
        else:
            x = sched.step(out, t, x, s_churn=churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise).prev_sample
    torch.set_default_dtype(torch.float32)
    name = f"{sampler}_{k:02d}"
    save(name + "_tt", np.array(table).T, np.float64)
    f32 = dtype == torch.float32
    grid = {"type": "diffusers", "final_sigmas_type": final}
    if karras:
        grid["use_karras_sigmas"] = True
    if extra:
        grid["trailing_extra_timestep"] = True
    options = {} if ancestral else {"s_churn": churn, "s_noise": s_noise, "churn_order": "diffusers"}
    if window:
        options.update(s_tmin=s_tmin, s_tmax=s_tmax)
    spec = {"sampler": sampler, "dtype": "float32" if f32 else "float64", "shape": shape, "num_inference_steps": steps,
            "schedule": dict(block, alphas_dtype="float32"), "grid": grid,
            "denoiser": dict(mix, time="discrete", interpolation="linear_sigma", prediction_type=pred,
                             timestep_table=name + "_tt.npy"),
            "options": options}
    noise = torch.stack(draws).double().numpy() if draws else None
    out = x.double().numpy()
    # diffusers runs the step in float32 (sample.to(torch.float32)): 2e-6 relative to the run's scale; from
    # σ_max ≈ 4096 (zero terminal SNR) the float32 state carries 4096·2^-24 ≈ 2.4e-4 of rounding into x̂₀ at the
    # first step, on both sides in float32 runs: 2e-4 there
    scale = max(1.0, float(np.abs(out).max()))
    tol = 2e-4 if zero_snr else (2e-5 if f32 else 2e-6)
    cover_common(sampler, block, pred, f32)
    cover(sampler, "churn" if churn > 0 else "no_churn", final, "karras" if karras else None,
          "extra_step" if extra else None, "zero_snr_epsilon" if zero_snr and pred == "epsilon" else None,
          "churn_window" if window else None)
    write(name, spec, out, init.double().numpy(), noise, 0.0, tol * scale,
          f"diffusers 0.42 {type(sched).__name__}" + (" float32" if f32 else "") + (" N+1 trailing" if extra else ""))


# ---------------------------------------------------------------------------------------------------------
# diffusers DPMSolverMultistepScheduler (dpmsolver++) and UniPCMultistepScheduler: they hold the VP state
# x/√(1 + σ²); their σ list (2^-24 at a zero terminal ᾱ) is replayed from a file.


def multistep_case(k, sampler):
    import diffusers
    block = draw_schedule()
    zero_snr = block["rescale_betas_zero_snr"]
    T = block["num_train_timesteps"]
    steps = int(RNG.integers(3, 51))
    pred = ["epsilon", "v_prediction", "sample"][k % 3]  # each prediction type; the rest drawn
    final = pick(["zero", "sigma_min"])
    shape = draw_shape()
    D = shape[1] * shape[2]
    mix = mixture_for(9800 + k, D)
    cfg = dict(block, prediction_type=pred, final_sigmas_type=final)
    options = {}
    if sampler == "unipc":
        cfg.update(solver_order=k // 3 % 3 + 1, solver_type=pick(["bh1", "bh2"]))  # every order × prediction
        if cfg["solver_type"] == "bh1":
            cfg["final_sigmas_type"] = final = "sigma_min"  # bh1 into σ = 0 is NaN upstream (B(h) = −∞ times 0)
        options.update(solver_order=cfg["solver_order"], solver_type=cfg["solver_type"])
        cls = diffusers.UniPCMultistepScheduler
        torch.set_default_dtype(torch.float32)  # UniPC's order-condition solve refuses mixed dtypes
    else:
        cfg.update(solver_type=pick(["midpoint", "heun"]))
        options.update(solver_type=cfg["solver_type"])
        cls = diffusers.DPMSolverMultistepScheduler
        torch.set_default_dtype(torch.float64)
    sched = cls(**cfg)
    sched.set_timesteps(steps)
    sig_train = train_sigmas(sched, zero_snr)
    g = torch.Generator().manual_seed(9800 + k)
    z = torch.randn(*shape, generator=g, dtype=torch.float64)
    x = z * sched.init_noise_sigma
    table = []
    for t in sched.timesteps:
        idx = sched.step_index if sched.step_index is not None else 0
        table.append((float(sched.sigmas[idx]), float(t)))
        ti = int(t)
        if zero_snr and ti == T - 1:
            a, s = 0.0, 1.0
        else:
            a = 1 / math.sqrt(1 + sig_train[ti] ** 2)
            s = sig_train[ti] * a
        out = to_prediction(pred, x, analytic_x0(mix, x, a, s), a, s)
        x = sched.step(out, t, x).prev_sample
    torch.set_default_dtype(torch.float32)
    grid = sched.sigmas.double().numpy()
    name = f"{sampler}_{k:02d}"
    save(name + "_tt", np.array(table).T, np.float64)
    save(name + "_sigmas", grid, np.float64)
    last = float(grid[-1])
    expected = x.double().numpy() * math.sqrt(1 + last * last)  # compared in σ-space
    spec = {"sampler": sampler, "dtype": "float64", "shape": shape, "num_inference_steps": len(grid) - 1,
            "schedule": dict(block, alphas_dtype="float32"), "grid": {"type": "file", "path": name + "_sigmas.npy"},
            "denoiser": dict(mix, time="discrete", interpolation="linear_sigma", prediction_type=pred,
                             timestep_table=name + "_tt.npy"),
            "options": options}
    scale = max(1.0, float(np.abs(expected).max()))
    # the schedulers hold σ and α_t = 1/√(σ² + 1) in float32: 2e-6; from σ_0 > 1000 (≈ 4096 at zero terminal SNR,
    # ≈ 2·10⁴ for squaredcos_cap_v2) σ_t = σ/√(σ² + 1) rounds to float32 next to α_t ≤ 1e-3, 1e-4 of x̂₀ at the
    # first step for ε-networks: 2e-4 there
    tol = 2e-4 if grid[0] > 1e3 else 2e-6
    cover_common(sampler, block, pred, False)
    cover(sampler, final, "order%d" % cfg.get("solver_order", 2), cfg["solver_type"])
    write(name, spec, expected, (z * math.sqrt(1 + float(grid[0]) ** 2)).numpy(), None, 0.0, tol * scale,
          f"diffusers 0.42 {cls.__name__}")


# ---------------------------------------------------------------------------------------------------------
# k-diffusion's DiscreteSchedule grid


def kd_case(k):
    block = draw_schedule()
    block["rescale_betas_zero_snr"] = False  # k-diffusion's σ = √((1 − ᾱ)/ᾱ) is infinite at ᾱ = 0
    del block["timestep_spacing"], block["steps_offset"]
    steps = int(RNG.integers(3, 51))
    sampler = ["euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m"][k % 5]  # each sampler; the rest drawn
    pred = pick(["epsilon", "v_prediction"])
    shape = draw_shape()
    D = shape[1] * shape[2]
    mix = mixture_for(9500 + k, D)
    ac = DDPMScheduler(**block).alphas_cumprod.double()
    T = len(ac)
    log_sig = torch.log(((1 - ac) / ac) ** 0.5)

    def inner(x_in, t):  # a network on discrete timesteps: its σ from t by log interpolation (float64)
        t = t.double()
        lo, hi = t.floor().long(), t.ceil().long()
        w = t - lo
        sn = torch.exp((1 - w) * log_sig[lo] + w * log_sig[hi])
        a = 1 / torch.sqrt(1 + sn * sn)
        s = sn * a
        return to_prediction(pred, x_in, analytic_x0(mix, x_in, a, s), a.reshape(-1, 1, 1), s.reshape(-1, 1, 1))

    wrap = K.external.DiscreteEpsDDPMDenoiser if pred == "epsilon" else K.external.DiscreteVDDPMDenoiser
    model = wrap(inner, ac, quantize=False)
    torch.set_default_dtype(torch.float32)  # k-diffusion's linspace in torch's stock default dtype
    sigmas = model.get_sigmas(steps).double()
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(9500 + k)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * sigmas[0]
    init = x.clone()
    draws = []
    rec_gen = torch.Generator().manual_seed(9600 + k)

    def rec(shape_):
        d = torch.randn(shape_, generator=rec_gen, dtype=torch.float64)
        draws.append(d.clone())
        return d

    fn = getattr(K.sampling, "sample_" + sampler)
    kw = {}
    options = {}
    if sampler in ("euler", "heun", "dpm_2"):
        churn = float(pick([0.0, 1.0, 4.0]))
        kw["s_churn"] = churn
        options.update(s_churn=churn, noise_every_step=True)
    if sampler == "euler_ancestral":
        kw["noise_sampler"] = lambda s, sn: rec(x.shape)
    if sampler == "dpmpp_2m":
        options["lower_order_final"] = False
    old = torch.randn_like
    torch.randn_like = lambda t, **kk: rec(t.shape)
    try:
        out = fn(model, x.clone(), sigmas, disable=True, **kw)
    finally:
        torch.randn_like = old
    torch.set_default_dtype(torch.float32)
    spec = {"sampler": sampler, "dtype": "float64", "shape": shape, "num_inference_steps": steps,
            "schedule": dict(block, alphas_dtype="float32"), "grid": {"type": "discrete"},
            "denoiser": dict(mix, time="discrete", interpolation="log_sigma", prediction_type=pred), "options": options}
    noise = torch.stack(draws).numpy() if draws else None
    cover("kd", sampler, pred, "churn" if kw.get("s_churn") else None)
    # the first step's D = x − σ·ε̂ cancels at σ_0 (≈ 2·10⁴ for squaredcos_cap_v2): rounding ≈ σ_0·2^-52 absolute
    atol = 1e-12 + 1e-13 * float(sigmas[0])
    write(f"kd_{sampler}_{k:02d}", spec, out.numpy(), init.numpy(), noise, 1e-9, atol,
          "k-diffusion 0.1.1 sample_" + sampler + " on DiscreteSchedule.get_sigmas")
    _ = T


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    for k in range(18):
        discrete_case(k, "ddpm")
    for k in range(22):
        discrete_case(k, "ddim")
    for k in range(24):
        euler_case(k)
    for k in range(8):
        euler_case(k, "euler_ancestral")
    for k in range(16):
        kd_case(k)
    for k in range(10):
        multistep_case(k, "dpmpp_2m")
    for k in range(10):
        multistep_case(k, "unipc")
    print(f"{PART}: {sum(COUNTS.values())} specs {COUNTS}; redrawn: {SKIPPED}")
    missing = sorted(REQUIRED - COVERED)
    if missing:
        sys.exit(f"options never switched on by a drawn case: {missing} (draw more cases or change the seed)")


if __name__ == "__main__":
    main()
