#!/usr/bin/env python3
"""Golden values for diffuse's losses and metrics tests.

Run from the repository root:  python3 tools/gen_metrics_golden.py
Writes small float64 .npy files into tests/golden/losses/ and tests/golden/metrics/.

References (re-implemented here with torch / numpy / scipy, formulas as in the original code):
  * improved-diffusion (Nichol & Dhariwal 2021): normal_kl, approx_standard_normal_cdf,
    discretized_gaussian_log_likelihood, _vb_terms_bpd and the hybrid loss with learned_range
    variance; gradients from torch autograd.
  * score_sde (Song et al. 2021): get_sde_loss_fn for VP / sub-VP / VE, reduce_mean and likelihood
    weighting.
  * scipy.linalg.sqrtm for the Frechet distance; numpy for MMD and sliced Wasserstein.
"""
import os
import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
torch.set_default_dtype(torch.float64)


def save(area, name, arr):
    d = os.path.join(ROOT, area)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(np.asarray(arr, dtype=np.float64)))


# ---------------------------------------------------------------- improved-diffusion formulas
def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + ((mean1 - mean2) ** 2) * torch.exp(-logvar2))


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    plus_in = inv_stdv * (centered_x + 1.0 / 255.0)
    cdf_plus = approx_standard_normal_cdf(plus_in)
    min_in = inv_stdv * (centered_x - 1.0 / 255.0)
    cdf_min = approx_standard_normal_cdf(min_in)
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))))


class Diffusion:
    def __init__(self, betas):
        self.betas = betas
        self.T = len(betas)
        alphas = 1.0 - betas
        self.ac = np.cumprod(alphas)
        self.acp = np.append(1.0, self.ac[:-1])
        self.post_var = betas * (1.0 - self.acp) / (1.0 - self.ac)
        self.post_logvar_clipped = np.log(np.append(self.post_var[1], self.post_var[1:]))
        self.c1 = betas * np.sqrt(self.acp) / (1.0 - self.ac)
        self.c2 = (1.0 - self.acp) * np.sqrt(alphas) / (1.0 - self.ac)
        self.sra = np.sqrt(1.0 / self.ac)
        self.srm1 = np.sqrt(1.0 / self.ac - 1)

    def g(self, arr, t):
        return torch.tensor(arr)[t][:, None]

    def vb_bpd(self, out, x0, xt, t):
        D = x0.shape[1]
        eps, v = out[:, :D], out[:, D:]
        min_log = self.g(self.post_logvar_clipped, t)
        max_log = self.g(np.log(self.betas), t)
        frac = (v + 1) / 2
        logvar = frac * max_log + (1 - frac) * min_log
        pred_x0 = self.g(self.sra, t) * xt - self.g(self.srm1, t) * eps
        mean = self.g(self.c1, t) * pred_x0 + self.g(self.c2, t) * xt
        true_mean = self.g(self.c1, t) * x0 + self.g(self.c2, t) * xt
        kl = normal_kl(true_mean, min_log, mean, logvar).mean(1) / np.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar).mean(1) / np.log(2.0)
        return torch.where(t == 0, nll, kl)


