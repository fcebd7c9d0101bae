#!/usr/bin/env python3
"""Train the Fashion-MNIST models that diffuse ships in examples/fashion_mnist/.

Two models, both on Fashion-MNIST padded from 28x28 to 32x32 (2 pixels of background each side) and scaled
to [-1, 1] (background -1), read from Debian's dataset-fashion-mnist package (IDX files, parsed here):

  * a class-conditional diffusers UNet2DModel (epsilon prediction, DDPMScheduler, num_class_embeds = 11:
    classes 0-9 plus the null class 10 for classifier-free guidance, dropped in with probability 0.1),
    trained with AdamW (linear warm-up, cosine decay) and an EMA of the weights, exported (the EMA weights,
    float16) with save_pretrained to examples/fashion_mnist/unet/ together with the scheduler config;
  * a small CNN classifier (conv1-conv3 + fc1 + fc2, see Classifier) whose 128 fc1 features serve the
    C++ side as FID-style features, exported to examples/fashion_mnist/classifier.safetensors.

Modes (each appends to examples/fashion_mnist/training_log.txt):

    OMP_NUM_THREADS=1 python3 tools/train_fashion_mnist.py --compare [--compare-seconds 150]
    OMP_NUM_THREADS=1 python3 tools/train_fashion_mnist.py --classifier [--epochs 4]
    OMP_NUM_THREADS=1 python3 tools/train_fashion_mnist.py --train --arch NAME [--minutes 50 | --steps N]
    OMP_NUM_THREADS=1 python3 tools/train_fashion_mnist.py --export        # loss.png, F16 check, sample grid

--compare measures each candidate architecture's forward cost (MACs counted with hooks; ms per image at
batch 64, one thread, inference mode) and its held-out loss (1024 test images, fixed timesteps and noise)
after the same short budget of process CPU time. --train with --minutes runs the cosine schedule on the
fraction of the wall-time budget used (so the run ends on time whatever the machine's load); with --steps
the schedule is step-based and the run is reproducible bit for bit.

Everything runs on one torch thread (torch.set_num_threads(1), set_num_interop_threads(1)).
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "examples", "fashion_mnist")
DATA = "/usr/share/datasets/fashion-mnist"
LOG = os.path.join(OUT, "training_log.txt")
CKPT = "/tmp/fashion_mnist_diffusion_ckpt.pt"   # full training state (not shipped)
HIST = os.path.join(OUT, "loss_history.json")
SEED = 0
NULL_CLASS = 10
P_UNCOND = 0.1
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def log(msg=""):
    print(msg, flush=True)
    os.makedirs(OUT, exist_ok=True)
    with open(LOG, "a") as f:
        f.write(msg + "\n")


def seed_all(seed=SEED):
    torch.manual_seed(seed)
    np.random.seed(seed)


# ---------------------------------------------------------------------------------------------------- data
def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    dtype_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    assert dtype_code == 0x08, "expected unsigned byte IDX data"
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(split):
    """Images as float32 [N,1,32,32] in [-1,1] (padded with -1), labels as int64 [N]."""
    prefix = "train" if split == "train" else "t10k"
    img = read_idx(os.path.join(DATA, f"{prefix}-images-idx3-ubyte.gz"))
    lab = read_idx(os.path.join(DATA, f"{prefix}-labels-idx1-ubyte.gz"))
    x = img.astype(np.float32) / 127.5 - 1.0
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)[:, None]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(lab.astype(np.int64))


# ---------------------------------------------------------------------------------------------- classifier
class Classifier(nn.Module):
    """The exact architecture the C++ side re-implements (module names are the safetensors keys)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def features(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2)   # 16x16
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2)   # 8x8
        x = F.avg_pool2d(F.relu(self.conv3(x)), 2)   # 4x4
        return F.relu(self.fc1(x.flatten(1)))        # NCHW flatten (C, H, W)

    def forward(self, x):
        return self.fc2(self.features(x))


def frechet_distance(m1, c1, m2, c2):
    """||m1-m2||^2 + tr(c1 + c2 - 2 (c1 c2)^(1/2)), tr sqrt via the eigenvalues of c1^(1/2) c2 c1^(1/2)."""
    w, v = np.linalg.eigh(c1)
    s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(s1 @ c2 @ s1)
    tr_sqrt = np.sqrt(np.clip(ev, 0, None)).sum()
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * tr_sqrt)


