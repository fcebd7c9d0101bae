#pragma once
// The convenience forms of a torch-compatible generator's randn (core/torch_generator.hpp,
// core/torch_cuda_generator.hpp), over the generator's own randn(T* out, std::size_t n):
//   randn<T>(n)    a new std::vector<T> of n values
//   randn(x)       a host tensor in its flat (sample-major) order, as torch.randn(x.shape) would fill it

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/tensor.hpp"

namespace diffuse::detail {

template <class Generator>
class randn_forms {
public:
    template <scalar T>
    [[nodiscard]] std::vector<T> randn(std::size_t n) {
        std::vector<T> v(n);
        self().randn(v.data(), n);
        return v;
    }

    template <tensor X>
    void randn(X&& x) {
        auto v = view(std::forward<X>(x));
        using V = decltype(v);
        static_assert(V::space == memory_space::host,
                      "diffuse: torch-compatible generators compute on the host: fill a host tensor (then diffuse::copy "
                      "it to the device)");
        static_assert(!std::is_const_v<typename V::value_type>, "diffuse: randn needs a writable tensor");
        self().randn(v.data, v.size());
    }

private:
    Generator& self() noexcept { return static_cast<Generator&>(*this); }
};

}  // namespace diffuse::detail
