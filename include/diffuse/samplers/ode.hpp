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
// noise_removal), inside the last step.
//
// Steppers (samplers/stepper.hpp; one step = one grid interval): pf_ode_euler_stepper<T, Sde, S>,
// pf_ode_heun_stepper<T, Sde, S> and pf_ode_rk45_stepper<T, Sde, S> (which integrates its interval adaptively
// inside the step — several attempts, each seven model calls or fewer — and keeps the controller and the
// ode_stats, stats()). The one-call forms take (model, x, sde, grid, options, noise = no_noise{}, observer).
// A model that reads this SDE's own time is given the exact t in pull mode (sde_stepper::fulfil).

#include <algorithm>
#include <cmath>
#include <cstddef>
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

// The probability-flow steppers: an SDE stepper whose grid ends inside (0, T].
template <class Derived, class T, class Sde, memory_space S = memory_space::host>
class pf_ode_stepper : public sde_stepper<Derived, T, Sde, S> {
protected:
    pf_ode_stepper(batch_shape shape, const Sde& sde, const time_grid& grid, const char* where)
        : sde_stepper<Derived, T, Sde, S>(shape, sde, grid, where) {
        ode_check_grid(this->sde_, this->grid_, shape.batch, where);
    }
    // After the score s at (y, t) was written into out: out = dx/dt = f(t)·y − ½g(t)²·s (eq. 13).
    void drift(tensor_view<const T, S> y, std::span<const double> t, tensor_view<T, S> out) {
        for (std::size_t b = 0; b < t.size(); ++b) {
            const double g = this->sde_.diffusion(t[b]);
            this->c0_[b] = this->sde_.drift_coef(t[b]);
            this->c1_[b] = -0.5 * g * g;
        }
        lincomb(out, per_sample(this->c0_), y, per_sample(this->c1_), out);
    }
};

}  // namespace detail

// Explicit Euler on the probability-flow ODE: x_{i+1} = x_i + Δt·(f x_i − ½g² s(x_i, t_i)).
template <class T, class Sde, memory_space S = memory_space::host>
class pf_ode_euler_stepper : public detail::pf_ode_stepper<pf_ode_euler_stepper<T, Sde, S>, T, Sde, S> {
    using base = detail::pf_ode_stepper<pf_ode_euler_stepper<T, Sde, S>, T, Sde, S>;
    friend class stepper<pf_ode_euler_stepper<T, Sde, S>, T, S>;

public:
    pf_ode_euler_stepper(batch_shape shape, const Sde& sde, const time_grid& grid, const pf_ode_options& opt = {})
        : base(shape, sde, grid, "sample_pf_ode_euler"), opt_(opt), t_(shape.batch),
          score_(detail::workspace<T, S>(shape)) {}

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        const std::size_t i = this->step_index();
        const auto s = score_.v();
        this->grid_.column(i, t_);
        co_await this->score(x, t_, s);
        const auto x0 = this->tweedie(x, s);
        for (std::size_t b = 0; b < t_.size(); ++b) {
            const double t = t_[b], dt = this->grid_(i + 1, b) - t, g = this->sde_.diffusion(t);
            this->c0_[b] = 1.0 + this->sde_.drift_coef(t) * dt;
            this->c1_[b] = -0.5 * g * g * dt;
        }
        lincomb(x, per_sample(this->c0_), x, per_sample(this->c1_), s);
        if (opt_.denoise && i + 1 == this->steps()) {
            co_await this->score(x, this->end_times(), s);
            this->remove_noise(x, s);
        }
        this->report(t_, x0);
    }

    pf_ode_options opt_;
    std::vector<double> t_;
    detail::workspace<T, S> score_;
};

