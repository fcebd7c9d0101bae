#pragma once
// Few-step samplers of consistency models: every step maps the state straight to a clean estimate with the
// consistency function f(x, t) and re-noises it to the next (lower) noise level.
//
//   sample_lcm          Latent Consistency Models (Luo et al. 2023, "Latent Consistency Models: Synthesizing
//                       High-Resolution Images with Few-Step Inference", Algorithm 1 "multistep latent
//                       consistency sampling"; diffusers' LCMScheduler). VP state on a discrete timestep grid:
//                           x̂₀ = the model's x₀ at (x, t)              (ε-, v- or x₀-network, any kind)
//                           f  = c_skip(t)·x + c_out(t)·x̂₀            (the boundary-condition parameterisation)
//                           x ← √ᾱ_{t'}·f + √(1 − ᾱ_{t'})·z            (z fresh noise; none on the last step,
//                                                                       which returns f)
//                       with LCM's scalings at the scaled time τ = timestep_scaling·t:
//                           c_skip = σ_d²/(τ² + σ_d²),  c_out = τ/√(τ² + σ_d²)   (σ_d = 0.5)
//                       i.e. consistency_scalings(τ, σ_d, 0) of process/consistency.hpp with c_out divided by
//                       σ_d (LCM's reference code and diffusers omit that factor).
//   sample_consistency  Consistency Models (Song et al. 2023, "Consistency Models", Algorithm 1 "multistep
//                       consistency sampling"; diffusers' CMStochasticIterativeScheduler). σ-space state on a
//                       σ grid τ_0 > τ_1 > … > τ_N (τ_N = σ_min = the paper's ε):
//                           x ← f(x, τ_i)   (clamped to [−1, 1] with clip_denoised)
//                           x ← x + s_noise·√(τ̂_{i+1}² − ε²)·z,  τ̂ = clamp(τ_{i+1}, σ_min, σ_max)
//                       The model is asked for x₀ (= f). consistency_model(F, σ_data, σ_min) wraps a raw
//                       consistency network F into f(x, σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, c_noise(σ))
//                       (Song et al. 2023, appendix C; c_skip, c_out from consistency_scalings,
//                       c_in = 1/√(σ² + σ_d²), c_noise = 250·log(σ + 1e-44) as the reference code feeds it).
//
// Grids: lcm_timesteps(...) is diffusers' LCM timestep schedule (original_inference_steps skipping);
// consistency_timesteps / consistency_sigmas give CMStochasticIterativeScheduler's Karras σ (a subset of
// the training boundaries consistency_boundaries of process/consistency.hpp) ending at σ_min.
// Both samplers take per-sample grids. Noise: step i uses draw i. Each is a stepper (samplers/stepper.hpp:
// lcm_stepper, consistency_stepper) and a one-call sample_* over it.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/process/consistency.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"
#include "diffuse/samplers/stepper.hpp"

