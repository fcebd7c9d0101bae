#pragma once
// Inference timestep selection for discrete-time samplers, as diffusers computes it (the spacings of
// Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Table 2), DDIM's
// previous timestep and final ᾱ, and the img2img start index.
//
// All arithmetic follows numpy float64 (numpy.linspace, numpy.arange with a float step, numpy.round
// which rounds halves to even); the results are integers and match diffusers exactly.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse {

enum class timestep_spacing {
    leading,   // (arange(N) * (T // N)).round()[::-1] + steps_offset
    trailing,  // round(arange(T, 0, -T / N)) - 1
    linspace,  // round(linspace(0, T - 1, N))[::-1]
};

[[nodiscard]] inline timestep_spacing parse_timestep_spacing(std::string_view name) {
    if (name == "leading") return timestep_spacing::leading;
    if (name == "trailing") return timestep_spacing::trailing;
    if (name == "linspace") return timestep_spacing::linspace;
    detail::require(false, "parse_timestep_spacing", "timestep_spacing", std::string(name),
                    "{leading, trailing, linspace}");
    return timestep_spacing::leading;  // unreachable
}

[[nodiscard]] constexpr std::string_view to_string(timestep_spacing s) noexcept {
    switch (s) {
        case timestep_spacing::leading: return "leading";
        case timestep_spacing::trailing: return "trailing";
        case timestep_spacing::linspace: return "linspace";
    }
    return "?";
}

namespace detail {

inline void require_steps(std::size_t num_train_timesteps, std::size_t num_inference_steps, std::string_view where) {
    require_count(num_train_timesteps, where, "num_train_timesteps");
    require_count(num_inference_steps, where, "num_inference_steps");
    require(num_inference_steps <= num_train_timesteps, where, "num_inference_steps", num_inference_steps,
            "<= num_train_timesteps = " + std::to_string(num_train_timesteps));
}

// numpy.linspace(start, stop, n) in float64: i * step + start, the last value set to stop exactly.
[[nodiscard]] inline std::vector<double> numpy_linspace(double start, double stop, std::size_t n) {
    require_count(n, "numpy_linspace", "n", 0);
    std::vector<double> y(n);
    if (n == 0) return y;
    if (n == 1) {
        y[0] = start;
        return y;
    }
    const double delta = stop - start;
    const double div = static_cast<double>(n - 1);
    const double step = delta / div;
    for (std::size_t i = 0; i < n; ++i) {
        const double fi = static_cast<double>(i);
        y[i] = (step == 0.0 ? fi / div * delta : fi * step) + start;
    }
    y[n - 1] = stop;
    return y;
}

// The unrounded values of diffusers' spacing (descending), before the integer cast.
// Trailing uses numpy.arange(T, 0, -T/N): numpy fills start + i * ((start + step) - start). For some
// (T, N) (e.g. T = 50, N = 29) numpy's length rule yields N + 1 values, the extra one rounding to the
// invalid timestep -1; we keep the first N, which equal diffusers' first N.
[[nodiscard]] inline std::vector<double> spacing_values(std::size_t T, std::size_t N, timestep_spacing spacing,
                                                        double steps_offset) {
    require_steps(T, N, "spacing_values");
    std::vector<double> v(N);
    switch (spacing) {
        case timestep_spacing::linspace: {
            const auto y = numpy_linspace(0.0, static_cast<double>(T - 1), N);
            for (std::size_t i = 0; i < N; ++i) v[i] = std::rint(y[N - 1 - i]);
            break;
        }
        case timestep_spacing::leading: {
            const std::size_t ratio = T / N;
            for (std::size_t i = 0; i < N; ++i) v[i] = static_cast<double>((N - 1 - i) * ratio) + steps_offset;
            break;
        }
        case timestep_spacing::trailing: {
            const double Td = static_cast<double>(T);
            const double step = -(Td / static_cast<double>(N));
            const double delta = (Td + step) - Td;
            for (std::size_t i = 0; i < N; ++i) {
                const double x = i == 0 ? Td : Td + static_cast<double>(i) * delta;
                v[i] = std::rint(x) - 1.0;
            }
            break;
        }
    }
    return v;
}

// Whether numpy.arange(T, 0, -T/N) of the trailing spacing has N + 1 values: numpy's length is
// ceil((0 - T)/(-T/N)) in float64, which exceeds N where T/(T/N) rounds above N (T = 1200, N = 14).
[[nodiscard]] inline bool trailing_has_extra_value(std::size_t T, std::size_t N) {
    require_steps(T, N, "trailing_has_extra_value");
    const double Td = static_cast<double>(T), step = -(Td / static_cast<double>(N));
    return std::ceil((0.0 - Td) / step) > static_cast<double>(N);
}

}  // namespace detail

