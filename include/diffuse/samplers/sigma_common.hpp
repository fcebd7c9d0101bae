#pragma once
// Shared pieces of the σ-space samplers (k-diffusion's family: Euler, Heun, DPM2, LMS, DPM-Solver++, …).
//
// A σ-space sampler holds the variance-exploding state x = x₀ + σ·ε (α = 1) and integrates the
// probability-flow ODE of Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based Generative
// Models", eq. 4 with s(t) = 1, σ(t) = t):  dx/dσ = (x − D(x; σ)) / σ,  D = the model's x₀ prediction.
// The time grid holds σ_0 > σ_1 > … > σ_N (usually σ_N = 0), shared or one row per sample.
//
// What is here:
//   ancestral_step(σ_from, σ_to, η)   the (σ_down, σ_up) split of an ancestral step (k-diffusion's rule)
//   detail::sigma_state<T, S>         per-step columns (σ_i, σ_{i+1}), workspaces allocated once
//   detail::sigma_stepper<D, T, N, S> the common part of the σ-space steppers (D(x; σ) as a request)
//   detail::draw_noise(...)           one noise draw, passing the σ interval to sources that use it
//                                     (the Brownian tree of samplers/brownian.hpp)

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/stepper.hpp"

namespace diffuse {

// Ancestral step from σ_from to σ_to (Ho et al. 2020's ancestral sampling written in σ-space): go
// deterministically down to σ_down, then add fresh noise of standard deviation σ_up, with
// σ_down² + σ_up² = σ_to². σ_up = η·√(σ_to²(σ_from² − σ_to²)/σ_from²) (the DDPM posterior standard
// deviation for η = 1; DDIM's σ_t for general η, Song et al. 2021 eq. 16), capped at σ_to.
struct ancestral_sigmas {
    double down;
    double up;
};
[[nodiscard]] inline ancestral_sigmas ancestral_step(double sigma_from, double sigma_to, double eta = 1.0) {
    if (eta == 0.0) return {sigma_to, 0.0};
    const double up = std::min(sigma_to, eta * std::sqrt(sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                                                         (sigma_from * sigma_from)));
    return {std::sqrt(sigma_to * sigma_to - up * up), up};
}

namespace detail {

// Checks a σ grid for a batch: every σ_i (i < N) positive and finite, σ_N >= 0, and non-increasing
// (σ_{i+1} <= σ_i: these samplers integrate from noise towards data).
inline void check_sigma_grid(const time_grid& grid, std::size_t batch, const char* where) {
    grid.check_batch(batch, where);
    const std::size_t rows = grid.shared() ? 1 : batch;
    const auto point = [&](std::size_t i, std::size_t b) {
        return "sigma[" + std::to_string(i) + "]" + (rows > 1 ? " of row " + std::to_string(b) : std::string());
    };
    for (std::size_t b = 0; b < rows; ++b) {
        for (std::size_t i = 0; i < grid.steps(); ++i) {
            if (!(grid(i, b) > 0 && std::isfinite(grid(i, b))))
                require(false, where, point(i, b), grid(i, b), "(0, inf) for every point but the last");
            if (!(grid(i + 1, b) <= grid(i, b)))
                require(false, where, point(i + 1, b), grid(i + 1, b),
                        "<= " + point(i, b) + " = " + std::to_string(grid(i, b)) + " (a σ grid is decreasing, from noise to data)");
        }
        if (!(grid(grid.steps(), b) >= 0 && std::isfinite(grid(grid.steps(), b))))
            require(false, where, point(grid.steps(), b), grid(grid.steps(), b), "[0, inf)");
    }
}

// The per-step state of a σ-space sampler over a batch: the columns σ_i and σ_{i+1} of the grid, a
// column of ones (α = 1), and scratch columns for coefficients. All sized once at entry.
template <class T, memory_space S = memory_space::host>
struct sigma_state {
    std::size_t batch, per_sample, steps;
    std::vector<double> s, s_next, hat, ones, c0, c1, c2, c3, c4, tmp;

