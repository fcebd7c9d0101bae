#!/usr/bin/env python3
"""Golden parity files for DPM-adaptive (k-diffusion), LCM and consistency-model multistep (diffusers).

Run from the repository root:
    python3 tools/gen_sampler_golden_adaptive_consistency.py
Requires torch (CPU), k-diffusion 0.1.1, diffusers 0.42, numpy. Writes tests/golden/samplers/adaptive_consistency/*.npy and
cases.txt (overwriting). The C++ tests (tests/samplers/s4_*.cpp) only read these files.

Data: x₀ ~ N(μ_j, s_j²) per element j (gauss.npy = [μ; s], [2, D]); the ideal network at x = α x₀ + σ ε is
    E[x₀|x] = μ + α s²/(α² s² + σ²)·(x − α μ).
Identical noise: every draw the reference makes is recorded in call order and replayed by the C++ tests with
diffuse::recorded_noise (k-diffusion: a noise_sampler that records; diffusers: the scheduler module's
randn_tensor replaced by the recorder).

Cases (one line each in cases.txt: tag sampler key=value ...):
  ad_*  k-diffusion sample_dpm_adaptive, float64 (torch default dtype float64 so that its λ, atol, rtol
        tensors are float64). Files: _x [B, D] initial state σ_max·z, _noise [K, B, D], _out [B, D],
        _info [3] (nfe, n_accept, n_reject).
        norm=batch: one k-diffusion call on the batch (its batch-wide error norm).
        norm=per_sample: k-diffusion called on each sample alone (batch of one = per-sample control); the
        noise file holds draw k of sample b at [k, b] (zeros where a sample made fewer draws); _info holds
        (max over samples of nfe, Σ n_accept, Σ n_reject), _nfe [B] each sample's nfe.
  lcm_* diffusers LCMScheduler's loop (network, step) with a discrete-time network on its own ᾱ table
        (lcm_alphas_cumprod.npy: diffusers' float32 ᾱ widened to float64 and given back to the scheduler
        as float64, so its arithmetic is float64). Files: _x, _t [N] timesteps, _noise, _out (denoised of the
        last step).
  cm_*  diffusers CMStochasticIterativeScheduler with the raw network F_j(u, c) = sin(w_j u + 0.001 c) + 0.1 u
        (u = c_in·x, c = 250·log(σ + 1e-44)), w = CM_W; scheduler.sigmas replaced by the float64 values it
        rounds to float32. Files: _x, _sigmas [N+1], _noise, _out.
"""
import importlib
import os
import sys
import types

import numpy as np
import torch

sys.modules.setdefault("clip", types.ModuleType("clip"))  # k_diffusion imports clip only for metrics
import k_diffusion as K  # noqa: E402
import diffusers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "samplers", "adaptive_consistency")
B, D = 3, 4
MU = np.array([0.7, -1.2, 0.0, 2.0])
SD = np.array([1.3, 0.5, 2.0, 0.9])
CM_W = np.array([0.9, -1.3, 0.5, 2.1])
CASES = []


def save(name, arr):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(arr, dtype=np.float64))


class Recorder:
    def __init__(self, seed, shape):
        self.gen = torch.Generator().manual_seed(seed)
        self.shape = shape
        self.draws = []

    def randn(self, shape=None):
        z = torch.randn(shape or self.shape, generator=self.gen, dtype=torch.float64)
        self.draws.append(z.clone())
        return z

    def stacked(self):
        if not self.draws:
            return np.zeros((0,) + tuple(self.shape))
        return torch.stack(self.draws).reshape((len(self.draws),) + tuple(self.shape)).numpy()


def x0_gauss(x, alpha, sigma):
    mu = torch.tensor(MU)
    s2 = torch.tensor(SD) ** 2
    a = alpha.reshape(-1, 1)
    s = sigma.reshape(-1, 1)
    return mu + a * s2 / (a * a * s2 + s * s) * (x - a * mu)


# ---------------------------------------------------------------------------------------------------------
# DPM-adaptive (k-diffusion)
def kd_model(x, sigma):
    return x0_gauss(x, torch.ones_like(sigma), sigma)


