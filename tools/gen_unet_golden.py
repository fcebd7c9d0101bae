#!/usr/bin/env python3
"""Golden parity files for the reference U-Net (diffusers UNet2DModel), written by diffusers itself:

    tests/golden/unet/<case>/config.json                         UNet2DModel.save_pretrained(dir)
    tests/golden/unet/<case>/diffusion_pytorch_model.safetensors  (or -0000k-of-0000n shards + .index.json)
    tests/golden/unet/<case>/scheduler_config.json               a diffusers scheduler's save_pretrained(dir)
    tests/golden/unet/<case>/x.npy      float32 [B, C, H, W]    the input sample
    tests/golden/unet/<case>/t.npy      float64 [B]             the timesteps passed (one per sample)
    tests/golden/unet/<case>/class.npy  int64 [B]               class labels (class-conditional cases;
                                        float32 [B, time_embed_dim] for class_embed_type "identity")
    tests/golden/unet/<case>/out.npy    float32 [B, C_out, H, W] model(x, t, class_labels).sample
    tests/golden/unet/<case>/case.json  what the case exercises, tolerances, float32-vs-float64 spread

    tests/golden/unet/pipeline/        DDPMPipeline / DDIMPipeline runs on the cifar10_tiny folder, with the
                                       recorded initial and per-step noise and specs for `diffuse sample`

The reference output is computed in float32 on CPU under torch.inference_mode(). Every parameter is set to
seeded random values (nothing zero-initialised, so every tensor matters); half-precision cases save the
weights in float16 / bfloat16 and compute the reference in float32 from the rounded weights.

Run from the repository root:
    python3 tools/gen_unet_golden.py            all small cases and the pipeline check
    python3 tools/gen_unet_golden.py --large    google/ddpm-cifar10-32's exact config (35,746,307 parameters,
                                                random weights) into tests/golden/unet-large/cifar10/ (git-ignored)
Deterministic: running it twice writes identical files.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import torch

torch.set_num_threads(1)

import diffusers  # noqa: E402
from diffusers import (  # noqa: E402
    DDIMPipeline,
    DDIMScheduler,
    DDPMPipeline,
    DDPMScheduler,
    ScoreSdeVeScheduler,
    UNet2DModel,
)
from diffusers.utils import logging as dlogging  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

dlogging.set_verbosity_error()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "unet")
OUT_LARGE = os.path.join(ROOT, "tests", "golden", "unet-large")

# google/ddpm-cifar10-32's config.json (and scheduler_config.json), as on the Hub
CIFAR10 = {
    "sample_size": 32, "in_channels": 3, "out_channels": 3, "center_input_sample": False,
    "time_embedding_type": "positional", "flip_sin_to_cos": False, "freq_shift": 1,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [128, 256, 256, 256], "layers_per_block": 2, "mid_block_scale_factor": 1,
    "downsample_padding": 0, "act_fn": "silu", "attention_head_dim": None, "norm_num_groups": 32,
    "norm_eps": 1e-6,
}
CIFAR10_SCHEDULER = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 0.0001,
                     "beta_end": 0.02, "variance_type": "fixed_large", "clip_sample": True}
CIFAR10_PARAMS = 35_746_307

# google/ddpm-celebahq-256 (same as ddpm-cat-256 / ddpm-church-256): six levels, attention at 16x16
CELEBAHQ = dict(CIFAR10, sample_size=256, block_out_channels=[128, 128, 256, 256, 512, 512],
                down_block_types=["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
                up_block_types=["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4)


def small(**kw):
    """A two-level model with attention everywhere unless overridden."""
    cfg = {"sample_size": 8, "in_channels": 3, "out_channels": 3, "block_out_channels": [8, 16],
           "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
           "layers_per_block": 1, "norm_num_groups": 4, "attention_head_dim": None}
    cfg.update(kw)
    return cfg


def ddpm(**kw):
    return (DDPMScheduler, kw)


# Each case: config (UNet2DModel kwargs), scheduler (class, kwargs), batch, timesteps, optional class labels,
# save options (dtype, max_shard_size, legacy attention names), seed.
CASES = [
    dict(name="cifar10_tiny",
         description="google/ddpm-cifar10-32's exact config (DownBlock2D/AttnDownBlock2D, UpBlock2D/AttnUpBlock2D, "
                     "layers_per_block 2, attention_head_dim null = one head of full width, norm_eps 1e-6, "
                     "downsample_padding 0 (pad right/bottom), flip_sin_to_cos false, freq_shift 1, silu, positional) "
                     "with channels scaled down to [8,16,16,16], norm_num_groups 4, 16x16; its scheduler config "
                     "(linear, fixed_large, clip_sample); the pipeline check runs on this folder",
         config=dict(CIFAR10, sample_size=16, block_out_channels=[8, 16, 16, 16], norm_num_groups=4),
         scheduler=ddpm(**CIFAR10_SCHEDULER), batch=3, t=[0, 421, 999]),
    dict(name="celebahq_style",
         description="google/ddpm-celebahq-256's six-level block list (attention only at the fifth level: "
                     "AttnDownBlock2D / the second up block AttnUpBlock2D) with channels [4,4,8,8,8,8], "
                     "norm_num_groups 2, 32x32 (1x1 at the bottom); DDPM fixed_small, scaled_linear",
         config=dict(CELEBAHQ, sample_size=32, block_out_channels=[4, 4, 8, 8, 8, 8], norm_num_groups=2),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                        variance_type="fixed_small", clip_sample=True),
         batch=2, t=[3, 640]),
    dict(name="multihead",
         description="attention_head_dim 4 (2 heads of 4 channels at width 8, 4 at width 16), attn_norm_num_groups 2 "
                     "(mid-block attention GroupNorm) != norm_num_groups 4, add_attention true, defaults "
                     "flip_sin_to_cos true / freq_shift 0, norm_eps 1e-5, fractional timesteps; "
                     "DDPM v_prediction, squaredcos_cap_v2",
         config=small(attention_head_dim=4, attn_norm_num_groups=2, add_attention=True, norm_eps=1e-5,
                      flip_sin_to_cos=True, freq_shift=0, layers_per_block=2),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
                        variance_type="fixed_small", clip_sample=False),
         batch=3, t=[17.5, 250.25, 998.0]),
    dict(name="scale_shift",
         description="resnet_time_scale_shift scale_shift (time_emb_proj to 2C: norm2(h)*(1+scale)+shift), "
                     "time_embedding_dim 24 (not 4*C0 = 32), mid_block_scale_factor 1.4142 (mid resnets and mid attention "
                     "divide by it), center_input_sample true (2x-1), act_fn mish, downsample_padding 1; the mid "
                     "attention has NO GroupNorm (attn_norm_num_groups null with scale_shift); DDPM sample "
                     "prediction, sigmoid betas",
         config=small(resnet_time_scale_shift="scale_shift", time_embedding_dim=24, mid_block_scale_factor=1.4142,
                      center_input_sample=True, act_fn="mish", downsample_padding=1, freq_shift=1),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="sigmoid", prediction_type="sample",
                        variance_type="fixed_large", clip_sample=False),
         batch=2, t=[11.0, 730.5]),
    dict(name="class_cond",
         description="num_class_embeds 11 with class_embed_type null: nn.Embedding(11, time_embed_dim) added to the "
                     "time embedding; class.npy int64",
         config=small(num_class_embeds=11),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=3, t=[100, 200, 300], classes=[0, 10, 4]),
    dict(name="class_timestep",
         description="class_embed_type timestep: the labels go through the same sinusoidal time_proj, then their own "
                     "TimestepEmbedding (class_embedding.linear_1/linear_2, SiLU), summed with the time embedding",
         config=small(class_embed_type="timestep", flip_sin_to_cos=False, freq_shift=1),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[40, 900], classes=[3, 7]),
    dict(name="class_identity",
         description="class_embed_type identity: class_labels is a float [B, time_embed_dim] tensor added to the time "
                     "embedding as is (class.npy float32 [B, 32]); no class weights",
         config=small(class_embed_type="identity"),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[60, 610], classes="identity"),
    dict(name="fourier",
         description="time_embedding_type fourier: GaussianFourierProjection(C0, scale 16, log=True, "
                     "flip_sin_to_cos=False regardless of the config): [sin, cos](log(t)*W*2*pi), input width 2*C0; "
                     "the output is divided by t; sigma-like t; config flip_sin_to_cos true is ignored by it; "
                     "ScoreSdeVeScheduler config",
         config=small(time_embedding_type="fourier", flip_sin_to_cos=True),
         scheduler=(ScoreSdeVeScheduler, dict(num_train_timesteps=2000, sigma_min=0.01, sigma_max=50.0)),
         batch=3, t=[0.05, 0.37, 2.5]),
    dict(name="learned",
         description="time_embedding_type learned: time_proj is nn.Embedding(num_train_timesteps 50, C0) indexed by "
                     "the integer timestep (passed as int64); DDIM scheduler config with 50 train steps",
         config=small(time_embedding_type="learned", num_train_timesteps=50),
         scheduler=(DDIMScheduler, dict(num_train_timesteps=50, beta_schedule="linear", beta_start=0.001,
                                        beta_end=0.2, clip_sample=False)),
         batch=2, t=[0, 37], t_long=True),
    dict(name="resnet_sampling",
         description="ResnetDownsampleBlock2D / ResnetUpsampleBlock2D (down/upsampling by a ResnetBlock2D with "
                     "down=True: avg_pool2d 2x2 / up=True: nearest x2, applied to both the shortcut and the main "
                     "branch after norm1+act) and AttnDownBlock2D / AttnUpBlock2D with downsample_type resnet / "
                     "upsample_type resnet (same resnet samplers; DownBlock2D / UpBlock2D ignore down/upsample_type); "
                     "add_attention false (mid block = two resnets); "
                     "three levels [8,8,16]",
         config=small(block_out_channels=[8, 8, 16],
                      down_block_types=["ResnetDownsampleBlock2D", "AttnDownBlock2D", "DownBlock2D"],
                      up_block_types=["ResnetUpsampleBlock2D", "AttnUpBlock2D", "UpBlock2D"],
                      downsample_type="resnet", upsample_type="resnet", add_attention=False),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear", variance_type="fixed_small_log"),
         batch=2, t=[9, 333]),
    dict(name="no_mid",
         description="mid_block_type null (no mid block: the last down block's output goes straight to the up "
                     "blocks) and act_fn gelu (exact erf GELU in the resnets; the time MLP and conv_act stay SiLU)",
         config=small(mid_block_type=None, act_fn="gelu"),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[12, 812]),
    dict(name="legacy_names",
         description="the safetensors uses the old diffusers AttentionBlock names (group_norm, query, key, value, "
                     "proj_attn; nn.Linear [C, C] weights) that early checkpoints such as google/ddpm-cifar10-32 have; "
                     "diffusers renames them on load (_fix_state_dict_keys_on_load) to to_q/to_k/to_v/to_out.0",
         config=small(layers_per_block=1),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[77, 777], legacy="linear"),
    dict(name="legacy_conv",
         description="legacy names (query/key/value/proj_attn) with the projection weights stored as 1x1 convs "
                     "[C, C, 1, 1]; diffusers' own loader rejects the 4-D shape, a loader must squeeze them",
         config=small(layers_per_block=1),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[78, 778], legacy="conv"),
    dict(name="f16",
         description="weights stored as float16 (model.to(float16).save_pretrained); reference in float32 from the "
                     "rounded weights",
         config=small(), scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[20, 620], dtype=torch.float16),
    dict(name="bf16",
         description="weights stored as bfloat16; reference in float32 from the rounded weights",
         config=small(), scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[21, 621], dtype=torch.bfloat16),
    dict(name="sharded",
         description="save_pretrained with max_shard_size 64KB: diffusion_pytorch_model-0000k-of-0000n.safetensors "
                     "shards + diffusion_pytorch_model.safetensors.index.json (weight_map)",
         config=small(), scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear"),
         batch=2, t=[22, 622], max_shard_size="64KB"),
    dict(name="out_channels",
         description="in_channels 1, out_channels 2 (learned_range variance channels), non-square 8x16 input "
                     "(sample_size [8, 16]), layers_per_block 1, act_fn relu; DDPM learned_range",
         config=small(in_channels=1, out_channels=2, sample_size=[8, 16], layers_per_block=1, act_fn="relu"),
         scheduler=ddpm(num_train_timesteps=1000, beta_schedule="linear", variance_type="learned_range"),
         batch=2, t=[1, 501]),
]


# ----------------------------------------------------------------------------------------------------------


def randomize(model, seed):
    """Every parameter random: Linear/Conv weights N(0, 1/fan_in), biases 0.1 N(0,1), GroupNorm weight 1 + 0.1 N,
    bias 0.1 N, embeddings N(0, 1), the Fourier projection N(0, 1) * 16 (its constructor's scale)."""
    g = torch.Generator().manual_seed(seed)
    kinds = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            kinds[f"{mname}.{pname}" if mname else pname] = type(mod).__name__
    with torch.no_grad():
        for name, p in model.named_parameters():
            kind = kinds[name]
            z = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if kind == "GroupNorm":
                v = 1 + 0.1 * z if name.endswith("weight") else 0.1 * z
            elif kind == "Embedding":
                v = z
            elif kind == "GaussianFourierProjection":
                v = 16 * z
            elif name.endswith("bias"):
                v = 0.1 * z
            else:
                fan_in = int(np.prod(p.shape[1:]))
                v = z / np.sqrt(fan_in)
            p.copy_(v)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def folder_bytes(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def legacy_rename(path, conv):
    """Rewrite a saved diffusion_pytorch_model.safetensors with the pre-0.15 diffusers attention names."""
    sd = load_file(path)
    out = {}
    ren = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    for k, v in sd.items():
        nk = k
        if ".attentions." in k:
            for new, old in ren.items():
                tag = f".{new}."
                if tag in k:
                    nk = k.replace(tag, f".{old}.")
                    if conv and k.endswith(".weight"):
                        v = v.reshape(*v.shape, 1, 1)
        out[nk] = v.contiguous()
    save_file(out, path, metadata={"format": "pt"})
    return sorted(set(out) - set(sd))


def forward(model, x, t, classes, t_long=False):
    tt = torch.from_numpy(t).long() if t_long else torch.from_numpy(t).to(model.dtype)
    cl = None if classes is None else torch.from_numpy(classes)
    if cl is not None and cl.is_floating_point():
        cl = cl.to(model.dtype)
    with torch.inference_mode():
        return model(torch.from_numpy(x).to(model.dtype), tt, class_labels=cl).sample


def write_case(c, root=OUT, seed=None):
    name = c["name"]
    d = os.path.join(root, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    seed = seed if seed is not None else int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    torch.manual_seed(seed)
    model = UNet2DModel(**c["config"]).eval()
    randomize(model, seed)
    dtype = c.get("dtype")
    if dtype is not None:  # round the weights to the storage dtype, compute in float32 from the rounded values
        model = model.to(dtype)
        model.save_pretrained(d)
        model = model.to(torch.float32)
    else:
        kw = {"max_shard_size": c["max_shard_size"]} if "max_shard_size" in c else {}
        model.save_pretrained(d, **kw)
    renamed = []
    if c.get("legacy"):
        renamed = legacy_rename(os.path.join(d, "diffusion_pytorch_model.safetensors"), c["legacy"] == "conv")
    sched_cls, sched_kw = c["scheduler"]
    sched_cls(**sched_kw).save_pretrained(d)

    # inputs
    cfg = model.config
    ss = cfg.sample_size
    h, w = (ss, ss) if isinstance(ss, int) else tuple(ss)
    B = c["batch"]
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(B, cfg.in_channels, h, w, generator=g).numpy()
    t = np.asarray(c["t"], dtype=np.float64)
    assert len(t) == B and len(set(t.tolist())) == B
    classes = None
    if c.get("classes") == "identity":
        temb = cfg.time_embedding_dim or cfg.block_out_channels[0] * 4
        classes = torch.randn(B, temb, generator=g).numpy()
    elif c.get("classes") is not None:
        classes = np.asarray(c["classes"], dtype=np.int64)
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "t.npy"), t)
    if classes is not None:
        np.save(os.path.join(d, "class.npy"), classes)

    out = forward(model, x, t, classes, c.get("t_long", False)).numpy()
    assert out.dtype == np.float32 and out.shape == (B, cfg.out_channels, h, w) and np.isfinite(out).all()
    np.save(os.path.join(d, "out.npy"), out)

    # the same model in float64: how far float32 itself is from the exact forward (guides the C++ tolerance)
    m64 = UNet2DModel(**c["config"]).eval()
    m64.load_state_dict(model.state_dict())
    m64 = m64.double()
    try:
        out64 = forward(m64, x, t, classes, c.get("t_long", False)).numpy()
        err = np.abs(out.astype(np.float64) - out64)
        spread = {"max_abs": float(err.max()), "max_rel": float((err / np.maximum(np.abs(out64), 1e-3)).max()),
                  "max_abs_out": float(np.abs(out64).max())}
    except RuntimeError as e:  # class_embed_type "timestep" feeds float32 time_proj output to float64 layers
        spread = {"max_abs": None, "max_rel": None, "max_abs_out": float(np.abs(out).max()),
                  "note": "float64 forward fails in diffusers: " + str(e).split("\n")[0][:100]}

    # loading the folder back with diffusers gives the same numbers (the legacy conv shapes it rejects)
    loaded = "n/a"
    try:
        m2 = UNet2DModel.from_pretrained(d, torch_dtype=torch.float32).eval()
        out2 = forward(m2, x, t, classes, c.get("t_long", False)).numpy()
        loaded = "identical" if np.array_equal(out2, out) else f"max abs diff {np.abs(out2 - out).max():.3g}"
    except Exception as e:  # noqa: BLE001
        lines = [ln.strip() for ln in str(e).split("\n") if ln.strip()]
        loaded = "rejected: " + next((ln for ln in lines if "mismatch" in ln), lines[0])[:200]

    # the Fourier output is divided by t: absolute errors grow by 1/t
    atol = 1e-5 / min(1.0, float(t.min())) if cfg.time_embedding_type == "fourier" else 1e-5
    meta = {"description": c["description"], "rtol": 1e-5, "atol": atol,
            "parameters": n_params(model), "batch": B,
            "weights_dtype": str(dtype).replace("torch.", "") if dtype is not None else "float32",
            "timestep_dtype": "int64" if c.get("t_long") else "float32",
            "float32_vs_float64": spread, "diffusers_from_pretrained": loaded}
    if renamed:
        meta["legacy_tensor_names"] = renamed
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{name:16s} params {n_params(model):9,d}  bytes {folder_bytes(d):9,d}  |out|max {spread['max_abs_out']:.3g}"
          f"  f32-f64 max abs {spread['max_abs'] or float('nan'):.2g}  from_pretrained: {loaded}")
    return d


