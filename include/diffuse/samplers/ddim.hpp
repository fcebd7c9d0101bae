#pragma once
// DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models") as diffusers' DDIMScheduler runs it,
// and DDIM inversion (the deterministic η = 0 update run from clean to noisy, diffusers' DDIMInverseScheduler).
//
// Step t → p (eq. 12, with σ_t(η) of eq. 16):
//   σ_t  = η·√((1−ᾱ_p)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_p))
//   x_p  = √ᾱ_p·x̂₀ + √(1 − ᾱ_p − σ_t²)·ε̂ + σ_t·z
// x̂₀ may be clipped or thresholded; ε̂ stays the model's unless use_clipped_model_output recomputes it from
// the clipped x̂₀. Past the last timestep ᾱ_p = 1 (set_alpha_to_one) or ᾱ_0. Noise draw i is step i's (η > 0).
// A step where every sample holds (equal grid points) calls no model.
//
// Parity option: diffusers takes p = t − T//N whatever the spacing (an open upstream issue: wrong for
// "linspace" and "trailing" spacings, whose strides are not T//N). prev_timestep = fixed_stride reproduces
// it; the default, next_in_list, steps to the grid's next point.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/stepper.hpp"
#include "diffuse/schedules/timesteps.hpp"

namespace diffuse {

struct ddim_options : sample_clipping {
    double eta = 0.0;
    bool use_clipped_model_output = false;
    bool set_alpha_to_one = true;
    prev_timestep_rule prev_timestep = prev_timestep_rule::next_in_list;
    std::size_t num_inference_steps = 0;  // N of the fixed_stride rule; 0 = the grid's number of steps
    // Accept diffusers' N + 1 trailing list (discrete_timesteps(…, trailing_extra_timestep = true); give
    // num_inference_steps = N then): its last step starts at timestep −1, reads ᾱ_{T−1} there (Python's
    // alphas_cumprod[-1]) and steps to final_alpha_cumprod, as DDIMScheduler does. The network is given t = 0
    // (upstream −1, which a discrete-time network cannot read).
    bool trailing_extra_timestep = false;
};

namespace detail {
// The coefficients of one DDIM update x ← c0·x̂₀ + c1·ε̂ + c2·z + c3·x (eq. 12, σ of eq. 16) into ws.c0…c3:
// c3 = 0, except for samples with hold[b], which keep x exactly (c0 = c1 = c2 = 0, c3 = 1). True if any holds.
template <class T, memory_space S>
bool ddim_coefficients(discrete_workspace<T, S>& ws, std::span<const double> ac_p, std::span<const std::uint8_t> hold,
                       double eta) {
    bool any_hold = false;
    for (std::size_t b = 0; b < ws.ac.size(); ++b) {
        const double ac_t = ws.ac[b];
        const double var = (1.0 - ac_p[b]) / (1.0 - ac_t) * (1.0 - ac_t / ac_p[b]);
        const double std_t = eta > 0 ? eta * std::sqrt(var) : 0.0;
        const bool h = !hold.empty() && hold[b];
        any_hold = any_hold || h;
        ws.c0[b] = h ? 0.0 : std::sqrt(ac_p[b]);
        ws.c1[b] = h ? 0.0 : std::sqrt(1.0 - ac_p[b] - std_t * std_t);
        ws.c2[b] = h ? 0.0 : std_t;
        ws.c3[b] = h ? 1.0 : 0.0;
    }
    return any_hold;
}

// The DDIM update with the coefficients of ddim_coefficients from the completed pair in ws.
template <class T, class Noise, memory_space S>
void ddim_update(tensor_view<T, S> x, discrete_workspace<T, S>& ws, bool any_hold, double eta, Noise& noise, std::uint64_t draw) {
    const tensor_view<T, S> x0{ws.x0.data(), x.batch, x.per_sample}, eps{ws.eps.data(), x.batch, x.per_sample};
    const tensor_view<T, S> z{ws.noise.data(), x.batch, x.per_sample};
    const auto c0 = per_sample(ws.c0), c1 = per_sample(ws.c1), c2 = per_sample(ws.c2), c3 = per_sample(ws.c3);
    if (eta > 0 && any_hold) noise(z, draw), lincomb(x, c0, x0, c1, eps, c2, z, c3, x);
    else if (eta > 0) lincomb_noise(x, c0, x0, c1, eps, c2, noise_term(noise, z, draw));
    else if (any_hold) lincomb(x, c0, x0, c1, eps, c3, x);
    else lincomb(x, c0, x0, c1, eps);
}

}  // namespace detail

// The DDIM stepper (samplers/stepper.hpp) over grid = discrete_grid(timesteps). Step i, t → p per sample:
// one evaluation for the pair (x̂₀, ε̂), then the update of eq. 12 with draw i where η > 0.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class ddim_stepper : public detail::discrete_stepper<ddim_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::discrete_stepper<ddim_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<ddim_stepper<T, Noise, S>, T, S>;

public:
    ddim_stepper(batch_shape shape, std::span<const double> alphas_cumprod, const time_grid& grid,
                 const ddim_options& opt = {}, Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, grid, std::forward<Noise>(noise), first_sample, "sample_ddim"), opt_(opt),
          ac_p_(shape.batch), hold_(shape.batch) {
        const char* where = this->where();
        const std::size_t T_train = this->num_train_timesteps();
        detail::check_descending_grid(this->grid_, shape.batch, T_train, where, opt_.trailing_extra_timestep);
        detail::check_clipping(opt_, where);
        detail::require(opt_.eta >= 0 && std::isfinite(opt_.eta), where, "eta", opt_.eta, "[0, inf)");
        const std::size_t N = opt_.num_inference_steps ? opt_.num_inference_steps : this->steps();
        detail::require(N <= T_train, where, "num_inference_steps", N, "<= num_train_timesteps");
        stride_ = static_cast<std::int64_t>(T_train / N);
        final_ac_ = opt_.set_alpha_to_one ? 1.0 : this->alpha_cumprod(0, 1.0);
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& ws = this->ws;
        const std::size_t i = this->step_index();
        bool all_hold = true;
        for (std::size_t b = 0; b < x.batch; ++b) {
            const auto t = this->timestep(i, b);
            auto p = this->timestep(i + 1, b);
            hold_[b] = p == t && t >= 0;  // t = p = −1: the extra step of an N + 1 trailing list
            all_hold = all_hold && hold_[b];
            if (opt_.prev_timestep == prev_timestep_rule::fixed_stride && !hold_[b]) p = t - stride_;  // diffusers' rule
            this->set_start_state(b, t);
            const double ac_t = ws.ac[b];
            ac_p_[b] = hold_[b] ? ac_t : this->alpha_cumprod(p, final_ac_);
        }
        if (all_hold) {  // every sample holds: nothing to evaluate, nothing to report
            this->skip_report();
            co_return;
        }
        co_await this->predict_pair(x);
        const bool any_hold = detail::ddim_coefficients(ws, ac_p_, hold_, opt_.eta);
        // Nothing reads x̂₀ (no clipping, thresholding or observer of it): one pass over x and the model output.
        if (!any_hold && !opt_.clip_sample && !opt_.thresholding && !this->reports_denoised() &&
            detail::update_from_output(x, ws, ws.c0, ws.c1, {}, this->answered_ == prediction::epsilon, opt_.eta > 0,
                                       this->noise, i)) {
            this->report(ws.t, {});
            co_return;
        }
        this->complete_pair(x);
        const tensor_view<T, S> x0 = this->view_of(ws.x0);
        detail::process_x0(x0, opt_, ws.q, ws.scratch);
        if (opt_.use_clipped_model_output) detail::eps_from_x0(x, ws);
        detail::ddim_update(x, ws, any_hold, opt_.eta, this->noise, i);  // held rows keep x exactly
        this->report(ws.t, x0);
    }