namespace diffuse {

// ---------------------------------------------------------------------------------------------------------
// Latent Consistency Models

// diffusers' LCMScheduler.set_timesteps: the distillation schedule t_k = (k+1)·⌊T/original⌋ − 1,
// k < ⌊original·strength⌋ ("skipping step" of Luo et al. §4.3), reversed, then num_inference_steps of them at
// indices ⌊i·L/n⌋ (numpy's linspace without end point, then floor).
[[nodiscard]] inline std::vector<std::int64_t> lcm_timesteps(std::size_t num_inference_steps,
                                                             std::size_t original_inference_steps = 50,
                                                             std::size_t num_train_timesteps = 1000, double strength = 1.0) {
    constexpr const char* where = "lcm_timesteps";
    detail::require(num_train_timesteps >= 1, where, "num_train_timesteps", num_train_timesteps, ">= 1");
    detail::require(original_inference_steps >= 1 && original_inference_steps <= num_train_timesteps, where,
                    "original_inference_steps", original_inference_steps, "[1, num_train_timesteps]");
    detail::require(strength > 0 && strength <= 1, where, "strength", strength, "(0, 1]");
    const auto k = static_cast<std::int64_t>(num_train_timesteps / original_inference_steps);
    const auto L = static_cast<std::size_t>(double(original_inference_steps) * strength);
    detail::require(num_inference_steps >= 1 && num_inference_steps <= L && num_inference_steps <= original_inference_steps,
                    where, "num_inference_steps", num_inference_steps,
                    "[1, int(original_inference_steps * strength) = " + std::to_string(L) + "]");
    std::vector<std::int64_t> out(num_inference_steps);
    const double step = double(L) / double(num_inference_steps);
    for (std::size_t i = 0; i < num_inference_steps; ++i) {
        const auto idx = static_cast<std::size_t>(std::floor(double(i) * step));  // into the reversed list
        out[i] = (static_cast<std::int64_t>(L - idx)) * k - 1;
    }
    return out;
}

// LCM's boundary-condition scalings at timestep t (diffusers' get_scalings_for_boundary_condition_discrete).
[[nodiscard]] inline consistency_scaling lcm_scalings(double timestep, double timestep_scaling = 10.0,
                                                      double sigma_data = 0.5) {
    const auto c = consistency_scalings(timestep * timestep_scaling, sigma_data, 0.0);
    return {c.c_skip, c.c_out / sigma_data};
}

// Names and defaults of diffusers' LCMScheduler config (clip_sample off; sigma_data fixed at 0.5 there).
struct lcm_options : sample_clipping {
    double timestep_scaling = 10.0;
    double sigma_data = 0.5;
    bool set_alpha_to_one = true;  // ᾱ past the last timestep, as diffusers; the last step returns f, so it never enters
    lcm_options() { clip_sample = false; }
};

// Multistep LCM sampling (Luo et al. 2023, Algorithm 1) on a discrete grid (discrete_grid(lcm_timesteps(...))):
// x enters as the VP state at the first timestep (pure noise z for text-to-image) and leaves as f of the last
// step. A step whose two points are equal holds that sample (mixed-strength batches); a step where every
// sample holds calls no model. The model is asked for x̂₀ at the exact timesteps (evaluation::t_net).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class lcm_stepper : public detail::discrete_stepper<lcm_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::discrete_stepper<lcm_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<lcm_stepper<T, Noise, S>, T, S>;

public:
    lcm_stepper(batch_shape shape, std::span<const double> alphas_cumprod, const time_grid& grid, const lcm_options& opt = {},
                Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, grid, std::forward<Noise>(noise), first_sample, "sample_lcm"), opt_(opt),
          ac_p_(shape.batch), den_(shape.batch * shape.per_sample) {
        const char* where = this->where();
        detail::check_descending_grid(this->grid_, shape.batch, this->num_train_timesteps(), where);
        detail::check_clipping(opt_, where);
        detail::require(opt_.timestep_scaling >= 0 && std::isfinite(opt_.timestep_scaling), where, "timestep_scaling",
                        opt_.timestep_scaling, "[0, inf)");
        detail::require(opt_.sigma_data > 0 && std::isfinite(opt_.sigma_data), where, "sigma_data", opt_.sigma_data,
                        "(0, inf)");
        final_ac_ = opt_.set_alpha_to_one ? 1.0 : this->alpha_cumprod(0, 1.0);
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& ws = this->ws;
        const std::size_t i = this->step_index();
        const bool last = i + 1 == this->steps();
        bool all_hold = true, noisy = false;
        for (std::size_t b = 0; b < x.batch; ++b) {
            const auto t = this->timestep(i, b), p = this->timestep(i + 1, b);
            ws.set_state(b, double(t), this->alpha_cumprod(t, final_ac_));
            ac_p_[b] = this->alpha_cumprod(p, final_ac_);
            const bool hold = p == t;
            all_hold = all_hold && hold;
            const auto c = lcm_scalings(double(t), opt_.timestep_scaling, opt_.sigma_data);
            ws.c0[b] = hold ? 1.0 : c.c_skip;  // f = c_skip·x + c_out·x̂₀ (a held row: f = x)
            ws.c1[b] = hold ? 0.0 : c.c_out;
            ws.c2[b] = hold || last ? 1.0 : std::sqrt(ac_p_[b]);        // x ← √ᾱ_{t'}·f + √(1 − ᾱ_{t'})·z
            ws.c3[b] = hold || last ? 0.0 : std::sqrt(1.0 - ac_p_[b]);  // (the last step returns f)
            noisy = noisy || ws.c3[b] != 0.0;
        }
        if (all_hold) {  // every sample holds: nothing to evaluate, nothing to report
            this->skip_report();
            co_return;
        }
        const tensor_view<T, S> x0 = this->view_of(ws.x0), z = this->view_of(ws.noise), den = this->view_of(den_);
        this->answered_ = prediction::sample;
        co_await this->ask(detail::discrete_request::as_stated, x, ws.alpha, ws.sigma, x0);
        detail::process_x0(x0, opt_, ws.q, ws.scratch);
        lincomb(den, per_sample(ws.c0), x, per_sample(ws.c1), x0);
        if (noisy) {
            this->noise(z, i);
            lincomb(x, per_sample(ws.c2), den, per_sample(ws.c3), z);
        } else {
            lincomb(x, per_sample(ws.c2), den);
        }
        this->report(ws.t, den);
    }