    sigma_state(const time_grid& grid, std::size_t b, std::size_t d, const char* where)
        : batch(b), per_sample(d), steps(grid.steps()), s(b), s_next(b), hat(b), ones(b, 1.0), c0(b), c1(b), c2(b), c3(b),
          c4(b), tmp(b) {
        check_sigma_grid(grid, b, where);
    }
    void load(const time_grid& grid, std::size_t i) {
        grid.column(i, s);
        grid.column(i + 1, s_next);
    }
    using buffer = workspace<T, S>;  // a tensor of the batch's shape in the state's space (samplers/stepper.hpp)
    [[nodiscard]] buffer make_buffer() const { return buffer(batch_shape{batch, per_sample}); }
};

// Calls the noise source for draw `draw`. Sources that understand a noise-level interval (a Brownian
// tree: the normalised increment (W(σ_to) − W(σ_from)) / √|σ_to − σ_from|) are given it.
template <class Noise, class V>
void draw_noise(Noise& noise, const V& out, std::uint64_t draw, std::span<const double> sigma_from,
                std::span<const double> sigma_to) {
    if constexpr (requires { noise(out, draw, sigma_from, sigma_to); }) noise(out, draw, sigma_from, sigma_to);
    else noise(out, draw);
}

// The noise term of draw `draw` for lincomb_noise: counter noise fused into the update, any other source
// drawn into `out` first (detail::noise_term of samplers/noise_source.hpp, with the σ interval).
template <class Noise, class V>
auto noise_term(Noise& noise, const V& out, std::uint64_t draw, std::span<const double> sigma_from,
                std::span<const double> sigma_to) {
    if constexpr (std::is_same_v<std::remove_cvref_t<Noise>, counter_noise>) {
        return noise_term(noise, out, draw);
    } else {
        draw_noise(noise, out, draw, sigma_from, sigma_to);
        return out;
    }
}

// x ← c0·x0 + c1·x1 + … + coef[b]·z in one pass (terms: the lincomb arguments after out), with one draw from
// the source for z, unless every coefficient is 0 (then the plain lincomb and no draw). An update and its
// noise written as one lincomb_noise instead of a lincomb followed by add_noise: one pass over x fewer, the
// same result within rounding.
template <class Noise, class V, class... Terms>
void update_with_noise(Noise& noise, const V& x, const V& eps, std::uint64_t& draw, std::span<const double> sigma_from,
                       std::span<const double> sigma_to, std::span<const double> coef, const Terms&... terms) {
    if (std::all_of(coef.begin(), coef.end(), [](double c) { return c == 0.0; })) return lincomb(x, terms...);
    lincomb_noise(x, terms..., per_sample(coef), noise_term(noise, eps, draw++, sigma_from, sigma_to));
}

// Adds coef[b]·noise to sample b of x with one draw from the source, unless every coefficient is 0.
template <class Noise, class V>
void add_noise(Noise& noise, const V& x, const V& eps, std::uint64_t& draw, std::span<const double> sigma_from,
               std::span<const double> sigma_to, std::span<const double> coef) {
    if (std::all_of(coef.begin(), coef.end(), [](double c) { return c == 0.0; })) return;
    lincomb_noise(x, 1.0, x, per_sample(coef), noise_term(noise, eps, draw++, sigma_from, sigma_to));
}

// Observer call after step i; true = stop.
template <class Obs, class T, memory_space S>
bool observe(Obs& obs, std::size_t step, std::size_t steps, std::span<const double> time, tensor_view<T, S> x,
             tensor_view<T, S> denoised) {
    return notify(obs, step_info<T, S>{step, steps, time, tensor_view<const T, S>(x), tensor_view<const T, S>(denoised)});
}

// The common part of the σ-space steppers: the grid, the per-step σ columns, the noise source and its draw
// counter, and D(x; σ) as a request. Derived provides run_step (one step's update equations).
template <class Derived, class T, class Noise, memory_space S = memory_space::host>
class sigma_stepper : public stepper<Derived, T, S> {
public:
    [[nodiscard]] std::size_t steps() const noexcept { return grid_.steps(); }
    [[nodiscard]] const time_grid& grid() const noexcept { return grid_; }

protected:
    sigma_stepper(batch_shape shape, const time_grid& grid, Noise noise, const char* where)
        : stepper<Derived, T, S>(shape.batch, shape.per_sample, where), grid_(grid),
          st(grid_, shape.batch, shape.per_sample, where), noise(std::forward<Noise>(noise)) {}

    // co_await this->denoise(x, σ, out): out = D(x; σ), the model's x₀ prediction at the σ-space state x.
    // With t_net (one per sample), the network's exact timesteps where the sampler knows them.
    std::suspend_always denoise(tensor_view<const T, S> x, std::span<const double> sigma, tensor_view<T, S> out,
                                std::span<const double> t_net = {}) {
        return this->request(evaluation<T, S>{x, st.ones, sigma, prediction::sample, out, t_net, {}, 0, "sigma", sigma});
    }
    // Loads σ_i, σ_{i+1} of the current step into st.s, st.s_next.
    void load_step() { st.load(grid_, this->step_index()); }

    time_grid grid_;
    sigma_state<T, S> st;
    Noise noise;
    std::uint64_t draw = 0;  // noise draws so far: draw k of the run is the k-th call of the source
};

}  // namespace detail
}  // namespace diffuse
