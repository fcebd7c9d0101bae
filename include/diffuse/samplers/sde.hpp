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
// Memory: the corrector's per-sample values (Σ s², Σ z², α, σ, ε, √(2ε)) live in the state's memory space; the
// sums of squares are reduced there, ε and √(2ε) computed there by one per-sample functor
// (detail::corrector_step_body) and read there by the Langevin move's lincomb — so a device step reads nothing
// on the host and a CUDA graph (cuda/graph.hpp) captures the PC sampler, the Langevin corrector included.
//
// Noise draws are numbered in call order: per step, the corrector's n_steps draws, then the predictor's
// one (none for the probability-flow predictors and for the final denoised step).
//
// Steppers (samplers/stepper.hpp): pc_stepper<T, Sde, Noise, S> (one step = one grid point: its n_steps
// corrector moves, then its predictor) and annealed_langevin_stepper<T, Noise, S> (one step = one noise level:
// its n_steps_each moves; the final denoise inside the last). sample_pc, sample_euler_maruyama,
// sample_reverse_diffusion, sample_sde_ancestral and sample_annealed_langevin are their one-call forms,
// taking (model, x, sde, grid, options, noise, observer) (annealed Langevin: no sde, a σ grid). In pull mode a model that reads this SDE's own
// time (continuous_time<Sde>) is given the exact t of the grid (fulfil); in push mode the evaluation names
// it (time_name "t", time = the SDE times) and states α, σ of the marginal at t.

#include <cmath>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/space_buffer.hpp"
#include "diffuse/core/tensor_copy.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/stepper.hpp"
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

// True when a one-call sampler has an observer (the steppers then compute the x₀ preview it is shown).
template <class Obs>
inline constexpr bool observed = !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;

// One Langevin move x ← x + ε·s + √(2ε)·z with per-sample ε (Song & Ermon 2019, eq. 4; Song et al. 2021,
// Algorithm 4 line 6): eps and root are lincomb coefficients (ε and √(2ε), per_sample of host values or of
// values in x's memory space).
template <class T, memory_space S, class Eps, class Root>
void langevin_move(tensor_view<T, S> x, std::type_identity_t<tensor_view<const T, S>> score,
                   std::type_identity_t<tensor_view<const T, S>> z, const Eps& eps, const Root& root) {
    lincomb(x, 1.0, x, eps, score, root, z);
}

// The corrector's step size of sample b and its root (Song et al. 2021, Algorithm 4 lines 3–6 / the reference's
// ALD corrector), from per-sample values in one memory space, where they live (for_each_sample):
//   langevin  ε_b = 2α_b (r·‖z‖/‖s‖)², ‖·‖ = √(Σ ·²) of sample b, or averaged over the batch (batch_mean:
//             (1/B)Σ_b′ ‖·‖_b′, the reference's mean)
//   ald       ε_b = 2α_b (r·σ_b)²
// and √(2ε_b) — in double, in the order of the host formula: r = (snr·‖z‖)/‖s‖, ε = ((r·r)·2)·α.
struct corrector_step_body {
    const double* score_sq;  // langevin: Σ s² per sample
    const double* noise_sq;  // langevin: Σ z² per sample
    const double* alpha;     // α_b
    const double* sigma;     // ald: the marginal std σ_b
    double snr;
    std::size_t batch;
    bool langevin, batch_mean;
    double* eps;
    double* root;
    DIFFUSE_HD void operator()(std::size_t b) const {
        double r = snr * sigma[b];
        if (langevin && batch_mean) {
            double gm = 0, zm = 0;
            for (std::size_t i = 0; i < batch; ++i) {
                gm += std::sqrt(score_sq[i]);
                zm += std::sqrt(noise_sq[i]);
            }
            gm /= static_cast<double>(batch);
            zm /= static_cast<double>(batch);
            r = snr * zm / gm;
        } else if (langevin) {
            r = snr * std::sqrt(noise_sq[b]) / std::sqrt(score_sq[b]);
        }
        const double e = r * r * 2.0 * alpha[b];
        eps[b] = e;
        root[b] = std::sqrt(2.0 * e);
    }
};

