#!/usr/bin/env python3
"""Golden parity files for the samplers: runs sampling specs through the reference libraries on the exact
Gaussian-mixture denoiser, with identical noise on both sides, and writes

    tests/golden/samplers/<part>/<name>.json        the spec (docs/cli.md) plus a "test" block
    tests/golden/samplers/<part>/<name>_init.npy     the initial state fed to both sides
    tests/golden/samplers/<part>/<name>_noise.npy    the per-step noise (draw i = step i), when stochastic
    tests/golden/samplers/<part>/<name>.npy          the reference's final sample

tests/samplers/test_parity.cpp runs every spec through the same code as `diffuse sample` and compares.

Run from the repository root:  python3 tools/gen_sampler_golden_discrete.py
Needs torch (CPU), diffusers and numpy. This script owns part s1 (DDPM, DDIM, DDIM inversion vs diffusers);
the σ-space and score_sde families live in tools/gen_sampler_golden_sigma.py / _score_sde.py and reuse the helpers here
(`from gen_sampler_golden_discrete import analytic_x0, to_prediction, write_spec, mixture_for`).

Precision: float64 runs hand the schedulers float64 copies of their ᾱ tables (the values are diffusers' own
float32 numbers; only the step arithmetic is widened), so the comparison isolates the algorithm. float32 spot
checks keep diffusers' float32 tables untouched.
"""
import json
import math
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "samplers")

# ----------------------------------------------------------------------------------------------------------
# The exact denoiser (mirrors include/diffuse/samplers/analytic.hpp)


def mixture_for(seed, dim, k=3):
    g = np.random.default_rng(seed)
    w = g.uniform(0.5, 1.5, k)
    means = g.uniform(-1.4, 1.4, (k, dim))
    var = g.uniform(0.02, 0.2, k)
    return {"weights": (w / w.sum()).tolist(), "means": means.tolist(), "variances": var.tolist()}


def analytic_x0(mix, x, alpha, sigma, weights=None):
    """E[x0 | x] for x = alpha*x0 + sigma*eps, x: (B, ...) tensor; alpha, sigma: floats or (B,)."""
    shape = x.shape
    x = x.double().reshape(shape[0], -1)
    w = torch.tensor(weights if weights is not None else mix["weights"], dtype=torch.float64)
    mu = torch.tensor(mix["means"], dtype=torch.float64)  # K x D
    var = torch.tensor(mix["variances"], dtype=torch.float64)  # K
    a = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1, 1, 1)
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1)
    v = a * a * var.reshape(1, -1, 1) + s * s  # B x K x 1
    r = x.unsqueeze(1) - a * mu.unsqueeze(0)  # B x K x D
    lp = torch.log(w).reshape(1, -1) - 0.5 * ((r * r / v) + torch.log(v) + math.log(2 * math.pi)).sum(-1)
    resp = torch.softmax(lp, dim=1)  # B x K
    gain = a * var.reshape(1, -1, 1) / v
    comp = mu.unsqueeze(0) + gain * r
    return (resp.unsqueeze(-1) * comp).sum(1).reshape(shape)


def to_prediction(kind, x, x0, alpha, sigma):
    x = x.double()
    if kind == "sample":
        return x0
    eps = (x - alpha * x0) / sigma
    if kind == "epsilon":
        return eps
    if kind == "v_prediction":
        return alpha * eps - sigma * x0
    if kind == "score":
        return -eps / sigma
    raise ValueError(kind)


def write_spec(part, name, spec, expected, init, noise=None, rtol=1e-12, atol=1e-12, reference=""):
    d = os.path.join(OUT, part)
    os.makedirs(d, exist_ok=True)
    dt = np.float32 if spec.get("dtype") == "float32" else np.float64
    np.save(os.path.join(d, name + "_init.npy"), np.asarray(init, dtype=dt))
    spec = dict(spec)
    spec["init_noise"] = name + "_init.npy"
    if noise is not None:
        np.save(os.path.join(d, name + "_noise.npy"), np.asarray(noise, dtype=dt))
        spec["step_noise"] = name + "_noise.npy"
    np.save(os.path.join(d, name + ".npy"), np.asarray(expected, dtype=dt))
    spec["test"] = {"expected": name + ".npy", "rtol": rtol, "atol": atol, "reference": reference}
    with open(os.path.join(d, name + ".json"), "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")


# ----------------------------------------------------------------------------------------------------------
# s1: DDPM / DDIM / DDIM inversion vs diffusers

from diffusers import DDIMInverseScheduler, DDIMScheduler, DDPMScheduler  # noqa: E402
import diffusers.schedulers.scheduling_ddpm as ddpm_module  # noqa: E402

