#pragma once
// The σ-space samplers (k-diffusion's sampling.py, diffusers' Euler-family schedulers): they walk a σ grid
// (spec.grid, default: the schedule's diffusers Euler σ list), starting from σ_0·z unless spec.init_noise
// gives the state. This file holds the family's runner, the options several of its samplers share, and the
// Euler/Heun/DPM2 samplers (samplers/euler.hpp); runner_high_order.hpp and runner_sde.hpp add the rest.

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "diffuse/samplers/brownian.hpp"
#include "diffuse/samplers/euler.hpp"
#include "runner_common.hpp"
#include "spec_grid.hpp"

namespace diffuse::cli {

// The noise a σ-space sampler draws: the spec's (counter or step_noise), or for the SDE solvers of
// DPM-Solver++ by default a Brownian tree over the grid's σ range (options.noise_sampler).
enum class sigma_noise { spec, brownian_tree_default };

template <sigma_noise Noise = sigma_noise::spec>
struct sigma_family {
    static constexpr std::string_view name = "sigma";
    template <class T, class Sample>
    static void run(run_context<T>& r, Sample sample) {
        const auto grid = *detail::read_grid(r.grid, r.schedule, r.batch, r.files, "diffusers",
                                             {"diffusers", "karras", "exponential", "polyexponential", "vp", "discrete", "linspace", "file"},
                                             &r.diffusers_grid);
        if (!r.start.from_file) r.scale_rows(grid);
        std::optional<brownian_tree_noise> tree;
        if constexpr (Noise == sigma_noise::brownian_tree_default) {
            const bool recorded = r.noise.recorded.has_value();
            const auto kind = r.opts.choice("noise_sampler", {"brownian_tree", "counter"}, recorded ? "counter" : "brownian_tree");
            if (kind == "brownian_tree") {
                if (recorded) throw spec_error(r.opts.name("noise_sampler") + ": brownian_tree cannot replay spec.step_noise");
                const auto [lo, hi] = sigma_range(grid);
                tree.emplace(r.start.seed, lo, hi, r.start.first_sample);
                r.noise.tree = &*tree;
            }
        }
        r.denoiser.with_sigma_model(r.sampler, [&](auto& m) { sample(r, m, grid); });
        r.noise.tree = nullptr;
    }

private:
    // The tree's interval: the smallest positive and the largest point of the grid (all rows).
    static std::pair<double, double> sigma_range(const time_grid& g) {
        double lo = std::numeric_limits<double>::infinity(), hi = 0;
        for (std::size_t b = 0; b < g.rows(); ++b)
            for (std::size_t i = 0; i <= g.steps(); ++i) {
                const double v = g(i, b);
                if (v > 0) lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
        return {lo, hi};
    }
};

namespace detail {
inline constexpr double inf = std::numeric_limits<double>::infinity();

// Options shared by several σ-space samplers, read once.
// Karras et al. 2022, Algorithm 2: stochastic churn γ = min(s_churn / N, √2 − 1) for σ in [s_tmin, s_tmax].
inline churn_options read_churn(fields& o) {
    churn_options c;
    c.s_churn = o.number_in("s_churn", 0.0, inf, 0.0);
    c.s_tmin = o.number_in("s_tmin", 0.0, inf, 0.0);
    c.s_tmax = o.number_in("s_tmax", 0.0, inf, inf);
    c.s_noise = o.number_in("s_noise", 0.0, inf, 1.0);
    c.noise_every_step = o.boolean("noise_every_step", false);
    if (o.choice("churn_order", {"karras", "diffusers"}, "karras") == "diffusers") c.order = churn_order::diffusers;
    return c;
}
// The ancestral step's η (share of the step's variance re-injected) and the noise scale.
template <class Options>
void read_eta_noise(fields& o, Options& opt) {
    opt.eta = o.number_in("eta", 0.0, inf, 1.0);
    opt.s_noise = o.number_in("s_noise", 0.0, inf, 1.0);
}
}  // namespace detail

// Euler, Heun and DPM2 (Karras et al. 2022, Algorithms 1–2; k-diffusion's sample_dpm_2), deterministic or
// with churn, and their ancestral versions.
inline std::vector<sampler_entry> euler_samplers() {
    using detail::family_entry;
    using family = sigma_family<>;
    return {
        family_entry<family>("euler", "discrete", [](auto& r, auto& m, const time_grid& g) {
            auto c = detail::read_churn(r.opts);
            c.diffusers_prediction = r.denoiser.pred;  // how churn_order "diffusers" reads the network's output
            sample_euler(m, r.x_view(), g, c, r.noise, r.observer);
        }),
        family_entry<family>("euler_ancestral", "discrete", [](auto& r, auto& m, const time_grid& g) {
            ancestral_options a;
            detail::read_eta_noise(r.opts, a);
            sample_euler_ancestral(m, r.x_view(), g, a, r.noise, r.observer);
        }),
        family_entry<family>("heun", "discrete", [](auto& r, auto& m, const time_grid& g) {
            sample_heun(m, r.x_view(), g, detail::read_churn(r.opts), r.noise, r.observer);
        }),
        family_entry<family>("dpm_2", "discrete", [](auto& r, auto& m, const time_grid& g) {
            sample_dpm_2(m, r.x_view(), g, detail::read_churn(r.opts), r.noise, r.observer);
        }),
        // options.network_timesteps "diffusers": the network timesteps of KDPM2AncestralDiscreteScheduler over
        // the diffusers grid (kdpm2_ancestral_sigmas), given to a discrete-time denoiser at each evaluation.
        family_entry<family>("dpm_2_ancestral", "discrete", [](auto& r, auto& m, const time_grid& g) {
            dpm_2_ancestral_options a;
            detail::read_eta_noise(r.opts, a);
            if (r.opts.choice("network_timesteps", {"from_sigma", "diffusers"}, "from_sigma") == "diffusers") {
                if (!r.diffusers_grid)
                    throw spec_error(r.opts.name("network_timesteps") + ": \"diffusers\" needs grid.type \"diffusers\"");
                if (r.denoiser.time_kind != "discrete")
                    throw spec_error(r.opts.name("network_timesteps") + ": \"diffusers\" needs denoiser.time \"discrete\"");
                try {
                    auto k = kdpm2_ancestral_sigmas(r.schedule.alphas_cumprod, r.schedule.num_inference_steps, *r.diffusers_grid);
                    a.timesteps = std::move(k.timesteps);
                    a.midpoint_timesteps = std::move(k.midpoint_timesteps);
                } catch (const diffuse::error& e) {
                    throw spec_error(r.opts.name("network_timesteps") + ": " + e.what());
                }
            }
            sample_dpm_2_ancestral(m, r.x_view(), g, a, r.noise, r.observer);
        }),
    };
}

}  // namespace diffuse::cli
