#pragma once
// Flow-matching (rectified flow) noise levels: the σ ∈ [0, 1] of x_σ = (1 − σ)·x₀ + σ·ε, as diffusers'
// FlowMatchEulerDiscreteScheduler and FlowMatchHeunDiscreteScheduler compute them (SD3, Flux, and the
// models after them), step by step in the reference's precision so that the grids have the same float32 values.
//
//   flow_training_sigmas(cfg)        the training grid: timesteps linspace(1, T, T)[::-1], σ = t/T, then the
//                                    static shift unless dynamic shifting is on (float32)
//   shift_sigma(σ, s)                static shift σ' = s·σ/(1 + (s − 1)·σ)      (Esser et al. 2024, SD3 eq. 23)
//   time_shift(kind, μ, σ)           dynamic (resolution-dependent) shift: exponential e^μ/(e^μ + (1/σ − 1)),
//                                    linear μ/(μ + (1/σ − 1))                   (Flux; diffusers' time_shift)
//   calculate_shift(seq_len, …)      μ linear in the image sequence length (diffusers' calculate_shift)
//   stretch_to_terminal(σ, end)      shift_terminal: 1 − (1 − σ)/((1 − σ_last)/(1 − end)) (LTX-Video)
//   flow_match_sigmas(cfg, n, …)     set_timesteps(n[, mu][, sigmas]): n σ values, the final 0 (1 when
//                                    inverted), and the network timesteps σ·T
//   (use_beta_sigmas spaces by beta_quantile, schedules/beta_quantile.hpp)

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/schedules/beta_quantile.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse {

enum class time_shift_kind { exponential, linear };
// diffusers' use_karras_sigmas / use_exponential_sigmas / use_beta_sigmas (at most one).
enum class flow_sigma_spacing { none, karras, exponential, beta };

[[nodiscard]] inline time_shift_kind parse_time_shift_kind(std::string_view name) {
    if (name == "exponential") return time_shift_kind::exponential;
    if (name == "linear") return time_shift_kind::linear;
    detail::require(false, "parse_time_shift_kind", "time_shift_type", std::string(name), "{exponential, linear}");
    return time_shift_kind::exponential;
}

// FlowMatchEulerDiscreteScheduler's configuration under diffusers' names (defaults as there).
struct flow_match_config {
    std::size_t num_train_timesteps = 1000;
    double shift = 1.0;
    bool use_dynamic_shifting = false;
    time_shift_kind time_shift_type = time_shift_kind::exponential;
    std::optional<double> shift_terminal{};
    flow_sigma_spacing sigma_spacing = flow_sigma_spacing::none;
    bool invert_sigmas = false;
};

// Static shift (Esser et al. 2024, "Scaling Rectified Flow Transformers", eq. 23 with s = √(m/n)).
template <class R>
[[nodiscard]] R shift_sigma(R sigma, double shift) {
    const R s = static_cast<R>(shift), s1 = static_cast<R>(shift - 1.0);
    return s * sigma / (R(1) + s1 * sigma);
}

// Dynamic shifting: exponential e^μ/(e^μ + (1/σ − 1)^1), linear μ/(μ + (1/σ − 1)^1) (diffusers' time_shift with
// its σ exponent 1). σ = 0 gives 0.
template <class R>
[[nodiscard]] R time_shift(time_shift_kind kind, double mu, R sigma) {
    const R m = static_cast<R>(kind == time_shift_kind::exponential ? std::exp(mu) : mu);
    return m / (m + (R(1) / sigma - R(1)));
}

// diffusers' calculate_shift (Flux): μ = m·seq_len + b with m = (max_shift − base_shift)/(max_seq − base_seq),
// b = base_shift − m·base_seq.
[[nodiscard]] inline double calculate_shift(double image_seq_len, double base_seq_len = 256, double max_seq_len = 4096,
                                            double base_shift = 0.5, double max_shift = 1.15) {
    constexpr std::string_view where = "calculate_shift";
    detail::require(std::isfinite(image_seq_len) && image_seq_len >= 0, where, "image_seq_len", image_seq_len, "[0, inf)");
    detail::require(std::isfinite(base_seq_len), where, "base_seq_len", base_seq_len, "finite");
    detail::require(std::isfinite(max_seq_len) && max_seq_len != base_seq_len, where, "max_seq_len", max_seq_len,
                    "finite and != base_seq_len");
    detail::require(std::isfinite(base_shift), where, "base_shift", base_shift, "finite");
    detail::require(std::isfinite(max_shift), where, "max_shift", max_shift, "finite");
    const double m = (max_shift - base_shift) / (max_seq_len - base_seq_len);
    const double b = base_shift - m * base_seq_len;
    return image_seq_len * m + b;
}

namespace detail {
inline void check_flow_config(const flow_match_config& c, const char* where) {
    require_count(c.num_train_timesteps, where, "num_train_timesteps");
    require(c.num_train_timesteps >= 1, where, "num_train_timesteps", c.num_train_timesteps, ">= 1");
    require(std::isfinite(c.shift) && c.shift > 0, where, "shift", c.shift, "(0, inf)");
    if (c.shift_terminal)
        require(std::isfinite(*c.shift_terminal) && *c.shift_terminal >= 0 && *c.shift_terminal < 1, where, "shift_terminal",
                *c.shift_terminal, "[0, 1)");
}

}  // namespace detail


// The training grid (FlowMatchEulerDiscreteScheduler.__init__): T float32 values from 1 down to 1/T, shifted
// statically unless use_dynamic_shifting.
[[nodiscard]] inline std::vector<double> flow_training_sigmas(const flow_match_config& cfg = {}) {
    detail::check_flow_config(cfg, "flow_training_sigmas");
    const std::size_t T = cfg.num_train_timesteps;
    std::vector<double> s(T);
    for (std::size_t i = 0; i < T; ++i) {
        float v = static_cast<float>(double(T - i)) / static_cast<float>(T);  // timesteps / T in float32
        if (!cfg.use_dynamic_shifting) v = shift_sigma(v, cfg.shift);
        s[i] = static_cast<double>(v);
    }
    return s;
}

// set_timesteps' result: n + 1 σ values (the last 0, or 1 when inverted) and the n network timesteps σ·T,
// all float32 values.
struct flow_match_schedule {
    std::vector<double> sigmas;
    std::vector<double> timesteps;
};

namespace detail {
// The shift, terminal stretch, in the precision R the reference computes them in (numpy float64 for its own
// grid, float32 for user sigmas).
template <class R>
void shape_flow_sigmas(std::vector<R>& s, const flow_match_config& cfg, std::optional<double> mu) {
    for (auto& v : s) v = cfg.use_dynamic_shifting ? time_shift(cfg.time_shift_type, *mu, v) : shift_sigma(v, cfg.shift);
    if (cfg.shift_terminal && *cfg.shift_terminal != 0) {  // diffusers tests `if self.config.shift_terminal:`
        // numpy 1.x: a float32 scalar over a Python float divides in float64; the array division then runs in R
        const R scale = static_cast<R>(static_cast<double>(R(1) - s.back()) / (1.0 - *cfg.shift_terminal));
        for (auto& v : s) v = R(1) - (R(1) - v) / scale;
    }
}
}  // namespace detail

// FlowMatchEulerDiscreteScheduler.set_timesteps(num_inference_steps, mu=mu, sigmas=sigmas). Without sigmas the
// grid is linspace(σ_max·T, σ_min·T, n)/T over the training grid's range; `sigmas` (n values) replaces it.
// mu is required with use_dynamic_shifting (and ignored without).
[[nodiscard]] inline flow_match_schedule flow_match_sigmas(const flow_match_config& cfg, std::size_t num_inference_steps,
                                                           std::optional<double> mu = std::nullopt,
                                                           std::span<const double> sigmas = {}) {
    constexpr const char* where = "flow_match_sigmas";
    detail::check_flow_config(cfg, where);
    detail::require_count(num_inference_steps, where, "num_inference_steps");
    detail::require(num_inference_steps >= 1, where, "num_inference_steps", num_inference_steps, ">= 1");
    if (cfg.use_dynamic_shifting) {
        detail::require(mu.has_value(), where, "mu", "none", "a number when use_dynamic_shifting is set");
        detail::require(std::isfinite(*mu), where, "mu", *mu, "finite");
        if (cfg.time_shift_type == time_shift_kind::linear)
            detail::require(*mu > 0, where, "mu", *mu, "(0, inf) for the linear time shift");
    }
    if (!sigmas.empty())
        detail::require(sigmas.size() == num_inference_steps, where, "sigmas.size()", sigmas.size(),
                        "num_inference_steps = " + std::to_string(num_inference_steps));
    for (std::size_t i = 0; i < sigmas.size(); ++i)
        if (!(sigmas[i] > 0 && sigmas[i] <= 1))
            detail::require(false, where, "sigmas[" + std::to_string(i) + "]", sigmas[i], "(0, 1]");
    const std::size_t n = num_inference_steps;
    const double T = static_cast<double>(cfg.num_train_timesteps);

    std::vector<double> s(n);
    if (sigmas.empty()) {
        const auto train = flow_training_sigmas(cfg);
        const auto t = detail::numpy_linspace(train.front() * T, train.back() * T, n);
        for (std::size_t i = 0; i < n; ++i) s[i] = t[i] / T;
        detail::shape_flow_sigmas(s, cfg, mu);
    } else {  // np.array(sigmas).astype(np.float32): the shift runs in float32
        std::vector<float> f(n);
        for (std::size_t i = 0; i < n; ++i) f[i] = static_cast<float>(sigmas[i]);
        detail::shape_flow_sigmas(f, cfg, mu);
        for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<double>(f[i]);
    }
    if (cfg.sigma_spacing != flow_sigma_spacing::none) {
        const double lo = s.back(), hi = s.front();
        detail::require(lo > 0 && hi >= lo && std::isfinite(hi), where, "the shifted sigma range",
                        std::to_string(lo) + " .. " + std::to_string(hi), "0 < last <= first (karras/exponential/beta sigmas)");
        if (cfg.sigma_spacing == flow_sigma_spacing::karras) {  // _convert_to_karras, ρ = 7, numpy float64
            const auto r = detail::numpy_linspace(0.0, 1.0, n);
            const double a = std::pow(lo, 1.0 / 7.0), b = std::pow(hi, 1.0 / 7.0);
            for (std::size_t i = 0; i < n; ++i) s[i] = std::pow(b + r[i] * (a - b), 7.0);
        } else if (cfg.sigma_spacing == flow_sigma_spacing::exponential) {  // _convert_to_exponential
            const auto l = detail::numpy_linspace(std::log(hi), std::log(lo), n);
            for (std::size_t i = 0; i < n; ++i) s[i] = std::exp(l[i]);
        } else {  // _convert_to_beta: σ_min + ppf(1 − linspace(0, 1, n)_i; 0.6, 0.6)·(σ_max − σ_min) (Lee et al. 2024)
            const auto r = detail::numpy_linspace(0.0, 1.0, n);
            for (std::size_t i = 0; i < n; ++i) s[i] = lo + beta_quantile(1.0 - r[i], 0.6, 0.6) * (hi - lo);
        }
    }
    flow_match_schedule out;
    out.sigmas.resize(n + 1);
    out.timesteps.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        float v = static_cast<float>(s[i]);
        if (cfg.invert_sigmas) v = 1.0f - v;
        out.sigmas[i] = static_cast<double>(v);
        out.timesteps[i] = static_cast<double>(v * static_cast<float>(T));  // sigmas * num_train_timesteps, float32
    }
    out.sigmas[n] = cfg.invert_sigmas ? 1.0 : 0.0;
    return out;
}

}  // namespace diffuse
