#pragma once
// Reverse-time SDE samplers of score-based models (Song et al. 2021, "Score-Based Generative Modeling
// through Stochastic Differential Equations", ICLR) on the VP, sub-VP and VE SDEs of
// schedules/continuous.hpp, and annealed Langevin dynamics (Song & Ermon 2019, NCSN, Algorithm 1).
//
// The reverse SDE (eq. 6) is dx = [f(t)x − g(t)²∇log p_t(x)] dt + g(t) dw̄; its probability-flow twin
// (eq. 13) drops the noise and halves the score term. Predictor–corrector sampling (Algorithm 1 of
// Appendix G, §4.2) alternates a corrector (Langevin MCMC at fixed t) and a predictor (one step of a
// reverse-SDE solver):
//   predictors  euler_maruyama     x ← x − [f x − g² s]·|Δt| + g√|Δt|·z             (Appendix G, eq. 45)
//               reverse_diffusion  x ← x − f_i x + G_i² s + G_i z                     (eq. 46)
//               ancestral          VP/DDPM: x ← (x + β_i s)/√(1−β_i) + √β_i z          (eq. 47)
//                                  VE/SMLD: x ← x + (σ_i²−σ_{i−1}²) s + √(σ_{i−1}²(σ_i²−σ_{i−1}²)/σ_i²) z
//   correctors  langevin           ε = 2α_i (r‖z‖/‖s‖)²,  x ← x + ε s + √(2ε) z        (Algorithm 4/5)
//               ald                ε = 2α_i (r σ_t)²     (the reference's NCSN-style corrector)
// with s = ∇log p_t(x) from the model, f_i, G_i the forward discretisation (vp/subvp/ve_sde::discretize),
// α_i = 1 − β_i (VP, sub-VP) or 1 (VE) and r the target signal-to-noise ratio `snr`.
//
// Time grid: step i evaluates the score at t_i (points 0 … steps−1); point `steps` is only where the last
// step ends (the Euler–Maruyama Δt). score_sde_time_grid(sde, eps) gives the reference's grid
// linspace(T, eps, N) followed by an end point 0. Every coefficient is per sample, so a per-sample grid
// mixes start times in one batch. The reverse-diffusion and ancestral predictors and the corrector read
// the reference's discrete tables at index ⌊t(N−1)/T⌋, as the reference does.
//
// Parity options (PARITY.md, score_sde): `norm = batch_mean` averages ‖s‖ and ‖z‖ over the batch as the
// reference does (coupling the samples of a batch); `per_sample` gives each sample its own step size and
// makes the result independent of how a batch is split — for high-dimensional data only: in a few
// dimensions ‖s‖ of a sample near a mode is ≈ 0 and its step explodes (tests/train/test_toy_pc.cpp). `reference_dt` makes Euler–Maruyama use the
// reference's Δt = −T/N instead of the grid's t_{i+1} − t_i. `denoise` returns the final predictor's mean
// (the reference's noise_removal).
//
// Noise draws are numbered in call order: per step, the corrector's n_steps draws, then the predictor's
// one (none for the probability-flow predictors and for the final denoised step).

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/schedules/continuous.hpp"

