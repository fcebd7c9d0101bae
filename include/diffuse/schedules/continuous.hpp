#pragma once
// Continuous-time diffusion processes of Song et al. 2021 ("Score-Based Generative Modeling through
// Stochastic Differential Equations", ICLR): the forward SDE dx = f(t)·x dt + g(t) dw for
//   VP     (eq. 11):  f = -β(t)/2,  g = sqrt(β(t)),                 β(t) = β0 + t(β1 - β0)
//   sub-VP (eq. 12):  f = -β(t)/2,  g = sqrt(β(t)(1 - e^{-2∫β})),
//   VE     (eq. 9):   f = 0,        g = σ(t)·sqrt(2 log(σmax/σmin)), σ(t) = σmin(σmax/σmin)^t,
// their Gaussian marginals p(x_t | x_0) = N(mean_coef·x_0, std²) (eq. 29 and Appendix B), the per-step
// discretisations used by the reference reverse-diffusion predictor, the prior N(0, prior_std²) and its
// log-density, and the log-SNR λ(t) = log(mean_coef² / std²) with its closed-form inverse.
// All scalar, double precision. Tensor-level prior sampling lives elsewhere (process/).

#include <cmath>
#include <cstddef>
#include <numbers>
#include <string_view>

#include "diffuse/core/error.hpp"

namespace diffuse {

struct marginal_coefs {
    double mean_coef;  // x_t = mean_coef·x_0 + std·z
    double std;
};

// One step x_{i+1} = x_i + f·x_i + G·z of a discretised forward SDE (f multiplies x).
struct discrete_step {
    double f;
    double G;
};

namespace detail {

inline void require_time(double t, double T, std::string_view where) {
    require(t >= 0.0 && t <= T, where, "t", t, "[0, 1]");
}

// The discrete index used by the reference: int(t·(N-1)/T) (truncation toward zero).
[[nodiscard]] inline std::size_t sde_timestep_index(double t, std::size_t N) {
    return static_cast<std::size_t>(t * static_cast<double>(N - 1));
}

// Stable log(1 + e^x).
[[nodiscard]] inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// Log-density of N(0, s²·I) in `dim` dimensions at a point with squared norm `sum_sq`.
[[nodiscard]] inline double gaussian_logp(double sum_sq, double dim, double s, std::string_view where) {
    require(sum_sq >= 0.0 && !std::isnan(sum_sq), where, "sum_sq", sum_sq, "[0, inf]");
    require(dim >= 1.0, where, "dim", dim, ">= 1");
    return -dim / 2.0 * std::log(2.0 * std::numbers::pi * s * s) - sum_sq / (2.0 * s * s);
}

// Shared linear-β machinery of VP and sub-VP. log_mean_coef(t) = -¼t²(β1-β0) - ½tβ0 = -½∫₀ᵗβ.
struct linear_beta {
    double beta_0, beta_1;

    [[nodiscard]] constexpr double beta(double t) const noexcept { return beta_0 + t * (beta_1 - beta_0); }
    [[nodiscard]] constexpr double log_mean_coef(double t) const noexcept {
        return -0.25 * t * t * (beta_1 - beta_0) - 0.5 * t * beta_0;
    }
    // Solves log_mean_coef(t) = L (L <= 0) for t >= 0, Δ = β1 - β0.
    [[nodiscard]] double t_from_log_mean_coef(double L) const noexcept {
        // ¼Δt² + ½β0 t + L = 0  =>  t = -2L / (½β0 + sqrt(¼β0² - ΔL))
        const double d = beta_1 - beta_0;
        return -2.0 * L / (0.5 * beta_0 + std::sqrt(0.25 * beta_0 * beta_0 - d * L));
    }
};

inline void require_linear_beta(double beta_min, double beta_max, std::size_t N, std::string_view where) {
    require(std::isfinite(beta_min) && beta_min > 0.0, where, "beta_min", beta_min, "(0, inf)");
    require(std::isfinite(beta_max) && beta_max >= beta_min, where, "beta_max", beta_max, "[beta_min, inf)");
    require_count(N, where, "N");
    require(beta_max / static_cast<double>(N) < 1.0, where, "beta_max", beta_max,
            "< N (the discrete betas beta_max/N must stay below 1)");
}

}  // namespace detail

// Variance-preserving SDE (DDPM's continuous limit), defaults β0 = 0.1, β1 = 20, N = 1000.
struct vp_sde {
    static constexpr double T = 1.0;
    static constexpr double default_eps = 1e-3;
    double beta_0 = 0.1, beta_1 = 20.0;
    std::size_t N = 1000;

