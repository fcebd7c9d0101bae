#pragma once
// Argument checks shared by the losses, training helpers and metrics.

#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "diffuse/core/error.hpp"

namespace diffuse {
namespace detail {

inline void require_batch_values(std::span<const double> v, std::size_t batch, std::string_view where,
                             std::string_view name, bool allow_empty) {
    if (allow_empty && v.empty()) return;
    if (v.size() != batch)
        fail(where, std::string(name) + " has " + std::to_string(v.size()) + " values but the batch has " +
                        std::to_string(batch));
}

// Weights must be finite and non-negative; an empty span means all ones.
inline void require_weights(std::span<const double> w, std::size_t batch, std::string_view where) {
    require_batch_values(w, batch, where, "weights", true);
    for (std::size_t b = 0; b < w.size(); ++b)
        require(std::isfinite(w[b]) && w[b] >= 0.0, where, "weights[" + std::to_string(b) + "]", w[b],
                "[0, inf) and finite");
}

template <class A, class B>
void require_same_shape(const A& a, const B& b, std::string_view where, std::string_view na, std::string_view nb) {
    if (a.batch != b.batch || a.per_sample != b.per_sample)
        fail(where, std::string(na) + " has shape " + std::to_string(a.batch) + "x" + std::to_string(a.per_sample) +
                        " but " + std::string(nb) + " has " + std::to_string(b.batch) + "x" +
                        std::to_string(b.per_sample) + " (batch x elements per sample)");
}

template <class A, class B>
[[nodiscard]] bool views_overlap(const A& a, const B& b) {
    if (a.size() == 0 || b.size() == 0) return false;
    const auto* a0 = static_cast<const void*>(a.data);
    const auto* b0 = static_cast<const void*>(b.data);
    const auto* a1 = static_cast<const void*>(a.data + a.size());
    const auto* b1 = static_cast<const void*>(b.data + b.size());
    return std::less<>{}(a0, b1) && std::less<>{}(b0, a1);
}

}  // namespace detail

}  // namespace diffuse