def gen_losses():
    rng = np.random.default_rng(1234)
    # element-wise KL and discretized log-likelihood
    n = 64
    m1, lv1, m2, lv2 = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    kl = normal_kl(*(torch.tensor(a) for a in (m1, lv1, m2, lv2))).numpy()
    save("losses", "normal_kl", np.stack([m1, lv1, m2, lv2, kl]))
    x = np.concatenate([rng.uniform(-1, 1, n - 4), [-1.0, 1.0, -0.9995, 0.9995]])
    mean = rng.normal(size=n) * 0.5
    log_scale = rng.uniform(-6, 0.5, n)
    ll = discretized_gaussian_log_likelihood(torch.tensor(x), torch.tensor(mean), torch.tensor(log_scale)).numpy()
    save("losses", "dgll", np.stack([x, mean, log_scale, ll]))

    # hybrid loss with learned-range variance, T = 20 linear betas, D = 6, B = 8 (t = 0 included)
    T, D, B = 20, 6, 8
    betas = np.linspace(1e-3, 0.2, T)
    dif = Diffusion(betas)
    t = np.array([0, 1, 5, 19, 0, 7, 12, 3])
    x0 = np.clip(rng.normal(size=(B, D)) * 0.6, -1, 1)
    x0[0, 0], x0[4, 1], x0[4, 2] = -1.0, 1.0, -1.0
    noise = rng.normal(size=(B, D))
    xt = np.sqrt(dif.ac[t])[:, None] * x0 + np.sqrt(1 - dif.ac[t])[:, None] * noise
    out = np.concatenate([noise + 0.3 * rng.normal(size=(B, D)), rng.uniform(-1, 1, size=(B, D))], axis=1)
    vb_scale = T / 1000.0
    tt = torch.tensor(t)
    o = torch.tensor(out, requires_grad=True)
    D_ = D
    frozen = torch.cat([o[:, :D_].detach(), o[:, D_:]], dim=1)
    vb = dif.vb_bpd(frozen, torch.tensor(x0), torch.tensor(xt), tt)
    mse = ((torch.tensor(noise) - o[:, :D_]) ** 2).mean(1)
    per = mse + vb_scale * vb
    loss = per.mean()
    loss.backward()
    vb_full = dif.vb_bpd(torch.tensor(out), torch.tensor(x0), torch.tensor(xt), tt).detach().numpy()
    save("losses", "hybrid_inputs", np.concatenate([out, x0, xt, noise, t[:, None]], axis=1))
    save("losses", "hybrid_betas", betas)
    save("losses", "hybrid_outputs", np.concatenate([per.detach().numpy()[:, None], vb_full[:, None],
                                                     o.grad.numpy()], axis=1))
    save("losses", "hybrid_loss", [loss.item(), vb_scale])

    # score_sde DSM losses: columns of the result: 4 variants (reduce_mean, likelihood_weighting)
    B, D = 5, 7
    x0 = rng.normal(size=(B, D))
    z = rng.normal(size=(B, D))
    score = rng.normal(size=(B, D)) * 2
    tcont = rng.uniform(1e-5, 1.0, B)
    rows = []
    for kind in ("vp", "subvp", "ve"):
        tq = torch.tensor(tcont)
        if kind in ("vp", "subvp"):
            b0, b1 = 0.1, 20.0
            lmc = -0.25 * tq ** 2 * (b1 - b0) - 0.5 * tq * b0
            mean_c = torch.exp(lmc)
            std = torch.sqrt(1.0 - torch.exp(2.0 * lmc)) if kind == "vp" else 1.0 - torch.exp(2.0 * lmc)
            beta_t = b0 + tq * (b1 - b0)
            g2 = beta_t if kind == "vp" else beta_t * (1 - torch.exp(-2 * b0 * tq - (b1 - b0) * tq ** 2))
        else:
            smin, smax = 0.01, 50.0
            std = smin * (smax / smin) ** tq
            mean_c = torch.ones_like(tq)
            g2 = (std * np.sqrt(2 * (np.log(smax) - np.log(smin)))) ** 2
        vals = []
        for reduce_mean in (False, True):
            for lw in (False, True):
                red = (lambda a: a.mean(-1)) if reduce_mean else (lambda a: 0.5 * a.sum(-1))
                s = torch.tensor(score, requires_grad=True)
                zz = torch.tensor(z)
                if not lw:
                    losses = red(torch.square(s * std[:, None] + zz))
                else:
                    losses = red(torch.square(s + zz / std[:, None])) * g2
                loss = losses.mean()
                loss.backward()
                vals.append(np.concatenate([[loss.item()], s.grad.numpy().ravel()]))
        rows.append(np.concatenate([mean_c.numpy(), std.numpy(), g2.numpy(), np.concatenate(vals)]))
    save("losses", "dsm_inputs", np.concatenate([x0, z, score, tcont[:, None]], axis=1))
    save("losses", "dsm_outputs", np.stack(rows))


def gen_metrics():
    import scipy.linalg
    import scipy.stats
    rng = np.random.default_rng(99)
    # Frechet distance, reference formula with scipy.linalg.sqrtm(sigma1 @ sigma2)
    n1, n2, d = 40, 50, 5
    f1 = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    f2 = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) * 0.7 + rng.normal(size=d)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1.dot(s2)).real
    fd = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    save("metrics", "frechet_f1", f1)
    save("metrics", "frechet_f2", f2)
    save("metrics", "frechet_value", [fd])
    # Inception score (reference: exp(mean KL(p(y|x) || p(y))) over splits, mean and std)
    logits = rng.normal(size=(30, 7)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for part in np.array_split(probs, 3):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part) - np.log(py))).sum(1).mean()
        scores.append(np.exp(kl))
    save("metrics", "is_probs", probs)
    save("metrics", "is_value", [np.mean(scores), np.std(scores)])
    # Sliced Wasserstein: p = 1 with unequal sizes (scipy.stats.wasserstein_distance per direction),
    # p = 2 with equal sizes (sorted matching)
    x = rng.normal(size=(37, 3))
    y = rng.normal(size=(23, 3)) * 1.5 + 0.3
    dirs = rng.normal(size=(8, 3))
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    sw1 = np.mean([scipy.stats.wasserstein_distance(x @ u, y @ u) for u in unit])
    y2 = rng.normal(size=(37, 3)) + 0.5
    sw2 = np.sqrt(np.mean([np.mean((np.sort(x @ u) - np.sort(y2 @ u)) ** 2) for u in unit]))
    save("metrics", "sw_x", x)
    save("metrics", "sw_y", y)
    save("metrics", "sw_y2", y2)
    save("metrics", "sw_dirs", dirs)
    save("metrics", "sw_value", [sw1, sw2])
    # MMD^2 with Gaussian kernels, bandwidths 0.5 and 2
    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * h * h)) for h in (0.5, 2.0))
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    unb = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    bia = kxx.mean() + kyy.mean() - 2 * kxy.mean()
    save("metrics", "mmd_value", [unb, bia])


if __name__ == "__main__":
    gen_losses()
    import sys
    if "--losses-only" not in sys.argv:
        gen_metrics()
