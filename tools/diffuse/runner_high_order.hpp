#pragma once
// The higher-order σ-space solvers: linear multistep (k-diffusion's sample_lms), DPM-Solver++ (Lu et al.
// 2022, samplers/dpm_solver.hpp; the SDE variants draw from a Brownian tree by default) and UniPC (Zhao et
// al. 2023). They share the σ family's runner (runner_sigma.hpp).

#include <vector>

#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/lms.hpp"
#include "diffuse/samplers/unipc.hpp"
#include "runner_sigma.hpp"

namespace diffuse::cli {

namespace detail {
// DPM-Solver++(2M)'s second-order update (midpoint or Heun form) and its first-order last steps.
template <class Options>
void read_dpmpp_multistep(fields& o, Options& opt) {
    opt.solver_type = parse_dpm_solver_type(o.choice("solver_type", {"midpoint", "heun"}, "midpoint"));
    opt.lower_order_final = o.boolean("lower_order_final", true);
    opt.euler_at_final = o.boolean("euler_at_final", false);
}
}  // namespace detail

inline std::vector<sampler_entry> high_order_samplers() {
    using detail::family_entry;
    using family = sigma_family<>;
    using sde_family = sigma_family<sigma_noise::brownian_tree_default>;
    return {
        family_entry<family>("lms", "discrete", [](auto& r, auto& m, const time_grid& g) {
            sample_lms(m, r.x_view(), g, lms_options{r.opts.count("order", 4, 1)}, no_noise{}, r.observer);
        }),
        family_entry<family>("dpmpp_2m", "discrete", [](auto& r, auto& m, const time_grid& g) {
            dpmpp_2m_options d;
            detail::read_dpmpp_multistep(r.opts, d);
            sample_dpmpp_2m(m, r.x_view(), g, d, no_noise{}, r.observer);
        }),
        family_entry<family>("dpmpp_2s_ancestral", "discrete", [](auto& r, auto& m, const time_grid& g) {
            dpmpp_sde_options d;
            detail::read_eta_noise(r.opts, d);
            sample_dpmpp_2s_ancestral(m, r.x_view(), g, d, r.noise, r.observer);
        }),
        family_entry<sde_family>("dpmpp_sde", "discrete", [](auto& r, auto& m, const time_grid& g) {
            dpmpp_sde_options d;
            detail::read_eta_noise(r.opts, d);
            d.r = r.opts.number_in("r", 0.0, 1.0, 0.5);
            sample_dpmpp_sde(m, r.x_view(), g, d, r.noise, r.observer);
        }),
        family_entry<sde_family>("dpmpp_2m_sde", "discrete", [](auto& r, auto& m, const time_grid& g) {
            dpmpp_2m_sde_options d;
            detail::read_eta_noise(r.opts, d);
            detail::read_dpmpp_multistep(r.opts, d);
            sample_dpmpp_2m_sde(m, r.x_view(), g, d, r.noise, r.observer);
        }),
        family_entry<sde_family>("dpmpp_3m_sde", "discrete", [](auto& r, auto& m, const time_grid& g) {
            dpmpp_3m_sde_options d;
            detail::read_eta_noise(r.opts, d);
            sample_dpmpp_3m_sde(m, r.x_view(), g, d, r.noise, r.observer);
        }),
        family_entry<family>("unipc", "discrete", [](auto& r, auto& m, const time_grid& g) {
            unipc_options u;
            u.solver_order = r.opts.count("solver_order", 2, 1);
            u.solver_type = r.opts.choice("solver_type", {"bh1", "bh2"}, "bh2") == "bh1" ? unipc_variant::bh1 : unipc_variant::bh2;
            u.lower_order_final = r.opts.boolean("lower_order_final", true);
            for (auto i : r.opts.indices("disable_corrector", "step indices", std::vector<double>{})) u.disable_corrector.push_back(std::size_t(i));
            sample_unipc(m, r.x_view(), g, u, no_noise{}, r.observer);
        }),
    };
}

}  // namespace diffuse::cli
