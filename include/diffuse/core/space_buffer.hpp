#pragma once
// space_buffer<T, S>: an owning, contiguous, zero-initialised buffer of n elements in memory space S — the
// workspace type of code that runs on either space.
//
//   diffuse::space_buffer<float, diffuse::memory_space::host> w(n);   // std::vector-backed (this header)
//   diffuse::space_buffer<float, diffuse::memory_space::device> d(n); // needs diffuse/cuda/memory.hpp
//   auto v = w.view(batch, per_sample);                               // tensor_view<float, S>, batch·per_sample == n
//
// Copying copies the elements (within the space); moving leaves the source empty. A space_buffer is itself
// a tensor (one sample of size() elements), so it can be passed to the primitives directly.

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

namespace detail {
template <memory_space S>
struct space_without_buffer : std::false_type {};

// The view (batch x per_sample) of a buffer of n elements; throws diffuse::error unless batch·per_sample == n.
template <class T, memory_space S>
[[nodiscard]] tensor_view<T, S> buffer_view(T* data, std::size_t n, std::size_t batch, std::size_t per_sample) {
    if (per_sample != 0 && batch > n / per_sample + 1) batch = n + 1;  // (no overflow in the product below)
    if (batch * per_sample != n)
        fail("space_buffer::view", std::to_string(batch) + " x " + std::to_string(per_sample) +
                                       " (samples x elements per sample) does not cover the buffer's " +
                                       std::to_string(n) + " elements");
    return {data, batch, per_sample};
}
}  // namespace detail

// The primary template is the space without a definition: memory_space::device is defined by the CUDA
// backend's memory header.
template <class T, memory_space S>
class space_buffer {
    static_assert(detail::space_without_buffer<S>::value,
                  "diffuse: space_buffer in device memory is defined by the CUDA backend: include "
                  "diffuse/cuda/memory.hpp (or diffuse/cuda/primitives.hpp)");
};

template <class T>
class space_buffer<T, memory_space::host> {
    static_assert(scalar<T> && !std::is_const_v<T>, "diffuse: space_buffer elements must be float or double");

public:
    using value_type = T;
    static constexpr memory_space space = memory_space::host;

    space_buffer() = default;
    explicit space_buffer(std::size_t n) : values_(n) {}

    [[nodiscard]] T* data() noexcept { return values_.data(); }
    [[nodiscard]] const T* data() const noexcept { return values_.data(); }
    [[nodiscard]] std::size_t size() const noexcept { return values_.size(); }

    [[nodiscard]] tensor_view<T, space> view(std::size_t batch, std::size_t per_sample) {
        return detail::buffer_view<T, space>(data(), size(), batch, per_sample);
    }
    [[nodiscard]] tensor_view<const T, space> view(std::size_t batch, std::size_t per_sample) const {
        return detail::buffer_view<const T, space>(data(), size(), batch, per_sample);
    }

private:
    std::vector<T> values_;
};

// b grown to at least n elements (a new zeroed buffer; the contents are not kept), for caches that grow and never
// shrink: scratch tensors, a network's workspace. The device overload (cuda/memory.hpp) keeps a replaced buffer
// alive while a CUDA graph exists, since the graph may read and write it.
template <class T>
void grow_buffer(space_buffer<T, memory_space::host>& b, std::size_t n) {
    if (b.size() < n) b = space_buffer<T, memory_space::host>(n);
}

template <class T, memory_space S>
struct tensor_traits<space_buffer<T, S>> {
    using value_type = T;
    static constexpr memory_space space = S;
    static T* data(space_buffer<T, S>& b) { return b.data(); }
    static const T* data(const space_buffer<T, S>& b) { return b.data(); }
    static std::size_t batch(const space_buffer<T, S>&) { return 1; }
    static std::size_t per_sample(const space_buffer<T, S>& b) { return b.size(); }
};

}  // namespace diffuse