// The per-sample values of the corrector in the state's memory space S: rows Σ s², Σ z², α, σ, ε, √(2ε).
template <memory_space S>
struct corrector_values {
    static constexpr std::size_t rows = 6;
    tensor_view<double, S> all;  // rows x batch
    [[nodiscard]] tensor_view<double, S> row(std::size_t k) const { return {all.data + k * all.per_sample, 1, all.per_sample}; }
    [[nodiscard]] tensor_view<double, S> eps() const { return row(4); }
    [[nodiscard]] tensor_view<double, S> root() const { return row(5); }
};

// The corrector's ε and √(2ε) (corrector_step_body) at the per-sample times t (marginal std σ) into v.eps() and
// v.root(): the norms' sums of squares stay in S (sum_squares into v's rows), α and σ reach S in one copy each,
// the formula runs in S — so on device tensors nothing is read on the host and a CUDA graph captures it.
// alpha: per-sample host scratch.
template <class Sde, class T, memory_space S>
void corrector_step_size(const Sde& sde, const pc_options& opt, tensor_view<const T, S> score, tensor_view<const T, S> z,
                         std::span<const double> t, std::span<const double> sigma, std::span<double> alpha,
                         const corrector_values<S>& v) {
    const std::size_t B = t.size();
    const bool langevin = opt.corrector == sde_corrector::langevin;
    if (langevin) {
        sum_squares(score, v.row(0));
        sum_squares(z, v.row(1));
    }
    for (std::size_t b = 0; b < B; ++b) alpha[b] = sde_langevin_alpha(sde, t[b]);
    copy_from_host(v.row(2), std::span<const double>(alpha));
    if (!langevin) copy_from_host(v.row(3), sigma);
    for_each_sample<S>(B,
                       corrector_step_body{v.row(0).data, v.row(1).data, v.row(2).data, v.row(3).data, opt.snr, B, langevin,
                                           opt.norm == langevin_norm::batch_mean, v.eps().data, v.root().data},
                       "sample_pc");
}

