#pragma once
// Denoising score matching for the VP, sub-VP and VE SDEs (Song et al. 2021, "Score-Based Generative
// Modeling through Stochastic Differential Equations", eq. 7), as score_sde's losses.py computes it.
//
// With x_t = m(t)·x₀ + s(t)·z, z ~ N(0, I) and the model's score output S:
//   default weighting λ(t) = s(t)²:     ℓ_b = R_j[(S_bj·s_b + z_bj)²]
//   likelihood weighting λ(t) = g(t)²:  ℓ_b = R_j[(S_bj + z_bj/s_b)²] · g_b²   (Song et al. 2021b, Thm. 1)
// where the reduction R is the mean over elements (reduce_mean) or one half of their sum (score_sde's
// default), and the loss is the batch mean of ℓ_b. The discrete SMLD loss (NCSN, Song & Ermon 2019) is
// the default weighting with s = σ_i; the discrete DDPM loss of score_sde is ddpm_sum_loss below.
//
// The SDE is one of schedules/continuous.hpp's vp_sde, subvp_sde, ve_sde (score_sde's sde_lib.py):
// m(t), s(t) from sde.marginal(t) and g(t)² = sde.diffusion(t)².

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/losses/checks.hpp"
#include "diffuse/schedules/continuous.hpp"

