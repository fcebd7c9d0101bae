#pragma once
// How a primitive chooses its backend: by the memory space of its tensors (tensor_traits<T>::space).
//   all tensors in host memory    -> the host code of the primitive (core/)
//   all tensors in device memory  -> detail::device_backend<T>, defined by diffuse/cuda/primitives.hpp
//   tensors of both spaces        -> a compile-time sentence: one call never mixes memory spaces
// The device backend is a specialisation of detail::device_backend, so core never includes CUDA headers
// and a device call without the backend stops compilation with one sentence naming its header.

#include <cstddef>
#include <type_traits>

#include "diffuse/core/tensor.hpp"

namespace diffuse::detail {

// Specialised (for float and double) by diffuse/cuda/primitives.hpp.
template <class T>
struct device_backend {
    static constexpr bool available = false;
};

// Whether every one of the tensors Ts lives in device memory (false for none).
template <class... Ts>
inline constexpr bool on_device = sizeof...(Ts) > 0 && ((tensor_space_v<Ts> == memory_space::device) && ...);

// The compile-time check of a call's memory spaces (Ts are tensors of element type T): one sentence for
// mixed spaces, one for device tensors without the device backend; true when the call can proceed.
template <class T, class... Ts>
constexpr bool check_call_space() {
    constexpr bool all_host = ((tensor_space_v<Ts> == memory_space::host) && ...);
    constexpr bool all_device = on_device<Ts...>;
    if constexpr (!all_host && !all_device) {
        static_assert(all_host || all_device,
                      "diffuse: tensors of two memory spaces in one call (host memory and device memory): a primitive "
                      "runs where its tensors live, so copy the host tensors to the device first (or the device ones "
                      "to the host), e.g. with diffuse::copy from diffuse/cuda/memory.hpp");
        return false;
    } else if constexpr (all_device) {
        // device_backend<T> is named only for device calls: a host call never instantiates it, so the backend's
        // header may come after host code that used the primitives.
        static_assert(device_backend<T>::available,
                      "diffuse: this tensor lives in device memory; include the CUDA backend "
                      "(diffuse/cuda/primitives.hpp) to run primitives on it");
        return device_backend<T>::available;
    } else {
        return true;
    }
}

// body(b) for every sample b in [0, n), run where memory space S's data lives: a loop on the host, or the device
// backend's launcher (a grid-stride kernel under nvcc, a host loop under DIFFUSE_CUDA_ON_HOST; recorded inside a
// CUDA graph capture). For the small per-sample formulas between a reduction and the lincomb that uses its
// results: body is a DIFFUSE_HD functor that reads and writes memory of S only.
template <memory_space S, class Body>
void for_each_sample(std::size_t n, const Body& body, const char* where) {
    if constexpr (S == memory_space::host) {
        (void)where;
        for (std::size_t b = 0; b < n; ++b) body(b);
    } else {
        using backend = device_backend<std::conditional_t<sizeof(Body) == 0, float, double>>;  // (named at the call)
        static_assert(backend::available,
                      "diffuse: this computation runs on device memory; include the CUDA backend "
                      "(diffuse/cuda/primitives.hpp)");
        if constexpr (backend::available) backend::for_each_sample(n, body, where);
    }
}

}  // namespace diffuse::detail