    ddim_options opt_;
    std::int64_t stride_ = 1;  // T // N of the fixed_stride rule
    double final_ac_ = 1.0;    // ᾱ past the last timestep
    std::vector<double> ac_p_;
    std::vector<std::uint8_t> hold_;
};

// The one-call form. x: the initial noise (VP scale) on entry, the sample on return. grid: discrete_grid(timesteps).
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_ddim(Model& m, X&& x, std::span<const double> alphas_cumprod, const time_grid& grid,
                 const ddim_options& opt = {}, Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    ddim_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, grid, opt, noise, first_sample);
    s.set_report_denoised(detail::observer_reads_denoised<Obs>());
    run(s, m, std::forward<X>(x), obs);
}

// DDIM inversion: the η = 0 update from clean towards noisy along an ascending grid
// (x_{t'} = √ᾱ_{t'}·x̂₀ + √(1−ᾱ_{t'})·ε̂, Song et al. 2021, eq. 13 read forwards; Mokady et al. 2023).
// model_at_target = true evaluates the model at the step's target timestep with the current state, as
// diffusers' DDIMInverseScheduler pipelines do; the default evaluates it where the state is.
// A first grid point of −1 stands for the clean data (ᾱ = 1, or ᾱ_0 without set_alpha_to_one) and needs
// model_at_target. The last point is the timestep the data is inverted to. Equal points hold a sample.
struct ddim_inverse_options {
    bool clip_sample = false;
    double clip_sample_range = 1.0;
    bool set_alpha_to_one = true;
    bool model_at_target = false;
    // fixed_stride: each step t → t' starts from ᾱ of min(t' − T//N, T − 1) (below 0: the clean start's ᾱ)
    // instead of ᾱ_t, as DDIMInverseScheduler.step does: the point before t' for leading spacing, not for
    // trailing. N = num_inference_steps (0: the grid's number of steps).
    prev_timestep_rule prev_timestep = prev_timestep_rule::next_in_list;
    std::size_t num_inference_steps = 0;
};