    vp_sde() = default;
    vp_sde(double beta_min, double beta_max, std::size_t n = 1000) : beta_0(beta_min), beta_1(beta_max), N(n) {
        detail::require_linear_beta(beta_min, beta_max, n, "vp_sde");
    }

    [[nodiscard]] double beta(double t) const { return lb().beta(t); }
    [[nodiscard]] double drift_coef(double t) const { return -0.5 * lb().beta(t); }  // f(t)
    [[nodiscard]] double diffusion(double t) const { return std::sqrt(lb().beta(t)); }  // g(t)

    // mean = e^{lmc}, std = sqrt(1 - e^{2 lmc}) (computed with expm1).
    [[nodiscard]] marginal_coefs marginal(double t) const {
        detail::require_time(t, T, "vp_sde::marginal");
        const double l = lb().log_mean_coef(t);
        return {std::exp(l), std::sqrt(-std::expm1(2.0 * l))};
    }

    // DDPM discretisation (Ho et al. 2020): i = int(t(N-1)), β_i = linspace(β0/N, β1/N, N)[i],
    // f = sqrt(1 - β_i) - 1, G = sqrt(β_i).
    [[nodiscard]] double discrete_beta(std::size_t i) const {
        detail::require(i < N, "vp_sde::discrete_beta", "i", i, "[0, N-1]");
        const double a = beta_0 / static_cast<double>(N), b = beta_1 / static_cast<double>(N);
        if (N == 1) return a;
        return i + 1 == N ? b : static_cast<double>(i) * ((b - a) / static_cast<double>(N - 1)) + a;  // numpy.linspace
    }
    [[nodiscard]] discrete_step discretize(double t) const {
        detail::require_time(t, T, "vp_sde::discretize");
        detail::require_count(N, "vp_sde::discretize", "N");  // N is a public member: checked where it is used
        const double b = discrete_beta(detail::sde_timestep_index(t, N));
        return {std::sqrt(1.0 - b) - 1.0, std::sqrt(b)};
    }
    // Euler–Maruyama: f = f(t)·dt, G = g(t)·sqrt(dt) (the reference's generic discretisation, dt = 1/N).
    [[nodiscard]] discrete_step discretize_em(double t, double dt) const {
        detail::require_time(t, T, "vp_sde::discretize_em");
        detail::require(dt > 0.0 && dt <= T, "vp_sde::discretize_em", "dt", dt, "(0, 1]");
        return {drift_coef(t) * dt, diffusion(t) * std::sqrt(dt)};
    }

    [[nodiscard]] static constexpr double prior_mean() noexcept { return 0.0; }
    [[nodiscard]] static constexpr double prior_std() noexcept { return 1.0; }
    [[nodiscard]] static double prior_logp(double sum_sq, double dim) {
        return detail::gaussian_logp(sum_sq, dim, 1.0, "vp_sde::prior_logp");
    }

