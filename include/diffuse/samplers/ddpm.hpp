#pragma once
// DDPM ancestral sampling (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Algorithm 2), on any
// subsequence of the training timesteps as diffusers' DDPMScheduler runs it, with the variance choices of
// Ho et al. (σ² = β̃ "fixed_small" or β "fixed_large") and Nichol & Dhariwal 2021 ("learned_range").
//
// Step t → p (p the next grid point; ᾱ_p = 1 past the end), with β'_t = 1 − ᾱ_t/ᾱ_p:
//   x̂₀  from the model, then clipped or dynamically thresholded
//   μ̃   = √ᾱ_p·β'_t/(1−ᾱ_t)·x̂₀ + √(1−β'_t)·(1−ᾱ_p)/(1−ᾱ_t)·x_t                 (eq. 7)
//   x_p = μ̃ + σ_t·z,  z ~ N(0, I), no noise when t = 0                        (Algorithm 2, line 4)
// with σ_t² = β̃_t = (1−ᾱ_p)/(1−ᾱ_t)·β'_t (clamped at 1e-20), or β'_t, or for learned_range
// exp(f·log β'_t + (1−f)·log β̃_t), f = (v+1)/2 elementwise (Nichol & Dhariwal 2021, eq. 15).
// Noise draw i is the noise of step i.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"

namespace diffuse {

enum class ddpm_variance { fixed_small, fixed_small_log, fixed_large, learned, learned_range };

[[nodiscard]] inline ddpm_variance parse_ddpm_variance(std::string_view name) {
    if (name == "fixed_small") return ddpm_variance::fixed_small;
    if (name == "fixed_small_log") return ddpm_variance::fixed_small_log;
    if (name == "fixed_large") return ddpm_variance::fixed_large;
    if (name == "learned") return ddpm_variance::learned;
    if (name == "learned_range") return ddpm_variance::learned_range;
    detail::require(false, "parse_ddpm_variance", "variance_type", std::string(name),
                    "{fixed_small, fixed_small_log, fixed_large, learned, learned_range}");
    return ddpm_variance::fixed_small;
}

struct ddpm_options : sample_clipping {
    ddpm_variance variance_type = ddpm_variance::fixed_small;
};

// x: the initial noise x_{t_0} (VP scale: N(0, I) for a full run) on entry, the sample on return.
// alphas_cumprod: the training schedule's ᾱ (discrete_schedule::alphas_cumprod); grid: discrete_grid(...).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_ddpm(Model& m, X&& x_in, std::span<const double> alphas_cumprod, const time_grid& grid,
                 const ddpm_options& opt = {}, Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    constexpr const char* where = "sample_ddpm";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    const std::size_t B = x.batch, n = x.size(), T_train = alphas_cumprod.size();
    grid.check_batch(B, where);
    detail::check_clipping(opt, where);
    const bool learned = opt.variance_type == ddpm_variance::learned || opt.variance_type == ddpm_variance::learned_range;
    detail::discrete_workspace<T> ws(B, n);
    std::vector<T> v_out(learned ? n : 0);
    std::vector<double> beta_p(B), var_small(B);
    const tensor_view<T> x0{ws.x0.data(), B, x.per_sample}, z{ws.noise.data(), B, x.per_sample};