SCHEDULES = {
    "linear": {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
    "scaled_linear": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    "cosine": {"beta_schedule": "squaredcos_cap_v2"},
}


def schedule_block(sname, spacing, offset=0, zero_snr=False, T=1000):
    b = {"num_train_timesteps": T, "timestep_spacing": spacing, "steps_offset": offset}
    b.update(SCHEDULES[sname])
    if zero_snr:
        b["rescale_betas_zero_snr"] = True
    return b


def widen(sched, dtype):
    if dtype == torch.float64:
        sched.alphas_cumprod = sched.alphas_cumprod.double()
        for attr in ("one", "final_alpha_cumprod", "initial_alpha_cumprod"):
            if hasattr(sched, attr):
                setattr(sched, attr, torch.as_tensor(getattr(sched, attr)).double())


def net_call(mix, pred, sched, x, t, learned_v=None):
    ac = float(sched.alphas_cumprod[int(t)])
    a, s = math.sqrt(ac), math.sqrt(1 - ac)
    x0 = analytic_x0(mix, x, a, s)
    out = to_prediction(pred, x, x0, a, s).to(x.dtype)
    if learned_v is not None:
        out = torch.cat([out, torch.full_like(out, learned_v)], dim=1)
    return out


def case_ddpm(i, sname, spacing, pred, steps, variance, clip, thresh, dtype=torch.float64, offset=0, zero_snr=False):
    B, C, L = 3, 2, 3
    D = C * L
    mix = mixture_for(100 + i, D)
    sb = schedule_block(sname, spacing, offset, zero_snr)
    cfg = {k: v for k, v in sb.items()}
    sched = DDPMScheduler(**cfg, prediction_type=pred, variance_type=variance, clip_sample=clip,
                          thresholding=thresh, sample_max_value=1.5 if thresh else 1.0,
                          dynamic_thresholding_ratio=0.9)
    sched.set_timesteps(steps)
    widen(sched, dtype)
    g = torch.Generator().manual_seed(1000 + i)
    x = torch.randn(B, C, L, generator=g, dtype=dtype)
    init = x.clone()
    noise = torch.randn(steps, B, C, L, generator=g, dtype=dtype)
    it = iter(noise)
    ddpm_module.randn_tensor = lambda *a, **k: next(it)
    lv = 0.3 if variance in ("learned_range",) else None
    for t in sched.timesteps:
        out = net_call(mix, pred, sched, x, t, lv)
        x = sched.step(out, t, x).prev_sample
    spec = {"sampler": "ddpm", "dtype": "float32" if dtype == torch.float32 else "float64", "shape": [B, C, L],
            "num_inference_steps": steps, "schedule": sb,
            "denoiser": dict(mix, prediction_type=pred, **({"learned_variance": lv} if lv is not None else {})),
            "options": {"variance_type": variance, "clip_sample": clip, "thresholding": thresh,
                        "sample_max_value": 1.5 if thresh else 1.0, "dynamic_thresholding_ratio": 0.9}}
    return spec, x, init, noise


def case_ddim(i, sname, spacing, pred, steps, eta, clip, thresh, clipped_out=False, dtype=torch.float64, offset=0,
              alpha_one=True, zero_snr=False):
    B, C, L = 3, 2, 3
    D = C * L
    mix = mixture_for(200 + i, D)
    sb = schedule_block(sname, spacing, offset, zero_snr)
    sched = DDIMScheduler(**sb, prediction_type=pred, clip_sample=clip, thresholding=thresh,
                          sample_max_value=1.5 if thresh else 1.0, dynamic_thresholding_ratio=0.9,
                          set_alpha_to_one=alpha_one)
    sched.set_timesteps(steps)
    widen(sched, dtype)
    g = torch.Generator().manual_seed(2000 + i)
    x = torch.randn(B, C, L, generator=g, dtype=dtype)
    init = x.clone()
    noise = torch.randn(steps, B, C, L, generator=g, dtype=dtype) if eta > 0 else None
    for k, t in enumerate(sched.timesteps):
        out = net_call(mix, pred, sched, x, t)
        x = sched.step(out, t, x, eta=eta, use_clipped_model_output=clipped_out,
                       variance_noise=None if noise is None else noise[k]).prev_sample
    spec = {"sampler": "ddim", "dtype": "float32" if dtype == torch.float32 else "float64", "shape": [B, C, L],
            "num_inference_steps": steps, "schedule": sb, "denoiser": dict(mix, prediction_type=pred),
            "options": {"eta": eta, "clip_sample": clip, "thresholding": thresh,
                        "sample_max_value": 1.5 if thresh else 1.0, "dynamic_thresholding_ratio": 0.9,
                        "use_clipped_model_output": clipped_out, "set_alpha_to_one": alpha_one,
                        "prev_timestep": "fixed_stride"}}
    return spec, x, init, noise


def case_ddim_inverse(i, sname, spacing, pred, steps, clip=False, dtype=torch.float64):
    B, C, L = 3, 2, 3
    D = C * L
    mix = mixture_for(300 + i, D)
    sb = schedule_block(sname, spacing)
    sched = DDIMInverseScheduler(**sb, prediction_type=pred, clip_sample=clip)
    sched.set_timesteps(steps)
    widen(sched, dtype)
    g = torch.Generator().manual_seed(3000 + i)
    x = 0.8 * torch.randn(B, C, L, generator=g, dtype=dtype)  # a "clean" start
    init = x.clone()
    for t in sched.timesteps:
        out = net_call(mix, pred, sched, x, t)
        x = sched.step(out, t, x).prev_sample
    spec = {"sampler": "ddim_inverse", "dtype": "float32" if dtype == torch.float32 else "float64", "shape": [B, C, L],
            "num_inference_steps": steps, "schedule": sb, "denoiser": dict(mix, prediction_type=pred),
            "options": {"clip_sample": clip, "model_at_target": True}}
    return spec, x, init, None


def s1():
    n = 0
    preds = ["epsilon", "sample", "v_prediction"]
    spacings = ["leading", "trailing", "linspace"]
    names = list(SCHEDULES)
    # DDPM: schedules x spacings x predictions x variance x clip/threshold, cycled
    variances = ["fixed_small", "fixed_large", "learned_range", "fixed_small_log"]
    for i in range(24):
        s, sp, p = names[i % 3], spacings[(i // 3) % 3], preds[(i // 2) % 3]
        steps = [4, 10, 25][(i // 5) % 3]
        var = variances[i % 4]
        clip, thresh = [(False, False), (True, False), (False, True)][(i // 4) % 3]
        spec, x, init, noise = case_ddpm(i, s, sp, p, steps, var, clip, thresh, offset=1 if (i % 7 == 3 and sp == "leading") else 0)
        write_spec("discrete", f"ddpm_{i:02d}", spec, x, init, noise, rtol=1e-10, atol=1e-11,
                   reference="diffusers DDPMScheduler")
        n += 1
    # DDIM: schedules x spacings x predictions x steps x eta x clip/threshold/use_clipped_model_output
    etas = [0.0, 0.5, 1.0]
    for i in range(30):
        s, sp, p = names[i % 3], spacings[(i // 3) % 3], preds[(i // 9) % 3]
        steps = [3, 10, 20, 50][i % 4]
        eta = etas[(i // 2) % 3]
        clip, thresh = [(False, False), (True, False), (False, True), (True, False)][(i // 5) % 4]
        clipped_out = clip and i % 2 == 0
        spec, x, init, noise = case_ddim(i, s, sp, p, steps, eta, clip, thresh, clipped_out,
                                         alpha_one=(i % 5 != 4))  # zero SNR: gen_sampler_golden_schedule_options.py
        write_spec("discrete", f"ddim_{i:02d}", spec, x, init, noise, rtol=1e-10, atol=1e-11,
                   reference="diffusers DDIMScheduler (prev timestep t - T//N)")
        n += 1
    for i, (s, sp, p) in enumerate([("linear", "leading", "epsilon"), ("scaled_linear", "trailing", "v_prediction"),
                                    ("cosine", "leading", "epsilon"), ("linear", "trailing", "epsilon")]):
        spec, x, init, noise = case_ddim_inverse(i, s, sp, p, [5, 10, 20, 8][i], clip=(i == 3))
        write_spec("discrete", f"ddim_inverse_{i:02d}", spec, x, init, noise, rtol=1e-10, atol=1e-11,
                   reference="diffusers DDIMInverseScheduler")
        n += 1
    # float32 spot checks (diffusers' own float32 tables and arithmetic)
    for i in range(3):
        spec, x, init, noise = case_ddpm(50 + i, names[i], spacings[i], preds[i], 10, "fixed_small", i == 1, False,
                                         dtype=torch.float32)
        write_spec("discrete", f"ddpm_f32_{i}", spec, x, init, noise, rtol=2e-5, atol=2e-5,
                   reference="diffusers DDPMScheduler float32")
        spec, x, init, noise = case_ddim(50 + i, names[i], spacings[i], preds[i], 10, [0.0, 1.0, 0.5][i], i == 2, False,
                                         dtype=torch.float32)
        write_spec("discrete", f"ddim_f32_{i}", spec, x, init, noise, rtol=2e-5, atol=2e-5,
                   reference="diffusers DDIMScheduler float32")
        n += 2
    print(f"discrete: {n} specs")


if __name__ == "__main__":
    s1()
