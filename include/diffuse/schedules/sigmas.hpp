#pragma once
// Noise-level (σ) schedules of σ-space samplers: k-diffusion's get_sigmas_* constructions (evaluated in
// double: the exact values of the formulas), σ ↔ t conversion over a discrete training schedule with
// linear-σ interpolation (diffusers) and log-σ interpolation (k-diffusion), diffusers'
// EulerDiscreteScheduler σ list reproduced with its float32 steps, and the network timesteps of
// KDPM2AncestralDiscreteScheduler over that list.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/beta_quantile.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse {

namespace detail {

inline void require_sigma_range(std::size_t n, double sigma_min, double sigma_max, std::string_view where) {
    require_count(n, where, "n");  // before the n + 1 of the trailing 0
    require(std::isfinite(sigma_min) && sigma_min > 0.0, where, "sigma_min", sigma_min, "(0, inf)");
    require(std::isfinite(sigma_max) && sigma_max > sigma_min, where, "sigma_max", sigma_max,
            "(sigma_min, inf) with sigma_min = " + std::to_string(sigma_min));
}

// Index of t's ramp position i/(n-1) as torch.linspace(0, 1, n) in exact arithmetic; n = 1 gives 0.
[[nodiscard]] inline double ramp(std::size_t i, std::size_t n) {
    return n == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(n - 1);
}

}  // namespace detail

// Karras et al. 2022 ("Elucidating the Design Space...", eq. 5):
// σ_i = (σmax^{1/ρ} + i/(n-1)·(σmin^{1/ρ} - σmax^{1/ρ}))^ρ, i = 0..n-1, then a trailing 0 (n + 1 values).
[[nodiscard]] inline std::vector<double> karras_sigmas(std::size_t n, double sigma_min, double sigma_max,
                                                       double rho = 7.0) {
    detail::require_sigma_range(n, sigma_min, sigma_max, "karras_sigmas");
    detail::require(std::isfinite(rho) && rho > 0.0, "karras_sigmas", "rho", rho, "(0, inf)");
    const double lo = std::pow(sigma_min, 1.0 / rho), hi = std::pow(sigma_max, 1.0 / rho);
    std::vector<double> s(n + 1, 0.0);
    for (std::size_t i = 0; i < n; ++i) s[i] = std::pow(hi + detail::ramp(i, n) * (lo - hi), rho);
    return s;
}

// σ_i = exp(linspace(log σmax, log σmin, n)), then a trailing 0.
[[nodiscard]] inline std::vector<double> exponential_sigmas(std::size_t n, double sigma_min, double sigma_max) {
    detail::require_sigma_range(n, sigma_min, sigma_max, "exponential_sigmas");
    const double a = std::log(sigma_max), b = std::log(sigma_min);
    std::vector<double> s(n + 1, 0.0);
    for (std::size_t i = 0; i < n; ++i) s[i] = std::exp(a + detail::ramp(i, n) * (b - a));
    return s;
}

// Polynomial in log σ: σ_i = exp(r_i^ρ (log σmax - log σmin) + log σmin), r = linspace(1, 0, n); trailing 0.
[[nodiscard]] inline std::vector<double> polyexponential_sigmas(std::size_t n, double sigma_min, double sigma_max,
                                                                double rho = 1.0) {
    detail::require_sigma_range(n, sigma_min, sigma_max, "polyexponential_sigmas");
    detail::require(std::isfinite(rho) && rho > 0.0, "polyexponential_sigmas", "rho", rho, "(0, inf)");
    const double lmin = std::log(sigma_min), lmax = std::log(sigma_max);
    std::vector<double> s(n + 1, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        const double r = 1.0 - detail::ramp(i, n);
        s[i] = std::exp(std::pow(r, rho) * (lmax - lmin) + lmin);
    }
    return s;
}