namespace diffuse {

enum class sde_predictor { euler_maruyama, reverse_diffusion, ancestral, none };
enum class sde_corrector { none, langevin, ald };
enum class langevin_norm { batch_mean, per_sample };

struct pc_options {
    sde_predictor predictor = sde_predictor::reverse_diffusion;
    sde_corrector corrector = sde_corrector::langevin;
    double snr = 0.16;                           // target signal-to-noise ratio of the corrector
    std::size_t n_steps = 1;                     // corrector steps per predictor step (n_steps_each)
    langevin_norm norm = langevin_norm::batch_mean;
    bool probability_flow = false;               // predictor follows the probability-flow ODE (no noise)
    bool denoise = true;                         // return the last predictor's noise-free mean
    bool reference_dt = false;                   // Euler–Maruyama Δt = −T/N as the reference
};

// The reference's time grid: linspace(T, eps, N) (score evaluations), then the end point 0.
template <class Sde>
[[nodiscard]] std::vector<double> score_sde_time_grid(const Sde& sde, double eps = Sde::default_eps) {
    detail::require(eps > 0 && eps < Sde::T, "score_sde_time_grid", "eps", eps, "(0, T)");
    const std::size_t N = sde.N;
    std::vector<double> p(N + 1, 0.0);
    for (std::size_t i = 0; i < N; ++i)  // numpy.linspace: start + i·step, last point exact
        p[i] = N == 1 ? Sde::T
                      : (i + 1 == N ? eps : Sde::T + static_cast<double>(i) * ((eps - Sde::T) / static_cast<double>(N - 1)));
    return p;
}

namespace detail {

[[nodiscard]] inline std::string sde_time_string(double t) {
    std::ostringstream os;
    os.precision(17);
    os << t;
    return os.str();
}

// α_i = 1 − β_i of the reference's Langevin step size (VP and sub-VP share the linear β table).
template <class Sde>
[[nodiscard]] double sde_langevin_alpha(const Sde& sde, double t) {
    if constexpr (std::is_same_v<Sde, ve_sde>) {
        (void)sde, (void)t;
        return 1.0;
    } else {
        const vp_sde vp{sde.beta_0, sde.beta_1, sde.N};
        return 1.0 - vp.discrete_beta(sde_timestep_index(t, sde.N));
    }
}

// True when the model reads time as this SDE's own t (then the sampler passes t exactly).
template <class Model, class Sde>
concept sde_native_model = requires(Model& m) {
    requires std::is_same_v<std::remove_cvref_t<decltype(m.time())>, continuous_time<Sde>>;
};

// Buffers and per-sample scalars of one SDE/ODE sampling call, allocated once at entry.
template <class T>
struct sde_workspace {
    std::size_t batch, per_sample;
    std::vector<T> score, noise, x0;
    std::vector<double> t, alpha, sigma, c0, c1, c2, na, nb;
    bool want_x0;

