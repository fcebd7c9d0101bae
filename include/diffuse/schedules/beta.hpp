#pragma once
// Discrete beta schedules of denoising diffusion (Ho et al. 2020, "Denoising Diffusion Probabilistic
// Models", eq. 2-4) computed exactly as the diffusers schedulers compute them, so that ported pipelines
// see the same numbers.
//
// Precision contract. diffusers builds linear / scaled_linear / sigmoid betas in float32 tensors and the
// alpha-bar schedules (cosine, exp, laplace) in float64 Python floats cast to float32. We reproduce that
// arithmetic and store the resulting float32 values (exactly representable) in double vectors:
//   * torch.linspace(float32) is evaluated as torch's CPU kernel does: step = (end - start) / (n - 1) in
//     float32, the first half as start + step*i and the second half as end - step*(n - 1 - i), each a
//     single fused multiply-add (the vectorised x86 builds of torch contract it; we call std::fma).
//   * alphas = 1 - beta in float32; alphas_cumprod multiplies in double and rounds each prefix product to
//     float32 (torch's CPU cumprod accumulates float in double).
//   * rescale_zero_terminal_snr runs in float32 like its tensor original.
// Bit-exact parity assumes the compiler does not contract a*b+c into an FMA behind our back (the x86-64
// default; on targets with FMA instructions build with -ffp-contract=off for bit parity).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse {

// The beta schedules of diffusers' `beta_schedule` config entry, plus the alpha-bar family.
enum class beta_schedule_kind {
    linear,             // "linear"
    scaled_linear,      // "scaled_linear" (latent diffusion)
    squaredcos_cap_v2,  // "squaredcos_cap_v2" (a.k.a. "cosine", Nichol & Dhariwal 2021)
    sigmoid,            // "sigmoid" (GeoDiff; DDPM scheduler only in diffusers)
    laplace,            // "laplace" (betas_for_alpha_bar alpha_transform_type "laplace")
    exp,                // "exp" (betas_for_alpha_bar alpha_transform_type "exp")
};

// Parses diffusers' names; "cosine" is accepted as an alias of "squaredcos_cap_v2".
[[nodiscard]] inline beta_schedule_kind parse_beta_schedule(std::string_view name) {
    if (name == "linear") return beta_schedule_kind::linear;
    if (name == "scaled_linear") return beta_schedule_kind::scaled_linear;
    if (name == "squaredcos_cap_v2" || name == "cosine") return beta_schedule_kind::squaredcos_cap_v2;
    if (name == "sigmoid") return beta_schedule_kind::sigmoid;
    if (name == "laplace") return beta_schedule_kind::laplace;
    if (name == "exp") return beta_schedule_kind::exp;
    detail::require(false, "parse_beta_schedule", "beta_schedule", std::string(name),
                    "{linear, scaled_linear, squaredcos_cap_v2, cosine, sigmoid, laplace, exp}");
    return beta_schedule_kind::linear;  // unreachable
}

[[nodiscard]] constexpr std::string_view to_string(beta_schedule_kind k) noexcept {
    switch (k) {
        case beta_schedule_kind::linear: return "linear";
        case beta_schedule_kind::scaled_linear: return "scaled_linear";
        case beta_schedule_kind::squaredcos_cap_v2: return "squaredcos_cap_v2";
        case beta_schedule_kind::sigmoid: return "sigmoid";
        case beta_schedule_kind::laplace: return "laplace";
        case beta_schedule_kind::exp: return "exp";
    }
    return "?";
}

// The continuous alpha-bar functions that betas_for_alpha_bar discretises.
enum class alpha_bar_kind { cosine, exp, laplace };

