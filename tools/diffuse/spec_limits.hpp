#pragma once
// The work and memory a spec asks for (docs/cli.md "Limits"), computed from the spec's JSON before any of
// it is allocated or run, and refused with a spec_error naming the field that asks for the most when it
// passes the run's limits (`diffuse sample --max-memory / --max-work / --max-output`).
//
// The estimate is an upper bound for the samplers the CLI knows, counted as
//   memory  = state and workspaces   16 · batch · per-sample · dtype bytes   (spec.shape)
//           + grid and timesteps     4 · (steps + 1) · rows · 8              (spec.num_inference_steps; rows:
//                                                                            batch for a grid file, else 1)
//           + schedule tables        8 · num_train_timesteps · 8             (spec.schedule.num_train_timesteps)
//           + trajectory in memory   steps · batch · per-sample · (dtype + 8) (spec.trajectory; 0 when streamed)
//   work    = steps · model calls per step · batch · per-sample · mixture components (× 2 with guidance)
//   output  = (steps when a trajectory is written, + 1) · batch · per-sample · dtype bytes
// where steps is num_inference_steps (sde.N for the score_sde grid) and the model calls per step are the
// sampler's (2 for Heun, DPM2, DPM-Solver++ 2S / SDE, PF-ODE Heun; 1 + options.n_steps for pc;
// options.n_steps_each for annealed Langevin; 6 · options.max_attempts + 1 for pf_ode_rk45; 1 otherwise, 2 for
// a sampler this table does not list, so also a spec.scheduler_config run, whose classes take 1 or 2). Files a
// spec names (.npy) are bounded separately: each may hold at most max_memory / 4 bytes of data (spec_files).
// Not counted: a U-Net's weights (bounded by the safetensors reader) and its activations.
// A value the readers would refuse (a malformed shape, too many steps) is left to them: the estimate skips
// it, so the error names the defect rather than the limit.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/json.hpp"
#include "spec_fields.hpp"

namespace diffuse::cli {

// The limits a run is checked against; the CLI's flags raise them.
struct run_limits {
    std::uint64_t max_memory = std::uint64_t{4} << 30;   // bytes held in memory (--max-memory)
    std::uint64_t max_work = std::uint64_t{1} << 40;     // model evaluations × values (--max-work)
    std::uint64_t max_output = std::uint64_t{16} << 30;  // bytes written (--max-output)
};

// "4GiB", "512MiB", "64KiB", "1TiB" or a plain number of bytes; nullopt for anything else (or above 2^63).
[[nodiscard]] inline std::optional<std::uint64_t> parse_byte_size(std::string_view s) {
    std::uint64_t unit = 1;
    for (const auto& [suffix, scale] : {std::pair<std::string_view, int>{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}})
        if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
            unit = std::uint64_t{1} << scale;
            s.remove_suffix(suffix.size());
            break;
        }
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + std::uint64_t(c - '0');
    }
    if (n > (std::uint64_t{1} << 63) / unit) return std::nullopt;
    return n * unit;
}

namespace detail {

// "1.5 GiB", "12 bytes".
[[nodiscard]] inline std::string byte_text(double b) {
    static constexpr const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    std::size_t u = 0;
    while (b >= 1024 && u + 1 < std::size(units)) {
        b /= 1024;
        ++u;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.3g %s", b, units[u]);
    return buf;
}
[[nodiscard]] inline std::string count_text(double n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, n < 1e15 ? "%.0f" : "%.3g", n);
    return buf;
}

// The field k of object v when it is an integer in [lo, hi] (what the readers accept), else nullopt.
[[nodiscard]] inline std::optional<double> peek_count(const io::json_value* v, std::string_view k, double lo, double hi) {
    if (!v || !v->is_object()) return std::nullopt;
    const auto* f = v->find(k);
    if (!f || !f->is_number()) return std::nullopt;
    const double x = f->as_number();
    if (!(x >= lo && x <= hi && x == std::floor(x))) return std::nullopt;
    return x;
}
[[nodiscard]] inline std::optional<std::string> peek_string(const io::json_value* v, std::string_view k) {
    if (!v || !v->is_object()) return std::nullopt;
    const auto* f = v->find(k);
    if (!f || !f->is_string()) return std::nullopt;
    return f->as_string();
}

// One share of the estimate: which field asks for it, how much, and what it is.
struct limit_term {
    std::string field;
    double amount;
    std::string what;
};

// Throws spec_error naming the largest term's field when the terms' sum passes `limit`.
inline void check_sum(const std::vector<limit_term>& terms, double limit, std::string_view flag, std::string_view kind,
                      bool bytes) {
    double sum = 0;
    const limit_term* largest = nullptr;
    for (const auto& t : terms) {
        sum += t.amount;
        if (!largest || t.amount > largest->amount) largest = &t;
    }
    if (!(sum > limit) || !largest) return;
    auto text = [&](double x) { return bytes ? byte_text(x) : count_text(x); };
    std::string parts;
    for (const auto& t : terms)
        if (t.amount > 0) parts += (parts.empty() ? "" : ", ") + t.what + " " + text(t.amount);
    throw spec_error(largest->field + ": the run needs about " + text(sum) + " of " + std::string(kind) + " (" + parts +
                     "), above the limit of " + text(limit) + " (raise it with " + std::string(flag) + ")");
}

}  // namespace detail

