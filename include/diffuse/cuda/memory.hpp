#pragma once
// Device memory for the CUDA backend: space_buffer<T, memory_space::device>, copies between the spaces, and
// the CUDA runtime calls behind them, each turning a CUDA error into a diffuse::error naming the call.
//
//   diffuse::space_buffer<float, diffuse::memory_space::device> x(n);   // cudaMalloc + zero, owning
//   diffuse::copy(dst, src);   // tensor to tensor (views, buffers, containers), same size, any two spaces
//
// Inside a CUDA graph capture (cuda/graph.hpp) allocation works, frees wait for the graph's end, host-to-device
// copies copy the host values of capture time and device-to-host copies are refused (cuda/runtime.hpp).
//
// Where the device is:
//   compiled by nvcc (or any CUDA compiler), or by a host compiler with the CUDA runtime: device memory is
//   CUDA memory (cudaMalloc); no CUDA device at run time is a diffuse::error.
//   DIFFUSE_CUDA_ON_HOST defined, or THRUST_DEVICE_SYSTEM set to thrust's CPP, OMP or TBB system: "device"
//   memory is host memory and every device kernel runs as a loop on the host — the same kernel bodies, so
//   CI tests the device code without a GPU (thrust::device_vector lives in host memory likewise).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "diffuse/core/error.hpp"
#include "diffuse/core/space_buffer.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/cuda/runtime.hpp"

namespace diffuse {
namespace detail {

enum class copy_direction { host_to_device, device_to_host, device_to_device, host_to_host };

// Device memory and copies as the backend uses them (cuda/runtime.hpp: what changes while a capture records).
[[nodiscard]] inline void* device_allocate(std::size_t bytes, const char* where) { return raw_device_allocate(bytes, where); }
inline void device_free(void* p) noexcept {
    if (graph_recording* r = graph_recording::active()) r->defer_free(p);
    else raw_device_free(p);
}

// A device-to-device copy recorded into the capture (on its stream).
inline void record_device_copy(void* dst, const void* src, std::size_t bytes, const char* where) {
#if defined(DIFFUSE_CUDA_ON_HOST)
    (void)where;
    run_or_record([=] { std::memmove(dst, src, bytes); });
#else
    cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current_stream()), where, "cudaMemcpyAsync");
#endif
}

inline void device_copy(void* dst, const void* src, std::size_t bytes, copy_direction d, const char* where) {
    if (bytes == 0) return;
    if (graph_recording* r = graph_recording::active()) {
        if (d == copy_direction::device_to_device) return record_device_copy(dst, src, bytes, where);
        if (d == copy_direction::host_to_device)  // the host bytes of capture time, as the graph's constants
            return record_device_copy(dst, r->stage_constants(src, bytes, where), bytes, where);
        fail_in_capture(where, d == copy_direction::device_to_host ? "it copies device values to the host"
                                                                    : "it copies between host buffers at capture time");
    }
    raw_copy(dst, src, bytes, where);
}

// Zeroes on the current stream: the legacy default stream (as cudaMemset), or the capture's, recorded.
inline void device_zero(void* dst, std::size_t bytes, const char* where) {
    if (bytes == 0) return;
#if defined(DIFFUSE_CUDA_ON_HOST)
    (void)where;
    run_or_record([=] { std::memset(dst, 0, bytes); });
#else
    cuda_check(cudaMemsetAsync(dst, 0, bytes, current_stream()), where, "cudaMemsetAsync");
#endif
}

[[nodiscard]] constexpr copy_direction direction(memory_space from, memory_space to) {
    if (from == memory_space::host) return to == memory_space::host ? copy_direction::host_to_host : copy_direction::host_to_device;
    return to == memory_space::host ? copy_direction::device_to_host : copy_direction::device_to_device;
}

}  // namespace detail

