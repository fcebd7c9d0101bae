#pragma once
// Euler, Euler ancestral, Heun, DPM2 and DPM2 ancestral: the σ-space samplers of Karras et al. 2022
// ("Elucidating the Design Space of Diffusion-Based Generative Models", Algorithm 2) and of k-diffusion.
//
// The state is x = x₀ + σ·ε; the probability-flow ODE is dx/dσ = d(x, σ) = (x − D(x; σ))/σ
// (Karras et al. eq. 4 with s = 1, σ(t) = t). The grid holds σ_0 > … > σ_N (σ_N = 0 usually); x enters
// as σ_0·z (already scaled) and leaves as the sample.
//
// Each sampler is a stepper (samplers/stepper.hpp: euler_stepper, heun_stepper, dpm_2_stepper,
// euler_ancestral_stepper, dpm_2_ancestral_stepper) and a one-call sample_* over it:
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
//   - diffusers' EulerDiscreteScheduler evaluates the network before the churn, at (x_i, σ_i), and reads its
//     output at the churned (x̂, σ̂) (churn_order::diffusers, Euler only); Karras et al. and k-diffusion
//     evaluate D(x̂; σ̂) after it (churn_order::karras, the default). Without churn (γ = 0) they agree.
//   - diffusers' EDMEulerScheduler is euler_stepper on the EDM σ table (schedules/edm.hpp) with an EDM model
//     (samplers/model.hpp edm_time) and churn_order::diffusers with churn_options::diffusers_edm_sigma_data.
//   - Ancestral samplers add no noise into σ = 0 and cap σ_up at σ_next (k-diffusion; diffusers' Euler
//     ancestral computes the same σ_up, which is then ≤ σ_next anyway for η ≤ 1).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"

