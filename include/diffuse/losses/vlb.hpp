#pragma once
// The variational bound of a discrete diffusion model and the hybrid loss with a learned variance
// (Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models", §3.1, eq. 10-16).
//
//   normal_kl(μ₁, log σ₁², μ₂, log σ₂²)      KL(N(μ₁,σ₁²) ‖ N(μ₂,σ₂²)) per element, in nats
//   approx_standard_normal_cdf(x)             Φ(x) ≈ ½(1 + tanh(√(2/π)(x + 0.044715x³)))
//   discretized_gaussian_log_likelihood(x, μ, log σ)   log P of the 8-bit bin of x ∈ [−1, 1]
//                                             (Ho et al. 2020, eq. 13), in nats
//   vlb_schedule                              the posterior q(x_{t−1}|x_t, x₀) coefficients
//   vb_terms_bpd(...)                         L_t per sample in bits: KL for t > 0, decoder NLL at t = 0
//   hybrid_loss(...)                          L_simple + vb_scale·L_vlb with a stop-gradient on the mean
//                                             (L_hybrid = L_simple + λ L_vlb, eq. 16)
//
// The learned variance uses the "learned_range" parameterisation (eq. 15): the network outputs v per
// element and log Σ = f·log β_t + (1 − f)·log β̃_t with f = (v + 1)/2. The model output of one sample
// holds the ε prediction in its first half and v in its second half (a channel split, as in the
// reference code where the output has 2C channels).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/losses/checks.hpp"

