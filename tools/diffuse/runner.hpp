#pragma once
// The implementation of run_spec.hpp (compiled once, in run_spec.cpp): the sampling-spec runner behind `diffuse sample SPEC.json OUT.npy` and the golden parity test.
// The spec format is documented in docs/cli.md. Every defect in a spec raises spec_error whose message is one
// line naming the field ("spec.schedule.beta_start: expected a number").
//
// Before anything is read, the spec's memory, work and output are checked against the run's limits
// (spec_limits.hpp); the files it names resolve inside its folder (spec_files.hpp).
// The spec is read in pieces (spec_fields.hpp: the field reader; spec_schedule.hpp: shape, schedule and
// timesteps; spec_denoiser.hpp: the denoiser and its models; spec_noise.hpp: initial state and noise;
// spec_grid.hpp: σ and time grids), then one family's runner runs the sampler (runner_common.hpp):
//   runner_discrete.hpp     DDPM, DDIM, DDIM inversion: the schedule's timesteps
//   runner_sigma.hpp        the σ-space runner; Euler, Heun, DPM2 and their ancestral versions
//   runner_high_order.hpp   LMS, DPM-Solver++ (2M, 2S, SDE, 2M SDE, 3M SDE), UniPC on σ
//   runner_sde.hpp          score_sde on an SDE's time (predictor–corrector, probability-flow ODE);
//                           annealed Langevin on σ
//   runner_solver_multistep.hpp  diffusers' DPM-Solver multistep and DEIS on their own timestep/σ table
//   runner_flow.hpp         flow matching (diffusers' FlowMatchEuler/Heun) on the flow-matching σ grid
//   runner_edm.hpp          diffusers' EDM Euler and EDM DPM-Solver multistep on the EDM σ table
// or, with spec.scheduler_config, the configured scheduler of a diffusers scheduler_config.json
// (runner_scheduler_config.hpp).
// Adding a sampler: one entry in its family's list (a lambda reading its options and calling it).

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <system_error>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/file.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/io/npy.hpp"
#include "runner_common.hpp"
#include "runner_discrete.hpp"
#include "runner_edm.hpp"
#include "runner_flow.hpp"
#include "runner_high_order.hpp"
#include "runner_scheduler_config.hpp"
#include "runner_sde.hpp"
#include "runner_sigma.hpp"
#include "runner_solver_multistep.hpp"
#include "spec_files.hpp"
#include "spec_limits.hpp"
#include "spec_denoiser.hpp"
#include "spec_fields.hpp"
#include "spec_noise.hpp"
#include "spec_schedule.hpp"
#include "run_spec.hpp"
#include "unet_denoiser.hpp"

