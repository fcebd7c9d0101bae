#!/usr/bin/env python3
"""Golden parity files for diffusers' exponential-integrator solver schedulers (DPMSolverMultistepScheduler,
DPMSolverSinglestepScheduler, DEISMultistepScheduler): their own set_timesteps/step loop on the exact Gaussian-mixture denoiser (the network
fed each integer timestep), with recorded noise, over configurations drawn at random from a seeded generator.
Writes tests/golden/samplers/solver_multistep/<name>.json (+ _init.npy, _noise.npy, .npy) in the layout of
gen_sampler_golden_discrete.py; tests/samplers/test_parity.cpp runs them through `diffuse sample`'s code.

Run from the repository root:  python3 tools/gen_sampler_golden_solver_multistep.py
Needs torch (CPU), diffusers 0.42 and numpy.

Precision. float32 cases run the schedulers untouched. float64 cases widen only the step arithmetic: the σ table
keeps diffusers' float32 values (widened), and step() is the installed method with its casts of the sample and
the noise to float32 removed (read from the installed source at run time), so the comparison isolates the
algorithm at 1e-9.
Left out: beta sigmas (scipy's beta quantile), variance_type learned (diffusers keeps the first 3 channels),
zero-terminal-SNR schedules (the solver schedulers replace the last ᾱ by 2^-24; the library's σ helpers are
being extended for it), flow sigmas, DPMSolverSinglestep's noise-form thresholding (upstream indexes its table
with None).
"""
import inspect
import math
import os
import sys
import textwrap

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_sampler_golden_discrete import OUT, SCHEDULES, analytic_x0, mixture_for, to_prediction, write_spec  # noqa: E402

import diffusers  # noqa: E402
from diffusers import DEISMultistepScheduler, DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler  # noqa: E402
import diffusers.schedulers.scheduling_dpmsolver_singlestep as singlestep_module  # noqa: E402

FOLDER = "solver_multistep"


def widened_class(cls):
    """cls with step() compiled from the installed source minus its float32 casts."""
    src = textwrap.dedent(inspect.getsource(cls.step))
    for old, new in [("sample = sample.to(torch.float32)", "sample = sample"),
                     ("dtype=torch.float32,", "dtype=model_output.dtype,"),
                     ("variance_noise.to(device=model_output.device, dtype=torch.float32)", "variance_noise")]:
        src = src.replace(old, new)
    assert "float32" not in src, "step() holds a float32 cast this generator does not know"
    mod = sys.modules[cls.__module__]
    ns = {}
    exec(compile(src, "<widened step>", "exec"), vars(mod), ns)  # the module's globals: patches to it apply
    return type("Widened" + cls.__name__, (cls,), {"step": ns["step"]})


CLASSES = {"dpm_solver_multistep": DPMSolverMultistepScheduler, "dpm_solver_singlestep": DPMSolverSinglestepScheduler,
           "deis_multistep": DEISMultistepScheduler}
WIDE = {c: widened_class(c) for c in CLASSES.values()}


def net_call(mix, pred, sched, x, t):
    """The network at integer timestep t: the exact prediction for the VP state of t (it does not know σ_table)."""
    ac = float(sched.alphas_cumprod[int(t)])
    a, s = math.sqrt(ac), math.sqrt(1 - ac)
    x0 = analytic_x0(mix, x, a, s)
    return to_prediction(pred, x, x0, a, s).to(x.dtype)