namespace detail {

inline void require_timesteps(std::size_t n, std::string_view where) { require_count(n, where, "num_train_timesteps"); }

inline void require_beta_range(double beta_start, double beta_end, std::string_view where) {
    require(beta_start > 0.0 && beta_start < 1.0, where, "beta_start", beta_start, "(0, 1)");
    require(beta_end > 0.0 && beta_end < 1.0, where, "beta_end", beta_end, "(0, 1)");
    require(beta_start <= beta_end, where, "beta_start", beta_start, "<= beta_end");
}

// torch.linspace(start, end, n, dtype=float32) on the CPU. `start` and `end` are Python floats that
// torch first rounds to float32.
[[nodiscard]] inline std::vector<float> torch_linspace_f32(double start, double end, std::size_t n) {
    require_count(n, "torch_linspace_f32", "n", 0);
    std::vector<float> out(n);
    if (n == 0) return out;
    const float a = static_cast<float>(start);
    const float b = static_cast<float>(end);
    if (n == 1) {
        out[0] = a;
        return out;
    }
    const float step = (b - a) / static_cast<float>(n - 1);
    const std::size_t half = n / 2;
    for (std::size_t i = 0; i < n; ++i) {
        // First half from the start, second half from the end (symmetric rounding errors).
        out[i] = i < half ? std::fma(step, static_cast<float>(i), a)
                          : std::fma(-step, static_cast<float>(n - 1 - i), b);
    }
    return out;
}

[[nodiscard]] inline std::vector<double> widen(const std::vector<float>& v) {
    return std::vector<double>(v.begin(), v.end());
}

}  // namespace detail

// ᾱ(t) of the cosine schedule (Nichol & Dhariwal 2021, eq. 17) with s = 0.008, t in [0, 1].
[[nodiscard]] inline double alpha_bar_cosine(double t) {
    const double c = std::cos((t + 0.008) / 1.008 * 3.141592653589793 / 2.0);
    return std::pow(c, 2.0);
}
// exp(-12 t): diffusers' "exp" alpha transform.
[[nodiscard]] inline double alpha_bar_exp(double t) { return std::exp(t * -12.0); }
// diffusers' "laplace" alpha transform: λ = -½·sign(½ - t)·log(1 - 2|½ - t| + 1e-6), returns
// sqrt(e^λ / (1 + e^λ)) exactly as upstream (which names this value alpha_bar).
[[nodiscard]] inline double alpha_bar_laplace(double t) {
    const double lmb = -0.5 * std::copysign(1.0, 0.5 - t) * std::log(1.0 - 2.0 * std::fabs(0.5 - t) + 1e-6);
    const double snr = std::exp(lmb);
    return std::sqrt(snr / (1.0 + snr));
}

// β_i = min(1 - ᾱ((i+1)/T) / ᾱ(i/T), max_beta) in float64, then rounded to float32 (diffusers'
// betas_for_alpha_bar). The quotients i/T are real divisions: integer division would give all-zero betas.
[[nodiscard]] inline std::vector<double> alpha_bar_betas(std::size_t num_train_timesteps,
                                                         alpha_bar_kind kind = alpha_bar_kind::cosine,
                                                         double max_beta = 0.999) {
    constexpr std::string_view where = "alpha_bar_betas";
    detail::require_timesteps(num_train_timesteps, where);
    detail::require(max_beta > 0.0 && max_beta < 1.0, where, "max_beta", max_beta, "(0, 1)");
    auto abar = [kind](double t) {
        switch (kind) {
            case alpha_bar_kind::exp: return alpha_bar_exp(t);
            case alpha_bar_kind::laplace: return alpha_bar_laplace(t);
            case alpha_bar_kind::cosine: break;
        }
        return alpha_bar_cosine(t);
    };
    const double n = static_cast<double>(num_train_timesteps);
    std::vector<double> betas(num_train_timesteps);
    for (std::size_t i = 0; i < num_train_timesteps; ++i) {
        const double t1 = static_cast<double>(i) / n;
        const double t2 = static_cast<double>(i + 1) / n;
        const double b = std::min(1.0 - abar(t2) / abar(t1), max_beta);
        betas[i] = static_cast<double>(static_cast<float>(b));
    }
    return betas;
}

// diffusers "squaredcos_cap_v2".
[[nodiscard]] inline std::vector<double> cosine_betas(std::size_t num_train_timesteps, double max_beta = 0.999) {
    return alpha_bar_betas(num_train_timesteps, alpha_bar_kind::cosine, max_beta);
}

// diffusers "linear": torch.linspace(beta_start, beta_end, T, dtype=float32) (Ho et al. 2020, §4).
[[nodiscard]] inline std::vector<double> linear_betas(std::size_t num_train_timesteps, double beta_start = 1e-4,
                                                      double beta_end = 0.02) {
    detail::require_timesteps(num_train_timesteps, "linear_betas");
    detail::require_beta_range(beta_start, beta_end, "linear_betas");
    return detail::widen(detail::torch_linspace_f32(beta_start, beta_end, num_train_timesteps));
}

