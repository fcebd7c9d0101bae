#pragma once
// Euler, Euler ancestral, Heun, DPM2 and DPM2 ancestral: the σ-space samplers of Karras et al. 2022
// ("Elucidating the Design Space of Diffusion-Based Generative Models", Algorithm 2) and of k-diffusion.
//
// The state is x = x₀ + σ·ε; the probability-flow ODE is dx/dσ = d(x, σ) = (x − D(x; σ))/σ
// (Karras et al. eq. 4 with s = 1, σ(t) = t). The grid holds σ_0 > … > σ_N (σ_N = 0 usually); x enters
// as σ_0·z (already scaled) and leaves as the sample.
//
//   sample_euler            Euler steps with optional "churn" (Algorithm 2, lines 4–8)
//   sample_heun             Heun's 2nd-order steps with churn (Algorithm 2 in full); Euler into σ = 0
//   sample_dpm_2            DPM-Solver-2 midpoint steps in log σ (Lu et al. 2022, Algorithm 1 with r = 1/2
//                           written in σ-space) with churn; Euler into σ = 0
//   sample_euler_ancestral  Euler step to σ_down, then fresh noise σ_up (ancestral_step)
//   sample_dpm_2_ancestral  DPM-Solver-2 step to σ_down, then fresh noise σ_up
//
// Differences between the references (see docs/samplers.md):
//   - k-diffusion draws the churn noise at every step; diffusers only when γ > 0. churn_options::
//     noise_every_step chooses (it only changes the draw numbering, i.e. which recorded tensor is used).
//   - Ancestral samplers add no noise into σ = 0 and cap σ_up at σ_next (k-diffusion; diffusers' Euler
//     ancestral computes the same σ_up, which is then ≤ σ_next anyway for η ≤ 1).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"

namespace diffuse {

// Stochastic "churn" of Karras et al. 2022, Algorithm 2: at σ_i ∈ [s_tmin, s_tmax] raise the noise level to
// σ̂ = σ_i(1 + γ), γ = min(s_churn/N, √2 − 1), by adding N(0, s_noise²(σ̂² − σ_i²)) noise.
struct churn_options {
    double s_churn = 0.0;
    double s_tmin = 0.0;
    double s_tmax = std::numeric_limits<double>::infinity();
    double s_noise = 1.0;
    bool noise_every_step = false;  // true: draw the churn noise at every step even when γ = 0 (k-diffusion)
};

// Ancestral samplers: η scales σ_up (η = 0 is the deterministic sampler), s_noise scales the fresh noise.
struct ancestral_options {
    double eta = 1.0;
    double s_noise = 1.0;
};

namespace detail {

inline void check_churn(const churn_options& o, const char* where) {
    require(o.s_churn >= 0 && std::isfinite(o.s_churn), where, "s_churn", o.s_churn, "[0, inf)");
    require(o.s_tmin <= o.s_tmax && !std::isnan(o.s_tmin), where, "s_tmin", o.s_tmin, "[-inf, s_tmax]");
    require(o.s_noise >= 0 && std::isfinite(o.s_noise), where, "s_noise", o.s_noise, "[0, inf)");
}
inline void check_ancestral(const ancestral_options& o, const char* where) {
    require(o.eta >= 0 && std::isfinite(o.eta), where, "eta", o.eta, "[0, inf)");
    require(o.s_noise >= 0 && std::isfinite(o.s_noise), where, "s_noise", o.s_noise, "[0, inf)");
}

// Karras et al. 2022, Algorithm 2 lines 4–6: st.hat = σ̂ = σ_i(1 + γ_i);
// x ← x + √(σ̂² − σ_i²)·s_noise·z. One noise draw (interval σ_i → σ̂) when any γ > 0 or noise_every_step.
template <class T, class Noise, class V>
void churn(sigma_state<T>& st, const churn_options& o, const V& x, const V& eps, Noise& noise, std::uint64_t& draw) {
    const double gamma_max = std::min(o.s_churn / static_cast<double>(st.steps), std::sqrt(2.0) - 1.0);
    bool any = false;
    for (std::size_t b = 0; b < st.batch; ++b) {
        const double s = st.s[b];
        const double gamma = (o.s_tmin <= s && s <= o.s_tmax) ? gamma_max : 0.0;
        st.hat[b] = s * (gamma + 1.0);
        st.c4[b] = gamma > 0 ? o.s_noise * std::sqrt(st.hat[b] * st.hat[b] - s * s) : 0.0;
        any = any || gamma > 0;
    }
    if (!any && !o.noise_every_step) return;
    draw_noise(noise, eps, draw++, st.s, st.hat);
    if (any) lincomb(x, 1.0, x, per_sample(st.c4), eps);
}

// x ← x + d·(σ_to − σ_from) with d = (x − D)/σ_from, i.e. x ← (1 + r)x − r·D, r = (σ_to − σ_from)/σ_from.
// Written per sample into (c0, c1) so that the caller's lincomb does the step.
inline void euler_coefficients(double sigma_from, double sigma_to, double& cx, double& cd) {
    const double r = (sigma_to - sigma_from) / sigma_from;
    cx = 1.0 + r;
    cd = -r;
}

// The midpoint of DPM-Solver-2 in log σ: exp(lerp(log σ_a, log σ_b, 1/2)) (Lu et al. 2022, r₁ = 1/2).
inline double log_midpoint(double sigma_a, double sigma_b) {
    const double la = std::log(sigma_a), lb = std::log(sigma_b);
    return std::exp(la + 0.5 * (lb - la));
}

}  // namespace detail

namespace detail {
// One DPM-Solver-2 step in σ-space from σ_from to σ_to with midpoint st.tmp (Euler where σ_to = 0):
//   x' = x + (σ_mid − σ_from)·(x − D)/σ_from;  x ← x + (σ_to − σ_from)·(x' − D(x'; σ_mid))/σ_mid.
template <class Model, class T>
void dpm2_step(Model& m, sigma_state<T>& st, const tensor_view<T>& x, const tensor_view<T>& den, const tensor_view<T>& x2,
               const tensor_view<T>& den2, std::span<const double> from, std::span<const double> to, std::size_t step,
               const char* where) {
    bool second = false;
    for (std::size_t b = 0; b < st.batch; ++b) second = second || to[b] > 0;
    if (!second) {
        for (std::size_t b = 0; b < st.batch; ++b) euler_coefficients(from[b], to[b], st.c0[b], st.c1[b]);
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den);
        return;
    }
    for (std::size_t b = 0; b < st.batch; ++b) euler_coefficients(from[b], st.tmp[b], st.c0[b], st.c1[b]);
    lincomb(x2, per_sample(st.c0), x, per_sample(st.c1), den);
    denoise(m, x2, st.ones, st.tmp, den2, step, where);
    for (std::size_t b = 0; b < st.batch; ++b) {
        if (to[b] > 0) {
            const double r = (to[b] - from[b]) / st.tmp[b];
            st.c0[b] = 1.0;
            st.c1[b] = 0.0;
            st.c2[b] = r;
            st.c3[b] = -r;
        } else {
            euler_coefficients(from[b], to[b], st.c0[b], st.c1[b]);
            st.c2[b] = st.c3[b] = 0.0;
        }
    }
    lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den, per_sample(st.c2), x2, per_sample(st.c3), den2);
}
}  // namespace detail