def feature_stats(f):
    f = f.astype(np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


@torch.inference_mode()
def batched(fn, x, bs=500):
    return torch.cat([fn(x[i:i + bs]) for i in range(0, len(x), bs)])


def run_classifier(args):
    from safetensors.torch import save_file
    seed_all()
    xtr, ytr = load_split("train")
    xte, yte = load_split("test")
    net = Classifier()
    opt = torch.optim.Adam(net.parameters(), lr=args.cls_lr)
    bs = args.cls_batch
    steps_per_epoch = len(xtr) // bs
    total = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    log(f"== classifier: {sum(p.numel() for p in net.parameters())} parameters, Adam lr {args.cls_lr} cosine, "
        f"batch {bs}, {args.epochs} epochs, seed {SEED}")
    g = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    step = 0
    for ep in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        run_loss = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item()
            if step % 100 == 0:
                log(f"classifier epoch {ep} step {step} loss {run_loss / 100:.4f} elapsed {time.time() - t0:.0f}s")
                run_loss = 0.0
        net.eval()
        acc = (batched(net, xte).argmax(1) == yte).float().mean().item()
        log(f"classifier epoch {ep} done: test accuracy {acc * 100:.2f}% elapsed {time.time() - t0:.0f}s")
    net.eval()
    with torch.inference_mode():
        acc = (batched(net, xte).argmax(1) == yte).float().mean().item()
        train_acc = (batched(net, xtr).argmax(1) == ytr).float().mean().item()
        fte = batched(net.features, xte).numpy()
        sel = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(SEED + 1))[:10000]
        ftr = batched(net.features, xtr[sel]).numpy()
    mte, cte = feature_stats(fte)
    mtr, ctr = feature_stats(ftr)
    fd = frechet_distance(mtr, ctr, mte, cte)
    # half-vs-half of the test set: a second floor, at 5k vs 5k
    m_a, c_a = feature_stats(fte[:5000])
    m_b, c_b = feature_stats(fte[5000:])
    fd_half = frechet_distance(m_a, c_a, m_b, c_b)
    state = {k: v.detach().contiguous().float() for k, v in net.state_dict().items()}
    save_file(state, os.path.join(OUT, "classifier.safetensors"))
    x4 = xte[:4].clone()
    with torch.inference_mode():
        f4 = net.features(x4)
        l4 = net.fc2(f4)
    np.save(os.path.join(OUT, "classifier_check_x.npy"), x4.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "classifier_check_features.npy"), f4.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "classifier_check_logits.npy"), l4.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "test_features_mean.npy"), mte.astype(np.float64))
    np.save(os.path.join(OUT, "test_features_cov.npy"), cte.astype(np.float64))
    info = {
        "architecture": "conv1 Conv2d(1,32,3,p=1)-ReLU-AvgPool2d(2); conv2 Conv2d(32,64,3,p=1)-ReLU-AvgPool2d(2); "
                        "conv3 Conv2d(64,128,3,p=1)-ReLU-AvgPool2d(2); flatten NCHW; fc1 Linear(2048,128)-ReLU "
                        "(features); fc2 Linear(128,10) (logits)",
        "input": "float32 NCHW [N,1,32,32] in [-1,1]: 28x28 Fashion-MNIST /127.5-1, padded 2 px each side with -1",
        "classes": CLASSES,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "epochs": args.epochs, "batch": bs, "optimizer": f"Adam lr {args.cls_lr}, cosine decay to 0", "seed": SEED,
        "train_seconds": round(time.time() - t0, 1),
        "test_accuracy": round(acc, 5),
        "train_accuracy": round(train_acc, 5),
        "fd_train10k_vs_test10k": round(fd, 5),
        "fd_train10k_vs_test10k_note": "Frechet distance of the fc1 features (after ReLU), float64, covariance "
                                       "with N-1; train subset = torch.randperm(60000, generator seeded 1)[:10000]",
        "fd_test5k_vs_test5k": round(fd_half, 5),
        "test_features_mean": "test_features_mean.npy (float64 [128], all 10k test images)",
        "test_features_cov": "test_features_cov.npy (float64 [128,128], np.cov rowvar=False, N-1)",
        "check": {"x": "classifier_check_x.npy (first 4 test images, float32 [4,1,32,32])",
                  "features": "classifier_check_features.npy (float32 [4,128])",
                  "logits": "classifier_check_logits.npy (float32 [4,10])",
                  "labels": yte[:4].tolist(),
                  "logits_values": l4.numpy().round(5).tolist()},
    }
    with open(os.path.join(OUT, "classifier.json"), "w") as f:
        json.dump(info, f, indent=2)
    log(f"classifier: test accuracy {acc * 100:.2f}% (train {train_acc * 100:.2f}%), FD train10k vs test10k "
        f"{fd:.4f}, test5k vs test5k {fd_half:.4f}, {time.time() - t0:.0f}s")