// Checks the spec's estimated memory, work and output (the top of this file) against `limits`.
// trajectory_in_memory: the trajectory is held in memory (run_spec's always_record, or not streamed).
inline void check_run_limits(const io::json_value& root, const run_limits& limits, bool trajectory_in_memory) {
    using detail::peek_count;
    using detail::peek_string;
    if (!root.is_object()) return;
    const double max_size = double(diffuse::detail::max_schedule_size);
    // spec.shape as read_shape accepts it
    const auto* shape = root.find("shape");
    if (!shape || !shape->is_array() || shape->as_array().size() < 2) return;
    double total = 1, batch = 0;
    for (const auto& d : shape->as_array()) {
        if (!d.is_number()) return;
        const double v = d.as_number();
        if (!(v >= 1 && v <= 1e8 && v == std::floor(v))) return;
        if (batch == 0) batch = v;
        total *= v;
    }
    const auto n = peek_count(&root, "num_inference_steps", 1, max_size);
    if (!n) return;
    const double elem = peek_string(&root, "dtype").value_or("float64") == "float32" ? 4 : 8;
    const std::string sampler = peek_string(&root, "sampler").value_or("");
    const auto* opts = root.find("options");
    const auto* grid = root.find("grid");
    const auto* sde = root.find("sde");
    const auto* dn = root.find("denoiser");
    const auto* sched = root.find("schedule");

    // steps: the score_sde grid (the score_sde samplers' default) has sde.N of them when sde.N is given
    double steps = *n;
    std::string steps_field = "spec.num_inference_steps";
    const bool score_sde_grid = !peek_string(grid, "type") || peek_string(grid, "type") == "score_sde";
    if (const auto N = peek_count(sde, "N", 1, max_size); N && score_sde_grid && sde) {
        steps = *N;
        steps_field = "spec.sde.N";
    }
    // model calls per step
    double calls = 1;
    std::string calls_field;
    if (sampler == "heun" || sampler == "dpm_2" || sampler == "dpm_2_ancestral" || sampler == "dpmpp_2s_ancestral" ||
        sampler == "dpmpp_sde" || sampler == "pf_ode_heun" || sampler == "flow_heun") {
        calls = 2;
    } else if (sampler == "pc") {
        calls = 1 + peek_count(opts, "n_steps", 1, 1e18).value_or(1);
        calls_field = "spec.options.n_steps";
    } else if (sampler == "annealed_langevin") {
        calls = peek_count(opts, "n_steps_each", 1, 1e18).value_or(1);
        calls_field = "spec.options.n_steps_each";
    } else if (sampler == "pf_ode_rk45") {
        calls = 6 * peek_count(opts, "max_attempts", 1, 1e18).value_or(100000) + 1;
        calls_field = "spec.options.max_attempts";
    } else if (!(sampler == "ddpm" || sampler == "ddim" || sampler == "ddim_inverse" || sampler == "tcd" || sampler == "euler" ||
                 sampler == "euler_ancestral" || sampler == "lms" || sampler == "dpmpp_2m" || sampler == "dpmpp_2m_sde" ||
                 sampler == "dpmpp_3m_sde" || sampler == "unipc" || sampler == "euler_maruyama" ||
                 sampler == "reverse_diffusion" || sampler == "sde_ancestral" || sampler == "pf_ode_euler" ||
                 sampler == "dpm_solver_multistep" || sampler == "dpm_solver_singlestep" || sampler == "deis_multistep" ||
                 sampler == "flow_euler" || sampler == "edm_euler" || sampler == "edm_dpm_solver_multistep")) {
        calls = 2;  // a sampler this table does not list
    }
    // values per model call: the mixture's components each read the whole state; guidance doubles the batch
    double per_value = 1;
    if (dn && dn->is_object()) {
        if (const auto* w = dn->find("weights"); w && w->is_array() && !w->as_array().empty()) per_value = double(w->as_array().size());
        if (dn->find("guidance_scale")) per_value *= 2;
    }
    const double train = peek_count(sched, "num_train_timesteps", 2, 1e18).value_or(1000);
    const bool trajectory = root.find("trajectory") != nullptr;
    const double grid_rows = peek_string(grid, "type") == "file" ? batch : 1;  // a grid file may hold a row per sample

    detail::check_sum({{"spec.shape", 16 * total * elem, "state and workspaces"},
                       {steps_field, 4 * (steps + 1) * grid_rows * 8, "grid and timesteps"},
                       {"spec.schedule.num_train_timesteps", 8 * train * 8, "schedule tables"},
                       {"spec.trajectory", trajectory_in_memory ? steps * total * (elem + 8) : 0, "trajectory"}},
                      double(limits.max_memory), "--max-memory", "memory", true);
    const double call_count = steps * calls;
    detail::check_sum({{calls > steps && !calls_field.empty() ? calls_field : steps_field, call_count * total * per_value,
                        detail::count_text(steps) + " steps x " + detail::count_text(calls) + " model calls x " +
                            detail::count_text(total * per_value) + " values ="}},
                      double(limits.max_work), "--max-work", "work (model evaluations x values)", false);
    detail::check_sum({{"spec.trajectory", trajectory && !trajectory_in_memory ? steps * total * elem : 0, "trajectory"},
                       {"spec.shape", total * elem, "final sample"}},
                      double(limits.max_output), "--max-output", "output", true);
}

}  // namespace diffuse::cli