// The DDIM inversion stepper. Step i, t → n per sample: one evaluation, then the η = 0 update towards n.
// With model_at_target the evaluation is at the target's VP state (√ᾱ_n, √(1 − ᾱ_n)) and its output is read
// with the current (α, σ), as the upstream step reads it: push mode states it as ε̂, pull mode asks a
// diffuse::model for its network's own prediction (which is what upstream reinterprets).
template <class T, class Noise = no_noise, memory_space S = memory_space::host>
class ddim_inverse_stepper : public detail::discrete_stepper<ddim_inverse_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::discrete_stepper<ddim_inverse_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<ddim_inverse_stepper<T, Noise, S>, T, S>;

public:
    ddim_inverse_stepper(batch_shape shape, std::span<const double> alphas_cumprod, const time_grid& grid,
                         const ddim_inverse_options& opt = {}, Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, grid, std::forward<Noise>(noise), first_sample, "sample_ddim_inverse"), opt_(opt),
          ac_next_(shape.batch), target_alpha_(shape.batch), target_sigma_(shape.batch), hold_(shape.batch),
          raw_(shape.batch * shape.per_sample) {
        clip_.clip_sample = opt_.clip_sample;
        clip_.clip_sample_range = opt_.clip_sample_range;
        detail::check_clipping(clip_, this->where());
        initial_ac_ = opt_.set_alpha_to_one ? 1.0 : this->alpha_cumprod(0, 1.0);
        check_grid(shape.batch);
        const std::size_t N = opt_.num_inference_steps ? opt_.num_inference_steps : this->steps();
        detail::require(N <= this->num_train_timesteps(), this->where(), "num_inference_steps", N, "<= num_train_timesteps");
        stride_ = static_cast<std::int64_t>(this->num_train_timesteps() / N);
    }

