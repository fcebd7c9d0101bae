#!/usr/bin/env python3
"""Golden parity files for diffusers' EDM schedulers (EDMEulerScheduler, EDMDPMSolverMultistepScheduler): their own
set_timesteps / scale_model_input / step loop, as a pipeline runs them, on an EDM-preconditioned network whose raw
output is F = (x̂₀ − c_skip·x)/c_out for the exact Gaussian-mixture x̂₀, with recorded noise (the Euler churn's and
the SDE solver's randn_tensor calls), over configurations drawn at random from a seeded generator over every option
(sigma_schedule, sigma_min/max/data, rho, prediction_type, final_sigmas_type, the Euler churn arguments
s_churn/s_tmin/s_tmax/s_noise, solver_order, algorithm_type, solver_type, lower_order_final, euler_at_final,
thresholding, steps 3–50, batch and shape, float32 and float64).
Writes tests/golden/samplers/edm/<name>.json (+ _init.npy, _noise.npy, .npy) in the layout of
gen_sampler_golden_discrete.py; tests/samplers/test_parity.cpp runs them through `diffuse sample`'s code
(sampler edm_euler / edm_dpm_solver_multistep, denoiser.time "edm").

Run from the repository root:  python3 tools/gen_sampler_golden_edm.py
Needs torch (CPU), diffusers 0.42 and numpy.

The initial state is upstream's: init_noise_sigma·z = √(σ_max² + 1)·z.
The network reads the σ of the scheduler's table (it recovers σ from c_noise = log(σ)/4 on the library's side).
Precision. float64 cases widen the step arithmetic: the σ table is the exact formula rounded to float32 (the
library's schedules/edm.hpp; EDMEulerScheduler's own Karras table is the same, its exponential table and both of
EDMDPMSolverMultistepScheduler's are evaluated in float32 arithmetic, ≤ 1e-5 away (relative; ρ amplifies the
float32 error of the Karras base): asserted here), held in float64, and EDMEulerScheduler.step is the installed
method minus its cast of the sample to float32 (read from the installed source at run time): compared at 1e-9.
float32 cases run the schedulers untouched, their own tables included, at rtol 1e-5 and atol the larger of 1e-5 and
twice upstream's own float32 error (its distance from the widened float64 run).
Left out: EDMDPMSolverMultistep's sde-dpmsolver++ with solver_order 3 (upstream has no third-order SDE update:
its step raises; the library refuses it), and prediction_type "sample" (upstream's precondition_outputs raises).
"""
import inspect
import math
import os
import sys
import textwrap

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_sampler_golden_discrete import OUT, analytic_x0, mixture_for, write_spec  # noqa: E402

import diffusers  # noqa: E402
from diffusers import EDMDPMSolverMultistepScheduler, EDMEulerScheduler  # noqa: E402
import diffusers.schedulers.scheduling_edm_euler as euler_module  # noqa: E402
import diffusers.schedulers.scheduling_edm_dpmsolver_multistep as dpm_module  # noqa: E402

FOLDER = "edm"


def widened_class(cls):
    """cls with step() compiled from the installed source minus its float32 cast of the sample."""
    src = textwrap.dedent(inspect.getsource(cls.step))
    src = src.replace("sample = sample.to(torch.float32)", "sample = sample")
    assert "float32" not in src, "step() holds a float32 cast this generator does not know"
    mod = sys.modules[cls.__module__]
    ns = {}
    exec(compile(src, "<widened step>", "exec"), vars(mod), ns)  # the module's globals: patches to it apply
    return type("Widened" + cls.__name__, (cls,), {"step": ns["step"]})


CLASSES = {"edm_euler": EDMEulerScheduler, "edm_dpm_solver_multistep": EDMDPMSolverMultistepScheduler}
WIDE = {c: widened_class(c) for c in CLASSES.values()}
MODULES = {"edm_euler": euler_module, "edm_dpm_solver_multistep": dpm_module}


