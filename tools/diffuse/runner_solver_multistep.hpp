#pragma once
// diffusers' exponential-integrator solver schedulers (DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler,
// DEISMultistepScheduler):
// they walk their own timestep/σ table (schedules/solver_sigmas.hpp) built from spec.num_inference_steps,
// schedule.timestep_spacing / steps_offset and the table options below, and feed the network the table's
// integer timesteps. No grid; init_noise_sigma is 1 (x is the initial noise as given).

#include <cmath>
#include <filesystem>
#include <limits>
#include <string_view>
#include <vector>

#include "diffuse/samplers/deis.hpp"
#include "diffuse/samplers/dpm_solver_multistep.hpp"
#include "diffuse/samplers/dpm_solver_singlestep.hpp"
#include "runner_common.hpp"

namespace diffuse::cli {

struct solver_multistep_family {
    static constexpr std::string_view name = "solver_multistep";
    template <class T, class Sample>
    static void run(run_context<T>& r, Sample sample) {
        r.denoiser.with_discrete_model([&](auto& m) { sample(r, m); });
    }
};

namespace detail {
// Which scheduler's set_timesteps the table follows.
enum class solver_table { dpm_multistep, dpm_singlestep, deis };

// The table options of spec.options (use_karras_sigmas, use_exponential_sigmas, use_lu_lambdas, and for DPM-Solver
// final_sigmas_type and lambda_min_clipped; training_sigmas: a .npy [2, T] of the reference's float32 training σ and log σ).
// The singlestep scheduler always spaces by linspace (it has no timestep_spacing).
inline solver_schedule read_solver_schedule(fields& o, const spec_schedule& sc, solver_table kind, const spec_files& files) {
    const bool deis = kind == solver_table::deis, singlestep = kind == solver_table::dpm_singlestep;
    solver_schedule_options t;
    t.spacing = singlestep ? timestep_spacing::linspace : sc.spacing;
    t.steps_offset = singlestep ? 0 : sc.steps_offset;
    const bool karras = o.boolean("use_karras_sigmas", false), exponential = o.boolean("use_exponential_sigmas", false);
    const bool lu = kind == solver_table::dpm_multistep && o.boolean("use_lu_lambdas", false);
    if (int(karras) + int(exponential) + int(lu) > 1)
        throw spec_error(o.path() + ": use_karras_sigmas, use_exponential_sigmas and use_lu_lambdas exclude each other");
    t.sigma_spacing = karras ? solver_sigma_spacing::karras
                      : exponential ? solver_sigma_spacing::exponential
                      : lu ? solver_sigma_spacing::lu_lambdas
                           : solver_sigma_spacing::training;
    t.round_spaced_timesteps = deis || singlestep || !(sc.beta_schedule == "squaredcos_cap_v2" || sc.beta_schedule == "cosine");
    if (deis) {
        t.final_sigma = final_sigma_rule::repeat_last_spaced;
    } else {
        t.final_sigma = o.choice("final_sigmas_type", {"zero", "sigma_min"}, "zero") == "zero" ? final_sigma_rule::zero
                                                                                              : final_sigma_rule::sigma_min;
        if (o.has("lambda_min_clipped")) t.lambda_min_clipped = o.number_in("lambda_min_clipped", -1e300, 1e300);  // else -inf
    }
    // the reference's float32 training σ and log σ table ([2, T]), when given (schedules/solver_sigmas.hpp)
    if (!o.has("training_sigmas")) return multistep_solver_schedule(sc.alphas_cumprod, sc.num_inference_steps, t);
    const std::size_t T = sc.alphas_cumprod.size();
    const auto f = files.read_npy(o.string("training_sigmas"), o.name("training_sigmas"), 2 * T);
    const auto& v = f.values;
    if (f.shape != std::vector<std::size_t>{2, T}) throw spec_error(o.name("training_sigmas") + ": expected [2, num_train_timesteps] values (sigma, log sigma)");
    training_sigma_table train{{v.begin(), v.begin() + std::ptrdiff_t(T)}, {v.begin() + std::ptrdiff_t(T), v.end()}};
    return multistep_solver_schedule(sc.alphas_cumprod, sc.num_inference_steps, t, train);
}
}  // namespace detail

inline std::vector<sampler_entry> solver_multistep_samplers() {
    using detail::family_entry;
    return {
        family_entry<solver_multistep_family>("dpm_solver_multistep", "discrete", [](auto& r, auto& m) {
            dpm_solver_multistep_options d;
            d.solver_order = r.opts.count("solver_order", 2, 1, 3);
            d.algorithm_type = parse_dpm_solver_algorithm(
                r.opts.choice("algorithm_type", {"dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"}, "dpmsolver++"));
            d.solver_type = parse_dpm_solver_type(r.opts.choice("solver_type", {"midpoint", "heun"}, "midpoint"));
            d.lower_order_final = r.opts.boolean("lower_order_final", true);
            d.euler_at_final = r.opts.boolean("euler_at_final", false);
            d.thresholding = r.opts.boolean("thresholding", false);
            d.dynamic_thresholding_ratio = r.opts.number_in("dynamic_thresholding_ratio", 1e-12, 1.0, 0.995);
            d.sample_max_value = r.opts.number_in("sample_max_value", 1.0, 1e300, 1.0);
            const auto table = detail::read_solver_schedule(r.opts, r.schedule, detail::solver_table::dpm_multistep, r.files);
            sample_dpm_solver_multistep(m, r.x_view(), r.schedule.alphas_cumprod, table, d, r.noise, r.observer);
        }),
        family_entry<solver_multistep_family>("dpm_solver_singlestep", "discrete", [](auto& r, auto& m) {
            dpm_solver_singlestep_options d;
            d.solver_order = r.opts.count("solver_order", 2, 1, 3);
            d.algorithm_type = parse_dpm_solver_algorithm(
                r.opts.choice("algorithm_type", {"dpmsolver++", "sde-dpmsolver++", "dpmsolver"}, "dpmsolver++"));
            d.solver_type = parse_dpm_solver_type(r.opts.choice("solver_type", {"midpoint", "heun"}, "midpoint"));
            d.lower_order_final = r.opts.boolean("lower_order_final", false);
            d.thresholding = r.opts.boolean("thresholding", false);
            d.dynamic_thresholding_ratio = r.opts.number_in("dynamic_thresholding_ratio", 1e-12, 1.0, 0.995);
            d.sample_max_value = r.opts.number_in("sample_max_value", 1.0, 1e300, 1.0);
            const auto table = detail::read_solver_schedule(r.opts, r.schedule, detail::solver_table::dpm_singlestep, r.files);
            sample_dpm_solver_singlestep(m, r.x_view(), r.schedule.alphas_cumprod, table, d, r.noise, r.observer);
        }),
        family_entry<solver_multistep_family>("deis_multistep", "discrete", [](auto& r, auto& m) {
            deis_options d;
            d.solver_order = r.opts.count("solver_order", 2, 1, 3);
            d.lower_order_final = r.opts.boolean("lower_order_final", true);
            d.thresholding = r.opts.boolean("thresholding", false);
            d.dynamic_thresholding_ratio = r.opts.number_in("dynamic_thresholding_ratio", 1e-12, 1.0, 0.995);
            d.sample_max_value = r.opts.number_in("sample_max_value", 1.0, 1e300, 1.0);
            const auto table = detail::read_solver_schedule(r.opts, r.schedule, detail::solver_table::deis, r.files);
            sample_deis(m, r.x_view(), r.schedule.alphas_cumprod, table, d, no_noise{}, r.observer);
        }),
    };
}

}  // namespace diffuse::cli
