#pragma once
// A spec's randomness (docs/cli.md): the initial state (spec.init_noise, or drawn from spec.seed) and the
// noise source of the steps (spec.step_noise replayed, or the counter generator of spec.seed; the σ-space
// SDE solvers may swap in a Brownian tree).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "diffuse/core/fill_normal.hpp"
#include "diffuse/samplers/brownian.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "spec_fields.hpp"
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
template <class T>
spec_start<T> read_start(fields& s, const spec_shape& shape, const std::filesystem::path& dir) {
    spec_start<T> out;
    out.seed = s.count("seed", 0);
    out.first_sample = s.count("first_sample", 0);
    out.x.resize(shape.total);
    out.from_file = s.has("init_noise");
    if (out.from_file) {
        const auto v = read_npy_checked(dir / s.string("init_noise"), s.name("init_noise"), shape.total);
        if (v.size() != shape.total) throw spec_error(s.name("init_noise") + ": expected " + std::to_string(shape.total) + " values");
        for (std::size_t i = 0; i < shape.total; ++i) out.x[i] = static_cast<T>(v[i]);
    } else {
        (void)s.raw("init_noise");
        fill_normal(batched(out.x, shape.batch), out.seed, normal_draw_limit - 1, out.first_sample);  // the last draw number: never a step's
    }
    return out;
}

inline spec_noise read_step_noise(fields& s, std::uint64_t seed, const spec_shape& shape, const std::filesystem::path& dir,
                                  std::uint64_t first_sample = 0) {
    spec_noise noise{std::nullopt, counter_noise{seed, first_sample}};
    if (s.has("step_noise"))
        noise.recorded.emplace(read_npy_checked(dir / s.string("step_noise"), s.name("step_noise"), shape.total), shape.total);
    else (void)s.raw("step_noise");
    return noise;
}
}  // namespace detail

}  // namespace diffuse::cli
