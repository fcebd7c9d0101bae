#pragma once
// Adaptive step-size control shared by the adaptive samplers (samplers/ode.hpp's RK45,
// samplers/dpm_adaptive.hpp's DPM-Solver-12/23):
//
//   rk_error_norm        per_sample: every sample controls its own step on its own error (results do not
//                        depend on the batch split); batch: the flattened batch is one system with one
//                        step size (what scipy's solve_ivp and k-diffusion do).
//   detail::error_rms    the RMS norm of an already-scaled error e/δ (Hairer, Nørsett & Wanner, "Solving
//                        ODEs I", §II.4, eq. 4.11): per sample ‖e_b/δ_b‖/√D, or over the batch ‖e/δ‖/√(B·D)
//                        broadcast to every sample.
//   pid_step_controller  the PID step-size filter of Söderlind 2003 ("Digital filters in adaptive
//                        time-stepping", ACM TOMS 29) as k-diffusion's PIDStepSizeController uses it.
//   ode_stats            model calls and accepted / rejected steps of an adaptive run.

#include <cmath>
#include <cstddef>
#include <vector>

#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

enum class rk_error_norm { per_sample, batch };

struct ode_stats {
    std::size_t nfe = 0;       // model calls (each over the whole batch)
    std::size_t accepted = 0;  // accepted steps (sum over samples in per-sample mode)
    std::size_t rejected = 0;
};

// PID step-size controller on the inverse error ε_n = 1/(err_n + eps) (Söderlind 2003, eq. 2.8 in
// multiplicative form; the coefficients of k-diffusion's PIDStepSizeController):
//   factor = ε_n^{β1} ε_{n−1}^{β2} ε_{n−2}^{β3},  β1 = (k_P + k_I + k_D)/k,  β2 = −(k_P + 2k_D)/k,  β3 = k_D/k
// with k the order of the error estimate, smoothed by the limiter 1 + atan(factor − 1) (Söderlind &
// Wang 2006, "Adaptive time-stepping and computational stability", eq. 2.6). The step is accepted when
// factor ≥ accept_safety; h is multiplied by factor either way, and the error history only moves on
// acceptance. k_P = k_D = 0, k_I = 1 is the elementary (integral) controller h ← h·err^{−1/k}.
struct pid_step_controller {
    double h = 0.0;
    double b1 = 1.0, b2 = 0.0, b3 = 0.0;
    double accept_safety = 0.81;
    double eps = 1e-8;
    double errs[3] = {0.0, 0.0, 0.0};  // inverse errors ε_n, ε_{n−1}, ε_{n−2}
    bool started = false;

    pid_step_controller() = default;
    pid_step_controller(double h_init, double pcoeff, double icoeff, double dcoeff, double order,
                        double accept_safety_ = 0.81, double eps_ = 1e-8)
        : h(h_init), b1((pcoeff + icoeff + dcoeff) / order), b2(-(pcoeff + 2.0 * dcoeff) / order), b3(dcoeff / order),
          accept_safety(accept_safety_), eps(eps_) {}

    // Scales h for the next attempt from this attempt's error; true = accept this attempt.
    bool propose(double error) {
        const double inv = 1.0 / (error + eps);
        if (!started) {
            errs[0] = errs[1] = errs[2] = inv;
            started = true;
        }
        errs[0] = inv;
        double factor = std::pow(errs[0], b1) * std::pow(errs[1], b2) * std::pow(errs[2], b3);
        factor = 1.0 + std::atan(factor - 1.0);
        const bool accept = factor >= accept_safety;
        if (accept) {
            errs[2] = errs[1];
            errs[1] = errs[0];
        }
        h *= factor;
        return accept;
    }
};

namespace detail {

// out[b] = RMS of the scaled error in `scaled` (sample b's own, or the whole batch's for rk_error_norm::batch);
// ss is scratch of size batch.
template <class T, memory_space S>
void error_rms(tensor_view<T, S> scaled, rk_error_norm norm, std::vector<double>& ss, std::vector<double>& out) {
    const std::size_t B = scaled.batch, D = scaled.per_sample;
    sum_squares(tensor_view<const T, S>(scaled), ss);
    if (norm == rk_error_norm::batch) {
        double s = 0;
        for (std::size_t b = 0; b < B; ++b) s += ss[b];
        const double r = std::sqrt(s) / std::sqrt(static_cast<double>(B * D));
        for (std::size_t b = 0; b < B; ++b) out[b] = r;
    } else {
        for (std::size_t b = 0; b < B; ++b) out[b] = std::sqrt(ss[b]) / std::sqrt(static_cast<double>(D));
    }
}

}  // namespace detail
}  // namespace diffuse
