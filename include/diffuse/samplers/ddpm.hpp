#pragma once
// DDPM ancestral sampling (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Algorithm 2), on any
// subsequence of the training timesteps as diffusers' DDPMScheduler runs it, with the variance choices of
// Ho et al. (σ² = β̃ "fixed_small" or β "fixed_large") and Nichol & Dhariwal 2021 ("learned_range").
//
// Step t → p (p the next grid point; ᾱ_p = 1 past the end), with β'_t = 1 − ᾱ_t/ᾱ_p:
//   x̂₀  from the model, then clipped or dynamically thresholded
//   μ̃   = √ᾱ_p·β'_t/(1−ᾱ_t)·x̂₀ + √(1−β'_t)·(1−ᾱ_p)/(1−ᾱ_t)·x_t                 (eq. 7)
//   x_p = μ̃ + σ_t·z,  z ~ N(0, I), no noise when t = 0                        (Algorithm 2, line 4)
// with σ_t² = β̃_t = (1−ᾱ_p)/(1−ᾱ_t)·β'_t (clamped at 1e-20), or β'_t, or for learned_range
// exp(f·log β'_t + (1−f)·log β̃_t), f = (v+1)/2 elementwise (Nichol & Dhariwal 2021, eq. 15).
// Noise draw i is the noise of step i. A step where every sample holds (equal grid points) calls no model.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/stepper.hpp"

