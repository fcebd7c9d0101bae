#pragma once
// Scratch tensors for objects that are called with tensors of any element type and memory space (a model, a
// guidance wrapper): slot k of element type T in space S is a space_buffer<T, S>, made on first use and grown to
// the largest size asked, so repeated calls allocate nothing. A buffer of a space is created only when a call in
// that space needs it, so the device buffer type is needed only where the device backend is included.
// A copy of the object starts with empty scratch (its contents are never carried from call to call).

#include <array>
#include <cstddef>
#include <type_traits>

#include "diffuse/core/space_buffer.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse::detail {

template <std::size_t Slots>
class scratch_tensors {
public:
    scratch_tensors() = default;
    scratch_tensors(const scratch_tensors&) noexcept {}
    scratch_tensors& operator=(const scratch_tensors&) noexcept { return *this; }
    ~scratch_tensors() {
        for (auto& s : slots_)
            if (s.p != nullptr) s.destroy(s.p);
    }

    // A batch × per_sample view on slot k's buffer for element type T in space S.
    template <class T, memory_space S>
    [[nodiscard]] tensor_view<T, S> get(std::size_t k, std::size_t batch, std::size_t per_sample) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
        using buffer = space_buffer<T, S>;
        auto& s = slots_[4 * k + (std::is_same_v<T, double> ? 2 : 0) + (S == memory_space::host ? 0 : 1)];
        if (s.p == nullptr) {
            s.p = new buffer();
            s.destroy = [](void* p) { delete static_cast<buffer*>(p); };
        }
        auto& b = *static_cast<buffer*>(s.p);
        grow_buffer(b, batch * per_sample);  // (a device buffer a CUDA graph may use outlives the graph: cuda/memory.hpp)
        return {b.data(), batch, per_sample};
    }

private:
    struct slot {
        void* p = nullptr;
        void (*destroy)(void*) = nullptr;
    };
    std::array<slot, 4 * Slots> slots_{};
};

}  // namespace diffuse::detail
