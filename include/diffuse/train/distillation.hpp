#pragma once
// Targets for distillation and consistency models. All states are x = α·x₀ + σ·ε with per-sample
// (α, σ); everything runs on lincomb, so any tensor type works.
//
//   ddim_step(z, x0_hat, α_s, σ_s, α_t, σ_t, out)
//       out = α_t·x̂₀ + (σ_t/σ_s)(z − α_s·x̂₀)   (Song et al. 2021, DDIM with η = 0, eq. 12)
//   progressive_distillation_target(z_t, z_t2, α_t, σ_t, α_t2, σ_t2, out)
//       Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of Diffusion Models",
//       Algorithm 2: after two teacher DDIM steps t → t' → t'', the student's x̂₀ target
//       x̃ = (z_t'' − (σ_t''/σ_t)·z_t) / (α_t'' − (σ_t''/σ_t)·α_t), which makes one student DDIM step
//       from t land exactly on the teacher's z_t''.
//   consistency_* (Song et al. 2023, "Consistency Models"); the parameterisation itself
//       (consistency_scalings: c_skip, c_out; consistency_boundaries: the Karras σ_i) is in
//       process/consistency.hpp, shared with the samplers:
//       ct_num_scales(k, K, s0, s1) = ⌈√(k/K((s1+1)² − s0²) + s0²) − 1⌉ + 1, and
//       ct_target_decay(k, K, s0, μ0) = exp(s0·ln μ0 / N(k))                          (appendix C)
//       consistency_training_pair: x_{n+1} = x₀ + σ_{n+1}z, x_n = x₀ + σ_n z         (Algorithm 3)
//       consistency_distillation_target: x̂_n = x_{n+1} + (σ_n − σ_{n+1})·(x_{n+1} − D(x_{n+1}))/σ_{n+1}
//                                        (one Euler step of the PF ODE, Algorithm 2)

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/losses/checks.hpp"
#include "diffuse/process/consistency.hpp"