namespace diffuse {

// Stochastic "churn" of Karras et al. 2022, Algorithm 2: at σ_i ∈ [s_tmin, s_tmax] raise the noise level to
// σ̂ = σ_i(1 + γ), γ = min(s_churn/N, √2 − 1), by adding N(0, s_noise²(σ̂² − σ_i²)) noise.
// Where a churned Euler step evaluates the model.
enum class churn_order {
    karras,     // churn first, then D(x̂; σ̂) (Karras et al. 2022, Algorithm 2; k-diffusion's sample_euler)
    diffusers,  // D(x_i; σ_i) first, its network output then read at (x̂, σ̂) as diffusers' EulerDiscreteScheduler.step
};

struct churn_options {
    double s_churn = 0.0;
    double s_tmin = 0.0;
    double s_tmax = std::numeric_limits<double>::infinity();
    double s_noise = 1.0;
    bool noise_every_step = false;  // true: draw the churn noise at every step even when γ = 0 (k-diffusion)
    churn_order order = churn_order::karras;  // churn_order::diffusers: Euler only
    // With churn_order::diffusers: the network's prediction_type (epsilon, v or sample), which fixes how
    // diffusers reads the output at (x̂, σ̂).
    prediction diffusers_prediction = prediction::epsilon;
    // With churn_order::diffusers and a value > 0: the network is EDM-preconditioned with this σ_data (diffusers'
    // EDMEulerScheduler, samplers/model.hpp edm_time), its raw output F read at (x̂, σ̂) as
    // c_skip(σ̂)·x̂ + c_out(σ̂)·F; diffusers_prediction is then not used. 0: not an EDM network.
    double diffusers_edm_sigma_data = 0.0;
};

// Ancestral samplers: η scales σ_up (η = 0 is the deterministic sampler), s_noise scales the fresh noise.
struct ancestral_options {
    double eta = 1.0;
    double s_noise = 1.0;
};

// DPM2 ancestral: the ancestral options and, for a network trained on discrete timesteps, the timesteps it
// is fed at each step's two evaluations where no σ → t rule gives them (diffusers'
// KDPM2AncestralDiscreteScheduler: timesteps at the grid points, other timesteps at the log-σ midpoints,
// which at η = 1 coincide with the next grid point in σ; kdpm2_ancestral_sigmas computes both lists). Empty:
// the model derives the network time from σ. Given, they reach the model as evaluation::t_net (pull mode:
// only a model that reads discrete time; others derive it from σ) and the grid must be shared.
struct dpm_2_ancestral_options : ancestral_options {
    std::vector<double> timesteps{};           // one per step: the first evaluation's, at σ_i
    std::vector<double> midpoint_timesteps{};  // one per step with σ_{i+1} > 0: the second's, at σ_mid
    dpm_2_ancestral_options() = default;
    dpm_2_ancestral_options(const ancestral_options& a) : ancestral_options(a) {}  // implicit: the plain options
};

namespace detail {

inline void check_churn(const churn_options& o, const char* where, bool diffusers_order_allowed = false) {
    require(o.order == churn_order::karras || diffusers_order_allowed, where, "churn_order", "diffusers",
            "{karras} (churn_order diffusers is Euler's)");
    require(o.order == churn_order::karras || o.diffusers_prediction != prediction::score, where,
            "diffusers_prediction", "score", "{epsilon, sample, v} (diffusers' Euler step has no score networks)");
    require(o.diffusers_edm_sigma_data >= 0 && std::isfinite(o.diffusers_edm_sigma_data), where, "diffusers_edm_sigma_data",
            o.diffusers_edm_sigma_data, "[0, inf) (0: not an EDM network)");
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
template <class T, class Noise, class V, memory_space S>
void churn(sigma_state<T, S>& st, const churn_options& o, const V& x, const V& eps, Noise& noise, std::uint64_t& draw) {
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
    const auto z = noise_term(noise, eps, draw++, st.s, st.hat);
    if (any) lincomb_noise(x, 1.0, x, per_sample(st.c4), z);
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
// DPM-Solver-2 in σ-space from σ_from to σ_to with midpoint st.tmp (Euler where σ_to = 0), in two halves
// around the model call D(x'; σ_mid):
//   first:   x' = x + (σ_mid − σ_from)·(x − D)/σ_from            (returns false, and does the Euler step,
//                                                                 when no sample needs the midpoint)
//   second:  x ← x + (σ_to − σ_from)·(x' − D(x'; σ_mid))/σ_mid
template <class T, memory_space S>
bool dpm2_first_half(sigma_state<T, S>& st, const tensor_view<T, S>& x, const tensor_view<T, S>& den, const tensor_view<T, S>& x2,
                     std::span<const double> from, std::span<const double> to) {
    bool second = false;
    for (std::size_t b = 0; b < st.batch; ++b) second = second || to[b] > 0;
    if (!second) {
        for (std::size_t b = 0; b < st.batch; ++b) euler_coefficients(from[b], to[b], st.c0[b], st.c1[b]);
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den);
        return false;
    }
    for (std::size_t b = 0; b < st.batch; ++b) euler_coefficients(from[b], st.tmp[b], st.c0[b], st.c1[b]);
    lincomb(x2, per_sample(st.c0), x, per_sample(st.c1), den);
    return true;
}
template <class T, memory_space S>
void dpm2_second_half(sigma_state<T, S>& st, const tensor_view<T, S>& x, const tensor_view<T, S>& den, const tensor_view<T, S>& x2,
                      const tensor_view<T, S>& den2, std::span<const double> from, std::span<const double> to) {
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
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class euler_stepper : public detail::sigma_stepper<euler_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<euler_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<euler_stepper<T, Noise, S>, T, S>;

public:
    euler_stepper(batch_shape shape, const time_grid& grid, const churn_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_euler"), opt_(opt) {
        detail::check_churn(opt_, this->where(), true);
        if (opt_.order == churn_order::diffusers) before_ = this->st.make_buffer();
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        this->load_step();
        if (opt_.order == churn_order::diffusers) {
            co_await this->denoise(x, st.s, den_.v());
            diffusers_update(x);
        } else {
            detail::churn(st, opt_, x, eps_.v(), this->noise, this->draw);
            co_await this->denoise(x, st.hat, den_.v());
            for (std::size_t b = 0; b < st.batch; ++b) detail::euler_coefficients(st.hat[b], st.s_next[b], st.c0[b], st.c1[b]);
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den_.v());  // Euler step (Algorithm 2, line 8)
        }
        this->report(st.s, den_.v());
    }

    // diffusers' EulerDiscreteScheduler.step with churn: D = D(x_i; σ_i) is evaluated before the churn
    // x̂ = x_i + √(σ̂² − σ_i²)·s_noise·z, and the network output behind it is read at (x̂, σ̂):
    //   ε-network:  x̂₀ = x̂ − σ̂·ε̂,                ε̂ = (x_i − D)/σ_i
    //   v-network:  x̂₀ = x̂/(σ_i²+1) − σ_i/√(σ_i²+1)·v̂ = D + (x̂ − x_i)/(σ_i²+1)   (σ_i, not σ̂, as upstream)
    //   x₀-network: x̂₀ = D
    //   EDM network (EDMEulerScheduler): x̂₀ = c_skip(σ̂)·x̂ + c_out(σ̂)·F with F = (D − c_skip(σ_i)·x_i)/c_out(σ_i)
    //               (Karras et al. 2022, Table 1), i.e. r = c_out(σ̂)/c_out(σ_i), x̂₀ = c_skip(σ̂)·x̂ − r·c_skip(σ_i)·x_i + r·D
    // i.e. x̂₀ = a·x̂ + b·x_i + c·D, then the Euler step x_{i+1} = x̂ + (σ_{i+1} − σ̂)·(x̂ − x̂₀)/σ̂.
    void diffusers_update(tensor_view<T, S> x) {
        auto& st = this->st;
        detail::copy_values(before_.v(), x);
        detail::churn(st, opt_, x, eps_.v(), this->noise, this->draw);
        for (std::size_t b = 0; b < st.batch; ++b) {
            const double s = st.s[b], hat = st.hat[b], k = (st.s_next[b] - hat) / hat;
            double a = 0, bx = 0, c = 1;
            if (opt_.diffusers_edm_sigma_data > 0) {
                const auto at = edm_precondition(s, opt_.diffusers_edm_sigma_data), churned = edm_precondition(hat, opt_.diffusers_edm_sigma_data);
                const double r = churned.c_out / at.c_out;
                a = churned.c_skip;
                bx = -r * at.c_skip;
                c = r;
            } else if (opt_.diffusers_prediction == prediction::epsilon) {
                a = 1.0;
                bx = -hat / s;
                c = hat / s;
            } else if (opt_.diffusers_prediction == prediction::v) {
                a = 1.0 / (s * s + 1.0);
                bx = -a;
            }
            st.c0[b] = 1.0 + k - k * a;  // x_{i+1} = (1 + k)·x̂ − k·x̂₀
            st.c1[b] = -k * bx;
            st.c2[b] = -k * c;
        }
        lincomb(x, per_sample(st.c0), x, per_sample(st.c1), before_.v(), per_sample(st.c2), den_.v());
    }

    churn_options opt_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), eps_ = this->st.make_buffer(),
                                            before_{batch_shape{0, 0}};  // x_i, for churn_order::diffusers
};

// Heun (Karras et al. 2022, Algorithm 2): after the Euler predictor x' = x̂ + (σ_{i+1} − σ̂)d, the
// trapezoidal corrector x_{i+1} = x̂ + (σ_{i+1} − σ̂)·(d + d')/2 with d' = (x' − D(x'; σ_{i+1}))/σ_{i+1}
// (lines 9–11); into σ_{i+1} = 0 the Euler step alone. In a per-sample grid, samples whose σ_{i+1} = 0 sit
// out the second evaluation (their row is evaluated at σ̂ and ignored).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class heun_stepper : public detail::sigma_stepper<heun_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<heun_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<heun_stepper<T, Noise, S>, T, S>;

public:
    heun_stepper(batch_shape shape, const time_grid& grid, const churn_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_heun"), opt_(opt) {
        detail::check_churn(opt_, this->where());
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto den = den_.v(), x2 = x2_.v(), den2 = den2_.v();
        this->load_step();
        detail::churn(st, opt_, x, eps_.v(), this->noise, this->draw);
        co_await this->denoise(x, st.hat, den);
        bool second = false;
        for (std::size_t b = 0; b < st.batch; ++b) {
            detail::euler_coefficients(st.hat[b], st.s_next[b], st.c0[b], st.c1[b]);
            second = second || st.s_next[b] > 0;
        }
        if (!second) {
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den);
        } else {
            lincomb(x2, per_sample(st.c0), x, per_sample(st.c1), den);  // Euler predictor (line 8)
            for (std::size_t b = 0; b < st.batch; ++b) st.tmp[b] = st.s_next[b] > 0 ? st.s_next[b] : st.hat[b];
            co_await this->denoise(x2, st.tmp, den2);
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
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den, per_sample(st.c2), x2, per_sample(st.c3), den2);
        }
        this->report(st.s, den);
    }
    churn_options opt_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), eps_ = this->st.make_buffer(),
                                            x2_ = this->st.make_buffer(), den2_ = this->st.make_buffer();
};