namespace diffuse {

[[nodiscard]] inline double normal_kl(double mean1, double logvar1, double mean2, double logvar2) noexcept {
    const double d = mean1 - mean2;
    return 0.5 * (-1.0 + logvar2 - logvar1 + std::exp(logvar1 - logvar2) + d * d * std::exp(-logvar2));
}

// The tanh approximation of the standard normal CDF used by the reference implementations.
[[nodiscard]] inline double approx_standard_normal_cdf(double x) noexcept {
    const double k = std::sqrt(2.0 / std::numbers::pi);
    return 0.5 * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

namespace detail {
// d/dx of approx_standard_normal_cdf.
[[nodiscard]] inline double approx_standard_normal_pdf(double x) noexcept {
    const double k = std::sqrt(2.0 / std::numbers::pi);
    const double th = std::tanh(k * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 - th * th) * k * (1.0 + 3.0 * 0.044715 * x * x);
}

// log P(bin of x) and its derivative with respect to log_scale.
struct dgll_result {
    double log_prob, dlog_scale;
};

[[nodiscard]] inline dgll_result discretized_gaussian_ll(double x, double mean, double log_scale) noexcept {
    constexpr double floor = 1e-12;
    const double centered = x - mean;
    const double inv_stdv = std::exp(-log_scale);
    const double plus_in = inv_stdv * (centered + 1.0 / 255.0);
    const double min_in = inv_stdv * (centered - 1.0 / 255.0);
    const double cdf_plus = approx_standard_normal_cdf(plus_in);
    const double cdf_min = approx_standard_normal_cdf(min_in);
    // ∂(plus_in)/∂(log_scale) = −plus_in, likewise for min_in.
    if (x < -0.999) {  // the left edge bin extends to −∞
        if (cdf_plus <= floor) return {std::log(floor), 0.0};
        return {std::log(cdf_plus), -approx_standard_normal_pdf(plus_in) * plus_in / cdf_plus};
    }
    if (x > 0.999) {  // the right edge bin extends to +∞
        const double one_minus = 1.0 - cdf_min;
        if (one_minus <= floor) return {std::log(floor), 0.0};
        return {std::log(one_minus), approx_standard_normal_pdf(min_in) * min_in / one_minus};
    }
    const double delta = cdf_plus - cdf_min;
    if (delta <= floor) return {std::log(floor), 0.0};
    return {std::log(delta),
            (-approx_standard_normal_pdf(plus_in) * plus_in + approx_standard_normal_pdf(min_in) * min_in) / delta};
}
}  // namespace detail

[[nodiscard]] inline double discretized_gaussian_log_likelihood(double x, double mean, double log_scale) noexcept {
    return detail::discretized_gaussian_ll(x, mean, log_scale).log_prob;
}

// Posterior coefficients of a discrete schedule (Ho et al. 2020, eq. 6-7):
//   μ̃ = coef1·x₀ + coef2·x_t,  β̃_t = β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t),
//   log β̃ clipped: β̃_0 replaced by β̃_1 (the reference's posterior_log_variance_clipped).
struct vlb_schedule {
    std::vector<double> betas, alphas_cumprod, alphas_cumprod_prev;
    std::vector<double> posterior_variance, posterior_log_variance_clipped;
    std::vector<double> posterior_mean_coef1, posterior_mean_coef2;
    std::vector<double> sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod;

    [[nodiscard]] std::size_t size() const noexcept { return betas.size(); }

    [[nodiscard]] static vlb_schedule from_betas(std::span<const double> betas) {
        constexpr std::string_view where = "vlb_schedule::from_betas";
        detail::require(betas.size() >= 2, where, "betas.size()", betas.size(), ">= 2");
        vlb_schedule s;
        const std::size_t T = betas.size();
        s.betas.assign(betas.begin(), betas.end());
        s.alphas_cumprod.resize(T);
        s.alphas_cumprod_prev.resize(T);
        double prod = 1.0;
        for (std::size_t t = 0; t < T; ++t) {
            detail::require(betas[t] > 0.0 && betas[t] < 1.0, where, "betas[" + std::to_string(t) + "]", betas[t],
                            "(0, 1)");
            s.alphas_cumprod_prev[t] = prod;
            prod *= 1.0 - betas[t];
            s.alphas_cumprod[t] = prod;
        }
        s.posterior_variance.resize(T);
        s.posterior_log_variance_clipped.resize(T);
        s.posterior_mean_coef1.resize(T);
        s.posterior_mean_coef2.resize(T);
        s.sqrt_recip_alphas_cumprod.resize(T);
        s.sqrt_recipm1_alphas_cumprod.resize(T);
        for (std::size_t t = 0; t < T; ++t) {
            const double ab = s.alphas_cumprod[t], abp = s.alphas_cumprod_prev[t];
            s.posterior_variance[t] = betas[t] * (1.0 - abp) / (1.0 - ab);
            s.posterior_mean_coef1[t] = betas[t] * std::sqrt(abp) / (1.0 - ab);
            s.posterior_mean_coef2[t] = (1.0 - abp) * std::sqrt(1.0 - betas[t]) / (1.0 - ab);
            s.sqrt_recip_alphas_cumprod[t] = std::sqrt(1.0 / ab);
            s.sqrt_recipm1_alphas_cumprod[t] = std::sqrt(1.0 / ab - 1.0);
        }
        for (std::size_t t = 0; t < T; ++t)
            s.posterior_log_variance_clipped[t] = std::log(s.posterior_variance[t == 0 ? 1 : t]);
        return s;
    }
};

namespace detail {

// L_t in bits for one sample, and (optionally) ∂L_t/∂v per element. eps and v are the two halves of
// the model output; `fixed_logvar` >= 0 selects no learned variance (then v is ignored and log Σ is
// the given per-timestep value).
template <class T>
double vb_term_sample(const vlb_schedule& s, std::size_t t, const T* x0, const T* xt, const T* eps, const T* v,
                      std::size_t D, const double* fixed_logvar, T* grad_v, double grad_scale) {
    const double min_log = s.posterior_log_variance_clipped[t];
    const double max_log = std::log(s.betas[t]);
    const double c1 = s.posterior_mean_coef1[t], c2 = s.posterior_mean_coef2[t];
    const double ra = s.sqrt_recip_alphas_cumprod[t], rm1 = s.sqrt_recipm1_alphas_cumprod[t];
    const double inv = 1.0 / (double(D) * std::numbers::ln2);
    double total = 0.0;
    for (std::size_t j = 0; j < D; ++j) {
        const double x_0 = double(x0[j]), x_t = double(xt[j]);
        double logvar, dlv_dv = 0.0;
        if (fixed_logvar) logvar = *fixed_logvar;
        else {
            const double frac = (double(v[j]) + 1.0) * 0.5;
            logvar = frac * max_log + (1.0 - frac) * min_log;  // eq. 15
            dlv_dv = 0.5 * (max_log - min_log);
        }
        const double pred_x0 = ra * x_t - rm1 * double(eps[j]);  // x̂₀ = (x_t − √(1−ᾱ)ε̂)/√ᾱ
        const double model_mean = c1 * pred_x0 + c2 * x_t;
        double term, dterm_dlv;
        if (t == 0) {  // L_0 = −log p(x₀|x₁), discretized decoder
            const auto r = discretized_gaussian_ll(x_0, model_mean, 0.5 * logvar);
            term = -r.log_prob;
            dterm_dlv = -0.5 * r.dlog_scale;
        } else {  // L_{t−1} = KL(q(x_{t−1}|x_t,x₀) ‖ p(x_{t−1}|x_t))
            const double true_mean = c1 * x_0 + c2 * x_t;
            term = normal_kl(true_mean, min_log, model_mean, logvar);
            const double d = true_mean - model_mean;
            dterm_dlv = 0.5 * (1.0 - std::exp(min_log - logvar) - d * d * std::exp(-logvar));
        }
        total += term;
        if (grad_v) grad_v[j] = static_cast<T>(grad_scale * dterm_dlv * dlv_dv * inv);
    }
    return total * inv;
}

}  // namespace detail

// L_t (in bits, mean over elements) per sample for a model whose output holds [ε̂ | v] (2·D values per
// sample, learned range) — or only ε̂ (D values) with a fixed log variance per timestep in
// `fixed_log_variance` (e.g. log β̃_t for "fixed_small" or log β_t for "fixed_large").
template <tensor Y, tensor X0, tensor XT>
void vb_terms_bpd(const vlb_schedule& s, const Y& model_output, const X0& x0, const XT& x_t,
                  std::span<const std::size_t> t, std::span<double> out,
                  std::span<const double> fixed_log_variance = {}) {
    constexpr std::string_view where = "vb_terms_bpd";
    const auto vy = detail::host_input(model_output);
    const auto vx = detail::host_input(x0);
    const auto vt = detail::host_input(x_t);
    detail::require_same_shape(vx, vt, where, "x0", "x_t");
    const bool learned = fixed_log_variance.empty();
    if (vy.batch != vx.batch || vy.per_sample != (learned ? 2 : 1) * vx.per_sample)
        detail::fail(where, "model_output has shape " + std::to_string(vy.batch) + "x" +
                                std::to_string(vy.per_sample) + " but x0 is " + std::to_string(vx.batch) + "x" +
                                std::to_string(vx.per_sample) +
                                (learned ? " (a learned variance needs 2x the elements of x0 per sample)"
                                         : " (a fixed variance needs as many elements as x0)"));
    if (!learned && fixed_log_variance.size() != s.size())
        detail::fail(where, "fixed_log_variance has " + std::to_string(fixed_log_variance.size()) +
                                " values but the schedule has " + std::to_string(s.size()));
    detail::require_batch_values(std::span<const double>(out.data(), out.size()), vx.batch, where, "out", false);
    if (t.size() != vx.batch)
        detail::fail(where, "t has " + std::to_string(t.size()) + " values but the batch has " + std::to_string(vx.batch));
    using T = std::remove_const_t<typename decltype(vx)::value_type>;
    const std::size_t D = vx.per_sample;
    for (std::size_t b = 0; b < vx.batch; ++b) {
        detail::require(t[b] < s.size(), where, "t[" + std::to_string(b) + "]", t[b],
                        "[0, " + std::to_string(s.size()) + ")");
        const T* y = vy.sample(b);
        out[b] = detail::vb_term_sample<T>(s, t[b], vx.sample(b), vt.sample(b), y, learned ? y + D : nullptr, D,
                                           learned ? nullptr : &fixed_log_variance[t[b]], nullptr, 0.0);
    }
}

// The hybrid loss (eq. 16) for an ε-predicting model with a learned-range variance:
//   L = (1/B) Σ_b [ mean_j (ε̂ − ε)² + vb_scale · L_t(stopgrad(ε̂), v) ]
// vb_scale = T/1000 reproduces the reference's "rescaled MSE" loss type; 1 gives plain "MSE".
// ∂L/∂(model output) goes into grad (2·D values per sample: ε̂ part then v part).
template <tensor Y, tensor X0, tensor XT, tensor E, class G>
double hybrid_loss(const vlb_schedule& s, const Y& model_output, const X0& x0, const XT& x_t, const E& noise,
                   std::span<const std::size_t> t, double vb_scale, G&& grad,
                   std::span<double> per_sample_loss = {}) {
    constexpr std::string_view where = "hybrid_loss";
    const auto vy = detail::host_input(model_output);
    const auto vx = detail::host_input(x0);
    const auto vt = detail::host_input(x_t);
    const auto ve = detail::host_input(noise);
    auto vg = detail::host_writable_view(std::forward<G>(grad), "hybrid_loss");
    detail::require_same_shape(vx, vt, where, "x0", "x_t");
    detail::require_same_shape(vx, ve, where, "x0", "noise");
    detail::require_same_shape(vy, vg, where, "model_output", "grad");
    if (detail::views_overlap(vg, vy)) detail::fail(where, "grad must not overlap model_output");
    if (vy.batch != vx.batch || vy.per_sample != 2 * vx.per_sample)
        detail::fail(where, "model_output has shape " + std::to_string(vy.batch) + "x" + std::to_string(vy.per_sample) +
                                " but needs " + std::to_string(vx.batch) + "x" + std::to_string(2 * vx.per_sample) +
                                " (epsilon and variance halves)");
    if (t.size() != vx.batch)
        detail::fail(where, "t has " + std::to_string(t.size()) + " values but the batch has " + std::to_string(vx.batch));
    detail::require(vb_scale >= 0.0 && std::isfinite(vb_scale), where, "vb_scale", vb_scale, "[0, inf)");
    detail::require_batch_values(per_sample_loss, vx.batch, where, "per_sample_loss", true);
    detail::require(vx.per_sample > 0, where, "elements per sample", vx.per_sample, ">= 1");
    using T = std::remove_const_t<typename decltype(vx)::value_type>;
    const std::size_t B = vx.batch, D = vx.per_sample;
    if (B == 0) return 0.0;
    double loss = 0.0;
    for (std::size_t b = 0; b < B; ++b) {
        detail::require(t[b] < s.size(), where, "t[" + std::to_string(b) + "]", t[b],
                        "[0, " + std::to_string(s.size()) + ")");
        const T* y = vy.sample(b);
        T* g = vg.sample(b);
        double mse = 0.0;
        for (std::size_t j = 0; j < D; ++j) {
            const double r = double(y[j]) - double(ve.sample(b)[j]);
            mse += r * r;
            g[j] = static_cast<T>(2.0 * r / (double(D) * double(B)));  // L_simple (eq. 14)
        }
        mse /= double(D);
        const double vb = detail::vb_term_sample<T>(s, t[b], vx.sample(b), vt.sample(b), y, y + D, D, nullptr, g + D,
                                                    vb_scale / double(B));
        const double l = mse + vb_scale * vb;
        if (!per_sample_loss.empty()) per_sample_loss[b] = l;
        loss += l;
    }
    return loss / double(B);
}

// KL(q(x_T|x₀) ‖ N(0, I)) per sample in bits (mean over elements): the prior term of the VLB.
template <tensor X0>
void prior_bpd(const vlb_schedule& s, const X0& x0, std::span<double> out) {
    const auto vx = detail::host_input(x0);
    detail::require_batch_values(std::span<const double>(out.data(), out.size()), vx.batch, "prior_bpd", "out", false);
    detail::require(vx.per_sample > 0, "prior_bpd", "elements per sample", vx.per_sample, ">= 1");
    const double ab = s.alphas_cumprod.back();
    const double m = std::sqrt(ab), logvar = std::log1p(-ab);
    for (std::size_t b = 0; b < vx.batch; ++b) {
        double acc = 0.0;
        for (std::size_t j = 0; j < vx.per_sample; ++j) acc += normal_kl(m * double(vx.sample(b)[j]), logvar, 0.0, 0.0);
        out[b] = acc / (double(vx.per_sample) * std::numbers::ln2);
    }
}

}  // namespace diffuse