// The predictor's update x ← c0·x + c1·s + c2·z from t towards t_next (k = ½ on the probability-flow ODE,
// eq. 13, which halves the score term; the caller drops c2·z for the noise-free steps).
struct predictor_coefficients {
    double c0, c1, c2;
};
template <class Sde>
[[nodiscard]] predictor_coefficients pc_predictor_coefficients(const Sde& sde, const pc_options& opt, double t,
                                                               double t_next) {
    const double k = opt.probability_flow ? 0.5 : 1.0;
    switch (opt.predictor) {
        case sde_predictor::euler_maruyama: {  // x + [f x − k g² s]·Δt + g√(−Δt) z   (Appendix G, eq. 45)
            const double dt = opt.reference_dt ? -Sde::T / static_cast<double>(sde.N) : t_next - t;
            const double f = sde.drift_coef(t), g = sde.diffusion(t);
            return {1.0 + f * dt, -k * g * g * dt, g * std::sqrt(-dt)};
        }
        case sde_predictor::reverse_diffusion: {  // x − (f x − k G² s) + G z   (eq. 46)
            const auto d = sde.discretize(t);
            return {1.0 - d.f, k * d.G * d.G, d.G};
        }
        case sde_predictor::ancestral: {
            const std::size_t n = sde_timestep_index(t, sde.N);
            if constexpr (std::is_same_v<Sde, vp_sde>) {  // DDPM ancestral step (eq. 47)
                const double beta = sde.discrete_beta(n);
                return {1.0 / std::sqrt(1.0 - beta), beta / std::sqrt(1.0 - beta), std::sqrt(beta)};
            } else if constexpr (std::is_same_v<Sde, ve_sde>) {  // SMLD ancestral step
                const double s2 = sde.discrete_sigma(n) * sde.discrete_sigma(n);
                const double a2 = n == 0 ? 0.0 : sde.discrete_sigma(n - 1) * sde.discrete_sigma(n - 1);
                return {1.0, s2 - a2, std::sqrt(a2 * (s2 - a2) / s2)};
            } else {
                fail("sample_pc", "the ancestral predictor supports the VP and VE SDEs only");
            }
        }
        case sde_predictor::none: break;
    }
    return {1.0, 0.0, 0.0};
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

// The common part of the steppers on an SDE's own time (PC here, the probability-flow ODE solvers of
// samplers/ode.hpp): the SDE, the grid, the score as a request at per-sample SDE times, the exact time for
// models that read it, the x₀ preview and the noise-free final step. Derived provides run_step.
template <class Derived, class T, class Sde, memory_space S = memory_space::host>
class sde_stepper : public stepper<Derived, T, S> {
public:
    [[nodiscard]] std::size_t steps() const noexcept { return grid_.steps(); }
    [[nodiscard]] const time_grid& grid() const noexcept { return grid_; }
    [[nodiscard]] const Sde& sde() const noexcept { return sde_; }
    // Whether each step computes the x₀ an observer is shown (step_info::denoised, by Tweedie's formula
    // x₀ = (x + σ²s)/α: one pass over the batch). On by default; the one-call forms turn it off when
    // nobody observes. Off, denoised is empty.
    void preview_denoised(bool on) noexcept { preview_ = on; }

    // Pull mode: a model that reads this SDE's own time gets the exact t of the grid; any other model the
    // plain evaluation (its time derived from α and σ).
    template <class Model>
    void fulfil(Model& m, const evaluation<T, S>& e) {
        if constexpr (sde_native_model<Model, Sde>) m.predict(e.x, e.alpha, e.sigma, e.want, e.out, e.time, e.first_sample);
        else evaluate(m, e);
    }

protected:
    sde_stepper(batch_shape shape, const Sde& sde, const time_grid& grid, const char* where)
        : stepper<Derived, T, S>(shape.batch, shape.per_sample, where), sde_(sde), grid_(grid), eval_t_(shape.batch),
          alpha_(shape.batch), sigma_(shape.batch), end_t_(shape.batch), c0_(shape.batch), c1_(shape.batch),
          c2_(shape.batch), c3_(shape.batch), x0_(workspace<T, S>(shape)) {
        sde_check_grid(sde_, grid_, shape.batch, where);
    }

    // co_await this->score(x, t, out): out = ∇log p_t(x) at the per-sample SDE times t; the evaluation states
    // the marginal's α = mean_coef(t), σ = std(t) (left in alpha_, sigma_ for the step).
    std::suspend_always score(tensor_view<const T, S> x, std::span<const double> t, tensor_view<T, S> out) {
        for (std::size_t b = 0; b < eval_t_.size(); ++b) {
            eval_t_[b] = t[b];
            const auto mc = sde_.marginal(t[b]);
            alpha_[b] = mc.mean_coef;
            sigma_[b] = mc.std;
        }
        return this->request(evaluation<T, S>{x, alpha_, sigma_, prediction::score, out, {}, {}, 0, "t", eval_t_});
    }
    // After a score request: x₀ = (x + σ²s)/α (Tweedie's formula) when the preview is on; what to report.
    tensor_view<const T, S> tweedie(tensor_view<const T, S> x, tensor_view<const T, S> s) {
        if (!preview_) return {};
        for (std::size_t b = 0; b < alpha_.size(); ++b) {
            c2_[b] = 1.0 / alpha_[b];
            c3_[b] = sigma_[b] * sigma_[b] / alpha_[b];
        }
        lincomb(x0_.v(), per_sample(c2_), x, per_sample(c3_), s);
        return x0_.v();
    }
    // The reference's noise_removal: one noise-free reverse-diffusion step x ← (1 − f)x + G²s at the grid's
    // end time (end_times(), the score requested there).
    [[nodiscard]] std::span<const double> end_times() {
        grid_.column(grid_.steps(), end_t_);
        return end_t_;
    }
    void remove_noise(tensor_view<T, S> x, tensor_view<const T, S> s) {
        pc_options o;
        o.predictor = sde_predictor::reverse_diffusion;
        for (std::size_t b = 0; b < end_t_.size(); ++b) {
            const auto c = pc_predictor_coefficients(sde_, o, end_t_[b], end_t_[b]);
            c0_[b] = c.c0;
            c1_[b] = c.c1;
        }
        lincomb(x, per_sample(c0_), x, per_sample(c1_), s);
    }

    Sde sde_;
    time_grid grid_;
    std::vector<double> eval_t_, alpha_, sigma_, end_t_;
    std::vector<double> c0_, c1_, c2_, c3_;  // per-sample coefficients of the step's lincombs
    workspace<T, S> x0_;
    bool preview_ = true;
};

}  // namespace detail

