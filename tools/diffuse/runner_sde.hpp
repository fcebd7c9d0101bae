#pragma once
// The samplers of Song et al. 2021 (score_sde): on a VP, sub-VP or VE SDE (spec.sde), walking the SDE's own
// time (spec.grid, default score_sde's linspace(T, eps, N) and an end point 0) from the SDE's prior: the
// reverse-SDE predictors with Langevin correctors (PC) and the probability-flow ODE (whose default grid
// ends at eps, not 0: linspace(T, eps, num_inference_steps + 1)). Also annealed Langevin
// dynamics (Song & Ermon 2019), which walks a σ grid with the σ family's runner.

#include <string_view>
#include <utility>
#include <type_traits>
#include <vector>

#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/prior.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "runner_sigma.hpp"

namespace diffuse::cli {

// Corrector / Langevin moves per step a spec may ask for (each is a model call): 1e9 would spin for ever.
inline constexpr std::uint64_t max_corrector_steps = 100000;

struct score_sde_family {
    static constexpr std::string_view name = "sde";
    template <class T, class Sample>
    static void run(run_context<T>& r, Sample sample) {
        if (r.denoiser.time_kind != "sde")
            throw spec_error("spec.denoiser.time: sampler " + r.sampler + " needs \"sde\" (the network reads the SDE's time)");
        auto& sf = r.sde;
        const auto type = sf.choice("type", {"vp", "subvp", "ve"}, "vp");
        const bool n_given = sf.has("N");
        const auto N = static_cast<std::size_t>(sf.count("N", r.schedule.num_inference_steps, 1, diffuse::detail::max_schedule_size));
        if (type == "vp") walk(r, read_sde<vp_sde>(sf, N), n_given, sample);
        else if (type == "subvp") walk(r, read_sde<subvp_sde>(sf, N), n_given, sample);
        else walk(r, read_sde<ve_sde>(sf, N), n_given, sample);
    }

private:
    // The SDE's noise range: σ_min, σ_max (VE) or β_min, β_max (VP, sub-VP), discretised in N steps.
    template <class Sde>
    static Sde read_sde(fields& sf, std::size_t N) {
        try {
            if constexpr (std::is_same_v<Sde, ve_sde>) {
                const double lo = sf.number("sigma_min", 0.01);
                return Sde(lo, sf.number("sigma_max", 50.0), N);
            } else {
                const double lo = sf.number("beta_min", 0.1);
                return Sde(lo, sf.number("beta_max", 20.0), N);
            }
        } catch (const diffuse::error& e) {
            throw spec_error(sf.path() + ": " + std::string(diffuse::detail::error_text(e)));
        }
    }
    template <class T, class Sde, class Sample>
    static void walk(run_context<T>& r, const Sde& sde, bool n_given, Sample sample) {
        r.sde.finish();
        auto grid = detail::read_grid(r.grid, r.schedule, r.batch, r.files, "score_sde", {"score_sde", "linspace", "file"});
        if (!grid) {
            const double eps = r.grid.number_in("eps", 0.0, Sde::T, Sde::default_eps);
            const std::size_t n = r.schedule.num_inference_steps;
            // The probability-flow ODE is evaluated at both ends of a step, so its grid lies in (0, T]: score_sde's
            // ODE sampler integrates from T to eps, here in num_inference_steps intervals linspace(T, eps, n + 1).
            const bool ode = r.sampler.starts_with("pf_ode_");
            if (!ode && n_given && sde.N != n)
                throw spec_error(r.sde.name("N") + ": " + std::to_string(sde.N) + " steps on the score_sde grid, but spec.num_inference_steps is " +
                                 std::to_string(n) + " (give equal values, or a grid of another type)");
            try {
                if (ode) {
                    diffuse::detail::require(eps > 0 && eps < Sde::T, "score_sde grid", "eps", eps, "(0, T)");
                    std::vector<double> p(n + 1);
                    for (std::size_t i = 0; i <= n; ++i)
                        p[i] = i == n ? eps : Sde::T + double(i) * ((eps - Sde::T) / double(n));
                    grid.emplace(std::move(p));
                } else {
                    grid.emplace(score_sde_time_grid(sde, eps));
                }
            } catch (const diffuse::error& e) {
                throw spec_error(r.grid.name("eps") + ": " + std::string(diffuse::detail::error_text(e)));
            }
        }
        if (!r.start.from_file) sample_prior(sde, r.x_view(), r.start.seed, r.start.first_sample);
        r.denoiser.with_sde_model(r.sampler, sde, [&](auto& m) { sample(r, m, sde, *grid); });
    }
};

namespace detail {
// What every reverse-SDE predictor reads: the probability-flow ODE instead of the SDE, the noise-free last
// step, and the reference's Euler–Maruyama Δt = −T/N.
inline pc_options read_reverse_sde(fields& o) {
    pc_options p;
    p.probability_flow = o.boolean("probability_flow", false);
    p.denoise = o.boolean("denoise", true);
    p.reference_dt = o.boolean("reference_dt", false);
    return p;
}
// Predictor–corrector (Song et al. 2021, Algorithms 2–3): the predictor, then n_steps Langevin corrector
// steps of signal-to-noise ratio snr.
inline pc_options read_pc(fields& o) {
    pc_options p = read_reverse_sde(o);
    const auto pred = o.choice("predictor", {"euler_maruyama", "reverse_diffusion", "ancestral", "none"}, "reverse_diffusion");
    p.predictor = pred == "euler_maruyama"      ? sde_predictor::euler_maruyama
                  : pred == "reverse_diffusion" ? sde_predictor::reverse_diffusion
                  : pred == "ancestral"         ? sde_predictor::ancestral
                                                : sde_predictor::none;
    const auto corr = o.choice("corrector", {"langevin", "ald", "none"}, "langevin");
    p.corrector = corr == "langevin" ? sde_corrector::langevin : corr == "ald" ? sde_corrector::ald : sde_corrector::none;
    p.snr = o.number_in("snr", 0.0, inf, 0.16);
    p.n_steps = o.count("n_steps", 1, 1, max_corrector_steps);
    p.norm = o.choice("norm", {"batch_mean", "per_sample"}, "batch_mean") == "per_sample" ? langevin_norm::per_sample
                                                                                          : langevin_norm::batch_mean;
    return p;
}
// The adaptive Dormand–Prince RK45 solve of the probability-flow ODE (scipy's solve_ivp as score_sde runs it).
inline rk45_options read_rk45(fields& o) {
    rk45_options p;
    p.rtol = o.number_in("rtol", 0.0, inf, p.rtol);
    p.atol = o.number_in("atol", 0.0, inf, p.atol);
    p.norm = o.choice("norm", {"per_sample", "batch"}, "per_sample") == "batch" ? rk_error_norm::batch : rk_error_norm::per_sample;
    p.first_step = o.number_in("first_step", 0.0, inf, 0.0);
    p.max_step = o.number_in("max_step", 0.0, inf, inf);
    p.max_attempts = o.count("max_attempts", p.max_attempts, 1);
    p.denoise = o.boolean("denoise", false);
    return p;
}
}  // namespace detail

inline std::vector<sampler_entry> sde_samplers() {
    using detail::family_entry;
    return {
        family_entry<sigma_family<>>("annealed_langevin", "sigma", [](auto& r, auto& m, const time_grid& g) {
            annealed_langevin_options a;
            a.step_lr = r.opts.number_in("step_lr", 0.0, detail::inf, a.step_lr);
            a.n_steps_each = r.opts.count("n_steps_each", a.n_steps_each, 1, max_corrector_steps);
            a.denoise = r.opts.boolean("denoise", false);
            sample_annealed_langevin(m, r.x_view(), g, a, r.noise, r.observer);
        }),
        family_entry<score_sde_family>("euler_maruyama", "sde", [](auto& r, auto& m, const auto& sde, const time_grid& g) {
            sample_euler_maruyama(m, r.x_view(), sde, g, detail::read_reverse_sde(r.opts), r.noise, r.observer);
        }),
        family_entry<score_sde_family>("reverse_diffusion", "sde", [](auto& r, auto& m, const auto& sde, const time_grid& g) {
            sample_reverse_diffusion(m, r.x_view(), sde, g, detail::read_reverse_sde(r.opts), r.noise, r.observer);
        }),
        family_entry<score_sde_family>("sde_ancestral", "sde", [](auto& r, auto& m, const auto& sde, const time_grid& g) {
            sample_sde_ancestral(m, r.x_view(), sde, g, detail::read_reverse_sde(r.opts), r.noise, r.observer);
        }),
        family_entry<score_sde_family>("pc", "sde", [](auto& r, auto& m, const auto& sde, const time_grid& g) {
            sample_pc(m, r.x_view(), sde, g, detail::read_pc(r.opts), r.noise, r.observer);
        }),
        family_entry<score_sde_family>("pf_ode_euler", "sde", [](auto& r, auto& m, const auto& sde, const time_grid& g) {
            sample_pf_ode_euler(m, r.x_view(), sde, g, pf_ode_options{r.opts.boolean("denoise", false)}, no_noise{}, r.observer);
        }),
        family_entry<score_sde_family>("pf_ode_heun", "sde", [](auto& r, auto& m, const auto& sde, const time_grid& g) {
            sample_pf_ode_heun(m, r.x_view(), sde, g, pf_ode_options{r.opts.boolean("denoise", false)}, no_noise{}, r.observer);
        }),
        family_entry<score_sde_family>("pf_ode_rk45", "sde", [](auto& r, auto& m, const auto& sde, const time_grid& g) {
            r.nfe = sample_pf_ode_rk45(m, r.x_view(), sde, g, detail::read_rk45(r.opts), no_noise{}, r.observer).nfe;
        }),
    };
}

}  // namespace diffuse::cli
