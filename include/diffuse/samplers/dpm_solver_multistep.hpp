#pragma once
// DPM-Solver and DPM-Solver++ multistep (Lu et al. 2022a, "DPM-Solver", arXiv:2206.00927; Lu et al. 2022b,
// "DPM-Solver++", arXiv:2211.01095) as diffusers' DPMSolverMultistepScheduler runs them: in VP scale on its own
// timestep/σ table (schedules/solver_sigmas.hpp), the network fed the table's integer timesteps
// (samplers/solver_multistep.hpp has the walk, the order rules and the conversions).
//
// With h = λ_t − λ_{s0}, h_k = λ_{s_k} − λ_{s_{k+1}}, r_k = h_k/h, and the divided differences
//   order 2:  D₀ = m₀,  D₁ = (m₀ − m₁)/r₀
//   order 3:  D₁⁽⁰⁾ = (m₀ − m₁)/r₀,  D₁⁽¹⁾ = (m₁ − m₂)/r₁,  D₁ = D₁⁽⁰⁾ + r₀/(r₀ + r₁)·(D₁⁽⁰⁾ − D₁⁽¹⁾),
//             D₂ = (D₁⁽⁰⁾ − D₁⁽¹⁾)/(r₀ + r₁)
// the update is x_t = a·x + c₀·D₀ + c₁·D₁ + c₂·D₂ + c_z·z with (φ = e^{−h} − 1, ψ = e^{h} − 1):
//   dpmsolver++ (data, Lu et al. 2022b Alg. 2):  a = σ̃_t/σ̃_s,  c₀ = −α_t·φ,
//       c₁ = −½α_t·φ (midpoint) or α_t(φ/h + 1) (heun, and order 3),  c₂ = −α_t((φ + h)/h² − ½)
//   dpmsolver (noise, Lu et al. 2022a eq. 5 and Alg. 1's multistep form):  a = α_t/α_s,  c₀ = −σ̃_t·ψ,
//       c₁ = −½σ̃_t·ψ (midpoint) or −σ̃_t(ψ/h − 1) (heun, order 3),  c₂ = −σ̃_t((ψ − h)/h² − ½)
//   sde-dpmsolver++ (Lu et al. 2022b §4, the SDE of Gonzalez et al. 2023 "SEEDS" at η = 1):
//       a = (σ̃_t/σ̃_s)e^{−h},  c₀ = α_t(1 − e^{−2h}),  c₁ = ½α_t(1 − e^{−2h}) (midpoint) or
//       α_t((1 − e^{−2h})/(−2h) + 1) (heun, order 3),  c₂ = α_t((1 − e^{−2h} − 2h)/(2h)² − ½),  c_z = σ̃_t√(1 − e^{−2h})
//       (diffusers' own order-3 coefficient; k-diffusion's sample_dpmpp_3m_sde uses another)
//   sde-dpmsolver (noise):  a = α_t/α_s,  c₀ = −2σ̃_t·ψ,  c₁ = −σ̃_t·ψ (midpoint) or −2σ̃_t(ψ/h − 1) (heun),
//       c_z = σ̃_t√(e^{2h} − 1); no order 3 (upstream has none)
// The SDE variants draw noise i at every step i (also into σ = 0, where c_z = 0).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/samplers/solver_multistep.hpp"

