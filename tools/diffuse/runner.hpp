#pragma once
// The sampling-spec runner behind `diffuse sample SPEC.json OUT.npy` and the golden parity test.
// The spec format is documented in docs/cli.md. Every defect in a spec raises spec_error whose message is one
// line naming the field ("spec.schedule.beta_start: expected a number").
//
// The spec is read in pieces (spec_fields.hpp: the field reader; spec_schedule.hpp: shape, schedule and
// timesteps; spec_denoiser.hpp: the denoiser and its models; spec_noise.hpp: initial state and noise;
// spec_grid.hpp: σ and time grids), then one family's runner runs the sampler (runner_common.hpp):
//   runner_discrete.hpp     DDPM, DDIM, DDIM inversion: the schedule's timesteps
//   runner_sigma.hpp        the σ-space runner; Euler, Heun, DPM2 and their ancestral versions
//   runner_high_order.hpp   LMS, DPM-Solver++ (2M, 2S, SDE, 2M SDE, 3M SDE), UniPC on σ
//   runner_sde.hpp          score_sde on an SDE's time (predictor–corrector, probability-flow ODE);
//                           annealed Langevin on σ
//   runner_flow.hpp         flow matching (diffusers' FlowMatchEuler/Heun) on the flow-matching σ grid
// Adding a sampler: one entry in its family's list (a lambda reading its options and calling it).

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/io/json.hpp"
#include "runner_common.hpp"
#include "runner_discrete.hpp"
#include "runner_flow.hpp"
#include "runner_high_order.hpp"
#include "runner_sde.hpp"
#include "runner_sigma.hpp"
#include "spec_denoiser.hpp"
#include "spec_fields.hpp"
#include "spec_noise.hpp"
#include "spec_schedule.hpp"
#include "unet_denoiser.hpp"

namespace diffuse::cli {

// The samplers the CLI knows, by spec name, with their family's runner.
inline const std::vector<sampler_entry>& sampler_table() {
    static const std::vector<sampler_entry> table = [] {
        std::vector<sampler_entry> t;
        for (auto&& family : {discrete_samplers(), euler_samplers(), high_order_samplers(), sde_samplers(), flow_samplers()})
            t.insert(t.end(), family.begin(), family.end());
        return t;
    }();
    return table;
}

inline io::json_value load_json(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw spec_error(p.string() + ": cannot open the spec");
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        return io::parse_json(ss.str());
    } catch (const std::exception& e) {
        throw spec_error(p.string() + ": not valid JSON: " + e.what());
    }
}

// The result of running a spec: the final sample and (when asked) the trajectory, both with shapes.
template <class T>
struct run_result {
    std::vector<T> x;
    std::vector<std::size_t> shape;
    std::vector<T> trajectory;  // steps × shape, when spec.trajectory is set or always_record
    std::size_t recorded_steps = 0;
    std::optional<std::size_t> nfe;  // model calls, for samplers that report them (pf_ode_rk45)
};