// Heun (explicit trapezoidal rule): x̃ = x + Δt·d(x, t_i);  x_{i+1} = x + Δt/2·(d(x, t_i) + d(x̃, t_{i+1}))
// with d(x, t) = f(t)x − ½g(t)²s(x, t); written as one lincomb of x, s(x), x̃, s(x̃).
template <class T, class Sde, memory_space S = memory_space::host>
class pf_ode_heun_stepper : public detail::pf_ode_stepper<pf_ode_heun_stepper<T, Sde, S>, T, Sde, S> {
    using base = detail::pf_ode_stepper<pf_ode_heun_stepper<T, Sde, S>, T, Sde, S>;
    friend class stepper<pf_ode_heun_stepper<T, Sde, S>, T, S>;

public:
    pf_ode_heun_stepper(batch_shape shape, const Sde& sde, const time_grid& grid, const pf_ode_options& opt = {})
        : base(shape, sde, grid, "sample_pf_ode_heun"), opt_(opt), t0_(shape.batch), t1_(shape.batch), f1_(shape.batch),
          a1_(shape.batch), s1_(detail::workspace<T, S>(shape)),
          s2_(detail::workspace<T, S>(shape)),
          xt_(detail::workspace<T, S>(shape)) {}

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        const std::size_t i = this->step_index();
        const auto s1 = s1_.v(), s2 = s2_.v(), xt = xt_.v();
        auto &c0 = this->c0_, &c1 = this->c1_, &c2 = this->c2_, &c3 = this->c3_;
        this->grid_.column(i, t0_);
        this->grid_.column(i + 1, t1_);
        co_await this->score(x, t0_, s1);
        const auto x0 = this->tweedie(x, s1);  // the observer sees the x₀ of the step's start
        for (std::size_t b = 0; b < t0_.size(); ++b) {
            const double t = t0_[b], dt = t1_[b] - t, g = this->sde_.diffusion(t);
            f1_[b] = this->sde_.drift_coef(t);
            a1_[b] = -0.5 * g * g;
            c0[b] = 1.0 + f1_[b] * dt;
            c1[b] = a1_[b] * dt;
        }
        lincomb(xt, per_sample(c0), x, per_sample(c1), s1);  // Euler predictor
        co_await this->score(xt, t1_, s2);
        for (std::size_t b = 0; b < t0_.size(); ++b) {
            const double h = 0.5 * (t1_[b] - t0_[b]), g = this->sde_.diffusion(t1_[b]);
            c0[b] = 1.0 + h * f1_[b];
            c1[b] = h * a1_[b];
            c2[b] = h * this->sde_.drift_coef(t1_[b]);
            c3[b] = h * (-0.5 * g * g);
        }
        lincomb(x, per_sample(c0), x, per_sample(c1), s1, per_sample(c2), xt, per_sample(c3), s2);
        if (opt_.denoise && i + 1 == this->steps()) {
            co_await this->score(x, this->end_times(), s1);
            this->remove_noise(x, s1);
        }
        this->report(t0_, x0);
    }

    pf_ode_options opt_;
    std::vector<double> t0_, t1_, f1_, a1_;
    detail::workspace<T, S> s1_, s2_, xt_;
};