    lcm_options opt_;
    double final_ac_ = 1.0;
    std::vector<double> ac_p_;
    space_buffer<T, S> den_;  // f, the consistency function's value (the observer's denoised)
};

// The one-call form. first_sample: the id of sample 0 within the whole job (the model's model_cond::first_sample).
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_lcm(Model& m, X&& x, std::span<const double> alphas_cumprod, const time_grid& grid, const lcm_options& opt = {},
                Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    lcm_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, grid, opt, noise, first_sample);
    run(s, m, std::forward<X>(x), obs);
}

// ---------------------------------------------------------------------------------------------------------
// Consistency models (EDM-style σ-space)

// CMStochasticIterativeScheduler.set_timesteps: timesteps ⌊i·⌊T/n⌋⌉, i < n, descending.
[[nodiscard]] inline std::vector<std::int64_t> consistency_timesteps(std::size_t num_inference_steps,
                                                                     std::size_t num_train_timesteps = 40) {
    detail::require(num_inference_steps >= 1 && num_inference_steps <= num_train_timesteps, "consistency_timesteps",
                    "num_inference_steps", num_inference_steps, "[1, num_train_timesteps]");
    const auto r = static_cast<std::int64_t>(num_train_timesteps / num_inference_steps);
    std::vector<std::int64_t> t(num_inference_steps);
    for (std::size_t i = 0; i < num_inference_steps; ++i) t[i] = static_cast<std::int64_t>(num_inference_steps - 1 - i) * r;
    return t;
}

// The σ grid of the timesteps (descending, < T): reversed, timestep v ↦ the Karras boundary at ramp v/(T − 1)
// counted from σ_max (consistency_boundaries index T − 1 − v), then σ_min appended. N + 1 points.
[[nodiscard]] inline std::vector<double> consistency_sigmas(std::span<const std::int64_t> timesteps,
                                                            std::size_t num_train_timesteps = 40, double sigma_min = 0.002,
                                                            double sigma_max = 80.0, double rho = 7.0) {
    constexpr const char* where = "consistency_sigmas";
    detail::require(!timesteps.empty(), where, "timesteps.size()", timesteps.size(), ">= 1");
    const auto bounds = consistency_boundaries(num_train_timesteps, sigma_min, sigma_max, rho);
    for (std::size_t i = 0; i < timesteps.size(); ++i) {
        detail::require(timesteps[i] >= 0 && std::size_t(timesteps[i]) < num_train_timesteps, where, "timestep",
                        timesteps[i], "[0, num_train_timesteps - 1]");
        if (i > 0)
            detail::require(timesteps[i] < timesteps[i - 1], where, "timestep", timesteps[i],
                            "below the previous one (strictly descending)");
    }
    std::vector<double> s;
    for (std::size_t i = timesteps.size(); i-- > 0;) s.push_back(bounds[num_train_timesteps - 1 - std::size_t(timesteps[i])]);
    s.push_back(sigma_min);
    return s;
}

// f(x, σ) = c_skip·x + c_out·F(c_in·x, c_noise) around a raw consistency network F (called with the network time
// c_noise = 250·log(σ + 1e-44)). A network reading σ: use it as model(…, prediction::sample, sigma_time{}).
template <class Net>
struct consistency_network {
    Net net;
    double sigma_data = 0.5;
    double sigma_min = 0.002;
    std::vector<double> t_, cin_, cskip_, cout_;
    std::vector<float> in_f_;
    std::vector<double> in_d_;

