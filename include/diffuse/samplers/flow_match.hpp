#pragma once
// Flow-matching samplers (rectified flow: SD3, Flux): diffusers' FlowMatchEulerDiscreteScheduler and
// FlowMatchHeunDiscreteScheduler as steppers (samplers/stepper.hpp).
//
// The state is the flow state x = (1 − s)·x₀ + s·ε with s ∈ [0, 1] (α = 1 − s, σ = s); a flow network predicts
// the velocity u = ε − x₀ = dx/ds, and sampling integrates the ODE dx/ds = u(x, s) from s = 1 (x = ε, pure
// noise) to s = 0 (Liu et al. 2023, "Flow Straight and Fast"; Lipman et al. 2023, "Flow Matching"; Esser et al.
// 2024, SD3). The grid holds s_0 … s_N (schedules/flow.hpp: flow_match_sigmas), usually from 1 to 0; x enters
// as the noise z itself (no scaling) and leaves as the sample.
//
// The steppers ask the model for prediction::flow_velocity at (α, σ) = (1 − s, s); a diffuse::model converts
// whatever its network predicts, so an ε- or v-network (or a flow network through flow_time) drives them.
//
//   flow_euler_stepper / sample_flow_euler   x ← x + (s_{i+1} − s_i)·u; with stochastic_sampling
//                                            x ← (1 − s_{i+1})·x̂₀ + s_{i+1}·z, x̂₀ = x − s_i·u (diffusers' step)
//   flow_heun_stepper / sample_flow_heun     Heun (trapezoidal) steps with the churn of Karras et al. 2022,
//                                            Algorithm 2; the last step into s = 0 is Euler (diffusers' layout
//                                            [s_0, s_1, s_1, …, s_{N−1}, s_{N−1}, 0])
//
// The installed diffusers (0.42) accepts s_churn, s_tmin, s_tmax, s_noise in FlowMatchEuler's step() but
// ignores them; FlowMatchHeun uses them. Its churn noise is added after the model call (the network sees
// the state before the churn) and its corrector stage draws a second noise tensor that it discards:
// flow_heun_options::corrector_draw keeps that draw numbering (true, as diffusers) or skips it.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"
#include "diffuse/samplers/stepper.hpp"

