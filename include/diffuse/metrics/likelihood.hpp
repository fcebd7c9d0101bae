#pragma once
// Negative log-likelihood in bits per dimension.
//
//   vlb_bits_per_dim(model, schedule, x0, seed)
//       The discrete variational bound of a DDPM (Ho et al. 2020, eq. 5; Nichol & Dhariwal 2021,
//       "calc_bpd_loop"): Σ_{t>0} KL(q(x_{t−1}|x_t,x₀) ‖ p(x_{t−1}|x_t)) + L₀ + KL(q(x_T|x₀) ‖ N(0,I)),
//       one x_t per timestep. The network is called as model(x_t, t, out) with t the timestep index
//       (as double); out holds ε̂ (fixed variance) or [ε̂ | v] (learned range), see losses/vlb.hpp.
//
//   ode_log_likelihood(drift, prior_logp, x0, options)
//       The probability-flow ODE (Song et al. 2021, "Score-Based Generative Modeling through SDEs",
//       §4.3 and appendix D.2): dx/dt = f̃(x, t), log p₀(x₀) = log p_T(x_T) + ∫_ε^T ∇·f̃(x_t, t) dt,
//       with the divergence estimated by Hutchinson's trick (Hutchinson 1989; Grathwohl et al. 2019,
//       FFJORD): ∇·f̃ ≈ zᵀ(∂f̃/∂x)z with one fixed probe z per sample and solve (Rademacher or Gaussian).
//       The Jacobian-vector product is a central difference zᵀ(f̃(x + hz) − f̃(x − hz))/(2h), exact for
//       drifts linear in x and O(h²) otherwise; h = options.fd_step. The ODE is integrated with the
//       adaptive Dormand–Prince 5(4) method of samplers/dopri5.hpp (the RK45 of scipy's solve_ivp that
//       score_sde uses; the same integrator as sample_pf_ode_rk45), rtol = atol = 1e-5 by default.
//   Bits/dim: nll/(D·ln 2) + log₂(data_scale), where data_scale is how much the model's data space is
//   stretched relative to unit-width quantisation bins (score_sde: 256 levels mapped to [−1, 1] gives
//   data_scale = 128, the offset 7 of its likelihood code).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/core/host_rng.hpp"
#include "diffuse/losses/vlb.hpp"
#include "diffuse/samplers/dopri5.hpp"

namespace diffuse {

struct vlb_result {
    std::vector<double> total_bpd;  // per sample
    std::vector<double> prior_bpd;  // per sample
    std::vector<double> terms_bpd;  // T × B: L_t for each timestep t (row t)
};

// x0: B×D (row-major doubles). fixed_log_variance: empty for a learned-range model, else one log
// variance per timestep (e.g. posterior_log_variance_clipped for "fixed_small").
template <class Model>
[[nodiscard]] vlb_result vlb_bits_per_dim(Model&& model, const vlb_schedule& s, std::span<const double> x0,
                                          std::size_t batch, std::uint64_t seed,
                                          std::span<const double> fixed_log_variance = {}) {
    constexpr const char* where = "vlb_bits_per_dim";
    detail::require(batch >= 1 && x0.size() % batch == 0 && !x0.empty(), where, "batch", batch,
                    "a positive divisor of x0.size() = " + std::to_string(x0.size()));
    const std::size_t B = batch, D = x0.size() / batch, T = s.size();
    const bool learned = fixed_log_variance.empty();
    if (!learned && fixed_log_variance.size() != T)
        detail::fail(where, "fixed_log_variance has " + std::to_string(fixed_log_variance.size()) +
                                " values but the schedule has " + std::to_string(T));
    vlb_result r;
    r.total_bpd.assign(B, 0.0);
    r.prior_bpd.assign(B, 0.0);
    r.terms_bpd.assign(T * B, 0.0);
    std::vector<double> xt(B * D), out(B * D * (learned ? 2 : 1)), cond(B), terms(B);
    std::vector<std::size_t> tt(B);
    host_rng rng(seed);
    for (std::size_t t = T; t-- > 0;) {
        const double a = std::sqrt(s.alphas_cumprod[t]), sg = std::sqrt(1.0 - s.alphas_cumprod[t]);
        for (std::size_t i = 0; i < B * D; ++i) xt[i] = a * x0[i] + sg * rng.normal();  // x_t ~ q(x_t|x₀)
        std::fill(cond.begin(), cond.end(), double(t));
        std::fill(tt.begin(), tt.end(), t);
        model(tensor_view<const double>{xt.data(), B, D}, std::span<const double>(cond),
              tensor_view<double>{out.data(), B, out.size() / B});
        vb_terms_bpd(s, tensor_view<const double>{out.data(), B, out.size() / B}, tensor_view<const double>{x0.data(), B, D},
                     tensor_view<const double>{xt.data(), B, D}, tt, terms, fixed_log_variance);
        for (std::size_t b = 0; b < B; ++b) {
            r.terms_bpd[t * B + b] = terms[b];
            r.total_bpd[b] += terms[b];
        }
    }
    prior_bpd(s, tensor_view<const double>{x0.data(), B, D}, r.prior_bpd);
    for (std::size_t b = 0; b < B; ++b) r.total_bpd[b] += r.prior_bpd[b];
    return r;
}

enum class hutchinson_probe { rademacher, gaussian };

struct ode_likelihood_options {
    double t_start = 1e-5;  // ε: integrate from here …
    double t_end = 1.0;     // … to T
    double rtol = 1e-5, atol = 1e-5;
    hutchinson_probe probe = hutchinson_probe::rademacher;
    std::uint64_t seed = 0;
    double fd_step = 1e-4;     // h of the central-difference Jacobian-vector product
    double data_scale = 1.0;   // bits/dim offset log₂(data_scale)
    std::size_t max_steps = 100000;  // step attempts
};

struct ode_likelihood_result {
    std::vector<double> log_likelihood;  // log p₀(x₀) in nats, per sample
    std::vector<double> bits_per_dim;    // per sample
    std::vector<double> prior_logp, delta_logp;
    std::size_t function_evaluations = 0, steps = 0;
};

// log N(x; 0, σ²I) of one sample of D values.
[[nodiscard]] inline double gaussian_prior_logp(std::span<const double> x, double sigma = 1.0) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double D = double(x.size());
    return -0.5 * D * std::log(2.0 * std::numbers::pi * sigma * sigma) - ss / (2.0 * sigma * sigma);
}

