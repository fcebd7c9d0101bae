#pragma once
// lincomb_noise: a linear combination whose last term is fresh counter-based Gaussian noise.
//
//   lincomb_noise(out, c0, x0, c1, x1, ..., c_noise, normal_noise{seed, draw, first_sample})
//       out = Σ cᵢ·xᵢ + c_noise·z,  z = what fill_normal(z, seed, draw, first_sample) would write
//   lincomb_noise(out, c0, x0, ..., c_noise, z)       z a tensor already holding the noise: lincomb itself
//
// The noise is generated in pieces of normal_noise_piece values that stay in L1 and is never written to
// memory as a tensor: one pass over memory instead of three (write z, read z, read/write out). The result
// is bit for bit that of fill_normal into a buffer followed by lincomb(out, c0, x0, ..., c_noise, buffer):
// the same normals (a pure function of seed, sample id, draw, element) and the same left fold
// ((c0·x0 + c1·x1) + ...) + c_noise·z. Samplers pass their noise term through this one call, whatever the
// noise source (samplers/noise_source.hpp: detail::noise_term).
//
// Coefficients are numbers or diffuse::per_sample(values); out may be the very same tensor as an input.
// Throws diffuse::error for mismatched shapes, per-sample coefficient counts, and counter values outside
// the generator's ranges (sample ids first_sample + b < 2^60, draw < 2^32, elements per sample <= 2^36).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/random.hpp"

namespace diffuse {

// The noise operand of lincomb_noise: sample b of the output gets sample id first_sample + b.
struct normal_noise {
    std::uint64_t seed = 0;
    std::uint64_t draw = 0;
    std::uint64_t first_sample = 0;
};

namespace detail {
inline constexpr std::size_t normal_noise_piece = 1024;  // values generated at a time (4 or 8 KB)
}

struct lincomb_noise_t {
    template <class Out, class... Args>
    void operator()(Out&& out, Args&&... args) const {
        if constexpr (sizeof...(Args) < 2 || sizeof...(Args) % 2 != 0) {
            static_assert(sizeof...(Args) >= 2 && sizeof...(Args) % 2 == 0,
                          "diffuse::lincomb_noise: call it as lincomb_noise(out, c0, x0, ..., c_noise, noise): after out, "
                          "arguments come in (coefficient, tensor) pairs and the last pair is the noise term");
        } else {
            using Last = std::remove_cvref_t<std::tuple_element_t<sizeof...(Args) - 1, std::tuple<Args...>>>;
            if constexpr (!std::is_same_v<Last, normal_noise>) {
                lincomb(std::forward<Out>(out), std::forward<Args>(args)...);  // the noise is already a tensor
            } else {
                constexpr std::size_t K = sizeof...(Args) / 2 - 1;  // tensor terms before the noise
                auto all = std::forward_as_tuple(std::forward<Args>(args)...);
                auto coefs = detail::evens(all, std::make_index_sequence<K>{});
                auto ins = detail::odds(all, std::make_index_sequence<K>{});
                run(std::forward<Out>(out), coefs, ins, std::get<2 * K>(all), std::get<2 * K + 1>(all),
                    std::make_index_sequence<K>{});
            }
        }
    }

private:
    template <class Coefs, class Ins, class CNoise, class Out, std::size_t... I>
    static constexpr bool check_arguments(std::index_sequence<I...>) {
        if constexpr (!(coefficient<std::tuple_element_t<I, Coefs>> && ...) || !coefficient<CNoise>) {
            static_assert((coefficient<std::tuple_element_t<I, Coefs>> && ...) && coefficient<CNoise>,
                          "diffuse::lincomb_noise: arguments alternate coefficient, tensor: a coefficient is a number or "
                          "diffuse::per_sample(values)");
            return false;
        } else {
            return detail::check_primitive_tensors<Out, std::tuple_element_t<I, Ins>...>();
        }
    }

    template <class Out, class Coefs, class Ins, class CNoise, std::size_t... I>
    static void run(Out&& out, const Coefs& coefs, const Ins& ins, const CNoise& c_noise, const normal_noise& z,
                    std::index_sequence<I...> seq) {
        if constexpr (check_arguments<Coefs, Ins, CNoise, Out>(seq)) {
            constexpr std::size_t K = sizeof...(I);
            const auto o = view(std::forward<Out>(out));
            using T = std::remove_const_t<typename decltype(o)::value_type>;
            const auto views = std::make_tuple(view(std::get<I>(ins))...);
            (detail::check_input(o, std::get<I>(views), "lincomb_noise", I), ...);
            (detail::check_coef(std::get<I>(coefs), o.batch, "lincomb_noise", I), ...);
            detail::check_coef(c_noise, o.batch, "lincomb_noise", K);
            detail::require(z.first_sample <= normal_sample_limit && o.batch <= normal_sample_limit - z.first_sample,
                            "lincomb_noise", "first_sample + batch", z.first_sample + o.batch, "[0, 2^60]");
            detail::check_normal_args("lincomb_noise", 0, z.draw, 0, o.per_sample);  // the draw and the elements
            if (o.size() == 0) return;
            if constexpr (detail::on_device<Out>) {
                detail::device_backend<T>::lincomb_noise(o, coefs, views, c_noise, z.seed, z.draw, z.first_sample);
            } else {
                detail::for_each_segment(o.batch, o.per_sample, [&](std::size_t b, std::size_t j0, std::size_t j1) {
                    const auto c = std::make_tuple(detail::coef_at<T>(std::get<I>(coefs), b)..., detail::coef_at<T>(c_noise, b));
                    alignas(64) T noise[detail::normal_noise_piece];
                    for (std::size_t j = j0; j < j1; j += detail::normal_noise_piece) {
                        const std::size_t n = std::min(detail::normal_noise_piece, j1 - j);
                        normal_fill(noise, n, z.seed, z.first_sample + b, z.draw, j);
                        const std::size_t off = b * o.per_sample + j;
                        const auto p = std::make_tuple(static_cast<const T*>(std::get<I>(views).data + off)...,
                                                       static_cast<const T*>(noise));
                        detail::lincomb_kernel<T>(o.data + off, n, c, p, std::make_index_sequence<K + 1>{});
                    }
                }, detail::compute_bound_segments);
            }
        }
    }
};
inline constexpr lincomb_noise_t lincomb_noise{};

}  // namespace diffuse