// diffusers "scaled_linear": linspace(sqrt(beta_start), sqrt(beta_end), T, float32) ** 2 (Rombach et al. 2022).
[[nodiscard]] inline std::vector<double> scaled_linear_betas(std::size_t num_train_timesteps,
                                                             double beta_start = 0.00085, double beta_end = 0.012) {
    detail::require_timesteps(num_train_timesteps, "scaled_linear_betas");
    detail::require_beta_range(beta_start, beta_end, "scaled_linear_betas");
    auto r = detail::torch_linspace_f32(std::pow(beta_start, 0.5), std::pow(beta_end, 0.5), num_train_timesteps);
    for (auto& x : r) x = x * x;  // float32 square, as torch's pow(·, 2)
    return detail::widen(r);
}

// diffusers "sigmoid" (GeoDiff, Xu et al. 2022): sigmoid(linspace(-6, 6, T)) * (b1 - b0) + b0 in float32.
// torch evaluates exp with a vectorised polynomial that is not correctly rounded; we use the correctly
// rounded float32 exp, which differs from torch by at most 2 ulp on the betas (see docs/schedules.md).
[[nodiscard]] inline std::vector<double> sigmoid_betas(std::size_t num_train_timesteps, double beta_start = 1e-4,
                                                       double beta_end = 0.02) {
    detail::require_timesteps(num_train_timesteps, "sigmoid_betas");
    detail::require_beta_range(beta_start, beta_end, "sigmoid_betas");
    auto x = detail::torch_linspace_f32(-6.0, 6.0, num_train_timesteps);
    const float scale = static_cast<float>(beta_end - beta_start);
    const float shift = static_cast<float>(beta_start);
    std::vector<double> betas(num_train_timesteps);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const float e = static_cast<float>(std::exp(-static_cast<double>(x[i])));
        const float s = 1.0f / (1.0f + e);
        const float prod = s * scale;
        betas[i] = static_cast<double>(prod + shift);
    }
    return betas;
}

// Dispatch on the kind. beta_start / beta_end are ignored by the alpha-bar kinds (as in diffusers).
[[nodiscard]] inline std::vector<double> make_betas(beta_schedule_kind kind, std::size_t num_train_timesteps,
                                                    double beta_start = 1e-4, double beta_end = 0.02) {
    switch (kind) {
        case beta_schedule_kind::linear: return linear_betas(num_train_timesteps, beta_start, beta_end);
        case beta_schedule_kind::scaled_linear: return scaled_linear_betas(num_train_timesteps, beta_start, beta_end);
        case beta_schedule_kind::sigmoid: return sigmoid_betas(num_train_timesteps, beta_start, beta_end);
        case beta_schedule_kind::squaredcos_cap_v2: return alpha_bar_betas(num_train_timesteps, alpha_bar_kind::cosine);
        case beta_schedule_kind::laplace: return alpha_bar_betas(num_train_timesteps, alpha_bar_kind::laplace);
        case beta_schedule_kind::exp: return alpha_bar_betas(num_train_timesteps, alpha_bar_kind::exp);
    }
    detail::fail("make_betas", "unknown beta_schedule_kind");
}

// Zero terminal SNR (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed",
// Algorithm 1): shift √ᾱ so that its last value is 0 and scale it so that its first value is kept, then
// recover the betas. Runs in float32 like diffusers' tensor code; the result has β_T = 1 exactly.
[[nodiscard]] inline std::vector<double> rescale_zero_terminal_snr(std::span<const double> betas) {
    constexpr std::string_view where = "rescale_zero_terminal_snr";
    detail::require(betas.size() >= 2, where, "betas.size()", betas.size(), ">= 2");
    const std::size_t n = betas.size();
    std::vector<float> s(n);
    double acc = 1.0;
    for (std::size_t i = 0; i < n; ++i) {
        detail::require(betas[i] > 0.0 && betas[i] <= 1.0, where, "betas[i]", betas[i], "(0, 1]");
        acc *= static_cast<double>(1.0f - static_cast<float>(betas[i]));
        s[i] = std::sqrt(static_cast<float>(acc));  // sqrt(cumprod) in float32
    }
    const float s0 = s[0], sT = s[n - 1];
    detail::require(s0 > sT, where, "alphas_cumprod[0] - alphas_cumprod[T-1]", static_cast<double>(s0 - sT),
                    "> 0 (the schedule must decrease)");
    const float scale = s0 / (s0 - sT);
    std::vector<float> abar(n);
    for (std::size_t i = 0; i < n; ++i) {
        const float shifted = s[i] - sT;
        const float r = shifted * scale;
        abar[i] = r * r;
    }
    std::vector<double> out(n);
    out[0] = static_cast<double>(1.0f - abar[0]);
    for (std::size_t i = 1; i < n; ++i) out[i] = static_cast<double>(1.0f - abar[i] / abar[i - 1]);
    return out;
}

