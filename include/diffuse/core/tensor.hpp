#pragma once
// The tensor view: every user tensor is adapted once, through a trait, into a flat view
// (data pointer, batch size, elements per sample, memory space). Algorithms see only views.
//
// To adapt a type `My`, specialise diffuse::tensor_traits<My> (see examples/custom_tensor.cpp):
//   template <> struct diffuse::tensor_traits<My> {
//       using value_type = float;                                   // float or double
//       static constexpr diffuse::memory_space space = diffuse::memory_space::host;
//       static value_type* data(My& t);                              // contiguous storage
//       static std::size_t batch(const My& t);                       // number of samples
//       static std::size_t per_sample(const My& t);                  // elements of one sample
//       static constexpr bool is_view = false;  // optional: true when a const My still refers to writable data
//   };

#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

#include "diffuse/core/error.hpp"

namespace diffuse {

enum class memory_space { host, device };

// The primary template is deliberately left undefined: a type is a tensor only if specialised.
template <class Tensor>
struct tensor_traits;

template <class T>
concept scalar = std::same_as<std::remove_const_t<T>, float> || std::same_as<std::remove_const_t<T>, double>;

// A non-owning, contiguous, sample-major view: sample b occupies [b*per_sample, (b+1)*per_sample).
template <class T, memory_space Space = memory_space::host>
struct tensor_view {
    static_assert(scalar<T>, "diffuse: tensor elements must be float or double");
    using value_type = T;
    static constexpr memory_space space = Space;

    T* data = nullptr;
    std::size_t batch = 0;
    std::size_t per_sample = 0;