    // λ(t) = log(mean²/std²) = 2 lmc - log(1 - e^{2 lmc}); +inf at t = 0.
    [[nodiscard]] double log_snr(double t) const {
        detail::require_time(t, T, "vp_sde::log_snr");
        const double l2 = 2.0 * lb().log_mean_coef(t);
        return l2 - std::log(-std::expm1(l2));
    }
    // Inverse: e^{2 lmc} = sigmoid(λ), so lmc = -softplus(-λ)/2, then the quadratic in t.
    [[nodiscard]] double t_from_log_snr(double lambda) const {
        detail::require(!std::isnan(lambda), "vp_sde::t_from_log_snr", "lambda", lambda, "[-inf, inf]");
        return lb().t_from_log_mean_coef(-0.5 * detail::softplus(-lambda));
    }

private:
    [[nodiscard]] detail::linear_beta lb() const noexcept { return {beta_0, beta_1}; }
};

// Sub-VP SDE: same drift as VP, diffusion damped by (1 - e^{-2∫β}); std = 1 - e^{2 lmc} (no sqrt).
struct subvp_sde {
    static constexpr double T = 1.0;
    static constexpr double default_eps = 1e-3;
    double beta_0 = 0.1, beta_1 = 20.0;
    std::size_t N = 1000;

    subvp_sde() = default;
    subvp_sde(double beta_min, double beta_max, std::size_t n = 1000) : beta_0(beta_min), beta_1(beta_max), N(n) {
        detail::require_linear_beta(beta_min, beta_max, n, "subvp_sde");
    }

    [[nodiscard]] double beta(double t) const { return lb().beta(t); }
    [[nodiscard]] double drift_coef(double t) const { return -0.5 * lb().beta(t); }
    [[nodiscard]] double diffusion(double t) const {
        const double discount = -std::expm1(-2.0 * beta_0 * t - (beta_1 - beta_0) * t * t);
        return std::sqrt(lb().beta(t) * discount);
    }
    [[nodiscard]] marginal_coefs marginal(double t) const {
        detail::require_time(t, T, "subvp_sde::marginal");
        const double l = lb().log_mean_coef(t);
        return {std::exp(l), -std::expm1(2.0 * l)};
    }
    // The reference has no dedicated rule for sub-VP: Euler–Maruyama with dt = 1/N.
    [[nodiscard]] discrete_step discretize(double t) const {
        detail::require_count(N, "subvp_sde::discretize", "N");  // N is a public member: checked where it is used
        return discretize_em(t, T / static_cast<double>(N));
    }
    [[nodiscard]] discrete_step discretize_em(double t, double dt) const {
        detail::require_time(t, T, "subvp_sde::discretize_em");
        detail::require(dt > 0.0 && dt <= T, "subvp_sde::discretize_em", "dt", dt, "(0, 1]");
        return {drift_coef(t) * dt, diffusion(t) * std::sqrt(dt)};
    }

    [[nodiscard]] static constexpr double prior_mean() noexcept { return 0.0; }
    [[nodiscard]] static constexpr double prior_std() noexcept { return 1.0; }
    [[nodiscard]] static double prior_logp(double sum_sq, double dim) {
        return detail::gaussian_logp(sum_sq, dim, 1.0, "subvp_sde::prior_logp");
    }

    // λ = log(u / (1-u)²) with u = e^{2 lmc}.
    [[nodiscard]] double log_snr(double t) const {
        detail::require_time(t, T, "subvp_sde::log_snr");
        const double l2 = 2.0 * lb().log_mean_coef(t);
        return l2 - 2.0 * std::log(-std::expm1(l2));
    }
    // u/(1-u)² = a := e^λ  =>  a u² - (2a+1) u + a = 0; the root in (0,1) is 2a / (2a+1 + sqrt(4a+1)).
    [[nodiscard]] double t_from_log_snr(double lambda) const {
        detail::require(!std::isnan(lambda), "subvp_sde::t_from_log_snr", "lambda", lambda, "[-inf, inf]");
        const double a = std::exp(lambda);
        const double u = 2.0 * a / (2.0 * a + 1.0 + std::sqrt(4.0 * a + 1.0));
        return lb().t_from_log_mean_coef(0.5 * std::log(u));
    }

private:
    [[nodiscard]] detail::linear_beta lb() const noexcept { return {beta_0, beta_1}; }
};

// Variance-exploding SDE (SMLD/NCSN's continuous limit), defaults σmin = 0.01, σmax = 50, N = 1000.
struct ve_sde {
    static constexpr double T = 1.0;
    static constexpr double default_eps = 1e-5;
    double sigma_min = 0.01, sigma_max = 50.0;
    std::size_t N = 1000;

