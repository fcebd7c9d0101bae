#pragma once
// The timestep and σ table of diffusers' exponential-integrator solver schedulers (DPMSolverMultistepScheduler,
// DEISMultistepScheduler): set_timesteps reproduced with its exact arithmetic (numpy float64 where upstream
// uses numpy, float32 where it holds float32 tensors), so a run fed these values walks the same states.
//
//   timesteps  N network timesteps (integers), from the spacing of Lin et al. 2024 (Table 2) over N + 1
//              points with the last dropped, or from the σ list below (σ → t by log-σ interpolation)
//   sigmas     N + 1 values in VE scale σ = √((1 − ᾱ)/ᾱ), rounded to float32 as upstream stores them:
//              the training σ at the timesteps, or Karras (Karras et al. 2022, eq. 5, ρ = 7), exponential
//              (log-linear) or Lu's uniform log-SNR spacing (Lu et al. 2022b, "DPM-Solver++", §5), then a
//              final σ (0, σ_min, or the spaced list's last repeated)
//
// λ_min clipping (lambda_min_clipped, for cosine-like schedules): the timesteps stop where the half log-SNR
// λ_t = log α_t − log σ_t (float32) falls below the bound.
// Trailing spacing walks numpy.arange(last, 0, −T/N): for some (T, N) numpy's length rule gives N + 1 values
// and the last is timestep −1 (upstream then runs N + 1 steps); that table is refused.
//
// The training σ table. Upstream computes σ = ((1 − ᾱ)/ᾱ)^½ on a float32 tensor and log σ with numpy's float32
// log; on x86 neither is correctly rounded (PyTorch's CPU sqrt goes through MKL's vector math, numpy's float32
// log through its SIMD kernel): each is one float32 ulp (≤ 1.2e-7 relative) away from the correctly rounded
// value on ~15–20 % of the 1000 entries of the usual schedules. solver_training_sigmas computes the correctly
// rounded table; pass the reference's own (training_sigma_table) to reproduce a run bit for bit.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse {

// Which σ list the solver walks (diffusers: none, use_karras_sigmas, use_exponential_sigmas, use_lu_lambdas).
enum class solver_sigma_spacing { training, karras, exponential, lu_lambdas };
// The σ after the last step: diffusers' final_sigmas_type "zero" / "sigma_min", or DEIS's rule (σ_min after the
// training list, the spaced list's last value repeated after a Karras or exponential list).
enum class final_sigma_rule { zero, sigma_min, repeat_last_spaced };

struct solver_schedule_options {
    timestep_spacing spacing = timestep_spacing::linspace;
    std::int64_t steps_offset = 0;  // "leading" only
    solver_sigma_spacing sigma_spacing = solver_sigma_spacing::training;
    final_sigma_rule final_sigma = final_sigma_rule::zero;
    double lambda_min_clipped = -std::numeric_limits<double>::infinity();
    // diffusers rounds the timesteps of a Karras or Lu list except for beta_schedule squaredcos_cap_v2
    // (exponential lists are truncated by the int64 cast).
    bool round_spaced_timesteps = true;
};

// The training table the lists are built from: σ_t and log σ_t (float32 values), t = 0 … T − 1.
struct training_sigma_table {
    std::vector<double> sigmas, log_sigmas;
};

struct solver_schedule {
    std::vector<std::int64_t> timesteps;  // N network timesteps
    std::vector<double> sigmas;           // N + 1 VE-scale σ (float32 values), non-increasing
};

namespace detail {

[[nodiscard]] inline double to_f32(double v) { return static_cast<double>(static_cast<float>(v)); }

// numpy.arange(start, stop, step) in float64: length ceil((stop − start)/step), values start + i·(next − start).
[[nodiscard]] inline std::vector<double> numpy_arange(double start, double stop, double step) {
    const double len = std::ceil((stop - start) / step);
    const std::size_t n = len > 0 ? static_cast<std::size_t>(len) : 0;
    const double delta = (start + step) - start;
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i == 0 ? start : start + static_cast<double>(i) * delta;
    return v;
}

// diffusers' _sigma_to_t: log-σ interpolation on the float32 log-σ table (ascending in t), w clamped to [0, 1].
// With numpy 1.x's value-based casting (the installed reference) the float64 log σ meets the float32 table as a
// float32, so the bracket search and w run in float32; only t = (1 − w)·low + w·high is float64.
[[nodiscard]] inline double solver_sigma_to_t(std::span<const double> log_sigmas, double sigma) {
    const float log_sigma = static_cast<float>(std::log(std::max(sigma, 1e-10)));
    const std::size_t n = log_sigmas.size();
    const auto cnt = static_cast<std::size_t>(
        std::upper_bound(log_sigmas.begin(), log_sigmas.end(), static_cast<double>(log_sigma)) - log_sigmas.begin());
    const std::size_t low = std::min(cnt == 0 ? std::size_t{0} : cnt - 1, n - 2);
    const float lo = static_cast<float>(log_sigmas[low]), hi = static_cast<float>(log_sigmas[low + 1]);
    const float w = std::clamp((lo - log_sigma) / (lo - hi), 0.0f, 1.0f);
    return static_cast<double>(1.0f - w) * static_cast<double>(low) + static_cast<double>(w) * static_cast<double>(low + 1);
}

}  // namespace detail