namespace detail {
// spec.sampler; a model folder's scheduler_config.json names the default.
inline const sampler_entry& read_sampler(fields& s, const io::scheduler_config* sched, bool unet) {
    std::optional<std::string> default_sampler;
    if (sched) default_sampler = sampler_for_scheduler(sched->class_name);
    if (unet && !s.has("sampler") && !default_sampler)
        throw spec_error(s.name("sampler") + ": missing, and the folder's scheduler_config.json names no scheduler the CLI knows");
    const auto sampler = s.string("sampler", default_sampler);
    std::string names;
    for (const auto& e : sampler_table()) {
        if (e.name == sampler) return e;
        names += (names.empty() ? "" : ", ") + std::string(e.name);
    }
    throw spec_error(s.name("sampler") + ": \"" + sampler + "\" is not one of {" + names + "}");
}

template <class T>
run_result<T> run_spec_typed(fields& s, const std::filesystem::path& dir, bool always_record,
                             const std::function<void(std::size_t, std::size_t)>& progress) {
    // The denoiser's type first: a model folder supplies the defaults of the sampler, schedule and prediction.
    auto dn = s.object("denoiser");
    auto unet = open_unet(dn, dir);
    const io::scheduler_config* sched = unet && unet->sched ? &*unet->sched : nullptr;
    const auto& e = read_sampler(s, sched, unet != nullptr);
    const auto shape = read_shape(s, unet.get());
    const auto schedule = read_schedule(s, sched, e.family == "discrete");
    auto denoiser = read_denoiser(dn, std::move(unet), shape.batch, shape.per_sample(), schedule.alphas_cumprod, e.default_time, dir);
    auto start = read_start<T>(s, shape, dir);
    auto noise = read_step_noise(s, start.seed, shape, dir);

    run_result<T> res;
    const bool record = always_record || s.has("trajectory");
    if (s.has("trajectory")) (void)s.string("trajectory");
    (void)s.raw("dtype");
    (void)s.raw("test");  // the parity test's expectations; the CLI ignores them
    // grid and SDE belong to some families only
    if (e.family == "discrete" && s.has("grid"))
        throw spec_error(s.name("grid") + ": the discrete samplers walk the schedule's timesteps (no grid)");
    if (e.family != "sde" && s.has("sde")) throw spec_error(s.name("sde") + ": only the score_sde samplers read an SDE");
    auto opts = s.object("options");
    auto grid = s.object("grid");
    auto sde = s.object("sde");
    run_context<T> r{std::string(e.name), opts, grid, sde, schedule, denoiser, start, shape.batch, noise, nullptr, dir, std::nullopt};
    r.observer = [&res, record, &progress](const step_info<T>& info) {
        if (record) {
            res.trajectory.insert(res.trajectory.end(), info.x.data, info.x.data + info.x.size());
            ++res.recorded_steps;
        }
        if (progress) progress(info.step + 1, info.steps);
    };
    s.finish();
    try {
        if constexpr (std::is_same_v<T, float>) e.run_f32(r);
        else e.run_f64(r);
    } catch (const spec_error&) {
        throw;
    } catch (const diffuse::error& err) {
        throw spec_error(std::string("spec.options: ") + err.what());
    }
    grid.finish();
    sde.finish();
    opts.finish();
    res.x = std::move(start.x);
    res.shape = shape.dims;
    res.nfe = r.nfe;
    if (denoiser.unet && !res.nfe) res.nfe = denoiser.unet->profile.forwards;  // network calls (a guided call holds both halves)
    return res;
}
}  // namespace detail

// Runs a spec in double (dtype "float64", the default) or float ("float32"); results are returned in double.
struct spec_run {
    std::vector<double> x, trajectory;
    std::vector<std::size_t> shape;
    std::size_t recorded_steps = 0;
    std::string dtype;
    std::optional<std::size_t> nfe;
};

// A progress bar on stderr for run_spec's progress callback: "[####....] done/total", redrawn in place.
inline void progress_bar(std::size_t done, std::size_t total) {
    constexpr std::size_t width = 40;
    const std::size_t filled = total ? done * width / total : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu", std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done,
                 total);
    if (done >= total) std::fputc('\n', stderr);
    std::fflush(stderr);
}

// progress(done, total) is called after every step (e.g. progress_bar).
inline spec_run run_spec(const io::json_value& root, const std::filesystem::path& dir, bool always_record = false,
                         const std::function<void(std::size_t, std::size_t)>& progress = {}) {
    fields s(&root, "spec");
    const auto dtype = s.choice("dtype", {"float32", "float64"}, "float64");
    spec_run out;
    out.dtype = dtype;
    auto take = [&](auto res) {
        out.x.assign(res.x.begin(), res.x.end());
        out.trajectory.assign(res.trajectory.begin(), res.trajectory.end());
        out.shape = res.shape;
        out.recorded_steps = res.recorded_steps;
        out.nfe = res.nfe;
    };
    if (dtype == "float32") take(detail::run_spec_typed<float>(s, dir, always_record, progress));
    else take(detail::run_spec_typed<double>(s, dir, always_record, progress));
    return out;
}

}  // namespace diffuse::cli