template <class T>
class space_buffer<T, memory_space::device> {
    // (std::uint16_t: the bit patterns of bf16 / fp16 GEMM operands, cuda/reduced_precision.hpp)
    static_assert((scalar<T> || std::is_same_v<T, std::uint16_t>) && !std::is_const_v<T>,
                  "diffuse: device space_buffer elements must be float or double (or std::uint16_t 16-bit operands)");

public:
    using value_type = T;
    static constexpr memory_space space = memory_space::device;

    space_buffer() = default;
    explicit space_buffer(std::size_t n) : size_(n) {
        if (n > std::size_t(-1) / sizeof(T))
            detail::fail("space_buffer", std::to_string(n) + " elements do not fit in memory");
        data_ = static_cast<T*>(detail::device_allocate(n * sizeof(T), "space_buffer"));
        try {
            detail::device_zero(data_, n * sizeof(T), "space_buffer");
        } catch (...) {
            detail::device_free(data_);
            throw;
        }
    }
    space_buffer(const space_buffer& other) : space_buffer(other.size_) {
        detail::device_copy(data_, other.data_, size_ * sizeof(T), detail::copy_direction::device_to_device,
                            "space_buffer (copy)");
    }
    space_buffer(space_buffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    space_buffer& operator=(const space_buffer& other) {
        if (this != &other) *this = space_buffer(other);
        return *this;
    }
    space_buffer& operator=(space_buffer&& other) noexcept {
        if (this != &other) {
            detail::device_free(data_);
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ~space_buffer() { detail::device_free(data_); }

    [[nodiscard]] T* data() noexcept { return data_; }
    [[nodiscard]] const T* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    // Gives up the memory, leaving the buffer empty: the caller frees it (detail::device_free or raw_device_free).
    [[nodiscard]] T* release() noexcept {
        size_ = 0;
        return std::exchange(data_, nullptr);
    }

    [[nodiscard]] tensor_view<T, space> view(std::size_t batch, std::size_t per_sample) {
        return detail::buffer_view<T, space>(data_, size_, batch, per_sample);
    }
    [[nodiscard]] tensor_view<const T, space> view(std::size_t batch, std::size_t per_sample) const {
        return detail::buffer_view<const T, space>(data_, size_, batch, per_sample);
    }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

// b grown to at least n elements (core/space_buffer.hpp). The buffer it replaces may be what a live CUDA graph
// reads and writes (a network's workspace captured at a smaller batch, then grown by a direct call): while any
// graph exists it is kept, and freed with the last graph (cuda/runtime.hpp's live_graphs).
template <class T>
void grow_buffer(space_buffer<T, memory_space::device>& b, std::size_t n) {
    if (b.size() >= n) return;
    space_buffer<T, memory_space::device> grown(n);
    if (detail::live_graphs::exist()) detail::live_graphs::keep(b.release());
    b = std::move(grown);
}

// dst = src element for element (flat, sample-major), between any two memory spaces (one cudaMemcpy). Both are
// tensors of the same element type and number of elements (the shapes may differ: a flat std::vector into a
// batch view, say); throws diffuse::error otherwise.
template <class Dst, class Src>
void copy(Dst&& dst, Src&& src) {
    static_assert(tensor<Dst> && tensor<Src>, "diffuse::copy: dst and src must be tensors diffuse knows");
    if constexpr (tensor<Dst> && tensor<Src>) {
        const auto d = view(std::forward<Dst>(dst));
        const auto s = view(std::forward<Src>(src));
        using D = decltype(d);
        using S = decltype(s);
        static_assert(!std::is_const_v<typename D::value_type>, "diffuse::copy: dst must be writable (not const)");
        static_assert(std::is_same_v<std::remove_const_t<typename D::value_type>, std::remove_const_t<typename S::value_type>>,
                      "diffuse::copy: dst and src must have the same element type (float or double)");
        if (s.size() != d.size())
            detail::fail("copy", "src has " + std::to_string(s.size()) + " elements but dst has " +
                                     std::to_string(d.size()) + ": they must have as many");
        detail::device_copy(d.data, s.data, d.size() * sizeof(typename S::value_type), detail::direction(S::space, D::space),
                            "copy");
    }
}

}  // namespace diffuse
