#!/usr/bin/env python3
"""Golden files for the score_sde-family samplers: PC samplers, Euler–Maruyama, annealed Langevin,
probability-flow ODE (Euler, Heun, RK45).

Run from the repository root:   python3 tools/gen_sampler_golden_score_sde.py
Writes tests/golden/samplers/score_sde/<case>_{x,noise,out}.npy (float64) and <case>_nfe.npy for RK45, and one
sampling spec <case>.json per case (docs/cli.md), run by tests/samplers/test_parity.cpp through `diffuse sample`'s
code path.

score_sde (Song et al. 2021) is written in JAX and is read, not installed. Its update rules (sampling.py:
EulerMaruyamaPredictor, ReverseDiffusionPredictor, AncestralSamplingPredictor, LangevinCorrector,
AnnealedLangevinDynamics, get_pc_sampler, get_ode_sampler; sde_lib.py: VPSDE, subVPSDE, VESDE and
SDE.reverse) are re-implemented below in numpy float64, one function per class, with the same
expressions in the same order. The probability-flow ODE sampler calls scipy.integrate.solve_ivp(RK45)
exactly as score_sde does (the whole batch flattened into one system). NCSN's anneal_Langevin_dynamics
(Song & Ermon 2019) is re-implemented the same way.

The score is the exact score of a two-component Gaussian mixture in 3 dimensions (same numbers as
tests/samplers/s3_*.cpp). Noise: every normal draw of the reference (the prior excluded; the initial x is
stored separately) is taken from numpy's generator in the reference's call order and recorded, so the C++
test replays identical noise with diffuse::recorded_noise. Draw order: per step the corrector's n_steps
draws, then the predictor's (none for a probability-flow predictor, none for the final step when the
result is the noise-free mean, which does not depend on it).
"""
import json
import os

import numpy as np
from scipy import integrate

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "samplers", "score_sde")

# Mixture data: weights, means (K×D), isotropic variances.
W = np.array([0.4, 0.6])
MU = np.array([[1.0, -0.5, 0.3], [-1.0, 0.8, -0.2]])
VAR = np.array([0.09, 0.25])
B, D = 3, 3


def mixture_score(x, alpha, sigma):
    """Exact ∇log p(x) for x = α·x0 + σ·ε, x (B, D), alpha/sigma (B,)."""
    a = alpha[:, None, None]
    v = a[:, :, 0] ** 2 * VAR[None, :] + sigma[:, None] ** 2  # (B, K)
    r = x[:, None, :] - a * MU[None, :, :]  # (B, K, D)
    logr = np.log(W)[None, :] - 0.5 * D * np.log(v) - 0.5 * (r ** 2).sum(-1) / v
    logr -= logr.max(1, keepdims=True)
    p = np.exp(logr)
    p /= p.sum(1, keepdims=True)
    return -(p[:, :, None] * r / v[:, :, None]).sum(1)


# ---- sde_lib.py -----------------------------------------------------------------------------------
class VPSDE:
    T = 1.0

    def __init__(self, beta_min=0.1, beta_max=20, N=1000):
        self.beta_0, self.beta_1, self.N = beta_min, beta_max, N
        self.discrete_betas = np.linspace(beta_min / N, beta_max / N, N)
        self.alphas = 1.0 - self.discrete_betas

    def sde(self, x, t):
        beta_t = self.beta_0 + t * (self.beta_1 - self.beta_0)
        return -0.5 * beta_t[:, None] * x, np.sqrt(beta_t)

    def marginal_coefs(self, t):
        lmc = -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0
        return np.exp(lmc), np.sqrt(1 - np.exp(2.0 * lmc))

    def discretize(self, x, t):  # DDPM discretisation
        timestep = (t * (self.N - 1) / self.T).astype(np.int32)
        beta = self.discrete_betas[timestep]
        alpha = self.alphas[timestep]
        return np.sqrt(alpha)[:, None] * x - x, np.sqrt(beta)


