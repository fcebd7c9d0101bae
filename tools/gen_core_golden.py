#!/usr/bin/env python3
"""Golden values for the core primitives, from real torch.

Run from the repository root:  python3 tools/gen_core_golden.py
Writes tests/golden/core/quantile_*.npy (input, q values, torch.quantile results).
"""
import os

import numpy as np
import torch

out = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "core")
os.makedirs(out, exist_ok=True)
g = torch.Generator().manual_seed(1234)
for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
    for n in (1, 2, 7, 513):
        x = torch.randn(3, n, generator=g, dtype=dtype) * 2.5
        qs = torch.tensor([0.0, 0.25, 0.5, 0.9, 0.995, 1.0], dtype=dtype)
        res = torch.stack([torch.quantile(x.abs(), q, dim=1) for q in qs])  # [len(qs), 3]
        np.save(os.path.join(out, f"quantile_{tag}_{n}_x.npy"), x.numpy())
        np.save(os.path.join(out, f"quantile_{tag}_{n}_q.npy"), qs.numpy())
        np.save(os.path.join(out, f"quantile_{tag}_{n}_out.npy"), res.numpy())