    sde_workspace(std::size_t B, std::size_t D, bool x0_too)
        : batch(B), per_sample(D), score(B * D), noise(B * D), x0(x0_too ? B * D : 0), t(B), alpha(B), sigma(B),
          c0(B), c1(B), c2(B), na(B), nb(B), want_x0(x0_too) {}
    [[nodiscard]] tensor_view<T> of(std::vector<T>& v) { return {v.data(), batch, v.empty() ? 0 : per_sample}; }
};

// out = ∇log p_t(x) at the per-sample times w.t (marginal α, σ into w.alpha, w.sigma); also x₀ = (x + σ²s)/α
// (Tweedie) into w.x0 when an observer wants it. A model error is re-raised naming the step and time.
template <class Model, class Sde, class T>
void sde_score(Model& m, const Sde& sde, tensor_view<T> x, sde_workspace<T>& w, tensor_view<T> out, const char* where,
               std::size_t step) {
    for (std::size_t b = 0; b < w.batch; ++b) {
        const auto mc = sde.marginal(w.t[b]);
        w.alpha[b] = mc.mean_coef;
        w.sigma[b] = mc.std;
    }
    try {
        if constexpr (sde_native_model<Model, Sde>) m.predict(x, w.alpha, w.sigma, prediction::score, out, w.t);
        else m.predict(x, w.alpha, w.sigma, prediction::score, out);
    } catch (const error& e) {
        fail(where, "step " + std::to_string(step) + " at t = " + sde_time_string(w.t[0]) + ": " + e.what());
    }
    if (w.want_x0) {
        for (std::size_t b = 0; b < w.batch; ++b) {
            w.na[b] = 1.0 / w.alpha[b];
            w.nb[b] = w.sigma[b] * w.sigma[b] / w.alpha[b];
        }
        lincomb(w.of(w.x0), per_sample(w.na), x, per_sample(w.nb), out);
    }
}

// One Langevin move x ← x + ε·s + √(2ε)·z with per-sample ε (in w.c0) and a fresh z (Song & Ermon 2019,
// eq. 4; Song et al. 2021, Algorithm 4 line 6).
template <class T, class Noise>
void sde_langevin_move(tensor_view<T> x, sde_workspace<T>& w, Noise& noise, std::uint64_t& draw, bool draw_now = true) {
    if (draw_now) noise(w.of(w.noise), draw++);
    for (std::size_t b = 0; b < w.batch; ++b) w.c1[b] = std::sqrt(2.0 * w.c0[b]);
    lincomb(x, 1.0, x, per_sample(w.c0), w.of(w.score), per_sample(w.c1), w.of(w.noise));
}

template <class Model, class Sde, class T, class Noise>
void pc_correct(Model& m, const Sde& sde, tensor_view<T> x, sde_workspace<T>& w, const pc_options& opt, Noise& noise,
                std::uint64_t& draw, std::size_t step) {
    if (opt.corrector == sde_corrector::none) return;
    for (std::size_t j = 0; j < opt.n_steps; ++j) {
        sde_score(m, sde, x, w, w.of(w.score), "sample_pc", step);
        noise(w.of(w.noise), draw++);
        if (opt.corrector == sde_corrector::langevin) {
            // ε = 2α (r·‖z‖/‖s‖)², norms per sample or averaged over the batch (reference).
            sum_squares(w.of(w.score), w.na);
            sum_squares(w.of(w.noise), w.nb);
            double gm = 0, zm = 0;
            for (std::size_t b = 0; b < w.batch; ++b) {
                w.na[b] = std::sqrt(w.na[b]);
                w.nb[b] = std::sqrt(w.nb[b]);
                gm += w.na[b];
                zm += w.nb[b];
            }
            gm /= static_cast<double>(w.batch);
            zm /= static_cast<double>(w.batch);
            for (std::size_t b = 0; b < w.batch; ++b) {
                const double r = opt.norm == langevin_norm::batch_mean ? opt.snr * zm / gm : opt.snr * w.nb[b] / w.na[b];
                w.c0[b] = r * r * 2.0 * sde_langevin_alpha(sde, w.t[b]);
            }
        } else {  // ald: ε = 2α (r·σ_t)²
            for (std::size_t b = 0; b < w.batch; ++b) {
                const double r = opt.snr * w.sigma[b];
                w.c0[b] = r * r * 2.0 * sde_langevin_alpha(sde, w.t[b]);
            }
        }
        sde_langevin_move(x, w, noise, draw, false);
    }
}

// One predictor step from t_i (w.t) towards t_{i+1}; no noise when add_noise is false (final denoise).
template <class Model, class Sde, class T, class Noise>
void pc_predict(Model& m, const Sde& sde, tensor_view<T> x, const time_grid& grid, std::size_t i, sde_workspace<T>& w,
                const pc_options& opt, Noise& noise, std::uint64_t& draw, bool add_noise) {
    if (opt.predictor == sde_predictor::none) return;
    sde_score(m, sde, x, w, w.of(w.score), "sample_pc", i);
    const double k = opt.probability_flow ? 0.5 : 1.0;  // eq. 13 halves the score term
    for (std::size_t b = 0; b < w.batch; ++b) {
        const double t = w.t[b];
        switch (opt.predictor) {
            case sde_predictor::euler_maruyama: {  // x + [f x − k g² s]·Δt + g√(−Δt) z
                const double dt = opt.reference_dt ? -Sde::T / static_cast<double>(sde.N) : grid(i + 1, b) - t;
                const double f = sde.drift_coef(t), g = sde.diffusion(t);
                w.c0[b] = 1.0 + f * dt;
                w.c1[b] = -k * g * g * dt;
                w.c2[b] = g * std::sqrt(-dt);
                break;
            }
            case sde_predictor::reverse_diffusion: {  // x − (f x − k G² s) + G z
                const auto d = sde.discretize(t);
                w.c0[b] = 1.0 - d.f;
                w.c1[b] = k * d.G * d.G;
                w.c2[b] = d.G;
                break;
            }
            case sde_predictor::ancestral: {
                const std::size_t n = sde_timestep_index(t, sde.N);
                if constexpr (std::is_same_v<Sde, vp_sde>) {  // DDPM ancestral step (eq. 47)
                    const double beta = sde.discrete_beta(n);
                    w.c0[b] = 1.0 / std::sqrt(1.0 - beta);
                    w.c1[b] = beta / std::sqrt(1.0 - beta);
                    w.c2[b] = std::sqrt(beta);
                } else if constexpr (std::is_same_v<Sde, ve_sde>) {  // SMLD ancestral step
                    const double s2 = sde.discrete_sigma(n) * sde.discrete_sigma(n);
                    const double a2 = n == 0 ? 0.0 : sde.discrete_sigma(n - 1) * sde.discrete_sigma(n - 1);
                    w.c0[b] = 1.0;
                    w.c1[b] = s2 - a2;
                    w.c2[b] = std::sqrt(a2 * (s2 - a2) / s2);
                } else {
                    fail("sample_pc", "the ancestral predictor supports the VP and VE SDEs only");
                }
                break;
            }
            case sde_predictor::none: break;
        }
    }
    if (add_noise && !opt.probability_flow) {
        noise(w.of(w.noise), draw++);
        lincomb(x, per_sample(w.c0), x, per_sample(w.c1), w.of(w.score), per_sample(w.c2), w.of(w.noise));
    } else {
        lincomb(x, per_sample(w.c0), x, per_sample(w.c1), w.of(w.score));
    }
}

template <class Sde>
void sde_check_grid(const Sde&, const time_grid& grid, std::size_t batch, const char* where) {
    grid.check_batch(batch, where);
    for (std::size_t b = 0; b < grid.rows(); ++b)
        for (std::size_t i = 0; i <= grid.steps(); ++i) {
            const double t = grid(i, b);
            if (i < grid.steps()) {
                require(t > 0 && t <= Sde::T, where, "time_grid point", t, "(0, T] for the times a step evaluates");
                require(grid(i + 1, b) < t, where, "time_grid point", grid(i + 1, b), "below the previous point (decreasing)");
            } else {
                require(t >= 0 && t <= Sde::T, where, "time_grid end point", t, "[0, T]");
            }
        }
}

}  // namespace detail

// Predictor–corrector sampling (Song et al. 2021, Algorithm 1 with the predictors/correctors above).
// x holds a prior sample x(t_0) on entry (sample_prior) and the sample on return.
template <class Sde, class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_pc(Model& m, const Sde& sde, X&& x_in, const time_grid& grid, const pc_options& opt = {},
               Noise&& noise = {}, Obs&& obs = {}) {
    auto x = detail::writable_view(std::forward<X>(x_in), "sample_pc");
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    detail::require(std::isfinite(opt.snr) && opt.snr > 0, "sample_pc", "snr", opt.snr, "(0, inf)");
    detail::require(opt.corrector == sde_corrector::none || opt.n_steps >= 1, "sample_pc", "n_steps", opt.n_steps,
                    ">= 1 with a corrector");
    detail::require(!(opt.probability_flow && opt.predictor == sde_predictor::ancestral), "sample_pc",
                    "probability_flow", "true", "false with the ancestral predictor");
    detail::sde_check_grid(sde, grid, x.batch, "sample_pc");
    constexpr bool observed = !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;
    detail::sde_workspace<T> w(x.batch, x.per_sample, observed);
    const tensor_view<T> xv{x.data, x.batch, x.per_sample};
    std::uint64_t draw = 0;
    const std::size_t steps = grid.steps();
    for (std::size_t i = 0; i < steps; ++i) {
        grid.column(i, w.t);
        detail::pc_correct(m, sde, xv, w, opt, noise, draw, i);
        detail::pc_predict(m, sde, xv, grid, i, w, opt, noise, draw, !(opt.denoise && i + 1 == steps));
        if (detail::notify(obs, step_info<T>{i, steps, w.t, xv, observed ? w.of(w.x0) : tensor_view<T>{}})) return;
    }
}

// Predictor-only and corrector-only special cases (Song et al. 2021, §4.2).
template <class Sde, class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_euler_maruyama(Model& m, const Sde& sde, X&& x, const time_grid& grid, pc_options opt = {},
                           Noise&& noise = {}, Obs&& obs = {}) {
    opt.predictor = sde_predictor::euler_maruyama;
    opt.corrector = sde_corrector::none;
    sample_pc(m, sde, std::forward<X>(x), grid, opt, std::forward<Noise>(noise), std::forward<Obs>(obs));
}
template <class Sde, class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_reverse_diffusion(Model& m, const Sde& sde, X&& x, const time_grid& grid, pc_options opt = {},
                              Noise&& noise = {}, Obs&& obs = {}) {
    opt.predictor = sde_predictor::reverse_diffusion;
    opt.corrector = sde_corrector::none;
    sample_pc(m, sde, std::forward<X>(x), grid, opt, std::forward<Noise>(noise), std::forward<Obs>(obs));
}
template <class Sde, class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_sde_ancestral(Model& m, const Sde& sde, X&& x, const time_grid& grid, pc_options opt = {},
                          Noise&& noise = {}, Obs&& obs = {}) {
    opt.predictor = sde_predictor::ancestral;
    opt.corrector = sde_corrector::none;
    sample_pc(m, sde, std::forward<X>(x), grid, opt, std::forward<Noise>(noise), std::forward<Obs>(obs));
}

// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): for each noise level σ_i of the grid
// (every point, σ_1 > … > σ_L), n_steps_each moves x ← x + α_i s + √(2α_i) z with α_i = ε·σ_i²/σ_L²
// (ε = step_lr); `denoise` adds the final x ← x + σ_L² s(x, σ_L) of NCSNv2 (Song & Ermon 2020, §4.1
// and Appendix; Tweedie's formula). The model is asked for the score of the VE state x (α = 1, σ = σ_i).
// Draw number of level c, move j: c·n_steps_each + j.
struct annealed_langevin_options {
    double step_lr = 2e-5;          // ε
    std::size_t n_steps_each = 100; // T of Algorithm 1
    bool denoise = false;
};

template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
void sample_annealed_langevin(Model& m, X&& x_in, const time_grid& sigmas, const annealed_langevin_options& opt = {},
                              Noise&& noise = {}, Obs&& obs = {}) {
    auto x = detail::writable_view(std::forward<X>(x_in), "sample_annealed_langevin");
    using T = std::remove_const_t<typename decltype(x)::value_type>;
    detail::require(std::isfinite(opt.step_lr) && opt.step_lr > 0, "sample_annealed_langevin", "step_lr", opt.step_lr,
                    "(0, inf)");
    detail::require(opt.n_steps_each >= 1, "sample_annealed_langevin", "n_steps_each", opt.n_steps_each, ">= 1");
    sigmas.check_batch(x.batch, "sample_annealed_langevin");
    const std::size_t levels = sigmas.steps() + 1;
    for (std::size_t b = 0; b < sigmas.rows(); ++b)
        for (std::size_t c = 0; c < levels; ++c)
            detail::require(sigmas(c, b) > 0 && std::isfinite(sigmas(c, b)), "sample_annealed_langevin", "sigma",
                            sigmas(c, b), "(0, inf)");
    constexpr bool observed = !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;
    detail::sde_workspace<T> w(x.batch, x.per_sample, observed);
    const tensor_view<T> xv{x.data, x.batch, x.per_sample};
    std::vector<double> ones(x.batch, 1.0);
    auto score = [&](std::size_t level) {
        try {
            m.predict(xv, ones, w.t, prediction::score, w.of(w.score));
        } catch (const error& e) {
            detail::fail("sample_annealed_langevin",
                         "level " + std::to_string(level) + " at sigma = " + detail::sde_time_string(w.t[0]) + ": " + e.what());
        }
    };
    std::uint64_t draw = 0;
    for (std::size_t c = 0; c < levels; ++c) {
        sigmas.column(c, w.t);  // here w.t holds σ_i
        for (std::size_t b = 0; b < x.batch; ++b) {
            const double r = sigmas(c, b) / sigmas(levels - 1, b);
            w.c0[b] = opt.step_lr * r * r;  // α_i = ε σ_i² / σ_L²
        }
        for (std::size_t j = 0; j < opt.n_steps_each; ++j) {
            score(c);
            if (observed) {  // x₀ = x + σ² s (Tweedie)
                for (std::size_t b = 0; b < x.batch; ++b) w.nb[b] = w.t[b] * w.t[b];
                lincomb(w.of(w.x0), 1.0, xv, per_sample(w.nb), w.of(w.score));
            }
            detail::sde_langevin_move(xv, w, noise, draw);
        }
        if (detail::notify(obs, step_info<T>{c, levels, w.t, xv, observed ? w.of(w.x0) : tensor_view<T>{}})) return;
    }
    if (opt.denoise) {
        score(levels - 1);
        for (std::size_t b = 0; b < x.batch; ++b) w.nb[b] = w.t[b] * w.t[b];
        lincomb(xv, 1.0, xv, per_sample(w.nb), w.of(w.score));
    }
}

}  // namespace diffuse