// Euler (Karras et al. 2022, Algorithm 2 with the Euler step only):
//   σ̂ = σ_i(1+γ_i), x̂ = x + √(σ̂²−σ_i²)·z;  d = (x̂ − D(x̂; σ̂))/σ̂;  x_{i+1} = x̂ + (σ_{i+1} − σ̂)·d.
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_euler(Model& m, X&& x_in, const time_grid& grid, const churn_options& opt = {}, Noise&& noise = {},
                  Obs&& obs = {}) {
    constexpr const char* where = "sample_euler";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_churn(opt, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), eps = st.make_buffer();
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::churn(st, opt, x, eps.v, noise, draw);
        detail::denoise(m, x, st.ones, st.hat, den.v, i, where);
        for (std::size_t b = 0; b < st.batch; ++b) detail::euler_coefficients(st.hat[b], st.s_next[b], st.c0[b], st.c1[b]);
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v);  // Euler step (Algorithm 2, line 8)
        if (detail::observe(obs, i, st.steps, st.s, x, den.v)) return;
    }
}

// Heun (Karras et al. 2022, Algorithm 2): after the Euler predictor x' = x̂ + (σ_{i+1} − σ̂)d, the
// trapezoidal corrector x_{i+1} = x̂ + (σ_{i+1} − σ̂)·(d + d')/2 with d' = (x' − D(x'; σ_{i+1}))/σ_{i+1}
// (lines 9–11); into σ_{i+1} = 0 the Euler step alone. In a per-sample grid, samples whose σ_{i+1} = 0 sit
// out the second evaluation (their row is evaluated at σ̂ and ignored).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_heun(Model& m, X&& x_in, const time_grid& grid, const churn_options& opt = {}, Noise&& noise = {},
                 Obs&& obs = {}) {
    constexpr const char* where = "sample_heun";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_churn(opt, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), eps = st.make_buffer(), x2 = st.make_buffer(), den2 = st.make_buffer();
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::churn(st, opt, x, eps.v, noise, draw);
        detail::denoise(m, x, st.ones, st.hat, den.v, i, where);
        bool second = false;
        for (std::size_t b = 0; b < st.batch; ++b) {
            detail::euler_coefficients(st.hat[b], st.s_next[b], st.c0[b], st.c1[b]);
            second = second || st.s_next[b] > 0;
        }
        if (!second) {
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v);
        } else {
            lincomb(x2.v, per_sample(st.c0), x, per_sample(st.c1), den.v);  // Euler predictor (line 8)
            for (std::size_t b = 0; b < st.batch; ++b) st.tmp[b] = st.s_next[b] > 0 ? st.s_next[b] : st.hat[b];
            detail::denoise(m, x2.v, st.ones, st.tmp, den2.v, i, where);
            // x + dt/2·(x − D)/σ̂ + dt/2·(x' − D')/σ_{i+1}   (line 11)
            for (std::size_t b = 0; b < st.batch; ++b) {
                const double dt = st.s_next[b] - st.hat[b];
                if (st.s_next[b] > 0) {
                    const double a = 0.5 * dt / st.hat[b], c = 0.5 * dt / st.s_next[b];
                    st.c0[b] = 1.0 + a;
                    st.c1[b] = -a;
                    st.c2[b] = c;
                    st.c3[b] = -c;
                } else {
                    st.c2[b] = st.c3[b] = 0.0;  // Euler (c0, c1 already set)
                }
            }
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v, per_sample(st.c2), x2.v, per_sample(st.c3), den2.v);
        }
        if (detail::observe(obs, i, st.steps, st.s, x, den.v)) return;
    }
}

