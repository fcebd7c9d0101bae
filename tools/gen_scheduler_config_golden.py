#!/usr/bin/env python3
"""Golden files for diffuse::scheduler_from_config (include/diffuse/samplers/scheduler_config.hpp) and the CLI's
"scheduler_config" spec key: for every scheduler class the library reads, configurations drawn at random from a
seeded generator over that class's __init__ keys (beta schedules, spacings, offsets, prediction types, orders,
solver and algorithm types, Karras / exponential / Lu / beta σ, final σ types, thresholding, clipping, flow shifts,
zero terminal SNR, N + 1 trailing lists, EDM σ tables ...),
each written by diffusers itself (Cls(**cfg).save_config) and sampled by diffusers' own set_timesteps/step loop
on the exact Gaussian-mixture denoiser with recorded noise. Writes tests/golden/scheduler_config/:

    <name>_scheduler_config.json   the file save_config wrote
    <name>.json                    a `diffuse sample` spec naming it ("scheduler_config"), plus a "test" block
    <name>_init.npy, _noise.npy    the latents z (randn) and the noise diffusers drew, in draw order
    <name>.npy                     diffusers' final latents

tests/diffusers_schedulers/scheduler_config.cpp runs each through the library API and through the CLI's spec path.

Two phases. The replayed phase draws exactly as the generator's first version did (seed 20261203, its 15 classes
and options: cases 000-141, byte for byte); the extension phase (seed 20261204) draws the classes added since
(KDPM2AncestralDiscrete, TCD, EDMEuler, EDMDPMSolverMultistep), each first at its defaults, and every option over
all classes (draw_config(extended=True)) until each class has held every key it must (NOT_DRAWN lists the rest,
each with its reason) and at least 48 more cases are written.

Run from the repository root:  python3 tools/gen_scheduler_config_golden.py
Needs torch (CPU), diffusers 0.42, numpy (and k-diffusion: gen_sampler_golden_schedule_options is imported for
its zero-terminal-SNR square root).

The network. It is exact: for the schedulers that feed it the training timesteps (DDPM, DDIM, DDIMInverse, LCM, TCD,
DPMSolverMultistep, DPMSolverSinglestep, DEIS) the posterior mean at the VP state (√ᾱ_t, √(1 − ᾱ_t)) of the timestep
it is fed (the extra timestep −1 of an N + 1 trailing list read as 0); for KDPM2Ancestral the same at the
fractional timestep it is fed, σ linearly interpolated in t (no σ → t rule gives its grid and midpoint
timesteps); for the EDM ones the raw output F of an EDM-preconditioned network (gen_sampler_golden_edm.py); for
the σ-space ones (Euler, EulerAncestral, Heun, KDPM2, LMS, UniPC) the posterior mean at
the noise level σ of the state it is handed (read from scale_model_input's factor, or UniPC's σ list), so the
comparison does not depend on which timestep diffusers rounds σ to (KDPM2's mixed rules, UniPC's rounded Karras
timesteps: porting.md); for the flow-matching ones the exact velocity at s = t/T.

Precision. Every loop runs with float64 latents and float64 ᾱ / σ tables (diffusers' own float32 values, widened),
and the DPM-Solver / DEIS classes with step() widened as in gen_sampler_golden_solver_multistep.py. The tolerance of a
case is its family's: 1e-9 where the reference runs entirely in float64 (DDPM, DDIM, DDIMInverse, LCM, TCD; the EDM
classes with step() widened and the library's σ table, as gen_sampler_golden_edm.py); 1e-8 for the
widened solvers on the training σ table (the library's correctly rounded training σ differ from torch's float32 ones
by one ulp on some entries; gen_sampler_golden_solver_multistep.py replays torch's table to reach 1e-9, a
scheduler_config run builds its own); 2e-6 of the run's scale where the reference steps in float32 (Euler family, UniPC,
flow matching: their step() casts the sample to float32) or where the library's correctly rounded σ table differs
from torch's by one float32 ulp (the solvers' Karras / exponential / Lu lists, which take σ_min and σ_max from it;
schedules/solver_sigmas.hpp); 2e-4 of the scale from σ_max ≈ 4096 (zero terminal SNR in the Euler family).
Drawn again, each counted in the summary by its reason: configurations upstream refuses (an exception: e.g.
EDMDPMSolverMultistep's sde-dpmsolver++ of order 3, deis with final σ zero) or returns NaN for; KDPM2Ancestral
configurations whose float32 σ_down cancels upstream (gen_sampler_golden_discrete_extras.py's rule: σ_interpol more
than 1e-4 off the exact midpoint, or NaN — the earlier 5e-4 to 1.9e-2 mismatches of this class); DDPM / DDIM N + 1
trailing lists with zero terminal SNR (the step at t = −1 has the state ᾱ_{T−1} = 0 with the network at t = 0,
which the library's model refuses with a named error; upstream NaN for ε); N + 1 trailing lists for DDIMInverse
and the solver-table classes (DPMSolverMultistep, DEIS, UniPC), whose timestep −1 upstream reads as
alphas_cumprod[-1] and the library refuses with a named error; in the replayed phase, timestep lists
reaching −1 for the classes on the training timesteps (as its first version, which could not run them, drew them
again).
"""
import inspect
import json
import math
import os
import shutil
import sys
import tempfile
import importlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_sampler_golden_discrete import analytic_x0, mixture_for, to_prediction  # noqa: E402
from gen_sampler_golden_schedule_options import rescale_zero_terminal_snr_exact_sqrt  # noqa: E402
from gen_sampler_golden_solver_multistep import widened_class  # noqa: E402
from gen_sampler_golden_edm import raw_network as edm_raw_network, table as edm_table  # noqa: E402
from gen_sampler_golden_edm import widened_class as edm_widened_class  # noqa: E402