class subVPSDE:
    T = 1.0

    def __init__(self, beta_min=0.1, beta_max=20, N=1000):
        self.beta_0, self.beta_1, self.N = beta_min, beta_max, N
        # score_sde's subVPSDE has no `alphas`, so its Langevin corrector fails on it; the port uses
        # the VP table of the same β (documented in docs/samplers.md).
        self.alphas = 1.0 - np.linspace(beta_min / N, beta_max / N, N)

    def sde(self, x, t):
        beta_t = self.beta_0 + t * (self.beta_1 - self.beta_0)
        discount = 1.0 - np.exp(-2 * self.beta_0 * t - (self.beta_1 - self.beta_0) * t ** 2)
        return -0.5 * beta_t[:, None] * x, np.sqrt(beta_t * discount)

    def marginal_coefs(self, t):
        lmc = -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0
        return np.exp(lmc), 1 - np.exp(2.0 * lmc)

    def discretize(self, x, t):  # SDE.discretize default: Euler–Maruyama with dt = 1/N
        dt = 1 / self.N
        drift, diffusion = self.sde(x, t)
        return drift * dt, diffusion * np.sqrt(dt)


class VESDE:
    T = 1.0

    def __init__(self, sigma_min=0.01, sigma_max=50, N=1000):
        self.sigma_min, self.sigma_max, self.N = sigma_min, sigma_max, N
        self.discrete_sigmas = np.exp(np.linspace(np.log(sigma_min), np.log(sigma_max), N))

    def sde(self, x, t):
        sigma = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        return np.zeros_like(x), sigma * np.sqrt(2 * (np.log(self.sigma_max) - np.log(self.sigma_min)))

    def marginal_coefs(self, t):
        return np.ones_like(t), self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def discretize(self, x, t):  # SMLD discretisation
        timestep = (t * (self.N - 1) / self.T).astype(np.int32)
        sigma = self.discrete_sigmas[timestep]
        adjacent = np.where(timestep == 0, np.zeros(t.shape), self.discrete_sigmas[timestep - 1])
        return np.zeros_like(x), np.sqrt(sigma ** 2 - adjacent ** 2)


def score_fn_of(sde):
    def score_fn(x, t):
        a, s = sde.marginal_coefs(t)
        return mixture_score(x, a, s)
    return score_fn


class Reverse:  # SDE.reverse
    def __init__(self, sde, score_fn, probability_flow):
        self.fwd, self.score_fn, self.pf, self.N, self.T = sde, score_fn, probability_flow, sde.N, sde.T

    def sde(self, x, t):
        drift, diffusion = self.fwd.sde(x, t)
        score = self.score_fn(x, t)
        drift = drift - (diffusion ** 2)[:, None] * (score * (0.5 if self.pf else 1.0))
        return drift, (np.zeros_like(diffusion) if self.pf else diffusion)

    def discretize(self, x, t):
        f, G = self.fwd.discretize(x, t)
        rev_f = f - (G ** 2)[:, None] * (self.score_fn(x, t) * (0.5 if self.pf else 1.0))
        return rev_f, (np.zeros_like(G) if self.pf else G)


# ---- sampling.py ----------------------------------------------------------------------------------
class Noise:
    def __init__(self, rng):
        self.rng, self.draws = rng, []

    def __call__(self):
        z = self.rng.standard_normal((B, D))
        self.draws.append(z)
        return z


def em_predictor(sde, score_fn, pf, x, t, noise, last, dt_vec=None):
    rsde = Reverse(sde, score_fn, pf)
    dt = -1.0 / rsde.N if dt_vec is None else dt_vec
    drift, diffusion = rsde.sde(x, t)
    x_mean = x + drift * (dt if np.isscalar(dt) else dt[:, None])
    if pf or last:
        return x_mean, x_mean
    z = noise()
    return x_mean + diffusion[:, None] * (np.sqrt(-dt) if np.isscalar(dt) else np.sqrt(-dt)[:, None]) * z, x_mean


