#pragma once
// spec.grid (docs/cli.md): the time points a σ-space or SDE sampler walks, num_inference_steps + 1 of them:
// k-diffusion's get_sigmas_* names, diffusers' Euler-family σ list of the schedule, a linspace or a file
// (one row, or one row per sample); for the flow samplers, diffusers' flow-matching σ list (read_flow_grid).

#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "diffuse/samplers/grid.hpp"
#include "diffuse/schedules/flow.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "spec_fields.hpp"
#include "spec_files.hpp"
#include "spec_schedule.hpp"

namespace diffuse::cli::detail {

// Returns nothing for a type the caller builds itself ("score_sde", from the SDE).
// For type "diffusers", *diffusers_options (when given) receives the euler_options it read.
inline std::optional<time_grid> read_grid(fields& g, const spec_schedule& sc, std::size_t batch, const spec_files& files,
                                          std::string_view default_type, std::initializer_list<std::string_view> types,
                                          std::optional<euler_options>* diffusers_options = nullptr) {
    const auto type = g.choice("type", types, std::string(default_type));
    const std::size_t n = sc.num_inference_steps;
    auto sigma_range = [&] {
        const double lo = g.number("sigma_min");
        return std::pair{lo, g.number("sigma_max")};
    };
    std::vector<double> p;
    std::size_t rows = 1;
    try {
        if (type == "karras") {
            const auto [lo, hi] = sigma_range();
            p = karras_sigmas(n, lo, hi, g.number("rho", 7.0));
        } else if (type == "exponential") {
            const auto [lo, hi] = sigma_range();
            p = exponential_sigmas(n, lo, hi);
        } else if (type == "polyexponential") {
            const auto [lo, hi] = sigma_range();
            p = polyexponential_sigmas(n, lo, hi, g.number("rho", 1.0));
        } else if (type == "vp") {
            const double bd = g.number("beta_d", 19.9), bm = g.number("beta_min", 0.1);
            p = vp_sigmas(n, bd, bm, g.number("eps_s", 1e-3));
        } else if (type == "discrete") {
            p = discrete_sigmas_list(discrete_sigmas(sc.alphas_cumprod), n);
        } else if (type == "diffusers") {
            euler_options o;
            o.spacing = sc.spacing;
            o.steps_offset = sc.steps_offset;
            const bool karras = g.boolean("use_karras_sigmas", false), expo = g.boolean("use_exponential_sigmas", false),
                       beta = g.boolean("use_beta_sigmas", false);
            if (int(karras) + int(expo) + int(beta) > 1)
                throw spec_error(g.path() + ": only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas");
            o.sigma_spacing = karras ? sigma_spacing_kind::karras
                              : expo ? sigma_spacing_kind::exponential
                              : beta ? sigma_spacing_kind::beta
                                     : sigma_spacing_kind::none;
            if (g.has("sigma_min")) o.sigma_min = g.number("sigma_min");
            if (g.has("sigma_max")) o.sigma_max = g.number("sigma_max");
            o.final_sigma_min = g.choice("final_sigmas_type", {"zero", "sigma_min"}, "zero") == "sigma_min";
            o.trailing_extra_timestep = g.boolean("trailing_extra_timestep", false);
            p = euler_discrete_sigmas(sc, n, o).sigmas;
            if (diffusers_options) *diffusers_options = o;
        } else if (type == "linspace") {
            const double a = g.number("start"), b = g.number("end");
            p.resize(n + 1);
            for (std::size_t i = 0; i <= n; ++i) p[i] = i == n ? b : a + double(i) * ((b - a) / double(n));
        } else if (type == "file") {
            auto f = files.read_npy(g.string("path"), g.name("path"), n + 1);
            rows = f.values.size() / (n + 1);
            p = std::move(f.values);
            const bool one_row = f.shape.size() == 1 || (f.shape.size() == 2 && f.shape[0] == 1);
            if (!(one_row || (f.shape.size() == 2 && f.shape[0] == batch && f.shape[1] == n + 1)) || (rows != 1 && rows != batch))
                throw spec_error(g.name("path") + ": expected num_inference_steps + 1 = " + std::to_string(n + 1) +
                                 " points, or one row of them per sample");
        } else {
            return std::nullopt;
        }
        return time_grid(std::move(p), rows);
    } catch (const diffuse::error& e) {
        throw spec_error(g.path() + ": " + std::string(diffuse::detail::error_text(e)));
    }
}

// spec.grid of the flow samplers: "flow_match" (diffusers' FlowMatchEulerDiscreteScheduler.set_timesteps under
// its config names, T = schedule.num_train_timesteps; the network timesteps come with it) or "file".
struct flow_grid {
    time_grid grid;
    std::vector<double> timesteps;  // empty for a file grid
};
inline flow_grid read_flow_grid(fields& g, const spec_schedule& sc, std::size_t batch, const spec_files& files) {
    const std::size_t n = sc.num_inference_steps;
    if (g.choice("type", {"flow_match", "file"}, "flow_match") == "file") {
        auto f = files.read_npy(g.string("path"), g.name("path"), n + 1);
        auto p = std::move(f.values);
        const std::size_t rows = p.size() / (n + 1);
        const bool one_row = f.shape.size() == 1 || (f.shape.size() == 2 && f.shape[0] == 1);
        if (!(one_row || (f.shape.size() == 2 && f.shape[0] == batch && f.shape[1] == n + 1)) || (rows != 1 && rows != batch))
            throw spec_error(g.name("path") + ": expected num_inference_steps + 1 = " + std::to_string(n + 1) +
                             " points, or one row of them per sample");
        try {
            return {time_grid(std::move(p), rows), {}};
        } catch (const diffuse::error& e) {
            throw spec_error(g.path() + ": " + e.what());
        }
    }
    flow_match_config c;
    c.num_train_timesteps = sc.size();
    c.shift = g.number_in("shift", 1e-6, 1e6, 1.0);
    c.use_dynamic_shifting = g.boolean("use_dynamic_shifting", false);
    c.time_shift_type = parse_time_shift_kind(g.choice("time_shift_type", {"exponential", "linear"}, "exponential"));
    std::optional<double> mu;
    if (g.has("mu")) mu = g.number_in("mu", -1e3, 1e3);
    if (g.has("image_seq_len")) {  // μ from the image size (diffusers' calculate_shift)
        if (mu) throw spec_error(g.name("image_seq_len") + ": give mu or image_seq_len, not both");
        mu = calculate_shift(g.number_in("image_seq_len", 0, 1e12), g.number("base_image_seq_len", 256.0),
                             g.number("max_image_seq_len", 4096.0), g.number("base_shift", 0.5), g.number("max_shift", 1.15));
    }
    if (c.use_dynamic_shifting && !mu) throw spec_error(g.name("mu") + ": required with use_dynamic_shifting (or image_seq_len)");
    if (g.has("shift_terminal")) c.shift_terminal = g.number_in("shift_terminal", 0.0, 0.999999);
    const bool karras = g.boolean("use_karras_sigmas", false), expo = g.boolean("use_exponential_sigmas", false),
               beta = g.boolean("use_beta_sigmas", false);
    if (int(karras) + int(expo) + int(beta) > 1)
        throw spec_error(g.path() + ": only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas");
    c.sigma_spacing = karras ? flow_sigma_spacing::karras : expo ? flow_sigma_spacing::exponential
                                                                 : beta ? flow_sigma_spacing::beta : flow_sigma_spacing::none;
    c.invert_sigmas = g.boolean("invert_sigmas", false);
    std::vector<double> custom;
    if (g.has("sigmas")) custom = g.numbers("sigmas");
    try {
        auto sch = flow_match_sigmas(c, n, mu, custom);
        return {time_grid(std::move(sch.sigmas)), std::move(sch.timesteps)};
    } catch (const diffuse::error& e) {
        throw spec_error(g.path() + ": " + e.what());
    }
}

}  // namespace diffuse::cli::detail
