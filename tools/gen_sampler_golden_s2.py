#!/usr/bin/env python3
"""Golden parity files for the σ-space samplers (part S2): k-diffusion and diffusers on an analytic Gaussian.

Run from the repository root:
    python3 tools/gen_sampler_golden_s2.py
Requires torch (CPU), k-diffusion 0.1.1, diffusers 0.42, numpy, scipy. Writes tests/golden/samplers/s2/*.npy
(overwriting). The C++ tests (tests/samplers/s2_*.cpp) only read these files.

The data distribution is x₀ ~ N(μ_j, s_j²) independently per element j, so the exact denoiser is
    D(x; α, σ) = μ + α s²/(α² s² + σ²)·(x − α μ)        (x = α x₀ + σ ε)
and every sampler sees the ideal network. μ and s are in gauss.npy ([2, D] float64).

Identical noise on both sides: every reference call that draws noise is intercepted and its tensor recorded
in call order; the C++ test replays them with diffuse::recorded_noise, draw k = the k-th recorded tensor.
  - k-diffusion: ancestral/SDE samplers get a `noise_sampler(σ, σ_next)` that draws torch.randn from a seeded
    generator and records it (so no Brownian tree is involved: both sides see the same normalised
    increments); the churn samplers call torch.randn_like, which we replace with the same recorder while
    they run.
  - diffusers: the scheduler modules' randn_tensor is replaced by the recorder (no generator is passed).

File layout per case <name> (float64 unless said):
  kd_<name>_x.npy        [B, D] initial state (σ-space: σ_0·z)
  kd_<name>_sigmas.npy   [N+1] σ grid
  kd_<name>_noise.npy    [K, B, D] recorded noise draws (K may be 0 → shape [0, B, D])
  kd_<name>_out.npy      [B, D] the reference's final sample
  kd_<name>_f32_*        the same case run by k-diffusion in float32 (x, sigmas and noise in float32)
  df_<name>_*            diffusers cases: x (the sampler-convention initial state, σ-space x = z·√(σ_0²+1)
                         scaled as the scheduler's init), sigmas [N+1] the σ grid our sampler walks,
                         tt [2, M] (σ, timestep) pairs the scheduler fed the network, noise, out,
                         and for diffusers the network's training σ table (df_sigmas_train.npy [T]).
cases.txt lists every case with its options (one line: prefix name sampler key=value ...), read by the test.
"""
import os
import sys
import types

import numpy as np
import torch

sys.modules.setdefault("clip", types.ModuleType("clip"))  # k_diffusion imports clip only for metrics
import k_diffusion as K  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "samplers", "s2")
B, D = 3, 4
MU = np.array([0.7, -1.2, 0.0, 2.0])
SD = np.array([1.3, 0.5, 2.0, 0.9])
CASES = []


def save(name, arr, dtype=np.float64):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(arr, dtype=dtype))


class Recorder:
    """Standard normal draws from a seeded generator, recorded in call order."""

    def __init__(self, seed, dtype):
        self.gen = torch.Generator().manual_seed(seed)
        self.dtype = dtype
        self.draws = []

    def randn(self, shape):
        z = torch.randn(shape, generator=self.gen, dtype=torch.float64).to(self.dtype)
        self.draws.append(z.clone())
        return z

    def stacked(self, shape):
        if not self.draws:
            return np.zeros((0,) + tuple(shape))
        return torch.stack(self.draws).to(torch.float64).numpy()


def kd_denoiser(dtype):
    mu = torch.tensor(MU, dtype=dtype)
    sd = torch.tensor(SD, dtype=dtype)

    def model(x, sigma):
        s = sigma.reshape(-1, 1)
        return mu + sd ** 2 / (sd ** 2 + s ** 2) * (x - mu)

    return model


KD_SIGMAS = {
    "karras": lambda n: K.sampling.get_sigmas_karras(n, 0.03, 14.6, rho=7.0),
    "exp": lambda n: K.sampling.get_sigmas_exponential(n, 0.05, 10.0),
    "poly": lambda n: K.sampling.get_sigmas_polyexponential(n, 0.02, 20.0, rho=2.0),
}


