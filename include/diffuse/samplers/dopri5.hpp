#pragma once
// The adaptive Dormand–Prince 5(4) integrator (Dormand & Prince 1980) of a batch of ODEs dy/dt = f(y, t),
// shared by the probability-flow ODE sampler (samplers/ode.hpp, sample_pf_ode_rk45) and the ODE
// log-likelihood (metrics/likelihood.hpp). Error control as in Hairer, Nørsett & Wanner, "Solving
// ODEs I", §II.4 — scipy's solve_ivp RK45, which score_sde uses:
//   * starting step from §II.4's algorithm (or a given first_step), capped by max_step;
//   * error h·Σ e_j K_j scaled by atol + rtol·max(|y|, |y_new|), RMS norm per sample or over the batch
//     (step_control.hpp's rk_error_norm);
//   * accept when the norm is < 1, then h ← h·min(10, 0.9·err^(−1/5)) (no growth right after a
//     rejection); on rejection h ← h·max(0.2, 0.9·err^(−1/5)).
// FSAL: the 7th stage is f(t + h, y_new) and becomes the next step's first.
//
//   dopri5_integrator<T> ode(B, D, options, direction, where);   direction +1 (t increases) or −1
//   ode.start(f, y, t, bound);          f(y, t), first step size
//   ode.advance(f, y, t, bound, i);     integrates every sample from t[b] to bound[b] (landing on it);
//                                       y and t are updated in place; i names the interval in errors
//   ode.stats()                         model calls, accepted and rejected steps
// f(at, times, out): out = f(at, times) for a B×D tensor_view<T, S> `at` and per-sample times (a span). With
// rk_error_norm::batch every sample takes the same steps, so times are equal across the batch whenever
// the start times and bounds are. start() and advance() are short loops over public phases (start_call,
// start_probe, …, finish_attempt), each returning the ode_call it needs evaluated next: a caller whose f
// cannot be called from inside the integrator (the RK45 stepper's coroutine) drives the phases itself.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/space_buffer.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/core/tensor_copy.hpp"
#include "diffuse/samplers/step_control.hpp"

namespace diffuse {

struct dopri5_options {
    double rtol = 1e-5;
    double atol = 1e-5;
    rk_error_norm norm = rk_error_norm::per_sample;
    double first_step = 0;                                     // 0: choose automatically (Hairer §II.4)
    double max_step = std::numeric_limits<double>::infinity();
    std::size_t max_attempts = 100000;                         // step attempts per advance()
};

namespace detail {

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

[[nodiscard]] inline std::string dopri5_time_string(double t) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", t);
    return buf;
}

}  // namespace detail

// One evaluation the integrator needs: out = f(at, times) (at and out are B×D, times per sample).
template <class T, memory_space S = memory_space::host>
struct ode_call {
    tensor_view<T, S> at;
    std::span<const double> times;
    tensor_view<T, S> out;
};

// S: the memory space of the state and the stage buffers (host by default); per-sample step sizes are host.
template <class T, memory_space S = memory_space::host>
class dopri5_integrator {
public:
    dopri5_integrator(std::size_t batch, std::size_t per_sample, const dopri5_options& opt, double direction,
                      const char* where)
        : B_(batch), D_(per_sample), opt_(opt), dir_(direction < 0 ? -1.0 : 1.0), where_(where), kbuf_(7),
          ynew_(batch * per_sample), tmp_(batch * per_sample), h_(batch), habs_(batch), tnew_(batch), en_(batch),
          ss_(batch), ts_(batch), d0_(batch), d1_(batch), h0_(batch), active_(batch), rejected_(batch), fresh_(batch) {
        detail::require(std::isfinite(opt.rtol) && opt.rtol > 0, where, "rtol", opt.rtol, "(0, inf)");
        detail::require(std::isfinite(opt.atol) && opt.atol > 0, where, "atol", opt.atol, "(0, inf)");
        detail::require(opt.first_step >= 0 && std::isfinite(opt.first_step), where, "first_step", opt.first_step,
                        "[0, inf) (0 = automatic)");
        detail::require(opt.max_step > 0, where, "max_step", opt.max_step, "(0, inf]");
        for (auto& k : kbuf_) k = space_buffer<T, S>(batch * per_sample);
        for (auto& v : ca_) v.resize(batch);
        for (auto& v : ce_) v.resize(batch);
    }