// DPM2 (k-diffusion's sample_dpm_2; DPM-Solver-2 of Lu et al. 2022 applied to the σ-space ODE, with the
// churn of Karras et al. Algorithm 2): σ_mid = √(σ̂·σ_{i+1}) (midpoint in log σ),
// x' = x̂ + (σ_mid − σ̂)d, x_{i+1} = x̂ + (σ_{i+1} − σ̂)·d(x', σ_mid). Euler into σ = 0.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpm_2_stepper : public detail::sigma_stepper<dpm_2_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpm_2_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpm_2_stepper<T, Noise, S>, T, S>;

public:
    dpm_2_stepper(batch_shape shape, const time_grid& grid, const churn_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpm_2"), opt_(opt) {
        detail::check_churn(opt_, this->where());
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto den = den_.v(), x2 = x2_.v(), den2 = den2_.v();
        this->load_step();
        detail::churn(st, opt_, x, eps_.v(), this->noise, this->draw);
        co_await this->denoise(x, st.hat, den);
        for (std::size_t b = 0; b < st.batch; ++b)
            st.tmp[b] = st.s_next[b] > 0 ? detail::log_midpoint(st.hat[b], st.s_next[b]) : st.hat[b];
        if (detail::dpm2_first_half(st, x, den, x2, st.hat, st.s_next)) {
            co_await this->denoise(x2, st.tmp, den2);
            detail::dpm2_second_half(st, x, den, x2, den2, st.hat, st.s_next);
        }
        this->report(st.s, den);
    }
    churn_options opt_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), eps_ = this->st.make_buffer(),
                                            x2_ = this->st.make_buffer(), den2_ = this->st.make_buffer();
};

