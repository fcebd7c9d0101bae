#pragma once
// DPM-Solver with adaptive step size (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion
// Probabilistic Model Sampling in Around 10 Steps", arXiv:2206.00927, §3.3 and Algorithm 4 of the
// appendix, "DPM-Solver-12" / "DPM-Solver-23"), with the PID step-size control of k-diffusion's
// sample_dpm_adaptive (samplers/step_control.hpp).
//
// σ-space (α = 1), time λ = −log σ (the half log-SNR), ε = (x − D(x; σ))/σ. Every attempt from λ_s with step
// h = λ_t − λ_s computes a lower- and a higher-order DPM-Solver solution sharing their model evaluations:
//   order 2:  x_low = DPM-Solver-1,            x_high = DPM-Solver-2 (r₁ = 1/2)          2 model calls
//   order 3:  x_low = DPM-Solver-2 (r₁ = 1/3), x_high = DPM-Solver-3 (r₁ = 1/3, r₂ = 2/3) 3 model calls
// and the error ‖(x_low − x_high)/δ‖_RMS with δ = max(atol, rtol·max(|x_low|, |x_prev|)) (x_prev = x_low of
// the previous accepted step). The PID controller scales h and accepts or rejects the attempt; an accepted
// step moves x to x_high (plus fresh noise when η > 0).
//
// With η > 0 each step goes deterministically to σ_down of the ancestral split (σ_down, σ_up) =
// ancestral_step(σ_s, σ_t, η), capped at the interval's end, then adds s_noise·√(σ_t² − σ_down²)·z; the
// controller then uses order 1.5 (k-diffusion's choice).
//
// The grid σ_0 ≥ σ_1 ≥ … ≥ σ_N: the solver walks every interval adaptively (h clipped at its end; an
// interval is done once λ is within 1e-5 of its end, k-diffusion's rule) and notifies the observer at each
// point. k-diffusion's sample_dpm_adaptive(σ_min, σ_max) is the grid {σ_max, σ_min}. An interval into
// σ = 0 is the limit of DPM-Solver-1, x = D(x; σ): one model call.
//
// Error norm (rk_error_norm): `per_sample` (default) gives every sample its own controller, step sizes and
// position in λ (samples finish at different attempts; finished rows are evaluated at their own σ and
// ignored), so a sample's result does not depend on the rest of the batch; `batch` is k-diffusion's norm over
// the flattened batch (one step size for all samples; needs a shared grid). Noise draws are numbered per
// sample by its accepted steps (draw k = its k-th accepted step, k-diffusion's call order), so counter
// noise stays independent of the batch split in per-sample mode.
//
// dpm_adaptive_stepper<T, Noise, S> (samplers/stepper.hpp) takes one grid interval per step, integrating it
// adaptively inside the step (the accept/reject loop, 2–3 model calls an attempt) and keeping the
// controllers, positions and ode_stats (stats()) from step to step; sample_dpm_adaptive is its one-call form.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/sigma_common.hpp"
#include "diffuse/samplers/step_control.hpp"

