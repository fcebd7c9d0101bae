#pragma once
// libtorch tensors as diffuse tensors (the diffuse::torch component): a view of a tensor's own memory, never
// a copy. A torch::Tensor's element type is known only at run time, so the view is asked for by type:
//
//   at::Tensor x = torch::randn({8, 3, 32, 32});                 // float32, contiguous, CPU
//   auto v = diffuse::torch_view<float>(x);                      // batch 8, 3072 values per sample
//   diffuse::sample_ddim(model, v, alphas_cumprod, grid, opt);   // samples in place, in x's storage
//
// Accepted: a defined, CPU-resident, contiguous (row-major) tensor of at least one dimension whose dtype is
// exactly T (float32 for float, float64 for double); dimension 0 is the batch. Anything else is a
// diffuse::error naming the defect — a transposed or sliced tensor must be made .contiguous() (a copy) by
// the caller, so that writes through the view always land in the tensor. torch_cuda_view<T>(x) is the same
// for a tensor on a CUDA device, as a device view (the device backend, docs/design.md "Device backend").

#include <torch/script.h>

#include <cstddef>
#include <string>
#include <type_traits>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

namespace detail {
template <class T>
[[nodiscard]] constexpr c10::ScalarType torch_dtype() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "diffuse: torch_view supports float and double");
    return std::is_same_v<T, float> ? c10::ScalarType::Float : c10::ScalarType::Double;
}
}  // namespace detail

namespace detail {
// The view of t in memory space S after every check: defined, on the CPU (host) or a CUDA device (device),
// dtype exactly T, at least one dimension, contiguous.
template <class T, memory_space S>
[[nodiscard]] tensor_view<T, S> checked_torch_view(const at::Tensor& t, const char* where) {
    if (!t.defined()) detail::fail(where, "the tensor is undefined");
    if constexpr (S == memory_space::host) {
        if (!t.device().is_cpu()) detail::fail(where, "the tensor is on " + t.device().str() + ", not the CPU");
    } else {
        if (!t.device().is_cuda())
            detail::fail(where, "the tensor is on " + t.device().str() + ", not a CUDA device (torch_view views CPU tensors)");
    }
    if (t.scalar_type() != detail::torch_dtype<T>())
        detail::fail(where, std::string("the tensor holds ") + c10::toString(t.scalar_type()) + ", not " +
                                c10::toString(detail::torch_dtype<T>()));
    if (t.dim() < 1) detail::fail(where, "a 0-dimensional tensor has no batch dimension");
    if (!t.is_contiguous()) detail::fail(where, "the tensor is not contiguous (call .contiguous() for a row-major copy)");
    const auto batch = std::size_t(t.size(0));
    const auto n = std::size_t(t.numel());
    return tensor_view<T, S>{t.data_ptr<T>(), batch, batch ? n / batch : 0};
}
}  // namespace detail

template <class T>
[[nodiscard]] tensor_view<T> torch_view(const at::Tensor& t) {
    return detail::checked_torch_view<T, memory_space::host>(t, "torch_view");
}

// A CUDA tensor as a device view, with the same checks: the device backend (diffuse/cuda/primitives.hpp, in
// a .cu file) runs the primitives and samplers on it, in the tensor's own storage. It needs a libtorch built
// with CUDA to hold such a tensor (Debian's libtorch-dev is CPU-only: there every tensor is refused here).
template <class T>
[[nodiscard]] tensor_view<T, memory_space::device> torch_cuda_view(const at::Tensor& t) {
    return detail::checked_torch_view<T, memory_space::device>(t, "torch_cuda_view");
}

}  // namespace diffuse