def run_adaptive(name, seed, sigma_min, sigma_max, norm="batch", **kw):
    torch.set_default_dtype(torch.float64)
    z = torch.randn((B, D), generator=torch.Generator().manual_seed(3000 + seed), dtype=torch.float64)
    x = z * sigma_max
    tag = "ad_" + name
    if norm == "batch":
        rec = Recorder(seed, (B, D))
        out, info = K.sampling.sample_dpm_adaptive(kd_model, x.clone(), sigma_min, sigma_max, disable=True,
                                                   noise_sampler=lambda s, t: rec.randn(), return_info=True, **kw)
        noise = rec.stacked()
        stats = [info["nfe"], info["n_accept"], info["n_reject"]]
    else:
        outs, recs, nfes, acc, rej = [], [], [], 0, 0
        for b in range(B):
            rec = Recorder(seed * 100 + b, (1, D))
            o, info = K.sampling.sample_dpm_adaptive(kd_model, x[b:b + 1].clone(), sigma_min, sigma_max, disable=True,
                                                     noise_sampler=lambda s, t, r=rec: r.randn(), return_info=True,
                                                     **kw)
            outs.append(o)
            recs.append(rec)
            nfes.append(info["nfe"])
            acc += info["n_accept"]
            rej += info["n_reject"]
        out = torch.cat(outs)
        kmax = max(len(r.draws) for r in recs)
        noise = np.zeros((kmax, B, D))
        for b, r in enumerate(recs):
            for k, d in enumerate(r.draws):
                noise[k, b] = d.numpy()[0]
        stats = [max(nfes), acc, rej]
        save(tag + "_nfe", np.array(nfes, dtype=np.float64))
    save(tag + "_x", x.numpy())
    save(tag + "_noise", noise)
    save(tag + "_out", out.numpy())
    save(tag + "_info", np.array(stats, dtype=np.float64))
    opts = " ".join(f"{k}={v}" for k, v in kw.items())
    CASES.append(f"{tag} dpm_adaptive sigma_min={sigma_min!r} sigma_max={sigma_max!r} norm={norm} {opts}".strip())
    print(tag, "nfe/accept/reject", stats)


def gen_adaptive():
    run_adaptive("o3_default", 1, 0.03, 14.6)
    run_adaptive("o2_default", 2, 0.03, 14.6, order=2)
    run_adaptive("o3_tight", 3, 0.05, 10.0, rtol=0.005, atol=0.0005)
    run_adaptive("o2_tight", 4, 0.05, 10.0, order=2, rtol=0.01, atol=0.001)
    run_adaptive("o3_pid", 5, 0.02, 20.0, rtol=0.01, atol=0.001, pcoeff=0.3, icoeff=0.6, dcoeff=0.1)
    run_adaptive("o2_pid_safety", 6, 0.1, 5.0, order=2, rtol=0.02, atol=0.002, h_init=0.3, pcoeff=0.2,
                 icoeff=0.9, dcoeff=0.05, accept_safety=0.9)
    run_adaptive("o3_hinit", 7, 0.03, 14.6, h_init=0.5)
    run_adaptive("o3_eta", 8, 0.03, 14.6, eta=1.0)
    run_adaptive("o2_eta", 9, 0.05, 10.0, order=2, eta=0.5, s_noise=1.1, rtol=0.02, atol=0.002)
    run_adaptive("o3_eta_tight", 10, 0.05, 10.0, eta=0.7, rtol=0.01, atol=0.001)
    # per-sample control = k-diffusion on each sample alone
    run_adaptive("ps_o3", 11, 0.03, 14.6, norm="per_sample", rtol=0.01, atol=0.001)
    run_adaptive("ps_o2", 12, 0.05, 10.0, norm="per_sample", order=2, rtol=0.02, atol=0.002)
    run_adaptive("ps_o3_eta", 13, 0.03, 14.6, norm="per_sample", eta=1.0, rtol=0.02, atol=0.002)


# ---------------------------------------------------------------------------------------------------------
# LCM and consistency models (diffusers)
LCM_BETA = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def with_recorder(cls, rec, fn):
    mod = importlib.import_module(cls.__module__)
    old = mod.randn_tensor
    mod.randn_tensor = lambda shape, generator=None, device=None, dtype=None, layout=None: rec.randn(shape)
    try:
        return fn()
    finally:
        mod.randn_tensor = old


def run_lcm(name, seed, n, pred="epsilon", original_inference_steps=None, strength=1.0, **cfg):
    torch.set_default_dtype(torch.float64)
    sched = diffusers.LCMScheduler(prediction_type=pred, **LCM_BETA, **cfg)
    ac = sched.alphas_cumprod.to(torch.float64)
    sched.alphas_cumprod = ac
    sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64) if sched.config.set_alpha_to_one else ac[0]
    sched.set_timesteps(n, original_inference_steps=original_inference_steps, strength=strength)
    z = torch.randn((B, D), generator=torch.Generator().manual_seed(4000 + seed), dtype=torch.float64)
    rec = Recorder(seed, (B, D))

    def loop():
        x = z.clone()
        den = None
        for t in sched.timesteps:
            a = ac[t].sqrt() * torch.ones(B)
            s = (1 - ac[t]).sqrt() * torch.ones(B)
            x0 = x0_gauss(x, a, s)
            eps = (x - a.reshape(-1, 1) * x0) / s.reshape(-1, 1)
            out = {"epsilon": eps, "sample": x0, "v_prediction": a.reshape(-1, 1) * eps - s.reshape(-1, 1) * x0}[pred]
            # [B, 2, 2]: diffusers' thresholding wants image-shaped samples (the values are the same)
            x, den = sched.step(out.reshape(B, 2, 2), t, x.reshape(B, 2, 2), return_dict=False)
            x = x.reshape(B, D)
        return den.reshape(B, D)

    out = with_recorder(diffusers.LCMScheduler, rec, loop)
    tag = "lcm_" + name
    save(tag + "_x", z.numpy())
    save(tag + "_t", sched.timesteps.numpy().astype(np.float64))
    save(tag + "_noise", rec.stacked())
    save(tag + "_out", out.numpy())
    opts = {"prediction": pred, "steps": n, "original_inference_steps": original_inference_steps or 50,
            "strength": strength, **cfg}
    CASES.append(f"{tag} lcm " + " ".join(f"{k}={v}" for k, v in opts.items()))


