#pragma once
// Adapters for Eigen (CMake target diffuse::eigen): zero-copy views of Eigen's own storage.
//
//   Eigen::Matrix / Eigen::Array      column-major: a column is a sample (batch = cols, per_sample = rows)
//                                     row-major:    a row is a sample    (batch = rows, per_sample = cols)
//   Eigen::Map of a Matrix / Array    the same, when the Map has the default (contiguous) stride
//   Eigen::Tensor / TensorFixedSize   column-major: batch = last dimension; row-major: batch = first
//   Eigen::TensorMap of those         dimension; per_sample = the product of the other dimensions
//
// In each case sample b is the b-th contiguous block of per_sample elements, which is what
// diffuse::tensor_view promises. Elements must be float or double.
//
// Lazy expressions (`a + b`, `m.transpose()`, blocks, Refs, tensor operations) own no memory and must
// never cross diffuse's API: passing one to diffuse::view stops compilation with one sentence asking
// to evaluate it into a Matrix, Array or Tensor first. A Map with a custom stride is rejected the same
// way, because its elements are not contiguous.

#include <Eigen/Core>
#include <unsupported/Eigen/CXX11/Tensor>

#include <concepts>
#include <cstddef>
#include <type_traits>

#include "diffuse/core/tensor.hpp"

namespace diffuse {
namespace detail {

template <class T>
struct is_eigen_plain : std::false_type {};
template <class S, int R, int C, int O, int MR, int MC>
struct is_eigen_plain<Eigen::Matrix<S, R, C, O, MR, MC>> : std::true_type {};
template <class S, int R, int C, int O, int MR, int MC>
struct is_eigen_plain<Eigen::Array<S, R, C, O, MR, MC>> : std::true_type {};

// A dense Matrix or Array of float or double, possibly const (as in Eigen::Map<const Eigen::MatrixXf>).
template <class T>
concept eigen_plain = is_eigen_plain<std::remove_const_t<T>>::value && scalar<typename T::Scalar>;

template <class T>
struct is_eigen_tensor_plain : std::false_type {};
template <class S, int N, int O, class I>
struct is_eigen_tensor_plain<Eigen::Tensor<S, N, O, I>> : std::true_type {};
template <class S, class D, int O, class I>
struct is_eigen_tensor_plain<Eigen::TensorFixedSize<S, D, O, I>> : std::true_type {};

template <class T>
concept eigen_tensor_plain = is_eigen_tensor_plain<std::remove_const_t<T>>::value && scalar<typename T::Scalar>;

template <class T>
struct is_eigen_map : std::false_type {
    static constexpr bool strided = false;
};
template <class P, int O, class S>
struct is_eigen_map<Eigen::Map<P, O, S>> : std::true_type {
    static constexpr bool strided = !std::is_same_v<S, Eigen::Stride<0, 0>>;
};

template <class T>
struct is_eigen_tensor_map : std::false_type {};
template <class P, int O, template <class> class M>
struct is_eigen_tensor_map<Eigen::TensorMap<P, O, M>> : std::true_type {};

// Anything of Eigen's dense or tensor class hierarchies.
template <class T>
concept eigen_object = std::derived_from<T, Eigen::EigenBase<T>> ||
                       std::derived_from<T, Eigen::TensorBase<T, Eigen::ReadOnlyAccessors>>;

template <class T>
concept eigen_strided_map = is_eigen_map<T>::strided;

// An Eigen object that owns or maps no storage of its own: an expression, a block, a Ref, ...
// (Matrix<int> and the like are not expressions: they fail with diffuse::view's general sentence.)
template <class T>
concept eigen_expression = eigen_object<T> && !is_eigen_plain<T>::value && !is_eigen_tensor_plain<T>::value &&
                           !is_eigen_map<T>::value && !is_eigen_tensor_map<T>::value;

// Shared by Matrix, Array and their Maps: sample-major order follows the storage order.
template <class X, class Value>
struct eigen_dense_traits {
    using value_type = Value;
    static constexpr memory_space space = memory_space::host;
    static value_type* data(X& x) { return x.data(); }
    static std::size_t batch(const X& x) {
        return static_cast<std::size_t>(X::IsRowMajor ? x.rows() : x.cols());
    }
    static std::size_t per_sample(const X& x) {
        return static_cast<std::size_t>(X::IsRowMajor ? x.cols() : x.rows());
    }
};

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

template <class>
struct eigen_rejected : std::false_type {};

}  // namespace detail

template <class S, int R, int C, int O, int MR, int MC>
    requires scalar<S>
struct tensor_traits<Eigen::Matrix<S, R, C, O, MR, MC>>
    : detail::eigen_dense_traits<Eigen::Matrix<S, R, C, O, MR, MC>, S> {};

template <class S, int R, int C, int O, int MR, int MC>
    requires scalar<S>
struct tensor_traits<Eigen::Array<S, R, C, O, MR, MC>>
    : detail::eigen_dense_traits<Eigen::Array<S, R, C, O, MR, MC>, S> {};

// Map<Matrix> views mutable elements, Map<const Matrix> const ones.
template <class P, int O>
    requires detail::eigen_plain<P>
struct tensor_traits<Eigen::Map<P, O, Eigen::Stride<0, 0>>>
    : detail::eigen_dense_traits<Eigen::Map<P, O, Eigen::Stride<0, 0>>,
                                 std::conditional_t<std::is_const_v<P>, const typename P::Scalar,
                                                    typename P::Scalar>> {};

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

// Chosen over the general diffuse::view for the Eigen types above that are not adapted, so that the
// compiler reports one sentence naming the remedy.
template <class T>
    requires detail::eigen_expression<std::remove_cvref_t<T>>
[[nodiscard]] constexpr auto view(T&&) {
    static_assert(detail::eigen_rejected<std::remove_cvref_t<T>>::value,
                  "diffuse: this is an Eigen expression (such as a + b, a product, a transpose, a block or a "
                  "Ref), which owns no contiguous memory; evaluate it into an Eigen::Matrix, Eigen::Array or "
                  "Eigen::Tensor first (Eigen::MatrixXf m = a + b;) and pass that.");
    return tensor_view<float>{};
}

template <class T>
    requires detail::eigen_strided_map<std::remove_cvref_t<T>>
[[nodiscard]] constexpr auto view(T&&) {
    static_assert(detail::eigen_rejected<std::remove_cvref_t<T>>::value,
                  "diffuse: this Eigen::Map has a custom stride, so its elements are not contiguous; map the "
                  "memory with the default stride or copy it into an Eigen::Matrix first.");
    return tensor_view<float>{};
}

}  // namespace diffuse
