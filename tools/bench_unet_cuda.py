#!/usr/bin/env python3
"""PyTorch eager peer of bench_cuda's U-Net lines: one diffusers UNet2DModel forward on CUDA per precision.

Loads the model folder (config.json + safetensors) with UNet2DModel.from_pretrained, and times the forward at
batch 1 and 64 at the config's sample size under torch.inference_mode(): 3 warm-ups, then the median of 21
timings by CUDA events — the same protocol as benchmarks/cuda/bench_cuda.cu, so the lines compare. Precisions
(bench_cuda's device_precision names):
  fp32  float32 weights and inputs, TF32 off (torch.backends.cuda.matmul.allow_tf32 = cudnn.allow_tf32 = False)
  tf32  float32 weights and inputs, TF32 on for matmuls and cuDNN convolutions
  bf16  model.to(torch.bfloat16), bfloat16 input (activations bf16 too: torch's usual low-precision inference)
  fp16  model.to(torch.float16), float16 input
diffuse keeps its activations in float in every precision (only the GEMM operands are 16-bit), so the 16-bit
rows compare diffuse's float-activation forward against torch's all-16-bit one.

    python3 tools/bench_unet_cuda.py --model tests/golden/unet/cifar10_tiny [--precisions fp32,bf16]
"""
import argparse
import statistics

import torch
from diffusers import UNet2DModel

PRECISIONS = {"fp32": (torch.float32, False), "tf32": (torch.float32, True), "bf16": (torch.bfloat16, False),
              "fp16": (torch.float16, False)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="UNet2DModel folder")
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--precisions", default="fp32,tf32,bf16,fp16", help="comma-separated: fp32, tf32, bf16, fp16")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_unet_cuda: no CUDA device")
    names = args.precisions.split(",")
    for name in names:
        if name not in PRECISIONS:
            raise SystemExit(f"bench_unet_cuda: unknown precision {name!r} (fp32, tf32, bf16, fp16)")
    for name in names:
        dtype, tf32 = PRECISIONS[name]
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        net = UNet2DModel.from_pretrained(args.model).to("cuda", dtype).eval()
        cfg = net.config
        size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
        for batch in (1, 64):
            x = torch.randn(batch, cfg.in_channels, size, size, device="cuda", dtype=dtype)
            t = torch.full((batch,), 500, device="cuda", dtype=torch.long)
            labels = None
            if cfg.num_class_embeds is not None or cfg.class_embed_type == "timestep":
                labels = torch.zeros(batch, device="cuda", dtype=torch.long)
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            times = []
            with torch.inference_mode():
                for i in range(3 + args.reps):
                    start.record()
                    net(x, t, class_labels=labels)
                    stop.record()
                    torch.cuda.synchronize()
                    if i >= 3:
                        times.append(start.elapsed_time(stop))
            ms = statistics.median(times)
            print(f"torch eager unet forward, batch {batch:<3} {size}x{size} ({name}) {ms:12.3f} {batch / ms * 1e3:9.1f} img/s")
        del net
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