// Adaptive Dormand–Prince RK45 (samplers/dopri5.hpp) through one grid interval per step; the first step also
// chooses the initial step size. stats(): model calls (the final denoise included) and accepted / rejected
// attempts so far.
template <class T, class Sde, memory_space S = memory_space::host>
class pf_ode_rk45_stepper : public detail::pf_ode_stepper<pf_ode_rk45_stepper<T, Sde, S>, T, Sde, S> {
    using base = detail::pf_ode_stepper<pf_ode_rk45_stepper<T, Sde, S>, T, Sde, S>;
    friend class stepper<pf_ode_rk45_stepper<T, Sde, S>, T, S>;

public:
    pf_ode_rk45_stepper(batch_shape shape, const Sde& sde, const time_grid& grid, const rk45_options& opt = {})
        : base(shape, sde, grid, "sample_pf_ode_rk45"), opt_(opt),
          ode_(shape.batch, shape.per_sample, opt, -1.0 /* the grid decreases (checked) */, this->where()),
          t_(shape.batch), bound_(shape.batch), t_start_(shape.batch),
          score_(detail::workspace<T, S>(shape)) {
        if (opt_.norm == rk_error_norm::batch && !grid.shared())
            detail::fail(this->where(), "norm = batch integrates the batch as one system and needs a shared time grid");
    }
    [[nodiscard]] ode_stats stats() const noexcept {
        ode_stats st = ode_.stats();
        st.nfe += denoise_calls_;
        return st;
    }

private:
    detail::step_task run_step(tensor_view<T, S> y) {
        const std::size_t i = this->step_index();
        this->grid_.column(i, t_);
        this->grid_.column(i + 1, bound_);
        std::copy(t_.begin(), t_.end(), t_start_.begin());
        if (i == 0) {  // K_1 = f(y, t_0) and the first step size (Hairer, Nørsett & Wanner §II.4)
            const auto k1 = ode_.start_call(y, t_);
            co_await this->score(k1.at, k1.times, k1.out);
            this->drift(k1.at, k1.times, k1.out);
            if (ode_.start_probe(y, t_, bound_)) {
                const auto k2 = ode_.probe_call();
                co_await this->score(k2.at, k2.times, k2.out);
                this->drift(k2.at, k2.times, k2.out);
                ode_.start_finish(y, t_, bound_);
            }
        }
        ode_.begin_interval(t_, bound_, i);
        while (ode_.next_attempt(t_, bound_)) {  // accept/reject loop until every sample lands on t_{i+1}
            for (std::size_t s = 1; s <= 6; ++s) {
                const auto k = s < 6 ? ode_.stage_call(s, y, t_) : ode_.solution_call(y);
                co_await this->score(k.at, k.times, k.out);
                this->drift(k.at, k.times, k.out);
            }
            ode_.finish_attempt(y, t_, bound_);
        }
        if (opt_.denoise && i + 1 == this->steps()) {
            const auto s = score_.v();
            co_await this->score(y, this->end_times(), s);
            this->remove_noise(y, s);
            ++denoise_calls_;
        }
        this->report(t_start_, {});
    }

    rk45_options opt_;
    dopri5_integrator<T, S> ode_;
    std::vector<double> t_, bound_, t_start_;
    detail::workspace<T, S> score_;
    std::size_t denoise_calls_ = 0;
};

// The one-call forms: x holds x(t_0) on entry and the sample on return. Deterministic: the noise slot takes
// no_noise (the default).
template <class Model, class X, class Sde, class Noise = no_noise, class Obs = no_observer>
void sample_pf_ode_euler(Model& m, X&& x, const Sde& sde, const time_grid& grid, const pf_ode_options& opt = {},
                         Noise&& = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    pf_ode_euler_stepper<detail::sampler_value_t<X>, Sde, detail::sampler_space_v<X>> s(shape_of(x), sde, grid, opt);
    s.preview_denoised(detail::observed<Obs>);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Sde, class Noise = no_noise, class Obs = no_observer>
void sample_pf_ode_heun(Model& m, X&& x, const Sde& sde, const time_grid& grid, const pf_ode_options& opt = {},
                        Noise&& = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    pf_ode_heun_stepper<detail::sampler_value_t<X>, Sde, detail::sampler_space_v<X>> s(shape_of(x), sde, grid, opt);
    s.preview_denoised(detail::observed<Obs>);
    run(s, m, std::forward<X>(x), obs);
}
// Returns the number of model calls and steps.
template <class Model, class X, class Sde, class Noise = no_noise, class Obs = no_observer>
ode_stats sample_pf_ode_rk45(Model& m, X&& x, const Sde& sde, const time_grid& grid, const rk45_options& opt = {},
                             Noise&& = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    pf_ode_rk45_stepper<detail::sampler_value_t<X>, Sde, detail::sampler_space_v<X>> s(shape_of(x), sde, grid, opt);
    run(s, m, std::forward<X>(x), obs);
    return s.stats();
}

}  // namespace diffuse