private:
    // Ascending timesteps in [0, T−1]; the first point may be −1 (the clean data) with model_at_target; without
    // it, every start point needs 1 − ᾱ > 0 (the model is evaluated there).
    void check_grid(std::size_t batch) const {
        const auto& g = this->grid_;
        const char* where = this->where();
        const std::size_t T_train = this->num_train_timesteps(), rows = g.shared() ? 1 : batch;
        for (std::size_t b = 0; b < rows; ++b) {
            for (std::size_t i = 0; i <= g.steps(); ++i) {
                const double v = g(i, b);
                const bool clean_start = i == 0 && opt_.model_at_target && v == -1.0;
                detail::require(clean_start || (v == std::floor(v) && v >= 0 && v < double(T_train)), where,
                                detail::grid_point_name(g, i, b), v,
                                "an integer timestep in [0, " + std::to_string(T_train - 1) + "]" +
                                    (i == 0 ? (opt_.model_at_target ? " or -1 (the clean data)"
                                                                    : " (-1, the clean data, needs model_at_target)")
                                            : ""));
                if (i > 0)
                    detail::require(v >= g(i - 1, b), where, detail::grid_point_name(g, i, b), v,
                                    ">= the point before it, " + detail::grid_value_text(g(i - 1, b)) +
                                        " (DDIM inversion runs clean to noisy)");
                if (i < g.steps() && !opt_.model_at_target)
                    detail::require(this->alpha_cumprod(std::int64_t(v), 1.0) < 1.0, where, detail::grid_point_name(g, i, b),
                                    v, "a timestep with 1 - alpha_cumprod > 0 (the model is evaluated there)");
            }
        }
    }

    detail::step_task run_step(tensor_view<T, S> x) {
        auto& ws = this->ws;
        const std::size_t i = this->step_index(), B = x.batch;
        bool all_hold = true;
        for (std::size_t b = 0; b < B; ++b) {
            const auto t = this->timestep(i, b), n = this->timestep(i + 1, b);
            hold_[b] = n == t;
            all_hold = all_hold && hold_[b];
            ac_next_[b] = this->alpha_cumprod(n, 1.0);
            const std::int64_t from = opt_.prev_timestep == prev_timestep_rule::fixed_stride && !hold_[b]
                                          ? std::min<std::int64_t>(n - stride_, std::int64_t(this->num_train_timesteps()) - 1)
                                          : t;  // diffusers' rule, or the grid point
            ws.set_state(b, double(opt_.model_at_target ? n : from), this->alpha_cumprod(from, initial_ac_));
        }
        if (all_hold) {  // every sample holds: nothing to evaluate, nothing to report
            this->skip_report();
            co_return;
        }
        const tensor_view<T, S> x0 = this->view_of(ws.x0);
        if (opt_.model_at_target) {
            // the network sees the state as if it were at the target timestep (its σ, α), as upstream
            for (std::size_t b = 0; b < B; ++b) {
                const double ac = this->alpha_cumprod(std::int64_t(ws.t[b]), 1.0);
                target_alpha_[b] = std::sqrt(ac);
                target_sigma_[b] = std::sqrt(1.0 - ac);
            }
            this->answered_ = prediction::epsilon;
            co_await this->ask(detail::discrete_request::network_own, x, target_alpha_, target_sigma_, this->view_of(raw_));
            read_at_current_state(x);
        } else {
            co_await this->predict_pair(x);
            this->complete_pair(x);
        }
        detail::process_x0(x0, clip_, ws.q, ws.scratch);
        const bool any_hold = detail::ddim_coefficients(ws, ac_next_, hold_, 0.0);
        detail::ddim_update(x, ws, any_hold, 0.0, this->noise, i);  // η = 0: no draw
        this->report(ws.t, x0);
    }

    // x̂₀ and ε̂ from the output (of kind answered_) read with the current state's (α, σ), as the upstream step.
    void read_at_current_state(tensor_view<T, S> x) {
        auto& ws = this->ws;
        for (std::size_t b = 0; b < x.batch; ++b) {
            const auto cx = convert_coefficients(this->answered_, prediction::sample, ws.alpha[b], ws.sigma[b]);
            const auto ce = convert_coefficients(this->answered_, prediction::epsilon, ws.alpha[b], ws.sigma[b]);
            ws.d0[b] = cx.a;
            ws.d1[b] = cx.b;
            ws.c2[b] = ce.a;
            ws.c3[b] = ce.b;
        }
        const tensor_view<T, S> raw = this->view_of(raw_);
        lincomb(this->view_of(ws.x0), per_sample(ws.d0), x, per_sample(ws.d1), raw);
        lincomb(this->view_of(ws.eps), per_sample(ws.c2), x, per_sample(ws.c3), raw);
    }

    ddim_inverse_options opt_;
    sample_clipping clip_;
    double initial_ac_ = 1.0;  // ᾱ of the clean start (grid point −1)
    std::int64_t stride_ = 1;  // T // N of the fixed_stride rule
    std::vector<double> ac_next_, target_alpha_, target_sigma_;
    std::vector<std::uint8_t> hold_;
    space_buffer<T, S> raw_;  // the model_at_target output before it is read as x̂₀ and ε̂
};

// The one-call form; deterministic (the noise slot takes no_noise, as every deterministic sampler's).
template <class Model, class X, class Noise = no_noise, class Obs = no_observer>
void sample_ddim_inverse(Model& m, X&& x, std::span<const double> alphas_cumprod, const time_grid& grid,
                         const ddim_inverse_options& opt = {}, Noise&& noise = {}, Obs&& obs = {},
                         std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    ddim_inverse_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, grid, opt, noise, first_sample);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