def reverse_diffusion_predictor(sde, score_fn, pf, x, t, noise, last):
    f, G = Reverse(sde, score_fn, pf).discretize(x, t)
    x_mean = x - f
    if pf or last:
        return x_mean, x_mean
    return x_mean + G[:, None] * noise(), x_mean


def ancestral_predictor(sde, score_fn, pf, x, t, noise, last):
    timestep = (t * (sde.N - 1) / sde.T).astype(np.int32)
    score = score_fn(x, t)
    if isinstance(sde, VESDE):
        sigma = sde.discrete_sigmas[timestep]
        adjacent = np.where(timestep == 0, np.zeros(t.shape), sde.discrete_sigmas[timestep - 1])
        x_mean = x + score * (sigma ** 2 - adjacent ** 2)[:, None]
        std = np.sqrt((adjacent ** 2 * (sigma ** 2 - adjacent ** 2)) / (sigma ** 2))
    else:
        beta = sde.discrete_betas[timestep]
        x_mean = (x + beta[:, None] * score) * (1.0 / np.sqrt(1.0 - beta))[:, None]
        std = np.sqrt(beta)
    if last:
        return x_mean, x_mean
    return x_mean + std[:, None] * noise(), x_mean


def langevin_corrector(sde, score_fn, snr, n_steps, x, t, noise, per_sample=False):
    if isinstance(sde, VESDE):
        alpha = np.ones_like(t)
    else:
        alpha = sde.alphas[(t * (sde.N - 1) / sde.T).astype(np.int32)]
    x_mean = x
    for _ in range(n_steps):
        grad = score_fn(x, t)
        z = noise()
        gn = np.linalg.norm(grad.reshape(grad.shape[0], -1), axis=-1)
        zn = np.linalg.norm(z.reshape(z.shape[0], -1), axis=-1)
        if not per_sample:  # the reference: norms averaged over the batch
            gn, zn = gn.mean(), zn.mean()
        step_size = (snr * zn / gn) ** 2 * 2 * alpha
        x_mean = x + step_size[:, None] * grad
        x = x_mean + z * np.sqrt(step_size * 2)[:, None]
    return x, x_mean


def ald_corrector(sde, score_fn, snr, n_steps, x, t, noise, per_sample=False):
    if isinstance(sde, VESDE):
        alpha = np.ones_like(t)
    else:
        alpha = sde.alphas[(t * (sde.N - 1) / sde.T).astype(np.int32)]
    std = sde.marginal_coefs(t)[1]
    x_mean = x
    for _ in range(n_steps):
        grad = score_fn(x, t)
        z = noise()
        step_size = (snr * std) ** 2 * 2 * alpha
        x_mean = x + step_size[:, None] * grad
        x = x_mean + z * np.sqrt(step_size * 2)[:, None]
    return x, x_mean


PREDICTORS = {"euler_maruyama": em_predictor, "reverse_diffusion": reverse_diffusion_predictor,
              "ancestral": ancestral_predictor, "none": None}
CORRECTORS = {"langevin": langevin_corrector, "ald": ald_corrector, "none": None}


def pc_sampler(sde, x, grid, predictor, corrector, snr, n_steps, pf, denoise, noise, per_sample=False,
               reference_dt=True):
    """get_pc_sampler: grid rows (B, steps+1); step i evaluates at grid[:, i]."""
    score_fn = score_fn_of(sde)
    steps = grid.shape[1] - 1
    x_mean = x
    for i in range(steps):
        t = grid[:, i]
        if CORRECTORS[corrector] is not None:
            x, x_mean = CORRECTORS[corrector](sde, score_fn, snr, n_steps, x, t, noise, per_sample)
        last = denoise and i + 1 == steps
        p = PREDICTORS[predictor]
        if p is None:
            x_mean = x
        elif p is em_predictor:
            x, x_mean = p(sde, score_fn, pf, x, t, noise, last, None if reference_dt else grid[:, i + 1] - t)
        else:
            x, x_mean = p(sde, score_fn, pf, x, t, noise, last)
    return x_mean if denoise else x


