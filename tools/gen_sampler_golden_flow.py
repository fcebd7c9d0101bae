#!/usr/bin/env python3
"""Golden files for flow matching: diffusers' FlowMatchEulerDiscreteScheduler / FlowMatchHeunDiscreteScheduler
on the exact velocity of a Gaussian mixture, their σ grids, and the SD3 training utilities.

Run from the repository root:
    python3 tools/gen_sampler_golden_flow.py
Requires torch (CPU), diffusers 0.42, numpy, scipy. Writes (overwriting)
  tests/golden/samplers/flow/<case>.json + .npy   sampling specs (docs/cli.md) with the reference's result,
                                                   run by tests/samplers/test_parity.cpp and tests/flow/
  tests/golden/flow/schedules.json                 set_timesteps σ and timesteps over drawn configurations
  tests/golden/flow/training.json                  compute_density_for_timestep_sampling,
                                                   compute_loss_weighting_for_sd3, the training σ of a draw

The network is the exact flow velocity of the mixture p₀ = Σ w_k N(μ_k, s_k² I): at the state
x = (1 − s)·x₀ + s·ε with s = timestep/T it returns u = (x − E[x₀|x])/s (= E[ε − x₀ | x]), computed in float64
(mirrors include/diffuse/samplers/analytic.hpp with diffuse::flow_time). Every configuration is drawn from one
seeded generator over the options: shift, dynamic shifting (random μ, exponential and linear time_shift_type,
or μ from an image sequence length), shift_terminal, karras/exponential/beta σ, user σ lists (Flux's
linspace(1, 1/n, n)), stochastic sampling, Heun churn (s_churn, s_tmin, s_tmax, s_noise), 3–50 steps, batch
and shape, float32/float64, prediction type (flow, sample or v of the same network), num_train_timesteps.
Noise is recorded: the schedulers' randn_tensor is replaced by a recorder, replayed by diffuse::recorded_noise.
"""
import json
import math
import os

import numpy as np
import torch

import diffusers.schedulers.scheduling_flow_match_euler_discrete as euler_module
import diffusers.schedulers.scheduling_flow_match_heun_discrete as heun_module
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler
from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SPECS = os.path.join(ROOT, "tests", "golden", "samplers", "flow")
FLOW = os.path.join(ROOT, "tests", "golden", "flow")
RNG = np.random.default_rng(20260301)


def mixture(dim):
    k = int(RNG.integers(1, 4))
    w = RNG.uniform(0.5, 1.5, k)
    return {"weights": (w / w.sum()).tolist(), "means": RNG.uniform(-1.4, 1.4, (k, dim)).tolist(),
            "variances": RNG.uniform(0.02, 0.3, k).tolist()}


def posterior_mean(mix, x, alpha, sigma):
    """E[x0 | x] for x = alpha*x0 + sigma*eps; x: (B, D) float64."""
    w = torch.tensor(mix["weights"], dtype=torch.float64)
    mu = torch.tensor(mix["means"], dtype=torch.float64)
    var = torch.tensor(mix["variances"], dtype=torch.float64).reshape(1, -1, 1)
    v = alpha * alpha * var + sigma * sigma
    r = x.unsqueeze(1) - alpha * mu.unsqueeze(0)
    lp = torch.log(w).reshape(1, -1) - 0.5 * ((r * r / v) + torch.log(v) + math.log(2 * math.pi)).sum(-1)
    resp = torch.softmax(lp, dim=1)
    return (resp.unsqueeze(-1) * (mu.unsqueeze(0) + alpha * var / v * r)).sum(1)


def velocity(mix, x, t, T):
    """The exact flow velocity at the network time t (s = t/T), in x's dtype."""
    shape, dtype = x.shape, x.dtype
    s = float(t) / T
    xf = x.double().reshape(shape[0], -1)
    x0 = posterior_mean(mix, xf, 1.0 - s, s)
    # sample -> flow velocity: u = x/s - ((1 - s) + s)/s * x0   (process/parameterization.hpp)
    u = xf / s - ((1.0 - s) + s) / s * x0
    return u.reshape(shape).to(dtype)