# ------------------------------------------------------------------------------------------------- U-Net
def arch_config(name):
    """Candidate UNet2DModel configurations (all: 32x32, 1 channel, 11 class embeddings)."""
    base = dict(sample_size=32, in_channels=1, out_channels=1, num_class_embeds=NULL_CLASS + 1,
                attention_head_dim=32)
    archs = {
        # 3 levels 32/16/8, attention at 8x8 only (and in the mid block)
        "c32-lpb1-attn8": dict(block_out_channels=(32, 64, 128), layers_per_block=1, norm_num_groups=8,
                               down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c32-lpb1-noattn": dict(block_out_channels=(32, 64, 128), layers_per_block=1, norm_num_groups=8,
                                down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"), add_attention=False),
        "c32-lpb2-attn8": dict(block_out_channels=(32, 64, 128), layers_per_block=2, norm_num_groups=8,
                               down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c24-lpb2-attn8": dict(block_out_channels=(24, 48, 96), layers_per_block=2, norm_num_groups=8,
                               down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c32-64-64-lpb2-attn8": dict(block_out_channels=(32, 64, 64), layers_per_block=2, norm_num_groups=8,
                                     down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                                     up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c16-32-64-128-lpb1-attn4": dict(block_out_channels=(16, 32, 64, 128), layers_per_block=1,
                                         norm_num_groups=8,
                                         down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D",
                                                           "AttnDownBlock2D"),
                                         up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D",
                                                         "UpBlock2D")),
        "c16-lpb1-attn8": dict(block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
                               down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c16-lpb2-attn8": dict(block_out_channels=(16, 32, 64), layers_per_block=2, norm_num_groups=8,
                               down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c16-32-96-lpb1-attn8": dict(block_out_channels=(16, 32, 96), layers_per_block=1, norm_num_groups=8,
                                     down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                                     up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c16-48-96-lpb1-attn8": dict(block_out_channels=(16, 48, 96), layers_per_block=1, norm_num_groups=8,
                                     down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                                     up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
        "c16-32-64-128-lpb1-attn8-4": dict(block_out_channels=(16, 32, 64, 128), layers_per_block=1,
                                           norm_num_groups=8,
                                           down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D",
                                                             "AttnDownBlock2D"),
                                           up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D",
                                                           "UpBlock2D")),
        "c16-32-64-64-lpb2-attn4": dict(block_out_channels=(16, 32, 64, 64), layers_per_block=2,
                                        norm_num_groups=8,
                                        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D",
                                                          "AttnDownBlock2D"),
                                        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D",
                                                        "UpBlock2D")),
    }
    cfg = dict(base)
    cfg.update(archs[name])
    return cfg


ARCHS = ["c32-lpb1-attn8", "c32-lpb1-noattn", "c32-lpb2-attn8", "c24-lpb2-attn8", "c32-64-64-lpb2-attn8",
         "c16-32-64-128-lpb1-attn4", "c16-lpb1-attn8", "c16-lpb2-attn8", "c16-32-96-lpb1-attn8",
         "c16-48-96-lpb1-attn8", "c16-32-64-128-lpb1-attn8-4", "c16-32-64-64-lpb2-attn4"]


def make_unet(cfg):
    from diffusers import UNet2DModel
    return UNet2DModel(**cfg)


def make_scheduler(args):
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule=args.beta_schedule)


