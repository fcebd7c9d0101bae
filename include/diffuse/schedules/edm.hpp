#pragma once
// The σ table of diffusers' EDM schedulers (EDMEulerScheduler, EDMDPMSolverMultistepScheduler): N values of a
// Karras (Karras et al. 2022, eq. 5) or exponential (log-linear, k-diffusion's get_sigmas_exponential) schedule
// between sigma_max and sigma_min, then a final σ, all rounded to float32 as upstream stores them.
//
//   karras       σ_i = (σmax^{1/ρ} + i/(N−1)·(σmin^{1/ρ} − σmax^{1/ρ}))^ρ        (schedules/sigmas.hpp)
//   exponential  σ_i = exp(log σmax + i/(N−1)·(log σmin − log σmax))             (the "cosxl" schedule)
//   final σ      0 (final_sigmas_type "zero"), or for "sigma_min" the last spaced value repeated
//                (EDMEulerScheduler) or float32(sigma_min) (EDMDPMSolverMultistepScheduler)
//
// The values are the exact formulas in double, rounded once to float32. EDMEulerScheduler evaluates them in
// float64 and rounds the same way; EDMDPMSolverMultistepScheduler evaluates them in float32 (its ramp is a
// float32 torch.linspace), which puts its entries up to ~1e-6 (relative) away from these — its own float32
// rounding error, not a different schedule.
//
// The network time of these schedulers is c_noise = log(σ)/4 (samplers/model.hpp: edm_time); the pipelines
// start from init_noise_sigma = √(σmax² + 1) times unit noise (an upstream quirk: σ_0 = σmax is the state's
// noise level; pass the initial state explicitly to reproduce it).

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/solver_sigmas.hpp"

namespace diffuse {

// diffusers' sigma_schedule.
enum class edm_sigma_schedule { karras, exponential };

[[nodiscard]] inline edm_sigma_schedule parse_edm_sigma_schedule(std::string_view name) {
    if (name == "karras") return edm_sigma_schedule::karras;
    if (name == "exponential") return edm_sigma_schedule::exponential;
    detail::require(false, "parse_edm_sigma_schedule", "sigma_schedule", name, "{karras, exponential}");
    return edm_sigma_schedule::karras;
}

// The table options under the scheduler_config.json names (sigma_min, sigma_max, rho, sigma_schedule,
// final_sigmas_type). final_sigmas_type "zero" is final_sigma_rule::zero; "sigma_min" is
// final_sigma_rule::repeat_last_spaced for EDMEulerScheduler and final_sigma_rule::sigma_min for
// EDMDPMSolverMultistepScheduler (edm_final_sigma below chooses).
struct edm_schedule_options {
    double sigma_min = 0.002;
    double sigma_max = 80.0;
    double rho = 7.0;  // Karras only
    edm_sigma_schedule sigma_schedule = edm_sigma_schedule::karras;
    final_sigma_rule final_sigma = final_sigma_rule::zero;
};

// Which EDM scheduler reads final_sigmas_type (they differ on "sigma_min").
enum class edm_scheduler { euler, dpm_solver_multistep };

// final_sigmas_type ("zero" or "sigma_min") as the given scheduler reads it.
[[nodiscard]] inline final_sigma_rule edm_final_sigma(std::string_view final_sigmas_type, edm_scheduler s) {
    if (final_sigmas_type == "zero") return final_sigma_rule::zero;
    detail::require(final_sigmas_type == "sigma_min", "edm_final_sigma", "final_sigmas_type", final_sigmas_type, "{zero, sigma_min}");
    return s == edm_scheduler::euler ? final_sigma_rule::repeat_last_spaced : final_sigma_rule::sigma_min;
}

// The N + 1 σ of set_timesteps(num_inference_steps = N) (float32 values, non-increasing).
[[nodiscard]] inline std::vector<double> edm_sigmas(std::size_t num_inference_steps, const edm_schedule_options& o) {
    constexpr const char* where = "edm_sigmas";
    detail::require_count(num_inference_steps, where, "num_inference_steps");
    detail::require(std::isfinite(o.sigma_min) && o.sigma_min > 0, where, "sigma_min", o.sigma_min, "(0, inf)");
    detail::require(std::isfinite(o.sigma_max) && o.sigma_max > o.sigma_min, where, "sigma_max", o.sigma_max,
                    "(sigma_min, inf) with sigma_min = " + std::to_string(o.sigma_min));
    std::vector<double> s = o.sigma_schedule == edm_sigma_schedule::karras
                                ? karras_sigmas(num_inference_steps, o.sigma_min, o.sigma_max, o.rho)
                                : exponential_sigmas(num_inference_steps, o.sigma_min, o.sigma_max);
    for (auto& v : s) v = detail::to_f32(v);
    const std::size_t N = num_inference_steps;
    switch (o.final_sigma) {
        case final_sigma_rule::zero: s[N] = 0.0; break;
        case final_sigma_rule::sigma_min: s[N] = detail::to_f32(o.sigma_min); break;
        case final_sigma_rule::repeat_last_spaced: s[N] = s[N - 1]; break;
    }
    return s;
}

}  // namespace diffuse
