#pragma once
// The probability-flow ODE of a score-based model (Song et al. 2021, eq. 13):
//     dx/dt = f(t)·x − ½ g(t)² ∇log p_t(x)
// on the VP, sub-VP and VE SDEs, integrated from t_0 (usually T) down the time grid by
//   sample_pf_ode_euler   explicit Euler (order 1)
//   sample_pf_ode_heun    Heun's trapezoidal predictor–corrector (order 2)
//   sample_pf_ode_rk45    adaptive Dormand–Prince 5(4) (Dormand & Prince 1980; the integrator of
//                         samplers/dopri5.hpp, shared with metrics/likelihood.hpp) with error control as in
//                         Hairer, Nørsett & Wanner, "Solving ODEs I", §II.4: initial step from §II.4's
//                         algorithm, step factor 0.9·err^(−1/5) bounded to [0.2, 10], RMS error norm
//                         scaled by atol + rtol·max(|y|, |y_new|) — the reference's black-box solver
//                         (scipy's solve_ivp RK45, which score_sde uses with rtol = atol = 1e-5).
// Every step is one lincomb with per-sample coefficients; the model is asked for the score.
//
// Grid: all points must lie in (0, T] (the ODE is evaluated at both ends of a step). RK45 takes adaptive
// steps inside each grid interval and lands on every grid point, where the observer is notified.
// Error norm: `per_sample` controls each sample's step on its own RMS error (results independent of the
// batch split; per-sample grids allowed); `batch` treats the flattened batch as one system, as the
// reference does (one step size for all samples; needs a shared grid).
// `denoise` ends with one noise-free reverse-diffusion step at the final time (the reference's
// noise_removal).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include "diffuse/samplers/dopri5.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/samplers/step_control.hpp"