# ----------------------------------------------------------------------------------------------------------
# Pipeline check: DDPMPipeline (20 steps) and DDIMPipeline (eta 0 / 0.5, 10 steps) on the cifar10_tiny folder


class NoiseRecorder:
    """Wraps randn_tensor in the pipeline and scheduler modules and records every draw in call order."""

    def __init__(self, modules):
        self.modules = modules
        self.draws = []

    def __enter__(self):
        self.saved = [m.randn_tensor for m in self.modules]
        for m, orig in zip(self.modules, self.saved):
            def wrapped(*a, _orig=orig, _tag=m.__name__.rsplit(".", 1)[-1], **k):
                r = _orig(*a, **k)
                self.draws.append((_tag, r.clone()))
                return r
            m.randn_tensor = wrapped
        return self

    def __exit__(self, *exc):
        for m, orig in zip(self.modules, self.saved):
            m.randn_tensor = orig


def schedule_block(cfg):
    return {k: cfg[k] for k in ("beta_schedule", "num_train_timesteps", "beta_start", "beta_end",
                                "rescale_betas_zero_snr", "timestep_spacing", "steps_offset")}


def pipeline_check(model_dir):
    import diffusers.pipelines.ddim.pipeline_ddim as pddim
    import diffusers.pipelines.ddpm.pipeline_ddpm as pddpm
    import diffusers.schedulers.scheduling_ddim as sddim
    import diffusers.schedulers.scheduling_ddpm as sddpm

    d = os.path.join(OUT, "pipeline")
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    rel = os.path.relpath(model_dir, d)
    unet = UNet2DModel.from_pretrained(model_dir).eval()
    ddpm_sched = DDPMScheduler.from_pretrained(model_dir)
    B = 2
    shape = [B, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size]
    runs = [("ddpm", 20, None, 123), ("ddim_eta0", 10, 0.0, 124), ("ddim_eta05", 10, 0.5, 125)]
    for name, steps, eta, seed in runs:
        if eta is None:
            pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler.from_config(ddpm_sched.config))
            mods = [pddpm, sddpm]
        else:
            pipe = DDIMPipeline(unet=unet, scheduler=ddpm_sched)  # DDIMPipeline converts: DDIMScheduler.from_config
            mods = [pddim, sddim]
        pipe.set_progress_bar_config(disable=True)
        finals = []
        orig_step = pipe.scheduler.step

        def step(*a, **k):
            r = orig_step(*a, **k)
            finals.append(r.prev_sample.clone())
            return r
        pipe.scheduler.step = step
        kw = {} if eta is None else {"eta": eta}
        with NoiseRecorder(mods) as rec, torch.inference_mode():
            images = pipe(batch_size=B, generator=torch.Generator().manual_seed(seed), num_inference_steps=steps,
                          output_type="np", **kw).images
        pipe.scheduler.step = orig_step
        final = finals[-1]
        assert rec.draws[0][0].startswith("pipeline_")
        init = rec.draws[0][1]
        step_draws = [r for tag, r in rec.draws[1:]]
        sched = pipe.scheduler
        timesteps = sched.timesteps.tolist()
        # draw k = step k; a step that draws nothing (DDPM at t = 0, DDIM with eta = 0) gets zeros
        noise = torch.zeros(steps, *shape)
        if eta is None:
            drawing = [k for k, t in enumerate(timesteps) if t > 0]
        else:
            drawing = list(range(steps)) if eta > 0 else []
        assert len(drawing) == len(step_draws), (len(drawing), len(step_draws))
        for k, r in zip(drawing, step_draws):
            noise[k] = r
        # replay: the same loop by hand with the recorded noise gives the same bits
        x = init.clone()
        replay_sched = type(sched).from_config(sched.config)
        replay_sched.set_timesteps(steps)
        it = iter(noise[k] for k in drawing)
        with torch.inference_mode():
            for k, t in enumerate(replay_sched.timesteps):
                eps = unet(x, t).sample
                if eta is None:
                    sddpm.randn_tensor = lambda *a, **kk: next(it)
                    try:
                        x = replay_sched.step(eps, t, x).prev_sample
                    finally:
                        sddpm.randn_tensor = rec.saved[1]
                else:
                    x = replay_sched.step(eps, t, x, eta=eta,
                                          variance_noise=noise[k] if eta > 0 else None).prev_sample
        assert torch.equal(x, final), f"{name}: replay differs by {(x - final).abs().max()}"
        post = (final / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(post, images), f"{name}: postprocessing differs"

        np.save(os.path.join(d, f"{name}_init.npy"), init.numpy().astype(np.float32))
        np.save(os.path.join(d, f"{name}_expected.npy"), final.numpy().astype(np.float32))
        np.save(os.path.join(d, f"{name}_output_np.npy"), images.astype(np.float32))
        cfg = dict(sched.config)
        opts = {"clip_sample": cfg["clip_sample"], "clip_sample_range": cfg["clip_sample_range"],
                "thresholding": cfg["thresholding"], "dynamic_thresholding_ratio": cfg["dynamic_thresholding_ratio"],
                "sample_max_value": cfg["sample_max_value"]}
        if eta is None:
            opts = {"variance_type": cfg["variance_type"], **opts}
            ref = "diffusers DDPMPipeline"
        else:
            opts.update({"eta": eta, "use_clipped_model_output": False, "set_alpha_to_one": cfg["set_alpha_to_one"],
                         "prev_timestep": "fixed_stride"})
            ref = f"diffusers DDIMPipeline (eta {eta}, prev timestep t - T//N)"
        spec = {"sampler": "ddpm" if eta is None else "ddim", "dtype": "float32", "shape": shape,
                "num_inference_steps": steps, "schedule": schedule_block(cfg),
                "denoiser": {"type": "unet2d", "path": rel}, "options": opts,
                "init_noise": f"{name}_init.npy"}
        if drawing:
            np.save(os.path.join(d, f"{name}_noise.npy"), noise.numpy().astype(np.float32))
            spec["step_noise"] = f"{name}_noise.npy"
        spec["test"] = {"expected": f"{name}_expected.npy", "rtol": 1e-4, "atol": 1e-4, "reference": ref}
        with open(os.path.join(d, f"{name}.json"), "w") as f:
            json.dump(spec, f, indent=1)
            f.write("\n")
        print(f"pipeline {name:10s} steps {steps:2d}  timesteps {timesteps[0]}..{timesteps[-1]}  noise draws "
              f"{len(step_draws)} (steps {drawing[0] if drawing else '-'}..{drawing[-1] if drawing else '-'})  "
              f"replay identical  |final|max {final.abs().max():.3f}")
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write(
            "# Pipeline parity on ../cifar10_tiny\n\n"
            "Written by tools/gen_unet_golden.py. Per run NAME (ddpm: DDPMPipeline, 20 steps; ddim_eta0 / ddim_eta05:\n"
            "DDIMPipeline, 10 steps, eta 0 / 0.5), seeded torch.Generator, output_type=\"np\":\n\n"
            "- `NAME.json`: the sampling spec for `diffuse sample` (docs/cli.md), denoiser `unet2d` on the folder\n"
            "- `NAME_init.npy`: float32 [B, C, H, W], the pipeline's initial randn_tensor draw\n"
            "- `NAME_noise.npy`: float32 [steps, B, C, H, W], draw k = the variance noise of step k; steps that draw\n"
            "  nothing hold zeros (DDPM's last step, t = 0); absent for eta 0\n"
            "- `NAME_expected.npy`: float32 [B, C, H, W], the last prev_sample (before postprocessing, [-1, 1] scale)\n"
            "- `NAME_output_np.npy`: float32 [B, H, W, C], the pipeline's output: (x / 2 + 0.5).clamp(0, 1), NHWC\n\n"
            "The generator replays each loop by hand with the recorded noise and checks bit equality.\n")


# ----------------------------------------------------------------------------------------------------------


def large():
    c = dict(name="cifar10", description="google/ddpm-cifar10-32's exact config (random weights), 32x32, batch 2",
             config=dict(CIFAR10), scheduler=ddpm(**CIFAR10_SCHEDULER), batch=2, t=[10, 500])
    d = write_case(c, root=OUT_LARGE, seed=32)
    n = n_params(UNet2DModel.from_pretrained(d))
    print(f"google/ddpm-cifar10-32 config: {n:,d} parameters (expected {CIFAR10_PARAMS:,d})")
    assert n == CIFAR10_PARAMS


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", action="store_true", help="write the full-size cifar10 folder (git-ignored)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}")
    if args.large:
        large()
        return
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    for c in CASES:
        write_case(c)
    pipeline_check(os.path.join(OUT, "cifar10_tiny"))
    total = folder_bytes(OUT)
    print(f"total {total:,d} bytes under {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