namespace diffuse {

// FlowMatchEulerDiscreteScheduler.step's options. timesteps: the network time of each of the N steps as the
// reference feeds it (diffusers: float32 σ·T); empty: the model derives it from s.
struct flow_euler_options {
    bool stochastic_sampling = false;
    std::vector<double> timesteps{};
};

// FlowMatchHeunDiscreteScheduler.step's options: churn γ = min(s_churn/(2N − 1), √2 − 1) for s_i in
// [s_tmin, s_tmax] (2N − 1 = the scheduler's number of model calls), ŝ = s_i(1 + γ).
struct flow_heun_options {
    double s_churn = 0.0;
    double s_tmin = 0.0;
    double s_tmax = std::numeric_limits<double>::infinity();
    double s_noise = 1.0;
    bool corrector_draw = true;  // draw (and discard) the corrector stage's churn noise, as diffusers does
    std::vector<double> timesteps{};
};

namespace detail {

// A grid level may exceed 1 by float32 rounding: diffusers' float32 shift of σ = 1 can give 1 + 2⁻²³.
inline constexpr double flow_level_slack = 1e-6;

// Every point of a flow grid lies in [0, 1]; a row is monotone (from noise to data, or the inverted grid of
// invert_sigmas from data to noise).
inline void check_flow_grid(const time_grid& grid, std::size_t batch, const char* where) {
    grid.check_batch(batch, where);
    const std::size_t rows = grid.shared() ? 1 : batch;
    for (std::size_t b = 0; b < rows; ++b) {
        const auto point = [&](std::size_t i) {
            return "s[" + std::to_string(i) + "]" + (rows > 1 ? " of row " + std::to_string(b) : std::string());
        };
        const bool rising = grid(grid.steps(), b) > grid(0, b);
        for (std::size_t i = 0; i <= grid.steps(); ++i) {
            const double s = grid(i, b);
            if (!(s >= 0 && s <= 1 + flow_level_slack))
                require(false, where, point(i), s, "[0, 1] (a flow-matching noise level, up to float32 rounding)");
            if (i > 0 && (rising ? s < grid(i - 1, b) : s > grid(i - 1, b)))
                require(false, where, point(i), s,
                        std::string(rising ? ">= " : "<= ") + point(i - 1) + " = " + std::to_string(grid(i - 1, b)) +
                            " (a flow grid is monotone)");
        }
    }
}

inline void check_flow_timesteps(std::span<const double> t, std::size_t evaluations, const char* where) {
    if (t.empty()) return;
    require(t.size() == evaluations, where, "timesteps.size()", t.size(),
            "0 or the number of grid steps " + std::to_string(evaluations));
    for (std::size_t i = 0; i < t.size(); ++i)
        if (!std::isfinite(t[i])) require(false, where, "timesteps[" + std::to_string(i) + "]", t[i], "finite");
}

// The common part of the flow steppers: the grid, the per-step columns s_i, s_{i+1}, the noise source and
// its draw counter, and the velocity u(x, s) as a request.
template <class Derived, class T, class Noise, memory_space S = memory_space::host>
class flow_stepper : public stepper<Derived, T, S> {
public:
    [[nodiscard]] std::size_t steps() const noexcept { return grid_.steps(); }
    [[nodiscard]] const time_grid& grid() const noexcept { return grid_; }

protected:
    flow_stepper(batch_shape shape, const time_grid& grid, std::vector<double> timesteps, Noise noise, const char* where)
        : stepper<Derived, T, S>(shape.batch, shape.per_sample, where), grid_(grid), timesteps_(std::move(timesteps)),
          noise(std::forward<Noise>(noise)), s(shape.batch), s_next(shape.batch), hat(shape.batch), c0(shape.batch),
          c1(shape.batch), c2(shape.batch), c3(shape.batch), at_(shape.batch), alpha_(shape.batch), t_(shape.batch) {
        check_flow_grid(grid_, shape.batch, where);
        check_flow_timesteps(timesteps_, grid_.steps(), where);
    }

    // co_await this->velocity(x, s, out, i): out = u(x, s), the flow velocity at the flow state x of level s
    // (per sample), with the network time of step i when the options list them. The request's α = 1 − s, σ = s.
    std::suspend_always velocity(tensor_view<const T, S> x, std::span<const double> level, tensor_view<T, S> out, std::size_t i) {
        for (std::size_t b = 0; b < level.size(); ++b) {  // a level rounded above 1 is evaluated at 1
            at_[b] = std::min(level[b], 1.0);
            alpha_[b] = 1.0 - at_[b];
        }
        std::span<const double> t_net{};
        if (!timesteps_.empty()) {
            std::fill(t_.begin(), t_.end(), timesteps_[i]);
            t_net = t_;
        }
        return this->request(evaluation<T, S>{x, alpha_, at_, prediction::flow_velocity, out, t_net, {}, 0, "s", at_});
    }
    void load_step() {
        grid_.column(this->step_index(), s);
        grid_.column(this->step_index() + 1, s_next);
    }
    // x̂₀ = x − s·u, for the observer (and the stochastic step).
    void denoised(const tensor_view<T, S>& out, const tensor_view<T, S>& x, std::span<const double> level, const tensor_view<T, S>& u) {
        for (std::size_t b = 0; b < level.size(); ++b) c3[b] = -level[b];
        lincomb(out, 1.0, x, per_sample(c3), u);
    }

