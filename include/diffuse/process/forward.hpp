#pragma once
// The forward (noising) process of a discrete schedule, q(x_t | x₀) and the posterior q(x_{t−1} | x_t, x₀)
// (Ho et al. 2020, eq. 4, 6, 7), with SNR (Kingma et al. 2021, eq. 3).
//
//   q(x_t | x₀)         = N(√ᾱ_t·x₀, (1 − ᾱ_t)·I)
//   q(x_{t−1}|x_t, x₀)  = N(μ̃, β̃_t·I),  μ̃ = √ᾱ_{t−1}·β_t/(1−ᾱ_t)·x₀ + √α_t·(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t,
//                         β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t
//   SNR(t) = ᾱ_t/(1 − ᾱ_t),  log-SNR λ_t = log ᾱ_t − log(1 − ᾱ_t)
//
// Time may differ per sample (training batches, mixed-strength img2img): every tensor function takes
// one timestep per sample.

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/schedules/beta.hpp"

namespace diffuse {

namespace detail {
inline std::size_t checked_t(const discrete_schedule& s, std::int64_t t, const char* where) {
    require(t >= 0 && std::size_t(t) < s.size(), where, "t", t, "[0, " + std::to_string(s.size() - 1) + "]");
    return std::size_t(t);
}
}  // namespace detail

// α_t = √ᾱ_t and σ_t = √(1 − ᾱ_t) of x_t = α_t·x₀ + σ_t·ε. ᾱ holds diffusers' float32 values and
// 1 − ᾱ is rounded to float32 as diffusers' tensors do, so float32 results match add_noise bit for bit.
struct alpha_sigma {
    double alpha, sigma;
};
[[nodiscard]] inline alpha_sigma marginal(const discrete_schedule& s, std::int64_t t) {
    const double ac = s.alphas_cumprod[detail::checked_t(s, t, "marginal")];
    return {std::sqrt(ac), std::sqrt(double(1.0f - float(ac)))};
}

[[nodiscard]] inline double snr(const discrete_schedule& s, std::int64_t t) {
    const double ac = s.alphas_cumprod[detail::checked_t(s, t, "snr")];
    return ac / (1.0 - ac);
}
[[nodiscard]] inline double log_snr(const discrete_schedule& s, std::int64_t t) {
    const double ac = s.alphas_cumprod[detail::checked_t(s, t, "log_snr")];
    return std::log(ac) - std::log1p(-ac);
}

// Posterior q(x_{t−1} | x_t, x₀): mean coefficients, variance and the clipped log-variance of
// improved DDPM (log β̃ with β̃_0 replaced by β̃_1, since β̃_0 = 0). ᾱ_{−1} = 1.
struct posterior_coefficients {
    double coef_x0, coef_xt, variance, log_variance_clipped;
};
[[nodiscard]] inline posterior_coefficients posterior(const discrete_schedule& s, std::int64_t t) {
    const std::size_t i = detail::checked_t(s, t, "posterior");
    auto at = [&](std::size_t k) {
        const double ac = s.alphas_cumprod[k], ac_prev = k == 0 ? 1.0 : s.alphas_cumprod[k - 1];
        return (1.0 - ac_prev) / (1.0 - ac) * s.betas[k];
    };
    const double ac = s.alphas_cumprod[i], ac_prev = i == 0 ? 1.0 : s.alphas_cumprod[i - 1];
    const double var = at(i);
    const double clipped = i == 0 ? (s.size() > 1 ? at(1) : var) : var;
    return {std::sqrt(ac_prev) * s.betas[i] / (1.0 - ac), std::sqrt(s.alphas[i]) * (1.0 - ac_prev) / (1.0 - ac), var,
            clipped > 0 ? std::log(clipped) : -INFINITY};
}

namespace detail {
// out = a(t_b)·u + b(t_b)·w per sample b, where coefs(t) returns the pair {a, b}.
template <class Out, class U, class W, class Coefs>
void lincomb_at_timesteps(Out&& out, U&& u, W&& w, std::span<const std::int64_t> t, const char* where, Coefs coefs) {
    const auto o = view(out);
    if (t.size() != o.batch)
        fail(where, "t has " + std::to_string(t.size()) + " values but the batch has " + std::to_string(o.batch));
    std::vector<double> a(o.batch), b(o.batch);
    for (std::size_t k = 0; k < o.batch; ++k) {
        const auto [ak, bk] = coefs(t[k]);
        a[k] = ak;
        b[k] = bk;
    }
    lincomb(o, per_sample(a), std::forward<U>(u), per_sample(b), std::forward<W>(w));
}
}  // namespace detail

// x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with one timestep per sample (diffusers' add_noise).
template <class Out, class X0, class Noise>
void q_sample(Out&& out, X0&& x0, Noise&& noise, const discrete_schedule& s, std::span<const std::int64_t> t) {
    detail::lincomb_at_timesteps(std::forward<Out>(out), std::forward<X0>(x0), std::forward<Noise>(noise), t, "q_sample",
                                 [&](std::int64_t k) {
                                     const auto m = marginal(s, k);
                                     return std::pair{m.alpha, m.sigma};
                                 });
}

// μ̃(x_t, x₀) of the posterior, one timestep per sample.
template <class Out, class X0, class Xt>
void posterior_mean(Out&& out, X0&& x0, Xt&& xt, const discrete_schedule& s, std::span<const std::int64_t> t) {
    detail::lincomb_at_timesteps(std::forward<Out>(out), std::forward<X0>(x0), std::forward<Xt>(xt), t, "posterior_mean",
                                 [&](std::int64_t k) {
                                     const auto p = posterior(s, k);
                                     return std::pair{p.coef_x0, p.coef_xt};
                                 });
}

}  // namespace diffuse