import diffusers  # noqa: E402

for _m in ("scheduling_ddim_inverse", "scheduling_lcm", "scheduling_tcd"):
    importlib.import_module("diffusers.schedulers." + _m).rescale_zero_terminal_snr = rescale_zero_terminal_snr_exact_sqrt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "scheduler_config")
REPLAY_SEED, EXTENSION_SEED = 20261203, 20261204
RNG = np.random.default_rng(REPLAY_SEED)

TIMESTEP_NET = {"DDPMScheduler", "DDIMScheduler", "DDIMInverseScheduler", "LCMScheduler", "TCDScheduler",
                "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "DEISMultistepScheduler"}
# the network at the timestep it is fed, σ linearly interpolated in t (KDPM2Ancestral's fractional grid and
# midpoint timesteps, which no σ → t rule gives: kdpm2_ancestral_sigmas)
INTERPOLATED_TIMESTEP_NET = {"KDPM2AncestralDiscreteScheduler"}
FLOW = {"FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"}
EDM = {"EDMEulerScheduler", "EDMDPMSolverMultistepScheduler"}
WIDENED = {"DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "DEISMultistepScheduler"}
# The classes of the replayed phase (their first draws: the files 000-141, byte for byte as before), then the
# classes added since, which only the extension phase draws.
CLASSES = ["DDPMScheduler", "DDIMScheduler", "DDIMInverseScheduler", "LCMScheduler", "EulerDiscreteScheduler",
           "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler", "LMSDiscreteScheduler", "DPMSolverMultistepScheduler",
           "DPMSolverSinglestepScheduler", "DEISMultistepScheduler", "UniPCMultistepScheduler",
           "FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"]
NEW_CLASSES = ["KDPM2AncestralDiscreteScheduler", "TCDScheduler", "EDMEulerScheduler", "EDMDPMSolverMultistepScheduler"]
ALL_CLASSES = CLASSES + NEW_CLASSES
# rescale_betas_zero_snr: every class that takes it but these two, which the library refuses it for (the solver
# table refuses ᾱ_T = 0: a named error, tests/diffusers_schedulers/scheduler_config.cpp)
ZERO_SNR_REFUSED = {"DPMSolverMultistepScheduler", "UniPCMultistepScheduler"}
# the classes on the solver table (multistep_solver_schedule), which refuses an N + 1 trailing list's timestep −1
SOLVER_TABLE = {"DPMSolverMultistepScheduler", "DEISMultistepScheduler", "UniPCMultistepScheduler"}
# the training lengths whose trailing list has N + 1 values for some N in 3..50 (numpy's arange(T, 0, -T/N))
EXTRA_STEP_T = [600, 850, 1200]
SKIPPED = {}
COVERED = {}  # class -> key -> set of values written


def pick(values):
    return values[int(RNG.integers(len(values)))]


def maybe(p):
    return bool(RNG.random() < p)


def keys_of(cls):
    return set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}


def walks_extra_step(T, n):
    return len(np.arange(T, 0, -T / n)) > n


def draw_edm_config(name):
    c = {"sigma_schedule": pick(["karras", "exponential"])}
    if maybe(0.6):
        c.update(sigma_min=float(np.exp(RNG.uniform(math.log(5e-4), math.log(0.2)))),
                 sigma_max=float(np.exp(RNG.uniform(math.log(2.0), math.log(160.0)))))
    if maybe(0.5):
        c["sigma_data"] = float(pick([0.5, 1.0, 0.3]))
    if maybe(0.4):
        c["rho"] = float(pick([7.0, 3.0, 9.5]))
    if maybe(0.2):
        c["num_train_timesteps"] = int(pick([500, 1200]))
    c["prediction_type"] = pick(["epsilon", "v_prediction"])
    c["final_sigmas_type"] = pick(["zero", "sigma_min"])
    if name == "EDMDPMSolverMultistepScheduler":
        c["solver_order"] = int(pick([1, 2, 3]))
        c["algorithm_type"] = pick(["dpmsolver++", "sde-dpmsolver++", "deis"])  # deis: upstream's alias of dpmsolver++
        c["solver_type"] = pick(["midpoint", "heun", "logrho"])                  # logrho: upstream's alias of midpoint
        if maybe(0.4):
            c["lower_order_final"] = False
        c["euler_at_final"] = maybe(0.25)
        if maybe(0.3):
            c.update(thresholding=True, dynamic_thresholding_ratio=float(pick([0.9, 0.995])), sample_max_value=float(pick([1.0, 1.5])))
    return c


def draw_config(name, extended=False, force_extra_step=False):
    """Random non-default values over the class's keys (a key is left out, so at its default, half the time).
    extended=False draws exactly as the generator first did (the replayed phase); extended=True draws every
    option the library reads (zero terminal SNR wherever it is taken, N + 1 trailing lists, FlowMatchEuler's
    invert_sigmas and use_beta_sigmas, the classes added since); force_extra_step: trailing spacing on a training
    length of EXTRA_STEP_T (for a class that has not yet walked an N + 1 trailing list)."""
    cls = getattr(diffusers, name)
    keys = keys_of(cls)
    c = {}
    if name in EDM:
        return draw_edm_config(name)
    if name in FLOW:
        if maybe(0.6):
            c["shift"] = float(pick([0.5, 1.0, 3.0, 5.0]))
        if maybe(0.3):
            c["num_train_timesteps"] = int(pick([500, 1000, 1200]))
        if name == "FlowMatchEulerDiscreteScheduler":
            if maybe(0.3):
                c.update(use_dynamic_shifting=True, base_shift=float(pick([0.5, 0.3])), max_shift=float(pick([1.15, 1.5])),
                         base_image_seq_len=int(pick([256, 64])), max_image_seq_len=int(pick([4096, 1024])),
                         time_shift_type=pick(["exponential", "linear"]))
            if maybe(0.25):
                c["shift_terminal"] = float(pick([0.02, 0.1]))
            sp = pick(["none", "none", "karras", "exponential"] + (["beta"] if extended else []))
            if sp != "none":
                c["use_%s_sigmas" % sp] = True
            if maybe(0.3):
                c["stochastic_sampling"] = True
        return c
    sched = pick(["linear", "scaled_linear", "squaredcos_cap_v2"])
    c["beta_schedule"] = sched
    if sched == "linear" and maybe(0.5):
        c.update(beta_start=0.0001, beta_end=0.02)
    elif sched == "scaled_linear":
        c.update(beta_start=0.00085, beta_end=0.012)
    if maybe(0.3):
        c["num_train_timesteps"] = int(pick([800, 1000]))
    if maybe(0.25):  # a short custom table (keeps the file small): its length is num_train_timesteps
        c = {"trained_betas": np.linspace(0.001, 0.2, 100).round(6).tolist(), "num_train_timesteps": 100}
    c["prediction_type"] = pick(["epsilon", "v_prediction"] + ([] if name == "KDPM2AncestralDiscreteScheduler" else ["sample"]))
    if "timestep_spacing" in keys and name != "LCMScheduler":
        # DDIMInverse: leading or trailing (its set_timesteps raises on linspace); the replayed phase drew leading only
        sp = (["leading", "trailing"] if extended else ["leading"]) if name == "DDIMInverseScheduler" else ["linspace", "leading", "trailing"]
        c["timestep_spacing"] = pick(sp)
        if force_extra_step:
            c.pop("trained_betas", None)
            c["timestep_spacing"] = "trailing"
        if c["timestep_spacing"] == "leading" and maybe(0.5):
            c["steps_offset"] = 1
        if extended and c["timestep_spacing"] == "trailing" and "trained_betas" not in c and (force_extra_step or maybe(0.5)):
            c["num_train_timesteps"] = int(pick(EXTRA_STEP_T))  # try_case then draws a step count with N + 1 steps
    zero_snr = (name not in ZERO_SNR_REFUSED) if extended else name in (
        "DDPMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler")
    if "rescale_betas_zero_snr" in keys and zero_snr and maybe(0.2):
        c["rescale_betas_zero_snr"] = True
    if "clip_sample" in keys and name != "HeunDiscreteScheduler":
        c["clip_sample"] = maybe(0.5)
        if c["clip_sample"] and maybe(0.5):
            c["clip_sample_range"] = float(pick([0.8, 1.5, 2.0]))
    if "thresholding" in keys and name != "UniPCMultistepScheduler" and maybe(0.25):
        c.update(thresholding=True, dynamic_thresholding_ratio=float(pick([0.9, 0.995])), sample_max_value=float(pick([1.0, 1.5])))
    if name == "DDPMScheduler":
        c["variance_type"] = pick(["fixed_small", "fixed_small_log", "fixed_large"])
    if "set_alpha_to_one" in keys:
        c["set_alpha_to_one"] = maybe(0.6)
    if name in ("LCMScheduler", "TCDScheduler"):
        c["original_inference_steps"] = int(pick([50, 50, 30, 100]))
        if maybe(0.4):
            c["timestep_scaling"] = float(pick([5.0, 10.0, 20.0]))
    if name in ("EulerDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler", "LMSDiscreteScheduler",
                "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "DEISMultistepScheduler",
                "UniPCMultistepScheduler", "KDPM2AncestralDiscreteScheduler"):
        sp = pick(["none", "none", "karras", "exponential"] + (["lu"] if name == "DPMSolverMultistepScheduler" else [])
                  + (["beta"] if name == "KDPM2AncestralDiscreteScheduler" else []))
        if sp == "lu":
            c["use_lu_lambdas"] = True
        elif sp != "none":
            c["use_%s_sigmas" % sp] = True
    if "final_sigmas_type" in keys:
        c["final_sigmas_type"] = pick(["zero", "sigma_min"])
    if name == "EulerDiscreteScheduler" and c.get("use_karras_sigmas") and maybe(0.4):
        c.update(sigma_min=float(pick([0.03, 0.1])), sigma_max=float(pick([10.0, 14.6])))
    if name in WIDENED or name == "UniPCMultistepScheduler":
        c["solver_order"] = int(pick([1, 2, 3]))
        if maybe(0.4):
            c["lower_order_final"] = not bool(inspect.signature(getattr(diffusers, name).__init__).parameters["lower_order_final"].default)
    if name == "DPMSolverMultistepScheduler":
        c["algorithm_type"] = pick(["dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"])
        c["solver_type"] = pick(["midpoint", "heun"])
        c["euler_at_final"] = maybe(0.25)
        if maybe(0.2):
            c["lambda_min_clipped"] = float(pick([-5.1, -3.0]))
        if c["algorithm_type"] in ("dpmsolver", "sde-dpmsolver"):
            c["final_sigmas_type"] = "sigma_min"
    if name == "DPMSolverSinglestepScheduler":
        c["algorithm_type"] = pick(["dpmsolver++", "sde-dpmsolver++", "dpmsolver"])
        c["solver_type"] = pick(["midpoint", "heun"])
        if maybe(0.2):
            c["lambda_min_clipped"] = float(pick([-5.1, -3.0]))
        if c["algorithm_type"] == "dpmsolver":
            c["final_sigmas_type"] = "sigma_min"
            c.pop("thresholding", None)
    if name == "DEISMultistepScheduler" and maybe(0.3):
        c.update(algorithm_type=pick(["deis", "dpmsolver++"]), solver_type=pick(["logrho", "midpoint"]))
    if name == "UniPCMultistepScheduler":
        c["solver_type"] = pick(["bh1", "bh2"])
        if c["solver_type"] == "bh1":
            c["final_sigmas_type"] = "sigma_min"  # bh1 into σ = 0 is NaN upstream (porting.md)
        if maybe(0.3):
            c["disable_corrector"] = [int(v) for v in sorted(set(RNG.integers(0, 6, 2).tolist()))]
    return c


def net_sigma_state(x_in, sigma, mix, pred):
    a = 1.0 / math.sqrt(1.0 + sigma * sigma)
    s = sigma * a
    return to_prediction(pred, x_in, analytic_x0(mix, x_in, a, s), a, s)


class Recorder:
    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.draws = []

    def __call__(self, shape, generator=None, device=None, dtype=None, **kw):
        z = torch.randn(tuple(shape), generator=self.gen, dtype=torch.float64)
        self.draws.append(z.clone())
        return z.to(dtype or torch.float64)


def edm_case_of(sched, steps):
    """The configuration in gen_sampler_golden_edm.py's terms (its table and raw network)."""
    c = sched.config
    return {"sampler": "edm_euler" if isinstance(sched, diffusers.EDMEulerScheduler) else "edm_dpm_solver_multistep",
            "steps": steps, "sigma_schedule": c.sigma_schedule, "sigma_min": c.sigma_min, "sigma_max": c.sigma_max,
            "rho": c.rho, "final": c.final_sigmas_type, "sigma_data": c.sigma_data, "pred": c.prediction_type}


def kdpm2a_midpoint_error(sched):
    """Upstream computes σ_up and σ_down = √(σ_{i+1}² − σ_up²) in float32, which cancels where σ_{i+1} ≪ σ_i
    (squaredcos_cap_v2's first step, steep tables) or σ_{i+1} ≈ σ_i (beta σ near the ends): its σ_interpol then
    leaves the exact midpoint √(σ_i·σ_down) = σ_{i+1}, by up to 1e-2, or is NaN (the earlier mismatches of
    KDPM2Ancestral); the library steps in double. The largest relative distance (inf for NaN)."""
    sig = np.concatenate([sched.sigmas.double().numpy()[:1], sched.sigmas.double().numpy()[1::2][:-1]])
    mid = sched.sigmas_interpol.double().numpy()[0::2][:len(sig) - 2]
    exact = sig[1:len(sig) - 1]
    if not np.all(np.isfinite(mid)):
        return math.inf
    return float(np.max(np.abs(mid - exact) / exact)) if len(exact) else 0.0


def kdpm2a_sigma_down_cancels(sched):
    """gen_sampler_golden_discrete_extras.py's redraw rule: σ_interpol more than 1e-4 off the exact midpoint."""
    return not kdpm2a_midpoint_error(sched) <= 1e-4


class Redraw(Exception):
    """A configuration drawn again, by a rule the summary counts."""


def run_loop(name, cfg, steps, z, mix, k, replay=False):
    """diffusers' pipeline loop in float64 (tables widened); returns the final latents and the recorded draws."""
    base = getattr(diffusers, name)
    cls = widened_class(base) if name in WIDENED else edm_widened_class(base) if name in EDM else base
    sched = cls(**cfg)
    pred = sched.config.get("prediction_type", "flow")
    sched.set_timesteps(steps, **({"mu": cfg["_mu"]} if "_mu" in cfg else {}))
    if replay and name in TIMESTEP_NET and any(int(t) < 0 for t in sched.timesteps):
        # the first version read ᾱ at t = −1 from final_alpha_cumprod (NaN, or none): it drew these again
        raise Redraw("timestep -1 in the replayed phase (drawn again, as by the first version)")
    if name == "KDPM2AncestralDiscreteScheduler" and kdpm2a_sigma_down_cancels(sched):
        raise Redraw("float32 sigma_down cancels upstream (sigma_interpol off the exact midpoint by > 1e-4, or NaN)")
    for attr, v in list(vars(sched).items()):  # every float32 table (σ, ᾱ, KDPM2's σ_interpol, σ_up ...) widened
        if torch.is_tensor(v) and v.dtype == torch.float32:
            setattr(sched, attr, v.double())
    if name in EDM:  # the library's table (the exact formula rounded to float32; upstream's ≤ 1e-5 away) and no float32 cast
        edm = edm_case_of(sched, steps)
        sched.sigmas = torch.tensor(edm_table(edm), dtype=torch.float64)
        sched.timesteps = sched.precondition_noise(sched.sigmas[:-1])
    sig_train = np.sqrt((1 - sched.alphas_cumprod.double().numpy()) / sched.alphas_cumprod.double().numpy()) \
        if name in INTERPOLATED_TIMESTEP_NET else None
    rec = Recorder(5000 + k)
    importlib.import_module(base.__module__).randn_tensor = rec
    x = z * float(getattr(sched, "init_noise_sigma", 1.0))  # flow matching: the noise itself
    T = sched.config.num_train_timesteps
    for i, t in enumerate(sched.timesteps):
        if name in FLOW:
            s = float(t) / T
            x0 = analytic_x0(mix, x, 1.0 - s, s)
            out = (x.double() - x0) / s
        elif name in EDM:
            out = edm_raw_network(edm, mix, x, float(sched.sigmas[sched.step_index if sched.step_index is not None else 0]))
        elif name in INTERPOLATED_TIMESTEP_NET:
            sn = float(np.interp(float(t), np.arange(T), sig_train))  # t = −1 (N + 1 trailing) reads as 0: numpy clamps
            a = 1 / math.sqrt(1 + sn * sn)
            x_in = sched.scale_model_input(x, t)
            out = to_prediction(pred, x_in, analytic_x0(mix, x_in, a, sn * a), a, sn * a)
        elif name in TIMESTEP_NET:
            # the extra timestep −1 of an N + 1 trailing list (DDPM, DDIM) reads as t = 0, as the library's network
            ac = float(sched.alphas_cumprod[max(int(t), 0)])
            a, s = math.sqrt(ac), math.sqrt(1 - ac)
            x_in = sched.scale_model_input(x, t)
            out = to_prediction(pred, x_in, analytic_x0(mix, x_in, a, s), a, s)
        elif name == "UniPCMultistepScheduler":
            idx = sched.step_index if sched.step_index is not None else 0
            sig = float(sched.sigmas[idx])
            a = 1.0 / math.sqrt(1.0 + sig * sig)
            out = to_prediction(pred, x, analytic_x0(mix, x, a, sig * a), a, sig * a)
        else:  # σ-space: the state's σ from scale_model_input's factor 1/√(σ² + 1)
            c = float(sched.scale_model_input(torch.ones(1, dtype=torch.float64), t)[0])
            sig = math.sqrt(max(1.0 / (c * c) - 1.0, 0.0))
            x_in = sched.scale_model_input(x, t)
            out = net_sigma_state(x_in, sig, mix, pred)
        x = sched.step(out.to(x.dtype), t, x).prev_sample.double()
    return sched, x, rec.draws


def cover(name, cfg):
    d = COVERED.setdefault(name, {})
    for key, v in cfg.items():
        if not key.startswith("_"):
            d.setdefault(key, set()).add(json.dumps(v))


def write_case(n, name, cfg, steps, shape, mix, sched, z, x, draws, tol_rel, tol_abs):
    case = f"{n:03d}_{name.replace('Scheduler', '').lower()}"
    tmp = tempfile.mkdtemp()
    try:
        getattr(diffusers, name)(**{k: v for k, v in cfg.items() if not k.startswith("_")}).save_config(tmp)
        shutil.copyfile(os.path.join(tmp, "scheduler_config.json"), os.path.join(OUT, case + "_scheduler_config.json"))
    finally:
        shutil.rmtree(tmp)
    np.save(os.path.join(OUT, case + "_init.npy"), z.numpy())
    spec = {"scheduler_config": case + "_scheduler_config.json", "dtype": "float64", "shape": list(shape),
            "num_inference_steps": steps, "init_noise": case + "_init.npy", "denoiser": mix}
    if "_mu" in cfg:
        spec["mu"] = cfg["_mu"]
    if draws:
        np.save(os.path.join(OUT, case + "_noise.npy"), torch.stack(draws).numpy())
        spec["step_noise"] = case + "_noise.npy"
    np.save(os.path.join(OUT, case + ".npy"), x.numpy())
    spec["test"] = {"expected": case + ".npy", "rtol": tol_rel, "atol": tol_abs,
                    "reference": f"diffusers {diffusers.__version__} {name}"}
    with open(os.path.join(OUT, case + ".json"), "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")


def tolerance(name, cfg, sched, x):
    scale = max(1.0, float(x.abs().max()))
    if name in ("DDPMScheduler", "DDIMScheduler", "DDIMInverseScheduler", "LCMScheduler", "TCDScheduler"):
        return 1e-9, 1e-10
    if name in EDM:  # widened step on the library's table: float64 throughout
        return 1e-9, 1e-10 * scale
    if name in WIDENED:
        spaced = cfg.get("use_karras_sigmas") or cfg.get("use_exponential_sigmas") or cfg.get("use_lu_lambdas")
        return (0.0, 2e-6 * scale) if spaced else (1e-8, 1e-8)
    big = float(sched.sigmas.max()) > 1e3
    if name == "KDPM2AncestralDiscreteScheduler":  # plus twice upstream's float32 midpoint error (≤ 1e-4: redrawn above)
        return 0.0, ((2e-4 if big else 2e-6) + 2 * kdpm2a_midpoint_error(sched)) * scale
    return 0.0, (2e-4 if big else 2e-6) * scale


# The keys each class's files must have held at a non-default value somewhere. Every key left out here has its
# reason; the library refuses each refused value with a named error (tests/diffusers_schedulers/scheduler_config.cpp).
NOT_DRAWN = {
    "use_flow_sigmas": "the VP solvers' flow σ: refused",
    "flow_shift": "read only with use_flow_sigmas (refused)",
    "use_dynamic_shifting": "the VP solvers: flow σ only, refused (drawn for FlowMatchEuler)",
    "time_shift_type": "the VP solvers: flow σ only, type-checked (drawn for FlowMatchEuler)",
    "variance_type": "the DPM-Solver classes' learned variances: refused (drawn for DDPM)",
    "interpolation_type": "Euler's log_linear: refused",
    "timestep_type": "Euler's continuous timesteps: refused",
    "predict_x0": "UniPC in the noise form: refused",
    "solver_p": "another predictor for UniPC: refused",
    "use_beta_sigmas": "beta σ in the Euler family and the solvers: refused (drawn for KDPM2Ancestral and FlowMatchEuler)",
    "invert_sigmas": "FlowMatchEuler's inverted grid starts at s = 0, where the library's flow step cannot form x̂₀ for an "
                     "observer (the CLI's path): refused",
}
NOT_DRAWN_PER_CLASS = {
    "HeunDiscreteScheduler": {"clip_sample": "its x̂₀ clipping: refused", "clip_sample_range": "read only with clip_sample"},
    "LCMScheduler": {"timestep_spacing": "LCM's set_timesteps reads neither", "steps_offset": "LCM's set_timesteps reads neither"},
    "UniPCMultistepScheduler": {"thresholding": "refused", "dynamic_thresholding_ratio": "read only with thresholding",
                                "sample_max_value": "read only with thresholding", "sigma_min": "refused",
                                "sigma_max": "refused", "shift_terminal": "flow σ only: refused",
                                "rescale_betas_zero_snr": "refused (the solver table refuses ᾱ_T = 0)"},
    "DPMSolverMultistepScheduler": {"rescale_betas_zero_snr": "refused (the solver table refuses ᾱ_T = 0)"},
}
DRAWN_ANYWAY = {"DDPMScheduler": {"variance_type"},
                "FlowMatchEulerDiscreteScheduler": {"use_dynamic_shifting", "time_shift_type", "use_beta_sigmas"},
                "KDPM2AncestralDiscreteScheduler": {"use_beta_sigmas"}}
# N + 1 trailing steps (diffusers walks N + 1 steps ending at t = −1): a pseudo key every class with trailing
# spacing and the training lengths of EXTRA_STEP_T must have covered
TRAILING_EXTRA = "(trailing N + 1 steps)"

# The replayed phase stops where the generator's first version stopped: its requirements, as they were.
REPLAY_NOT_DRAWN = {"use_beta_sigmas", "use_flow_sigmas", "flow_shift", "use_dynamic_shifting", "time_shift_type", "variance_type",
                    "interpolation_type", "timestep_type", "predict_x0", "solver_p", "invert_sigmas", "rescale_betas_zero_snr"}
REPLAY_ZERO_SNR_DRAWN = {"DDPMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler"}


def wanted(name, extended):
    keys = keys_of(getattr(diffusers, name))
    if not extended:
        want = keys - REPLAY_NOT_DRAWN - set(NOT_DRAWN_PER_CLASS.get(name, {})) - {"rescale_betas_zero_snr"}
        if name in REPLAY_ZERO_SNR_DRAWN:
            want.add("rescale_betas_zero_snr")
        if name in FLOW:
            want |= {"time_shift_type", "use_dynamic_shifting"} & keys
        return want
    want = (keys - set(NOT_DRAWN) - set(NOT_DRAWN_PER_CLASS.get(name, {}))) | (DRAWN_ANYWAY.get(name, set()) & keys)
    if "timestep_spacing" in keys and name not in {"LCMScheduler", "TCDScheduler", "DDIMInverseScheduler"} | SOLVER_TABLE:
        want.add(TRAILING_EXTRA)  # LCM and TCD read no spacing; DDIMInverse and the solver tables refuse the list
    return want


# values some case must have held (beyond a non-default value of the key)
REQUIRED_VALUES = {"DDIMInverseScheduler": {"timestep_spacing": json.dumps("trailing")}}


def missing(classes, extended):
    out = {}
    for name in classes:
        left = wanted(name, extended) - set(COVERED.get(name, {}))
        if extended:
            left |= {f"{k}={v}" for k, v in REQUIRED_VALUES.get(name, {}).items() if v not in COVERED.get(name, {}).get(k, set())}
        if left:
            out[name] = left
    return out


def skip(reason):
    SKIPPED[reason] = SKIPPED.get(reason, 0) + 1


def try_case(name, cfg, n, tried, extended):
    """Runs one drawn configuration through diffusers and writes it as case n; False where it is drawn again."""
    steps = int(RNG.integers(3, 51))
    if "trained_betas" in cfg and name in ("LCMScheduler", "TCDScheduler"):
        cfg["original_inference_steps"] = 20
    if name in ("LCMScheduler", "TCDScheduler"):
        steps = int(RNG.integers(2, 9))
    T = cfg.get("num_train_timesteps", 1000)
    if cfg.get("timestep_spacing") == "trailing" and T in EXTRA_STEP_T:
        steps = int(pick([m for m in range(3, 51) if walks_extra_step(T, m)]))
    if name == "FlowMatchEulerDiscreteScheduler" and cfg.get("use_dynamic_shifting"):
        seq = int(pick([256, 1024, 4096]))
        m = (cfg["max_shift"] - cfg["base_shift"]) / (cfg["max_image_seq_len"] - cfg["base_image_seq_len"])
        cfg["_mu"] = seq * m + cfg["base_shift"] - m * cfg["base_image_seq_len"]  # diffusers' calculate_shift
    B = int(RNG.integers(1, 3))
    dims = [[2, 2], [2, 3]][int(RNG.integers(0, 2))]
    shape = [B] + dims
    mix = mixture_for(7000 + tried, int(np.prod(dims)))
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(6000 + tried), dtype=torch.float64)
    extra = cfg.get("timestep_spacing") == "trailing" and name not in ("DDIMInverseScheduler", "TCDScheduler") \
        and walks_extra_step(T, steps)
    walks_minus_one = extra and name in ("DDPMScheduler", "DDIMScheduler")  # their list ends at t = −1
    if name == "DDIMInverseScheduler" and cfg.get("timestep_spacing") == "trailing" and walks_extra_step(T, steps):
        # its N + 1 trailing list starts at −1, which upstream reads as the target ᾱ_{T−1}: refused by the library
        skip(f"{name}: N + 1 trailing steps (refused)")
        return False
    if extended and extra and name in SOLVER_TABLE:
        # their table's timestep −1 (which upstream reads as alphas_cumprod[-1]) is refused by the library with a
        # named error (multistep_solver_schedule; tests/diffusers_schedulers/scheduler_config.cpp)
        skip(f"{name}: N + 1 trailing steps (refused)")
        return False
    if walks_minus_one and cfg.get("rescale_betas_zero_snr"):
        # the step at t = −1 has the state ᾱ_{T−1} = 0 (pure noise) with the network at t = 0, which the library's
        # model refuses (a named error; upstream NaN for ε, a number for v and x₀)
        skip(f"{name}: N + 1 trailing steps with zero terminal SNR")
        return False
    try:
        sched, x, draws = run_loop(name, dict(cfg), steps, z, mix, tried, replay=not extended)
    except Redraw as e:
        skip(f"{name}: {e}")
        return False
    except Exception as e:  # upstream refuses the configuration
        skip(f"{name}: {type(e).__name__}")
        return False
    if not torch.isfinite(x).all():
        skip(f"{name}: NaN upstream")
        return False
    if name in WIDENED and int((sched.timesteps == sched.timesteps[0]).sum()) > 1:
        skip(f"{name}: repeated first timestep")
        return False
    rt, at = tolerance(name, cfg, sched, x)
    write_case(n, name, cfg, steps, shape, mix, sched, z, x, draws, rt, at)
    cover(name, cfg)
    if extra and len(sched.timesteps) > steps * (2 if name in ("HeunDiscreteScheduler", "KDPM2DiscreteScheduler",
                                                              "KDPM2AncestralDiscreteScheduler") else 1):
        COVERED[name].setdefault(TRAILING_EXTRA, set()).add("true")
    return True


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    torch.set_default_dtype(torch.float64)
    global RNG
    n, tried = 0, 0
    per_class = {c: 0 for c in ALL_CLASSES}
    # the replayed phase: the generator's first draws over its 15 classes (cases 000-141)
    while n < 5 * len(CLASSES) or min(per_class[c] for c in CLASSES) < 5 or missing(CLASSES, False):
        tried += 1
        assert tried < 3000, f"some class never runs or never covers a key: {per_class} {missing(CLASSES, False)} {SKIPPED}"
        todo = missing(CLASSES, False)
        name = CLASSES[tried % len(CLASSES)] if min(per_class[c] for c in CLASSES) < 5 else \
            pick(sorted(todo) if todo and n >= 5 * len(CLASSES) else CLASSES)
        cfg = draw_config(name) if per_class[name] > 0 else {}  # each class's first case: every key at its default
        if try_case(name, cfg, n, tried, False):
            per_class[name] += 1
            n += 1
    replayed = n
    # the extension phase, from its own seed: the classes added since (each first at its defaults) and every
    # option over all classes, until each class has covered every key it must and 48 cases are written
    RNG = np.random.default_rng(EXTENSION_SEED)
    while min(per_class[c] for c in NEW_CLASSES) < 6 or missing(ALL_CLASSES, True) or n - replayed < 48:
        tried += 1
        assert tried < 6000, f"some class never runs or never covers a key: {per_class} {missing(ALL_CLASSES, True)} {SKIPPED}"
        todo = missing(ALL_CLASSES, True)
        if min(per_class[c] for c in NEW_CLASSES) < 6:
            name = NEW_CLASSES[tried % len(NEW_CLASSES)]
        else:
            name = pick(sorted(todo) if todo else ALL_CLASSES)
        cfg = draw_config(name, extended=True, force_extra_step=TRAILING_EXTRA in todo.get(name, ())) if per_class[name] > 0 else {}
        if try_case(name, cfg, n, tried, True):
            per_class[name] += 1
            n += 1
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"scheduler_config: {n} cases ({replayed} replayed, {tried} drawn), {total / 1024:.0f} KB; per class {per_class}")
    print("skipped:", SKIPPED)
    for name in ALL_CLASSES:
        keys = keys_of(getattr(diffusers, name))
        print(f"  {name}: non-default keys drawn {sorted(COVERED.get(name, {}))}; never: {sorted(keys - set(COVERED.get(name, {})))}")


if __name__ == "__main__":
    main()