    template <class T>
    void operator()(tensor_view<const T> x, const model_cond& c, tensor_view<T> out) {
        const std::size_t B = x.batch;
        t_.resize(B), cin_.resize(B), cskip_.resize(B), cout_.resize(B);
        for (std::size_t b = 0; b < B; ++b) {
            const double s = c.t[b];
            const auto k = consistency_scalings(s, sigma_data, sigma_min);  // Song et al. 2023, appendix C
            cskip_[b] = k.c_skip;
            cout_[b] = k.c_out;
            cin_[b] = 1.0 / std::sqrt(s * s + sigma_data * sigma_data);
            t_[b] = 1000.0 * 0.25 * std::log(s + 1e-44);
        }
        auto& in = [&]() -> std::vector<T>& {
            if constexpr (std::is_same_v<T, float>) return in_f_;
            else return in_d_;
        }();
        in.resize(x.size());
        const tensor_view<T> u{in.data(), B, x.per_sample};
        lincomb(u, per_sample(cin_), x);
        net(tensor_view<const T>(u), model_cond{t_, c.unconditional, c.first_sample}, out);
        lincomb(out, per_sample(cskip_), x, per_sample(cout_), out);
    }
};

template <class Net>
[[nodiscard]] auto consistency_model(Net net, double sigma_data = 0.5, double sigma_min = 0.002) {
    detail::require(sigma_data > 0 && std::isfinite(sigma_data), "consistency_model", "sigma_data", sigma_data, "(0, inf)");
    detail::require(sigma_min >= 0 && std::isfinite(sigma_min), "consistency_model", "sigma_min", sigma_min, "[0, inf)");
    return model(consistency_network<Net>{std::move(net), sigma_data, sigma_min, {}, {}, {}, {}, {}, {}},
                 prediction::sample, sigma_time{});
}

// Names and defaults of CMStochasticIterativeScheduler's config.
struct consistency_options {
    double sigma_min = 0.002;  // the paper's ε: re-noise to √(τ̂² − ε²)
    double sigma_max = 80.0;   // τ̂ = clamp(τ_{i+1}, σ_min, σ_max)
    double s_noise = 1.0;
    bool clip_denoised = true;  // clamp f to [−1, 1]
};

// Multistep consistency sampling (Song et al. 2023, Algorithm 1) as a σ-space stepper: step i evaluates
// f(x, τ_i) (the model's x₀) and re-noises it to τ̂_{i+1} with draw i. x enters as τ_0·z.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class consistency_stepper : public detail::sigma_stepper<consistency_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<consistency_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<consistency_stepper<T, Noise, S>, T, S>;

public:
    consistency_stepper(batch_shape shape, const time_grid& grid, const consistency_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_consistency"), opt_(opt) {
        const char* where = this->where();
        detail::require(opt_.sigma_min >= 0 && std::isfinite(opt_.sigma_min), where, "sigma_min", opt_.sigma_min, "[0, inf)");
        detail::require(opt_.sigma_max >= opt_.sigma_min && std::isfinite(opt_.sigma_max), where, "sigma_max",
                        opt_.sigma_max, "[sigma_min, inf)");
        detail::require(opt_.s_noise >= 0 && std::isfinite(opt_.s_noise), where, "s_noise", opt_.s_noise, "[0, inf)");
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto den = den_.v();
        this->load_step();
        co_await this->denoise(x, st.s, den);  // f(x, τ_i)
        if (opt_.clip_denoised) clamp(den, den, -1.0, 1.0);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double hat = std::clamp(st.s_next[b], opt_.sigma_min, opt_.sigma_max);
            st.c4[b] = opt_.s_noise * std::sqrt(std::max(0.0, hat * hat - opt_.sigma_min * opt_.sigma_min));
        }
        detail::copy_values(x, den);
        std::uint64_t draw = this->step_index();  // step i uses draw i
        detail::add_noise(this->noise, x, eps_.v(), draw, st.s, st.s_next, st.c4);  // x ← f + √(τ̂² − ε²)·s_noise·z
        this->report(st.s, den);
    }

    consistency_options opt_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), eps_ = this->st.make_buffer();
};

// The one-call form.
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_consistency(Model& m, X&& x, const time_grid& grid, const consistency_options& opt = {}, Noise&& noise = {},
                        Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    consistency_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