// set_timesteps of DPMSolverMultistepScheduler / DEISMultistepScheduler for the float32 ᾱ table
// `alphas_cumprod` (every value in (0, 1]) and N = num_inference_steps.
// The correctly rounded float32 training table of a float32 ᾱ table (every value in (0, 1], decreasing).
[[nodiscard]] inline training_sigma_table solver_training_sigmas(std::span<const double> alphas_cumprod) {
    constexpr std::string_view where = "solver_training_sigmas";
    training_sigma_table tab;
    for (std::size_t i = 0; i < alphas_cumprod.size(); ++i) {
        const float a = static_cast<float>(alphas_cumprod[i]);
        if (!(a > 0.0f && a <= 1.0f))
            detail::require(false, where, "alphas_cumprod[" + std::to_string(i) + "]", alphas_cumprod[i],
                            "(0, 1] (a zero-terminal-SNR table needs its last value replaced by 2^-24 first)");
        tab.sigmas.push_back(static_cast<double>(std::sqrt((1.0f - a) / a)));
        tab.log_sigmas.push_back(detail::to_f32(std::log(tab.sigmas.back())));
    }
    return tab;
}

// set_timesteps of DPMSolverMultistepScheduler / DEISMultistepScheduler for the float32 ᾱ table
// `alphas_cumprod`, N = num_inference_steps and the training table `train` (solver_training_sigmas(ᾱ), or the
// reference's own).
[[nodiscard]] inline solver_schedule multistep_solver_schedule(std::span<const double> alphas_cumprod,
                                                               std::size_t num_inference_steps,
                                                               const solver_schedule_options& opt,
                                                               const training_sigma_table& train) {
    constexpr std::string_view where = "multistep_solver_schedule";
    const std::size_t T = alphas_cumprod.size(), N = num_inference_steps;
    detail::require(T >= 2, where, "num_train_timesteps", T, ">= 2");
    detail::require_steps(T, N, where);
    detail::require(opt.steps_offset >= 0, where, "steps_offset", opt.steps_offset, ">= 0");
    detail::require(!std::isnan(opt.lambda_min_clipped), where, "lambda_min_clipped", opt.lambda_min_clipped,
                    "a number or -inf");
    detail::require(train.sigmas.size() == T && train.log_sigmas.size() == T, where, "training table size",
                    train.sigmas.size(), "num_train_timesteps = " + std::to_string(T) + " sigmas and log sigmas");

    // The training table, and λ = log √ᾱ − log √(1 − ᾱ) in float32 for the clipping.
    const std::vector<double>& sig = train.sigmas;
    const std::vector<double>& log_sig = train.log_sigmas;
    std::size_t below = 0;  // searchsorted(flip(λ), λ_min): how many λ lie below the bound
    const float lam_min = static_cast<float>(opt.lambda_min_clipped);
    for (std::size_t i = 0; i < T; ++i) {
        const float a = static_cast<float>(alphas_cumprod[i]);
        if (!(a > 0.0f && a <= 1.0f))
            detail::require(false, where, "alphas_cumprod[" + std::to_string(i) + "]", alphas_cumprod[i],
                            "(0, 1] (a zero-terminal-SNR table needs its last value replaced by 2^-24 first)");
        if (!(sig[i] > 0 && std::isfinite(sig[i]) && std::isfinite(log_sig[i]) && (i == 0 || sig[i] > sig[i - 1])))
            detail::require(false, where, "training sigma " + std::to_string(i), sig[i],
                            "(0, inf), increasing in t (alphas_cumprod strictly decreasing)");
        if (!(i == 0 || log_sig[i] >= log_sig[i - 1]))
            detail::require(false, where, "training log sigma " + std::to_string(i), log_sig[i], "non-decreasing in t");
        const float lam = std::log(std::sqrt(a)) - std::log(std::sqrt(1.0f - a));
        below += lam < lam_min;
    }
    const std::size_t last = T - below;  // one past the last usable timestep
    detail::require(last >= 1, where, "lambda_min_clipped", opt.lambda_min_clipped,
                    "a bound that leaves at least one timestep");

    // Timesteps from the spacing (Lin et al. 2024, Table 2) over N + 1 points, the last dropped.
    std::vector<double> ts;
    const double Nd = static_cast<double>(N);
    switch (opt.spacing) {
        case timestep_spacing::linspace: {
            const auto y = detail::numpy_linspace(0.0, static_cast<double>(last) - 1.0, N + 1);
            for (std::size_t i = 0; i < N; ++i) ts.push_back(std::rint(y[N - i]));
            break;
        }
        case timestep_spacing::leading: {
            const std::size_t ratio = last / (N + 1);
            for (std::size_t i = 0; i < N; ++i)
                ts.push_back(static_cast<double>((N - i) * ratio) + static_cast<double>(opt.steps_offset));
            break;
        }
        case timestep_spacing::trailing: {
            for (double v : detail::numpy_arange(static_cast<double>(last), 0.0, -(static_cast<double>(T) / Nd)))
                ts.push_back(std::rint(v) - 1.0);
            break;
        }
    }

    // The σ list.
    std::vector<double> s;
    const double smin = sig.front(), smax = sig.back();
    auto spaced_timesteps = [&](bool round) {
        ts.clear();
        for (double v : s) {
            const double t = detail::solver_sigma_to_t(log_sig, v);
            ts.push_back(round ? std::rint(t) : std::trunc(t));  // the int64 cast truncates
        }
    };
    switch (opt.sigma_spacing) {
        case solver_sigma_spacing::training:
            for (double t : ts)
                if (t >= 0 && t < double(T)) s.push_back(sig[static_cast<std::size_t>(t)]);  // np.interp at knots
            break;
        case solver_sigma_spacing::karras: {  // _convert_to_karras: numpy float64, ρ = 7
            detail::require(smax > smin, where, "alphas_cumprod", alphas_cumprod[0], "a decreasing table (sigma_max > sigma_min)");
            const auto r = detail::numpy_linspace(0.0, 1.0, N);
            const double lo = std::pow(smin, 1.0 / 7.0), hi = std::pow(smax, 1.0 / 7.0);
            for (std::size_t i = 0; i < N; ++i) s.push_back(std::pow(hi + r[i] * (lo - hi), 7.0));
            spaced_timesteps(opt.round_spaced_timesteps);
            break;
        }
        case solver_sigma_spacing::exponential: {  // _convert_to_exponential
            detail::require(smax > smin, where, "alphas_cumprod", alphas_cumprod[0], "a decreasing table (sigma_max > sigma_min)");
            for (double l : detail::numpy_linspace(std::log(smax), std::log(smin), N)) s.push_back(std::exp(l));
            spaced_timesteps(false);
            break;
        }
        case solver_sigma_spacing::lu_lambdas: {  // _convert_to_lu: uniform in log σ (ρ = 1), from the float32 log σ
            const double lmin = log_sig.front(), lmax = log_sig.back();
            const auto r = detail::numpy_linspace(0.0, 1.0, N);
            for (std::size_t i = 0; i < N; ++i) s.push_back(std::exp(lmax + r[i] * (lmin - lmax)));
            spaced_timesteps(opt.round_spaced_timesteps);
            break;
        }
    }

    for (double t : ts)
        if (!(t >= 0 && t <= double(T - 1)))
            detail::require(false, where, "a timestep of the table", t,
                            "[0, " + std::to_string(T - 1) +
                                "] (steps_offset too large, or trailing spacing whose numpy.arange yields timestep -1)");
    detail::require(!ts.empty(), where, "num_inference_steps", N, "a count that leaves at least one timestep");

    const bool spaced = opt.sigma_spacing != solver_sigma_spacing::training;
    switch (opt.final_sigma) {
        case final_sigma_rule::zero: s.push_back(0.0); break;
        case final_sigma_rule::sigma_min: s.push_back(smin); break;
        case final_sigma_rule::repeat_last_spaced: s.push_back(spaced ? s.back() : smin); break;
    }
    solver_schedule out;
    out.sigmas.reserve(s.size());
    for (double v : s) out.sigmas.push_back(detail::to_f32(v));
    for (double t : ts) out.timesteps.push_back(static_cast<std::int64_t>(t));
    return out;
}

// The same with the correctly rounded training table of alphas_cumprod.
[[nodiscard]] inline solver_schedule multistep_solver_schedule(std::span<const double> alphas_cumprod,
                                                               std::size_t num_inference_steps,
                                                               const solver_schedule_options& opt = {}) {
    return multistep_solver_schedule(alphas_cumprod, num_inference_steps, opt, solver_training_sigmas(alphas_cumprod));
}

}  // namespace diffuse
