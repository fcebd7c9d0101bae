#pragma once
// diffusers' EDM schedulers (EDMEulerScheduler, EDMDPMSolverMultistepScheduler): they walk the EDM σ table
// (schedules/edm.hpp) built from spec.num_inference_steps and the options sigma_min, sigma_max, rho,
// sigma_schedule and final_sigmas_type, with the denoiser read as an EDM-preconditioned network (denoiser.time
// "edm" by default: denoiser.sigma_data, prediction_type epsilon or v_prediction; any other time drives them
// too). No grid. The state is σ-space; without spec.init_noise it starts at σ_0·z (upstream's pipelines use
// init_noise_sigma = √(σ_max² + 1): give that state as init_noise to reproduce them).

#include <string_view>
#include <vector>

#include "diffuse/samplers/dpm_solver_multistep.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/schedules/edm.hpp"
#include "runner_common.hpp"
#include "runner_sigma.hpp"

namespace diffuse::cli {

struct edm_family {
    static constexpr std::string_view name = "edm";
    template <class T, class Sample>
    static void run(run_context<T>& r, Sample sample) {
        r.denoiser.with_sigma_model(r.sampler, [&](auto& m) { sample(r, m); });
    }
};

namespace detail {
// The table of options sigma_min, sigma_max, rho, sigma_schedule, final_sigmas_type as scheduler s reads them, and
// the initial state σ_0·z where the spec gives none.
template <class T>
std::vector<double> read_edm_sigmas(run_context<T>& r, edm_scheduler s) {
    auto& o = r.opts;
    edm_schedule_options e;
    e.sigma_min = o.number_in("sigma_min", 1e-300, 1e300, 0.002);
    e.sigma_max = o.number_in("sigma_max", 1e-300, 1e300, 80.0);
    e.rho = o.number_in("rho", 1e-6, 1e6, 7.0);
    e.sigma_schedule = parse_edm_sigma_schedule(o.choice("sigma_schedule", {"karras", "exponential"}, "karras"));
    e.final_sigma = edm_final_sigma(o.choice("final_sigmas_type", {"zero", "sigma_min"}, "zero"), s);
    if (!(e.sigma_max > e.sigma_min)) throw spec_error(o.name("sigma_max") + ": must exceed sigma_min");
    auto sigmas = edm_sigmas(r.schedule.num_inference_steps, e);
    if (!r.start.from_file) r.scale_rows(time_grid(sigmas));
    return sigmas;
}
}  // namespace detail

inline std::vector<sampler_entry> edm_samplers() {
    using detail::family_entry;
    return {
        // EDMEulerScheduler: Euler on the table; step()'s churn arguments s_churn, s_tmin, s_tmax, s_noise, with the
        // network evaluated before the churn and read at (x̂, σ̂) as upstream (churn_order diffusers).
        family_entry<edm_family>("edm_euler", "edm", [](auto& r, auto& m) {
            churn_options c;
            c.s_churn = r.opts.number_in("s_churn", 0.0, detail::inf, 0.0);
            c.s_tmin = r.opts.number_in("s_tmin", 0.0, detail::inf, 0.0);
            c.s_tmax = r.opts.number_in("s_tmax", 0.0, detail::inf, detail::inf);
            c.s_noise = r.opts.number_in("s_noise", 0.0, detail::inf, 1.0);
            c.order = churn_order::diffusers;
            c.diffusers_prediction = r.denoiser.pred;
            if (r.denoiser.time_kind == "edm") c.diffusers_edm_sigma_data = r.denoiser.sigma_data;
            const time_grid grid(detail::read_edm_sigmas(r, edm_scheduler::euler));
            sample_euler(m, r.x_view(), grid, c, r.noise, r.observer);
        }),
        // EDMDPMSolverMultistepScheduler: DPM-Solver++ (orders 1–3, midpoint/heun) or its SDE (orders 1–2) on the table.
        family_entry<edm_family>("edm_dpm_solver_multistep", "edm", [](auto& r, auto& m) {
            dpm_solver_multistep_options d;
            d.solver_order = r.opts.count("solver_order", 2, 1, 3);
            d.algorithm_type = parse_dpm_solver_algorithm(r.opts.choice("algorithm_type", {"dpmsolver++", "sde-dpmsolver++"}, "dpmsolver++"));
            d.solver_type = parse_dpm_solver_type(r.opts.choice("solver_type", {"midpoint", "heun"}, "midpoint"));
            d.lower_order_final = r.opts.boolean("lower_order_final", true);
            d.euler_at_final = r.opts.boolean("euler_at_final", false);
            d.thresholding = r.opts.boolean("thresholding", false);
            d.dynamic_thresholding_ratio = r.opts.number_in("dynamic_thresholding_ratio", 1e-12, 1.0, 0.995);
            d.sample_max_value = r.opts.number_in("sample_max_value", 1.0, 1e300, 1.0);
            if (d.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp && d.solver_order == 3)
                throw spec_error(r.opts.name("solver_order") + ": sde-dpmsolver++ has orders 1 and 2 here (upstream's "
                                                               "EDMDPMSolverMultistepScheduler has no third-order SDE update)");
            const sigma_space_table table{detail::read_edm_sigmas(r, edm_scheduler::dpm_solver_multistep)};
            sample_dpm_solver_multistep(m, r.x_view(), table, d, r.noise, r.observer);
        }),
    };
}

}  // namespace diffuse::cli