class Recorder:
    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.draws = []

    def __call__(self, shape, generator=None, device=None, dtype=None, **kw):
        z = torch.randn(tuple(shape), generator=self.gen, dtype=torch.float64).to(dtype or torch.float32)
        self.draws.append(z.double().clone())
        return z


def write_spec(name, spec, init, expected, noise, atol, reference):
    os.makedirs(SPECS, exist_ok=True)
    np.save(os.path.join(SPECS, name + "_init.npy"), init)
    spec = dict(spec)
    spec["init_noise"] = name + "_init.npy"
    if noise:
        np.save(os.path.join(SPECS, name + "_noise.npy"), np.stack([d.numpy() for d in noise]))
        spec["step_noise"] = name + "_noise.npy"
    np.save(os.path.join(SPECS, name + ".npy"), expected)
    spec["test"] = {"expected": name + ".npy", "rtol": 0.0, "atol": atol, "reference": reference}
    with open(os.path.join(SPECS, name + ".json"), "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")


def draw_euler_config(T, n):
    """FlowMatchEulerDiscreteScheduler kwargs, set_timesteps kwargs and the spec's grid block."""
    cfg, st, grid = {"num_train_timesteps": T}, {}, {"type": "flow_match"}
    if RNG.uniform() < 0.35:
        cfg["use_dynamic_shifting"] = True
        kind = "exponential" if RNG.uniform() < 0.6 else "linear"
        cfg["time_shift_type"] = kind
        grid.update(use_dynamic_shifting=True, time_shift_type=kind)
        if kind == "exponential" and RNG.uniform() < 0.4:  # μ from the image size, as the Flux pipeline does
            seq = int(RNG.integers(64, 8192))
            b = dict(base_seq_len=256, max_seq_len=4096, base_shift=0.5, max_shift=1.15)
            m = (b["max_shift"] - b["base_shift"]) / (b["max_seq_len"] - b["base_seq_len"])
            st["mu"] = seq * m + (b["base_shift"] - m * b["base_seq_len"])
            grid["image_seq_len"] = seq
        else:
            st["mu"] = float(RNG.uniform(-0.5, 1.6)) if kind == "exponential" else float(RNG.uniform(0.3, 3.0))
            grid["mu"] = st["mu"]
    elif RNG.uniform() < 0.75:
        cfg["shift"] = float(RNG.choice([3.0, float(RNG.uniform(0.5, 6.0))]))
        grid["shift"] = cfg["shift"]
    if RNG.uniform() < 0.25:
        cfg["shift_terminal"] = float(RNG.uniform(0.02, 0.4))
        grid["shift_terminal"] = cfg["shift_terminal"]
    spacing = RNG.choice(["none", "none", "karras", "exponential", "beta"])
    if spacing != "none":
        cfg["use_%s_sigmas" % spacing] = True
        grid["use_%s_sigmas" % spacing] = True
    if RNG.uniform() < 0.15:  # a user σ list (Flux: np.linspace(1, 1/n, n))
        st["sigmas"] = np.linspace(1.0, 1.0 / n, n).tolist()
        grid["sigmas"] = st["sigmas"]
    return cfg, st, grid