    [[nodiscard]] const ode_stats& stats() const noexcept { return st_; }

    // The driving loops for a callable f(at, times, out). A caller that cannot call f from inside a loop (a
    // stepper's coroutine: samplers/ode.hpp) runs the same phases below itself, evaluating every ode_call.

    // K_1 = f(y, t) and the first step size (towards bound when it is automatic).
    template <class F>
    void start(F&& f, tensor_view<T, S> y, std::span<const double> t, std::span<const double> bound) {
        call(f, start_call(y, t));
        if (start_probe(y, t, bound)) {
            call(f, probe_call());
            start_finish(y, t, bound);
        }
    }
    // Integrates sample b from t[b] to bound[b] (start() first); y and t hold the state at the bound on return.
    template <class F>
    void advance(F&& f, tensor_view<T, S> y, std::span<double> t, std::span<const double> bound, std::size_t interval) {
        begin_interval(t, bound, interval);
        while (next_attempt(t, bound)) {
            for (std::size_t s = 1; s < 6; ++s) call(f, stage_call(s, y, t));
            call(f, solution_call(y));
            finish_attempt(y, t, bound);
        }
    }

    // --- start, in phases: start_call; start_probe (true: evaluate probe_call, then start_finish) ---
    ode_call<T, S> start_call(tensor_view<T, S> y, std::span<const double> t) {
        ++st_.nfe;
        return {y, t, k(0)};
    }
    // After K_1: the first step size when it is given; else the probe y + h₀K_1 of Hairer, Nørsett & Wanner
    // §II.4's "starting step size" algorithm (h₀ = 0.01·‖y‖/‖f‖), and true.
    bool start_probe(tensor_view<T, S> y, std::span<const double> t, std::span<const double> bound) {
        if (opt_.first_step > 0) {
            std::fill(habs_.begin(), habs_.end(), opt_.first_step);
            return false;
        }
        const double atol = opt_.atol, rtol = opt_.rtol;
        transform(tv(tmp_), [=](T v) { return double(v) / (atol + std::abs(double(v)) * rtol); }, y);
        rms(d0_);
        transform(tv(tmp_), [=](T fv, T v) { return double(fv) / (atol + std::abs(double(v)) * rtol); }, k(0), y);
        rms(d1_);
        for (std::size_t b = 0; b < B_; ++b) {
            h0_[b] = (d0_[b] < 1e-5 || d1_[b] < 1e-5) ? 1e-6 : 0.01 * d0_[b] / d1_[b];
            h0_[b] = std::min(h0_[b], std::abs(bound[b] - t[b]));
            h_[b] = h0_[b] * dir_;
            ts_[b] = t[b] + h0_[b] * dir_;
        }
        lincomb(tv(ynew_), 1.0, y, per_sample(h_), k(0));
        return true;
    }
    // K_2 = f(y + h₀K_1, t + h₀), the probe's derivative.
    ode_call<T, S> probe_call() {
        ++st_.nfe;
        return {tv(ynew_), ts_, k(1)};
    }
    // h₁ from the second-derivative estimate ‖K_2 − K_1‖/h₀; the first step is min(100h₀, h₁) (§II.4).
    void start_finish(tensor_view<T, S> y, std::span<const double> t, std::span<const double> bound) {
        const double atol = opt_.atol, rtol = opt_.rtol;
        std::vector<double>& d2 = en_;  // scratch until the first attempt
        transform(tv(tmp_),
                  [=](T f1, T f0, T v) { return (double(f1) - double(f0)) / (atol + std::abs(double(v)) * rtol); }, k(1),
                  k(0), y);
        rms(d2);
        for (std::size_t b = 0; b < B_; ++b) {
            d2[b] /= h0_[b];
            const double h1 = (d1_[b] <= 1e-15 && d2[b] <= 1e-15) ? std::max(1e-6, h0_[b] * 1e-3)
                                                                  : std::pow(0.01 / std::max(d1_[b], d2[b]), 1.0 / 5);
            habs_[b] = std::min({100 * h0_[b], h1, std::abs(bound[b] - t[b]), opt_.max_step});
        }
    }

