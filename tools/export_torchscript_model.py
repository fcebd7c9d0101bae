#!/usr/bin/env python3
"""A small ε-prediction network exported to TorchScript, and diffusers' DDIM sampling it, for tests/torch/.

Writes tests/golden/torch/:
  eps_mlp.pt            the TorchScript module: forward(x [B, 2, 4] float32, t [B] float32) -> ε̂ [B, 2, 4]
  init.npy              the initial noise x_T (float32 [3, 2, 4], torch.Generator seed 7)
  ddim_expected.npy     diffusers DDIMScheduler (linear betas, 1000 steps, 10 leading steps, η = 0,
                        no clipping, set_alpha_to_one) driving the module from init.npy, float32
  dpmpp_sigmas.npy      diffusers DPMSolverMultistepScheduler's σ grid (20 steps, linspace spacing, float64)
  dpmpp_expected.npy    that scheduler (DPM-Solver++ 2M, midpoint, 20 steps) driving the module from init.npy
  README.md             what made them

TorchScript saved by torch 2.x (file format version 3 zip archives, only aten ops) loads in Debian's libtorch
1.13; a module that uses operators newer than 1.13 would not, so the module keeps to Linear, tanh, sin, cos.
Run: python3 tools/export_torchscript_model.py   (torch 2.x and diffusers 0.3x/0.4x, CPU)
"""
import json
import math
import os

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "torch")


class EpsMLP(torch.nn.Module):
    """ε̂(x, t) = W₂ tanh(W₁ vec(x) + E(t)), E(t) = W_e [sin(t·f), cos(t·f)] with 8 log-spaced frequencies."""

    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(8, 32)
        self.emb = torch.nn.Linear(16, 32)
        self.out = torch.nn.Linear(32, 8)
        self.register_buffer("freqs", torch.exp(-math.log(1000.0) * torch.arange(8, dtype=torch.float32) / 8))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        a = t.unsqueeze(1) * self.freqs.unsqueeze(0)
        e = self.emb(torch.cat([torch.sin(a), torch.cos(a)], dim=1))
        h = torch.tanh(self.inp(x.reshape(b, 8)) + e)
        return self.out(h).reshape(x.shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(3)
    net = EpsMLP().eval()
    scripted = torch.jit.script(net)
    scripted.save(os.path.join(OUT, "eps_mlp.pt"))

    x = torch.randn((3, 2, 4), generator=torch.Generator().manual_seed(7), dtype=torch.float32)
    np.save(os.path.join(OUT, "init.npy"), x.numpy())
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                          clip_sample=False, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
    sched.set_timesteps(10)
    with torch.no_grad():
        for t in sched.timesteps:
            eps = scripted(x, torch.full((x.shape[0],), float(t), dtype=torch.float32))
            x = sched.step(eps, t, x, eta=0.0).prev_sample
    np.save(os.path.join(OUT, "ddim_expected.npy"), x.numpy())

    # DPM-Solver++ 2M: the scheduler holds the VP state; the network sees the integer timesteps
    dpm = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                                      algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="linspace")
    dpm.set_timesteps(20)
    x = torch.from_numpy(np.load(os.path.join(OUT, "init.npy"))) * dpm.init_noise_sigma
    with torch.no_grad():
        for t in dpm.timesteps:
            eps = scripted(x, torch.full((x.shape[0],), float(t), dtype=torch.float32))
            x = dpm.step(eps, t, x).prev_sample
    np.save(os.path.join(OUT, "dpmpp_sigmas.npy"), dpm.sigmas.to(torch.float64).numpy())
    np.save(os.path.join(OUT, "dpmpp_expected.npy"), x.numpy())
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("Written by tools/export_torchscript_model.py (torch %s, diffusers %s): a TorchScript ε-network and\n"
                "diffusers' DDIMScheduler (10 leading steps, eta 0) and DPMSolverMultistepScheduler (DPM-Solver++ 2M,\n"
                "20 linspace steps) sampling it from init.npy; read by tests/torch/.\n"
                % (torch.__version__.split("+")[0], __import__("diffusers").__version__))
    print(json.dumps({"timesteps": [int(t) for t in sched.timesteps]}))


if __name__ == "__main__":
    main()
