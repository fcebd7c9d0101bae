#pragma once
// The discrete VP samplers (diffusers' DDPMScheduler, DDIMScheduler, DDIMInverseScheduler, TCDScheduler): they
// walk the schedule's timesteps (spec.num_inference_steps with schedule.timestep_spacing; TCD: the LCM
// distillation schedule of options.original_inference_steps and options.strength), no grid. Option defaults
// come from the model folder's scheduler_config.json when there is one.

#include <functional>
#include <vector>

#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/tcd.hpp"
#include "runner_common.hpp"

namespace diffuse::cli {

struct discrete_family {
    static constexpr std::string_view name = "discrete";
    template <class T, class Sample>
    static void run(run_context<T>& r, Sample sample) {
        r.denoiser.with_discrete_model([&](auto& m) { sample(r, m); });
    }
};

namespace detail {
// Clipping and dynamic thresholding (diffusers' clip_sample, thresholding; Imagen's dynamic thresholding).
inline void read_clipping(fields& o, sample_clipping& c, const io::scheduler_config* sched) {
    c.clip_sample = o.boolean("clip_sample", sched ? sched->clip_sample : true);
    c.clip_sample_range = o.number_in("clip_sample_range", 1e-12, 1e300, sched ? sched->clip_sample_range : 1.0);
    c.thresholding = o.boolean("thresholding", sched ? sched->thresholding : false);
    c.dynamic_thresholding_ratio = o.number_in("dynamic_thresholding_ratio", 1e-12, 1.0, sched ? sched->dynamic_thresholding_ratio : 0.995);
    c.sample_max_value = o.number_in("sample_max_value", 1.0, 1e300, sched ? sched->sample_max_value : 1.0);
}
// The schedule's timesteps; options.trailing_extra_timestep: diffusers' N + 1 trailing list (the extra
// timestep -1 where numpy's arange yields it, discrete_timesteps), which the sampler's option then accepts.
template <class Run>
std::vector<std::int64_t> spec_timesteps(Run& r, bool& trailing_extra_timestep) {
    trailing_extra_timestep = r.opts.boolean("trailing_extra_timestep", false);
    if (!trailing_extra_timestep) return r.schedule.timesteps;
    return discrete_timesteps(r.schedule.alphas_cumprod.size(), r.schedule.num_inference_steps, r.schedule.spacing,
                              r.schedule.steps_offset, true);
}
}  // namespace detail

inline std::vector<sampler_entry> discrete_samplers() {
    using detail::family_entry;
    return {
        family_entry<discrete_family>("ddpm", "discrete", [](auto& r, auto& m) {
            ddpm_options o;
            const auto* sched = r.denoiser.scheduler();
            detail::read_clipping(r.opts, o, sched);
            o.variance_type = parse_ddpm_variance(r.opts.choice(
                "variance_type", {"fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range"},
                sched ? sched->variance_type : "fixed_small"));
            const auto ts = detail::spec_timesteps(r, o.trailing_extra_timestep);
            sample_ddpm(m, r.x_view(), r.schedule.alphas_cumprod, discrete_grid(ts), o, r.noise,
                        ignores_denoised{std::ref(r.observer)});
        }),
        family_entry<discrete_family>("ddim", "discrete", [](auto& r, auto& m) {
            ddim_options o;
            const auto* sched = r.denoiser.scheduler();
            detail::read_clipping(r.opts, o, sched);
            o.eta = r.opts.number_in("eta", 0.0, 1e300, 0.0);
            o.use_clipped_model_output = r.opts.boolean("use_clipped_model_output", false);
            o.set_alpha_to_one = r.opts.boolean("set_alpha_to_one", sched ? sched->set_alpha_to_one : true);
            o.prev_timestep = r.opts.choice("prev_timestep", {"next_in_list", "fixed_stride"}, "next_in_list") == "fixed_stride"
                                  ? prev_timestep_rule::fixed_stride
                                  : prev_timestep_rule::next_in_list;
            o.num_inference_steps = r.schedule.num_inference_steps;  // N of T // N, also with an N + 1 trailing list
            const auto ts = detail::spec_timesteps(r, o.trailing_extra_timestep);
            sample_ddim(m, r.x_view(), r.schedule.alphas_cumprod, discrete_grid(ts), o, r.noise,
                        ignores_denoised{std::ref(r.observer)});
        }),
        // TCD walks the LCM distillation timesteps, whatever schedule.timestep_spacing says (TCDScheduler ignores it).
        family_entry<discrete_family>("tcd", "discrete", [](auto& r, auto& m) {
            tcd_options o;
            o.eta = r.opts.number_in("eta", 0.0, 1.0, 0.3);
            const auto T = r.schedule.alphas_cumprod.size();
            const auto original = r.opts.count("original_inference_steps", 50, 1);
            const double strength = r.opts.number_in("strength", 1e-12, 1.0, 1.0);
            std::vector<std::int64_t> ts;
            try {
                ts = tcd_timesteps(r.schedule.num_inference_steps, original, T, strength);
            } catch (const diffuse::error& e) {
                throw spec_error(r.opts.path() + ": " + std::string(diffuse::detail::error_text(e)));
            }
            sample_tcd(m, r.x_view(), r.schedule.alphas_cumprod, discrete_grid(ts), o, r.noise, r.observer);
        }),
        // DDIM inversion walks the timesteps upwards, from the clean sample to noise.
        family_entry<discrete_family>("ddim_inverse", "discrete", [](auto& r, auto& m) {
            ddim_inverse_options o;
            o.clip_sample = r.opts.boolean("clip_sample", false);
            o.clip_sample_range = r.opts.number_in("clip_sample_range", 1e-12, 1e300, 1.0);
            o.set_alpha_to_one = r.opts.boolean("set_alpha_to_one", true);
            o.model_at_target = r.opts.boolean("model_at_target", false);
            std::vector<double> g;
            if (o.model_at_target) g.push_back(-1.0);  // the clean start: ᾱ = 1 (or ᾱ_0)
            for (auto it = r.schedule.timesteps.rbegin(); it != r.schedule.timesteps.rend(); ++it) g.push_back(double(*it));
            sample_ddim_inverse(m, r.x_view(), r.schedule.alphas_cumprod, time_grid(g), o, no_noise{}, r.observer);
        }),
    };
}

}  // namespace diffuse::cli
