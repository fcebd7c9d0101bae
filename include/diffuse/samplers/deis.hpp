#pragma once
// DEIS multistep (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator",
// arXiv:2204.13902), the log-ρ variant ("ρAB-DEIS", §4) as diffusers' DEISMultistepScheduler runs it, on the
// shared solver table (schedules/solver_sigmas.hpp) and walk (samplers/solver_multistep.hpp).
//
// In ρ = σ̃/α (the VE σ) the noise-prediction ODE is dx/α = ε̂ dρ (paper eq. 11). The step from ρ_{s0} to ρ_t
// integrates the Lagrange polynomial through the last p outputs ε̂_k at ρ_{s_k} in log ρ:
//   x_t = α_t·(x/α_{s0} + Σ_k C_k·ε̂_k),   C_k = I_k(ρ_t) − I_k(ρ_{s0})
// with I_k an antiderivative of the k-th Lagrange basis polynomial in log ρ (times dρ):
//   order 1:  x_t = (α_t/α_s)·x − σ̃_t(e^{h} − 1)·ε̂₀   (the DDIM step)
//   order 2:  I(ρ; b, c) = ρ(−log c + log ρ − 1)/(log b − log c), C₀ = I(·; ρ_{s0}, ρ_{s1}), C₁ = I(·; ρ_{s1}, ρ_{s0})
//   order 3:  I(ρ; b, c, d) = ρ[log c(log d − log ρ + 1) − log d·log ρ + log d + log²ρ − 2 log ρ + 2]
//                             / ((log b − log c)(log b − log d)),  C_k for (b, c, d) the rotations of (s0, s1, s2)
// ε̂ is always recovered from x̂₀ (so dynamic thresholding of x̂₀ applies).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/solver_multistep.hpp"

namespace diffuse {

// DEISMultistepScheduler's stepping options (algorithm_type "deis", solver_type "logrho").
struct deis_options {
    std::size_t solver_order = 2;
    bool lower_order_final = true;
    bool thresholding = false;
    double dynamic_thresholding_ratio = 0.995;
    double sample_max_value = 1.0;
};

// The DEIS stepper over the table `schedule` (multistep_solver_schedule with final_sigma_rule::repeat_last_spaced,
// as DEISMultistepScheduler builds it). Deterministic: the noise slot takes no_noise.
template <class T, class Noise = no_noise, memory_space S = memory_space::host>
class deis_stepper : public detail::solver_multistep_stepper<deis_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::solver_multistep_stepper<deis_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<deis_stepper<T, Noise, S>, T, S>;
    friend base;

public:
    deis_stepper(batch_shape shape, std::span<const double> alphas_cumprod, solver_schedule schedule,
                 const deis_options& opt = {}, Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, std::move(schedule),
               {opt.solver_order, opt.lower_order_final, false, detail::multistep_output::noise_via_data, false},
               clipping_of(opt), std::forward<Noise>(noise), first_sample, "sample_deis") {
        detail::require(this->schedule().sigmas.back() > 0.0, this->where(), "final sigma", 0.0,
                        "(0, inf) (DEIS integrates in log rho)");
        this->plan();
    }

private:
    static sample_clipping clipping_of(const deis_options& o) {
        sample_clipping c;
        c.clip_sample = false;
        c.thresholding = o.thresholding;
        c.dynamic_thresholding_ratio = o.dynamic_thresholding_ratio;
        c.sample_max_value = o.sample_max_value;
        return c;
    }

    // I(ρ; b, c) of order 2 and I(ρ; b, c, d) of order 3 (the top of this file), in upstream's operation order.
    static double antiderivative2(double t, double b, double c) {
        return t * (-std::log(c) + std::log(t) - 1) / (std::log(b) - std::log(c));
    }
    static double antiderivative3(double t, double b, double c, double d) {
        const double lt = std::log(t), lc = std::log(c), ld = std::log(d);
        const double numerator = t * (lc * (ld - lt + 1) - ld * lt + ld + lt * lt - 2 * lt + 2);
        return numerator / ((std::log(b) - lc) * (std::log(b) - ld));
    }

    [[nodiscard]] detail::multistep_update update(std::size_t i, std::size_t p) const {
        const auto& pt = this->point(i + 1);
        const auto& s0 = this->point(i);
        detail::multistep_update u;
        if (p == 1) {
            const double h = pt.lambda - s0.lambda;
            u.a = pt.alpha / s0.alpha;
            u.b = {-(pt.sigma * (std::exp(h) - 1.0)), 0.0, 0.0};
            return u;
        }
        const auto& s1 = this->point(i - 1);
        const double rt = pt.sigma / pt.alpha, r0 = s0.sigma / s0.alpha, r1 = s1.sigma / s1.alpha;
        u.a = pt.alpha / s0.alpha;
        if (p == 2) {
            const double C0 = antiderivative2(rt, r0, r1) - antiderivative2(r0, r0, r1);
            const double C1 = antiderivative2(rt, r1, r0) - antiderivative2(r0, r1, r0);
            u.b = {pt.alpha * C0, pt.alpha * C1, 0.0};
            return u;
        }
        const auto& s2 = this->point(i - 2);
        const double r2 = s2.sigma / s2.alpha;
        const double C0 = antiderivative3(rt, r0, r1, r2) - antiderivative3(r0, r0, r1, r2);
        const double C1 = antiderivative3(rt, r1, r2, r0) - antiderivative3(r0, r1, r2, r0);
        const double C2 = antiderivative3(rt, r2, r0, r1) - antiderivative3(r0, r2, r0, r1);
        u.b = {pt.alpha * C0, pt.alpha * C1, pt.alpha * C2};
        return u;
    }
};

// The one-call form. x: the initial noise (VP scale) on entry, the sample on return.
template <class Model, class X, class Noise = no_noise, class Obs = no_observer>
void sample_deis(Model& m, X&& x, std::span<const double> alphas_cumprod, const solver_schedule& schedule,
                 const deis_options& opt = {}, Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    deis_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, schedule, opt, noise, first_sample);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