    ve_sde() = default;
    ve_sde(double smin, double smax, std::size_t n = 1000) : sigma_min(smin), sigma_max(smax), N(n) {
        detail::require(std::isfinite(smin) && smin > 0.0, "ve_sde", "sigma_min", smin, "(0, inf)");
        detail::require(std::isfinite(smax) && smax > smin, "ve_sde", "sigma_max", smax, "(sigma_min, inf)");
        detail::require_count(n, "ve_sde", "N");
    }

    [[nodiscard]] double sigma(double t) const { return sigma_min * std::pow(sigma_max / sigma_min, t); }
    [[nodiscard]] static constexpr double drift_coef(double) noexcept { return 0.0; }
    [[nodiscard]] double diffusion(double t) const {
        return sigma(t) * std::sqrt(2.0 * (std::log(sigma_max) - std::log(sigma_min)));
    }
    [[nodiscard]] marginal_coefs marginal(double t) const {
        detail::require_time(t, T, "ve_sde::marginal");
        return {1.0, sigma(t)};
    }
    // σ_i = exp(linspace(log σmin, log σmax, N))[i].
    [[nodiscard]] double discrete_sigma(std::size_t i) const {
        detail::require(i < N, "ve_sde::discrete_sigma", "i", i, "[0, N-1]");
        const double a = std::log(sigma_min), b = std::log(sigma_max);
        if (N == 1) return std::exp(a);
        const double x = i + 1 == N ? b : static_cast<double>(i) * ((b - a) / static_cast<double>(N - 1)) + a;
        return std::exp(x);
    }
    // SMLD discretisation: i = int(t(N-1)), f = 0, G = sqrt(σ_i² - σ_{i-1}²) with σ_{-1} = 0.
    [[nodiscard]] discrete_step discretize(double t) const {
        detail::require_time(t, T, "ve_sde::discretize");
        detail::require_count(N, "ve_sde::discretize", "N");  // N is a public member: checked where it is used
        const std::size_t i = detail::sde_timestep_index(t, N);
        const double s = discrete_sigma(i), adj = i == 0 ? 0.0 : discrete_sigma(i - 1);
        return {0.0, std::sqrt(s * s - adj * adj)};
    }
    [[nodiscard]] discrete_step discretize_em(double t, double dt) const {
        detail::require_time(t, T, "ve_sde::discretize_em");
        detail::require(dt > 0.0 && dt <= T, "ve_sde::discretize_em", "dt", dt, "(0, 1]");
        return {0.0, diffusion(t) * std::sqrt(dt)};
    }

    [[nodiscard]] static constexpr double prior_mean() noexcept { return 0.0; }
    [[nodiscard]] double prior_std() const noexcept { return sigma_max; }
    [[nodiscard]] double prior_logp(double sum_sq, double dim) const {
        return detail::gaussian_logp(sum_sq, dim, sigma_max, "ve_sde::prior_logp");
    }

    // λ(t) = -2 log σ(t); inverse t = (log σ - log σmin) / log(σmax/σmin), σ = e^{-λ/2} (unclamped).
    [[nodiscard]] double log_snr(double t) const {
        detail::require_time(t, T, "ve_sde::log_snr");
        return -2.0 * (std::log(sigma_min) + t * std::log(sigma_max / sigma_min));
    }
    [[nodiscard]] double t_from_log_snr(double lambda) const {
        detail::require(std::isfinite(lambda), "ve_sde::t_from_log_snr", "lambda", lambda, "(-inf, inf)");
        return (-0.5 * lambda - std::log(sigma_min)) / std::log(sigma_max / sigma_min);
    }
};

}  // namespace diffuse
