#pragma once
// Trajectory Consistency Distillation sampling (Zheng et al. 2024, "Trajectory Consistency Distillation:
// Improved Latent Consistency Distillation by Semi-Linear Consistency Function with Trajectory Mapping",
// §4.2 "strategic stochastic sampling", Algorithm 4; diffusers' TCDScheduler). VP state on the LCM timestep
// grid (tcd_timesteps = lcm_timesteps of samplers/lcm.hpp: the same distillation schedule). Step t → t'
// (t' = the next timestep, 0 after the last one), with γ = eta:
//
//     s     = ⌊(1 − γ)·t'⌋                                   (the intermediate timestep, s <= t')
//     x̂₀, ε̂ = the model's pair at (x, t)                       (ε-, v- or x₀-network, any kind)
//     x_s   = √ᾱ_s·x̂₀ + √(1 − ᾱ_s)·ε̂                          (the trajectory mapping t → s, a DDIM jump)
//     x     ← √(ᾱ_{t'}/ᾱ_s)·x_s + √(1 − ᾱ_{t'}/ᾱ_s)·z        (forward re-noising s → t', z fresh noise)
//
// γ = 0 is deterministic (s = t': DDIM with η = 0); γ = 1 maps to x̂₀ at s = 0 each step and re-noises, as
// multistep consistency sampling. The last step (and every step when γ = 0) returns x_s, which for the last
// step is the state at timestep 0 (√ᾱ_0·x̂₀ + √(1 − ᾱ_0)·ε̂), not x̂₀: upstream does the same.
// Unlike LCM, no boundary condition (c_skip, c_out) is applied: the distilled network's x̂₀ is used as is,
// and x̂₀ is never clipped or thresholded (TCDScheduler's clip_sample / thresholding keys are not read).
// Noise: step i uses draw i (γ > 0 and not the last step).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/lcm.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/stepper.hpp"

namespace diffuse {

// diffusers' TCDScheduler.set_timesteps(num_inference_steps, strength=...) with original_inference_steps from
// the config: LCM's schedule (lcm_timesteps), t_k = (k+1)·⌊T/original⌋ − 1 for k < ⌊original·strength⌋,
// reversed, num_inference_steps of them at indices ⌊i·L/n⌋.
[[nodiscard]] inline std::vector<std::int64_t> tcd_timesteps(std::size_t num_inference_steps,
                                                             std::size_t original_inference_steps = 50,
                                                             std::size_t num_train_timesteps = 1000, double strength = 1.0) {
    return lcm_timesteps(num_inference_steps, original_inference_steps, num_train_timesteps, strength);
}

// TCDScheduler.step's eta (the paper's γ; 0.3 upstream by default). The scheduler's other config keys act
// elsewhere (beta schedule / rescale_betas_zero_snr: ᾱ; prediction_type: the model; original_inference_steps:
// tcd_timesteps) or nowhere (set_alpha_to_one: t' >= 0 always; clip_sample, thresholding, timestep_spacing,
// steps_offset, timestep_scaling: not read by TCDScheduler).
struct tcd_options {
    double eta = 0.3;
};

// Strategic stochastic sampling (Zheng et al. 2024, Algorithm 4) on a discrete grid
// (discrete_grid(tcd_timesteps(...))): x enters as the VP state at the first timestep and leaves as x_s of
// the last step. A step whose two points are equal holds that sample; a step where every sample holds calls
// no model. The model is asked for the pair (x̂₀, ε̂) at the exact timesteps (evaluation::t_net).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class tcd_stepper : public detail::discrete_stepper<tcd_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::discrete_stepper<tcd_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<tcd_stepper<T, Noise, S>, T, S>;

public:
    tcd_stepper(batch_shape shape, std::span<const double> alphas_cumprod, const time_grid& grid, const tcd_options& opt = {},
                Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, grid, std::forward<Noise>(noise), first_sample, "sample_tcd"), opt_(opt),
          hold_(shape.batch) {
        const char* where = this->where();
        detail::check_descending_grid(this->grid_, shape.batch, this->num_train_timesteps(), where);
        detail::require(opt_.eta >= 0 && opt_.eta <= 1, where, "eta", opt_.eta, "[0, 1]");
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& ws = this->ws;
        const std::size_t i = this->step_index();
        const bool renoise = opt_.eta > 0 && i + 1 != this->steps();
        bool all_hold = true, any_hold = false;
        for (std::size_t b = 0; b < x.batch; ++b) {
            const auto t = this->timestep(i, b), next = this->timestep(i + 1, b);
            hold_[b] = next == t;
            all_hold = all_hold && hold_[b];
            any_hold = any_hold || hold_[b];
            ws.set_state(b, double(t), this->alpha_cumprod(t, 1.0));
            const std::int64_t p = next < 0 ? 0 : next;  // t' (0 past the last timestep, as upstream)
            const auto s = static_cast<std::int64_t>(std::floor((1.0 - opt_.eta) * double(p)));
            const double ac_p = this->alpha_cumprod(p, 1.0), ac_s = this->alpha_cumprod(s, 1.0);
            const double keep = renoise ? std::sqrt(ac_p / ac_s) : 1.0;               // √(ᾱ_{t'}/ᾱ_s)
            ws.c0[b] = hold_[b] ? 0.0 : keep * std::sqrt(ac_s);                      // on x̂₀
            ws.c1[b] = hold_[b] ? 0.0 : keep * std::sqrt(1.0 - ac_s);                // on ε̂
            ws.c2[b] = hold_[b] || !renoise ? 0.0 : std::sqrt(1.0 - ac_p / ac_s);    // on z
            ws.c3[b] = hold_[b] ? 1.0 : 0.0;                                         // on x (held rows)
        }
        if (all_hold) {  // every sample holds: nothing to evaluate, nothing to report
            this->skip_report();
            co_return;
        }
        co_await this->predict_pair(x);
        this->complete_pair(x);
        const tensor_view<T, S> x0 = this->view_of(ws.x0), eps = this->view_of(ws.eps), z = this->view_of(ws.noise);
        const auto c0 = per_sample(ws.c0), c1 = per_sample(ws.c1), c2 = per_sample(ws.c2), c3 = per_sample(ws.c3);
        if (renoise) {
            this->noise(z, i);
            lincomb(x, c0, x0, c1, eps, c2, z, c3, x);
        } else if (any_hold) {
            lincomb(x, c0, x0, c1, eps, c3, x);
        } else {
            lincomb(x, c0, x0, c1, eps);
        }
        this->report(ws.t, x0);
    }

    tcd_options opt_;
    std::vector<std::uint8_t> hold_;
};

// The one-call form. first_sample: the id of sample 0 within the whole job (the model's model_cond::first_sample).
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_tcd(Model& m, X&& x, std::span<const double> alphas_cumprod, const time_grid& grid, const tcd_options& opt = {},
                Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    tcd_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, grid, opt, noise, first_sample);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