// Predictor–corrector sampling (Song et al. 2021, Algorithm 1 with the predictors/correctors above). One step
// at t_i: n_steps corrector moves x ← x + ε s + √(2ε) z (skipped for corrector none), then the predictor from
// t_i to t_{i+1} (noise-free in the last step when denoise). x holds a prior sample x(t_0) on entry.
template <class T, class Sde, class Noise = counter_noise, memory_space S = memory_space::host>
class pc_stepper : public detail::sde_stepper<pc_stepper<T, Sde, Noise, S>, T, Sde, S> {
    using base = detail::sde_stepper<pc_stepper<T, Sde, Noise, S>, T, Sde, S>;
    friend class stepper<pc_stepper<T, Sde, Noise, S>, T, S>;

public:
    pc_stepper(batch_shape shape, const Sde& sde, const time_grid& grid, const pc_options& opt = {}, Noise noise = {})
        : base(shape, sde, grid, "sample_pc"), opt_(opt), noise_(std::forward<Noise>(noise)), t_(shape.batch),
          values_(detail::corrector_values<S>::rows * shape.batch), score_(detail::workspace<T, S>(shape)),
          z_(detail::workspace<T, S>(shape)) {
        const char* where = this->where();
        detail::require(std::isfinite(opt_.snr) && opt_.snr > 0, where, "snr", opt_.snr, "(0, inf)");
        detail::require(opt_.corrector == sde_corrector::none || opt_.n_steps >= 1, where, "n_steps", opt_.n_steps,
                        ">= 1 with a corrector");
        detail::require(!(opt_.probability_flow && opt_.predictor == sde_predictor::ancestral), where, "probability_flow",
                        "true", "false with the ancestral predictor");
        if constexpr (!std::is_same_v<Sde, vp_sde> && !std::is_same_v<Sde, ve_sde>)
            if (opt_.predictor == sde_predictor::ancestral)
                detail::fail(where, "the ancestral predictor supports the VP and VE SDEs only");
    }
    [[nodiscard]] const pc_options& options() const noexcept { return opt_; }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        const std::size_t i = this->step_index();
        const auto s = score_.v(), z = z_.v();
        this->grid_.column(i, t_);
        tensor_view<const T, S> x0{};
        if (opt_.corrector != sde_corrector::none) {
            for (std::size_t j = 0; j < opt_.n_steps; ++j) {
                co_await this->score(x, t_, s);
                if (opt_.predictor == sde_predictor::none && j + 1 == opt_.n_steps) x0 = this->tweedie(x, s);
                noise_(z, draw_++);
                const detail::corrector_values<S> v{values_.view(detail::corrector_values<S>::rows, t_.size())};
                detail::corrector_step_size(this->sde_, opt_, tensor_view<const T, S>(s), tensor_view<const T, S>(z), t_,
                                            this->sigma_, this->c0_, v);
                detail::langevin_move(x, s, z, per_sample(v.eps()), per_sample(v.root()));
            }
        }
        if (opt_.predictor != sde_predictor::none) {
            co_await this->score(x, t_, s);
            x0 = this->tweedie(x, s);
            auto &c0 = this->c0_, &c1 = this->c1_, &c2 = this->c2_;
            for (std::size_t b = 0; b < t_.size(); ++b) {
                const auto c = detail::pc_predictor_coefficients(this->sde_, opt_, t_[b], this->grid_(i + 1, b));
                c0[b] = c.c0;
                c1[b] = c.c1;
                c2[b] = c.c2;
            }
            const bool noise_free = opt_.probability_flow || (opt_.denoise && i + 1 == this->steps());
            if (noise_free) {
                lincomb(x, per_sample(c0), x, per_sample(c1), s);
            } else {
                noise_(z, draw_++);
                lincomb(x, per_sample(c0), x, per_sample(c1), s, per_sample(c2), z);
            }
        }
        this->report(t_, x0);
    }

    pc_options opt_;
    Noise noise_;
    std::uint64_t draw_ = 0;  // noise draws so far: draw k of the run is the k-th call of the source
    std::vector<double> t_;
    space_buffer<double, S> values_;  // the corrector's per-sample values (detail::corrector_values)
    detail::workspace<T, S> score_, z_;
};