namespace diffuse {

// An SDE with Gaussian marginals N(m(t)·x₀, s(t)²) and diffusion g(t): vp_sde, subvp_sde, ve_sde.
template <class Sde>
concept dsm_process = requires(const Sde& sde, double t) {
    { sde.marginal(t) } -> std::convertible_to<marginal_coefs>;
    { sde.diffusion(t) } -> std::convertible_to<double>;
};

struct dsm_options {
    bool reduce_mean = false;           // mean over elements; else ½·sum (score_sde's default)
    bool likelihood_weighting = false;  // λ = g², else λ = s²
};

// x_t = m·x₀ + s·z for per-sample times t ∈ [0, T]; writes std (s) and g2 (g²) per sample when non-empty.
template <dsm_process Sde, tensor X0, tensor Z, class Out>
void dsm_perturb(const Sde& sde, const X0& x0, const Z& z, std::span<const double> t, Out&& x_t,
                 std::span<double> std_out = {}, std::span<double> g2_out = {}) {
    const auto vx = view(x0);
    detail::require_batch_values(t, vx.batch, "dsm_perturb", "t", false);
    detail::require_batch_values(std_out, vx.batch, "dsm_perturb", "std_out", true);
    detail::require_batch_values(g2_out, vx.batch, "dsm_perturb", "g2_out", true);
    std::vector<double> m(vx.batch), s(vx.batch);
    for (std::size_t b = 0; b < vx.batch; ++b) {
        const auto mg = sde.marginal(t[b]);  // throws for t outside [0, T]
        m[b] = mg.mean_coef;
        s[b] = mg.std;
        if (!std_out.empty()) std_out[b] = mg.std;
        if (!g2_out.empty()) {
            const double g = sde.diffusion(t[b]);
            g2_out[b] = g * g;
        }
    }
    lincomb(std::forward<Out>(x_t), per_sample(m), vx, per_sample(s), view(z));
}

// The DSM loss for the model's score output at x_t = m·x₀ + s·z (eq. above); ∂L/∂score into grad.
// g2 is needed only with likelihood weighting (pass {} otherwise).
template <tensor S, tensor Z, class G>
double dsm_loss(const S& score, const Z& z, std::span<const double> stddev, std::span<const double> g2,
                dsm_options opt, G&& grad, std::span<double> per_sample_loss = {}) {
    constexpr std::string_view where = "dsm_loss";
    const auto vs = view(score);
    const auto vz = view(z);
    auto vg = detail::host_writable_view(std::forward<G>(grad), "dsm_loss");
    detail::require_same_shape(vs, vz, where, "score", "z");
    detail::require_same_shape(vs, vg, where, "score", "grad");
    if (detail::views_overlap(vg, vs)) detail::fail(where, "grad must not overlap score");
    const std::size_t B = vs.batch;
    detail::require_batch_values(stddev, B, where, "stddev", false);
    detail::require_batch_values(g2, B, where, "g2", !opt.likelihood_weighting);
    detail::require_batch_values(per_sample_loss, B, where, "per_sample_loss", true);
    detail::require(vs.per_sample > 0, where, "elements per sample", vs.per_sample, ">= 1");
    for (std::size_t b = 0; b < B; ++b) {
        detail::require(stddev[b] > 0.0 && std::isfinite(stddev[b]), where, "stddev[" + std::to_string(b) + "]", stddev[b],
                        "(0, inf)");
        if (opt.likelihood_weighting)
            detail::require(g2[b] >= 0.0 && std::isfinite(g2[b]), where, "g2[" + std::to_string(b) + "]", g2[b],
                            "[0, inf)");
    }
    if (B == 0) return 0.0;
    const double D = double(vs.per_sample);
    const double red = opt.reduce_mean ? 1.0 / D : 0.5;  // R[·] = red · Σ_j
    std::vector<double> a(B), c(B), ss(B), scale(B);
    for (std::size_t b = 0; b < B; ++b) {
        if (opt.likelihood_weighting) a[b] = 1.0, c[b] = 1.0 / stddev[b];  // r = S + z/s
        else a[b] = stddev[b], c[b] = 1.0;                                  // r = S·s + z
    }
    if (detail::views_overlap(vg, vz) && vg.data != vz.data) detail::fail(where, "grad partially overlaps z");
    lincomb(vg, per_sample(a), vs, per_sample(c), vz);
    sum_squares(vg, ss);
    double loss = 0.0;
    for (std::size_t b = 0; b < B; ++b) {
        const double lam = opt.likelihood_weighting ? g2[b] : 1.0;
        const double l = red * ss[b] * lam;
        if (!per_sample_loss.empty()) per_sample_loss[b] = l;
        loss += l;
        scale[b] = 2.0 * red * lam * a[b] / double(B);  // ∂ℓ/∂S = 2·red·λ·a·r, then the batch mean
    }
    lincomb(vg, per_sample(scale), vg);
    return loss / double(B);
}

// score_sde's discrete DDPM loss (get_ddpm_loss_fn): the model predicts ε, ℓ_b = R_j[(ε̂ − z)²].
template <tensor E, tensor Z, class G>
double ddpm_sum_loss(const E& eps_pred, const Z& z, bool reduce_mean, G&& grad,
                     std::span<double> per_sample_loss = {}) {
    const auto ve = view(eps_pred);
    const auto vz = view(z);
    auto vg = detail::host_writable_view(std::forward<G>(grad), "ddpm_sum_loss");
    detail::require_same_shape(ve, vz, "ddpm_sum_loss", "eps_pred", "z");
    detail::require_same_shape(ve, vg, "ddpm_sum_loss", "eps_pred", "grad");
    if (detail::views_overlap(vg, ve)) detail::fail("ddpm_sum_loss", "grad must not overlap eps_pred");
    detail::require_batch_values(per_sample_loss, ve.batch, "ddpm_sum_loss", "per_sample_loss", true);
    detail::require(ve.per_sample > 0, "ddpm_sum_loss", "elements per sample", ve.per_sample, ">= 1");
    const std::size_t B = ve.batch;
    if (B == 0) return 0.0;
    const double red = reduce_mean ? 1.0 / double(ve.per_sample) : 0.5;
    lincomb(vg, 1.0, ve, -1.0, vz);
    std::vector<double> ss(B);
    sum_squares(vg, ss);
    double loss = 0.0;
    for (std::size_t b = 0; b < B; ++b) {
        if (!per_sample_loss.empty()) per_sample_loss[b] = red * ss[b];
        loss += red * ss[b];
    }
    lincomb(vg, 2.0 * red / double(B), vg);
    return loss / double(B);
}

}  // namespace diffuse
