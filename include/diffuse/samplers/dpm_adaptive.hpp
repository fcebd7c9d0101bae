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

// ε = (x − D)/σ per sample, with D from the model (Lu et al. 2022's noise prediction ε_θ in σ-space).
template <class Model, class T>
void dpm_eps(Model& m, sigma_state<T>& st, const tensor_view<T>& x, std::span<const double> sigma,
             const tensor_view<T>& den, const tensor_view<T>& eps, std::size_t step, const char* where) {
    denoise(m, x, st.ones, sigma, den, step, where);
    for (std::size_t b = 0; b < st.batch; ++b) st.tmp[b] = 1.0 / sigma[b];
    for (std::size_t b = 0; b < st.batch; ++b) st.c4[b] = -st.tmp[b];
    lincomb(eps, per_sample(st.tmp), x, per_sample(st.c4), den);
}

}  // namespace detail

// DPM-Solver-12 / DPM-Solver-23 with PID step-size control. Returns model calls and accepted / rejected
// attempts (per_sample: summed over samples; batch: counted once per attempt, as k-diffusion's info).
template <class Model, tensor X, class Noise = counter_noise, class Obs = no_observer>
ode_stats sample_dpm_adaptive(Model& m, X&& x_in, const time_grid& grid, const dpm_adaptive_options& opt = {},
                              Noise&& noise = {}, Obs&& obs = {}) {
    constexpr const char* where = "sample_dpm_adaptive";
    const auto x = detail::writable_view(std::forward<X>(x_in), where);
    using T = typename decltype(x)::value_type;
    detail::check_dpm_adaptive(opt, where);
    detail::sigma_state<T> st(grid, x.batch, x.per_sample, where);
    const std::size_t B = st.batch;
    const bool coupled = opt.norm == rk_error_norm::batch;
    if (coupled && !grid.shared()) detail::fail(where, "norm = batch controls one step for the batch and needs a shared time grid");
    for (std::size_t b = 0; b < grid.rows(); ++b)
        for (std::size_t i = 0; i < st.steps; ++i)
            detail::require(grid(i + 1, b) <= grid(i, b), where, "sigma[i+1]", grid(i + 1, b), "<= sigma[i] (a decreasing grid)");

    auto den = st.make_buffer(), e0 = st.make_buffer(), e1 = st.make_buffer(), e2 = st.make_buffer(), u = st.make_buffer(),
         lo = st.make_buffer(), hi = st.make_buffer(), prev = st.make_buffer(), tmp = st.make_buffer();
    std::copy(x.data, x.data + x.size(), prev.data.begin());  // x_prev = x before the first step

    // Per-sample solver state: position λ, controller, accepted steps (= noise draw number), flags.
    std::vector<double> lam(B), lam_end(B), lam_t(B), sig_s(B), sig_t(B), sig_t_(B), sig1(B), sig2(B), h(B), err(B), ss(B),
        noise_coef(B);
    std::vector<pid_step_controller> ctrl(
        B, pid_step_controller(opt.h_init, opt.pcoeff, opt.icoeff, opt.dcoeff, opt.eta > 0 ? 1.5 : double(opt.order),
                               opt.accept_safety));
    std::vector<std::uint64_t> n_accept(B, 0);
    std::vector<std::uint8_t> active(B), pending(B);
    std::vector<double> ca(B), cb(B), cc(B);  // extra coefficient columns
    const double r1 = opt.order == 2 ? 0.5 : 1.0 / 3.0, r2 = 2.0 / 3.0;
    for (std::size_t b = 0; b < B; ++b) lam[b] = -std::log(grid(0, b));
    ode_stats stats;

    for (std::size_t i = 0; i < st.steps; ++i) {
        st.load(grid, i);
        bool into_zero = false;
        for (std::size_t b = 0; b < B; ++b) {
            lam_end[b] = st.s_next[b] > 0 ? -std::log(st.s_next[b]) : INFINITY;
            active[b] = st.s_next[b] > 0 && lam[b] < lam_end[b] - 1e-5;  // k-diffusion's loop condition
            into_zero = into_zero || st.s_next[b] == 0;
        }
        std::size_t attempts = 0;
        while (std::any_of(active.begin(), active.end(), [](std::uint8_t a) { return a != 0; })) {
            if (++attempts > opt.max_attempts)
                detail::fail(where, "grid interval " + std::to_string(i) + " needed more than max_attempts = " +
                                        std::to_string(opt.max_attempts) + " step attempts");
            // Per-sample step λ_s → λ_t (capped at the interval's end); with η > 0 the deterministic part
            // stops at λ_t_ = −log σ_down and σ_up is recomputed as √(σ_t² − σ_t_²). Inactive rows: h = 0.
            for (std::size_t b = 0; b < B; ++b) {
                sig_s[b] = std::exp(-lam[b]);
                double t = lam[b], t_ = lam[b];
                noise_coef[b] = 0.0;
                if (active[b]) {
                    t = std::min(lam_end[b], lam[b] + ctrl[b].h);
                    t_ = t;
                    if (opt.eta > 0) {
                        const auto a = ancestral_step(sig_s[b], std::exp(-t), opt.eta);
                        t_ = std::min(lam_end[b], -std::log(a.down));
                        noise_coef[b] = opt.s_noise * std::sqrt(std::exp(-2.0 * t) - std::exp(-2.0 * t_));
                    }
                }
                lam_t[b] = t;
                h[b] = t_ - lam[b];
                sig_t[b] = std::exp(-t);
                sig_t_[b] = std::exp(-t_);
                sig1[b] = std::exp(-(lam[b] + r1 * h[b]));
                sig2[b] = std::exp(-(lam[b] + r2 * h[b]));
            }
            // ε₀ at (x, σ_s); u₁ = x − σ_{s1}(e^{r₁h} − 1)ε₀ (Lu et al. 2022, Algorithm 1/2, first stage)
            detail::dpm_eps(m, st, x, sig_s, den.v(), e0.v(), i, where);
            for (std::size_t b = 0; b < B; ++b) st.c0[b] = -sig1[b] * std::expm1(r1 * h[b]);
            lincomb(u.v(), 1.0, x, per_sample(st.c0), e0.v());
            detail::dpm_eps(m, st, u.v(), sig1, tmp.v(), e1.v(), i, where);
            for (std::size_t b = 0; b < B; ++b) {
                const double em = std::expm1(h[b]);
                st.c0[b] = -sig_t_[b] * em;  // DPM-Solver-1: x − σ_t(e^h − 1)ε₀ (Lu et al. eq. 3.7 with α = 1)
                // DPM-Solver-2 with r₁ (Algorithm 1): − σ_t/(2r₁)(e^h − 1)(ε₁ − ε₀)
                st.c1[b] = -sig_t_[b] / (2.0 * r1) * em;
            }
            if (opt.order == 2) {
                lincomb(lo.v(), 1.0, x, per_sample(st.c0), e0.v());
                for (std::size_t b = 0; b < B; ++b) ca[b] = st.c0[b] - st.c1[b];
                lincomb(hi.v(), 1.0, x, per_sample(ca), e0.v(), per_sample(st.c1), e1.v());
            } else {
                for (std::size_t b = 0; b < B; ++b) ca[b] = st.c0[b] - st.c1[b];
                lincomb(lo.v(), 1.0, x, per_sample(ca), e0.v(), per_sample(st.c1), e1.v());
                // DPM-Solver-3 (Algorithm 2, r₁ = 1/3, r₂ = 2/3):
                //   u₂ = x − σ_{s2}(e^{r₂h} − 1)ε₀ − σ_{s2}(r₂/r₁)((e^{r₂h} − 1)/(r₂h) − 1)(ε₁ − ε₀)
                //   x_high = x − σ_t(e^h − 1)ε₀ − σ_t/r₂·((e^h − 1)/h − 1)(ε₂ − ε₀)
                for (std::size_t b = 0; b < B; ++b) {
                    const double hb = h[b] != 0 ? h[b] : 1.0, em2 = std::expm1(r2 * hb);
                    const double k = h[b] != 0 ? -sig2[b] * (r2 / r1) * (em2 / (r2 * hb) - 1.0) : 0.0;
                    st.c2[b] = -sig2[b] * std::expm1(r2 * h[b]) - k;
                    st.c3[b] = k;
                }
                lincomb(u.v(), 1.0, x, per_sample(st.c2), e0.v(), per_sample(st.c3), e1.v());
                detail::dpm_eps(m, st, u.v(), sig2, tmp.v(), e2.v(), i, where);
                for (std::size_t b = 0; b < B; ++b) {
                    const double k = h[b] != 0 ? -sig_t_[b] / r2 * (std::expm1(h[b]) / h[b] - 1.0) : 0.0;
                    cb[b] = st.c0[b] - k;
                    cc[b] = k;
                }
                lincomb(hi.v(), 1.0, x, per_sample(cb), e0.v(), per_sample(cc), e2.v());
            }
            stats.nfe += std::size_t(opt.order);
            // Error estimate (k-diffusion's δ = max(atol, rtol·max(|x_low|, |x_prev|))), RMS per sample or batch.
            const double rtol = opt.rtol, atol = opt.atol;
            transform(
                tmp.v(),
                [=](T l, T hgh, T p) {
                    return T((double(l) - double(hgh)) / std::max(atol, rtol * std::max(std::abs(double(l)), std::abs(double(p)))));
                },
                lo.v(), hi.v(), prev.v());
            detail::error_rms(tmp.v(), opt.norm, ss, err);
            bool any_noise = false;
            for (std::size_t b = 0; b < B; ++b) {
                pending[b] = 0;
                if (!active[b]) continue;
                const bool accept = ctrl[b].propose(err[b]);
                if (coupled && b > 0) {
                    // one system: every controller saw the same error and moves identically
                } else if (accept) {
                    ++stats.accepted;
                } else {
                    ++stats.rejected;
                }
                if (!accept) continue;
                std::copy_n(lo.v().sample(b), st.per_sample, prev.v().sample(b));
                std::copy_n(hi.v().sample(b), st.per_sample, x.sample(b));
                lam[b] = lam_t[b];
                pending[b] = noise_coef[b] != 0.0;
                any_noise = any_noise || pending[b];
                ++n_accept[b];
                if (!(lam[b] < lam_end[b] - 1e-5)) active[b] = 0;
            }
            // Fresh noise s_noise·σ_up·z for accepted ancestral steps; draw k = the sample's k-th accepted step
            // (one source call per distinct k, for the interval σ_s → σ_t).
            while (any_noise) {
                std::uint64_t k = UINT64_MAX;
                for (std::size_t b = 0; b < B; ++b)
                    if (pending[b]) k = std::min(k, n_accept[b] - 1);
                for (std::size_t b = 0; b < B; ++b) {
                    const bool use = pending[b] && n_accept[b] - 1 == k;
                    ca[b] = use ? noise_coef[b] : 0.0;
                    if (use) pending[b] = 0;
                }
                detail::draw_noise(noise, tmp.v(), k, sig_s, sig_t);
                lincomb(x, 1.0, x, per_sample(ca), tmp.v());
                any_noise = std::any_of(pending.begin(), pending.end(), [](std::uint8_t p) { return p != 0; });
            }
        }
        if (into_zero) {  // x = D(x; σ) into σ = 0 (the limit of DPM-Solver-1)
            for (std::size_t b = 0; b < B; ++b) sig_s[b] = std::exp(-lam[b]);
            detail::denoise(m, x, st.ones, sig_s, den.v(), i, where);
            ++stats.nfe;
            for (std::size_t b = 0; b < B; ++b) {
                const bool z = st.s_next[b] == 0;
                st.c0[b] = z ? 0.0 : 1.0;
                st.c1[b] = z ? 1.0 : 0.0;
                if (z) lam[b] = INFINITY;
            }
            lincomb(x, per_sample(st.c0), x, per_sample(st.c1), den.v());
        }
        if (detail::observe(obs, i, st.steps, st.s, x, den.v())) return stats;
    }
    return stats;
}

}  // namespace diffuse