// DPM2 (k-diffusion's sample_dpm_2; DPM-Solver-2 of Lu et al. 2022 applied to the σ-space ODE, with the
// churn of Karras et al. Algorithm 2): σ_mid = √(σ̂·σ_{i+1}) (midpoint in log σ),
// x' = x̂ + (σ_mid − σ̂)d, x_{i+1} = x̂ + (σ_{i+1} − σ̂)·d(x', σ_mid). Euler into σ = 0.
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpm_2(Model& m, X&& x_in, const time_grid& grid, const churn_options& opt = {}, Noise&& noise = {},
                  Obs&& obs = {}) {
    constexpr const char* where = "sample_dpm_2";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_churn(opt, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), eps = st.make_buffer(), x2 = st.make_buffer(), den2 = st.make_buffer();
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::churn(st, opt, x, eps.v, noise, draw);
        detail::denoise(m, x, st.ones, st.hat, den.v, i, where);
        for (std::size_t b = 0; b < st.batch; ++b)
            st.tmp[b] = st.s_next[b] > 0 ? detail::log_midpoint(st.hat[b], st.s_next[b]) : st.hat[b];
        detail::dpm2_step(m, st, x, den.v, x2.v, den2.v, st.hat, st.s_next, i, where);
        if (detail::observe(obs, i, st.steps, st.s, x, den.v)) return;
    }
}


// Euler ancestral (k-diffusion's sample_euler_ancestral; diffusers' EulerAncestralDiscreteScheduler):
//   (σ_down, σ_up) = ancestral_step(σ_i, σ_{i+1}, η);  x ← x + (σ_down − σ_i)·d;  x ← x + s_noise·σ_up·z
//   (no noise into σ_{i+1} = 0).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_euler_ancestral(Model& m, X&& x_in, const time_grid& grid, const ancestral_options& opt = {},
                            Noise&& noise = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_euler_ancestral";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_ancestral(opt, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), eps = st.make_buffer();
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den.v, i, where);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const auto a = ancestral_step(st.s[b], st.s_next[b], opt.eta);
            detail::euler_coefficients(st.s[b], a.down, st.c0[b], st.c1[b]);
            st.c4[b] = st.s_next[b] > 0 ? opt.s_noise * a.up : 0.0;
        }
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v);
        detail::add_noise(noise, x, eps.v, draw, st.s, st.s_next, st.c4);
        if (detail::observe(obs, i, st.steps, st.s, x, den.v)) return;
    }
}

// DPM2 ancestral (k-diffusion's sample_dpm_2_ancestral): the DPM-Solver-2 step of sample_dpm_2 from σ_i to
// σ_down, then s_noise·σ_up·z (where σ_down > 0).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpm_2_ancestral(Model& m, X&& x_in, const time_grid& grid, const ancestral_options& opt = {},
                            Noise&& noise = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_dpm_2_ancestral";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_ancestral(opt, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    auto den = st.make_buffer(), eps = st.make_buffer(), x2 = st.make_buffer(), den2 = st.make_buffer();
    std::vector<double> down(x.batch), noise_coef(x.batch);
    std::uint64_t draw = 0;
    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        detail::denoise(m, x, st.ones, st.s, den.v, i, where);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const auto a = ancestral_step(st.s[b], st.s_next[b], opt.eta);
            down[b] = a.down;
            noise_coef[b] = a.down > 0 ? opt.s_noise * a.up : 0.0;
            st.tmp[b] = a.down > 0 ? detail::log_midpoint(st.s[b], a.down) : st.s[b];
        }
        detail::dpm2_step(m, st, x, den.v, x2.v, den2.v, st.s, down, i, where);
        detail::add_noise(noise, x, eps.v, draw, st.s, st.s_next, noise_coef);
        if (detail::observe(obs, i, st.steps, st.s, x, den.v)) return;
    }
}

}  // namespace diffuse