def run_case(i):
    sampler = "flow_euler" if RNG.uniform() < 0.65 else "flow_heun"
    dtype = torch.float32 if RNG.uniform() < 0.5 else torch.float64
    B = int(RNG.integers(1, 5))
    dims = [int(RNG.integers(2, 9))] if RNG.uniform() < 0.6 else [int(RNG.integers(1, 3)), 2, int(RNG.integers(1, 3))]
    D = int(np.prod(dims))
    n = int(RNG.integers(3, 51))
    T = int(RNG.choice([1000, 1000, 1000, 500, 1200]))
    mix = mixture(D)
    pred = str(RNG.choice(["flow_prediction"] * 4 + ["sample", "v_prediction"]))
    seed = 1000 + i
    rec = Recorder(seed)
    spec = {"sampler": sampler, "dtype": "float32" if dtype == torch.float32 else "float64", "shape": [B] + dims,
            "num_inference_steps": n, "schedule": {"num_train_timesteps": T},
            "denoiser": dict(time="flow", prediction_type=pred, **mix), "options": {}}
    step_kw = {}
    if sampler == "flow_euler":
        cfg, st, grid = draw_euler_config(T, n)
        if RNG.uniform() < 0.3:
            cfg["stochastic_sampling"] = True
            spec["options"]["stochastic_sampling"] = True
        sched = FlowMatchEulerDiscreteScheduler(**cfg)
        sched.set_timesteps(n, **st)
        module = euler_module
        reference = "diffusers 0.42 FlowMatchEulerDiscreteScheduler"
    else:
        cfg = {"num_train_timesteps": T}
        grid = {"type": "flow_match"}
        if RNG.uniform() < 0.7:
            cfg["shift"] = float(RNG.uniform(0.5, 6.0))
            grid["shift"] = cfg["shift"]
        if RNG.uniform() < 0.5:
            step_kw["s_churn"] = float(RNG.uniform(0.2, 4.0))
            if RNG.uniform() < 0.5:
                step_kw["s_tmin"] = float(RNG.uniform(0.0, 0.4))
                step_kw["s_tmax"] = float(RNG.uniform(0.5, 1.0))
            if RNG.uniform() < 0.5:
                step_kw["s_noise"] = float(RNG.uniform(0.5, 1.2))
            spec["options"].update(step_kw)
        sched = FlowMatchHeunDiscreteScheduler(**cfg)
        sched.set_timesteps(n)
        module = heun_module
        reference = "diffusers 0.42 FlowMatchHeunDiscreteScheduler"
    if sampler == "flow_euler" and RNG.uniform() < 0.1:  # the recorded σ list as a file grid (network time s·T)
        np.save(os.path.join(SPECS, "flow_%02d_sigmas.npy" % i), sched.sigmas.double().numpy())
        grid = {"type": "file", "path": "flow_%02d_sigmas.npy" % i}
    spec["grid"] = grid

    z = torch.randn([B] + dims, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)
    x = z.clone()
    original = module.randn_tensor
    module.randn_tensor = rec
    try:
        for t in sched.timesteps:
            u = velocity(mix, x, t, T)
            x = sched.step(u, t, x, **step_kw).prev_sample
    finally:
        module.randn_tensor = original
    out = x.double().numpy()
    if not np.all(np.isfinite(out)):
        return None
    scale = max(1.0, float(np.abs(out).max()))
    # diffusers holds the state in float32 inside step() even for float64 input; float32 runs differ by rounding
    atol = (2e-5 if dtype == torch.float32 else 4e-6) * scale * max(1.0, n / 10)
    name = "flow_%02d" % i
    write_spec(name, spec, z.double().numpy().astype(np.float32 if dtype == torch.float32 else np.float64), out,
               rec.draws, atol, reference)
    return name, sampler, spec["options"], grid