// Euler ancestral (k-diffusion's sample_euler_ancestral; diffusers' EulerAncestralDiscreteScheduler):
//   (σ_down, σ_up) = ancestral_step(σ_i, σ_{i+1}, η);  x ← x + (σ_down − σ_i)·d;  x ← x + s_noise·σ_up·z
//   (no noise into σ_{i+1} = 0).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class euler_ancestral_stepper : public detail::sigma_stepper<euler_ancestral_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<euler_ancestral_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<euler_ancestral_stepper<T, Noise, S>, T, S>;

public:
    euler_ancestral_stepper(batch_shape shape, const time_grid& grid, const ancestral_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_euler_ancestral"), opt_(opt) {
        detail::check_ancestral(opt_, this->where());
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        this->load_step();
        co_await this->denoise(x, st.s, den_.v());
        for (std::size_t b = 0; b < st.batch; ++b) {
            const auto a = ancestral_step(st.s[b], st.s_next[b], opt_.eta);
            detail::euler_coefficients(st.s[b], a.down, st.c0[b], st.c1[b]);
            st.c4[b] = st.s_next[b] > 0 ? opt_.s_noise * a.up : 0.0;
        }
        detail::update_with_noise(this->noise, x, eps_.v(), this->draw, st.s, st.s_next, st.c4, per_sample(st.c0), x,
                                  per_sample(st.c1), den_.v());
        this->report(st.s, den_.v());
    }
    ancestral_options opt_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), eps_ = this->st.make_buffer();
};

// DPM2 ancestral (k-diffusion's sample_dpm_2_ancestral; diffusers' KDPM2AncestralDiscreteScheduler with the
// network timesteps of dpm_2_ancestral_options): the DPM-Solver-2 step of dpm_2_stepper from σ_i to σ_down,
// then s_noise·σ_up·z (where σ_down > 0).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpm_2_ancestral_stepper : public detail::sigma_stepper<dpm_2_ancestral_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpm_2_ancestral_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpm_2_ancestral_stepper<T, Noise, S>, T, S>;

