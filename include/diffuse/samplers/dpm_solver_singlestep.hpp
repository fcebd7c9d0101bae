#pragma once
// Singlestep DPM-Solver and DPM-Solver++ (Lu et al. 2022a, Algorithms 1–2 "DPM-Solver-2/3"; Lu et al. 2022b,
// Algorithm 1) as diffusers' DPMSolverSinglestepScheduler runs them, on the shared solver table and walk
// (schedules/solver_sigmas.hpp, samplers/solver_multistep.hpp).
//
// The steps are grouped by an order list (get_order_list): [1, 2, 3, 1, 2, 3, …] for order 3, [1, 2, 1, 2, …]
// for order 2, with lower_order_final ending on [1, 2] + [1] or [1] (it is forced on when N is not a multiple
// of the order or the last σ is 0, and a last σ of 0 makes the last order 1). A block starts with an order-1
// step from its start state x_{s}; its order-p step (p − 1 steps later) goes from that same x_{s} to t using
// the block's outputs m at the intermediate points (with h = λ_t − λ_{s}, h_k = λ_{s_k} − λ_{s}, r_k = h_k/h):
//   order 2:  D₀ = m₁ (the output at s), D₁ = (m₀ − m₁)/r₀;  x_t = a·x_s + c₀·D₀ + c₁·D₁
//   order 3:  D₀ = m₂, D₁⁽⁰⁾ = (m₁ − m₂)/r₁, D₁⁽¹⁾ = (m₀ − m₂)/r₀,
//             midpoint: x_t = a·x_s + c₀·D₀ + c₁ʰ·D₁⁽¹⁾
//             heun:     D₁ = (r₀·D₁⁽⁰⁾ − r₁·D₁⁽¹⁾)/(r₀ − r₁), D₂ = 2(D₁⁽¹⁾ − D₁⁽⁰⁾)/(r₀ − r₁),
//                       x_t = a·x_s + c₀·D₀ + c₁ʰ·D₁ + c₂·D₂
// with a, c₀, c₁ (midpoint / heun form c₁ʰ), c₂, c_z those of dpm_solver_multistep.hpp for s → t.
// Algorithms: dpmsolver++, sde-dpmsolver++ (noise draw i at every step), dpmsolver.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "diffuse/samplers/dpm_solver_multistep.hpp"