    for (std::size_t i = 0; i < grid.steps(); ++i) {
        bool any_noise = false, all_hold = true;
        for (std::size_t b = 0; b < B; ++b) {
            const auto t = detail::grid_timestep(grid, i, b, T_train, false, where);
            const auto p = detail::grid_timestep(grid, i + 1, b, T_train, true, where);
            const bool hold = p == t;
            all_hold = all_hold && hold;
            const double ac_t = alphas_cumprod[std::size_t(t)], ac_p = p >= 0 ? alphas_cumprod[std::size_t(p)] : 1.0;
            ws.set_state(b, double(t), ac_t);
            const double beta_prod_t = 1.0 - ac_t, beta_prod_p = 1.0 - ac_p;
            const double cur_alpha = ac_t / ac_p, cur_beta = 1.0 - cur_alpha;
            // μ̃ coefficients (eq. 7), in diffusers' order of operations
            ws.c0[b] = hold ? 0.0 : std::sqrt(ac_p) * cur_beta / beta_prod_t;
            ws.c1[b] = hold ? 1.0 : std::sqrt(cur_alpha) * beta_prod_p / beta_prod_t;
            beta_p[b] = cur_beta;
            var_small[b] = std::max(beta_prod_p / beta_prod_t * cur_beta, 1e-20);  // β̃_t
            const bool noisy = t > 0 && !hold;
            any_noise = any_noise || noisy;
            switch (opt.variance_type) {
                case ddpm_variance::fixed_small: ws.c2[b] = std::sqrt(var_small[b]); break;
                case ddpm_variance::fixed_small_log: ws.c2[b] = std::exp(0.5 * std::log(var_small[b])); break;
                case ddpm_variance::fixed_large: ws.c2[b] = std::sqrt(cur_beta); break;
                default: ws.c2[b] = 1.0; break;  // elementwise, below
            }
            if (!noisy) ws.c2[b] = 0.0;
        }
        if (all_hold) continue;
        if (learned) {
            if constexpr (requires { m.predict_with_variance(x, ws.alpha, ws.sigma, prediction::sample, x0, x0); }) {
                // the network's second half is v (learned_range) or σ² itself (learned)
                const bool e = detail::native_eps(m);
                m.predict_with_variance(tensor_view<const T>(x), ws.alpha, ws.sigma,
                                        e ? prediction::epsilon : prediction::sample,
                                        tensor_view<T>{e ? ws.eps.data() : ws.x0.data(), B, x.per_sample},
                                        tensor_view<T>{v_out.data(), B, x.per_sample}, detail::net_times<Model>(ws),
                                        first_sample);
                detail::complete_pair(x, ws, e);
            } else {
                detail::fail(where, "variance_type learned/learned_range needs a model with predict_with_variance");
            }
        } else {
            detail::predict_x0_eps(m, x, ws, first_sample);
        }
        detail::process_x0(x0, opt, ws.q, ws.scratch);
        // x_p = μ̃ + σ_t·z
        if (any_noise) noise(z, i);
        if (!learned) {
            if (any_noise) lincomb(x, per_sample(ws.c0), x0, per_sample(ws.c1), x, per_sample(ws.c2), z);
            else lincomb(x, per_sample(ws.c0), x0, per_sample(ws.c1), x);
        } else {
            lincomb(x, per_sample(ws.c0), x0, per_sample(ws.c1), x);
            for (std::size_t b = 0; b < B; ++b) {
                if (ws.c2[b] == 0.0) continue;
                const tensor_view<T> xb{x.sample(b), 1, x.per_sample}, zb{z.sample(b), 1, x.per_sample};
                const tensor_view<const T> vb{v_out.data() + b * x.per_sample, 1, x.per_sample};
                const double lmin = std::log(var_small[b]), lmax = std::log(beta_p[b]);
                if (opt.variance_type == ddpm_variance::learned_range)
                    // σ = exp(½(f·log β' + (1−f)·log β̃)), f = (v+1)/2  (Nichol & Dhariwal 2021, eq. 15)
                    transform(xb, [lmin, lmax](T xv, T v, T zv) {
                        const T f = (v + T(1)) / T(2);
                        return xv + std::exp(T(0.5) * (f * T(lmax) + (T(1) - f) * T(lmin))) * zv;
                    }, xb, vb, zb);
                else
                    transform(xb, [](T xv, T v, T zv) { return xv + std::sqrt(v) * zv; }, xb, vb, zb);
            }
        }
        if (detail::notify(obs, step_info<T>{i, grid.steps(), ws.t, tensor_view<const T>(x), tensor_view<const T>(x0)}))
            return;
    }
}

}  // namespace diffuse