def draw_case(rng, i):
    """One configuration drawn over the whole option space, or None where upstream refuses or breaks it."""
    c = {}
    u = rng.random()
    c["sampler"] = "deis_multistep" if u < 0.2 else "dpm_solver_singlestep" if u < 0.45 else "dpm_solver_multistep"
    c["beta"] = rng.choice(list(SCHEDULES))
    c["T"] = int(rng.choice([1000, 1000, 800]))
    c["spacing"] = rng.choice(["linspace", "leading", "trailing"])
    c["offset"] = int(rng.integers(0, 2)) if c["spacing"] == "leading" else 0
    c["steps"] = int(rng.integers(3, 51))
    c["order"] = int(rng.integers(1, 4))
    c["pred"] = rng.choice(["epsilon", "sample", "v_prediction"])
    c["lower_order_final"] = bool(rng.random() < 0.7)
    c["thresholding"] = bool(rng.random() < 0.25)
    c["sigmas"] = rng.choice(["training", "training", "karras", "exponential", "lu_lambdas"])
    c["dtype"] = "float32" if rng.random() < 0.25 else "float64"
    c["B"] = int(rng.integers(1, 4))
    c["dims"] = [[2, 3], [4, 2], [3, 2, 2]][int(rng.integers(0, 3))]
    if c["sampler"] == "dpm_solver_multistep":
        c["algorithm"] = rng.choice(["dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"])
        c["solver_type"] = rng.choice(["midpoint", "heun"])
        c["euler_at_final"] = bool(rng.random() < 0.25)
        noise_form = c["algorithm"] in ("dpmsolver", "sde-dpmsolver")
        c["final"] = "sigma_min" if noise_form or rng.random() < 0.3 else "zero"
        c["lambda_min_clipped"] = float(rng.choice([-5.1, -3.0])) if rng.random() < 0.2 else None
        if c["algorithm"] == "sde-dpmsolver" and c["order"] == 3:
            return None  # upstream has no third-order sde-dpmsolver update
    elif c["sampler"] == "dpm_solver_singlestep":  # linspace spacing only, no Lu σ, no sde-dpmsolver
        c["spacing"], c["offset"] = "linspace", 0
        c["algorithm"] = rng.choice(["dpmsolver++", "sde-dpmsolver++", "dpmsolver"])
        c["solver_type"] = rng.choice(["midpoint", "heun"])
        c["final"] = "sigma_min" if c["algorithm"] == "dpmsolver" or rng.random() < 0.3 else "zero"
        c["lambda_min_clipped"] = float(rng.choice([-5.1, -3.0])) if rng.random() < 0.2 else None
        if c["sigmas"] == "lu_lambdas":
            c["sigmas"] = "exponential"
        if c["algorithm"] == "dpmsolver":
            c["thresholding"] = False  # upstream's noise-form thresholding indexes alpha_t with None
    else:
        if c["sigmas"] == "lu_lambdas":
            c["sigmas"] = "karras"
    return c


def scheduler_for(c):
    cls = CLASSES[c["sampler"]]
    if c["dtype"] == "float64":
        cls = WIDE[cls]
    kw = dict(SCHEDULES[c["beta"]], num_train_timesteps=c["T"], solver_order=c["order"], prediction_type=c["pred"],
              lower_order_final=c["lower_order_final"],
              thresholding=c["thresholding"], sample_max_value=1.5, dynamic_thresholding_ratio=0.9,
              use_karras_sigmas=c["sigmas"] == "karras", use_exponential_sigmas=c["sigmas"] == "exponential")
    if c["sampler"] != "dpm_solver_singlestep":
        kw.update(timestep_spacing=c["spacing"], steps_offset=c["offset"])
    if c["sampler"] != "deis_multistep":
        kw.update(algorithm_type=c["algorithm"], solver_type=c["solver_type"], final_sigmas_type=c["final"])
        if c["lambda_min_clipped"] is not None:
            kw["lambda_min_clipped"] = c["lambda_min_clipped"]
    if c["sampler"] == "dpm_solver_multistep":
        kw.update(euler_at_final=c["euler_at_final"], use_lu_lambdas=c["sigmas"] == "lu_lambdas")
    return cls(**kw)


