#pragma once
// Adapters for Eigen's dense module (CMake target diffuse::eigen): zero-copy views of Eigen's own storage.
//
//   Eigen::Matrix / Eigen::Array      column-major: a column is a sample (batch = cols, per_sample = rows)
//                                     row-major:    a row is a sample    (batch = rows, per_sample = cols)
//   Eigen::Map of a Matrix / Array    the same, when the Map has the default (contiguous) stride
//
// Eigen::Tensor, TensorFixedSize and TensorMap are adapted by diffuse/adapt/eigen_tensor.hpp, which
// brings in Eigen's (unsupported) Tensor module; this header needs only <Eigen/Core>.
//
// In each case sample b is the b-th contiguous block of per_sample elements, which is what
// diffuse::tensor_view promises. Elements must be float or double.
//
// Lazy expressions (`a + b`, `m.transpose()`, blocks, Refs) own no memory and must never cross diffuse's
// API: passing one to diffuse::view stops compilation with one sentence asking to evaluate it into a
// Matrix or Array first. A Map with a custom stride is rejected the same way, because its elements are
// not contiguous.

#include <Eigen/Core>

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
struct is_eigen_map : std::false_type {
    static constexpr bool strided = false;
};
template <class P, int O, class S>
struct is_eigen_map<Eigen::Map<P, O, S>> : std::true_type {
    static constexpr bool strided = !std::is_same_v<S, Eigen::Stride<0, 0>>;
};

template <class T>
concept eigen_strided_map = is_eigen_map<T>::strided;

// An object of Eigen's dense class hierarchy that owns or maps no storage of its own: an expression, a
// block, a Ref, ... (Matrix<int> and the like are not expressions: they fail with diffuse::view's general
// sentence.)
template <class T>
concept eigen_expression = std::derived_from<T, Eigen::EigenBase<T>> && !is_eigen_plain<T>::value &&
                           !is_eigen_map<T>::value;

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

// Chosen over the general diffuse::view for the Eigen types above that are not adapted, so that the
// compiler reports one sentence naming the remedy.
template <class T>
    requires detail::eigen_expression<std::remove_cvref_t<T>>
[[nodiscard]] constexpr auto view(T&&) {
    static_assert(detail::eigen_rejected<std::remove_cvref_t<T>>::value,
                  "diffuse: this is an Eigen expression (such as a + b, a product, a transpose, a block or a "
                  "Ref), which owns no contiguous memory; evaluate it into an Eigen::Matrix or Eigen::Array "
                  "first (Eigen::MatrixXf m = a + b;) and pass that.");
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