// Integer timesteps of DDPM/DDIM/PNDM-style schedulers, descending (diffusers DDIMScheduler.set_timesteps).
// steps_offset applies to "leading" only (as upstream). Every returned timestep lies in [0, T-1]; a
// steps_offset that would push one outside (upstream then indexes out of range) throws.
// trailing_extra_timestep: diffusers' trailing list as it is. Where numpy.arange(T, 0, -T/N) has N + 1 values
// (T = 1200 with N = 14, 850 with 22, 600 with 7; detail::trailing_has_extra_value) the list keeps the extra
// timestep -1 (round(0) - 1), so DDPMScheduler and DDIMScheduler walk N + 1 steps; their step at -1 reads
// alphas_cumprod[-1], Python's last element ᾱ_{T-1} (ddpm_options / ddim_options::trailing_extra_timestep
// accept such a list). Off (the default): exactly N timesteps, all in [0, T-1] (correct).
[[nodiscard]] inline std::vector<std::int64_t> discrete_timesteps(std::size_t num_train_timesteps,
                                                                  std::size_t num_inference_steps,
                                                                  timestep_spacing spacing = timestep_spacing::leading,
                                                                  std::int64_t steps_offset = 0,
                                                                  bool trailing_extra_timestep = false) {
    constexpr std::string_view where = "discrete_timesteps";
    detail::require_steps(num_train_timesteps, num_inference_steps, where);
    detail::require(steps_offset >= 0, where, "steps_offset", steps_offset, ">= 0");
    if (spacing == timestep_spacing::leading) {
        const auto top = static_cast<std::int64_t>((num_inference_steps - 1) * (num_train_timesteps / num_inference_steps));
        detail::require(steps_offset <= static_cast<std::int64_t>(num_train_timesteps) - 1 - top, where, "steps_offset",
                        steps_offset,
                        "[0, " + std::to_string(static_cast<std::int64_t>(num_train_timesteps) - 1 - top) +
                            "] (leading timesteps must stay below num_train_timesteps)");
    }
    const auto v = detail::spacing_values(num_train_timesteps, num_inference_steps, spacing,
                                          static_cast<double>(steps_offset));
    std::vector<std::int64_t> t(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) t[i] = static_cast<std::int64_t>(v[i]);
    if (trailing_extra_timestep && spacing == timestep_spacing::trailing &&
        detail::trailing_has_extra_value(num_train_timesteps, num_inference_steps))
        t.push_back(-1);  // numpy's (N+1)-th value T + N·(-T/N) rounds to 0
    return t;
}

// How a DDIM-style sampler finds the timestep it steps to.
enum class prev_timestep_rule {
    next_in_list,  // the next entry of the timestep list, -1 after the last (correct for every spacing)
    fixed_stride,  // t - T // N, diffusers DDIMScheduler.step (wrong for linspace/trailing spacing)
};

// The timestep after timesteps[index]; -1 means "past the end" (use final_alpha_cumprod).
[[nodiscard]] inline std::int64_t previous_timestep(std::span<const std::int64_t> timesteps, std::size_t index,
                                                    std::size_t num_train_timesteps,
                                                    prev_timestep_rule rule = prev_timestep_rule::next_in_list) {
    constexpr std::string_view where = "previous_timestep";
    detail::require(!timesteps.empty(), where, "timesteps.size()", timesteps.size(), ">= 1");
    detail::require(index < timesteps.size(), where, "index", index,
                    "[0, " + std::to_string(timesteps.size() - 1) + "]");
    detail::require_count(num_train_timesteps, where, "num_train_timesteps");
    detail::require(num_train_timesteps >= timesteps.size(), where, "num_train_timesteps", num_train_timesteps,
                    ">= timesteps.size() = " + std::to_string(timesteps.size()));
    if (rule == prev_timestep_rule::fixed_stride) {
        const auto stride = static_cast<std::int64_t>(num_train_timesteps / timesteps.size());
        const auto p = timesteps[index] - stride;
        return p < 0 ? -1 : p;
    }
    return index + 1 < timesteps.size() ? timesteps[index + 1] : -1;
}

// ᾱ used after the last step: 1 when set_alpha_to_one, else ᾱ_0 (diffusers DDIM final_alpha_cumprod).
[[nodiscard]] inline double final_alpha_cumprod(std::span<const double> alphas_cumprod, bool set_alpha_to_one = true) {
    detail::require(!alphas_cumprod.empty(), "final_alpha_cumprod", "alphas_cumprod.size()", alphas_cumprod.size(),
                    ">= 1");
    return set_alpha_to_one ? 1.0 : alphas_cumprod[0];
}

// ᾱ at a previous timestep; prev_t < 0 selects final_alpha_cumprod.
[[nodiscard]] inline double alpha_cumprod_prev(std::span<const double> alphas_cumprod, std::int64_t prev_t,
                                               bool set_alpha_to_one = true) {
    detail::require(!alphas_cumprod.empty(), "alpha_cumprod_prev", "alphas_cumprod.size()", alphas_cumprod.size(),
                    ">= 1");
    detail::require(prev_t < static_cast<std::int64_t>(alphas_cumprod.size()), "alpha_cumprod_prev", "prev_t", prev_t,
                    "< alphas_cumprod.size() = " + std::to_string(alphas_cumprod.size()));
    return prev_t < 0 ? final_alpha_cumprod(alphas_cumprod, set_alpha_to_one)
                      : alphas_cumprod[static_cast<std::size_t>(prev_t)];
}

// Where an img2img run enters the schedule (diffusers StableDiffusionImg2ImgPipeline.get_timesteps).
struct img2img_start {
    std::size_t init_timestep;  // min(int(N * strength), N): steps actually denoised
    std::size_t t_start;        // N - init_timestep
    std::size_t start_index;    // t_start * order: first index into the scheduler's timestep list
};

[[nodiscard]] inline img2img_start img2img_start_index(std::size_t num_inference_steps, double strength,
                                                       std::size_t order = 1) {
    constexpr std::string_view where = "img2img_start_index";
    detail::require_count(num_inference_steps, where, "num_inference_steps");
    detail::require(strength >= 0.0 && strength <= 1.0, where, "strength", strength, "[0, 1]");
    detail::require_count(order, where, "order");  // t_start·order stays below 2^48
    const double prod = static_cast<double>(num_inference_steps) * strength;  // int() truncates toward 0
    const auto init = std::min(static_cast<std::size_t>(prod), num_inference_steps);
    const std::size_t t_start = num_inference_steps - init;
    return {init, t_start, t_start * order};
}

}  // namespace diffuse