// Continuous VP σ(t) = sqrt(exp(β_d t²/2 + β_min t) - 1) at t = linspace(1, eps_s, n); trailing 0
// (Song et al. 2021, VP SDE expressed as a VE noise level).
[[nodiscard]] inline std::vector<double> vp_sigmas(std::size_t n, double beta_d = 19.9, double beta_min = 0.1,
                                                   double eps_s = 1e-3) {
    constexpr std::string_view where = "vp_sigmas";
    detail::require_count(n, where, "n");
    detail::require(std::isfinite(beta_d) && beta_d >= 0.0, where, "beta_d", beta_d, "[0, inf)");
    detail::require(std::isfinite(beta_min) && beta_min >= 0.0 && beta_d + beta_min > 0.0, where, "beta_min",
                    beta_min, "[0, inf) with beta_d + beta_min > 0");
    detail::require(eps_s > 0.0 && eps_s <= 1.0, where, "eps_s", eps_s, "(0, 1]");
    std::vector<double> s(n + 1, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        const double t = 1.0 + detail::ramp(i, n) * (eps_s - 1.0);
        s[i] = std::sqrt(std::expm1(beta_d * t * t / 2.0 + beta_min * t));
    }
    return s;
}

// σ of a VP marginal seen as VE noise: σ = sqrt((1 - ᾱ)/ᾱ) (Karras et al. 2022, Table 1).
[[nodiscard]] inline double sigma_from_alpha_cumprod(double alpha_cumprod) {
    detail::require(alpha_cumprod > 0.0 && alpha_cumprod <= 1.0, "sigma_from_alpha_cumprod", "alpha_cumprod",
                    alpha_cumprod, "(0, 1]");
    return std::sqrt((1.0 - alpha_cumprod) / alpha_cumprod);
}
// Inverse: ᾱ = 1/(1 + σ²).
[[nodiscard]] inline double alpha_cumprod_from_sigma(double sigma) {
    detail::require(sigma >= 0.0 && !std::isnan(sigma), "alpha_cumprod_from_sigma", "sigma", sigma, "[0, inf]");
    return 1.0 / (1.0 + sigma * sigma);
}

// The ᾱ that stands in for a zero terminal ᾱ_T = 0 (Lin et al. 2024, "Common Diffusion Noise Schedules and
// Sample Steps are Flawed", Algorithm 1) where σ = √((1 − ᾱ)/ᾱ) must stay finite: 2^-24, the value diffusers'
// σ-space schedulers (Euler, Euler ancestral, DPM-Solver multistep, UniPC) write over alphas_cumprod[-1].
inline constexpr double zero_snr_alpha_cumprod = 0x1p-24;

// The ascending σ_t (t = 0..T-1) of a discrete schedule, with σ ↔ t conversions.
class discrete_sigmas {
public:
    // From ᾱ in double: σ_t = sqrt((1 - ᾱ_t)/ᾱ_t). Requires T >= 2 and every ᾱ in (0, 1], except a last
    // ᾱ_{T-1} = 0 (zero terminal SNR), which is replaced by zero_snr_alpha_cumprod (σ_max ≈ 4096) and
    // remembered (zero_terminal_snr()).
    explicit discrete_sigmas(std::span<const double> alphas_cumprod) {
        detail::require(alphas_cumprod.size() >= 2, "discrete_sigmas", "alphas_cumprod.size()", alphas_cumprod.size(),
                        ">= 2");
        sigmas_.resize(alphas_cumprod.size());
        log_sigmas_.resize(alphas_cumprod.size());
        zero_terminal_snr_ = alphas_cumprod.back() == 0.0;
        for (std::size_t i = 0; i < sigmas_.size(); ++i) {
            const bool last_zero = zero_terminal_snr_ && i + 1 == sigmas_.size();
            sigmas_[i] = sigma_from_alpha_cumprod(last_zero ? zero_snr_alpha_cumprod : alphas_cumprod[i]);
            detail::require(sigmas_[i] > 0.0, "discrete_sigmas", "alphas_cumprod[i]", alphas_cumprod[i], "(0, 1)");
            // the stand-in σ_max may lie below σ_{T-2} (ᾱ_{T-2} < 2^-24, e.g. the linear schedule rescaled)
            detail::require(i == 0 || last_zero || sigmas_[i] > sigmas_[i - 1], "discrete_sigmas", "alphas_cumprod[i]",
                            alphas_cumprod[i], "strictly decreasing in i");
            log_sigmas_[i] = std::log(sigmas_[i]);
        }
    }

