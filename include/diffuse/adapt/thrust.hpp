#pragma once
// Adapter for thrust containers and raw device pointers (opt-in; needs thrust, from CCCL).
//
//   thrust::device_vector<T>   memory_space::device, one sample (diffuse::batched(v, B) for a batch)
//   thrust::host_vector<T>     memory_space::host, one sample
//   diffuse::device_view(p, batch, per_sample)   a tensor_view<T, memory_space::device> over device memory
//
// Device tensors run through the CUDA backend (diffuse/cuda/primitives.hpp). Under thrust's CPP (or OMP,
// TBB) device system a thrust::device_vector lives in host memory, and the backend then runs its kernels
// on the host as well (diffuse/cuda/memory.hpp: DIFFUSE_CUDA_ON_HOST), which is how CI tests it.

#include <cstddef>

#include <thrust/device_vector.h>
#include <thrust/host_vector.h>

#include "diffuse/core/tensor.hpp"

namespace diffuse {

template <class T, class A>
struct tensor_traits<thrust::device_vector<T, A>> {
    using value_type = T;
    static constexpr memory_space space = memory_space::device;
    static T* data(thrust::device_vector<T, A>& v) { return thrust::raw_pointer_cast(v.data()); }
    static const T* data(const thrust::device_vector<T, A>& v) { return thrust::raw_pointer_cast(v.data()); }
    static std::size_t batch(const thrust::device_vector<T, A>&) { return 1; }
    static std::size_t per_sample(const thrust::device_vector<T, A>& v) { return v.size(); }
};

template <class T, class A>
struct tensor_traits<thrust::host_vector<T, A>> {
    using value_type = T;
    static constexpr memory_space space = memory_space::host;
    static T* data(thrust::host_vector<T, A>& v) { return thrust::raw_pointer_cast(v.data()); }
    static const T* data(const thrust::host_vector<T, A>& v) { return thrust::raw_pointer_cast(v.data()); }
    static std::size_t batch(const thrust::host_vector<T, A>&) { return 1; }
    static std::size_t per_sample(const thrust::host_vector<T, A>& v) { return v.size(); }
};

// A view of `batch` samples of `per_sample` elements at ptr, in device memory (cudaMalloc'd, say).
template <class T>
[[nodiscard]] constexpr tensor_view<T, memory_space::device> device_view(T* ptr, std::size_t batch,
                                                                         std::size_t per_sample) noexcept {
    return {ptr, batch, per_sample};
}

}  // namespace diffuse