namespace diffuse {

// diffusers' algorithm_type.
enum class dpm_solver_algorithm { dpmsolver_pp, sde_dpmsolver_pp, dpmsolver, sde_dpmsolver };

[[nodiscard]] inline dpm_solver_algorithm parse_dpm_solver_algorithm(std::string_view name) {
    if (name == "dpmsolver++") return dpm_solver_algorithm::dpmsolver_pp;
    if (name == "sde-dpmsolver++") return dpm_solver_algorithm::sde_dpmsolver_pp;
    if (name == "dpmsolver") return dpm_solver_algorithm::dpmsolver;
    if (name == "sde-dpmsolver") return dpm_solver_algorithm::sde_dpmsolver;
    detail::require(false, "parse_dpm_solver_algorithm", "algorithm_type", name,
                    "{dpmsolver++, sde-dpmsolver++, dpmsolver, sde-dpmsolver}");
    return dpm_solver_algorithm::dpmsolver_pp;
}

namespace detail {
// The terms of one DPM-Solver update from state s to t (the table at the top of this file): x_t = a·x_s + c₀·D₀ +
// c₁·D₁ + c₂·D₂ + c_z·z, with c₁ of the midpoint or the heun form (the heun form is also the third order's).
struct dpm_solver_update_terms {
    double h, a, c0, c1_midpoint, c1_heun, c2, cz;
};
[[nodiscard]] inline dpm_solver_update_terms dpm_solver_terms(dpm_solver_algorithm algorithm, const vp_point& pt, const vp_point& s) {
    const double h = pt.lambda - s.lambda;
    dpm_solver_update_terms c{h, 0, 0, 0, 0, 0, 0};
    switch (algorithm) {
        case dpm_solver_algorithm::dpmsolver_pp: {
            const double phi = std::exp(-h) - 1.0;
            c.a = pt.sigma / s.sigma;
            c.c0 = -(pt.alpha * phi);
            c.c1_midpoint = -0.5 * (pt.alpha * phi);
            c.c1_heun = pt.alpha * (phi / h + 1.0);
            c.c2 = -(pt.alpha * ((std::exp(-h) - 1.0 + h) / (h * h) - 0.5));
            break;
        }
        case dpm_solver_algorithm::dpmsolver: {
            const double psi = std::exp(h) - 1.0;
            c.a = pt.alpha / s.alpha;
            c.c0 = -(pt.sigma * psi);
            c.c1_midpoint = -0.5 * (pt.sigma * psi);
            c.c1_heun = -(pt.sigma * (psi / h - 1.0));
            c.c2 = -(pt.sigma * ((std::exp(h) - 1.0 - h) / (h * h) - 0.5));
            break;
        }
        case dpm_solver_algorithm::sde_dpmsolver_pp: {
            const double e2 = 1.0 - std::exp(-2.0 * h);
            c.a = pt.sigma / s.sigma * std::exp(-h);
            c.c0 = pt.alpha * e2;
            c.c1_midpoint = 0.5 * (pt.alpha * e2);
            c.c1_heun = pt.alpha * (e2 / (-2.0 * h) + 1.0);
            c.c2 = pt.alpha * ((1.0 - std::exp(-2.0 * h) - 2.0 * h) / ((2.0 * h) * (2.0 * h)) - 0.5);
            c.cz = pt.sigma * std::sqrt(1.0 - std::exp(-2 * h));
            break;
        }
        case dpm_solver_algorithm::sde_dpmsolver: {
            const double psi = std::exp(h) - 1.0;
            c.a = pt.alpha / s.alpha;
            c.c0 = -2.0 * (pt.sigma * psi);
            c.c1_midpoint = -(pt.sigma * psi);
            c.c1_heun = -2.0 * (pt.sigma * (psi / h - 1.0));
            c.c2 = std::numeric_limits<double>::quiet_NaN();  // no third order upstream
            c.cz = pt.sigma * std::sqrt(std::exp(2 * h) - 1.0);
            break;
        }
    }
    return c;
}
}  // namespace detail

// DPMSolverMultistepScheduler's stepping options under its config names (the table's are in
// solver_schedule_options). Thresholding is dynamic thresholding of x̂₀ (clip_sample is not an option upstream).
struct dpm_solver_multistep_options {
    std::size_t solver_order = 2;
    dpm_solver_algorithm algorithm_type = dpm_solver_algorithm::dpmsolver_pp;
    dpm_solver_type solver_type = dpm_solver_type::midpoint;
    bool lower_order_final = true;
    bool euler_at_final = false;
    bool thresholding = false;
    double dynamic_thresholding_ratio = 0.995;
    double sample_max_value = 1.0;
};

// The DPM-Solver multistep stepper (samplers/stepper.hpp) over the table `schedule` (multistep_solver_schedule)
// of the float32 training ᾱ table. Step i: one evaluation at timestep t_i, then the update of its order.
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpm_solver_multistep_stepper
    : public detail::solver_multistep_stepper<dpm_solver_multistep_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::solver_multistep_stepper<dpm_solver_multistep_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpm_solver_multistep_stepper<T, Noise, S>, T, S>;
    friend base;

public:
    dpm_solver_multistep_stepper(batch_shape shape, std::span<const double> alphas_cumprod, solver_schedule schedule,
                                 const dpm_solver_multistep_options& opt = {}, Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, std::move(schedule), rules_of(opt), clipping_of(opt), std::forward<Noise>(noise),
               first_sample, "sample_dpm_solver_multistep"),
          opt_(opt) {
        const char* where = this->where();
        const bool noise_form = opt.algorithm_type == dpm_solver_algorithm::dpmsolver ||
                                opt.algorithm_type == dpm_solver_algorithm::sde_dpmsolver;
        detail::require(!(noise_form && this->schedule().sigmas.back() == 0.0), where, "final sigma", 0.0,
                        "(0, inf) for the noise-prediction algorithms dpmsolver and sde-dpmsolver (final_sigmas_type "
                        "sigma_min, as upstream requires)");
        detail::require(!(opt.algorithm_type == dpm_solver_algorithm::sde_dpmsolver && opt.solver_order == 3), where,
                        "solver_order", opt.solver_order, "{1, 2} for sde-dpmsolver (upstream has no third-order update)");
        this->plan();
    }