    [[nodiscard]] std::span<const double> sigmas() const noexcept { return sigmas_; }
    [[nodiscard]] std::span<const double> log_sigmas() const noexcept { return log_sigmas_; }
    [[nodiscard]] double sigma_min() const noexcept { return sigmas_.front(); }
    // σ of the last timestep (with zero terminal SNR that of 2^-24, which may be below σ_{T-2}: σ at or above it
    // then reads as the last timestep in both σ → t conversions).
    [[nodiscard]] double sigma_max() const noexcept { return sigmas_.back(); }
    [[nodiscard]] double t_max() const noexcept { return static_cast<double>(sigmas_.size() - 1); }
    // Whether the schedule's last ᾱ was 0 (its σ_max is then that of zero_snr_alpha_cumprod).
    [[nodiscard]] bool zero_terminal_snr() const noexcept { return zero_terminal_snr_; }

    // k-diffusion DiscreteSchedule.t_to_sigma: σ = exp((1-w)·logσ[⌊t⌋] + w·logσ[⌈t⌉]), w = frac(t).
    [[nodiscard]] double t_to_sigma_log(double t) const {
        require_t(t, "discrete_sigmas::t_to_sigma_log");
        const double lo = std::floor(t), hi = std::ceil(t), w = t - lo;
        return std::exp((1.0 - w) * log_sigmas_[idx(lo)] + w * log_sigmas_[idx(hi)]);
    }

    // k-diffusion DiscreteSchedule.sigma_to_t (and diffusers' _sigma_to_t): interpolation in log σ between
    // the bracketing entries, w clamped to [0, 1] (so σ outside the table maps to 0 or t_max).
    [[nodiscard]] double sigma_to_t_log(double sigma) const {
        detail::require(sigma > 0.0 && !std::isnan(sigma), "discrete_sigmas::sigma_to_t_log", "sigma", sigma,
                        "(0, inf]");
        if (zero_terminal_snr_ && sigma >= sigmas_.back()) return t_max();  // the table may not be sorted there
        return log_interp(log_sigmas_, std::log(sigma));
    }

    // diffusers EulerDiscreteScheduler: σ(t) = np.interp(t, arange(T), σ): linear in σ.
    [[nodiscard]] double t_to_sigma_linear(double t) const {
        require_t(t, "discrete_sigmas::t_to_sigma_linear");
        return numpy_interp(sigmas_, t);
    }

    // Inverse of t_to_sigma_linear (σ increases with t, so the bracket is unique); clamped to [0, t_max].
    [[nodiscard]] double sigma_to_t_linear(double sigma) const {
        detail::require(sigma >= 0.0 && !std::isnan(sigma), "discrete_sigmas::sigma_to_t_linear", "sigma", sigma,
                        "[0, inf]");
        if (sigma <= sigmas_.front()) return 0.0;
        if (sigma >= sigmas_.back()) return t_max();
        const auto it = std::upper_bound(sigmas_.begin(), sigmas_.end(), sigma);
        const auto j = static_cast<std::size_t>(it - sigmas_.begin()) - 1;
        const double w = (sigma - sigmas_[j]) / (sigmas_[j + 1] - sigmas_[j]);
        return static_cast<double>(j) + w;
    }

