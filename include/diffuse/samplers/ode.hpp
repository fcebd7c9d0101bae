#pragma once
// The probability-flow ODE of a score-based model (Song et al. 2021, eq. 13):
//     dx/dt = f(t)·x − ½ g(t)² ∇log p_t(x)
// on the VP, sub-VP and VE SDEs, integrated from t_0 (usually T) down the time grid by
//   sample_pf_ode_euler   explicit Euler (order 1)
//   sample_pf_ode_heun    Heun's trapezoidal predictor–corrector (order 2)
//   sample_pf_ode_rk45    adaptive Dormand–Prince 5(4) (Dormand & Prince 1980) with error control as in
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

#include "diffuse/samplers/sde.hpp"
#include "diffuse/samplers/step_control.hpp"

namespace diffuse {

struct pf_ode_options {
    bool denoise = false;  // one noise-free reverse-diffusion step at the end time
};

struct rk45_options {
    double rtol = 1e-5;
    double atol = 1e-5;
    rk_error_norm norm = rk_error_norm::per_sample;
    double first_step = 0;                                     // 0: choose automatically (Hairer §II.4)
    double max_step = std::numeric_limits<double>::infinity();
    std::size_t max_attempts = 100000;                         // step attempts per grid interval
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

// Dormand–Prince 5(4) tableau (Dormand & Prince 1980, Table 2; FSAL: the 7th stage is f(t+h, y_new)).
struct dopri5 {
    static constexpr std::array<double, 6> c{0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0};
    static constexpr double a[6][5] = {{0, 0, 0, 0, 0},
                                       {1.0 / 5, 0, 0, 0, 0},
                                       {3.0 / 40, 9.0 / 40, 0, 0, 0},
                                       {44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0},
                                       {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0},
                                       {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656}};
    static constexpr std::array<double, 6> b{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84};
    // b − b̂ (5th minus embedded 4th order weights), 7 stages
    static constexpr std::array<double, 7> e{-71.0 / 57600, 0, 71.0 / 16695, -71.0 / 1920, 17253.0 / 339200,
                                             -22.0 / 525, 1.0 / 40};
};

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

// Adaptive Dormand–Prince RK45 through every grid interval. Returns the number of model calls and steps.
template <class Sde, class Model, tensor X, class Obs = no_observer>
ode_stats sample_pf_ode_rk45(Model& m, const Sde& sde, X&& x_in, const time_grid& grid, const rk45_options& opt = {},
                             Obs&& obs = {}) {
    constexpr const char* where = "sample_pf_ode_rk45";
    auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    detail::require(std::isfinite(opt.rtol) && opt.rtol > 0, where, "rtol", opt.rtol, "(0, inf)");
    detail::require(std::isfinite(opt.atol) && opt.atol > 0, where, "atol", opt.atol, "(0, inf)");
    detail::require(opt.first_step >= 0 && std::isfinite(opt.first_step), where, "first_step", opt.first_step,
                    "[0, inf) (0 = automatic)");
    detail::require(opt.max_step > 0, where, "max_step", opt.max_step, "(0, inf]");
    detail::ode_check_grid(sde, grid, x.batch, where);
    const bool shared = opt.norm == rk_error_norm::batch;
    if (shared && !grid.shared())
        detail::fail(where, "norm = batch integrates the batch as one system and needs a shared time grid");
    const std::size_t B = x.batch, D = x.per_sample;
    detail::sde_workspace<T> w(B, D, false);
    std::vector<std::vector<T>> kbuf(7, std::vector<T>(B * D));
    std::vector<T> ynew_buf(B * D), tmp_buf(B * D);
    auto tv = [&](std::vector<T>& v) { return tensor_view<T>{v.data(), B, D}; };
    const tensor_view<T> y{x.data, B, D}, ynew = tv(ynew_buf), tmp = tv(tmp_buf);
    std::vector<double> t(B), bound(B), h(B), habs(B), tnew(B), en(B), ss(B);
    std::vector<std::uint8_t> active(B), rejected(B), fresh(B);
    using dp = detail::dopri5;
    std::vector<double> ts(B);
    std::array<std::vector<double>, 5> ca;  // per-sample h·a_sj, h·b_j
    std::array<std::vector<double>, 6> ce;  // per-sample h·e_j
    for (auto& v : ca) v.resize(B);
    for (auto& v : ce) v.resize(B);
    constexpr std::size_t ej[6] = {0, 2, 3, 4, 5, 6};  // stages with a nonzero error weight
    ode_stats st;
    const double rtol = opt.rtol, atol = opt.atol;
    const double dir = -1.0;  // the grid decreases (checked)

    // RMS norm of the values in tmp (already divided by their scale), per sample or over the batch.
    auto rms = [&](std::vector<double>& out) { detail::error_rms(tmp, opt.norm, ss, out); };
    auto drift = [&](tensor_view<T> at, const std::vector<double>& times, tensor_view<T> out, std::size_t step) {
        std::copy(times.begin(), times.end(), w.t.begin());
        detail::pf_drift(m, sde, tensor_view<const T>(at), w, out, where, step);
        ++st.nfe;
    };

    const std::size_t steps = grid.steps();
    for (std::size_t i = 0; i < steps; ++i) {
        grid.column(i, t);
        grid.column(i + 1, bound);
        std::fill(active.begin(), active.end(), 1);
        std::fill(fresh.begin(), fresh.end(), 1);
        std::fill(rejected.begin(), rejected.end(), 0);
        if (i == 0) {
            drift(y, t, tv(kbuf[0]), i);
            if (opt.first_step > 0) {
                std::fill(habs.begin(), habs.end(), opt.first_step);
            } else {  // Hairer, Nørsett & Wanner §II.4, "starting step size"
                std::vector<double> d0(B), d1(B), d2(B), h0(B), t1(B);
                transform(tmp, [=](T v) { return double(v) / (atol + std::abs(double(v)) * rtol); }, y);
                rms(d0);
                transform(tmp, [=](T f, T v) { return double(f) / (atol + std::abs(double(v)) * rtol); }, tv(kbuf[0]), y);
                rms(d1);
                for (std::size_t b = 0; b < B; ++b) {
                    h0[b] = (d0[b] < 1e-5 || d1[b] < 1e-5) ? 1e-6 : 0.01 * d0[b] / d1[b];
                    h0[b] = std::min(h0[b], std::abs(bound[b] - t[b]));
                    w.c2[b] = h0[b] * dir;
                    t1[b] = t[b] + h0[b] * dir;
                }
                lincomb(ynew, 1.0, y, per_sample(w.c2), tv(kbuf[0]));
                drift(ynew, t1, tv(kbuf[1]), i);
                transform(tmp, [=](T f1, T f0, T v) { return (double(f1) - double(f0)) / (atol + std::abs(double(v)) * rtol); },
                          tv(kbuf[1]), tv(kbuf[0]), y);
                rms(d2);
                for (std::size_t b = 0; b < B; ++b) {
                    d2[b] /= h0[b];
                    const double h1 = (d1[b] <= 1e-15 && d2[b] <= 1e-15) ? std::max(1e-6, h0[b] * 1e-3)
                                                                         : std::pow(0.01 / std::max(d1[b], d2[b]), 1.0 / 5);
                    habs[b] = std::min({100 * h0[b], h1, std::abs(bound[b] - t[b]), opt.max_step});
                }
            }
        }
        std::size_t attempts = 0;
        while (std::any_of(active.begin(), active.end(), [](std::uint8_t a) { return a != 0; })) {
            if (++attempts > opt.max_attempts)
                detail::fail(where, "grid interval " + std::to_string(i) + " needed more than max_attempts = " +
                                        std::to_string(opt.max_attempts) + " step attempts");
            for (std::size_t b = 0; b < B; ++b) {
                if (!active[b]) {
                    h[b] = 0.0;
                    tnew[b] = t[b];
                    continue;
                }
                const double min_step = 10 * std::abs(std::nextafter(t[b], dir * INFINITY) - t[b]);
                if (fresh[b]) habs[b] = habs[b] > opt.max_step ? opt.max_step : std::max(habs[b], min_step);
                if (habs[b] < min_step)
                    detail::fail(where, "the step size fell below the smallest representable step at t = " +
                                            detail::sde_time_string(t[b]) + " (sample " + std::to_string(b) + ")");
                tnew[b] = t[b] + habs[b] * dir;
                if (dir * (tnew[b] - bound[b]) > 0) tnew[b] = bound[b];
                h[b] = tnew[b] - t[b];
                habs[b] = std::abs(h[b]);
            }
            // Stages 2…6: K_s = d(y + h Σ_j a_sj K_j, t + c_s h)
            for (std::size_t s = 1; s < 6; ++s) {
                for (std::size_t b = 0; b < B; ++b) {
                    ts[b] = t[b] + dp::c[s] * h[b];
                    for (std::size_t j = 0; j < s; ++j) ca[j][b] = h[b] * dp::a[s][j];
                }
                const auto k = [&](std::size_t j) { return tv(kbuf[j]); };
                const auto c = [&](std::size_t j) { return per_sample(ca[j]); };
                switch (s) {
                    case 1: lincomb(tmp, 1.0, y, c(0), k(0)); break;
                    case 2: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1)); break;
                    case 3: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1), c(2), k(2)); break;
                    case 4: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1), c(2), k(2), c(3), k(3)); break;
                    default: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1), c(2), k(2), c(3), k(3), c(4), k(4)); break;
                }
                drift(tmp, ts, tv(kbuf[s]), i);
            }
            // y_new = y + h Σ b_j K_j (b_2 = 0); K_7 = d(y_new, t + h)
            for (std::size_t j = 0; j < 5; ++j)
                for (std::size_t b = 0; b < B; ++b) ca[j][b] = h[b] * dp::b[j < 1 ? 0 : j + 1];
            lincomb(ynew, 1.0, y, per_sample(ca[0]), tv(kbuf[0]), per_sample(ca[1]), tv(kbuf[2]), per_sample(ca[2]),
                    tv(kbuf[3]), per_sample(ca[3]), tv(kbuf[4]), per_sample(ca[4]), tv(kbuf[5]));
            drift(ynew, tnew, tv(kbuf[6]), i);
            // error estimate h Σ e_j K_j (e_2 = 0), scaled by atol + rtol·max(|y|, |y_new|)
            for (std::size_t q = 0; q < 6; ++q) {
                for (std::size_t b = 0; b < B; ++b) ce[q][b] = h[b] * dp::e[ej[q]];
            }
            lincomb(tmp, per_sample(ce[0]), tv(kbuf[0]), per_sample(ce[1]), tv(kbuf[2]), per_sample(ce[2]), tv(kbuf[3]),
                    per_sample(ce[3]), tv(kbuf[4]), per_sample(ce[4]), tv(kbuf[5]), per_sample(ce[5]), tv(kbuf[6]));
            transform(tmp,
                      [=](T e, T y0, T y1) {
                          return double(e) / (atol + std::max(std::abs(double(y0)), std::abs(double(y1))) * rtol);
                      },
                      tmp, y, ynew);
            rms(en);
            for (std::size_t b = 0; b < B; ++b) {
                if (!active[b]) continue;
                if (en[b] < 1) {
                    double factor = en[b] == 0 ? 10.0 : std::min(10.0, 0.9 * std::pow(en[b], -1.0 / 5));
                    if (rejected[b]) factor = std::min(1.0, factor);
                    habs[b] *= factor;
                    std::memcpy(y.sample(b), ynew.sample(b), D * sizeof(T));
                    std::memcpy(kbuf[0].data() + b * D, kbuf[6].data() + b * D, D * sizeof(T));  // FSAL
                    t[b] = tnew[b];
                    rejected[b] = 0;
                    fresh[b] = 1;
                    ++st.accepted;
                    if (dir * (t[b] - bound[b]) >= 0) active[b] = 0;
                } else {
                    habs[b] *= std::max(0.2, 0.9 * std::pow(en[b], -1.0 / 5));
                    rejected[b] = 1;
                    fresh[b] = 0;
                    ++st.rejected;
                }
            }
        }
        if (detail::notify(obs, step_info<T>{i, steps, std::span<const double>(t), tensor_view<const T>(y), tensor_view<const T>{}}))
            return st;
    }
    if (opt.denoise) {
        detail::pf_denoise(m, sde, y, grid, w, where);
        ++st.nfe;
    }
    return st;
}

}  // namespace diffuse