def loop(c, dt, init, noise, mix):
    """diffusers' scheduler loop in dtype dt (float64: widened) from init with the recorded noise."""
    sched = scheduler_for(dict(c, dtype="float64" if dt == torch.float64 else "float32"))
    sched.set_timesteps(c["steps"])
    if dt == torch.float64:
        sched.sigmas = sched.sigmas.double()
        sched.alphas_cumprod = sched.alphas_cumprod.double()
    x = init.to(dt)
    draws = iter([] if noise is None else noise.to(dt))  # the singlestep scheduler draws through randn_tensor
    singlestep_module.randn_tensor = lambda *a, **k: next(draws)
    for k, t in enumerate(sched.timesteps):
        out = net_call(mix, c["pred"], sched, x, t)
        kw = {"variance_noise": noise[k].to(dt)} if noise is not None and c["sampler"] == "dpm_solver_multistep" else {}
        x = sched.step(out, t, x, **kw).prev_sample
    return sched, x


def run_case(c, i):
    dt = torch.float64 if c["dtype"] == "float64" else torch.float32
    sched = scheduler_for(c)
    sched.set_timesteps(c["steps"])
    N = len(sched.timesteps)
    if N != c["steps"] or int(sched.timesteps.min()) < 0:
        return None  # trailing spacing's extra timestep -1: the library refuses that table
    if int((sched.timesteps == sched.timesteps[0]).sum()) > 1:
        return None  # upstream's step index starts at the second copy of a repeated first timestep
    shape = [c["B"]] + c["dims"]
    D = int(np.prod(c["dims"]))
    mix = mixture_for(7000 + i, D)
    g = torch.Generator().manual_seed(9000 + i)
    init = torch.randn(*shape, generator=g, dtype=torch.float64).to(dt)
    stochastic = c.get("algorithm", "").startswith("sde")
    noise = torch.randn(N, *shape, generator=g, dtype=torch.float64).to(dt) if stochastic else None
    sched, x = loop(c, dt, init, noise, mix)
    # float32: upstream's own float32 error (its distance from the widened float64 run of the same inputs), which
    # large coefficients (α_t/α_s at ᾱ ≈ 0 of the cosine schedule) amplify past 1e-5
    f32_error = 0.0
    if dt == torch.float32:
        f32_error = float((x.double() - loop(c, torch.float64, init, noise, mix)[1]).abs().max())
        if f32_error > 1e-3:
            return None  # upstream's float32 run is itself too far from exact to pin anything
    if not torch.isfinite(x).all():
        return None  # upstream NaN (a repeated σ where a step divides by its log-SNR difference)
    assert x.dtype == dt
    opts = {"solver_order": c["order"], "lower_order_final": c["lower_order_final"], "thresholding": c["thresholding"],
            "sample_max_value": 1.5, "dynamic_thresholding_ratio": 0.9,
            "use_karras_sigmas": c["sigmas"] == "karras", "use_exponential_sigmas": c["sigmas"] == "exponential"}
    if c["sampler"] != "deis_multistep":
        opts.update(algorithm_type=c["algorithm"], solver_type=c["solver_type"], final_sigmas_type=c["final"])
        if c["lambda_min_clipped"] is not None:
            opts["lambda_min_clipped"] = c["lambda_min_clipped"]
    if c["sampler"] == "dpm_solver_multistep":
        opts.update(euler_at_final=c["euler_at_final"], use_lu_lambdas=c["sigmas"] == "lu_lambdas")
    # the training σ table as torch computed it (its float32 sqrt is not correctly rounded; solver_sigmas.hpp)
    # and numpy's float32 log of it, as set_timesteps builds log_sigmas
    sig = np.array(((1 - sched.alphas_cumprod.float()) / sched.alphas_cumprod.float()) ** 0.5)
    train = np.stack([sig, np.log(sig)])
    opts["training_sigmas"] = f"training_sigmas_{c['beta']}_{c['T']}.npy"  # one file per schedule
    sb = {"num_train_timesteps": c["T"], "timestep_spacing": c["spacing"], "steps_offset": c["offset"]}
    sb.update(SCHEDULES[c["beta"]])
    spec = {"sampler": c["sampler"], "dtype": c["dtype"], "shape": shape, "num_inference_steps": c["steps"],
            "schedule": sb, "denoiser": dict(mix, prediction_type=c["pred"], interpolation="linear_sigma"),
            "options": opts}
    return spec, x, init, noise, sched, train, f32_error