    // numpy.interp(x, arange(n), fp) for 0 <= x <= n-1 (unit spacing): exact knots return fp[j].
    [[nodiscard]] static double numpy_interp(std::span<const double> fp, double x) {
        const std::size_t n = fp.size();
        if (x >= static_cast<double>(n - 1)) return fp[n - 1];
        if (x <= 0.0) return fp[0];
        const auto j = static_cast<std::size_t>(std::floor(x));
        if (x == static_cast<double>(j)) return fp[j];
        const double slope = fp[j + 1] - fp[j];  // (fp[j+1]-fp[j]) / (xp[j+1]-xp[j]) with unit spacing
        return slope * (x - static_cast<double>(j)) + fp[j];
    }

    // The low/high bracketing and weight of k-diffusion's sigma_to_t on a log-σ table.
    [[nodiscard]] static double log_interp(std::span<const double> log_sigmas, double log_sigma) {
        // low_idx = (number of entries with log σ_i <= log σ) - 1, clamped to [0, n-2]
        // (k-diffusion: dists.ge(0).cumsum().argmax() — the last index with dist >= 0, 0 if none).
        const std::size_t n = log_sigmas.size();
        const auto cnt = static_cast<std::size_t>(std::upper_bound(log_sigmas.begin(), log_sigmas.end(), log_sigma) -
                                                  log_sigmas.begin());
        std::size_t low = cnt == 0 ? 0 : cnt - 1;
        low = std::min(low, n - 2);
        const double lo = log_sigmas[low], hi = log_sigmas[low + 1];
        double w = (lo - log_sigma) / (lo - hi);
        w = std::clamp(w, 0.0, 1.0);
        return (1.0 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
    }

private:
    void require_t(double t, std::string_view where) const {
        detail::require(t >= 0.0 && t <= t_max(), where, "t", t, "[0, " + std::to_string(t_max()) + "]");
    }
    [[nodiscard]] static std::size_t idx(double v) { return static_cast<std::size_t>(v); }

    std::vector<double> sigmas_, log_sigmas_;
    bool zero_terminal_snr_ = false;
};

// k-diffusion DiscreteSchedule.get_sigmas(n): t = torch.linspace(T-1, 0, n) in float32 (torch's default dtype;
// t_to_sigma also rounds t with t.float()), σ by log interpolation in double, then 0.
[[nodiscard]] inline std::vector<double> discrete_sigmas_list(const discrete_sigmas& ds, std::size_t n) {
    detail::require_count(n, "discrete_sigmas_list", "n");
    const auto t = detail::torch_linspace_f32(ds.t_max(), 0.0, n);
    std::vector<double> s(n + 1, 0.0);
    for (std::size_t i = 0; i < n; ++i) s[i] = ds.t_to_sigma_log(std::clamp(static_cast<double>(t[i]), 0.0, ds.t_max()));
    return s;
}

// ---------------------------------------------------------------------------------------------------
// diffusers EulerDiscreteScheduler.set_timesteps (σ list, model timesteps, init_noise_sigma).

// use_karras_sigmas (Karras et al. 2022, ρ = 7), use_exponential_sigmas, use_beta_sigmas (Lee et al. 2024,
// Beta(0.6, 0.6) quantiles), or the interpolated training σ.
enum class sigma_spacing_kind { none, karras, exponential, beta };

struct euler_options {
    timestep_spacing spacing = timestep_spacing::linspace;   // diffusers' default for Euler
    std::int64_t steps_offset = 0;
    sigma_spacing_kind sigma_spacing = sigma_spacing_kind::none;  // use_karras / use_exponential / use_beta_sigmas
    std::optional<double> sigma_min{}, sigma_max{};           // config overrides for karras/exponential/beta
    bool final_sigma_min = false;                             // final_sigmas_type "sigma_min" (else "zero")
    // diffusers' trailing spacing as it is: where numpy.arange(T, 0, -T/N) yields N + 1 values (T = 1200 with
    // N = 14, T = 850 with N = 22, T = 600 with N = 7, ...) the list keeps the extra timestep -1, whose σ is
    // σ_train[0] (numpy.interp clamps), so the run takes N + 1 steps. Off: exactly N steps (correct).
    bool trailing_extra_timestep = false;
};

struct euler_schedule {
    std::vector<double> timesteps;  // N model timesteps (float32 values)
    std::vector<double> sigmas;     // N + 1 values (float32), descending, last = 0 or σ_min
    double init_noise_sigma;        // max σ, or sqrt(max σ² + 1) for "leading"
};

namespace detail {
[[nodiscard]] inline double f32(double x) { return static_cast<double>(static_cast<float>(x)); }
}  // namespace detail

// `alphas_cumprod` as held by diffusers (float32 values). A last ᾱ equal to 0 (zero terminal SNR) is
// replaced by 2^-24 so that σ_max stays finite, as diffusers does under rescale_betas_zero_snr.
[[nodiscard]] inline euler_schedule euler_discrete_sigmas(std::span<const double> alphas_cumprod,
                                                          std::size_t num_inference_steps,
                                                          const euler_options& opt = {}) {
    constexpr std::string_view where = "euler_discrete_sigmas";
    const std::size_t T = alphas_cumprod.size();
    detail::require(T >= 2, where, "num_train_timesteps", T, ">= 2");
    detail::require_steps(T, num_inference_steps, where);
    detail::require(opt.steps_offset >= 0, where, "steps_offset", opt.steps_offset, ">= 0");
    const std::size_t N = num_inference_steps;

    // Training σ in float32: ((1 - ᾱ) / ᾱ) ** 0.5 on a float32 tensor.
    std::vector<double> sig(T), log_sig(T);
    for (std::size_t i = 0; i < T; ++i) {
        float a = static_cast<float>(alphas_cumprod[i]);
        if (a == 0.0f && i + 1 == T) a = 0x1p-24f;
        detail::require(a > 0.0f && a <= 1.0f, where, "alphas_cumprod[i]", alphas_cumprod[i], "(0, 1]");
        const float num = 1.0f - a;
        sig[i] = static_cast<double>(std::sqrt(num / a));
        log_sig[i] = detail::f32(std::log(sig[i]));  // numpy log of a float32 array
    }

    // Model timesteps (float32).
    std::vector<double> ts(N);
    if (opt.spacing == timestep_spacing::linspace) {
        const auto y = detail::numpy_linspace(0.0, static_cast<double>(T - 1), N);
        for (std::size_t i = 0; i < N; ++i) ts[i] = detail::f32(y[N - 1 - i]);
    } else {
        const auto v = detail::spacing_values(T, N, opt.spacing, 0.0);
        const double off = opt.spacing == timestep_spacing::leading ? static_cast<double>(opt.steps_offset) : 0.0;
        for (std::size_t i = 0; i < N; ++i) ts[i] = detail::f32(v[i] + off);
    }
    for (double t : ts)
        detail::require(t >= 0.0 && t <= static_cast<double>(T - 1), where, "steps_offset", opt.steps_offset,
                        "values keeping every timestep in [0, num_train_timesteps - 1]");
    if (opt.trailing_extra_timestep && opt.spacing == timestep_spacing::trailing && detail::trailing_has_extra_value(T, N))
        ts.push_back(-1.0);  // round(0) - 1: numpy.interp below gives it σ_train[0]

    // interpolation_type "linear": np.interp(timesteps, arange(T), σ_train).
    std::vector<double> s;
    for (double t : ts) s.push_back(discrete_sigmas::numpy_interp(sig, t));

    if (opt.sigma_spacing != sigma_spacing_kind::none) {
        const double smin = opt.sigma_min.value_or(s.back());
        const double smax = opt.sigma_max.value_or(s.front());
        detail::require_sigma_range(N, smin, smax, where);  // N again, with or without the extra timestep
        ts.resize(N);
        if (opt.sigma_spacing == sigma_spacing_kind::karras) {
            // diffusers' _convert_to_karras in numpy float64 (ρ = 7).
            const auto r = detail::numpy_linspace(0.0, 1.0, N);
            const double lo = std::pow(smin, 1.0 / 7.0), hi = std::pow(smax, 1.0 / 7.0);
            s.assign(N, 0.0);
            for (std::size_t i = 0; i < N; ++i) s[i] = std::pow(hi + r[i] * (lo - hi), 7.0);
        } else if (opt.sigma_spacing == sigma_spacing_kind::exponential) {
            const auto l = detail::numpy_linspace(std::log(smax), std::log(smin), N);
            s.assign(N, 0.0);
            for (std::size_t i = 0; i < N; ++i) s[i] = std::exp(l[i]);
        } else {  // _convert_to_beta: σ_min + ppf(1 − linspace(0, 1, N)_i; 0.6, 0.6)·(σ_max − σ_min)
            const auto r = detail::numpy_linspace(0.0, 1.0, N);
            s.assign(N, 0.0);
            for (std::size_t i = 0; i < N; ++i) s[i] = smin + beta_quantile(1.0 - r[i], 0.6, 0.6) * (smax - smin);
        }
        for (std::size_t i = 0; i < N; ++i)
            ts[i] = detail::f32(discrete_sigmas::log_interp(log_sig, std::log(std::max(s[i], 1e-10))));
    }

    double last = 0.0;
    if (opt.final_sigma_min) {
        const float a0 = static_cast<float>(alphas_cumprod[0]);
        last = static_cast<double>(std::sqrt((1.0f - a0) / a0));
    }
    s.push_back(last);
    for (auto& x : s) x = detail::f32(x);

    double mx = 0.0;
    for (double x : s) mx = std::max(mx, x);
    double init = mx;
    if (opt.spacing == timestep_spacing::leading) {
        const float m = static_cast<float>(mx);
        init = static_cast<double>(std::sqrt(m * m + 1.0f));
    }
    return {std::move(ts), std::move(s), init};
}

[[nodiscard]] inline euler_schedule euler_discrete_sigmas(const discrete_schedule& sched, std::size_t num_inference_steps,
                                                          const euler_options& opt = {}) {
    return euler_discrete_sigmas(std::span<const double>(sched.alphas_cumprod), num_inference_steps, opt);
}

// ---------------------------------------------------------------------------------------------------
// diffusers KDPM2AncestralDiscreteScheduler.set_timesteps: the Euler-family σ list (euler_discrete_sigmas,
// final σ 0) and the network timesteps of the two evaluations of each DPM2-ancestral step i (σ_i → σ_{i+1}):
//   timesteps[i]           the first, at σ_i: the spacing's timesteps; with Karras σ round(_sigma_to_t(σ_i)),
//                          with exponential / beta σ _sigma_to_t(σ_i) (log-σ interpolation; here from the
//                          float32 σ_i, upstream from its float64 value: 1e-7 relative in t)
//   midpoint_timesteps[i]  the second, at the log-σ midpoint σ_mid = exp(lerp(log σ_i, log σ_down, 1/2)) of
//                          the ancestral σ_down (η = 1): _sigma_to_t(σ_mid), all in float32 as upstream
//                          (timesteps_interpol; torch's float32 log/exp may differ by an ulp of t); none for the
//                          last step, an Euler step into σ = 0
// At η = 1, σ_down = σ_{i+1}²/σ_i and so σ_mid = σ_{i+1}: the network gets two different timesteps at one σ
// (midpoint_timesteps[i] and timesteps[i + 1]), which no σ → t rule gives; dpm_2_ancestral_options carries
// them to the network (evaluation::t_net). The extra timestep −1 of trailing_extra_timestep is given as 0
// (its σ is σ_train[0]).
struct kdpm2_ancestral_schedule {
    std::vector<double> sigmas;              // the steps' σ, then 0 (float32 values)
    double init_noise_sigma;                 // max σ, or √(max σ² + 1) for "leading"
    std::vector<double> timesteps;           // one per step
    std::vector<double> midpoint_timesteps;  // one per step but the last
};

namespace detail {
// diffusers' _sigma_to_t on float32 tensors (log σ table ls, float32 like the scheduler's log_sigmas): the last
// entry with ls_j <= log σ (cumsum(dists >= 0).argmax(), 0 if none), clipped to T − 2, then w clipped to [0, 1].
[[nodiscard]] inline float sigma_to_t_f32(std::span<const float> ls, float sigma) {
    const float lm = std::log(std::max(sigma, 1e-10f));
    std::size_t low = 0;
    for (std::size_t j = 0; j < ls.size(); ++j)
        if (ls[j] <= lm) low = j;
    low = std::min(low, ls.size() - 2);
    float w = (ls[low] - lm) / (ls[low] - ls[low + 1]);
    w = std::clamp(w, 0.0f, 1.0f);
    return (1.0f - w) * static_cast<float>(low) + w * static_cast<float>(low + 1);
}
}  // namespace detail

[[nodiscard]] inline kdpm2_ancestral_schedule kdpm2_ancestral_sigmas(std::span<const double> alphas_cumprod,
                                                                     std::size_t num_inference_steps,
                                                                     const euler_options& opt = {}) {
    constexpr std::string_view where = "kdpm2_ancestral_sigmas";
    detail::require(!opt.final_sigma_min, where, "final_sigma_min", "true",
                    "false (KDPM2AncestralDiscreteScheduler ends at sigma 0)");
    auto es = euler_discrete_sigmas(alphas_cumprod, num_inference_steps, opt);
    const std::size_t T = alphas_cumprod.size(), M = es.sigmas.size() - 1;  // M steps: N, or N + 1 (extra timestep)
    std::vector<float> ls(T);  // np.log of the float32 training σ
    for (std::size_t i = 0; i < T; ++i) {
        float a = static_cast<float>(alphas_cumprod[i]);
        if (a == 0.0f && i + 1 == T) a = 0x1p-24f;
        ls[i] = std::log(std::sqrt((1.0f - a) / a));
    }
    const std::vector<double> ls64(ls.begin(), ls.end());
    kdpm2_ancestral_schedule out{es.sigmas, es.init_noise_sigma, {}, {}};
    out.timesteps.resize(M);
    for (std::size_t i = 0; i < M; ++i) {
        if (opt.sigma_spacing == sigma_spacing_kind::none) {
            out.timesteps[i] = std::max(es.timesteps[i], 0.0);
        } else {
            const double t = discrete_sigmas::log_interp(ls64, std::log(std::max(es.sigmas[i], 1e-10)));
            out.timesteps[i] = opt.sigma_spacing == sigma_spacing_kind::karras ? std::nearbyint(t) : t;
        }
    }
    // sigmas_up, sigmas_down and sigmas_interpol of set_timesteps, on float32 tensors
    for (std::size_t i = 0; i + 1 < M; ++i) {
        const float s = static_cast<float>(es.sigmas[i]), sn = static_cast<float>(es.sigmas[i + 1]);
        const float up = std::sqrt(sn * sn * (s * s - sn * sn) / (s * s));
        const float down = std::sqrt(sn * sn - up * up);
        const float la = std::log(s), ld = std::log(down);
        const float mid = std::exp(ld - (ld - la) * 0.5f);  // torch.lerp at weight 1/2: end − (end − start)·(1 − w)
        out.midpoint_timesteps.push_back(static_cast<double>(detail::sigma_to_t_f32(ls, mid)));
    }
    return out;
}

}  // namespace diffuse
