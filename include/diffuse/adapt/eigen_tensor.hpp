#pragma once
// Adapters for Eigen's Tensor module (CMake target diffuse::eigen): zero-copy views of Eigen::Tensor storage.
//
//   Eigen::Tensor / TensorFixedSize   column-major: batch = last dimension; row-major: batch = first
//   Eigen::TensorMap of those         dimension; per_sample = the product of the other dimensions
//
// Sample b is the b-th contiguous block of per_sample elements, which is what diffuse::tensor_view
// promises. Elements must be float or double. Matrix, Array and Map come from diffuse/adapt/eigen.hpp
// (included here), which needs only <Eigen/Core>: include this header only where Eigen tensors are used,
// since <unsupported/Eigen/CXX11/Tensor> is large.
//
// Tensor operations (`a + b`, contractions, slices, ...) are lazy expressions that own no memory: passing
// one to diffuse::view stops compilation with one sentence asking to evaluate it into a Tensor first.

#include <unsupported/Eigen/CXX11/Tensor>

#include <concepts>
#include <cstddef>
#include <type_traits>

#include "diffuse/adapt/eigen.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {
namespace detail {

template <class T>
struct is_eigen_tensor_plain : std::false_type {};
template <class S, int N, int O, class I>
struct is_eigen_tensor_plain<Eigen::Tensor<S, N, O, I>> : std::true_type {};
template <class S, class D, int O, class I>
struct is_eigen_tensor_plain<Eigen::TensorFixedSize<S, D, O, I>> : std::true_type {};

template <class T>
concept eigen_tensor_plain = is_eigen_tensor_plain<std::remove_const_t<T>>::value && scalar<typename T::Scalar>;

template <class T>
struct is_eigen_tensor_map : std::false_type {};
template <class P, int O, template <class> class M>
struct is_eigen_tensor_map<Eigen::TensorMap<P, O, M>> : std::true_type {};

// An object of Eigen's tensor class hierarchy that owns or maps no storage of its own (a tensor operation).
template <class T>
concept eigen_tensor_expression = std::derived_from<T, Eigen::TensorBase<T, Eigen::ReadOnlyAccessors>> &&
                                  !is_eigen_tensor_plain<T>::value && !is_eigen_tensor_map<T>::value;

// Shared by Tensor, TensorFixedSize and TensorMap. The batch dimension is the slowest-varying one:
// the last for column-major storage, the first for row-major. A rank-0 tensor is one sample of one.
template <class X, class Value>
struct eigen_tensor_traits {
    using value_type = Value;
    static constexpr memory_space space = memory_space::host;
    static constexpr int rank = X::NumIndices;
    static constexpr bool row_major = static_cast<int>(X::Layout) == static_cast<int>(Eigen::RowMajor);
    static constexpr int batch_dim = row_major ? 0 : rank - 1;

    static value_type* data(X& x) { return x.data(); }
    static std::size_t batch(const X& x) {
        if constexpr (rank == 0) {
            return 1;
        } else {
            return static_cast<std::size_t>(x.dimension(batch_dim));
        }
    }
    // The product of the other dimensions (not size / batch, which would divide by zero when batch = 0).
    static std::size_t per_sample(const X& x) {
        std::size_t n = 1;
        for (int d = 0; d < rank; ++d) {
            if (d != batch_dim) n *= static_cast<std::size_t>(x.dimension(d));
        }
        return n;
    }
};

}  // namespace detail

template <class S, int N, int O, class I>
    requires scalar<S>
struct tensor_traits<Eigen::Tensor<S, N, O, I>> : detail::eigen_tensor_traits<Eigen::Tensor<S, N, O, I>, S> {};

template <class S, class D, int O, class I>
    requires scalar<S>
struct tensor_traits<Eigen::TensorFixedSize<S, D, O, I>>
    : detail::eigen_tensor_traits<Eigen::TensorFixedSize<S, D, O, I>, S> {};

template <class P, int O>
    requires detail::eigen_tensor_plain<P>
struct tensor_traits<Eigen::TensorMap<P, O, Eigen::MakePointer>>
    : detail::eigen_tensor_traits<Eigen::TensorMap<P, O, Eigen::MakePointer>,
                                  std::conditional_t<std::is_const_v<P>, const typename P::Scalar,
                                                     typename P::Scalar>> {};

// Chosen over the general diffuse::view for tensor operations, so that the compiler reports one sentence
// naming the remedy.
template <class T>
    requires detail::eigen_tensor_expression<std::remove_cvref_t<T>>
[[nodiscard]] constexpr auto view(T&&) {
    static_assert(detail::eigen_rejected<std::remove_cvref_t<T>>::value,
                  "diffuse: this is an Eigen tensor expression (a tensor operation such as a + b, a contraction or "
                  "a slice), which owns no contiguous memory; evaluate it into an Eigen::Tensor first "
                  "(Eigen::Tensor<float, 3> t = a + b;) and pass that.");
    return tensor_view<float>{};
}

}  // namespace diffuse
