#pragma once
// An owning tensor buffer in a memory space: space_buffer<T, S>. Zero-initialised, deep-copying, with data(),
// size() and view(batch, per_sample) -> tensor_view<T, S>. The host buffer is defined here; the device buffer
// is the specialisation of diffuse/cuda/memory.hpp. Samplers keep their workspaces in it, so a stepper's
// buffers live where its state lives.

#include <cstddef>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

template <class T, memory_space S>
class space_buffer;

template <class T>
class space_buffer<T, memory_space::host> {
public:
    space_buffer() = default;
    explicit space_buffer(std::size_t n) : data_(n) {}

    [[nodiscard]] T* data() noexcept { return data_.data(); }
    [[nodiscard]] const T* data() const noexcept { return data_.data(); }
    [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }

    // The buffer as batch samples of per_sample elements (batch·per_sample must be its size).
    [[nodiscard]] tensor_view<T, memory_space::host> view(std::size_t batch, std::size_t per_sample) {
        if (batch * per_sample != size())
            detail::fail("space_buffer::view", std::to_string(batch) + " x " + std::to_string(per_sample) +
                                                   " elements asked of a buffer of " + std::to_string(size()));
        return {data(), batch, per_sample};
    }

private:
    std::vector<T> data_;
};

}  // namespace diffuse