namespace diffuse {

// Knob names and defaults of k-diffusion's sample_dpm_adaptive.
struct dpm_adaptive_options {
    int order = 3;  // 2: DPM-Solver-12, 3: DPM-Solver-23
    double rtol = 0.05;
    double atol = 0.0078;
    double h_init = 0.05;  // first step in λ = −log σ
    double pcoeff = 0.0;
    double icoeff = 1.0;
    double dcoeff = 0.0;
    double accept_safety = 0.81;
    double eta = 0.0;
    double s_noise = 1.0;
    rk_error_norm norm = rk_error_norm::per_sample;  // batch: k-diffusion's batch-coupled norm
    std::size_t max_attempts = 100000;               // step attempts per grid interval
};

namespace detail {

inline void check_dpm_adaptive(const dpm_adaptive_options& o, const char* where) {
    require(o.order == 2 || o.order == 3, where, "order", o.order, "{2, 3}");
    require(o.rtol >= 0 && std::isfinite(o.rtol), where, "rtol", o.rtol, "[0, inf)");
    require(o.atol > 0 && std::isfinite(o.atol), where, "atol", o.atol, "(0, inf)");
    require(o.h_init > 0 && std::isfinite(o.h_init), where, "h_init", o.h_init, "(0, inf)");
    require(std::isfinite(o.pcoeff), where, "pcoeff", o.pcoeff, "a finite number");
    require(std::isfinite(o.icoeff), where, "icoeff", o.icoeff, "a finite number");
    require(std::isfinite(o.dcoeff), where, "dcoeff", o.dcoeff, "a finite number");
    require(std::isfinite(o.accept_safety), where, "accept_safety", o.accept_safety, "a finite number");
    require(o.eta >= 0 && std::isfinite(o.eta), where, "eta", o.eta, "[0, inf)");
    require(o.s_noise >= 0 && std::isfinite(o.s_noise), where, "s_noise", o.s_noise, "[0, inf)");
    require(o.max_attempts >= 1, where, "max_attempts", o.max_attempts, ">= 1");
}

// ε = (x − D)/σ per sample from the model's D = D(x; σ) (Lu et al. 2022's noise prediction ε_θ in σ-space).
template <class T, memory_space S>
void dpm_eps(sigma_state<T, S>& st, const tensor_view<T, S>& x, std::span<const double> sigma, const tensor_view<T, S>& den,
             const tensor_view<T, S>& eps) {
    for (std::size_t b = 0; b < st.batch; ++b) st.tmp[b] = 1.0 / sigma[b];
    for (std::size_t b = 0; b < st.batch; ++b) st.c4[b] = -st.tmp[b];
    lincomb(eps, per_sample(st.tmp), x, per_sample(st.c4), den);
}

}  // namespace detail

// DPM-Solver-12 / DPM-Solver-23 with PID step-size control, one grid interval per step.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpm_adaptive_stepper : public detail::sigma_stepper<dpm_adaptive_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::sigma_stepper<dpm_adaptive_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpm_adaptive_stepper<T, Noise, S>, T, S>;

public:
    dpm_adaptive_stepper(batch_shape shape, const time_grid& grid, const dpm_adaptive_options& opt = {}, Noise noise = {})
        : base(shape, grid, std::forward<Noise>(noise), "sample_dpm_adaptive"), opt_(opt), lam_(shape.batch),
          lam_end_(shape.batch), lam_t_(shape.batch), sig_s_(shape.batch), sig_t_(shape.batch), sig_down_(shape.batch),
          sig1_(shape.batch), sig2_(shape.batch), h_(shape.batch), err_(shape.batch), ss_(shape.batch),
          noise_coef_(shape.batch), ca_(shape.batch), cb_(shape.batch), cc_(shape.batch), n_accept_(shape.batch, 0),
          active_(shape.batch), pending_(shape.batch) {
        const char* where = this->where();
        detail::check_dpm_adaptive(opt_, where);
        if (opt_.norm == rk_error_norm::batch && !grid.shared())
            detail::fail(where, "norm = batch controls one step for the batch and needs a shared time grid");
        for (std::size_t b = 0; b < grid.rows(); ++b)
            for (std::size_t i = 0; i < grid.steps(); ++i)
                detail::require(grid(i + 1, b) <= grid(i, b), where, "sigma[i+1]", grid(i + 1, b),
                                "<= sigma[i] (a decreasing grid)");
        ctrl_.assign(shape.batch, pid_step_controller(opt_.h_init, opt_.pcoeff, opt_.icoeff, opt_.dcoeff,
                                                      opt_.eta > 0 ? 1.5 : double(opt_.order), opt_.accept_safety));
        for (std::size_t b = 0; b < shape.batch; ++b) lam_[b] = -std::log(grid(0, b));
    }
    // Model calls and accepted / rejected attempts so far (per_sample: summed over samples; batch: counted
    // once per attempt, as k-diffusion's info).
    [[nodiscard]] const ode_stats& stats() const noexcept { return stats_; }

private:
    detail::step_task run_step(tensor_view<T, S> x) {
        auto& st = this->st;
        const std::size_t i = this->step_index(), B = st.batch;
        const auto den = den_.v(), e0 = e0_.v(), e1 = e1_.v(), e2 = e2_.v(), u = u_.v(), lo = lo_.v(), hi = hi_.v(),
                   tmp = tmp_.v();
        const double r1 = opt_.order == 2 ? 0.5 : 1.0 / 3.0, r2 = 2.0 / 3.0;
        if (i == 0) detail::copy_values(prev_.v(), x);  // x_prev = x before the first step
        this->load_step();
        bool into_zero = false;
        for (std::size_t b = 0; b < B; ++b) {
            lam_end_[b] = st.s_next[b] > 0 ? -std::log(st.s_next[b]) : INFINITY;
            active_[b] = st.s_next[b] > 0 && lam_[b] < lam_end_[b] - 1e-5;  // k-diffusion's loop condition
            into_zero = into_zero || st.s_next[b] == 0;
        }
        std::size_t attempts = 0;
        while (std::any_of(active_.begin(), active_.end(), [](std::uint8_t a) { return a != 0; })) {
            if (++attempts > opt_.max_attempts)
                detail::fail(this->where(), "grid interval " + std::to_string(i) + " needed more than max_attempts = " +
                                                std::to_string(opt_.max_attempts) + " step attempts");
            prepare_attempt(r1, r2);
            // ε₀ at (x, σ_s); u₁ = x − σ_{s1}(e^{r₁h} − 1)ε₀ (Lu et al. 2022, Algorithm 1/2, first stage)
            co_await this->denoise(x, sig_s_, den);
            detail::dpm_eps(st, x, sig_s_, den, e0);
            for (std::size_t b = 0; b < B; ++b) st.c0[b] = -sig1_[b] * std::expm1(r1 * h_[b]);
            lincomb(u, 1.0, x, per_sample(st.c0), e0);
            co_await this->denoise(u, sig1_, tmp);
            detail::dpm_eps(st, u, sig1_, tmp, e1);
            for (std::size_t b = 0; b < B; ++b) {
                const double em = std::expm1(h_[b]);
                st.c0[b] = -sig_down_[b] * em;  // DPM-Solver-1: x − σ_t(e^h − 1)ε₀ (Lu et al. eq. 3.7 with α = 1)
                // DPM-Solver-2 with r₁ (Algorithm 1): − σ_t/(2r₁)(e^h − 1)(ε₁ − ε₀)
                st.c1[b] = -sig_down_[b] / (2.0 * r1) * em;
            }
            if (opt_.order == 2) {
                lincomb(lo, 1.0, x, per_sample(st.c0), e0);
                for (std::size_t b = 0; b < B; ++b) ca_[b] = st.c0[b] - st.c1[b];
                lincomb(hi, 1.0, x, per_sample(ca_), e0, per_sample(st.c1), e1);
            } else {
                for (std::size_t b = 0; b < B; ++b) ca_[b] = st.c0[b] - st.c1[b];
                lincomb(lo, 1.0, x, per_sample(ca_), e0, per_sample(st.c1), e1);
                // DPM-Solver-3 (Algorithm 2, r₁ = 1/3, r₂ = 2/3):
                //   u₂ = x − σ_{s2}(e^{r₂h} − 1)ε₀ − σ_{s2}(r₂/r₁)((e^{r₂h} − 1)/(r₂h) − 1)(ε₁ − ε₀)
                //   x_high = x − σ_t(e^h − 1)ε₀ − σ_t/r₂·((e^h − 1)/h − 1)(ε₂ − ε₀)
                for (std::size_t b = 0; b < B; ++b) {
                    const double hb = h_[b] != 0 ? h_[b] : 1.0, em2 = std::expm1(r2 * hb);
                    const double k = h_[b] != 0 ? -sig2_[b] * (r2 / r1) * (em2 / (r2 * hb) - 1.0) : 0.0;
                    st.c2[b] = -sig2_[b] * std::expm1(r2 * h_[b]) - k;
                    st.c3[b] = k;
                }
                lincomb(u, 1.0, x, per_sample(st.c2), e0, per_sample(st.c3), e1);
                co_await this->denoise(u, sig2_, tmp);
                detail::dpm_eps(st, u, sig2_, tmp, e2);
                for (std::size_t b = 0; b < B; ++b) {
                    const double k = h_[b] != 0 ? -sig_down_[b] / r2 * (std::expm1(h_[b]) / h_[b] - 1.0) : 0.0;
                    cb_[b] = st.c0[b] - k;
                    cc_[b] = k;
                }
                lincomb(hi, 1.0, x, per_sample(cb_), e0, per_sample(cc_), e2);
            }
            stats_.nfe += std::size_t(opt_.order);
            accept_or_reject(x);
            add_ancestral_noise(x);
        }
        if (into_zero) {  // x = D(x; σ) into σ = 0 (the limit of DPM-Solver-1)
            for (std::size_t b = 0; b < B; ++b) sig_s_[b] = std::exp(-lam_[b]);
            co_await this->denoise(x, sig_s_, den);
            ++stats_.nfe;
            for (std::size_t b = 0; b < B; ++b) {
                const bool z = st.s_next[b] == 0;
                st.c0[b] = z ? 0.0 : 1.0;
                st.c1[b] = z ? 1.0 : 0.0;
                if (z) lam_[b] = INFINITY;
            }
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den);
        }
        this->report(st.s, den);
    }

    // Per-sample step λ_s → λ_t (capped at the interval's end); with η > 0 the deterministic part stops at
    // λ_t_ = −log σ_down and σ_up is recomputed as √(σ_t² − σ_t_²). Inactive rows: h = 0.
    void prepare_attempt(double r1, double r2) {
        for (std::size_t b = 0; b < lam_.size(); ++b) {
            sig_s_[b] = std::exp(-lam_[b]);
            double t = lam_[b], t_ = lam_[b];
            noise_coef_[b] = 0.0;
            if (active_[b]) {
                t = std::min(lam_end_[b], lam_[b] + ctrl_[b].h);
                t_ = t;
                if (opt_.eta > 0) {
                    const auto a = ancestral_step(sig_s_[b], std::exp(-t), opt_.eta);
                    t_ = std::min(lam_end_[b], -std::log(a.down));
                    noise_coef_[b] = opt_.s_noise * std::sqrt(std::exp(-2.0 * t) - std::exp(-2.0 * t_));
                }
            }
            lam_t_[b] = t;
            h_[b] = t_ - lam_[b];
            sig_t_[b] = std::exp(-t);
            sig_down_[b] = std::exp(-t_);
            sig1_[b] = std::exp(-(lam_[b] + r1 * h_[b]));
            sig2_[b] = std::exp(-(lam_[b] + r2 * h_[b]));
        }
    }

    // Error estimate (k-diffusion's δ = max(atol, rtol·max(|x_low|, |x_prev|))), RMS per sample or batch; the
    // controllers accept (x ← x_high, x_prev ← x_low, λ ← λ_t) or reject each active sample's attempt.
    void accept_or_reject(const tensor_view<T, S>& x) {
        const double rtol = opt_.rtol, atol = opt_.atol;
        const bool coupled = opt_.norm == rk_error_norm::batch;
        transform(
            tmp_.v(),
            [=](T l, T hgh, T p) {
                return T((double(l) - double(hgh)) / std::max(atol, rtol * std::max(std::abs(double(l)), std::abs(double(p)))));
            },
            lo_.v(), hi_.v(), prev_.v());
        detail::error_rms(tmp_.v(), opt_.norm, ss_, err_);
        for (std::size_t b = 0; b < lam_.size(); ++b) {
            pending_[b] = 0;
            if (!active_[b]) continue;
            const bool accept = ctrl_[b].propose(err_[b]);
            if (coupled && b > 0) {
                // one system: every controller saw the same error and moves identically
            } else if (accept) {
                ++stats_.accepted;
            } else {
                ++stats_.rejected;
            }
            if (!accept) continue;
            detail::copy_values(detail::sample_view(prev_.v(), b), detail::sample_view(lo_.v(), b));
            detail::copy_values(detail::sample_view(x, b), detail::sample_view(hi_.v(), b));
            lam_[b] = lam_t_[b];
            pending_[b] = noise_coef_[b] != 0.0;
            ++n_accept_[b];
            if (!(lam_[b] < lam_end_[b] - 1e-5)) active_[b] = 0;
        }
    }

    // Fresh noise s_noise·σ_up·z for accepted ancestral steps; draw k = the sample's k-th accepted step (one
    // source call per distinct k, for the interval σ_s → σ_t).
    void add_ancestral_noise(const tensor_view<T, S>& x) {
        const auto pending = [&] { return std::any_of(pending_.begin(), pending_.end(), [](std::uint8_t p) { return p != 0; }); };
        while (pending()) {
            std::uint64_t k = UINT64_MAX;
            for (std::size_t b = 0; b < lam_.size(); ++b)
                if (pending_[b]) k = std::min(k, n_accept_[b] - 1);
            for (std::size_t b = 0; b < lam_.size(); ++b) {
                const bool use = pending_[b] && n_accept_[b] - 1 == k;
                ca_[b] = use ? noise_coef_[b] : 0.0;
                if (use) pending_[b] = 0;
            }
            detail::draw_noise(this->noise, tmp_.v(), k, sig_s_, sig_t_);
            lincomb(x, 1.0, x, per_sample(ca_), tmp_.v());
        }
    }

    dpm_adaptive_options opt_;
    // Per-sample solver state: position λ, controller, accepted steps (= noise draw number), flags.
    std::vector<double> lam_, lam_end_, lam_t_, sig_s_, sig_t_, sig_down_, sig1_, sig2_, h_, err_, ss_, noise_coef_;
    std::vector<double> ca_, cb_, cc_;  // extra coefficient columns
    std::vector<pid_step_controller> ctrl_;
    std::vector<std::uint64_t> n_accept_;
    std::vector<std::uint8_t> active_, pending_;
    typename detail::sigma_state<T, S>::buffer den_ = this->st.make_buffer(), e0_ = this->st.make_buffer(),
                                            e1_ = this->st.make_buffer(), e2_ = this->st.make_buffer(),
                                            u_ = this->st.make_buffer(), lo_ = this->st.make_buffer(),
                                            hi_ = this->st.make_buffer(), prev_ = this->st.make_buffer(),
                                            tmp_ = this->st.make_buffer();
    ode_stats stats_;
};

// The one-call form: x enters as σ_0·z and leaves as the sample. Returns model calls and accepted / rejected
// attempts.
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
ode_stats sample_dpm_adaptive(Model& m, X&& x, const time_grid& grid, const dpm_adaptive_options& opt = {},
                              Noise&& noise = {}, Obs&& obs = {}) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpm_adaptive_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), grid, opt, noise);
    run(s, m, std::forward<X>(x), obs);
    return s.stats();
}

}  // namespace diffuse
