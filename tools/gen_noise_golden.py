#!/usr/bin/env python3
"""Golden files for the torch-compatible CPU generator (include/diffuse/core/torch_generator.hpp).

Run from the repository root:
    python3 tools/gen_noise_golden.py
It needs torch (CPU) and numpy, and writes small .npy files to tests/golden/noise/.

torch's CPU randn has two float32 kernels for n >= 16: a scalar one and an AVX2 one whose log/sin/cos
differ in the last bit. The script runs torch twice in child processes, with ATEN_CPU_CAPABILITY=default
(scalar kernels) and ATEN_CPU_CAPABILITY=avx2, and stores both. It also checks that torch's own
default dispatch on this machine equals one of the two (it uses the AVX2 kernel on AVX2/AVX-512 CPUs).

Files (i indexes SEEDS; the C++ test hard-codes the same lists):
  seeds.npy                    uint64, the seeds
  randn_f64_s{i}.npy           float64, concatenation over SIZES of: manual_seed(seed); randn(n, float64)
  randn_f32_{path}_s{i}.npy    float32, the same for float32, path in {scalar, avx2}
  seq_{path}_s{i}.npy          float64, one manual_seed(seed) then the calls of SEQUENCE in order,
                               each result flattened and converted exactly to float64, concatenated
"""
import json
import os
import subprocess
import sys

import numpy as np

SEEDS = [0, 1, 42, 2**32 + 5, 0xFEDCBA9876543210]
SIZES = [1, 6, 15, 16, 17, 31, 100, 1000]
# (shape, dtype) of each call of the multi-call sequence. It mixes the n < 16 path (which caches
# the second Box-Muller value of a double pair, shared by float32 and float64) with the n >= 16 path.
SEQUENCE = [((7,), "float32"), ((33,), "float32"), ((16,), "float32"), ((1,), "float64"),
            ((5,), "float32"), ((20,), "float64"), ((3,), "float32"), ((2, 4), "float32")]

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "noise")


def child():
    """Prints, as JSON, every array for every seed, computed by this process's torch."""
    import torch
    res = {"capability": torch.backends.cpu.get_cpu_capability(), "seeds": []}
    for seed in SEEDS:
        entry = {}
        for dt, name in ((torch.float32, "f32"), (torch.float64, "f64")):
            vals = []
            for n in SIZES:
                torch.manual_seed(seed)
                vals.append(torch.randn(n, dtype=dt).numpy().astype(np.float64))
            entry[name] = np.concatenate(vals).tolist()
        torch.manual_seed(seed)
        seq = []
        for shape, dt in SEQUENCE:
            seq.append(torch.randn(*shape, dtype=getattr(torch, dt)).flatten().numpy().astype(np.float64))
        entry["seq"] = np.concatenate(seq).tolist()
        res["seeds"].append(entry)
    json.dump(res, sys.stdout)


def run(capability):
    env = dict(os.environ)
    if capability is None:
        env.pop("ATEN_CPU_CAPABILITY", None)
    else:
        env["ATEN_CPU_CAPABILITY"] = capability
    out = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    os.makedirs(OUT, exist_ok=True)
    scalar, avx2, native = run("default"), run("avx2"), run(None)
    print("capabilities:", scalar["capability"], avx2["capability"], native["capability"])
    np.save(os.path.join(OUT, "seeds.npy"), np.array(SEEDS, dtype=np.uint64))
    max_ulp = 0
    for i, (s, a, d) in enumerate(zip(scalar["seeds"], avx2["seeds"], native["seeds"])):
        assert s["f64"] == a["f64"], "float64 randn should not depend on the CPU capability"
        assert d["f32"] in (s["f32"], a["f32"]) and d["seq"] in (s["seq"], a["seq"])
        np.save(os.path.join(OUT, f"randn_f64_s{i}.npy"), np.array(s["f64"], dtype=np.float64))
        for path, r in (("scalar", s), ("avx2", a)):
            np.save(os.path.join(OUT, f"randn_f32_{path}_s{i}.npy"), np.array(r["f32"], dtype=np.float32))
            np.save(os.path.join(OUT, f"seq_{path}_s{i}.npy"), np.array(r["seq"], dtype=np.float64))
        fs, fa = np.array(s["f32"], dtype=np.float32), np.array(a["f32"], dtype=np.float32)
        ulp = np.abs(fs.astype(np.float64) - fa.astype(np.float64)) / np.spacing(np.abs(fs))
        max_ulp = max(max_ulp, float(ulp.max()))
    print("native dispatch equals the avx2 path:", native["seeds"][0]["f32"] == avx2["seeds"][0]["f32"])
    print("max ulp between scalar and avx2 float32 paths:", max_ulp)


if __name__ == "__main__":
    if "--child" in sys.argv:
        child()
    else:
        main()
