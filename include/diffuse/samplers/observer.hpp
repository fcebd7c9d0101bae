#pragma once
// Observing a sampling loop: progress reporting, intermediate x₀, early stop.
//
// Every sampler takes an observer called once after each step with a step_info. An observer is a
// callable returning void (keep going) or bool (false stops sampling after this step; the sampler then
// returns the current x, or x₀ when asked to finish with the prediction — truncated sampling).

#include <cstddef>
#include <span>
#include <type_traits>

#include "diffuse/core/tensor.hpp"

namespace diffuse {

template <class T>
struct step_info {
    std::size_t step;                 // 0-based index of the step just taken
    std::size_t steps;                // total number of steps
    std::span<const double> time;     // per-sample time the step started from (σ, t or timestep)
    tensor_view<const T> x;           // the state after the step
    tensor_view<const T> denoised;    // the model's x₀ prediction used by the step (empty if none)
};

struct no_observer {
    template <class T>
    void operator()(const step_info<T>&) const noexcept {}
};

namespace detail {
// Whether an observer of type Obs may read step_info::denoised (every observer but no_observer).
template <class Obs>
constexpr bool observer_reads_denoised() {
    return !std::is_same_v<std::remove_cvref_t<Obs>, no_observer>;
}

// Calls the observer; true means stop.
template <class Obs, class T>
bool notify(Obs& obs, const step_info<T>& info) {
    if constexpr (std::is_same_v<std::invoke_result_t<Obs&, const step_info<T>&>, void>) {
        obs(info);
        return false;
    } else {
        return !static_cast<bool>(obs(info));
    }
}
}  // namespace detail

}  // namespace diffuse