// The one-call form: x holds a prior sample x(t_0) on entry (sample_prior) and the sample on return.
template <class Model, class X, class Sde, class Noise = counter_noise, class Obs = no_observer>
void sample_pc(Model& m, X&& x, const Sde& sde, const time_grid& grid, const pc_options& opt = {}, Noise&& noise = {},
               Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    pc_stepper<detail::sampler_value_t<X>, Sde, Noise&, detail::sampler_space_v<X>> s(shape_of(x), sde, grid, opt, noise);
    s.preview_denoised(detail::observed<Obs>);
    run(s, m, std::forward<X>(x), obs);
}

// Predictor-only special cases (Song et al. 2021, §4.2).
template <class Model, class X, class Sde, class Noise = counter_noise, class Obs = no_observer>
void sample_euler_maruyama(Model& m, X&& x, const Sde& sde, const time_grid& grid, pc_options opt = {},
                           Noise&& noise = {}, Obs&& obs = {}) {
    opt.predictor = sde_predictor::euler_maruyama;
    opt.corrector = sde_corrector::none;
    sample_pc(m, std::forward<X>(x), sde, grid, opt, std::forward<Noise>(noise), std::forward<Obs>(obs));
}
template <class Model, class X, class Sde, class Noise = counter_noise, class Obs = no_observer>
void sample_reverse_diffusion(Model& m, X&& x, const Sde& sde, const time_grid& grid, pc_options opt = {},
                              Noise&& noise = {}, Obs&& obs = {}) {
    opt.predictor = sde_predictor::reverse_diffusion;
    opt.corrector = sde_corrector::none;
    sample_pc(m, std::forward<X>(x), sde, grid, opt, std::forward<Noise>(noise), std::forward<Obs>(obs));
}
template <class Model, class X, class Sde, class Noise = counter_noise, class Obs = no_observer>
void sample_sde_ancestral(Model& m, X&& x, const Sde& sde, const time_grid& grid, pc_options opt = {},
                          Noise&& noise = {}, Obs&& obs = {}) {
    opt.predictor = sde_predictor::ancestral;
    opt.corrector = sde_corrector::none;
    sample_pc(m, std::forward<X>(x), sde, grid, opt, std::forward<Noise>(noise), std::forward<Obs>(obs));
}

// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): for each noise level σ_i of the grid
// (every point, σ_1 > … > σ_L), n_steps_each moves x ← x + α_i s + √(2α_i) z with α_i = ε·σ_i²/σ_L²
// (ε = step_lr); `denoise` adds the final x ← x + σ_L² s(x, σ_L) of NCSNv2 (Song & Ermon 2020, §4.1
// and Appendix; Tweedie's formula), inside the last step. The model is asked for the score of the VE state
// x (α = 1, σ = σ_i). One step = one level; draw number of level c, move j: c·n_steps_each + j.
struct annealed_langevin_options {
    double step_lr = 2e-5;          // ε
    std::size_t n_steps_each = 100; // T of Algorithm 1
    bool denoise = false;
};