def table(c):
    """The library's σ table (schedules/edm.hpp): the exact formula in float64, rounded to float32, the final σ."""
    n = c["steps"]
    ramp = np.arange(n, dtype=np.float64) / (n - 1)
    if c["sigma_schedule"] == "karras":
        lo, hi = c["sigma_min"] ** (1 / c["rho"]), c["sigma_max"] ** (1 / c["rho"])
        s = (hi + ramp * (lo - hi)) ** c["rho"]
    else:
        a, b = math.log(c["sigma_max"]), math.log(c["sigma_min"])
        s = np.exp(a + ramp * (b - a))
    s = s.astype(np.float32).astype(np.float64)
    if c["final"] == "zero":
        last = 0.0
    elif c["sampler"] == "edm_euler":
        last = s[-1]
    else:
        last = float(np.float32(c["sigma_min"]))
    return np.append(s, last)


def draw_case(rng, i):
    """One configuration drawn over the whole option space, or None where upstream refuses or breaks it."""
    c = {"sampler": "edm_euler" if rng.random() < 0.45 else "edm_dpm_solver_multistep"}
    c["sigma_schedule"] = rng.choice(["karras", "exponential"])
    c["sigma_min"] = float(np.exp(rng.uniform(math.log(5e-4), math.log(0.2))))
    c["sigma_max"] = float(np.exp(rng.uniform(math.log(2.0), math.log(160.0))))
    c["sigma_data"] = float(rng.choice([0.5, 0.5, rng.uniform(0.2, 1.5)]))
    c["rho"] = float(rng.choice([7.0, rng.uniform(2.0, 10.0)]))
    c["pred"] = rng.choice(["epsilon", "v_prediction"])
    c["final"] = rng.choice(["zero", "sigma_min"])
    c["steps"] = int(rng.integers(3, 51))
    c["dtype"] = "float32" if rng.random() < 0.3 else "float64"
    c["B"] = int(rng.integers(1, 4))
    c["dims"] = [[2, 3], [4, 2], [3, 2, 2]][int(rng.integers(0, 3))]
    if c["sampler"] == "edm_euler":
        c["s_churn"] = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.0, 1.0) * c["steps"])
        c["s_tmin"] = 0.0 if rng.random() < 0.5 else float(np.exp(rng.uniform(math.log(c["sigma_min"]), math.log(c["sigma_max"]))))
        c["s_tmax"] = math.inf if rng.random() < 0.5 else float(np.exp(rng.uniform(math.log(max(c["s_tmin"], c["sigma_min"])),
                                                                                   math.log(c["sigma_max"] * 1.5))))
        c["s_noise"] = float(rng.choice([1.0, rng.uniform(0.5, 1.2)]))
    else:
        c["order"] = int(rng.integers(1, 4))
        c["algorithm"] = rng.choice(["dpmsolver++", "sde-dpmsolver++"])
        c["solver_type"] = rng.choice(["midpoint", "heun"])
        c["lower_order_final"] = bool(rng.random() < 0.7)
        c["euler_at_final"] = bool(rng.random() < 0.25)
        c["thresholding"] = bool(rng.random() < 0.3)
        c["sample_max_value"] = float(rng.choice([1.0, 1.5, 3.0]))
        c["ratio"] = float(rng.choice([0.9, 0.995]))
        if c["algorithm"] == "sde-dpmsolver++" and c["order"] == 3:
            return None  # upstream has no third-order sde-dpmsolver++ update here
    return c


def scheduler_for(c, wide):
    cls = CLASSES[c["sampler"]]
    if wide:
        cls = WIDE[cls]
    kw = dict(sigma_min=c["sigma_min"], sigma_max=c["sigma_max"], sigma_data=c["sigma_data"], sigma_schedule=c["sigma_schedule"],
              prediction_type=c["pred"], rho=c["rho"], final_sigmas_type=c["final"])
    if c["sampler"] == "edm_dpm_solver_multistep":
        kw.update(solver_order=c["order"], algorithm_type=c["algorithm"], solver_type=c["solver_type"],
                  lower_order_final=c["lower_order_final"], euler_at_final=c["euler_at_final"], thresholding=c["thresholding"],
                  sample_max_value=c["sample_max_value"], dynamic_thresholding_ratio=c["ratio"])
    return cls(**kw)


