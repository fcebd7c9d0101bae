#pragma once
// Adapters for xtensor (CMake target diffuse::xtensor): zero-copy views of xtensor containers.
//
//   xt::xarray, xt::xtensor, xt::xtensor_fixed and the adaptors made by xt::adapt
//   (xarray_adaptor, xtensor_adaptor, xfixed_adaptor)
//     row-major:    batch = shape[0],      per_sample = the product of the other extents
//     column-major: batch = shape[last],   per_sample = the product of the other extents
//   A rank-0 container is one sample of one element.
//
// Layouts are checked when the view is made: a container whose layout is `dynamic` is accepted only
// when its strides are those of contiguous row-major or column-major storage; anything else (custom
// strides, offsets) throws diffuse::error. Elements must be float or double.
//
// Lazy expressions and views (`a + b`, xt::view, xt::transpose) own no memory and must never cross
// diffuse's API: passing one to diffuse::view stops compilation with one sentence asking to evaluate
// it into an xt::xarray or xt::xtensor first.

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xcontainer.hpp>
#include <xtensor/xexpression.hpp>
#include <xtensor/xfixed.hpp>
#include <xtensor/xlayout.hpp>
#include <xtensor/xtensor.hpp>

#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {
namespace detail {

// Any xtensor container or adaptor (classes deriving from xt::xcontainer own or map a flat buffer).
template <class X>
concept xt_container = std::derived_from<X, xt::xcontainer<X>>;

template <class X>
using xt_element_t = std::remove_pointer_t<decltype(std::declval<X&>().data())>;

// An xtensor expression that is not a container: xfunction (a + b), xview, xstrided_view, ...
// (Containers of int and the like are not expressions: they fail with diffuse::view's general sentence.)
template <class X>
concept xt_expression = xt::is_xexpression<X>::value && !xt_container<X>;

// True when `strides` are those of contiguous storage of `shape` in the given order. Extents of one
// may carry any stride (xtensor stores 0 for them); an empty container is contiguous.
template <class Shape, class Strides>
bool xt_strides_contiguous(const Shape& shape, const Strides& strides, bool row_major) {
    const std::size_t rank = shape.size();
    if (strides.size() != rank) return false;
    std::size_t expected = 1;
    for (std::size_t k = 0; k < rank; ++k) {
        const std::size_t d = row_major ? rank - 1 - k : k;
        const auto extent = static_cast<std::size_t>(shape[d]);
        if (extent == 0) return true;
        if (extent != 1 && static_cast<std::ptrdiff_t>(strides[d]) != static_cast<std::ptrdiff_t>(expected)) {
            return false;
        }
        expected *= extent;
    }
    return true;
}

inline const char* xt_layout_name(xt::layout_type l) {
    switch (l) {
        case xt::layout_type::row_major: return "row_major";
        case xt::layout_type::column_major: return "column_major";
        case xt::layout_type::dynamic: return "dynamic";
        case xt::layout_type::any: return "any";
    }
    return "unknown";
}

template <class List>
std::string xt_list(const List& l) {
    std::string s = "(";
    for (std::size_t i = 0; i < l.size(); ++i) {
        if (i > 0) s += ", ";
        s += std::to_string(static_cast<long long>(l[i]));
    }
    return s + ")";
}

template <class X>
struct xt_traits {
    using value_type = xt_element_t<X>;
    static constexpr memory_space space = memory_space::host;

    // Whether sample b is the b-th block of the storage with the first extent as batch (row-major)
    // rather than the last (column-major); throws diffuse::error when the storage is neither.
    static bool row_major(const X& x) {
        const xt::layout_type l = x.layout();
        const auto& shape = x.shape();
        const auto& strides = x.strides();
        if (l == xt::layout_type::row_major || l == xt::layout_type::column_major) {
            const bool row = l == xt::layout_type::row_major;
            if (xt_strides_contiguous(shape, strides, row)) return row;
        } else {
            if (xt_strides_contiguous(shape, strides, true)) return true;
            if (xt_strides_contiguous(shape, strides, false)) return false;
        }
        fail("view", std::string("xtensor layout = ") + xt_layout_name(l) + " with shape " + xt_list(shape) +
                         " and strides " + xt_list(strides) +
                         " is not contiguous storage; accepted are contiguous row_major or column_major "
                         "containers (copy it into an xt::xarray first)");
    }