// alphas = 1 - β in float32.
[[nodiscard]] inline std::vector<double> alphas_from_betas(std::span<const double> betas) {
    std::vector<double> a(betas.size());
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<double>(1.0f - static_cast<float>(betas[i]));
    return a;
}

// ᾱ_t = Π_{s<=t} α_s (Ho et al. 2020, below eq. 4) with torch's CPU convention for float32: the running
// product is kept in double and each prefix is rounded to float32.
[[nodiscard]] inline std::vector<double> cumprod_f32(std::span<const double> alphas) {
    std::vector<double> out(alphas.size());
    double acc = 1.0;
    for (std::size_t i = 0; i < alphas.size(); ++i) {
        acc *= static_cast<double>(static_cast<float>(alphas[i]));
        out[i] = static_cast<double>(static_cast<float>(acc));
    }
    return out;
}

// The diffusers config entries that define a discrete schedule (names as in scheduler_config.json).
struct discrete_schedule_config {
    std::string beta_schedule = "linear";
    std::size_t num_train_timesteps = 1000;
    double beta_start = 1e-4;
    double beta_end = 0.02;
    bool rescale_betas_zero_snr = false;
    std::optional<std::vector<double>> trained_betas{};  // when set, overrides beta_schedule
};

// β, α = 1 - β and ᾱ of a discrete (DDPM-style) schedule, index t = 0 .. T-1.
struct discrete_schedule {
    std::vector<double> betas, alphas, alphas_cumprod;

    [[nodiscard]] std::size_t size() const noexcept { return betas.size(); }

    // From explicit betas (diffusers' trained_betas: cast to float32); each must lie in (0, 1].
    [[nodiscard]] static discrete_schedule from_betas(std::span<const double> betas, bool rescale_betas_zero_snr = false) {
        detail::require(!betas.empty(), "discrete_schedule::from_betas", "betas.size()", betas.size(), ">= 1");
        std::vector<double> b(betas.size());
        for (std::size_t i = 0; i < b.size(); ++i) {
            detail::require(betas[i] > 0.0 && betas[i] <= 1.0, "discrete_schedule::from_betas", "betas[i]",
                            betas[i], "(0, 1]");
            b[i] = static_cast<double>(static_cast<float>(betas[i]));
        }
        return finish(std::move(b), rescale_betas_zero_snr);
    }

    [[nodiscard]] static discrete_schedule from_kind(beta_schedule_kind kind, std::size_t num_train_timesteps = 1000,
                                                     double beta_start = 1e-4, double beta_end = 0.02,
                                                     bool rescale_betas_zero_snr = false) {
        return finish(make_betas(kind, num_train_timesteps, beta_start, beta_end), rescale_betas_zero_snr);
    }

    // diffusers-style construction: from_config("scaled_linear", 1000, 0.00085, 0.012).
    [[nodiscard]] static discrete_schedule from_config(std::string_view beta_schedule,
                                                       std::size_t num_train_timesteps = 1000,
                                                       double beta_start = 1e-4, double beta_end = 0.02,
                                                       bool rescale_betas_zero_snr = false) {
        return from_kind(parse_beta_schedule(beta_schedule), num_train_timesteps, beta_start, beta_end,
                         rescale_betas_zero_snr);
    }

    [[nodiscard]] static discrete_schedule from_config(const discrete_schedule_config& c) {
        if (c.trained_betas) return from_betas(*c.trained_betas, c.rescale_betas_zero_snr);
        return from_config(c.beta_schedule, c.num_train_timesteps, c.beta_start, c.beta_end, c.rescale_betas_zero_snr);
    }

private:
    [[nodiscard]] static discrete_schedule finish(std::vector<double> betas, bool rescale) {
        discrete_schedule s;
        s.betas = rescale ? rescale_zero_terminal_snr(betas) : std::move(betas);
        s.alphas = alphas_from_betas(s.betas);
        s.alphas_cumprod = cumprod_f32(s.alphas);
        return s;
    }
};

}  // namespace diffuse