def raw_network(c, mix, x, sigma):
    """The EDM network's raw output F at the scheduler's σ: x̂₀ = c_skip·x + c_out·F for the exact x̂₀."""
    sd = c["sigma_data"]
    c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
    c_out = sigma * sd / (sigma ** 2 + sd ** 2) ** 0.5 * (1 if c["pred"] == "epsilon" else -1)
    x0 = analytic_x0(mix, x, 1.0, sigma)
    return ((x0 - c_skip * x.double()) / c_out).to(x.dtype)


def loop(c, dt, init, pool, mix):
    """The pipeline loop in dtype dt (float64: widened, on the library's table); returns (x, noise draws used)."""
    wide = dt == torch.float64
    sched = scheduler_for(c, wide)
    sched.set_timesteps(c["steps"])
    own = sched.sigmas.double().numpy()
    ours = table(c)
    # upstream evaluates the DPM tables and both exponential tables in float32 arithmetic (float32 torch.linspace)
    tol = 0 if c["sampler"] == "edm_euler" and c["sigma_schedule"] == "karras" else 1e-5
    assert len(own) == len(ours) and np.all(np.abs(own - ours) <= tol * ours + 1e-12), (own, ours)
    if wide:
        sched.sigmas = torch.tensor(ours, dtype=torch.float64)
        sched.timesteps = sched.precondition_noise(sched.sigmas[:-1])
    x = init.to(dt) * sched.init_noise_sigma
    draws = iter(pool.to(dt))
    used = [0]

    def randn(*a, **k):
        used[0] += 1
        return next(draws)

    MODULES[c["sampler"]].randn_tensor = randn
    extra = {}
    if c["sampler"] == "edm_euler":
        extra = dict(s_churn=c["s_churn"], s_tmin=c["s_tmin"], s_tmax=c["s_tmax"], s_noise=c["s_noise"])
    for t in sched.timesteps:
        scaled = sched.scale_model_input(x, t)
        assert scaled.dtype == dt
        sigma = float(sched.sigmas[sched.step_index])
        out = raw_network(c, mix, x, sigma)
        x = sched.step(out, t, x, **extra).prev_sample
    return x, used[0], sched


def run_case(c, i):
    dt = torch.float64 if c["dtype"] == "float64" else torch.float32
    shape = [c["B"]] + c["dims"]
    D = int(np.prod(c["dims"]))
    mix = mixture_for(11000 + i, D)
    g = torch.Generator().manual_seed(13000 + i)
    z = torch.randn(*shape, generator=g, dtype=torch.float64).to(dt)
    pool = torch.randn(c["steps"], *shape, generator=g, dtype=torch.float64).to(dt)
    x, used, sched = loop(c, dt, z, pool, mix)
    f32_error = 0.0
    if dt == torch.float32:
        x64, used64, _ = loop(c, torch.float64, z, pool, mix)
        assert used64 == used
        f32_error = float((x.double() - x64).abs().max())
        if not f32_error <= 1e-3:
            return None  # upstream's float32 run is itself too far from exact to pin anything (or the exact one is NaN)
    if not torch.isfinite(x).all():
        return None
    init = z * sched.init_noise_sigma  # the state the pipeline starts from (as loop computes it)
    noise = pool[:used] if used else None
    opts = {"sigma_min": c["sigma_min"], "sigma_max": c["sigma_max"], "rho": c["rho"], "sigma_schedule": c["sigma_schedule"],
            "final_sigmas_type": c["final"]}
    if c["sampler"] == "edm_euler":
        opts.update(s_churn=c["s_churn"], s_tmin=c["s_tmin"], s_noise=c["s_noise"])
        if math.isfinite(c["s_tmax"]):
            opts["s_tmax"] = c["s_tmax"]
    else:
        opts.update(solver_order=c["order"], algorithm_type=c["algorithm"], solver_type=c["solver_type"],
                    lower_order_final=c["lower_order_final"], euler_at_final=c["euler_at_final"], thresholding=c["thresholding"],
                    sample_max_value=c["sample_max_value"], dynamic_thresholding_ratio=c["ratio"])
    spec = {"sampler": c["sampler"], "dtype": c["dtype"], "shape": shape, "num_inference_steps": c["steps"],
            "denoiser": dict(mix, prediction_type=c["pred"], time="edm", sigma_data=c["sigma_data"]), "options": opts}
    return spec, x, init, noise, sched, f32_error, used