def count_macs(model, batch=1):
    """Multiply-accumulates of one forward pass per image: Conv2d and Linear by hooks, plus attention's
    QK^T and AV products (2 * N^2 * C per attention layer)."""
    from diffusers.models.attention_processor import Attention
    total = [0]
    hooks = []

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += out.numel() * k

    def lin_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    def attn_hook(m, inp, out):
        h = inp[0]
        if h.ndim == 4:
            b, c, hh, ww = h.shape
            n = hh * ww
        else:
            b, n, c = h.shape
        total[0] += 2 * b * n * n * c

    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(lin_hook))
        elif isinstance(mod, Attention):
            hooks.append(mod.register_forward_hook(attn_hook))
    with torch.inference_mode():
        model(torch.randn(batch, 1, 32, 32), torch.full((batch,), 500), class_labels=torch.zeros(batch, dtype=torch.long))
    for h in hooks:
        h.remove()
    return total[0] / batch


def forward_ms_per_image(model, batch=64, reps=5):
    x = torch.randn(batch, 1, 32, 32)
    t = torch.randint(0, 1000, (batch,))
    y = torch.randint(0, 11, (batch,))
    times = []
    with torch.inference_mode():
        model(x, t, class_labels=y)
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x, t, class_labels=y)
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2] / batch


