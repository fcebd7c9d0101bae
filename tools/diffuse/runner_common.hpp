#pragma once
// What a sampler family's runner receives (run_context: the spec as read, the state to sample, the noise and
// the observer), and the sampler table's entry type.
//
// A family (runner_discrete.hpp, runner_sigma.hpp, runner_high_order.hpp, runner_sde.hpp) is a struct with a
// `name` and `static void run(run_context<T>&, Sample)`: it reads what its samplers share (grid, SDE, noise
// sampler), builds the model, and calls sample(...), a captureless lambda of the table entry that reads
// one sampler's options and runs it.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/observer.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "spec_denoiser.hpp"
#include "spec_fields.hpp"
#include "spec_files.hpp"
#include "spec_noise.hpp"
#include "spec_schedule.hpp"

namespace diffuse::cli {

template <class T>
struct run_context {
    std::string sampler;
    fields& opts;                  // spec.options
    fields& grid;                  // spec.grid (may be absent)
    fields& sde;                   // spec.sde (may be absent)
    const spec_schedule& schedule;
    spec_denoiser& denoiser;
    spec_start<T>& start;          // x: the state sampled in place
    std::size_t batch;
    spec_noise& noise;
    std::function<void(const step_info<T>&)> observer;
    const spec_files& files;           // the spec's folder: the files it names (spec_files.hpp)
    std::optional<std::size_t> nfe;    // model calls, for samplers that report them
    std::optional<euler_options> diffusers_grid;  // the σ family's grid options when grid.type is "diffusers"

    [[nodiscard]] auto x_view() { return batched(start.x, batch); }
    // Row b of x times s_b (the initial state σ_0·z of a σ-space sampler when no init_noise is given).
    void scale_rows(const time_grid& g) {
        auto& x = start.x;
        const std::size_t per = x.size() / batch;
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t j = 0; j < per; ++j) x[b * per + j] = static_cast<T>(double(x[b * per + j]) * g(0, b));
    }
};

struct sampler_entry {
    std::string_view name;
    std::string_view family;        // the runner's: discrete, sigma or sde
    std::string_view default_time;  // denoiser.time unless the spec says otherwise
    void (*run_f32)(run_context<float>&);
    void (*run_f64)(run_context<double>&);
};

namespace detail {
// The entry of sampler `name` of Family, run by sample (a captureless lambda, so its type alone is enough).
template <class Family, class Sample>
sampler_entry family_entry(std::string_view name, std::string_view default_time, Sample) {
    return {name, Family::name, default_time, [](run_context<float>& r) { Family::run(r, Sample{}); },
            [](run_context<double>& r) { Family::run(r, Sample{}); }};
}
}  // namespace detail

}  // namespace diffuse::cli
