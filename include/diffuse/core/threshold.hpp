#pragma once
// Dynamic thresholding of x̂₀ (Saharia et al. 2022, Imagen §2.3; diffusers' _threshold_sample), per sample b:
//   s_b  = clamp(quantile_ratio(|x_b|), 1, max_value)        (quantile_abs: torch.quantile's interpolation)
//   x_b ← clamp(x_b, −s_b, s_b) / s_b
// in the tensor's precision (s_b rounded to T first, as diffusers' float tensors hold it). On device tensors the
// quantile and the division stay on the device (diffuse/cuda/quantile.hpp: the same bits, nothing read back).

#include <algorithm>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"

namespace diffuse {

namespace detail {
// s_b from the quantile, as a T (diffusers clamps the float quantile to [1, max_value]).
template <class T>
[[nodiscard]] DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T threshold_of(double quantile, double max_value) {
    const double s = quantile < 1.0 ? 1.0 : quantile;
    return static_cast<T>(s > max_value ? max_value : s);
}
}  // namespace detail

// x ← dynamic_threshold(x) in place; `quantiles` (batch doubles) and `scratch` (x's element type) are reused
// between calls on the host (unused for device tensors).
template <class X, class S>
void dynamic_threshold(X&& x, double ratio, double max_value, std::vector<double>& quantiles, std::vector<S>& scratch) {
    constexpr const char* where = "dynamic_threshold";
    auto v = view(std::forward<X>(x));
    using T = std::remove_const_t<typename decltype(v)::value_type>;
    static_assert(!std::is_const_v<typename decltype(v)::value_type>, "diffuse::dynamic_threshold writes x: pass a mutable tensor");
    static_assert(std::is_same_v<S, T>, "diffuse::dynamic_threshold: scratch must hold x's element type (float or double)");
    detail::require(ratio > 0.0 && ratio <= 1.0, where, "ratio", ratio, "(0, 1]");
    detail::require(max_value >= 1.0, where, "max_value", max_value, "[1, inf)");
    if (v.size() == 0) return;
    if constexpr (decltype(v)::space == memory_space::device) {
        static_assert(detail::device_quantile<T>::available,
                      "diffuse: dynamic_threshold on device memory needs diffuse/cuda/quantile.hpp (included by "
                      "diffuse/cuda/primitives.hpp)");
        detail::device_quantile<T>::threshold(v, detail::quantile_rank_of<T>(ratio, v.per_sample), max_value);
        (void)quantiles;
        (void)scratch;
    } else {
        quantiles.resize(v.batch);
        quantile_abs(tensor_view<const T>(v), ratio, quantiles, scratch);
        for (std::size_t b = 0; b < v.batch; ++b) {
            const T s = detail::threshold_of<T>(quantiles[b], max_value);
            const tensor_view<T> row{v.sample(b), 1, v.per_sample};
            transform(row, [s](T e) { return (e < -s ? -s : (e > s ? s : e)) / s; }, row);
        }
    }
}

}  // namespace diffuse