public:
    dpm_2_ancestral_stepper(batch_shape shape, const time_grid& grid, const dpm_2_ancestral_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpm_2_ancestral"), opt_(opt), down_(shape.batch),
          noise_coef_(shape.batch), t_(shape.batch) {
        detail::check_ancestral(opt_, this->where());
        check_timesteps();
    }

    // Pull mode: the network timesteps reach only a network trained on discrete timesteps.
    template <class Model>
    void fulfil(Model& m, const evaluation<T, S>& e) {
        if constexpr (detail::reads_discrete_time<Model>()) {
            evaluate(m, e);
        } else {
            evaluation<T, S> r = e;
            r.t_net = {};
            evaluate(m, r);
        }
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const auto den = den_.v(), x2 = x2_.v(), den2 = den2_.v();
        const std::size_t i = this->step_index();
        this->load_step();
        co_await this->denoise(x, st.s, den, network_time(opt_.timesteps, i));
        for (std::size_t b = 0; b < st.batch; ++b) {
            const auto a = ancestral_step(st.s[b], st.s_next[b], opt_.eta);
            down_[b] = a.down;
            noise_coef_[b] = a.down > 0 ? opt_.s_noise * a.up : 0.0;
            st.tmp[b] = a.down > 0 ? detail::log_midpoint(st.s[b], a.down) : st.s[b];
        }
        if (detail::dpm2_first_half(st, x, den, x2, st.s, down_)) {
            co_await this->denoise(x2, st.tmp, den2, network_time(opt_.midpoint_timesteps, i));
            detail::dpm2_second_half(st, x, den, x2, den2, st.s, down_);
        }
        detail::add_noise(this->noise, x, eps_.v(), this->draw, st.s, st.s_next, noise_coef_);
        this->report(st.s, den);
    }

    // The batch's network time from list[i], or none (σ → t by the model) when no list is given.
    std::span<const double> network_time(const std::vector<double>& list, std::size_t i) {
        if (list.empty()) return {};
        std::fill(t_.begin(), t_.end(), list[i]);
        return t_;
    }
    void check_timesteps() const {
        const auto& g = this->grid();
        const std::size_t n = g.steps();
        std::size_t midpoints = 0;  // steps with a second evaluation: σ_{i+1} > 0 (σ_down > 0 for η ≥ 0)
        for (std::size_t i = 0; i < n; ++i) midpoints += g(i + 1, 0) > 0 ? 1 : 0;
        const bool given = !opt_.timesteps.empty() || !opt_.midpoint_timesteps.empty();
        if (!given) return;
        detail::require(g.shared(), this->where(), "timesteps", "given", "a shared grid (one timestep list for the batch)");
        detail::require(opt_.timesteps.size() == n, this->where(), "timesteps.size()", opt_.timesteps.size(),
                        "the grid's steps = " + std::to_string(n));
        detail::require(opt_.midpoint_timesteps.size() >= midpoints && opt_.midpoint_timesteps.size() <= n, this->where(),
                        "midpoint_timesteps.size()", opt_.midpoint_timesteps.size(),
                        "[" + std::to_string(midpoints) + ", " + std::to_string(n) + "] (one per step into sigma > 0)");
        for (const auto* list : {&opt_.timesteps, &opt_.midpoint_timesteps})
            for (std::size_t k = 0; k < list->size(); ++k)
                if (!((*list)[k] >= 0 && std::isfinite((*list)[k])))
                    detail::require(false, this->where(),
                                    std::string(list == &opt_.timesteps ? "timesteps[" : "midpoint_timesteps[") +
                                        std::to_string(k) + "]",
                                    (*list)[k], "[0, inf)");
    }

    dpm_2_ancestral_options opt_;
    std::vector<double> down_, noise_coef_, t_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), eps_ = this->st.make_buffer(),
                                            x2_ = this->st.make_buffer(), den2_ = this->st.make_buffer();
};

// The one-call forms: x enters as σ_0·z and leaves as the sample.
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_euler(Model& m, X&& x, const time_grid& grid, const churn_options& opt = {}, Noise&& noise = {},
                  Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    euler_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_heun(Model& m, X&& x, const time_grid& grid, const churn_options& opt = {}, Noise&& noise = {},
                 Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    heun_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpm_2(Model& m, X&& x, const time_grid& grid, const churn_options& opt = {}, Noise&& noise = {},
                  Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpm_2_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_euler_ancestral(Model& m, X&& x, const time_grid& grid, const ancestral_options& opt = {},
                            Noise&& noise = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    euler_ancestral_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpm_2_ancestral(Model& m, X&& x, const time_grid& grid, const dpm_2_ancestral_options& opt = {},
                            Noise&& noise = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpm_2_ancestral_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