    time_grid grid_;
    std::vector<double> timesteps_;
    Noise noise;
    std::uint64_t draw = 0;  // noise draws so far
    std::vector<double> s, s_next, hat, c0, c1, c2, c3;

private:
    std::vector<double> at_, alpha_, t_;
};

}  // namespace detail

// FlowMatchEulerDiscreteScheduler.step: Euler on dx/ds = u, x_{i+1} = x_i + (s_{i+1} − s_i)·u(x_i, s_i); with
// stochastic_sampling the state is re-noised to the next level instead, x_{i+1} = (1 − s_{i+1})·x̂₀ + s_{i+1}·z
// (one draw per step; none into s = 0, where its coefficient vanishes).
template <class T, class Noise = no_noise, memory_space S = memory_space::host>
class flow_euler_stepper : public detail::flow_stepper<flow_euler_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::flow_stepper<flow_euler_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<flow_euler_stepper<T, Noise, S>, T, S>;

public:
    flow_euler_stepper(batch_shape shape, const time_grid& grid, const flow_euler_options& opt = {}, Noise noise = {})
        : base(shape, grid, opt.timesteps, std::forward<Noise>(noise), "sample_flow_euler"), stochastic_(opt.stochastic_sampling),
          u_(shape), den_(shape), eps_(shape) {
        if constexpr (std::is_same_v<std::remove_cvref_t<Noise>, no_noise>)
            if (stochastic_)
                detail::fail("sample_flow_euler", "stochastic_sampling draws noise: pass a noise source (counter_noise, recorded_noise), not no_noise");
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        this->load_step();
        const auto u = u_.v(), den = den_.v();
        co_await this->velocity(x, this->s, u, this->step_index());
        this->denoised(den, x, this->s, u);
        if (stochastic_) {
            for (std::size_t b = 0; b < this->batch(); ++b) {
                this->c0[b] = 1.0 - this->s_next[b];
                this->c1[b] = this->s_next[b];
            }
            detail::update_with_noise(this->noise, x, eps_.v(), this->draw, this->s, this->s_next, this->c1,
                                      per_sample(this->c0), den);
        } else {
            for (std::size_t b = 0; b < this->batch(); ++b) this->c0[b] = this->s_next[b] - this->s[b];
            lincomb(x, 1.0, x, per_sample(this->c0), u);  // x + dt·u
        }
        this->report(this->s, den);
    }
    bool stochastic_;
    detail::workspace<T, S> u_, den_, eps_;
};

// FlowMatchHeunDiscreteScheduler: with ŝ = s_i(1 + γ) and x̂ = x_i + s_noise·√(ŝ² − s_i²)·z (after the model
// call u₁ = u(x_i, s_i)), the derivative d₁ = (x̂ − x̂₀)/ŝ = u₁·s_i/ŝ, the predictor x' = x̂ + (s_{i+1} − ŝ)·d₁,
// u₂ = u(x', s_{i+1}) and the trapezoidal corrector x_{i+1} = x̂ + (s_{i+1} − ŝ)·(d₁ + u₂)/2 (Karras et al. 2022,
// Algorithm 2, lines 5–11, in the flow variable). Into s_{i+1} = 0 the Euler step alone. Rows of a per-sample grid
// whose s_{i+1} = 0 sit out the second evaluation (evaluated at ŝ and ignored).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class flow_heun_stepper : public detail::flow_stepper<flow_heun_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::flow_stepper<flow_heun_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<flow_heun_stepper<T, Noise, S>, T, S>;

public:
    flow_heun_stepper(batch_shape shape, const time_grid& grid, const flow_heun_options& opt = {}, Noise noise = {})
        : base(shape, grid, opt.timesteps, std::forward<Noise>(noise), "sample_flow_heun"), opt_(opt), u_(shape), den_(shape),
          x2_(shape), u2_(shape), eps_(shape), next_(shape.batch) {
        constexpr const char* where = "sample_flow_heun";
        detail::require(opt.s_churn >= 0 && std::isfinite(opt.s_churn), where, "s_churn", opt.s_churn, "[0, inf)");
        detail::require(opt.s_tmin <= opt.s_tmax && !std::isnan(opt.s_tmin), where, "s_tmin", opt.s_tmin, "[-inf, s_tmax]");
        detail::require(opt.s_noise >= 0 && std::isfinite(opt.s_noise), where, "s_noise", opt.s_noise, "[0, inf)");
        for (std::size_t b = 0; b < (grid.shared() ? 1 : shape.batch); ++b)
            for (std::size_t i = 0; i < grid.steps(); ++i)
                if (!(grid(i + 1, b) <= grid(i, b)))
                    detail::require(false, where, "s[" + std::to_string(i + 1) + "]", grid(i + 1, b),
                                    "<= s[" + std::to_string(i) + "] (Heun integrates from noise to data)");
    }

