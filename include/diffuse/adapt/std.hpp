#pragma once
// Adapters for standard containers. A flat container is one sample; use diffuse::batched(x, B) to
// see it as B samples.

#include <array>
#include <cstddef>
#include <span>
#include <vector>

#include "diffuse/core/tensor.hpp"

namespace diffuse {

template <scalar T, class A>
struct tensor_traits<std::vector<T, A>> {
    using value_type = T;
    static constexpr memory_space space = memory_space::host;
    static T* data(std::vector<T, A>& v) { return v.data(); }
    static std::size_t batch(const std::vector<T, A>&) { return 1; }
    static std::size_t per_sample(const std::vector<T, A>& v) { return v.size(); }
};

template <scalar T, std::size_t N>
struct tensor_traits<std::array<T, N>> {
    using value_type = T;
    static constexpr memory_space space = memory_space::host;
    static T* data(std::array<T, N>& v) { return v.data(); }
    static std::size_t batch(const std::array<T, N>&) { return 1; }
    static std::size_t per_sample(const std::array<T, N>&) { return N; }
};

template <class T, std::size_t E>
    requires scalar<T>
struct tensor_traits<std::span<T, E>> {
    using value_type = T;
    static constexpr bool is_view = true;
    static constexpr memory_space space = memory_space::host;
    static T* data(const std::span<T, E>& v) { return v.data(); }
    static std::size_t batch(const std::span<T, E>&) { return 1; }
    static std::size_t per_sample(const std::span<T, E>& v) { return v.size(); }
};

}  // namespace diffuse