    // --- one grid interval, in phases: begin_interval; while next_attempt: stage_call(1…5), solution_call,
    // finish_attempt (each ode_call evaluated in turn) ---
    void begin_interval(std::span<const double> t, std::span<const double> bound, std::size_t interval) {
        std::fill(active_.begin(), active_.end(), 1);
        std::fill(fresh_.begin(), fresh_.end(), 1);
        std::fill(rejected_.begin(), rejected_.end(), 0);
        for (std::size_t b = 0; b < B_; ++b)
            if (dir_ * (t[b] - bound[b]) >= 0) active_[b] = 0;
        attempts_ = 0;
        interval_ = interval;
    }
    // False when every sample has reached its bound; else the step sizes of the next attempt (h clipped at
    // the bound, at least 10 ulp of t; inactive samples h = 0).
    bool next_attempt(std::span<const double> t, std::span<const double> bound) {
        if (std::none_of(active_.begin(), active_.end(), [](std::uint8_t a) { return a != 0; })) return false;
        if (++attempts_ > opt_.max_attempts)
            detail::fail(where_, "grid interval " + std::to_string(interval_) + " needed more than max_attempts = " +
                                     std::to_string(opt_.max_attempts) + " step attempts");
        const double dir = dir_;
        for (std::size_t b = 0; b < B_; ++b) {
            if (!active_[b]) {
                h_[b] = 0.0;
                tnew_[b] = t[b];
                continue;
            }
            const double min_step = 10 * std::abs(std::nextafter(t[b], dir * INFINITY) - t[b]);
            if (fresh_[b]) habs_[b] = habs_[b] > opt_.max_step ? opt_.max_step : std::max(habs_[b], min_step);
            if (habs_[b] < min_step)
                detail::fail(where_, "the step size fell below the smallest representable step at t = " +
                                         detail::dopri5_time_string(t[b]) + " (sample " + std::to_string(b) + ")");
            tnew_[b] = t[b] + habs_[b] * dir;
            if (dir * (tnew_[b] - bound[b]) > 0) tnew_[b] = bound[b];
            h_[b] = tnew_[b] - t[b];
            habs_[b] = std::abs(h_[b]);
        }
        return true;
    }
    // Stage s = 2…6 (s = 1…5 here): K_{s+1} = f(y + h Σ_j a_sj K_j, t + c_s h).
    ode_call<T, S> stage_call(std::size_t s, tensor_view<T, S> y, std::span<const double> t) {
        using dp = detail::dopri5;
        for (std::size_t b = 0; b < B_; ++b) {
            ts_[b] = t[b] + dp::c[s] * h_[b];
            for (std::size_t j = 0; j < s; ++j) ca_[j][b] = h_[b] * dp::a[s][j];
        }
        const auto c = [&](std::size_t j) { return per_sample(ca_[j]); };
        const tensor_view<T, S> tmp = tv(tmp_);
        switch (s) {
            case 1: lincomb(tmp, 1.0, y, c(0), k(0)); break;
            case 2: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1)); break;
            case 3: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1), c(2), k(2)); break;
            case 4: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1), c(2), k(2), c(3), k(3)); break;
            default: lincomb(tmp, 1.0, y, c(0), k(0), c(1), k(1), c(2), k(2), c(3), k(3), c(4), k(4)); break;
        }
        ++st_.nfe;
        return {tmp, ts_, k(s)};
    }
    // y_new = y + h Σ b_j K_j (b_2 = 0); K_7 = f(y_new, t + h) (FSAL: the next step's K_1).
    ode_call<T, S> solution_call(tensor_view<T, S> y) {
        using dp = detail::dopri5;
        for (std::size_t j = 0; j < 5; ++j)
            for (std::size_t b = 0; b < B_; ++b) ca_[j][b] = h_[b] * dp::b[j < 1 ? 0 : j + 1];
        const tensor_view<T, S> ynew = tv(ynew_);
        lincomb(ynew, 1.0, y, per_sample(ca_[0]), k(0), per_sample(ca_[1]), k(2), per_sample(ca_[2]), k(3),
                per_sample(ca_[3]), k(4), per_sample(ca_[4]), k(5));
        ++st_.nfe;
        return {ynew, tnew_, k(6)};
    }
    // The error estimate h Σ e_j K_j (e_2 = 0) scaled by atol + rtol·max(|y|, |y_new|), its RMS norm, and per
    // sample: accept (y, t ← y_new, t + h; h ← h·min(10, 0.9·err^(−1/5)), no growth right after a rejection)
    // or reject (h ← h·max(0.2, 0.9·err^(−1/5))).
    void finish_attempt(tensor_view<T, S> y, std::span<double> t, std::span<const double> bound) {
        using dp = detail::dopri5;
        constexpr std::size_t ej[6] = {0, 2, 3, 4, 5, 6};  // stages with a nonzero error weight
        const double rtol = opt_.rtol, atol = opt_.atol, dir = dir_;
        const tensor_view<T, S> tmp = tv(tmp_), ynew = tv(ynew_);
        for (std::size_t q = 0; q < 6; ++q)
            for (std::size_t b = 0; b < B_; ++b) ce_[q][b] = h_[b] * dp::e[ej[q]];
        lincomb(tmp, per_sample(ce_[0]), k(0), per_sample(ce_[1]), k(2), per_sample(ce_[2]), k(3), per_sample(ce_[3]),
                k(4), per_sample(ce_[4]), k(5), per_sample(ce_[5]), k(6));
        transform(tmp,
                  [=](T e, T y0, T y1) {
                      return double(e) / (atol + std::max(std::abs(double(y0)), std::abs(double(y1))) * rtol);
                  },
                  tmp, y, ynew);
        rms(en_);
        for (std::size_t b = 0; b < B_; ++b) {
            if (!active_[b]) continue;
            if (!std::isfinite(en_[b]))
                detail::fail(where_, "the solution is not finite at t = " + detail::dopri5_time_string(t[b]) +
                                         " (sample " + std::to_string(b) + ")");
            if (en_[b] < 1) {
                double factor = en_[b] == 0 ? 10.0 : std::min(10.0, 0.9 * std::pow(en_[b], -1.0 / 5));
                if (rejected_[b]) factor = std::min(1.0, factor);
                habs_[b] *= factor;
                detail::copy_values(detail::sample_view(y, b), detail::sample_view(ynew, b));
                detail::copy_values(detail::sample_view(k(0), b), detail::sample_view(k(6), b));  // FSAL
                t[b] = tnew_[b];
                rejected_[b] = 0;
                fresh_[b] = 1;
                ++st_.accepted;
                if (dir * (t[b] - bound[b]) >= 0) active_[b] = 0;
            } else {
                habs_[b] *= std::max(0.2, 0.9 * std::pow(en_[b], -1.0 / 5));
                rejected_[b] = 1;
                fresh_[b] = 0;
                ++st_.rejected;
            }
        }
    }

private:
    [[nodiscard]] tensor_view<T, S> tv(space_buffer<T, S>& v) { return v.view(B_, D_); }
    [[nodiscard]] tensor_view<T, S> k(std::size_t j) { return tv(kbuf_[j]); }
    void rms(std::vector<double>& out) { detail::error_rms(tv(tmp_), opt_.norm, ss_, out); }
    template <class F>
    static void call(F& f, const ode_call<T, S>& c) {
        f(c.at, c.times, c.out);
    }

    std::size_t B_, D_;
    dopri5_options opt_;
    double dir_;
    const char* where_;
    std::vector<space_buffer<T, S>> kbuf_;
    space_buffer<T, S> ynew_, tmp_;
    std::vector<double> h_, habs_, tnew_, en_, ss_, ts_, d0_, d1_, h0_;
    std::array<std::vector<double>, 5> ca_;  // per-sample h·a_sj, h·b_j
    std::array<std::vector<double>, 6> ce_;  // per-sample h·e_j
    std::vector<std::uint8_t> active_, rejected_, fresh_;
    std::size_t attempts_ = 0, interval_ = 0;
    ode_stats st_;
};

}  // namespace diffuse
