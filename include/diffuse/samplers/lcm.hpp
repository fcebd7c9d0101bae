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
//                       i.e. consistency_scalings(τ, σ_d, 0) of train/distillation.hpp with c_out divided by
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
// the training boundaries consistency_boundaries of train/distillation.hpp) ending at σ_min.
// Both samplers take per-sample grids. Noise: step i uses draw i.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"
#include "diffuse/train/distillation.hpp"

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
    bool set_alpha_to_one = true;  // ᾱ past the last timestep (only reached by a held final point)
    lcm_options() { clip_sample = false; }
};

// Multistep LCM sampling (Luo et al. 2023, Algorithm 1) on a discrete grid (discrete_grid(lcm_timesteps(...))):
// x enters as the VP state at the first timestep (pure noise z for text-to-image) and leaves as f of the last
// step. A step whose two points are equal holds that sample (mixed-strength batches).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_lcm(Model& m, X&& x_in, std::span<const double> alphas_cumprod, const time_grid& grid, const lcm_options& opt = {},
                Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    constexpr const char* where = "sample_lcm";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    const std::size_t B = x.batch, T_train = alphas_cumprod.size(), steps = grid.steps();
    grid.check_batch(B, where);
    detail::check_clipping(opt, where);
    detail::require(opt.timestep_scaling >= 0 && std::isfinite(opt.timestep_scaling), where, "timestep_scaling",
                    opt.timestep_scaling, "[0, inf)");
    detail::require(opt.sigma_data > 0 && std::isfinite(opt.sigma_data), where, "sigma_data", opt.sigma_data, "(0, inf)");
    detail::discrete_workspace<T> ws(B, x.size());
    std::vector<T> den_buf(x.size());
    const tensor_view<T> x0{ws.x0.data(), B, x.per_sample}, z{ws.noise.data(), B, x.per_sample},
        den{den_buf.data(), B, x.per_sample};
    std::vector<double> ac_p(B);
    const double final_ac = opt.set_alpha_to_one ? 1.0 : alphas_cumprod[0];

    for (std::size_t i = 0; i < steps; ++i) {
        const bool last = i + 1 == steps;
        bool all_hold = true, noisy = false;
        for (std::size_t b = 0; b < B; ++b) {
            const auto t = detail::grid_timestep(grid, i, b, T_train, false, where);
            const auto p = detail::grid_timestep(grid, i + 1, b, T_train, true, where);
            ws.set_state(b, double(t), alphas_cumprod[std::size_t(t)]);
            ac_p[b] = p >= 0 ? alphas_cumprod[std::size_t(p)] : final_ac;
            const bool hold = p == t;
            all_hold = all_hold && hold;
            const auto c = lcm_scalings(double(t), opt.timestep_scaling, opt.sigma_data);
            ws.c0[b] = hold ? 1.0 : c.c_skip;  // f = c_skip·x + c_out·x̂₀ (a held row: f = x)
            ws.c1[b] = hold ? 0.0 : c.c_out;
            ws.c2[b] = hold || last ? 1.0 : std::sqrt(ac_p[b]);        // x ← √ᾱ_{t'}·f + √(1 − ᾱ_{t'})·z
            ws.c3[b] = hold || last ? 0.0 : std::sqrt(1.0 - ac_p[b]);  // (the last step returns f)
            noisy = noisy || ws.c3[b] != 0.0;
        }
        if (all_hold) continue;
        try {
            m.predict(tensor_view<const T>(x), ws.alpha, ws.sigma, prediction::sample, x0,
                      detail::net_times<std::remove_cvref_t<Model>>(ws), first_sample);
        } catch (const error& e) {
            detail::fail(where, "step " + std::to_string(i) + " (timestep " + std::to_string(ws.t[0]) +
                                    " for sample 0): " + e.what());
        }
        detail::process_x0(x0, opt, ws.q, ws.scratch);
        lincomb(den, per_sample(ws.c0), x, per_sample(ws.c1), x0);
        if (noisy) {
            noise(z, i);
            lincomb(x, per_sample(ws.c2), den, per_sample(ws.c3), z);
        } else {
            lincomb(x, per_sample(ws.c2), den);
        }
        if (detail::notify(obs, step_info<T>{i, steps, ws.t, tensor_view<const T>(x), tensor_view<const T>(den)})) return;
    }
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

// Multistep consistency sampling (Song et al. 2023, Algorithm 1). x enters as τ_0·z.
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_consistency(Model& m, X&& x_in, const time_grid& grid, const consistency_options& opt = {}, Noise&& noise = {},
                        Obs&& obs = {}) {
    constexpr const char* where = "sample_consistency";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::require(opt.sigma_min >= 0 && std::isfinite(opt.sigma_min), where, "sigma_min", opt.sigma_min, "[0, inf)");
    detail::require(opt.sigma_max >= opt.sigma_min && std::isfinite(opt.sigma_max), where, "sigma_max", opt.sigma_max,
                    "[sigma_min, inf)");
    detail::require(opt.s_noise >= 0 && std::isfinite(opt.s_noise), where, "s_noise", opt.s_noise, "[0, inf)");
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), eps = st.make_buffer();
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den.v(), i, where);  // f(x, τ_i)
        if (opt.clip_denoised) clamp(den.v(), den.v(), -1.0, 1.0);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double hat = std::clamp(st.s_next[b], opt.sigma_min, opt.sigma_max);
            st.c4[b] = opt.s_noise * std::sqrt(std::max(0.0, hat * hat - opt.sigma_min * opt.sigma_min));
        }
        std::copy(den.data.begin(), den.data.end(), x.data);
        std::uint64_t draw = i;  // step i uses draw i
        detail::add_noise(noise, x, eps.v(), draw, st.s, st.s_next, st.c4);  // x ← f + √(τ̂² − ε²)·s_noise·z
        if (detail::observe(obs, i, st.steps, st.s, x, den.v())) return;
    }
}

}  // namespace diffuse