def ode_sampler(sde, x, eps, rtol, atol, denoise):
    """get_ode_sampler: scipy RK45 on the flattened batch from T to eps, then optional denoising."""
    score_fn = score_fn_of(sde)
    rsde = Reverse(sde, score_fn, True)

    def ode_func(t, y):
        xx = y.reshape(B, D)
        return rsde.sde(xx, np.ones(B) * t)[0].reshape(-1)

    sol = integrate.solve_ivp(ode_func, (sde.T, eps), x.reshape(-1), rtol=rtol, atol=atol, method="RK45")
    x = sol.y[:, -1].reshape(B, D)
    if denoise:
        x, _ = reverse_diffusion_predictor(sde, score_fn, False, x, np.ones(B) * eps, None, True)
    return x, sol.nfev


def pf_euler(sde, x, grid):
    score_fn = score_fn_of(sde)
    rsde = Reverse(sde, score_fn, True)
    for i in range(grid.shape[1] - 1):
        t, dt = grid[:, i], grid[:, i + 1] - grid[:, i]
        x = x + rsde.sde(x, t)[0] * dt[:, None]
    return x


def pf_heun(sde, x, grid):
    score_fn = score_fn_of(sde)
    rsde = Reverse(sde, score_fn, True)
    for i in range(grid.shape[1] - 1):
        t0, t1 = grid[:, i], grid[:, i + 1]
        dt = (t1 - t0)[:, None]
        d1 = rsde.sde(x, t0)[0]
        xt = x + dt * d1
        d2 = rsde.sde(xt, t1)[0]
        x = x + dt / 2 * (d1 + d2)
    return x


def anneal_langevin(x, sigmas, n_steps_each, step_lr, denoise, noise):
    """NCSN's anneal_Langevin_dynamics (+ NCSNv2's final denoising step)."""
    ones = np.ones(B)
    for sigma in sigmas:
        step_size = step_lr * (sigma / sigmas[-1]) ** 2
        for _ in range(n_steps_each):
            z = noise() * np.sqrt(step_size * 2)
            grad = mixture_score(x, ones, ones * sigma)
            x = x + step_size * grad + z
    if denoise:
        x = x + sigmas[-1] ** 2 * mixture_score(x, ones, ones * sigmas[-1])
    return x


def ref_grid(sde, eps):
    """score_sde's linspace(T, eps, N) plus the end point 0 (diffuse::score_sde_time_grid)."""
    return np.tile(np.append(np.linspace(sde.T, eps, sde.N), 0.0), (B, 1))