namespace diffuse {

// DPMSolverSinglestepScheduler's stepping options (lower_order_final defaults to false upstream).
struct dpm_solver_singlestep_options {
    std::size_t solver_order = 2;
    dpm_solver_algorithm algorithm_type = dpm_solver_algorithm::dpmsolver_pp;
    dpm_solver_type solver_type = dpm_solver_type::midpoint;
    bool lower_order_final = false;
    bool thresholding = false;
    double dynamic_thresholding_ratio = 0.995;
    double sample_max_value = 1.0;
};

// diffusers' get_order_list for N steps (with its forcing of lower_order_final).
[[nodiscard]] inline std::vector<std::size_t> dpm_solver_singlestep_orders(std::size_t N, std::size_t order, bool lower_order_final,
                                                                           bool final_sigma_zero) {
    detail::require(order >= 1 && order <= 3, "dpm_solver_singlestep_orders", "solver_order", order, "{1, 2, 3}");
    detail::require_count(N, "dpm_solver_singlestep_orders", "N");
    const bool lof = lower_order_final || N % order != 0 || final_sigma_zero;
    // full blocks [1, …, order], then (lower_order_final) the tail runs [1, …, len] upstream appends
    std::size_t full = N / order, runs[2] = {0, 0};
    if (lof && order == 2) {
        if (N % 2 == 0) full -= 1, runs[0] = 1, runs[1] = 1;  // … + [1, 1]
        else runs[0] = 1;                                      // … + [1]
    } else if (lof && order == 3) {
        if (N % 3 == 0) full -= 1, runs[0] = 2, runs[1] = 1;  // … + [1, 2] + [1]
        else runs[0] = N % 3;                                  // … + [1] or [1, 2]
    }
    std::vector<std::size_t> o;
    o.reserve(N);
    for (std::size_t b = 0; b < full; ++b)
        for (std::size_t k = 1; k <= order; ++k) o.push_back(k);
    for (const std::size_t len : runs)
        for (std::size_t k = 1; k <= len; ++k) o.push_back(k);
    if (final_sigma_zero) o.back() = 1;
    return o;
}

// The singlestep DPM-Solver stepper over the table `schedule` (multistep_solver_schedule with linspace spacing,
// as DPMSolverSinglestepScheduler builds it).
template <class T, class Noise = counter_noise, memory_space S = memory_space::host>
class dpm_solver_singlestep_stepper
    : public detail::solver_multistep_stepper<dpm_solver_singlestep_stepper<T, Noise, S>, T, Noise, S> {
    using base = detail::solver_multistep_stepper<dpm_solver_singlestep_stepper<T, Noise, S>, T, Noise, S>;
    friend class stepper<dpm_solver_singlestep_stepper<T, Noise, S>, T, S>;
    friend base;

public:
    dpm_solver_singlestep_stepper(batch_shape shape, std::span<const double> alphas_cumprod, solver_schedule schedule,
                                  const dpm_solver_singlestep_options& opt = {}, Noise noise = {}, std::uint64_t first_sample = 0)
        : base(shape, alphas_cumprod, schedule, rules_of(opt, schedule), clipping_of(opt), std::forward<Noise>(noise), first_sample,
               "sample_dpm_solver_singlestep"),
          opt_(opt) {
        const char* where = this->where();
        detail::require(opt.algorithm_type != dpm_solver_algorithm::sde_dpmsolver, where, "algorithm_type", "sde-dpmsolver",
                        "{dpmsolver++, sde-dpmsolver++, dpmsolver} (upstream's singlestep scheduler has no sde-dpmsolver)");
        const bool noise_form = opt.algorithm_type == dpm_solver_algorithm::dpmsolver;
        detail::require(!(noise_form && this->schedule().sigmas.back() == 0.0), where, "final sigma", 0.0,
                        "(0, inf) for the noise-prediction algorithm dpmsolver (final_sigmas_type sigma_min)");
        detail::require(!(noise_form && opt.thresholding), where, "thresholding", "true",
                        "false for dpmsolver (upstream's singlestep noise-form thresholding indexes its table with None)");
        this->plan();
    }

private:
    static typename base::rules rules_of(const dpm_solver_singlestep_options& o, const solver_schedule& s) {
        const bool noise_form = o.algorithm_type == dpm_solver_algorithm::dpmsolver;
        return {o.solver_order, o.lower_order_final, false,
                noise_form ? detail::multistep_output::noise : detail::multistep_output::data,
                o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp,
                dpm_solver_singlestep_orders(s.timesteps.size(), o.solver_order, o.lower_order_final,
                                             !s.sigmas.empty() && s.sigmas.back() == 0.0)};
    }
    static sample_clipping clipping_of(const dpm_solver_singlestep_options& o) {
        sample_clipping c;
        c.clip_sample = false;
        c.thresholding = o.thresholding;
        c.dynamic_thresholding_ratio = o.dynamic_thresholding_ratio;
        c.sample_max_value = o.sample_max_value;
        return c;
    }

    // Step i of order p goes from the block start s = i − p + 1 to t = i + 1 (the top of this file).
    [[nodiscard]] detail::multistep_update update(std::size_t i, std::size_t p) const {
        const std::size_t start = i + 1 - p;
        const auto& s = this->point(start);
        const auto c = detail::dpm_solver_terms(opt_.algorithm_type, this->point(i + 1), s);
        const bool heun = opt_.solver_type == dpm_solver_type::heun;
        detail::multistep_update u;
        u.a = c.a;
        u.noise = c.cz;
        if (p == 1) {
            u.b = {c.c0, 0.0, 0.0};
        } else if (p == 2) {
            const double r0 = (this->point(i).lambda - s.lambda) / c.h;
            const double c1 = heun ? c.c1_heun : c.c1_midpoint;
            u.b = {c1 / r0, c.c0 - c1 / r0, 0.0};  // m₀ = the output at i, m₁ = at s
        } else {
            const double r0 = (this->point(i).lambda - s.lambda) / c.h, r1 = (this->point(i - 1).lambda - s.lambda) / c.h;
            if (!heun) {  // c₀·m₂ + c₁ʰ·(m₀ − m₂)/r₀
                u.b = {c.c1_heun / r0, 0.0, c.c0 - c.c1_heun / r0};
            } else {
                // D₁ = (−(r₁/r₀)·m₀ + (r₀/r₁)·m₁ + (r₁/r₀ − r₀/r₁)·m₂)/(r₀ − r₁)
                // D₂ = 2((1/r₀)·m₀ − (1/r₁)·m₁ + (1/r₁ − 1/r₀)·m₂)/(r₀ − r₁)
                const double d = r0 - r1;
                u.b = {c.c1_heun * (-(r1 / r0)) / d + c.c2 * 2.0 * (1.0 / r0) / d,
                       c.c1_heun * (r0 / r1) / d - c.c2 * 2.0 * (1.0 / r1) / d,
                       c.c0 + c.c1_heun * (r1 / r0 - r0 / r1) / d + c.c2 * 2.0 * (1.0 / r1 - 1.0 / r0) / d};
            }
        }
        return u;
    }

    dpm_solver_singlestep_options opt_;
};

// The one-call form. x: the initial noise (VP scale) on entry, the sample on return.
template <class Model, class X, class Noise = counter_noise, class Obs = no_observer>
void sample_dpm_solver_singlestep(Model& m, X&& x, std::span<const double> alphas_cumprod, const solver_schedule& schedule,
                                  const dpm_solver_singlestep_options& opt = {}, Noise&& noise = {}, Obs&& obs = {},
                                  std::uint64_t first_sample = 0) {
    static_assert(detail::check_sampler_arguments<X, Noise>());
    dpm_solver_singlestep_stepper<detail::sampler_value_t<X>, Noise&, detail::sampler_space_v<X>> s(shape_of(x), alphas_cumprod, schedule, opt, noise,
                                                                        first_sample);
    run(s, m, std::forward<X>(x), obs);
}

}  // namespace diffuse