def gen_specs(count=64):
    os.makedirs(SPECS, exist_ok=True)
    for f in os.listdir(SPECS):
        os.remove(os.path.join(SPECS, f))
    lines = []
    for i in range(count):
        r = run_case(i)
        if r:
            lines.append("%s %s options=%s grid=%s" % (r[0], r[1], json.dumps(r[2]), json.dumps(r[3])))
    with open(os.path.join(SPECS, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(len(lines), "sampler specs")


def gen_schedules(count=120):
    cases = []
    for i in range(count):
        n = int(RNG.integers(1, 61))
        T = int(RNG.choice([1000, 1000, 100, 1200, 7]))
        cfg, st, grid = draw_euler_config(T, n)
        if RNG.uniform() < 0.15:
            cfg["invert_sigmas"] = True
        if n == 1 and any(cfg.get(k) for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")):
            continue
        if cfg.get("shift_terminal") and n == 1:
            continue
        sched = FlowMatchEulerDiscreteScheduler(**cfg)
        sched.set_timesteps(n, **st)
        c = {k: v for k, v in cfg.items()}
        c.update({k: v for k, v in st.items()})
        c["n"] = n
        c["sigmas_out"] = sched.sigmas.double().tolist()
        c["timesteps_out"] = sched.timesteps.double().tolist()
        c["training_sigmas_head"] = FlowMatchEulerDiscreteScheduler(**{k: v for k, v in cfg.items() if k != "invert_sigmas"}) \
            .sigmas.double().tolist()[:5]
        cases.append(c)
    # Heun's grid: the Euler grid with static shift, interleaved
    heun = []
    for i in range(10):
        n, shift = int(RNG.integers(2, 30)), float(RNG.uniform(0.5, 5))
        s = FlowMatchHeunDiscreteScheduler(shift=shift)
        s.set_timesteps(n)
        heun.append({"n": n, "shift": shift, "sigmas_out": s.sigmas.double().tolist(), "timesteps_out": s.timesteps.double().tolist()})
    with open(os.path.join(FLOW, "schedules.json"), "w") as f:
        json.dump({"reference": "diffusers 0.42 FlowMatchEulerDiscreteScheduler.set_timesteps", "cases": cases, "heun": heun}, f)
    print(len(cases), "schedule cases")


def gen_training():
    out = {"reference": "diffusers 0.42 training_utils (compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3)"}
    dens = []
    for i in range(12):
        scheme = ["logit_normal", "mode", "uniform"][i % 3]
        mean, std, scale = float(RNG.uniform(-1, 1)), float(RNG.uniform(0.3, 2)), float(RNG.uniform(-1, 1.29))
        g = torch.Generator().manual_seed(i)
        u = compute_density_for_timestep_sampling(scheme, 16, logit_mean=mean, logit_std=std, mode_scale=scale, generator=g)
        g = torch.Generator().manual_seed(i)  # the draw underneath
        raw = torch.normal(mean=mean, std=std, size=(16,), generator=g) if scheme == "logit_normal" \
            else torch.rand(size=(16,), generator=g)
        dens.append({"scheme": scheme, "logit_mean": mean, "logit_std": std, "mode_scale": scale,
                     "draw": raw.double().tolist(), "u": u.double().tolist()})
    out["density"] = dens
    sig = torch.tensor(np.concatenate([RNG.uniform(0.001, 1.0, 30), [1.0, 0.5, 0.001]]), dtype=torch.float32)
    out["weighting"] = {"sigmas": sig.double().tolist(),
                        "sigma_sqrt": compute_loss_weighting_for_sd3("sigma_sqrt", sig).double().tolist(),
                        "cosmap": compute_loss_weighting_for_sd3("cosmap", sig).double().tolist(),
                        "none": compute_loss_weighting_for_sd3("none", sig).double().tolist()}
    levels = []
    for shift in [1.0, 3.0, float(RNG.uniform(0.5, 6))]:
        sch = FlowMatchEulerDiscreteScheduler(shift=shift)
        u = torch.rand(24, generator=torch.Generator().manual_seed(7))
        idx = (u * sch.config.num_train_timesteps).long()
        levels.append({"shift": shift, "u": u.double().tolist(), "sigmas": sch.sigmas[idx].double().tolist()})
    out["levels"] = levels
    # the SD3 script's loss: mean over elements of w·(pred − target)², then over the batch; target = noise − x0
    B, D = 4, 6
    x0, noise, pred = (torch.tensor(RNG.normal(size=(B, D))) for _ in range(3))
    sigmas = torch.tensor(RNG.uniform(0.05, 1, B))
    w = compute_loss_weighting_for_sd3("cosmap", sigmas)
    loss = torch.mean((w.reshape(B, 1) * (pred - (noise - x0)) ** 2).reshape(B, -1), 1).mean()
    noisy = (1.0 - sigmas.reshape(B, 1)) * x0 + sigmas.reshape(B, 1) * noise
    out["loss"] = {"x0": x0.flatten().tolist(), "noise": noise.flatten().tolist(), "pred": pred.flatten().tolist(),
                   "sigmas": sigmas.tolist(), "weights": w.tolist(), "loss": float(loss), "noisy": noisy.flatten().tolist(),
                   "batch": B}
    with open(os.path.join(FLOW, "training.json"), "w") as f:
        json.dump(out, f)
    print("training utilities written")


def main():
    os.makedirs(FLOW, exist_ok=True)
    gen_specs()
    gen_schedules()
    gen_training()


if __name__ == "__main__":
    main()
