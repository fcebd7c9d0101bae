#pragma once
// A spec's sample shape, its discrete noise schedule (diffusers config names, spec.schedule) and the number
// of inference steps with, for the discrete samplers, the schedule's timesteps (docs/cli.md).

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/io/diffusers.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/timesteps.hpp"
#include "spec_fields.hpp"
#include "unet_denoiser.hpp"

namespace diffuse::cli {

// spec.shape: [batch, dims...].
struct spec_shape {
    std::vector<std::size_t> dims;
    std::size_t batch = 0, total = 0;
    [[nodiscard]] std::size_t per_sample() const noexcept { return total / batch; }
};

// The schedule's β, α, ᾱ with the spec's step choices.
struct spec_schedule : discrete_schedule {
    timestep_spacing spacing = timestep_spacing::leading;
    std::int64_t steps_offset = 0;
    std::size_t num_inference_steps = 0;
    std::vector<std::int64_t> timesteps;  // descending, from the spacing (the discrete samplers only)
    std::string beta_schedule;            // the schedule's name (diffusers' solver tables treat the cosine one apart)
};

namespace detail {
// spec.shape; a U-Net denoiser also checks it and takes the image size from it.
inline spec_shape read_shape(fields& s, spec_unet* unet) {
    const auto dims = s.numbers("shape");
    if (dims.size() < 2) throw spec_error(s.name("shape") + ": expected [batch, dims...] (at least 2 entries)");
    spec_shape shape;
    shape.total = 1;
    for (double v : dims) {
        if (!(v >= 1 && v == std::floor(v) && v <= 1e8)) throw spec_error(s.name("shape") + ": entries must be positive integers");
        shape.dims.push_back(std::size_t(v));
        shape.total *= std::size_t(v);
        if (shape.total > (std::size_t{1} << 30)) throw spec_error(s.name("shape") + ": too many values");
    }
    shape.batch = shape.dims[0];
    if (unet) {
        const auto& d = shape.dims;
        const auto& uc = unet->net.config();
        if (d.size() != 4 || d[1] != uc.in_channels)
            throw spec_error(s.name("shape") + ": a unet2d denoiser needs [batch, " + std::to_string(uc.in_channels) +
                             ", height, width]");
        try {
            unet->net.check_input(d[1], d[2], d[3]);
        } catch (const diffuse::error& err) {
            throw spec_error(s.name("shape") + ": " + err.what());
        }
        unet->h = d[2];
        unet->w = d[3];
    }
    return shape;
}

// spec.schedule and spec.num_inference_steps; defaults from the model folder's scheduler_config.json when
// there is one. with_timesteps: also the discrete samplers' timesteps.
inline spec_schedule read_schedule(fields& s, const io::scheduler_config* sched, bool with_timesteps) {
    auto sc = s.object("schedule");
    const discrete_schedule_config trained = sched ? sched->schedule : discrete_schedule_config{};
    discrete_schedule_config cfg;
    cfg.beta_schedule = sc.choice("beta_schedule", {"linear", "scaled_linear", "squaredcos_cap_v2", "cosine", "sigmoid", "laplace", "exp"},
                                  trained.beta_schedule);
    cfg.num_train_timesteps = sc.count("num_train_timesteps", trained.num_train_timesteps, 2);
    cfg.beta_start = sc.number_in("beta_start", 1e-12, 1.0, trained.beta_start);
    cfg.beta_end = sc.number_in("beta_end", 1e-12, 1.0, trained.beta_end);
    cfg.rescale_betas_zero_snr = sc.boolean("rescale_betas_zero_snr", trained.rescale_betas_zero_snr);
    if (trained.trained_betas && !sc.has("beta_schedule")) cfg.trained_betas = trained.trained_betas;
    spec_schedule out;
    out.beta_schedule = cfg.trained_betas ? std::string() : cfg.beta_schedule;
    out.spacing = parse_timestep_spacing(sc.choice("timestep_spacing", {"leading", "trailing", "linspace"},
                                                   std::string(to_string(sched ? sched->spacing : timestep_spacing::leading))));
    out.steps_offset = static_cast<std::int64_t>(sc.count("steps_offset", std::uint64_t(sched ? sched->steps_offset : 0), 0,
                                                          std::uint64_t(std::numeric_limits<std::int64_t>::max())));
    const bool alphas_f32 = sc.choice("alphas_dtype", {"float64", "float32"}, "float64") == "float32";
    sc.finish();
    try {
        static_cast<discrete_schedule&>(out) = discrete_schedule::from_config(cfg);
    } catch (const diffuse::error& err) {
        throw spec_error(sc.path() + ": " + err.what());
    }
    if (alphas_f32)  // ᾱ as diffusers holds it (a float32 tensor)
        for (auto& a : out.alphas_cumprod) a = static_cast<double>(static_cast<float>(a));

    out.num_inference_steps = s.count("num_inference_steps", {}, 1, diffuse::detail::max_schedule_size);  // no n + 1 wrap
    if (with_timesteps) {
        if (out.num_inference_steps > cfg.num_train_timesteps)
            throw spec_error(s.name("num_inference_steps") + ": " + std::to_string(out.num_inference_steps) +
                             " exceeds schedule.num_train_timesteps");
        try {
            out.timesteps = discrete_timesteps(cfg.num_train_timesteps, out.num_inference_steps, out.spacing, out.steps_offset);
        } catch (const diffuse::error& err) {
            throw spec_error(sc.name("steps_offset") + ": " + err.what());
        }
    }
    return out;
}
}  // namespace detail

}  // namespace diffuse::cli