def save(name, **arrays):
    for k, v in arrays.items():
        np.save(os.path.join(OUT, f"{name}_{k}.npy"), np.asarray(v, dtype=np.float64))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240603)
    N = 25
    sdes = {"vp": (VPSDE(0.1, 20, N), 1e-3), "subvp": (subVPSDE(0.1, 20, N), 1e-3), "ve": (VESDE(0.01, 50, N), 1e-5)}

    # name, sde, predictor, corrector, snr, n_steps, probability_flow, denoise, per_sample norms
    pc_cases = [
        ("em_vp", "vp", "euler_maruyama", "none", 0.16, 1, False, True, False),
        ("em_subvp", "subvp", "euler_maruyama", "none", 0.16, 1, False, True, False),
        ("em_ve", "ve", "euler_maruyama", "none", 0.16, 1, False, True, False),
        ("em_pf_vp", "vp", "euler_maruyama", "none", 0.16, 1, True, False, False),
        ("rd_langevin_vp", "vp", "reverse_diffusion", "langevin", 0.16, 1, False, True, False),
        ("rd_langevin_subvp", "subvp", "reverse_diffusion", "langevin", 0.16, 1, False, True, False),
        ("rd_langevin_ve", "ve", "reverse_diffusion", "langevin", 0.16, 1, False, True, False),
        ("rd_pf_ve", "ve", "reverse_diffusion", "none", 0.16, 1, True, True, False),
        ("anc_langevin2_vp", "vp", "ancestral", "langevin", 0.1, 2, False, True, False),
        ("anc_langevin2_ve", "ve", "ancestral", "langevin", 0.1, 2, False, False, False),
        ("rd_ald_vp", "vp", "reverse_diffusion", "ald", 0.16, 1, False, True, False),
        ("rd_ald_ve", "ve", "reverse_diffusion", "ald", 0.16, 2, False, True, False),
        ("langevin_only_ve", "ve", "none", "langevin", 0.16, 1, False, True, False),
        ("rd_langevin_persample_vp", "vp", "reverse_diffusion", "langevin", 0.16, 1, False, True, True),
        ("rd_langevin_persample_ve", "ve", "reverse_diffusion", "langevin", 0.2, 2, False, True, True),
    ]
    for name, s, pred, corr, snr, n_steps, pf, denoise, per_sample in pc_cases:
        sde, eps = sdes[s]
        x = rng.standard_normal((B, D)) * (sde.sigma_max if s == "ve" else 1.0)
        noise = Noise(rng)
        out = pc_sampler(sde, x.copy(), ref_grid(sde, eps), pred, corr, snr, n_steps, pf, denoise, noise, per_sample)
        save(name, x=x, noise=np.array(noise.draws).reshape(-1, B, D) if noise.draws else np.zeros((0, B, D)), out=out)

    # Euler–Maruyama on a per-sample grid with Δt from the grid (no reference dt): mixed start times.
    sde, _ = sdes["vp"]
    grid = np.stack([np.linspace(1.0, 1e-3, 11), np.linspace(0.7, 1e-3, 11), np.linspace(0.5, 0.01, 11)])
    x = rng.standard_normal((B, D))
    noise = Noise(rng)
    out = pc_sampler(sde, x.copy(), grid, "euler_maruyama", "none", 0.16, 1, False, True, noise, reference_dt=False)
    save("em_grid_persample_vp", x=x, noise=np.array(noise.draws), out=out, grid=grid)

    # Probability-flow ODE: scipy RK45 (the reference's solver), and Euler / Heun on linspace(1, 1e-3, 21).
    for s, denoise in (("vp", True), ("subvp", False), ("ve", False)):
        sde, eps = sdes[s]
        x = rng.standard_normal((B, D)) * (sde.sigma_max if s == "ve" else 1.0)
        out, nfe = ode_sampler(sde, x.copy(), eps, 1e-5, 1e-5, denoise)
        save(f"rk45_{s}", x=x, out=out, nfe=[nfe])
    sde, _ = sdes["vp"]
    grid = np.tile(np.linspace(1.0, 1e-3, 21), (B, 1))
    x = rng.standard_normal((B, D))
    save("pf_euler_vp", x=x, out=pf_euler(sde, x.copy(), grid))
    save("pf_heun_vp", x=x, out=pf_heun(sde, x.copy(), grid))

    # NCSN annealed Langevin dynamics with NCSNv2's final denoising.
    sigmas = np.exp(np.linspace(np.log(5.0), np.log(0.05), 8))
    x = rng.uniform(-1, 1, (B, D)) * 5.0
    noise = Noise(rng)
    out = anneal_langevin(x.copy(), sigmas, 3, 2e-3, True, noise)
    save("ald_ncsn", x=x, noise=np.array(noise.draws), out=out, sigmas=sigmas)

    write_specs(pc_cases, N)


# ----------------------------------------------------------------------------------------------------------
# Sampling specs (docs/cli.md) naming the files above, run by tests/samplers/test_parity.cpp through the code
# path of `diffuse sample`. Tolerances (atol = tol·max(1, |out|)): 1e-10 for the stochastic and fixed-step
# samplers (the two sides evaluate the same expressions in another order), 5e-9 on sub-VP (σ(eps) ≈ 1e-4:
# the reference's 1 − e^{2·lmc} cancels where the port uses expm1), 1e-8 for RK45 (scipy combines the stages
# with BLAS dot products in another order; the spec also pins the number of model calls), 1e-4 for the
# float32 spot checks against the float64 reference.
SDE_BLOCK = {"vp": {"type": "vp", "beta_min": 0.1, "beta_max": 20.0}, "subvp": {"type": "subvp", "beta_min": 0.1, "beta_max": 20.0},
             "ve": {"type": "ve", "sigma_min": 0.01, "sigma_max": 50.0}}
