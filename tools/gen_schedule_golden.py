#!/usr/bin/env python3
"""Generate golden reference values for tests/schedules from diffusers, k-diffusion, torch and numpy.

Run from the repository root:
    python3 tools/gen_schedule_golden.py
Requires torch (CPU), diffusers, k-diffusion, numpy. Writes tests/golden/schedules/*.npy (overwriting).
The C++ tests read these files only; they never run Python.

Layout (all .npy, little-endian):
  betas_<kind>_T<T>_r<range>_z<zsnr>.npy  float32 [3, T]: betas, alphas, alphas_cumprod (diffusers DDPMScheduler,
                                         or betas_for_alpha_bar for "exp"); ranges listed in BETA_RANGES
  ts_<spacing>_T<T>_N<N>_o<offset>.npy   int64 [M]: DDIMScheduler.set_timesteps (M may be N+1 upstream)
  euler_<name>_sigmas.npy                float32 [N+2]: EulerDiscreteScheduler sigmas (N+1), then init_noise_sigma
  euler_<name>_timesteps.npy             float32 [N]
  kd_<fn>_<case>_f64.npy / _f32.npy      k-diffusion get_sigmas_* with torch default dtype float64 / float32
  kd_sigma_to_t.npy, kd_t_to_sigma.npy   float64 [2, M]: rows input, output of k-diffusion DiscreteSchedule
  kd_get_sigmas.npy                      float64 [n+1]: DiscreteSchedule.get_sigmas(n)
  np_interp.npy                          float64 [2, M]: t, np.interp(t, arange(T), sigmas)
  sde_<vp|subvp|ve>.npy                  float64 [9, M]: t, mean, std, drift f(t), g(t), disc f, disc G, em f, em G
                                         (numpy transcription of score_sde's sde_lib formulas, N = 1000)
"""
import os
import sys
import types

import numpy as np
import torch

sys.modules.setdefault("clip", types.ModuleType("clip"))  # k_diffusion imports clip only for metrics
import k_diffusion as K  # noqa: E402
from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler  # noqa: E402
from diffusers.schedulers.scheduling_ddpm import betas_for_alpha_bar, rescale_zero_terminal_snr  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "schedules")
BETA_RANGES = [(1e-4, 0.02), (0.00085, 0.012)]


def save(name, arr):
    np.save(os.path.join(OUT, name + ".npy"), arr)


def gen_betas():
    for kind in ["linear", "scaled_linear", "sigmoid", "squaredcos_cap_v2", "laplace", "exp"]:
        ranges = range(len(BETA_RANGES)) if kind in ("linear", "scaled_linear", "sigmoid") else [0]
        for T in [1000, 50, 7]:
            for r in ranges:
                b0, b1 = BETA_RANGES[r]
                for z in [0, 1]:
                    if kind == "exp":
                        betas = betas_for_alpha_bar(T, alpha_transform_type="exp")
                        if z:
                            betas = rescale_zero_terminal_snr(betas)
                        alphas = 1.0 - betas
                        ac = torch.cumprod(alphas, dim=0)
                    else:
                        s = DDPMScheduler(num_train_timesteps=T, beta_start=b0, beta_end=b1, beta_schedule=kind,
                                          rescale_betas_zero_snr=bool(z))
                        betas, alphas, ac = s.betas, s.alphas, s.alphas_cumprod
                    arr = torch.stack([betas, alphas, ac]).numpy().astype(np.float32)
                    save(f"betas_{kind}_T{T}_r{r}_z{z}", arr)


def gen_timesteps():
    cases = [(1000, 50), (1000, 7), (1000, 1000), (1000, 1), (50, 29), (999, 13), (7, 7), (7, 3)]
    for spacing in ["leading", "trailing", "linspace"]:
        for T, N in cases:
            for off in ([0, 1] if spacing == "leading" else [0]):
                if spacing == "leading" and (N - 1) * (T // N) + off > T - 1:
                    continue
                s = DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing, steps_offset=off)
                s.set_timesteps(N)
                save(f"ts_{spacing}_T{T}_N{N}_o{off}", s.timesteps.numpy().astype(np.int64))


EULER_CASES = {
    # name: (scheduler kwargs, N)
    "linear_linspace_50": (dict(), 50),
    "sd_leading_30": (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                           timestep_spacing="leading", steps_offset=1), 30),
    "sd_trailing_25": (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                            timestep_spacing="trailing"), 25),
    "sd_karras_20": (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                          use_karras_sigmas=True), 20),
    "sd_exponential_15": (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                               use_exponential_sigmas=True), 15),
    "zsnr_trailing_10": (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              timestep_spacing="trailing", rescale_betas_zero_snr=True), 10),
    "cosine_sigmamin_10": (dict(beta_schedule="squaredcos_cap_v2", final_sigmas_type="sigma_min"), 10),
    "linear_T50_7": (dict(num_train_timesteps=50), 7),
    "karras_sigma_override_12": (dict(use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0), 12),
}


def gen_euler():
    for name, (kw, N) in EULER_CASES.items():
        s = EulerDiscreteScheduler(**kw)
        s.set_timesteps(N)
        init = float(s.init_noise_sigma)
        sig = np.concatenate([s.sigmas.numpy().astype(np.float32), np.array([init], dtype=np.float32)])
        save(f"euler_{name}_sigmas", sig)
        save(f"euler_{name}_timesteps", s.timesteps.numpy().astype(np.float32))