namespace diffuse::cli {

// The samplers the CLI knows, by spec name, with their family's runner.
inline const std::vector<sampler_entry>& sampler_table() {
    static const std::vector<sampler_entry> table = [] {
        std::vector<sampler_entry> t;
        for (auto&& family : {discrete_samplers(), euler_samplers(), high_order_samplers(), sde_samplers(),
                               solver_multistep_samplers(), flow_samplers(), edm_samplers()})
            t.insert(t.end(), family.begin(), family.end());
        return t;
    }();
    return table;
}


// The result of running a spec: the final sample and (when asked) the trajectory, both with shapes.
template <class T>
struct run_result {
    std::vector<T> x;
    std::vector<std::size_t> shape;
    std::vector<T> trajectory;  // steps × shape, when spec.trajectory is set or always_record
    std::size_t recorded_steps = 0;
    std::optional<std::size_t> nfe;  // model calls, for samplers that report them (pf_ode_rk45)
    std::unique_ptr<io::npy_writer<T>> trajectory_file;  // the streamed trajectory, finished, not yet published
};

namespace detail {
// spec.sampler; a model folder's scheduler_config.json names the default.
inline const sampler_entry& read_sampler(fields& s, const io::scheduler_config* sched, bool unet) {
    std::optional<std::string> default_sampler;
    if (sched) default_sampler = sampler_for_scheduler(sched->class_name);
    if (unet && !s.has("sampler") && !default_sampler)
        throw spec_error(s.name("sampler") + ": missing, and the folder's scheduler_config.json names no scheduler the CLI knows");
    const auto sampler = s.string("sampler", default_sampler);
    std::string names;
    for (const auto& e : sampler_table()) {
        if (e.name == sampler) return e;
        names += (names.empty() ? "" : ", ") + std::string(e.name);
    }
    throw spec_error(s.name("sampler") + ": \"" + sampler + "\" is not one of {" + names + "}");
}

template <class T>
run_result<T> run_spec_typed(fields& s, const spec_files& files, bool always_record, bool stream,
                             const std::function<void(std::size_t, std::size_t)>& progress) {
    // The denoiser's type first: a model folder supplies the defaults of the sampler, schedule and prediction.
    auto dn = s.object("denoiser");
    auto unet = open_unet(dn, files.dir);
    const io::scheduler_config* sched = unet && unet->sched ? &*unet->sched : nullptr;
    // spec.scheduler_config: the sampler and all its settings from a diffusers scheduler file
    std::optional<configured_scheduler> configured;
    if (s.has("scheduler_config")) configured = read_scheduler_config_spec(s, dn, files);
    const bool prediction_given = dn.has("prediction_type");
    const sampler_entry* e = configured ? nullptr : &read_sampler(s, sched, unet != nullptr);
    const auto shape = read_shape(s, unet.get());
    const auto schedule = configured ? configured_schedule(s, *configured) : read_schedule(s, sched, e->family == "discrete");
    const std::string_view default_time = configured ? (configured->is_flow() ? "flow" : configured->is_edm() ? "edm" : "discrete")
                                                 : e->default_time;
    auto denoiser = read_denoiser(dn, std::move(unet), shape.batch, shape.per_sample(), schedule.alphas_cumprod, default_time, files);
    if (configured) {
        if (prediction_given && denoiser.pred != configured->prediction_type)
            throw spec_error("spec.denoiser.prediction_type: conflicts with the prediction_type of spec.scheduler_config");
        denoiser.pred = configured->prediction_type;
    }
    auto start = read_start<T>(s, shape, files);
    auto noise = read_step_noise(s, start.seed, shape, files, start.first_sample);

    run_result<T> res;
    std::optional<std::filesystem::path> trajectory_path;
    if (s.has("trajectory")) trajectory_path = files.resolve(s.string("trajectory"), s.name("trajectory"));
    const bool to_file = stream && trajectory_path;
    const bool record = always_record || (trajectory_path && !to_file);
    (void)s.raw("dtype");
    (void)s.raw("test");  // the parity test's expectations; the CLI ignores them
    // grid and SDE belong to some families only
    if (e && e->family == "discrete" && s.has("grid"))
        throw spec_error(s.name("grid") + ": the discrete samplers walk the schedule's timesteps (no grid)");
    if (e && e->family == "edm" && s.has("grid"))
        throw spec_error(s.name("grid") + ": the EDM samplers walk their own sigma table (options sigma_min, sigma_max, rho, "
                                          "sigma_schedule, final_sigmas_type; no grid)");
    if (e && e->family != "sde" && s.has("sde")) throw spec_error(s.name("sde") + ": only the score_sde samplers read an SDE");
    auto opts = s.object("options");
    auto grid = s.object("grid");
    auto sde = s.object("sde");
    run_context<T> r{e ? std::string(e->name) : configured->class_name, opts, grid, sde, schedule, denoiser, start, shape.batch, noise, nullptr, files, std::nullopt, std::nullopt};
    // The streamed trajectory's file holds [steps, shape...]: opened at the first step, which knows the count.
    auto open_trajectory = [&](std::size_t steps) {
        std::vector<std::size_t> dims{steps};
        dims.insert(dims.end(), shape.dims.begin(), shape.dims.end());
        try {
            res.trajectory_file = std::make_unique<io::npy_writer<T>>(trajectory_path->string(), dims);
        } catch (const diffuse::error& err) {
            throw spec_error(s.name("trajectory") + ": " + std::string(diffuse::detail::error_text(err)));
        }
    };
    r.observer = [&](const step_info<T>& info) {
        if (record || to_file) ++res.recorded_steps;
        if (record) res.trajectory.insert(res.trajectory.end(), info.x.data, info.x.data + info.x.size());
        if (to_file) {
            if (!res.trajectory_file) open_trajectory(info.steps);
            try {
                res.trajectory_file->append(std::span<const T>(info.x.data, info.x.size()));
            } catch (const diffuse::error& err) {
                throw spec_error(s.name("trajectory") + ": " + std::string(diffuse::detail::error_text(err)));
            }
        }
        if (progress) progress(info.step + 1, info.steps);
    };
    std::optional<double> mu;  // set_timesteps' mu (a configured FlowMatchEuler scheduler with use_dynamic_shifting)
    if (configured && s.has("mu")) mu = s.number("mu");
    s.finish();
    try {
        if (configured) run_configured(*configured, s, denoiser, start, shape.batch, schedule.num_inference_steps, noise, r.observer, mu);
        else if constexpr (std::is_same_v<T, float>) e->run_f32(r);
        else e->run_f64(r);
    } catch (const spec_error&) {
        throw;
    } catch (const diffuse::error& err) {
        throw spec_error(std::string("spec.options: ") + err.what());
    }
    grid.finish();
    sde.finish();
    opts.finish();
    if (to_file) {
        if (!res.trajectory_file) open_trajectory(0);
        try {
            res.trajectory_file->finish();  // every step arrived, the bytes are on disk; the caller publishes it
        } catch (const diffuse::error& err) {
            throw spec_error(s.name("trajectory") + ": " + std::string(diffuse::detail::error_text(err)));
        }
    }
    res.x = std::move(start.x);
    res.shape = shape.dims;
    res.nfe = r.nfe;
    if (denoiser.unet && !res.nfe) res.nfe = denoiser.unet->profile.forwards;  // network calls (a guided call holds both halves)
    return res;
}
}  // namespace detail

}  // namespace diffuse::cli