def main():
    rng = np.random.default_rng(20261203)
    d = os.path.join(OUT, FOLDER)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    seen = {}  # option → values switched on in some written case

    def mark(k, v):
        seen.setdefault(k, set()).add(v)

    required = {
        "sampler": set(CLASSES), "sigma_schedule": {"karras", "exponential"}, "pred": {"epsilon", "v_prediction"},
        "final": {"zero", "sigma_min"}, "dtype": {"float32", "float64"}, "B": {1, 2, 3}, "sigma_data_default": {True, False},
        "rho_default": {True, False}, "few_steps": {True, False},
        "churned": {True, False}, "s_tmin": {True, False}, "s_tmax": {True, False}, "s_noise_default": {True, False},
        "order": {1, 2, 3}, "algorithm": {"dpmsolver++", "sde-dpmsolver++"}, "solver_type": {"midpoint", "heun"},
        "lower_order_final": {True, False}, "euler_at_final": {True, False}, "thresholding": {True, False},
        "dpm_order_algorithm": {("dpmsolver++", 1), ("dpmsolver++", 2), ("dpmsolver++", 3), ("sde-dpmsolver++", 1),
                                ("sde-dpmsolver++", 2)},
        "order3_reached": {True},
    }

    def missing():
        return {k: want - seen.get(k, set()) for k, want in required.items() if want - seen.get(k, set())}

    n, tried = 0, 0
    while n < 64 or (missing() and n < 120):  # at least 64, more until every option value has occurred
        tried += 1
        c = draw_case(rng, tried)
        if c is None:
            continue
        r = run_case(c, tried)
        if r is None:
            continue
        spec, x, init, noise, sched, f32_error, used = r
        name = f"{'euler' if c['sampler'] == 'edm_euler' else 'dpm'}_{n:03d}"
        f32 = c["dtype"] == "float32"
        write_spec(FOLDER, name, spec, x, init, noise, rtol=1e-5 if f32 else 1e-9,
                   atol=max(1e-5, 2 * f32_error) if f32 else 1e-10,
                   reference=f"diffusers {diffusers.__version__} {type(sched).__mro__[0 if f32 else 1].__name__}")
        for k in ("sampler", "sigma_schedule", "pred", "final", "dtype", "B", "order", "algorithm", "solver_type",
                  "lower_order_final", "euler_at_final", "thresholding"):
            if k in c:
                mark(k, c[k])
        mark("sigma_data_default", c["sigma_data"] == 0.5)
        mark("rho_default", c["rho"] == 7.0)
        mark("few_steps", c["steps"] < 15)
        if c["sampler"] == "edm_euler":
            mark("churned", used > 0)
            mark("s_tmin", c["s_tmin"] > 0)
            mark("s_tmax", math.isfinite(c["s_tmax"]))
            mark("s_noise_default", c["s_noise"] == 1.0)
        else:
            mark("dpm_order_algorithm", (c["algorithm"], c["order"]))
            mark("order3_reached", c["order"] == 3 and c["steps"] >= 4 and not (c["lower_order_final"] and c["steps"] < 15))
        n += 1
    for k, want in required.items():
        left = want - seen.get(k, set())
        assert not left, f"option {k}: values {left} never drawn"
    print(f"{FOLDER}: {n} specs ({tried} drawn)")


if __name__ == "__main__":
    main()
