#pragma once
// DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models") as diffusers' DDIMScheduler runs it,
// and DDIM inversion (the deterministic η = 0 update run from clean to noisy, diffusers' DDIMInverseScheduler).
//
// Step t → p (eq. 12, with σ_t(η) of eq. 16):
//   σ_t  = η·√((1−ᾱ_p)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_p))
//   x_p  = √ᾱ_p·x̂₀ + √(1 − ᾱ_p − σ_t²)·ε̂ + σ_t·z
// x̂₀ may be clipped or thresholded; ε̂ stays the model's unless use_clipped_model_output recomputes it from
// the clipped x̂₀. Past the last timestep ᾱ_p = 1 (set_alpha_to_one) or ᾱ_0. Noise draw i is step i's (η > 0).
//
// Parity option: diffusers takes p = t − T//N whatever the spacing (an open upstream issue: wrong for
// "linspace" and "trailing" spacings, whose strides are not T//N). prev_timestep = fixed_stride reproduces
// it; the default, next_in_list, steps to the grid's next point.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse {

struct ddim_options : sample_clipping {
    double eta = 0.0;
    bool use_clipped_model_output = false;
    bool set_alpha_to_one = true;
    prev_timestep_rule prev_timestep = prev_timestep_rule::next_in_list;
    std::size_t num_inference_steps = 0;  // N of the fixed_stride rule; 0 = the grid's number of steps
};

namespace detail {
// One DDIM update x ← √ᾱ_p·x̂₀ + √(1 − ᾱ_p − σ²)·ε̂ + σ·z from the predictions in ws (eq. 12, σ of eq. 16).
// Samples with hold[b] keep x exactly.
template <class T, class Noise>
void ddim_update(tensor_view<T> x, discrete_workspace<T>& ws, std::span<const double> ac_p,
                 std::span<const std::uint8_t> hold, double eta, Noise& noise, std::uint64_t draw) {
    bool any_hold = false;
    for (std::size_t b = 0; b < x.batch; ++b) {
        const double ac_t = ws.ac[b];
        const double var = (1.0 - ac_p[b]) / (1.0 - ac_t) * (1.0 - ac_t / ac_p[b]);
        const double std_t = eta > 0 ? eta * std::sqrt(var) : 0.0;
        const bool h = !hold.empty() && hold[b];
        any_hold = any_hold || h;
        ws.c0[b] = h ? 0.0 : std::sqrt(ac_p[b]);
        ws.c1[b] = h ? 0.0 : std::sqrt(1.0 - ac_p[b] - std_t * std_t);
        ws.c2[b] = h ? 0.0 : std_t;
        ws.c3[b] = h ? 1.0 : 0.0;
    }
    const tensor_view<T> x0{ws.x0.data(), x.batch, x.per_sample}, eps{ws.eps.data(), x.batch, x.per_sample};
    const tensor_view<T> z{ws.noise.data(), x.batch, x.per_sample};
    if (eta > 0) noise(z, draw);
    const auto c0 = per_sample(ws.c0), c1 = per_sample(ws.c1), c2 = per_sample(ws.c2), c3 = per_sample(ws.c3);
    if (eta > 0 && any_hold) lincomb(x, c0, x0, c1, eps, c2, z, c3, x);
    else if (eta > 0) lincomb(x, c0, x0, c1, eps, c2, z);
    else if (any_hold) lincomb(x, c0, x0, c1, eps, c3, x);
    else lincomb(x, c0, x0, c1, eps);
}
}  // namespace detail

// x: the initial noise (VP scale) on entry, the sample on return. grid: discrete_grid(timesteps).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_ddim(Model& m, X&& x_in, std::span<const double> alphas_cumprod, const time_grid& grid,
                 const ddim_options& opt = {}, Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    constexpr const char* where = "sample_ddim";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    const std::size_t B = x.batch, T_train = alphas_cumprod.size();
    grid.check_batch(B, where);
    detail::check_clipping(opt, where);
    detail::require(opt.eta >= 0 && std::isfinite(opt.eta), where, "eta", opt.eta, "[0, inf)");
    const std::size_t N = opt.num_inference_steps ? opt.num_inference_steps : grid.steps();
    detail::require(N <= T_train, where, "num_inference_steps", N, "<= num_train_timesteps");
    const auto stride = static_cast<std::int64_t>(T_train / N);
    detail::discrete_workspace<T> ws(B, x.size());
    std::vector<double> ac_p(B);
    std::vector<std::uint8_t> hold(B);
    const double final_ac = opt.set_alpha_to_one ? 1.0 : alphas_cumprod[0];

    for (std::size_t i = 0; i < grid.steps(); ++i) {
        bool all_hold = true;
        for (std::size_t b = 0; b < B; ++b) {
            const auto t = detail::grid_timestep(grid, i, b, T_train, false, where);
            auto p = detail::grid_timestep(grid, i + 1, b, T_train, true, where);
            hold[b] = p == t;
            all_hold = all_hold && hold[b];
            if (opt.prev_timestep == prev_timestep_rule::fixed_stride && !hold[b]) p = t - stride;  // diffusers' rule
            const double ac_t = alphas_cumprod[std::size_t(t)];
            ac_p[b] = p >= 0 ? alphas_cumprod[std::size_t(p)] : final_ac;
            ws.set_state(b, double(t), ac_t);
            if (hold[b]) ac_p[b] = ac_t;
        }
        if (all_hold) continue;
        detail::predict_x0_eps(m, x, ws, first_sample);
        const tensor_view<T> x0{ws.x0.data(), B, x.per_sample};
        detail::process_x0(x0, opt, ws.q, ws.scratch);
        if (opt.use_clipped_model_output) detail::eps_from_x0(x, ws);
        detail::ddim_update(x, ws, ac_p, hold, opt.eta, noise, i);  // held rows keep x exactly
        if (detail::notify(obs, step_info<T>{i, grid.steps(), ws.t, tensor_view<const T>(x), tensor_view<const T>(x0)}))
            return;
    }
}

