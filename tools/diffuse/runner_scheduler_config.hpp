#pragma once
// spec.scheduler_config (docs/cli.md): the sampler, its schedule, grid and options come from a diffusers
// scheduler_config.json read by diffuse::scheduler_from_config (include/diffuse/samplers/scheduler_config.hpp);
// the spec gives the shape, steps, denoiser, latents (init_noise: the unit-normal latents z; or drawn from
// spec.seed) and step noise. spec.sampler, schedule, grid, options and sde conflict with it (spec errors), and so
// do denoiser.time, interpolation, timestep_table and sigma_data (the scheduler decides how its network is fed:
// discrete timesteps, flow-matching s·T, or EDM preconditioning with the file's sigma_data);
// denoiser.prediction_type may only repeat the file's.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "diffuse/core/error.hpp"
#include "diffuse/samplers/scheduler_config.hpp"
#include "spec_denoiser.hpp"
#include "spec_fields.hpp"
#include "spec_files.hpp"
#include "spec_noise.hpp"
#include "spec_schedule.hpp"

namespace diffuse::cli::detail {

// The configured scheduler of spec.scheduler_config, after checking that no field of the spec conflicts with it.
inline configured_scheduler read_scheduler_config_spec(fields& s, fields& dn, const spec_files& files) {
    for (const char* k : {"sampler", "schedule", "grid", "options", "sde"})
        if (s.has(k))
            throw spec_error(s.name(k) + ": conflicts with spec.scheduler_config (the file gives the sampler, its schedule, grid and options)");
    for (const char* k : {"time", "interpolation", "timestep_table", "sigma_data"})
        if (dn.has(k)) throw spec_error(dn.name(k) + ": conflicts with spec.scheduler_config (the scheduler decides the network time)");
    const auto path = files.resolve(s.string("scheduler_config"), s.name("scheduler_config"));
    try {
        return scheduler_from_config_file(path.string());
    } catch (const diffuse::error& e) {
        throw spec_error(s.name("scheduler_config") + ": " + std::string(diffuse::detail::error_text(e)));
    }
}

// The schedule part of a configured run: the file's training table and spec.num_inference_steps.
inline spec_schedule configured_schedule(fields& s, const configured_scheduler& c) {
    spec_schedule out;
    static_cast<discrete_schedule&>(out) = c.schedule;
    out.beta_schedule = c.schedule_config.beta_schedule;
    out.num_inference_steps = s.count("num_inference_steps", {}, 1, diffuse::detail::max_schedule_size);
    return out;
}

// Runs the configured scheduler on the spec's denoiser: x holds the latents z on entry, the result on return.
template <class T, class Observer>
void run_configured(const configured_scheduler& c, fields& s, spec_denoiser& den, spec_start<T>& start, std::size_t batch,
                    std::size_t num_inference_steps, spec_noise& noise, Observer& observer, std::optional<double> mu) {
    // The CLI's observer reads the state only: DDIM and DDPM may skip forming x̂₀, as the library's one-call
    // forms do without an observer (the same bits as scheduler_from_config(...).sample without one).
    auto run = [&](auto& m) {
        c.sample(m, batched(start.x, batch), num_inference_steps, noise, ignores_denoised{std::ref(observer)}, mu);
    };
    try {
        if (c.is_flow()) den.with_time(c.flow_model_time(), run);
        else if (c.is_edm()) den.with_time(c.edm_model_time(), run);
        else den.with_time(c.discrete_model_time(), run);
    } catch (const spec_error&) {
        throw;
    } catch (const diffuse::error& e) {
        throw spec_error(s.name("scheduler_config") + ": " + c.class_name + ": " + std::string(diffuse::detail::error_text(e)));
    }
}

}  // namespace diffuse::cli::detail