    [[nodiscard]] constexpr std::size_t size() const noexcept { return batch * per_sample; }
    [[nodiscard]] constexpr T* sample(std::size_t b) const noexcept { return data + b * per_sample; }
    [[nodiscard]] constexpr T& operator[](std::size_t i) const noexcept { return data[i]; }
    // To the read-only view (a template, so a view of const elements declares no conversion to itself).
    template <class U = T>
        requires(std::is_same_v<U, T> && !std::is_const_v<U>)
    constexpr operator tensor_view<const U, Space>() const noexcept {
        return {data, batch, per_sample};
    }
};

template <class T, memory_space S>
struct tensor_traits<tensor_view<T, S>> {
    using value_type = T;
    static constexpr bool is_view = true;
    static constexpr memory_space space = S;
    static T* data(const tensor_view<T, S>& v) { return v.data; }
    static std::size_t batch(const tensor_view<T, S>& v) { return v.batch; }
    static std::size_t per_sample(const tensor_view<T, S>& v) { return v.per_sample; }
};

namespace detail {
template <class T>
using traits_of = tensor_traits<std::remove_cvref_t<T>>;
}

// A type is a tensor when tensor_traits<T> is specialised with the members documented above.
template <class T>
concept tensor = requires(std::remove_cvref_t<T>& t, const std::remove_cvref_t<T>& ct) {
    typename detail::traits_of<T>::value_type;
    requires scalar<typename detail::traits_of<T>::value_type>;
    { detail::traits_of<T>::space } -> std::convertible_to<memory_space>;
    { detail::traits_of<T>::data(t) };
    { detail::traits_of<T>::batch(ct) } -> std::convertible_to<std::size_t>;
    { detail::traits_of<T>::per_sample(ct) } -> std::convertible_to<std::size_t>;
};

template <class T>
using tensor_value_t = std::remove_const_t<typename detail::traits_of<T>::value_type>;

template <class T>
inline constexpr memory_space tensor_space_v = detail::traits_of<T>::space;

namespace detail {
// Views (tensor_view, std::span, Eigen::Map, ...) do not own their elements: a const view object still
// refers to writable data. Their traits say so with `static constexpr bool is_view = true;`.
template <class T>
constexpr bool is_view_type() {
    if constexpr (requires { traits_of<T>::is_view; }) return traits_of<T>::is_view;
    else return false;
}
}  // namespace detail

// The view type of T: element type const when T is a const container or holds const elements.
template <class T>
using view_t = tensor_view<std::conditional_t<(std::is_const_v<std::remove_reference_t<T>> && !detail::is_view_type<T>()) ||
                                                  std::is_const_v<typename detail::traits_of<T>::value_type>,
                                              const tensor_value_t<T>, tensor_value_t<T>>,
                           tensor_space_v<T>>;

template <class T>
struct not_a_tensor : std::false_type {};

// Adapts any tensor into a view. A type without tensor_traits fails here with one sentence.
template <class T>
[[nodiscard]] constexpr auto view(T&& t) {
    if constexpr (!tensor<T>) {
        static_assert(not_a_tensor<std::remove_cvref_t<T>>::value,
                      "diffuse: this type is not a tensor diffuse knows. Include the adapter for its library "
                      "(diffuse/adapt/std.hpp, eigen.hpp, eigen_tensor.hpp, xtensor.hpp) or specialise diffuse::tensor_traits "
                      "for it, as examples/custom_tensor.cpp shows.");
        return tensor_view<float>{};
    } else {
        using V = view_t<T>;
        using traits = detail::traits_of<T>;
        auto& ref = const_cast<std::remove_cvref_t<T>&>(t);  // read-only use when T is const: V holds const T*
        return V{static_cast<typename V::value_type*>(traits::data(ref)), static_cast<std::size_t>(traits::batch(t)),
                 static_cast<std::size_t>(traits::per_sample(t))};
    }
}

namespace detail {
// Throws diffuse::error unless the view `v` (called `name` in the message) has the shape of `x` (called
// `x_name`): the check every entry point makes before it writes through a caller's tensor.
template <class V, class X>
void require_shape(const V& v, const X& x, std::string_view where, std::string_view name, std::string_view x_name = "x") {
    if (v.batch != x.batch || v.per_sample != x.per_sample)
        fail(where, std::string(name) + " is " + std::to_string(v.batch) + " x " + std::to_string(v.per_sample) +
                        " but " + std::string(x_name) + " is " + std::to_string(x.batch) + " x " +
                        std::to_string(x.per_sample) + " (samples x elements per sample): " + std::string(name) +
                        " must have the shape of " + std::string(x_name));
}

// Throws diffuse::error unless `values` (called `name`) holds one value per sample of a batch of `batch`
// (or is empty, where `optional`).
template <class S>
void require_per_sample(const S& values, std::size_t batch, std::string_view where, std::string_view name,
                        bool optional = false) {
    if (values.size() == batch || (optional && values.empty())) return;
    fail(where, std::string(name) + " has " + std::to_string(values.size()) + " values but the batch has " +
                    std::to_string(batch) + " samples: it needs one value per sample" +
                    (optional ? " (or none)" : ""));
}

// Throws diffuse::error when the views a and b share any element (an output that must not be read as it is
// written, say).
template <class A, class B>
void require_disjoint(const A& a, const B& b, std::string_view where, std::string_view a_name, std::string_view b_name) {
    if (a.size() == 0 || b.size() == 0) return;
    const auto* a0 = static_cast<const void*>(a.data);
    const auto* a1 = static_cast<const void*>(a.data + a.size());
    const auto* b0 = static_cast<const void*>(b.data);
    const auto* b1 = static_cast<const void*>(b.data + b.size());
    if (std::less<>{}(a0, b1) && std::less<>{}(b0, a1))
        fail(where, std::string(a_name) + " and " + std::string(b_name) + " share memory; they must be separate tensors");
}
}  // namespace detail

// Reinterprets a tensor as `batch` samples of equal size (a flat std::vector of B*D values, say).
template <tensor T>
[[nodiscard]] constexpr auto batched(T&& t, std::size_t batch) {
    auto v = view(std::forward<T>(t));
    const std::size_t n = v.size();
    detail::require(batch > 0 && n % batch == 0, "batched", "batch", batch,
                    "a positive divisor of the tensor's size " + std::to_string(n));
    return decltype(v){v.data, batch, n / batch};
}

}  // namespace diffuse
