#pragma once
// The flow-matching samplers (diffusers' FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler):
// they walk a flow σ grid (spec.grid: "flow_match" under the scheduler's config names, or a file) from the
// noise z itself (spec.init_noise, or drawn from spec.seed; not scaled), feeding the network the scheduler's
// timesteps σ·T. The denoiser's default time is "flow" (a velocity network reading s·T); a discrete or σ
// network drives them too.

#include <limits>
#include <vector>

#include "diffuse/samplers/flow_match.hpp"
#include "runner_common.hpp"
#include "spec_grid.hpp"

namespace diffuse::cli {

struct flow_family {
    static constexpr std::string_view name = "flow";
    template <class T, class Sample>
    static void run(run_context<T>& r, Sample sample) {
        auto g = detail::read_flow_grid(r.grid, r.schedule, r.batch, r.files);
        r.denoiser.with_flow_model(r.sampler, [&](auto& m) { sample(r, m, g); });
    }
};

inline std::vector<sampler_entry> flow_samplers() {
    using detail::family_entry;
    return {
        family_entry<flow_family>("flow_euler", "flow", [](auto& r, auto& m, const detail::flow_grid& g) {
            flow_euler_options o;
            o.stochastic_sampling = r.opts.boolean("stochastic_sampling", false);
            o.timesteps = g.timesteps;
            if (o.stochastic_sampling) sample_flow_euler(m, r.x_view(), g.grid, o, r.noise, r.observer);
            else sample_flow_euler(m, r.x_view(), g.grid, o, no_noise{}, r.observer);
        }),
        family_entry<flow_family>("flow_heun", "flow", [](auto& r, auto& m, const detail::flow_grid& g) {
            constexpr double inf = std::numeric_limits<double>::infinity();
            flow_heun_options o;
            o.s_churn = r.opts.number_in("s_churn", 0.0, inf, 0.0);
            o.s_tmin = r.opts.number_in("s_tmin", 0.0, inf, 0.0);
            o.s_tmax = r.opts.number_in("s_tmax", 0.0, inf, inf);
            o.s_noise = r.opts.number_in("s_noise", 0.0, inf, 1.0);
            o.corrector_draw = r.opts.boolean("corrector_draw", true);
            o.timesteps = g.timesteps;
            sample_flow_heun(m, r.x_view(), g.grid, o, r.noise, r.observer);
        }),
    };
}

}  // namespace diffuse::cli
