#pragma once
// Copies between views of one memory space, and one-sample views: what samplers and models need besides the
// arithmetic primitives to move values around without reading them on the host.
//
//   copy_values(dst, src)   dst = src (same shape): std::copy_n on the host, the exact lincomb 1·src elsewhere
//   copy_from_host(dst, v)  dst = host values v (same size): std::copy_n on the host, one host-to-device copy
//                           for a device view (the device backend's; inside a CUDA graph capture the values of
//                           capture time: cuda/runtime.hpp) — how host-only noise sources fill device states
//   sample_view(v, b)       sample b of v as a batch of one (pointer arithmetic only: valid in any space)

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>

#include "diffuse/core/device_dispatch.hpp"
#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse::detail {

template <class T, memory_space S>
void copy_values(tensor_view<T, S> dst, tensor_view<const T, S> src) {
    if (dst.batch != src.batch || dst.per_sample != src.per_sample)
        fail("copy_values", "the source is " + std::to_string(src.batch) + " x " + std::to_string(src.per_sample) +
                                " but the destination " + std::to_string(dst.batch) + " x " + std::to_string(dst.per_sample));
    if constexpr (S == memory_space::host) std::copy_n(src.data, src.size(), dst.data);
    else lincomb(dst, 1.0, src);  // 1·v = v exactly
}
template <class T, memory_space S>
void copy_values(tensor_view<T, S> dst, tensor_view<T, S> src) {
    copy_values(dst, tensor_view<const T, S>(src));
}

template <class T, memory_space S>
void copy_from_host(tensor_view<T, S> dst, std::span<const T> src) {
    if (dst.size() != src.size())
        fail("copy_from_host", std::to_string(src.size()) + " values for a tensor of " + std::to_string(dst.size()));
    if constexpr (S == memory_space::host) std::copy_n(src.data(), src.size(), dst.data);
    else if constexpr (check_call_space<T, tensor_view<T, S>>()) device_backend<T>::copy_from_host(dst, src.data());
}

template <class T, memory_space S>
[[nodiscard]] tensor_view<T, S> sample_view(const tensor_view<T, S>& v, std::size_t b) noexcept {
    return {v.sample(b), 1, v.per_sample};
}

}  // namespace diffuse::detail