private:
    // γ of diffusers' step: min(s_churn/(2N − 1), √2 − 1) inside [s_tmin, s_tmax]. Writes ŝ into hat and the
    // churn noise coefficients into c2; true when any row is churned.
    bool churn_levels() {
        const double calls = 2.0 * double(this->steps()) - 1.0;
        const double gamma_max = std::min(opt_.s_churn / calls, std::sqrt(2.0) - 1.0);
        bool any = false;
        for (std::size_t b = 0; b < this->batch(); ++b) {
            const double s = this->s[b];
            const double gamma = (opt_.s_tmin <= s && s <= opt_.s_tmax) ? gamma_max : 0.0;
            this->hat[b] = s * (gamma + 1.0);
            this->c2[b] = gamma > 0 ? opt_.s_noise * std::sqrt(this->hat[b] * this->hat[b] - s * s) : 0.0;
            any = any || gamma > 0;
        }
        return any;
    }

    detail::step_task run_step(tensor_view<T, S> x) {
        this->load_step();
        const auto u = u_.v(), den = den_.v(), x2 = x2_.v(), u2 = u2_.v(), eps = eps_.v();
        const std::size_t i = this->step_index();
        co_await this->velocity(x, this->s, u, i);
        this->denoised(den, x, this->s, u);
        const bool churned = churn_levels();
        if (churned) {  // x̂ = x + s_noise·√(ŝ² − s²)·z
            detail::draw_noise(this->noise, eps, this->draw++, this->s, this->hat);
            lincomb(x, 1.0, x, per_sample(this->c2), eps);
        }
        bool second = false;
        for (std::size_t b = 0; b < this->batch(); ++b) {
            // d₁·dt = u₁·(s/ŝ)·dt (a row already at s = 0 stays)
            this->c0[b] = this->hat[b] > 0 ? this->s[b] / this->hat[b] * (this->s_next[b] - this->hat[b]) : 0.0;
            second = second || this->s_next[b] > 0;
        }
        if (!second) {
            lincomb(x, 1.0, x, per_sample(this->c0), u);
        } else {
            lincomb(x2, 1.0, x, per_sample(this->c0), u);  // predictor (Algorithm 2, line 8)
            for (std::size_t b = 0; b < this->batch(); ++b) next_[b] = this->s_next[b] > 0 ? this->s_next[b] : this->hat[b];
            co_await this->velocity(x2, next_, u2, std::min(i + 1, this->steps() - 1));  // diffusers: t_{i+1}
            if (churned && opt_.corrector_draw) detail::draw_noise(this->noise, eps, this->draw++, this->s, this->hat);
            for (std::size_t b = 0; b < this->batch(); ++b) {
                const double dt = this->s_next[b] - this->hat[b];
                if (this->s_next[b] > 0) {  // x̂ + dt/2·(d₁ + u₂)   (line 11)
                    this->c0[b] = this->hat[b] > 0 ? 0.5 * dt * this->s[b] / this->hat[b] : 0.0;
                    this->c1[b] = 0.5 * dt;
                } else {
                    this->c1[b] = 0.0;  // Euler (c0 already set)
                }
            }
            lincomb(x, 1.0, x, per_sample(this->c0), u, per_sample(this->c1), u2);
        }
        this->report(this->s, den);
    }
    flow_heun_options opt_;
    detail::workspace<T, S> u_, den_, x2_, u2_, eps_;
    std::vector<double> next_;
};

// The one-call forms: x enters as the noise z (s_0 = 1) or the flow state at s_0, and leaves as the sample.
template <class Model, class X, class Noise = no_noise, class Obs = no_observer>
void sample_flow_euler(Model& m, X&& x, const time_grid& grid, const flow_euler_options& opt = {}, Noise&& noise = {},
                       Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    flow_euler_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_flow_heun(Model& m, X&& x, const time_grid& grid, const flow_heun_options& opt = {}, Noise&& noise = {},
                      Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    flow_heun_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
