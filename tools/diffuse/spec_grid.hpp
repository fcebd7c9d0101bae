#pragma once
// spec.grid (docs/cli.md): the time points a σ-space or SDE sampler walks, num_inference_steps + 1 of them:
// k-diffusion's get_sigmas_* names, diffusers' Euler-family σ list of the schedule, a linspace or a file
// (one row, or one row per sample).

#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "diffuse/samplers/grid.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "spec_fields.hpp"
#include "spec_files.hpp"
#include "spec_schedule.hpp"

namespace diffuse::cli::detail {

// Returns nothing for a type the caller builds itself ("score_sde", from the SDE).
inline std::optional<time_grid> read_grid(fields& g, const spec_schedule& sc, std::size_t batch, const spec_files& files,
                                          std::string_view default_type, std::initializer_list<std::string_view> types) {
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
            const bool karras = g.boolean("use_karras_sigmas", false), expo = g.boolean("use_exponential_sigmas", false);
            if (karras && expo) throw spec_error(g.name("use_exponential_sigmas") + ": cannot be combined with use_karras_sigmas");
            o.sigma_spacing = karras ? sigma_spacing_kind::karras : expo ? sigma_spacing_kind::exponential : sigma_spacing_kind::none;
            if (g.has("sigma_min")) o.sigma_min = g.number("sigma_min");
            if (g.has("sigma_max")) o.sigma_max = g.number("sigma_max");
            o.final_sigma_min = g.choice("final_sigmas_type", {"zero", "sigma_min"}, "zero") == "sigma_min";
            o.trailing_extra_timestep = g.boolean("trailing_extra_timestep", false);
            p = euler_discrete_sigmas(sc, n, o).sigmas;
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

}  // namespace diffuse::cli::detail