// drift(x, t, out): f̃ for a batch (x and out: B×D doubles, row-major; t a scalar).
// prior_logp(x_T sample): log p_T of one sample (span of D values).
template <class Drift, class Prior>
[[nodiscard]] ode_likelihood_result ode_log_likelihood(Drift&& drift, Prior&& prior_logp, std::span<const double> x0,
                                                       std::size_t batch, const ode_likelihood_options& opt = {}) {
    constexpr const char* where = "ode_log_likelihood";
    detail::require(batch >= 1 && !x0.empty() && x0.size() % batch == 0, where, "batch", batch,
                    "a positive divisor of x0.size() = " + std::to_string(x0.size()));
    detail::require(opt.t_start >= 0.0 && opt.t_end > opt.t_start && std::isfinite(opt.t_end), where, "t_end",
                    opt.t_end, "(t_start, inf) with t_start >= 0");
    detail::require(opt.rtol > 0.0 && opt.atol > 0.0, where, "rtol", opt.rtol, "(0, inf) (and atol > 0)");
    detail::require(opt.fd_step > 0.0 && std::isfinite(opt.fd_step), where, "fd_step", opt.fd_step, "(0, inf)");
    detail::require(opt.data_scale > 0.0 && std::isfinite(opt.data_scale), where, "data_scale", opt.data_scale, "(0, inf)");
    for (std::size_t i = 0; i < x0.size(); ++i)
        if (!std::isfinite(x0[i])) detail::fail(where, "x0 holds a non-finite value at index " + std::to_string(i));
    const std::size_t B = batch, D = x0.size() / batch, N = B * D;
    // probes, fixed for the whole solve
    std::vector<double> z(N);
    host_rng rng(opt.seed);
    for (auto& v : z) v = opt.probe == hutchinson_probe::rademacher ? rng.rademacher() : rng.normal();
    ode_likelihood_result res;
    // Augmented state, one row per sample: y_b = [x_b (D values), ∫div_b];  dy/dt = [f̃, ∇·f̃].
    const std::size_t M = D + 1;
    std::vector<double> x(N), f(N), xp(N), xm(N), fp(N), fm(N);
    auto rhs = [&](tensor_view<double> y, std::span<const double> times, tensor_view<double> dy) {
        const double t = times[0];  // one system (batch norm): every sample is at the same time
        for (std::size_t b = 0; b < B; ++b) std::copy_n(y.sample(b), D, x.data() + b * D);
        drift(x, t, f);
        const double h = opt.fd_step;
        for (std::size_t i = 0; i < N; ++i) xp[i] = x[i] + h * z[i], xm[i] = x[i] - h * z[i];
        drift(xp, t, fp);
        drift(xm, t, fm);
        res.function_evaluations += 3;
        for (std::size_t b = 0; b < B; ++b) {
            double s = 0;
            for (std::size_t j = 0; j < D; ++j) {
                const std::size_t i = b * D + j;
                s += z[i] * (fp[i] - fm[i]) / (2.0 * h);  // zᵀ J z
            }
            std::copy_n(f.data() + b * D, D, dy.sample(b));
            dy.sample(b)[D] = s;
        }
    };
    // samplers/dopri5.hpp's adaptive Dormand–Prince 5(4), the whole batch as one system (scipy's RK45 on
    // the flattened state, as score_sde integrates it).
    std::vector<double> y(B * M, 0.0);
    for (std::size_t b = 0; b < B; ++b) std::copy_n(x0.data() + b * D, D, y.data() + b * M);
    dopri5_options dopt;
    dopt.rtol = opt.rtol;
    dopt.atol = opt.atol;
    dopt.norm = rk_error_norm::batch;
    dopt.max_attempts = opt.max_steps;
    dopri5_integrator<double> ode(B, M, dopt, 1.0, where);
    std::vector<double> t(B, opt.t_start), bound(B, opt.t_end);
    const tensor_view<double> yv{y.data(), B, M};
    ode.start(rhs, yv, t, bound);
    ode.advance(rhs, yv, t, bound, 0);
    res.steps = ode.stats().accepted / B;  // batch norm: every sample takes the same steps
    res.log_likelihood.resize(B);
    res.bits_per_dim.resize(B);
    res.prior_logp.resize(B);
    res.delta_logp.resize(B);
    for (std::size_t b = 0; b < B; ++b) {
        res.prior_logp[b] = prior_logp(std::span<const double>(y.data() + b * M, D));
        res.delta_logp[b] = y[b * M + D];
        res.log_likelihood[b] = res.prior_logp[b] + res.delta_logp[b];
        res.bits_per_dim[b] = -res.log_likelihood[b] / (double(D) * std::numbers::ln2) + std::log2(opt.data_scale);
    }
    return res;
}

}  // namespace diffuse