def run_kd(name, sampler, sched, n, seed, dtype=torch.float64, **kw):
    torch.set_default_dtype(torch.float64)
    sigmas = KD_SIGMAS[sched](n).to(torch.float64)
    if dtype == torch.float32:
        sigmas = sigmas.to(torch.float32)
    rec = Recorder(seed, dtype)
    z = torch.randn((B, D), generator=torch.Generator().manual_seed(1000 + seed), dtype=torch.float64).to(dtype)
    x = z * sigmas[0]
    fn = getattr(K.sampling, "sample_" + sampler)
    args = dict(kw)
    import inspect
    if "noise_sampler" in inspect.signature(fn).parameters:
        args["noise_sampler"] = lambda s, sn: rec.randn((B, D))
    old = torch.randn_like
    torch.randn_like = lambda t, **k: rec.randn(t.shape)
    try:
        out = fn(kd_denoiser(dtype), x.clone(), sigmas, disable=True, **args)
    finally:
        torch.randn_like = old
    tag = "kd_" + name + ("_f32" if dtype == torch.float32 else "")
    save(tag + "_x", x.to(torch.float64).numpy())
    save(tag + "_sigmas", sigmas.to(torch.float64).numpy())
    save(tag + "_noise", rec.stacked((B, D)))
    save(tag + "_out", out.to(torch.float64).numpy())
    opts = " ".join(f"{k}={v}" for k, v in kw.items())
    CASES.append(f"{tag} {sampler} {opts}".strip())


def gen_kdiffusion():
    seed = 0
    for sched in ["karras", "exp", "poly"]:
        for n in [4, 10]:
            seed += 1
            run_kd(f"euler_{sched}_{n}", "euler", sched, n, seed)
            run_kd(f"heun_{sched}_{n}", "heun", sched, n, seed)
            run_kd(f"dpm_2_{sched}_{n}", "dpm_2", sched, n, seed)
            run_kd(f"euler_ancestral_{sched}_{n}", "euler_ancestral", sched, n, seed)
            run_kd(f"dpm_2_ancestral_{sched}_{n}", "dpm_2_ancestral", sched, n, seed)
            run_kd(f"lms_{sched}_{n}", "lms", sched, n, seed)
            run_kd(f"dpmpp_2m_{sched}_{n}", "dpmpp_2m", sched, n, seed)
            run_kd(f"dpmpp_2s_ancestral_{sched}_{n}", "dpmpp_2s_ancestral", sched, n, seed)
            run_kd(f"dpmpp_sde_{sched}_{n}", "dpmpp_sde", sched, n, seed)
            run_kd(f"dpmpp_2m_sde_{sched}_{n}", "dpmpp_2m_sde", sched, n, seed)
            run_kd(f"dpmpp_3m_sde_{sched}_{n}", "dpmpp_3m_sde", sched, n, seed)
    # Options: churn (all steps, and a window), η, s_noise, LMS order, SDE variants.
    run_kd("euler_churn", "euler", "karras", 8, 40, s_churn=2.0)
    run_kd("euler_churn_window", "euler", "karras", 8, 41, s_churn=4.0, s_tmin=0.2, s_tmax=3.0, s_noise=1.003)
    run_kd("heun_churn", "heun", "karras", 6, 42, s_churn=1.0, s_tmin=0.1, s_tmax=5.0)
    run_kd("dpm_2_churn", "dpm_2", "exp", 6, 43, s_churn=3.0, s_noise=0.9)
    run_kd("euler_ancestral_eta", "euler_ancestral", "karras", 7, 44, eta=0.5, s_noise=1.1)
    run_kd("euler_ancestral_eta2", "euler_ancestral", "exp", 5, 45, eta=1.7)
    run_kd("dpm_2_ancestral_eta", "dpm_2_ancestral", "karras", 6, 46, eta=0.6)
    run_kd("dpmpp_2s_ancestral_eta", "dpmpp_2s_ancestral", "poly", 6, 47, eta=0.4, s_noise=0.8)
    run_kd("dpmpp_sde_r", "dpmpp_sde", "karras", 6, 48, eta=0.7, r=0.3)
    run_kd("dpmpp_2m_sde_heun", "dpmpp_2m_sde", "karras", 8, 49, solver_type="heun")
    run_kd("dpmpp_2m_sde_eta", "dpmpp_2m_sde", "exp", 8, 50, eta=0.5, s_noise=1.2)
    run_kd("dpmpp_3m_sde_eta", "dpmpp_3m_sde", "karras", 9, 51, eta=0.3)
    run_kd("dpmpp_3m_sde_ode", "dpmpp_3m_sde", "karras", 9, 52, eta=0.0)
    run_kd("lms_order2", "lms", "karras", 9, 53, order=2)
    run_kd("lms_order3", "lms", "exp", 9, 54, order=3)
    # float32 spot checks
    for s in ["euler", "heun", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "lms"]:
        run_kd(f"{s}_karras_10", s, "karras", 10, 60, dtype=torch.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    save("gauss", np.stack([MU, SD]))
    gen_kdiffusion()
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(CASES) + "\n")
    print(f"{len(CASES)} cases written to {OUT}")


if __name__ == "__main__":
    main()