class EMA:
    """EMA of the weights with warm-up: decay = min(max_decay, (1 + step) / (10 + step))."""

    def __init__(self, model, max_decay=0.999):
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.max_decay = max_decay
        self.step = 0

    @torch.no_grad()
    def update(self, model):
        self.step += 1
        d = min(self.max_decay, (1 + self.step) / (10 + self.step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def decay(self):
        return min(self.max_decay, (1 + self.step) / (10 + self.step))


def diffusion_loss(model, sched, x0, y, gen, p_uncond=P_UNCOND):
    b = x0.shape[0]
    t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    drop = torch.rand(b, generator=gen) < p_uncond
    y = torch.where(drop, torch.full_like(y, NULL_CLASS), y)
    xt = sched.add_noise(x0, noise, t)
    pred = model(xt, t, class_labels=y).sample
    return F.mse_loss(pred, noise)


class HeldOut:
    """A fixed evaluation set: 1024 test images with fixed timesteps, noise and labels (10% null)."""

    def __init__(self, sched, n=1024):
        xte, yte = load_split("test")
        g = torch.Generator().manual_seed(1234)
        self.x0 = xte[:n]
        self.t = torch.randint(0, 1000, (n,), generator=g)
        self.noise = torch.randn(self.x0.shape, generator=g)
        drop = torch.rand(n, generator=g) < P_UNCOND
        self.y = torch.where(drop, torch.full_like(yte[:n], NULL_CLASS), yte[:n])
        self.xt = sched.add_noise(self.x0, self.noise, self.t)

    @torch.inference_mode()
    def loss(self, model, bs=256):
        tot = 0.0
        for i in range(0, len(self.x0), bs):
            pred = model(self.xt[i:i + bs], self.t[i:i + bs], class_labels=self.y[i:i + bs]).sample
            tot += F.mse_loss(pred, self.noise[i:i + bs], reduction="sum").item()
        return tot / self.noise.numel()


def lr_factor(progress, step, warmup):
    w = min(1.0, (step + 1) / warmup)
    return w * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def run_compare(args):
    sched = make_scheduler(args)
    held = HeldOut(sched)
    xtr, ytr = load_split("train")
    log(f"== architecture comparison: batch {args.batch}, AdamW lr {args.lr} (warm-up {args.warmup} steps, then "
        f"constant), {args.compare_seconds:.0f} s of process CPU time each, one thread, seed {SEED}; held-out "
        f"loss on 1024 test images with fixed t/noise; forward = median ms/image at batch 64, inference mode")
    names = args.archs.split(",") if args.archs else ARCHS
    results = []
    for name in names:
        seed_all()
        model = make_unet(arch_config(name))
        params = sum(p.numel() for p in model.parameters())
        macs = count_macs(model)
        ms = forward_ms_per_image(model)
        line = f"{name:28s} params {params:9d}  {macs / 1e9:.4f} GMAC/img  fwd {ms:.2f} ms/img"
        if macs > args.max_gmac * 1e9 * 1.1 or args.cost_only:
            log(line + ("  (over budget, not trained)" if not args.cost_only else ""))
            results.append(dict(name=name, params=params, gmac=macs / 1e9, fwd_ms=ms))
            continue
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        gen = torch.Generator().manual_seed(SEED)
        model.train()
        c0 = time.process_time()
        w0 = time.time()
        step = 0
        losses = []
        while time.process_time() - c0 < args.compare_seconds:
            for gr in opt.param_groups:
                gr["lr"] = args.lr * min(1.0, (step + 1) / args.warmup)
            idx = torch.randint(0, len(xtr), (args.batch,), generator=gen)
            loss = diffusion_loss(model, sched, xtr[idx], ytr[idx], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        model.eval()
        hl = held.loss(model)
        r = dict(name=name, params=params, gmac=macs / 1e9, fwd_ms=ms, steps=step,
                 images_per_s=step * args.batch / (time.time() - w0),
                 train_loss_last100=float(np.mean(losses[-100:])), heldout_loss=hl)
        results.append(r)
        log(line + f"  steps {step:5d}  {r['images_per_s']:.0f} img/s  train loss(last100) "
                   f"{r['train_loss_last100']:.4f}  held-out loss {hl:.4f}")
    log("comparison json: " + json.dumps(results))


def run_train(args):
    seed_all()
    sched = make_scheduler(args)
    cfg = arch_config(args.arch)
    model = make_unet(cfg)
    params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model)
    ema = EMA(model, args.ema_decay)
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.999))
    xtr, ytr = load_split("train")
    held = HeldOut(sched)
    budget = args.minutes * 60.0
    mode = f"{args.steps} steps (step-based cosine)" if args.steps else f"{args.minutes} min of wall time " \
                                                                        f"(time-based cosine)"
    log(f"== diffusion training: arch {args.arch}, {params} parameters, {macs / 1e9:.4f} GMAC/img, {mode}, "
        f"batch {args.batch}, AdamW lr {args.lr} wd {args.weight_decay} warm-up {args.warmup} then cosine to 0, "
        f"EMA {args.ema_decay} (warm-up (1+n)/(10+n)), p_uncond {P_UNCOND}, DDPM {args.beta_schedule} "
        f"1e-4..0.02 x1000, eps-prediction, no flips, seed {SEED}")
    log("config: " + json.dumps(cfg))
    gen = torch.Generator().manual_seed(SEED)
    perm = torch.randperm(len(xtr), generator=gen)
    pos = 0
    t0 = time.time()
    step = 0
    hist = {"step": [], "loss": [], "elapsed": []}
    ema_loss = None
    win_t, win_step = t0, 0
    model.train()
    while True:
        elapsed = time.time() - t0
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1.0:
            break
        f = lr_factor(progress, step, args.warmup)
        for gr in opt.param_groups:
            gr["lr"] = args.lr * f
        if pos + args.batch > len(xtr):
            perm = torch.randperm(len(xtr), generator=gen)
            pos = 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        loss = diffusion_loss(model, sched, xtr[idx], ytr[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        step += 1
        lv = loss.item()
        ema_loss = lv if ema_loss is None else 0.99 * ema_loss + 0.01 * lv
        hist["step"].append(step)
        hist["loss"].append(lv)
        hist["elapsed"].append(round(time.time() - t0, 2))
        if step % 100 == 0:
            now = time.time()
            ips = (step - win_step) * args.batch / (now - win_t)
            win_t, win_step = now, step
            log(f"step {step:6d}  loss {lv:.4f}  ema_loss {ema_loss:.4f}  lr {args.lr * f:.2e}  "
                f"{ips:6.1f} img/s  epoch {step * args.batch / len(xtr):.2f}  elapsed {now - t0:7.1f}s")
        if step % 1000 == 0:
            torch.save({"model": model.state_dict(), "ema": ema.shadow, "step": step, "cfg": cfg}, CKPT)
    wall = time.time() - t0
    model.eval()
    raw_hl = held.loss(model)
    ema_model = make_unet(cfg)
    ema_model.load_state_dict(ema.shadow)
    ema_model.eval()
    ema_hl = held.loss(ema_model)
    torch.save({"model": model.state_dict(), "ema": ema.shadow, "step": step, "cfg": cfg}, CKPT)
    with open(HIST, "w") as fh:
        json.dump(hist, fh)
    summary = dict(arch=args.arch, params=params, gmac_per_image=macs / 1e9, steps=step, batch=args.batch,
                   images_seen=step * args.batch, epochs=step * args.batch / len(xtr), wall_s=round(wall, 1),
                   final_loss_ema100=float(np.mean(hist["loss"][-100:])), final_ema_loss=ema_loss,
                   heldout_loss_raw=raw_hl, heldout_loss_ema=ema_hl, ema_decay_final=ema.decay(),
                   beta_schedule=args.beta_schedule, lr=args.lr, seed=SEED)
    log(f"training done: {step} steps, {step * args.batch} images ({summary['epochs']:.2f} epochs), {wall:.0f} s; "
        f"final loss (mean of last 100) {summary['final_loss_ema100']:.4f}; held-out loss raw {raw_hl:.4f}, "
        f"EMA {ema_hl:.4f}")
    log("summary json: " + json.dumps(summary))
    export_unet(ema_model, sched)


def export_unet(ema_model, sched):
    d = os.path.join(OUT, "unet")
    os.makedirs(d, exist_ok=True)
    m16 = make_unet(dict(ema_model.config))
    m16.load_state_dict(ema_model.state_dict())
    m16.to(torch.float16).save_pretrained(d, safe_serialization=True)
    sched.save_pretrained(d)
    log(f"exported EMA weights (float16) and scheduler config to {os.path.relpath(d, ROOT)}")


# ------------------------------------------------------------------------------------------------ export
@torch.inference_mode()
def sample_cfg(model, sched_cfg, labels, steps=50, guidance=3.0, seed=SEED):
    from diffusers import DDIMScheduler
    ddim = DDIMScheduler.from_config(sched_cfg)
    ddim.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    x = torch.randn((n, 1, 32, 32), generator=g)
    null = torch.full_like(labels, NULL_CLASS)
    dtype = next(model.parameters()).dtype
    for t in ddim.timesteps:
        xin = torch.cat([x, x]).to(dtype)
        tt = torch.full((2 * n,), int(t))
        eps = model(xin, tt, class_labels=torch.cat([labels, null])).sample.float()
        e_c, e_u = eps.chunk(2)
        e = e_u + guidance * (e_c - e_u)
        x = ddim.step(e, t, x, eta=0.0).prev_sample
    return x


def run_export(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from diffusers import UNet2DModel, DDPMScheduler
    d = os.path.join(OUT, "unet")
    ck = torch.load(CKPT, weights_only=False)
    m32 = make_unet(ck["cfg"])
    m32.load_state_dict(ck["ema"])
    m32.eval()
    m16 = UNet2DModel.from_pretrained(d, torch_dtype=torch.float32)
    m16.eval()
    file_dtype = None
    from safetensors import safe_open
    with safe_open(os.path.join(d, "diffusion_pytorch_model.safetensors"), "pt") as fh:
        file_dtype = {str(fh.get_tensor(k).dtype) for k in fh.keys()}
    # clip_sample only changes sampling (not training): x0 clipping at every step ruins this small model's
    # samples (see README), so the exported config turns it off unless --clip-sample.
    sched = DDPMScheduler.from_config(DDPMScheduler.from_pretrained(d).config, clip_sample=args.clip_sample)
    sched.save_pretrained(d)
    log(f"scheduler_config.json re-saved with clip_sample={args.clip_sample}")
    labels = torch.arange(10).repeat_interleave(8)
    # one forward pass: F16 weights (upcast) vs F32 weights
    g = torch.Generator().manual_seed(SEED + 7)
    xin, tin = torch.randn((16, 1, 32, 32), generator=g), torch.randint(0, 1000, (16,), generator=g)
    yin = torch.arange(16) % 11
    with torch.inference_mode():
        e16 = m16(xin, tin, class_labels=yin).sample
        e32 = m32(xin, tin, class_labels=yin).sample
    log(f"F16 export check, one forward pass (16 inputs, random t and classes): max |eps16 - eps32| "
        f"{(e16 - e32).abs().max().item():.2e}, mean {(e16 - e32).abs().mean().item():.2e}")
    t0 = time.time()
    s16 = sample_cfg(m16, sched.config, labels, steps=50, guidance=args.guidance)
    dt = time.time() - t0
    s32 = sample_cfg(m32, sched.config, labels, steps=50, guidance=args.guidance)
    diff = (s16.clamp(-1, 1) - s32.clamp(-1, 1)).abs()
    q = torch.quantile(diff.flatten(), torch.tensor([0.5, 0.99, 0.999])).tolist()
    log(f"F16 export check: file dtypes {sorted(file_dtype)}; reloaded (upcast to float32) vs float32 EMA "
        f"weights, DDIM 50 steps guidance {args.guidance} clip_sample={args.clip_sample}, 80 samples clamped to "
        f"[-1,1]: max |diff| {diff.max().item():.2e}, mean {diff.mean().item():.2e}, median/99%/99.9% "
        f"{q[0]:.1e}/{q[1]:.1e}/{q[2]:.1e}; per-sample max > 1e-2 in {(diff.flatten(1).amax(1) > 1e-2).sum().item()}"
        f"/80 ({'OK' if diff.max().item() <= 1e-2 else 'ABOVE 1e-2'})")
    log(f"diffusers sampling of 80 images (160 with CFG) x 50 DDIM steps: {dt:.1f} s on one thread")
    # class fidelity with the classifier, if trained
    cpath = os.path.join(OUT, "classifier.safetensors")
    if os.path.exists(cpath):
        from safetensors.torch import load_file
        net = Classifier()
        net.load_state_dict(load_file(cpath))
        net.eval()
        variants = [("grid", s16)]
        alt = DDPMScheduler.from_config(sched.config, clip_sample=not args.clip_sample)
        variants.append((f"same, clip_sample={not args.clip_sample}",
                         sample_cfg(m16, alt.config, labels, steps=50, guidance=args.guidance)))
        for name, smp in variants:
            with torch.inference_mode():
                pred = net(smp.clamp(-1, 1)).argmax(1)
            acc = (pred == labels).float().mean().item()
            oor = (smp.abs() > 1.05).float().mean().item()
            log(f"classifier agreement with the asked class on the 80 samples ({name}): {acc * 100:.1f}%; "
                f"pixels with |x| > 1.05: {oor * 100:.1f}%")
            for c in range(10):
                log(f"  class {c} {CLASSES[c]:12s}: predicted {pred[c * 8:(c + 1) * 8].tolist()}")
    img = ((s16.clamp(-1, 1) + 1) / 2).numpy()[:, 0]
    grid = img.reshape(10, 8, 32, 32).transpose(0, 2, 1, 3).reshape(320, 256)
    fig, ax = plt.subplots(figsize=(5.2, 6.0), dpi=100)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([16 + 32 * i for i in range(10)])
    ax.set_yticklabels(CLASSES, fontsize=8)
    ax.set_xticks([])
    ax.set_title(f"diffusers DDIM 50 steps, guidance {args.guidance}, clip_sample={args.clip_sample}", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "diffusers_samples.png"))
    plt.close(fig)
    # loss curve
    with open(HIST) as fh:
        hist = json.load(fh)
    loss = np.array(hist["loss"])
    k = 200
    smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(hist["step"], loss, lw=0.3, alpha=0.35, label="raw (per batch)")
    ax.plot(hist["step"][k - 1:], smooth, lw=1.5, label=f"moving average ({k} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("ε-prediction MSE")
    ax.set_ylim(0, min(0.3, float(np.percentile(loss, 99.5)) * 1.2))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Fashion-MNIST class-conditional UNet2DModel")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "loss.png"))
    plt.close(fig)
    log("wrote diffusers_samples.png and loss.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--classifier", action="store_true")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--export", action="store_true")
    ap.add_argument("--archs", default="", help="comma-separated candidates for --compare")
    ap.add_argument("--cost-only", action="store_true", help="--compare: only MACs and forward time")
    ap.add_argument("--compare-seconds", type=float, default=150.0)
    ap.add_argument("--max-gmac", type=float, default=0.15)
    ap.add_argument("--arch", default="c32-lpb1-attn8")
    ap.add_argument("--minutes", type=float, default=50.0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema-decay", type=float, default=0.999)
    ap.add_argument("--beta-schedule", default="linear", choices=["linear", "squaredcos_cap_v2"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--cls-lr", type=float, default=2e-3)
    ap.add_argument("--cls-batch", type=int, default=64)
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--clip-sample", action="store_true", help="--export: keep DDIM/DDPM x0 clipping on")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    from diffusers.utils import logging as dlogging
    dlogging.set_verbosity_error()
    log(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  python3 tools/train_fashion_mnist.py {' '.join(sys.argv[1:])}  "
        f"(torch {torch.__version__}, threads {torch.get_num_threads()}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')})")
    if args.compare:
        run_compare(args)
    if args.classifier:
        run_classifier(args)
    if args.train:
        run_train(args)
    if args.export:
        run_export(args)


if __name__ == "__main__":
    main()