KD_CASES = {
    "karras_a": ("karras", dict(n=10, sigma_min=0.0292, sigma_max=14.6146)),
    "karras_b": ("karras", dict(n=50, sigma_min=0.002, sigma_max=80.0, rho=3.0)),
    "karras_c": ("karras", dict(n=1, sigma_min=0.1, sigma_max=10.0)),
    "exponential_a": ("exponential", dict(n=10, sigma_min=0.0292, sigma_max=14.6146)),
    "exponential_b": ("exponential", dict(n=33, sigma_min=0.002, sigma_max=80.0)),
    "polyexponential_a": ("polyexponential", dict(n=10, sigma_min=0.0292, sigma_max=14.6146)),
    "polyexponential_b": ("polyexponential", dict(n=25, sigma_min=0.002, sigma_max=80.0, rho=2.5)),
    "vp_a": ("vp", dict(n=20)),
    "vp_b": ("vp", dict(n=7, beta_d=10.0, beta_min=0.5, eps_s=1e-2)),
}


def gen_kdiffusion():
    fns = {"karras": K.sampling.get_sigmas_karras, "exponential": K.sampling.get_sigmas_exponential,
           "polyexponential": K.sampling.get_sigmas_polyexponential, "vp": K.sampling.get_sigmas_vp}
    for name, (fn, kw) in KD_CASES.items():
        for dt, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
            torch.set_default_dtype(dt)
            save(f"kd_{name}_{tag}", fns[fn](**kw).numpy())
    torch.set_default_dtype(torch.float32)

    # σ ↔ t over the default linear schedule (T = 1000), in float64.
    ac = DDPMScheduler().alphas_cumprod.double()
    sigmas = ((1 - ac) / ac) ** 0.5
    ds = K.external.DiscreteSchedule(sigmas, quantize=False)
    smin, smax = float(sigmas[0]), float(sigmas[-1])
    q = np.concatenate([[smin * 0.5, smin], np.geomspace(smin * 1.01, smax * 0.99, 40), [smax, smax * 2.0]])
    t = ds.sigma_to_t(torch.from_numpy(q)).numpy().astype(np.float64)
    save("kd_sigma_to_t", np.stack([q, t]))
    tq = np.concatenate([[0.0, 999.0, 500.0, 0.5, 998.75], np.linspace(0, 999, 37)]).astype(np.float32)
    tq = tq.astype(np.float64)
    s = ds.t_to_sigma(torch.from_numpy(tq)).numpy().astype(np.float64)
    save("kd_t_to_sigma", np.stack([tq, s]))
    save("kd_get_sigmas", ds.get_sigmas(12).numpy().astype(np.float64))
    ti = np.concatenate([[0.0, 999.0, 0.25], np.linspace(0, 999, 41), [13.7, 998.9]])
    save("np_interp", np.stack([ti, np.interp(ti, np.arange(len(sigmas)), sigmas.numpy())]))


def gen_sde():
    N = 1000
    tg = np.array([0.0, 1e-5, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.7, 0.9, 0.999, 1.0])
    b0, b1 = 0.1, 20.0
    lmc = -0.25 * tg ** 2 * (b1 - b0) - 0.5 * tg * b0
    beta_t = b0 + tg * (b1 - b0)
    idx = (tg * (N - 1) / 1.0).astype(np.int32)
    dbetas = np.linspace(b0 / N, b1 / N, N)
    dt = 1.0 / N
    # VP
    vp_f, vp_g = -0.5 * beta_t, np.sqrt(beta_t)
    save("sde_vp", np.stack([tg, np.exp(lmc), np.sqrt(1 - np.exp(2 * lmc)), vp_f, vp_g,
                             np.sqrt(1 - dbetas[idx]) - 1, np.sqrt(dbetas[idx]), vp_f * dt, vp_g * np.sqrt(dt)]))
    # sub-VP (EM discretisation only)
    disc = 1.0 - np.exp(-2 * b0 * tg - (b1 - b0) * tg ** 2)
    sg = np.sqrt(beta_t * disc)
    save("sde_subvp", np.stack([tg, np.exp(lmc), 1 - np.exp(2 * lmc), vp_f, sg, vp_f * dt, sg * np.sqrt(dt),
                                vp_f * dt, sg * np.sqrt(dt)]))
    # VE
    smin, smax = 0.01, 50.0
    sig = smin * (smax / smin) ** tg
    g = sig * np.sqrt(2 * (np.log(smax) - np.log(smin)))
    dsig = np.exp(np.linspace(np.log(smin), np.log(smax), N))
    adj = np.where(idx == 0, 0.0, dsig[idx - 1])
    save("sde_ve", np.stack([tg, np.ones_like(tg), sig, np.zeros_like(tg), g, np.zeros_like(tg),
                             np.sqrt(dsig[idx] ** 2 - adj ** 2), np.zeros_like(tg), g * np.sqrt(dt)]))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen_betas()
    gen_timesteps()
    gen_euler()
    gen_kdiffusion()
    gen_sde()
    n = len(os.listdir(OUT))
    size = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {n} files, {size} bytes to {os.path.normpath(OUT)}")