namespace diffuse {

struct pf_ode_options {
    bool denoise = false;  // one noise-free reverse-diffusion step at the end time
};

// dopri5_options (rtol, atol, norm, first_step, max_step, max_attempts per grid interval) and denoise.
struct rk45_options : dopri5_options {
    bool denoise = false;
};

namespace detail {

template <class Sde>
void ode_check_grid(const Sde& sde, const time_grid& grid, std::size_t batch, const char* where) {
    sde_check_grid(sde, grid, batch, where);
    for (std::size_t b = 0; b < grid.rows(); ++b)
        require(grid(grid.steps(), b) > 0, where, "time_grid end point", grid(grid.steps(), b),
                "(0, T] (the probability-flow ODE is evaluated at the end time)");
}

// out = dx/dt = f(t)x − ½g(t)²s at per-sample times t (written to w.t); uses w.c0, w.c1.
template <class Model, class Sde, class T>
void pf_drift(Model& m, const Sde& sde, tensor_view<const T> y, sde_workspace<T>& w, tensor_view<T> out,
              const char* where, std::size_t step) {
    sde_score(m, sde, tensor_view<T>{const_cast<T*>(y.data), y.batch, y.per_sample}, w, out, where, step);
    for (std::size_t b = 0; b < w.batch; ++b) {
        const double g = sde.diffusion(w.t[b]);
        w.c0[b] = sde.drift_coef(w.t[b]);
        w.c1[b] = -0.5 * g * g;
    }
    lincomb(out, per_sample(w.c0), y, per_sample(w.c1), out);
}

template <class Model, class Sde, class T>
void pf_denoise(Model& m, const Sde& sde, tensor_view<T> x, const time_grid& grid, sde_workspace<T>& w,
                const char* where) {
    grid.column(grid.steps(), w.t);
    pc_options o;
    o.predictor = sde_predictor::reverse_diffusion;
    o.corrector = sde_corrector::none;
    counter_noise unused{};
    std::uint64_t draw = 0;
    (void)where;
    pc_predict(m, sde, x, grid, grid.steps(), w, o, unused, draw, false);
}

}  // namespace detail

// Explicit Euler on the probability-flow ODE: x_{i+1} = x_i + Δt·(f x_i − ½g² s(x_i, t_i)).
template <class Sde, class Model, tensor X, class Obs = no_observer>
void sample_pf_ode_euler(Model& m, const Sde& sde, X&& x_in, const time_grid& grid, const pf_ode_options& opt = {},
                         Obs&& obs = {}) {
    auto x = detail::writable_view(std::forward<X>(x_in), "sample_pf_ode_euler");
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    detail::ode_check_grid(sde, grid, x.batch, "sample_pf_ode_euler");
    constexpr bool observed = !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;
    detail::sde_workspace<T> w(x.batch, x.per_sample, observed);
    const tensor_view<T> xv{x.data, x.batch, x.per_sample};
    const std::size_t steps = grid.steps();
    for (std::size_t i = 0; i < steps; ++i) {
        grid.column(i, w.t);
        detail::sde_score(m, sde, xv, w, w.of(w.score), "sample_pf_ode_euler", i);
        for (std::size_t b = 0; b < x.batch; ++b) {
            const double t = w.t[b], dt = grid(i + 1, b) - t, g = sde.diffusion(t);
            w.c0[b] = 1.0 + sde.drift_coef(t) * dt;
            w.c1[b] = -0.5 * g * g * dt;
        }
        lincomb(xv, per_sample(w.c0), xv, per_sample(w.c1), w.of(w.score));
        if (detail::notify(obs, step_info<T>{i, steps, w.t, xv, observed ? w.of(w.x0) : tensor_view<T>{}})) return;
    }
    if (opt.denoise) detail::pf_denoise(m, sde, xv, grid, w, "sample_pf_ode_euler");
}

// Heun (explicit trapezoidal rule): x̃ = x + Δt·d(x, t_i);  x_{i+1} = x + Δt/2·(d(x, t_i) + d(x̃, t_{i+1}))
// with d(x, t) = f(t)x − ½g(t)²s(x, t); written as one lincomb of x, s(x), x̃, s(x̃).
template <class Sde, class Model, tensor X, class Obs = no_observer>
void sample_pf_ode_heun(Model& m, const Sde& sde, X&& x_in, const time_grid& grid, const pf_ode_options& opt = {},
                        Obs&& obs = {}) {
    auto x = detail::writable_view(std::forward<X>(x_in), "sample_pf_ode_heun");
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    detail::ode_check_grid(sde, grid, x.batch, "sample_pf_ode_heun");
    constexpr bool observed = !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;
    detail::sde_workspace<T> w(x.batch, x.per_sample, observed);
    std::vector<T> xt_buf(x.size());
    const tensor_view<T> xv{x.data, x.batch, x.per_sample}, xt{xt_buf.data(), x.batch, x.per_sample};
    const auto s1 = w.of(w.score), s2 = w.of(w.noise);
    std::vector<double> f1(x.batch), a1(x.batch), t0(x.batch);
    const std::size_t steps = grid.steps();
    for (std::size_t i = 0; i < steps; ++i) {
        grid.column(i, w.t);
        std::copy(w.t.begin(), w.t.end(), t0.begin());
        detail::sde_score(m, sde, xv, w, s1, "sample_pf_ode_heun", i);
        for (std::size_t b = 0; b < x.batch; ++b) {
            const double t = t0[b], dt = grid(i + 1, b) - t, g = sde.diffusion(t);
            f1[b] = sde.drift_coef(t);
            a1[b] = -0.5 * g * g;
            w.c0[b] = 1.0 + f1[b] * dt;
            w.c1[b] = a1[b] * dt;
        }
        lincomb(xt, per_sample(w.c0), xv, per_sample(w.c1), s1);  // Euler predictor
        grid.column(i + 1, w.t);
        const bool keep = w.want_x0;
        w.want_x0 = false;  // the observer sees the x₀ of the step's start
        detail::sde_score(m, sde, xt, w, s2, "sample_pf_ode_heun", i);
        w.want_x0 = keep;
        for (std::size_t b = 0; b < x.batch; ++b) {
            const double h = 0.5 * (w.t[b] - t0[b]), g = sde.diffusion(w.t[b]);
            w.c0[b] = 1.0 + h * f1[b];
            w.c1[b] = h * a1[b];
            w.c2[b] = h * sde.drift_coef(w.t[b]);
            w.na[b] = h * (-0.5 * g * g);
        }
        lincomb(xv, per_sample(w.c0), xv, per_sample(w.c1), s1, per_sample(w.c2), xt, per_sample(w.na), s2);
        if (detail::notify(obs, step_info<T>{i, steps, t0, xv, observed ? w.of(w.x0) : tensor_view<T>{}})) return;
    }
    if (opt.denoise) detail::pf_denoise(m, sde, xv, grid, w, "sample_pf_ode_heun");
}

// Adaptive Dormand–Prince RK45 through every grid interval (samplers/dopri5.hpp). Returns the number of
// model calls and steps.
template <class Sde, class Model, tensor X, class Obs = no_observer>
ode_stats sample_pf_ode_rk45(Model& m, const Sde& sde, X&& x_in, const time_grid& grid, const rk45_options& opt = {},
                             Obs&& obs = {}) {
    constexpr const char* where = "sample_pf_ode_rk45";
    auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    dopri5_integrator<T> ode(x.batch, x.per_sample, opt, -1.0 /* the grid decreases (checked) */, where);
    detail::ode_check_grid(sde, grid, x.batch, where);
    if (opt.norm == rk_error_norm::batch && !grid.shared())
        detail::fail(where, "norm = batch integrates the batch as one system and needs a shared time grid");
    const std::size_t B = x.batch, D = x.per_sample;
    detail::sde_workspace<T> w(B, D, false);
    const tensor_view<T> y{x.data, B, D};
    std::vector<double> t(B), bound(B);
    std::size_t interval = 0;
    auto drift = [&](tensor_view<T> at, const std::vector<double>& times, tensor_view<T> out) {
        std::copy(times.begin(), times.end(), w.t.begin());
        detail::pf_drift(m, sde, tensor_view<const T>(at), w, out, where, interval);
    };
    const std::size_t steps = grid.steps();
    for (std::size_t i = 0; i < steps; ++i) {
        interval = i;
        grid.column(i, t);
        grid.column(i + 1, bound);
        if (i == 0) ode.start(drift, y, t, bound);
        ode.advance(drift, y, t, bound, i);
        if (detail::notify(obs, step_info<T>{i, steps, std::span<const double>(t), tensor_view<const T>(y), tensor_view<const T>{}}))
            return ode.stats();
    }
    ode_stats st = ode.stats();
    if (opt.denoise) {
        detail::pf_denoise(m, sde, y, grid, w, where);
        ++st.nfe;
    }
    return st;
}

}  // namespace diffuse