def main():
    rng = np.random.default_rng(20261202)
    d = os.path.join(OUT, FOLDER)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    seen = {}  # option → values switched on in some written case

    def mark(k, v):
        seen.setdefault(k, set()).add(v)

    required = {
        "sampler": {"dpm_solver_multistep", "dpm_solver_singlestep", "deis_multistep"}, "beta": set(SCHEDULES),
        "spacing": {"linspace", "leading", "trailing"}, "offset": {0, 1}, "order": {1, 2, 3},
        "pred": {"epsilon", "sample", "v_prediction"}, "lower_order_final": {True, False}, "thresholding": {True, False},
        "sigmas": {"training", "karras", "exponential", "lu_lambdas"}, "dtype": {"float32", "float64"}, "B": {1, 2, 3},
        "algorithm": {"dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"}, "solver_type": {"midpoint", "heun"},
        "euler_at_final": {True, False}, "final": {"zero", "sigma_min"}, "lambda_min_clipped": {True, False},
        "few_steps": {True, False}, "order3_reached": {True},
        "dpm_order_algorithm": {("sde-dpmsolver++", 3), ("dpmsolver++", 3), ("dpmsolver", 3)},
        "singlestep": {(a, o, t) for a in ("dpmsolver++", "sde-dpmsolver++") for o in (2, 3) for t in ("midpoint", "heun")},
    }

    def missing():
        return {k: want - seen.get(k, set()) for k, want in required.items() if want - seen.get(k, set())}

    n, tried = 0, 0
    while n < 120 or (missing() and n < 200):  # at least 120, more until every option value has occurred
        tried += 1
        c = draw_case(rng, tried)
        if c is None:
            continue
        r = run_case(c, tried)
        if r is None:
            continue
        spec, x, init, noise, sched, train, f32_error = r
        name = f"{ {'dpm_solver_multistep': 'dpm', 'dpm_solver_singlestep': 'single', 'deis_multistep': 'deis'}[c['sampler']]}_{n:03d}"
        np.save(os.path.join(d, spec["options"]["training_sigmas"]), train)
        f32 = c["dtype"] == "float32"
        # float32: 1e-5, or twice upstream's own float32 error where that is larger (see loop's caller)
        write_spec(FOLDER, name, spec, x, init, noise, rtol=1e-5 if f32 else 1e-9,
                   atol=max(1e-5, 2 * f32_error) if f32 else 1e-10,
                   reference=f"diffusers {diffusers.__version__} {type(sched).__mro__[0 if f32 else 1].__name__}")
        for k in ("sampler", "beta", "spacing", "offset", "order", "pred", "lower_order_final", "thresholding", "sigmas",
                  "dtype", "B", "algorithm", "solver_type", "euler_at_final", "final"):
            if k in c:
                mark(k, c[k])
        mark("lambda_min_clipped", c.get("lambda_min_clipped") is not None)
        mark("few_steps", c["steps"] < 15)
        mark("order3_reached", c["order"] == 3 and c["steps"] >= 4)
        mark("dpm_order_algorithm", (c.get("algorithm"), c["order"]))
        if c["sampler"] == "dpm_solver_singlestep":
            mark("singlestep", (c["algorithm"], c["order"], c["solver_type"]))
        n += 1
    for k, want in required.items():
        missing = want - seen.get(k, set())
        assert not missing, f"option {k}: values {missing} never drawn"
    print(f"{FOLDER}: {n} specs ({tried} drawn)")


if __name__ == "__main__":
    main()
