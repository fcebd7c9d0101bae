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

template <class T, memory_space S = memory_space::host>
struct step_info {
    std::size_t step;                 // 0-based index of the step just taken
    std::size_t steps;                // total number of steps
    std::span<const double> time;     // per-sample time the step started from (σ, t or timestep)
    tensor_view<const T, S> x;        // the state after the step (in the state's memory space)
    tensor_view<const T, S> denoised; // the model's x₀ prediction used by the step (empty if none)
};

struct no_observer {
    template <class T, memory_space S>
    void operator()(const step_info<T, S>&) const noexcept {}
};

// An observer that reads step, steps, time and x only: f sees step_info::denoised empty. Passed to a one-call
// sampler it lets the steps skip forming x̂₀ where nothing else needs it (DDIM, DDPM: samplers.md).
template <class F>
struct ignores_denoised {
    F f;
    static constexpr bool reads_denoised = false;
    template <class T, memory_space S>
    decltype(auto) operator()(const step_info<T, S>& info) {
        step_info<T, S> shown = info;
        shown.denoised = {};
        return f(shown);
    }
};
template <class F>
ignores_denoised(F) -> ignores_denoised<F>;

namespace detail {
// Whether an observer of type Obs may read step_info::denoised: every observer but no_observer and
// ignores_denoised (a type with reads_denoised = false).
template <class Obs>
constexpr bool observer_reads_denoised() {
    using O = std::remove_cvref_t<Obs>;
    if constexpr (std::is_same_v<O, no_observer>) return false;
    else if constexpr (requires { O::reads_denoised; }) return static_cast<bool>(O::reads_denoised);
    else return true;
}

// Calls the observer; true means stop.
template <class Obs, class T, memory_space S>
bool notify(Obs& obs, const step_info<T, S>& info) {
    if constexpr (std::is_same_v<std::invoke_result_t<Obs&, const step_info<T, S>&>, void>) {
        obs(info);
        return false;
    } else {
        return !static_cast<bool>(obs(info));
    }
}
}  // namespace detail

}  // namespace diffuse