    static value_type* data(X& x) {
        (void)row_major(x);
        return x.data() + x.data_offset();
    }
    static std::size_t batch(const X& x) {
        const auto& shape = x.shape();
        if (shape.size() == 0) return 1;
        return static_cast<std::size_t>(row_major(x) ? shape[0] : shape[shape.size() - 1]);
    }
    // The product of the other extents (not size / batch, which would divide by zero when batch = 0).
    static std::size_t per_sample(const X& x) {
        const auto& shape = x.shape();
        const std::size_t rank = shape.size();
        if (rank == 0) return 1;
        const std::size_t skip = row_major(x) ? 0 : rank - 1;
        std::size_t n = 1;
        for (std::size_t d = 0; d < rank; ++d) {
            if (d != skip) n *= static_cast<std::size_t>(shape[d]);
        }
        return n;
    }
};

template <class>
struct xt_rejected : std::false_type {};

}  // namespace detail

template <class EC, xt::layout_type L, class SC, class Tag>
    requires scalar<detail::xt_element_t<xt::xarray_container<EC, L, SC, Tag>>>
struct tensor_traits<xt::xarray_container<EC, L, SC, Tag>> : detail::xt_traits<xt::xarray_container<EC, L, SC, Tag>> {};

template <class EC, xt::layout_type L, class SC, class Tag>
    requires scalar<detail::xt_element_t<xt::xarray_adaptor<EC, L, SC, Tag>>>
struct tensor_traits<xt::xarray_adaptor<EC, L, SC, Tag>> : detail::xt_traits<xt::xarray_adaptor<EC, L, SC, Tag>> {};

template <class EC, std::size_t N, xt::layout_type L, class Tag>
    requires scalar<detail::xt_element_t<xt::xtensor_container<EC, N, L, Tag>>>
struct tensor_traits<xt::xtensor_container<EC, N, L, Tag>> : detail::xt_traits<xt::xtensor_container<EC, N, L, Tag>> {};

template <class EC, std::size_t N, xt::layout_type L, class Tag>
    requires scalar<detail::xt_element_t<xt::xtensor_adaptor<EC, N, L, Tag>>>
struct tensor_traits<xt::xtensor_adaptor<EC, N, L, Tag>> : detail::xt_traits<xt::xtensor_adaptor<EC, N, L, Tag>> {};

template <class ET, class S, xt::layout_type L, bool SH, class Tag>
    requires scalar<detail::xt_element_t<xt::xfixed_container<ET, S, L, SH, Tag>>>
struct tensor_traits<xt::xfixed_container<ET, S, L, SH, Tag>>
    : detail::xt_traits<xt::xfixed_container<ET, S, L, SH, Tag>> {};

template <class EC, class S, xt::layout_type L, bool SH, class Tag>
    requires scalar<detail::xt_element_t<xt::xfixed_adaptor<EC, S, L, SH, Tag>>>
struct tensor_traits<xt::xfixed_adaptor<EC, S, L, SH, Tag>> : detail::xt_traits<xt::xfixed_adaptor<EC, S, L, SH, Tag>> {};

// Chosen over the general diffuse::view for xtensor expressions, so that the compiler reports one
// sentence naming the remedy.
template <class T>
    requires detail::xt_expression<std::remove_cvref_t<T>>
[[nodiscard]] constexpr auto view(T&&) {
    static_assert(detail::xt_rejected<std::remove_cvref_t<T>>::value,
                  "diffuse: this is an xtensor expression or view (such as a + b, xt::view or xt::transpose), "
                  "which owns no contiguous memory; evaluate it into an xt::xarray or xt::xtensor first "
                  "(xt::xarray<float> m = a + b;) and pass that.");
    return tensor_view<float>{};
}

}  // namespace diffuse
