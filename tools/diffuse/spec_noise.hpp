#pragma once
// A spec's randomness (docs/cli.md): the initial state (spec.init_noise of exactly spec.shape, or drawn
// from spec.seed) and the
// noise source of the steps (spec.step_noise replayed, or the counter generator of spec.seed; the σ-space
// SDE solvers may swap in a Brownian tree).

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/fill_normal.hpp"
#include "diffuse/samplers/brownian.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "spec_fields.hpp"
#include "spec_files.hpp"
#include "spec_schedule.hpp"

namespace diffuse::cli {

// A noise source: the counter generator, a recording (.npy of [draws, batch, ...]) or, for the SDE samplers
// of the σ family, a Brownian tree (queried by noise-level interval).
struct spec_noise {
    std::optional<recorded_noise> recorded;
    counter_noise counter;
    brownian_tree_noise* tree = nullptr;
    template <class V>
    void operator()(const V& out, std::uint64_t draw) const {
        if (recorded) (*recorded)(out, draw);
        else counter(out, draw);
    }
    template <class V>
    void operator()(const V& out, std::uint64_t draw, std::span<const double> from, std::span<const double> to) const {
        if (tree) (*tree)(out, draw, from, to);
        else (*this)(out, draw);
    }
};

// The sampler's starting point: init_noise as given, or a standard normal draw the σ-space and SDE runners
// scale to their prior.
template <class T>
struct spec_start {
    std::vector<T> x;
    bool from_file = false;
    std::uint64_t seed = 0;
    std::uint64_t first_sample = 0;  // spec.first_sample: the global id of row 0 (sharded runs)
};

namespace detail {
// "[2, 3]"
inline std::string shape_text(const std::vector<std::size_t>& dims) {
    std::string t = "[";
    for (auto d : dims) t += (t.size() > 1 ? ", " : "") + std::to_string(d);
    return t + "]";
}

template <class T>
spec_start<T> read_start(fields& s, const spec_shape& shape, const spec_files& files) {
    spec_start<T> out;
    out.seed = s.count("seed", 0);
    out.first_sample = s.count("first_sample", 0);
    out.from_file = s.has("init_noise");
    if (out.from_file) {
        const auto f = files.read_npy(s.string("init_noise"), s.name("init_noise"), shape.total);
        if (f.shape != shape.dims)
            throw spec_error(s.name("init_noise") + ": the array has shape " + shape_text(f.shape) + ", expected spec.shape " +
                             shape_text(shape.dims));
        out.x.assign(f.values.begin(), f.values.end());
    } else {
        (void)s.raw("init_noise");
        out.x.resize(shape.total);
        fill_normal(batched(out.x, shape.batch), out.seed, normal_draw_limit - 1, out.first_sample);  // the last draw number: never a step's
    }
    return out;
}

// step_noise: [draws, spec.shape...], the noise of draw d at [d].
inline spec_noise read_step_noise(fields& s, std::uint64_t seed, const spec_shape& shape, const spec_files& files,
                                  std::uint64_t first_sample = 0) {
    spec_noise noise{std::nullopt, counter_noise{seed, first_sample}};
    if (s.has("step_noise")) {
        auto f = files.read_npy(s.string("step_noise"), s.name("step_noise"), shape.total);
        if (f.shape.size() != shape.dims.size() + 1 || !std::equal(shape.dims.begin(), shape.dims.end(), f.shape.begin() + 1))
            throw spec_error(s.name("step_noise") + ": the array has shape " + shape_text(f.shape) + ", expected [draws, " +
                             shape_text(shape.dims).substr(1));
        noise.recorded.emplace(std::move(f.values), shape.total);
    } else {
        (void)s.raw("step_noise");
    }
    return noise;
}
}  // namespace detail

}  // namespace diffuse::cli
