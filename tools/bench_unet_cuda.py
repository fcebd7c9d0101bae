#!/usr/bin/env python3
"""PyTorch eager peer of bench_cuda's U-Net line: one diffusers UNet2DModel forward in float32 on CUDA.

Loads the model folder (config.json + safetensors) with UNet2DModel.from_pretrained, and times the forward at
batch 1 and 64 at the config's sample size under torch.inference_mode(): 3 warm-ups, then the median of 21
timings by CUDA events — the same protocol as benchmarks/cuda/bench_cuda.cu, so the two lines compare.
TF32 is off (torch.backends.*.allow_tf32 = False) so that both sides compute in float32.

    python3 tools/bench_unet_cuda.py --model tests/golden/unet/cifar10_tiny
"""
import argparse
import statistics

import torch
from diffusers import UNet2DModel


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="UNet2DModel folder")
    ap.add_argument("--reps", type=int, default=21)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_unet_cuda: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    net = UNet2DModel.from_pretrained(args.model).to("cuda", torch.float32).eval()
    cfg = net.config
    size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
    for batch in (1, 64):
        x = torch.randn(batch, cfg.in_channels, size, size, device="cuda")
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
        print(f"torch eager unet forward, batch {batch:<3} {size}x{size} (float32) {ms:12.3f} {batch / ms * 1e3:9.1f} img/s")


if __name__ == "__main__":
    main()
