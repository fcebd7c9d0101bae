#!/usr/bin/env python3
"""Golden values for the forward process, from real diffusers (DDPMScheduler).

Run from the repository root:  python3 tools/gen_process_golden.py
Writes tests/golden/process/*.npy: add_noise results and posterior coefficients for several schedules.
"""
import os

import numpy as np
import torch
from diffusers import DDPMScheduler

out = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "process")
os.makedirs(out, exist_ok=True)
configs = [("linear", 1000, 1e-4, 0.02), ("scaled_linear", 1000, 0.00085, 0.012), ("squaredcos_cap_v2", 1000, 1e-4, 0.02),
           ("linear", 50, 1e-4, 0.2)]
g = torch.Generator().manual_seed(7)
for k, (name, T, b0, b1) in enumerate(configs):
    s = DDPMScheduler(num_train_timesteps=T, beta_schedule=name, beta_start=b0, beta_end=b1)
    x0 = torch.randn(4, 16, generator=g)
    noise = torch.randn(4, 16, generator=g)
    t = torch.tensor([0, T // 3, T // 2, T - 1])
    noisy = s.add_noise(x0, noise, t)
    ac = s.alphas_cumprod.double()
    ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    betas = s.betas.double()
    var = betas * (1 - ac_prev) / (1 - ac)
    coef_x0 = betas * ac_prev.sqrt() / (1 - ac)
    coef_xt = (1 - ac_prev) * s.alphas.double().sqrt() / (1 - ac)  # alphas = float32(1 - beta), as stored
    np.save(os.path.join(out, f"addnoise_{k}_x0.npy"), x0.numpy())
    np.save(os.path.join(out, f"addnoise_{k}_noise.npy"), noise.numpy())
    np.save(os.path.join(out, f"addnoise_{k}_t.npy"), t.numpy().astype(np.int64))
    np.save(os.path.join(out, f"addnoise_{k}_out.npy"), noisy.numpy())
    np.save(os.path.join(out, f"posterior_{k}.npy"), np.stack([coef_x0.numpy(), coef_xt.numpy(), var.numpy()]))
