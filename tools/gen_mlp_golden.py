#!/usr/bin/env python3
"""Golden files for the reference MLP denoiser (include/diffuse/nn/mlp.hpp) from the same network in torch.

For configurations drawn at random from a seeded generator (data_dim, hidden, blocks, time_embed, time_scale, batch;
widths that are not multiples of the GEMM's 16-column panels and batches that are not multiples of its 6-row tiles
are drawn on purpose), writes

    tests/golden/nn/mlp/case_<k>_weights.safetensors   the float32 weights in torch's Linear layout, with the
                                                       configuration in the metadata (mlp_denoiser::load reads it)
    tests/golden/nn/mlp/case_<k>_io.safetensors        x (float32), cond (float64), grad_out (float32) and, computed
                                                       by torch in float64 from those float32 values: out, grad_x and
                                                       grad.<parameter> = ∂(Σ grad_out·out)/∂parameter

tests/nn/test_mlp.cpp compares the float32 forward and backward passes with them.
Run from the repository root:  python3 tools/gen_mlp_golden.py      (needs torch, numpy, safetensors)
"""
import math
import os

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "nn", "mlp")
CASES = 12


def embedding(cond, time_scale, E):
    """[sin(c·f_i), cos(c·f_i)], f_i = exp(−ln(10000)·i/half), c = time_scale·cond, in double, rounded to float32."""
    half = E // 2
    f = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half)
    c = (cond * time_scale)[:, None] * f[None, :]
    return np.concatenate([np.sin(c), np.cos(c)], axis=1).astype(np.float32)


def forward(p, x, emb, blocks):
    silu = torch.nn.functional.silu
    h = torch.cat([x, emb], 1) @ p["input.weight"].T + p["input.bias"]
    for k in range(blocks):
        b = f"blocks.{k}."
        u = silu(h) @ p[b + "fc1.weight"].T + p[b + "fc1.bias"] + emb @ p[b + "time.weight"].T
        h = h + (silu(u) @ p[b + "fc2.weight"].T + p[b + "fc2.bias"])
    return silu(h) @ p["output.weight"].T + p["output.bias"]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261202)
    for k in range(CASES):
        D = int(rng.integers(1, 6))
        H = int(rng.choice([1, 5, 16, 17, 31, 40]))
        L = int(rng.integers(0, 4))
        E = 2 * int(rng.integers(1, 9))
        scale = float(rng.choice([1.0, 10.0, 1000.0]) * rng.uniform(0.5, 1.5))
        B = int(rng.choice([1, 5, 6, 7, 13, 80]))
        shapes = {"input.weight": (H, D + E), "input.bias": (H,)}
        for i in range(L):
            b = f"blocks.{i}."
            shapes.update({b + "fc1.weight": (H, H), b + "fc1.bias": (H,), b + "time.weight": (H, E),
                           b + "fc2.weight": (H, H), b + "fc2.bias": (H,)})
        shapes.update({"output.weight": (D, H), "output.bias": (D,)})
        weights = {n: (rng.normal(size=s) * (1.5 / math.sqrt(s[-1] if len(s) == 2 else H))).astype(np.float32)
                   for n, s in shapes.items()}
        meta = {"format": "diffuse.mlp_denoiser", "data_dim": str(D), "hidden": str(H), "blocks": str(L),
                "time_embed": str(E), "time_scale": repr(scale)}
        save_file(weights, os.path.join(OUT, f"case_{k}_weights.safetensors"), metadata=meta)

        x = rng.normal(size=(B, D)).astype(np.float32)
        cond = rng.uniform(0.0, 1.0, B)
        gout = rng.normal(size=(B, D)).astype(np.float32)
        p = {n: torch.tensor(w, dtype=torch.float64, requires_grad=True) for n, w in weights.items()}
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out = forward(p, xt, torch.tensor(embedding(cond, scale, E), dtype=torch.float64), L)
        (out * torch.tensor(gout, dtype=torch.float64)).sum().backward()
        io = {"x": x, "cond": cond, "grad_out": gout, "out": out.detach().numpy(), "grad_x": xt.grad.numpy()}
        io.update({"grad." + n: t.grad.numpy() for n, t in p.items()})
        save_file(io, os.path.join(OUT, f"case_{k}_io.safetensors"))
        print(f"case {k}: D={D} H={H} blocks={L} E={E} time_scale={scale:.4g} batch={B}")


if __name__ == "__main__":
    main()