def cm_net(u, c):
    w = torch.tensor(CM_W)
    return torch.sin(w * u + 0.001 * c.reshape(-1, 1)) + 0.1 * u


def run_cm(name, seed, n=None, timesteps=None, **cfg):
    torch.set_default_dtype(torch.float64)
    sched = diffusers.CMStochasticIterativeScheduler(**cfg)
    sched.set_timesteps(num_inference_steps=n, timesteps=timesteps)
    # the float64 σ the scheduler rounds to float32 (same numpy expression as its set_timesteps)
    ts = np.array(timesteps, dtype=np.int64) if timesteps is not None else (
        np.arange(0, n) * (sched.config.num_train_timesteps // n)).round()[::-1].copy().astype(np.int64)
    ramp = ts[::-1].copy() / (sched.config.num_train_timesteps - 1)
    sig = np.concatenate([sched._convert_to_karras(ramp), [sched.config.sigma_min]])
    sched.sigmas = torch.from_numpy(sig)
    z = torch.randn((B, D), generator=torch.Generator().manual_seed(5000 + seed), dtype=torch.float64)
    rec = Recorder(seed, (B, D))

    def loop():
        x = z * sched.init_noise_sigma
        for t in sched.timesteps:
            u = sched.scale_model_input(x, t)
            x = sched.step(cm_net(u, t * torch.ones(B)), t, x).prev_sample
        return x

    out = with_recorder(diffusers.CMStochasticIterativeScheduler, rec, loop)
    tag = "cm_" + name
    save(tag + "_x", (z * sched.init_noise_sigma).numpy())
    save(tag + "_sigmas", sig)
    save(tag + "_noise", rec.stacked())
    save(tag + "_out", out.numpy())
    c = sched.config
    opts = {"steps": len(sched.timesteps), "num_train_timesteps": c.num_train_timesteps, "sigma_min": c.sigma_min,
            "sigma_max": c.sigma_max, "sigma_data": c.sigma_data, "s_noise": c.s_noise, "rho": c.rho,
            "clip_denoised": int(c.clip_denoised)}
    if timesteps is not None:
        opts["timesteps"] = ",".join(str(t) for t in timesteps)
    CASES.append(f"{tag} consistency " + " ".join(f"{k}={v}" for k, v in opts.items()))


def gen_lcm():
    run_lcm("eps_4", 1, 4)
    run_lcm("eps_1", 2, 1)
    run_lcm("eps_2", 3, 2)
    run_lcm("eps_8", 4, 8)
    run_lcm("v_4", 5, 4, pred="v_prediction")
    run_lcm("x0_4", 6, 4, pred="sample")
    run_lcm("orig20_4", 7, 4, original_inference_steps=20)
    run_lcm("scaling5_6", 8, 6, timestep_scaling=5.0)
    run_lcm("clip_4", 9, 4, clip_sample=True, clip_sample_range=1.5)
    run_lcm("threshold_4", 10, 4, thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=1.5)
    run_lcm("strength_3", 11, 3, strength=0.6)


def gen_cm():
    run_cm("n1", 1, n=1)
    run_cm("n2", 2, n=2)
    run_cm("n4", 3, n=4)
    run_cm("n4_noclip", 4, n=4, clip_denoised=False)
    run_cm("custom_22_0", 5, timesteps=[22, 0])
    run_cm("n3_snoise", 6, n=3, s_noise=0.9, sigma_data=0.6, clip_denoised=False)
    run_cm("n5_t80", 7, n=5, num_train_timesteps=80, sigma_min=0.01, sigma_max=40.0, rho=5.0, clip_denoised=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    save("gauss", np.stack([MU, SD]))
    save("cm_w", CM_W)
    torch.set_default_dtype(torch.float64)
    save("lcm_alphas_cumprod", diffusers.LCMScheduler(**LCM_BETA).alphas_cumprod.to(torch.float64).numpy())
    gen_adaptive()
    gen_lcm()
    gen_cm()
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(CASES) + "\n")
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