    // diffusers' EDMDPMSolverMultistepScheduler: the σ-space table (solver_multistep.hpp; edm_sigmas of
    // schedules/edm.hpp), the state x = x₀ + σ·ε, the model asked for x̂₀ at (1, σ_i) (an EDM-preconditioned
    // network: edm_model). Upstream has only dpmsolver++ and sde-dpmsolver++ there, and no third-order SDE update.
    dpm_solver_multistep_stepper(batch_shape shape, sigma_space_table table, const dpm_solver_multistep_options& opt = {},
                                 Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, std::move(table), rules_of(opt), clipping_of(opt), std::forward<Noise>(noise), first_sample,
               "sample_dpm_solver_multistep (sigma-space table)"),
          opt_(opt) {
        const char* where = this->where();
        detail::require(opt.algorithm_type == dpm_solver_algorithm::dpmsolver_pp ||
                            opt.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp,
                        where, "algorithm_type", opt.algorithm_type == dpm_solver_algorithm::dpmsolver ? "dpmsolver" : "sde-dpmsolver",
                        "{dpmsolver++, sde-dpmsolver++} on a sigma-space table (EDMDPMSolverMultistepScheduler)");
        detail::require(!(opt.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp && opt.solver_order == 3), where,
                        "solver_order", opt.solver_order,
                        "{1, 2} for sde-dpmsolver++ on a sigma-space table (EDMDPMSolverMultistepScheduler has no third-order "
                        "SDE update)");
        this->plan();
    }

private:
    static typename base::rules rules_of(const dpm_solver_multistep_options& o) {
        const bool noise_form = o.algorithm_type == dpm_solver_algorithm::dpmsolver || o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver;
        const bool sde = o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp || o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver;
        return {o.solver_order, o.lower_order_final, o.euler_at_final,
                noise_form ? detail::multistep_output::noise : detail::multistep_output::data, sde};
    }
    static sample_clipping clipping_of(const dpm_solver_multistep_options& o) {
        sample_clipping c;
        c.clip_sample = false;
        c.thresholding = o.thresholding;
        c.dynamic_thresholding_ratio = o.dynamic_thresholding_ratio;
        c.sample_max_value = o.sample_max_value;
        return c;
    }

    // Step i's coefficients for order p (the equations at the top of this file), expanded from D_k onto m_k.
    [[nodiscard]] detail::multistep_update update(std::size_t i, std::size_t p) const {
        const auto& s0 = this->point(i);
        const auto c = detail::dpm_solver_terms(opt_.algorithm_type, this->point(i + 1), s0);
        const double h = c.h, c0 = c.c0, c1 = opt_.solver_type == dpm_solver_type::heun || p == 3 ? c.c1_heun : c.c1_midpoint,
                     c2 = c.c2;
        const double a = c.a, cz = c.cz;
        detail::multistep_update u;
        u.a = a;
        u.noise = cz;
        if (p == 1) {
            u.b = {c0, 0.0, 0.0};
        } else if (p == 2) {
            const double r0 = (s0.lambda - this->point(i - 1).lambda) / h, d = 1.0 / r0;
            u.b = {c0 + c1 * d, -c1 * d, 0.0};  // D₁ = (m₀ − m₁)/r₀
        } else {
            const double r0 = (s0.lambda - this->point(i - 1).lambda) / h;
            const double r1 = (this->point(i - 1).lambda - this->point(i - 2).lambda) / h;
            const double u0 = 1.0 / r0, u1 = 1.0 / r1, k = r0 / (r0 + r1), w = 1.0 / (r0 + r1);
            // D₁ = (1 + k)·u₀·m₀ − ((1 + k)·u₀ + k·u₁)·m₁ + k·u₁·m₂;  D₂ = w·u₀·m₀ − w(u₀ + u₁)·m₁ + w·u₁·m₂
            u.b = {c0 + c1 * (1.0 + k) * u0 + c2 * w * u0, -c1 * ((1.0 + k) * u0 + k * u1) - c2 * w * (u0 + u1),
                   c1 * k * u1 + c2 * w * u1};
        }
        return u;
    }

    dpm_solver_multistep_options opt_;
};

// The one-call form. x: the initial noise (VP scale, init_noise_sigma = 1) on entry, the sample on return.
// A deterministic algorithm (dpmsolver++, dpmsolver) draws no noise: pass no_noise.
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpm_solver_multistep(Model& m, X&& x, std::span<const double> alphas_cumprod, const solver_schedule& schedule,
                                 const dpm_solver_multistep_options& opt = {}, Noise&& noise = {}, Obs&& obs = {},
                                 std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpm_solver_multistep_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, schedule, opt, noise,
                                                                       first_sample);
    run(s, m, std::forward<X>(x), obs);
}

// The one-call form on a σ-space table (EDMDPMSolverMultistepScheduler). x: the initial state (σ-space: σ_0·z, or
// upstream's init_noise_sigma √(σ_max² + 1)·z) on entry, the sample on return.
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpm_solver_multistep(Model& m, X&& x, const sigma_space_table& table, const dpm_solver_multistep_options& opt = {},
                                 Noise&& noise = {}, Obs&& obs = {}, std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpm_solver_multistep_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), table, opt, noise, first_sample);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