namespace diffuse {

enum class ddpm_variance { fixed_small, fixed_small_log, fixed_large, learned, learned_range };

[[nodiscard]] inline ddpm_variance parse_ddpm_variance(std::string_view name) {
    if (name == "fixed_small") return ddpm_variance::fixed_small;
    if (name == "fixed_small_log") return ddpm_variance::fixed_small_log;
    if (name == "fixed_large") return ddpm_variance::fixed_large;
    if (name == "learned") return ddpm_variance::learned;
    if (name == "learned_range") return ddpm_variance::learned_range;
    detail::require(false, "parse_ddpm_variance", "variance_type", std::string(name),
                    "{fixed_small, fixed_small_log, fixed_large, learned, learned_range}");
    return ddpm_variance::fixed_small;
}

struct ddpm_options : sample_clipping {
    ddpm_variance variance_type = ddpm_variance::fixed_small;
    // Accept diffusers' N + 1 trailing list (discrete_timesteps(…, trailing_extra_timestep = true)): its last
    // step starts at timestep −1, reads ᾱ_{T−1} there (Python's alphas_cumprod[-1]) and, stepping to ᾱ = 1,
    // returns x̂₀ without noise, as DDPMScheduler does. The network is given t = 0 (upstream −1, which a
    // discrete-time network cannot read; numpy.interp clamps it to 0 in the Euler family).
    bool trailing_extra_timestep = false;
};

namespace detail {
// x + σ·z with σ from the network's variance output v (functors, so that device code can run them too):
// σ = exp(½(f·log β' + (1−f)·log β̃)), f = (v+1)/2  (Nichol & Dhariwal 2021, eq. 15), or σ = √v
template <class T>
struct learned_range_noise {
    double lmin, lmax;
    DIFFUSE_HD T operator()(T xv, T v, T zv) const {
        const T f = (v + T(1)) / T(2);
        return xv + std::exp(T(0.5) * (f * T(lmax) + (T(1) - f) * T(lmin))) * zv;
    }
};
template <class T>
struct learned_noise {
    DIFFUSE_HD T operator()(T xv, T v, T zv) const { return xv + std::sqrt(v) * zv; }
};
}  // namespace detail

// The DDPM stepper (samplers/stepper.hpp) over grid = discrete_grid(timesteps) of the training schedule's ᾱ
// (discrete_schedule::alphas_cumprod). Step i, t → p per sample: one evaluation for the pair (x̂₀, ε̂) (with the
// learned variance for learned / learned_range: evaluation::variance_out), then μ̃ + σ_t·z with draw i.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class ddpm_stepper : public detail::discrete_stepper<ddpm_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::discrete_stepper<ddpm_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<ddpm_stepper<T, Noise, S>, T, S>;

public:
    ddpm_stepper(batch_shape shape, std::span<const double> alphas_cumprod, const time_grid& grid,
                 const ddpm_options& opt = {}, Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, grid, std::forward<Noise>(noise), first_sample, "sample_ddpm"), opt_(opt),
          learned_(opt.variance_type == ddpm_variance::learned || opt.variance_type == ddpm_variance::learned_range),
          variance_(learned_ ? shape.batch * shape.per_sample : 0), beta_(shape.batch), var_small_(shape.batch) {
        detail::check_descending_grid(this->grid_, shape.batch, this->num_train_timesteps(), this->where(),
                                      opt_.trailing_extra_timestep);
        detail::check_clipping(opt_, this->where());
    }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& ws = this->ws;
        const std::size_t i = this->step_index(), B = x.batch;
        bool any_noise = false, all_hold = true, any_hold = false;
        for (std::size_t b = 0; b < B; ++b) {
            const auto t = this->timestep(i, b), p = this->timestep(i + 1, b);
            const bool hold = p == t && t >= 0;  // t = p = −1: the extra step of an N + 1 trailing list
            all_hold = all_hold && hold;
            any_hold = any_hold || hold;
            this->set_start_state(b, t);
            const double ac_t = ws.ac[b], ac_p = this->alpha_cumprod(p, 1.0);
            const double beta_prod_t = 1.0 - ac_t, beta_prod_p = 1.0 - ac_p;
            const double cur_alpha = ac_t / ac_p, cur_beta = 1.0 - cur_alpha;
            // μ̃ coefficients (eq. 7), in diffusers' order of operations
            ws.c0[b] = hold ? 0.0 : std::sqrt(ac_p) * cur_beta / beta_prod_t;
            ws.c1[b] = hold ? 1.0 : std::sqrt(cur_alpha) * beta_prod_p / beta_prod_t;
            beta_[b] = cur_beta;
            var_small_[b] = std::max(beta_prod_p / beta_prod_t * cur_beta, 1e-20);  // β̃_t
            const bool noisy = t > 0 && !hold;
            any_noise = any_noise || noisy;
            switch (opt_.variance_type) {
                case ddpm_variance::fixed_small: ws.c2[b] = std::sqrt(var_small_[b]); break;
                case ddpm_variance::fixed_small_log: ws.c2[b] = std::exp(0.5 * std::log(var_small_[b])); break;
                case ddpm_variance::fixed_large: ws.c2[b] = std::sqrt(cur_beta); break;
                default: ws.c2[b] = 1.0; break;  // elementwise, below
            }
            if (!noisy) ws.c2[b] = 0.0;
        }
        if (all_hold) {  // every sample holds: nothing to evaluate, nothing to report
            this->skip_report();
            co_return;
        }
        // the learned variance is the network's second half: v (learned_range) or σ² itself (learned)
        // (the view formed before the co_await: GCC 12 evaluates both arms of a conditional in a co_await operand)
        tensor_view<T, S> variance{};
        if (learned_) variance = this->view_of(variance_);
        co_await this->predict_pair(x, variance);
        // Nothing reads x̂₀ (no clipping, thresholding, learned variance or observer of it): μ̃ + σ_t·z in one
        // pass over x and the model output.
        if (!learned_ && !any_hold && !opt_.clip_sample && !opt_.thresholding && !this->reports_denoised() &&
            detail::update_from_output(x, ws, ws.c0, {}, ws.c1, this->answered_ == prediction::epsilon, any_noise,
                                       this->noise, i)) {
            this->report(ws.t, {});
            co_return;
        }
        this->complete_pair(x);
        const tensor_view<T, S> x0 = this->view_of(ws.x0), z = this->view_of(ws.noise);
        detail::process_x0(x0, opt_, ws.q, ws.scratch);
        // x_p = μ̃ + σ_t·z  (Algorithm 2, line 4)
        if (!learned_) {
            if (any_noise)
                lincomb_noise(x, per_sample(ws.c0), x0, per_sample(ws.c1), x, per_sample(ws.c2),
                              detail::noise_term(this->noise, z, i));
            else lincomb(x, per_sample(ws.c0), x0, per_sample(ws.c1), x);
        } else {
            if (any_noise) this->noise(z, i);
            lincomb(x, per_sample(ws.c0), x0, per_sample(ws.c1), x);
            add_learned_noise(x, z);
        }
        this->report(ws.t, x0);
    }

    // x_p += σ_t·z elementwise with the learned σ_t (samples whose step adds no noise are skipped).
    void add_learned_noise(tensor_view<T, S> x, tensor_view<T, S> z) {
        auto& ws = this->ws;
        for (std::size_t b = 0; b < x.batch; ++b) {
            if (ws.c2[b] == 0.0) continue;
            const tensor_view<T, S> xb{x.sample(b), 1, x.per_sample}, zb{z.sample(b), 1, x.per_sample};
            const tensor_view<const T, S> vb{variance_.data() + b * x.per_sample, 1, x.per_sample};
            const double lmin = std::log(var_small_[b]), lmax = std::log(beta_[b]);
            if (opt_.variance_type == ddpm_variance::learned_range)
                transform(xb, detail::learned_range_noise<T>{lmin, lmax}, xb, vb, zb);
            else
                transform(xb, detail::learned_noise<T>{}, xb, vb, zb);
        }
    }

    ddpm_options opt_;
    bool learned_;
    space_buffer<T, S> variance_;
    std::vector<double> beta_, var_small_;  // β'_t and β̃_t per sample
};

// The one-call form. x: the initial noise x_{t_0} (VP scale: N(0, I) for a full run) on entry, the sample on
// return. first_sample: the id of sample 0 within the whole job (the model's model_cond::first_sample).
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_ddpm(Model& m, X&& x, std::span<const double> alphas_cumprod, const time_grid& grid,
                 const ddpm_options& opt = {}, Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    ddpm_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, grid, opt, noise, first_sample);
    s.set_report_denoised(detail::observer_reads_denoised<Obs>());
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