// DDIM inversion: the η = 0 update from clean towards noisy along an ascending grid
// (x_{t'} = √ᾱ_{t'}·x̂₀ + √(1−ᾱ_{t'})·ε̂, Song et al. 2021, eq. 13 read forwards; Mokady et al. 2023).
// model_at_target = true evaluates the model at the step's target timestep with the current state, as
// diffusers' DDIMInverseScheduler pipelines do; the default evaluates it where the state is.
// A first grid point of −1 stands for the clean data (ᾱ = 1, or ᾱ_0 without set_alpha_to_one) and needs
// model_at_target.
struct ddim_inverse_options {
    bool clip_sample = false;
    double clip_sample_range = 1.0;
    bool set_alpha_to_one = true;
    bool model_at_target = false;
};

template <class Model, tensor X, class Obs = no_observer>
void sample_ddim_inverse(Model& m, X&& x_in, std::span<const double> alphas_cumprod, const time_grid& grid,
                         const ddim_inverse_options& opt = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    constexpr const char* where = "sample_ddim_inverse";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    const std::size_t B = x.batch, T_train = alphas_cumprod.size();
    grid.check_batch(B, where);
    sample_clipping clip;
    clip.clip_sample = opt.clip_sample;
    clip.clip_sample_range = opt.clip_sample_range;
    detail::check_clipping(clip, where);
    detail::discrete_workspace<T> ws(B, x.size());
    std::vector<double> ac_next(B), t_eval(B);
    const double initial_ac = opt.set_alpha_to_one ? 1.0 : alphas_cumprod[0];
    no_noise none;

    for (std::size_t i = 0; i < grid.steps(); ++i) {
        for (std::size_t b = 0; b < B; ++b) {
            const auto t = detail::grid_timestep(grid, i, b, T_train, opt.model_at_target && i == 0, where);
            const auto n = detail::grid_timestep(grid, i + 1, b, T_train, false, where);
            detail::require(n >= t, where, "time_grid point", double(n), "ascending (DDIM inversion runs clean to noisy)");
            const double ac_t = t >= 0 ? alphas_cumprod[std::size_t(t)] : initial_ac;
            ac_next[b] = alphas_cumprod[std::size_t(n)];
            ws.set_state(b, double(opt.model_at_target ? n : t), ac_t);
            t_eval[b] = ws.t[b];
            detail::require(ws.sigma[b] > 0 || opt.model_at_target, where, "time_grid point", double(t),
                            "a timestep with 1 - alpha_cumprod > 0");
        }
        if (opt.model_at_target) {
            // the network sees the state as if it were at the target timestep (its σ, α), as upstream
            std::vector<double>& a = ws.c0;
            std::vector<double>& s = ws.c1;
            for (std::size_t b = 0; b < B; ++b) {
                const double ac = alphas_cumprod[std::size_t(t_eval[b])];
                a[b] = std::sqrt(ac);
                s[b] = std::sqrt(1.0 - ac);
            }
            // the network's own output, read with the current (α, σ) as the upstream step does
            const prediction native = m.predicts();
            std::span<const double> t_net;
            if constexpr (detail::reads_discrete_time<Model>()) t_net = t_eval;
            const tensor_view<T> raw{ws.noise.data(), B, x.per_sample};
            m.predict(tensor_view<const T>(x), a, s, native, raw, t_net, first_sample);
            for (std::size_t b = 0; b < B; ++b) {
                const auto cx = convert_coefficients(native, prediction::sample, ws.alpha[b], ws.sigma[b]);
                const auto ce = convert_coefficients(native, prediction::epsilon, ws.alpha[b], ws.sigma[b]);
                ws.d0[b] = cx.a;
                ws.d1[b] = cx.b;
                ws.c2[b] = ce.a;
                ws.c3[b] = ce.b;
            }
            lincomb(tensor_view<T>{ws.x0.data(), B, x.per_sample}, per_sample(ws.d0), x, per_sample(ws.d1), raw);
            lincomb(tensor_view<T>{ws.eps.data(), B, x.per_sample}, per_sample(ws.c2), x, per_sample(ws.c3), raw);
        } else {
            detail::predict_x0_eps(m, x, ws, first_sample);
        }
        const tensor_view<T> x0{ws.x0.data(), B, x.per_sample};
        detail::process_x0(x0, clip, ws.q, ws.scratch);
        detail::ddim_update(x, ws, ac_next, {}, 0.0, none, i);
        if (detail::notify(obs, step_info<T>{i, grid.steps(), t_eval, tensor_view<const T>(x), tensor_view<const T>(x0)}))
            return;
    }
}

}  // namespace diffuse