EPS = {"vp": 1e-3, "subvp": 1e-3, "ve": 1e-5}


def write_spec_file(name, spec, tol, expected=None, **test):
    expected = expected or f"{name}_out.npy"
    out = np.load(os.path.join(OUT, expected))
    scale = max(1.0, float(np.abs(out).max()))
    spec["test"] = {"expected": expected, "rtol": 0.0, "atol": tol * scale,
                    "reference": "score_sde re-implementation (tools/gen_sampler_golden_score_sde.py)", **test}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")


def base_spec(sampler, steps, s, N, file):
    return {"sampler": sampler, "shape": [B, D], "num_inference_steps": steps, "sde": dict(SDE_BLOCK[s], N=N),
            "denoiser": {"time": "sde", "prediction_type": "score", "weights": W.tolist(), "means": MU.tolist(),
                         "variances": VAR.tolist()},
            "init_noise": f"{file}_x.npy"}


def write_specs(pc_cases, N):
    for name, s, pred, corr, snr, n_steps, pf, denoise, per_sample in pc_cases:
        spec = base_spec("pc", N, s, N, name)
        spec["grid"] = {"type": "score_sde", "eps": EPS[s]}
        spec["options"] = {"predictor": pred, "corrector": corr, "snr": snr, "n_steps": n_steps, "probability_flow": pf,
                           "denoise": denoise, "norm": "per_sample" if per_sample else "batch_mean", "reference_dt": True}
        if np.load(os.path.join(OUT, f"{name}_noise.npy")).size:
            spec["step_noise"] = f"{name}_noise.npy"
        write_spec_file(name, dict(spec), 5e-9 if s == "subvp" else 1e-10)
        if name in ("em_vp", "rd_langevin_vp", "rd_langevin_ve"):  # float32 spot checks
            spec["dtype"] = "float32"
            write_spec_file(name + "_f32", spec, 1e-4, expected=f"{name}_out.npy")
    spec = base_spec("euler_maruyama", 10, "vp", N, "em_grid_persample_vp")
    spec.update(grid={"type": "file", "path": "em_grid_persample_vp_grid.npy"}, step_noise="em_grid_persample_vp_noise.npy")
    write_spec_file("em_grid_persample_vp", spec, 1e-10)
    for s, denoise in (("vp", True), ("subvp", False), ("ve", False)):
        spec = base_spec("pf_ode_rk45", 1, s, N, f"rk45_{s}")
        spec["grid"] = {"type": "linspace", "start": 1.0, "end": EPS[s]}
        spec["options"] = {"rtol": 1e-5, "atol": 1e-5, "norm": "batch", "denoise": denoise}
        nfe = int(np.load(os.path.join(OUT, f"rk45_{s}_nfe.npy"))[0]) + (1 if denoise else 0)  # + the denoising call
        write_spec_file(f"rk45_{s}", spec, 1e-8, nfe=nfe)
    for ode in ("euler", "heun"):
        spec = base_spec(f"pf_ode_{ode}", 20, "vp", N, f"pf_{ode}_vp")
        spec["grid"] = {"type": "linspace", "start": 1.0, "end": 1e-3}
        write_spec_file(f"pf_{ode}_vp", spec, 1e-10)
    spec = base_spec("annealed_langevin", 7, "vp", N, "ald_ncsn")
    del spec["sde"]
    spec["denoiser"]["time"] = "sigma"
    spec.update(grid={"type": "file", "path": "ald_ncsn_sigmas.npy"}, step_noise="ald_ncsn_noise.npy",
                options={"step_lr": 2e-3, "n_steps_each": 3, "denoise": True})
    write_spec_file("ald_ncsn", spec, 1e-10)


if __name__ == "__main__":
    main()
