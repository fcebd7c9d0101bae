#pragma once
// fill_normal: standard normal noise from the counter-based generator (core/random.hpp).
//
//   fill_normal(x, seed, draw)                 sample b of x gets sample id b
//   fill_normal(x, seed, draw, first_sample)   sample b gets id first_sample + b
//   fill_normal(x, seed, draw, sample_ids)     sample b gets id sample_ids[b]
//
// Every value is a pure function of (seed, sample id, draw, element), so a batch split across
// calls, threads or processes gives the same bits as one call over the whole batch.

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/random.hpp"

namespace diffuse {

struct fill_normal_t {
    template <class Out>
    void operator()(Out&& out, std::uint64_t seed, std::uint64_t draw, std::uint64_t first_sample = 0) const {
        if constexpr (detail::check_primitive_tensors<Out>()) {
            const auto o = view(std::forward<Out>(out));
            if constexpr (detail::on_device<Out>) {
                using T = std::remove_const_t<typename decltype(o)::value_type>;
                detail::device_backend<T>::fill_normal(o, seed, draw, first_sample);
            } else {
                run(o, seed, draw, [first_sample](std::size_t b) { return first_sample + b; });
            }
        }
    }

    template <class Out>
    void operator()(Out&& out, std::uint64_t seed, std::uint64_t draw, std::span<const std::uint64_t> sample_ids) const {
        if constexpr (detail::check_primitive_tensors<Out>()) {
            const auto o = view(std::forward<Out>(out));
            if (sample_ids.size() != o.batch)
                detail::fail("fill_normal", "sample_ids has " + std::to_string(sample_ids.size()) +
                                                " values but the batch has " + std::to_string(o.batch));
            if constexpr (detail::on_device<Out>) {
                using T = std::remove_const_t<typename decltype(o)::value_type>;
                detail::device_backend<T>::fill_normal(o, seed, draw, sample_ids);
            } else {
                run(o, seed, draw, [sample_ids](std::size_t b) { return sample_ids[b]; });
            }
        }
    }

private:
    template <class V, class Id>
    static void run(const V& o, std::uint64_t seed, std::uint64_t draw, Id id) {
        detail::for_each_segment(o.batch, o.per_sample, [&](std::size_t b, std::size_t j0, std::size_t j1) {
            normal_fill(o.sample(b) + j0, j1 - j0, seed, id(b), draw, j0);
        }, detail::compute_bound_segments);
    }
};
inline constexpr fill_normal_t fill_normal{};

}  // namespace diffuse