template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class annealed_langevin_stepper : public stepper<annealed_langevin_stepper<T, Noise, S>, T, S> {
    friend class stepper<annealed_langevin_stepper<T, Noise, S>, T, S>;

public:
    annealed_langevin_stepper(batch_shape shape, const time_grid& sigmas, const annealed_langevin_options& opt = {},
                              Noise noise = {})
        : stepper<annealed_langevin_stepper<T, Noise, S>, T, S>(shape.batch, shape.per_sample, "sample_annealed_langevin"),
          grid_(sigmas), opt_(opt), noise_(std::forward<Noise>(noise)), sigma_(shape.batch), ones_(shape.batch, 1.0),
          step_(shape.batch), root_(shape.batch), sq_(shape.batch),
          score_(detail::workspace<T, S>(shape)),
          z_(detail::workspace<T, S>(shape)),
          x0_(detail::workspace<T, S>(shape)) {
        const char* where = this->where();
        detail::require(std::isfinite(opt_.step_lr) && opt_.step_lr > 0, where, "step_lr", opt_.step_lr, "(0, inf)");
        detail::require(opt_.n_steps_each >= 1, where, "n_steps_each", opt_.n_steps_each, ">= 1");
        grid_.check_batch(shape.batch, where);
        for (std::size_t b = 0; b < grid_.rows(); ++b)
            for (std::size_t c = 0; c < steps(); ++c)
                detail::require(grid_(c, b) > 0 && std::isfinite(grid_(c, b)), where, "sigma", grid_(c, b), "(0, inf)");
    }
    // Every point of the grid is a noise level.
    [[nodiscard]] std::size_t steps() const noexcept { return grid_.steps() + 1; }
    [[nodiscard]] const time_grid& grid() const noexcept { return grid_; }
    // Whether each step computes the x₀ = x + σ²s (Tweedie) an observer is shown; see sde_stepper.
    void preview_denoised(bool on) noexcept { preview_ = on; }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        const std::size_t c = this->step_index(), last = steps() - 1;
        const auto s = score_.v(), z = z_.v();
        grid_.column(c, sigma_);
        for (std::size_t b = 0; b < sigma_.size(); ++b) {
            const double r = grid_(c, b) / grid_(last, b);
            step_[b] = opt_.step_lr * r * r;  // α_i = ε σ_i² / σ_L²
            root_[b] = std::sqrt(2.0 * step_[b]);
            sq_[b] = sigma_[b] * sigma_[b];
        }
        tensor_view<const T, S> x0{};
        for (std::size_t j = 0; j < opt_.n_steps_each; ++j) {
            co_await score(x, s);
            if (preview_ && j + 1 == opt_.n_steps_each) {  // x₀ = x + σ² s (Tweedie)
                lincomb(x0_.v(), 1.0, x, per_sample(sq_), s);
                x0 = x0_.v();
            }
            noise_(z, draw_++);
            detail::langevin_move(x, s, z, per_sample(step_), per_sample(root_));
        }
        if (opt_.denoise && c == last) {  // x ← x + σ_L² s(x, σ_L)
            co_await score(x, s);
            lincomb(x, 1.0, x, per_sample(sq_), s);
        }
        this->report(sigma_, x0);
    }
    // co_await score(x, out): out = ∇log p(x; σ_i) of the VE state x (α = 1).
    std::suspend_always score(tensor_view<const T, S> x, tensor_view<T, S> out) {
        return this->request(evaluation<T, S>{x, ones_, sigma_, prediction::score, out, {}, {}, 0, "sigma", sigma_});
    }

    time_grid grid_;
    annealed_langevin_options opt_;
    Noise noise_;
    std::uint64_t draw_ = 0;  // noise draws so far: draw k of the run is the k-th call of the source
    std::vector<double> sigma_, ones_, step_, root_, sq_;
    detail::workspace<T, S> score_, z_, x0_;
    bool preview_ = true;
};

template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_annealed_langevin(Model& m, X&& x, const time_grid& sigmas, const annealed_langevin_options& opt = {},
                              Noise&& noise = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    annealed_langevin_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), sigmas, opt, noise);
    s.preview_denoised(detail::observed<Obs>);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