namespace diffuse {

namespace detail {
inline void require_coefs(std::span<const double> a, std::size_t batch, const char* where, const char* name,
                          bool positive) {
    require_batch_values(a, batch, where, name, false);
    for (std::size_t b = 0; b < a.size(); ++b)
        require(std::isfinite(a[b]) && (positive ? a[b] > 0.0 : a[b] >= 0.0), where,
                std::string(name) + "[" + std::to_string(b) + "]", a[b], positive ? "(0, inf)" : "[0, inf)");
}
}  // namespace detail

template <tensor Z, tensor X0, class Out>
void ddim_step(const Z& z, const X0& x0_hat, std::span<const double> alpha_s, std::span<const double> sigma_s,
               std::span<const double> alpha_t, std::span<const double> sigma_t, Out&& out) {
    constexpr const char* where = "ddim_step";
    const auto vz = view(z);
    const std::size_t B = vz.batch;
    detail::require_coefs(alpha_s, B, where, "alpha_s", false);
    detail::require_coefs(sigma_s, B, where, "sigma_s", true);
    detail::require_coefs(alpha_t, B, where, "alpha_t", false);
    detail::require_coefs(sigma_t, B, where, "sigma_t", false);
    std::vector<double> cz(B), cx(B);
    for (std::size_t b = 0; b < B; ++b) {
        const double r = sigma_t[b] / sigma_s[b];
        cz[b] = r;                               // (σ_t/σ_s)·z
        cx[b] = alpha_t[b] - r * alpha_s[b];     // (α_t − (σ_t/σ_s)α_s)·x̂₀
    }
    lincomb(std::forward<Out>(out), per_sample(cz), vz, per_sample(cx), view(x0_hat));
}

template <tensor Z, tensor Z2, class Out>
void progressive_distillation_target(const Z& z_t, const Z2& z_t2, std::span<const double> alpha_t,
                                     std::span<const double> sigma_t, std::span<const double> alpha_t2,
                                     std::span<const double> sigma_t2, Out&& out) {
    constexpr const char* where = "progressive_distillation_target";
    const auto vz = view(z_t);
    const std::size_t B = vz.batch;
    detail::require_coefs(alpha_t, B, where, "alpha_t", false);
    detail::require_coefs(sigma_t, B, where, "sigma_t", true);
    detail::require_coefs(alpha_t2, B, where, "alpha_t2", false);
    detail::require_coefs(sigma_t2, B, where, "sigma_t2", false);
    std::vector<double> c2(B), c1(B);
    for (std::size_t b = 0; b < B; ++b) {
        const double r = sigma_t2[b] / sigma_t[b];
        const double den = alpha_t2[b] - r * alpha_t[b];
        detail::require(std::abs(den) > 1e-12, where, "alpha_t2 - (sigma_t2/sigma_t)*alpha_t", den,
                        "nonzero (t'' must be less noisy than t)");
        c2[b] = 1.0 / den;
        c1[b] = -r / den;
    }
    lincomb(std::forward<Out>(out), per_sample(c2), view(z_t2), per_sample(c1), vz);
}

[[nodiscard]] inline std::size_t ct_num_scales(std::size_t k, std::size_t K, double s0 = 2.0, double s1 = 150.0) {
    detail::require(K >= 1, "ct_num_scales", "K", K, ">= 1");
    detail::require(k <= K, "ct_num_scales", "k", k, "[0, K]");
    detail::require(s0 >= 1.0 && s1 >= s0, "ct_num_scales", "s1", s1, "[s0, inf) with s0 >= 1");
    const double v = std::sqrt(double(k) / double(K) * ((s1 + 1) * (s1 + 1) - s0 * s0) + s0 * s0) - 1.0;
    return std::size_t(std::ceil(v)) + 1;
}

[[nodiscard]] inline double ct_target_decay(std::size_t k, std::size_t K, double s0 = 2.0, double mu0 = 0.95,
                                            double s1 = 150.0) {
    detail::require(mu0 > 0.0 && mu0 < 1.0, "ct_target_decay", "mu0", mu0, "(0, 1)");
    return std::exp(s0 * std::log(mu0) / double(ct_num_scales(k, K, s0, s1)));
}

template <tensor X0, tensor Z, class O1, class O2>
void consistency_training_pair(const X0& x0, const Z& z, std::span<const double> sigma_n,
                               std::span<const double> sigma_n1, O1&& x_n, O2&& x_n1) {
    const auto vx = view(x0);
    detail::require_coefs(sigma_n, vx.batch, "consistency_training_pair", "sigma_n", false);
    detail::require_coefs(sigma_n1, vx.batch, "consistency_training_pair", "sigma_n1", false);
    for (std::size_t b = 0; b < vx.batch; ++b)
        detail::require(sigma_n1[b] > sigma_n[b], "consistency_training_pair", "sigma_n1[" + std::to_string(b) + "]",
                        sigma_n1[b], "> sigma_n[b]");
    lincomb(std::forward<O1>(x_n), 1.0, vx, per_sample(sigma_n), view(z));
    lincomb(std::forward<O2>(x_n1), 1.0, vx, per_sample(sigma_n1), view(z));
}

template <tensor X, tensor D, class Out>
void consistency_distillation_target(const X& x_n1, const D& denoised, std::span<const double> sigma_n,
                                     std::span<const double> sigma_n1, Out&& out) {
    const auto vx = view(x_n1);
    detail::require_coefs(sigma_n, vx.batch, "consistency_distillation_target", "sigma_n", false);
    detail::require_coefs(sigma_n1, vx.batch, "consistency_distillation_target", "sigma_n1", true);
    std::vector<double> cx(vx.batch), cd(vx.batch);
    for (std::size_t b = 0; b < vx.batch; ++b) {
        const double r = (sigma_n[b] - sigma_n1[b]) / sigma_n1[b];  // Euler: x + (σ_n − σ_{n+1})·(x − D)/σ_{n+1}
        cx[b] = 1.0 + r;
        cd[b] = -r;
    }
    lincomb(std::forward<Out>(out), per_sample(cx), vx, per_sample(cd), view(denoised));
}

}  // namespace diffuse
