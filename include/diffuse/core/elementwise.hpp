#pragma once
// Element-wise primitives over any tensor: lincomb, transform, clamp.
//
//   lincomb(out, c0, x0, c1, x1, ...)   out = Σ cᵢ·xᵢ in one pass over memory
//   transform(out, f, x0, x1, ...)      out = f(x0, x1, ...) element by element
//   clamp(out, x, lo, hi)               out = min(max(x, lo), hi)
//
// A coefficient (or bound) is a number, or diffuse::per_sample(span) holding one value per sample:
// mixed-strength batches and per-sample time need that. lincomb also takes diffuse::per_sample(v) of a
// tensor_view<const double, S> of batch values in the tensors' memory space S (a reduction's results
// written there, say): on device tensors the kernel reads them where they are, so nothing goes through the
// host (and inside a CUDA graph a replay reads the values of that replay); on host tensors it is per_sample(span). `out` may be the very same tensor as an
// input (x = a·x + b·e is fine); partial overlap is rejected. Shapes must match exactly.
// A call that cannot work (a non-tensor, a const output, float mixed with double) stops compilation with
// one sentence saying so, and nothing else of the call is compiled, so that sentence is the only error.

#include <cstddef>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/config.hpp"
#include "diffuse/core/cpu_features.hpp"
#include "diffuse/core/device_dispatch.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/core/tensor.hpp"

#if DIFFUSE_HOST_X86_DISPATCH
#include <immintrin.h>
#define DIFFUSE_AVX2_LANE_OP static inline __attribute__((always_inline, target("avx2")))
#endif

namespace diffuse {

// One coefficient per sample of the batch.
struct per_sample_values {
    std::span<const double> values;
};
[[nodiscard]] inline per_sample_values per_sample(std::span<const double> values) { return {values}; }
[[nodiscard]] inline per_sample_values per_sample(const std::vector<double>& values) { return {values}; }

// One coefficient per sample in memory space S other than the host (per_sample of a tensor_view<const double, S>):
// `size` doubles at `data`, read by the kernels of S.
template <memory_space S>
struct per_sample_values_in {
    const double* data = nullptr;
    std::size_t size = 0;
};
// per_sample of a view of per-sample values in a memory space: a host view is per_sample(span).
template <memory_space S>
[[nodiscard]] auto per_sample(tensor_view<const double, S> values) {
    if constexpr (S == memory_space::host) return per_sample_values{std::span<const double>(values.data, values.size())};
    else return per_sample_values_in<S>{values.data, values.size()};
}
template <memory_space S>
[[nodiscard]] auto per_sample(tensor_view<double, S> values) {
    return per_sample(tensor_view<const double, S>(values));
}

template <class C>
concept coefficient = std::is_arithmetic_v<std::remove_cvref_t<C>> ||
                      std::same_as<std::remove_cvref_t<C>, per_sample_values>;

namespace detail {
template <class C>
inline constexpr bool is_space_coef = false;
template <memory_space S>
inline constexpr bool is_space_coef<per_sample_values_in<S>> = true;
}  // namespace detail

// lincomb's coefficients: a coefficient, or per-sample values in a memory space.
template <class C>
concept lincomb_coefficient = coefficient<C> || detail::is_space_coef<std::remove_cvref_t<C>>;

namespace detail {

template <class T, class C>
[[nodiscard]] inline T coef_at(const C& c, std::size_t b) {
    if constexpr (std::is_same_v<std::remove_cvref_t<C>, per_sample_values>) return static_cast<T>(c.values[b]);
    else return static_cast<T>(c);
}

template <class C>
void check_coef(const C& c, std::size_t batch, const char* where, std::size_t index) {
    std::size_t size = batch;
    if constexpr (std::is_same_v<std::remove_cvref_t<C>, per_sample_values>) size = c.values.size();
    else if constexpr (is_space_coef<std::remove_cvref_t<C>>) size = c.size;
    if (size != batch)
        fail(where, "per-sample coefficient " + std::to_string(index) + " has " + std::to_string(size) +
                        " values but the batch has " + std::to_string(batch));
}

// Whether lincomb's coefficients Cs can be read by the kernels of memory space S (per-sample values in another
// memory space cannot): one sentence otherwise.
template <memory_space S, class... Cs>
constexpr bool check_coef_space() {
    constexpr bool ok = ((!is_space_coef<std::remove_cvref_t<Cs>> ||
                          std::is_same_v<std::remove_cvref_t<Cs>, per_sample_values_in<S>>) && ...);
    static_assert(ok, "diffuse::lincomb: per-sample coefficients in device memory go with device tensors only: the "
                      "coefficients of a host lincomb are numbers or per_sample(host values)");
    return ok;
}

template <class O, class I>
void check_input(const O& out, const I& in, const char* where, std::size_t index) {
    if (in.batch != out.batch || in.per_sample != out.per_sample)
        fail(where, "input " + std::to_string(index) + " has shape " + std::to_string(in.batch) + "x" +
                        std::to_string(in.per_sample) + " but out has " + std::to_string(out.batch) + "x" +
                        std::to_string(out.per_sample) + " (batch x elements per sample)");
    const auto* o0 = static_cast<const void*>(out.data);
    const auto* i0 = static_cast<const void*>(in.data);
    if (o0 == i0 || out.size() == 0) return;
    const auto* o1 = static_cast<const void*>(out.data + out.size());
    const auto* i1 = static_cast<const void*>(in.data + in.size());
    if (std::less<>{}(i0, o1) && std::less<>{}(o0, i1))
        fail(where, "input " + std::to_string(index) + " partially overlaps out; out may only be the same tensor "
                                                       "as an input or disjoint from it");
}

// The view of a writable tensor in any memory space, for code that touches it only through the primitives
// (the steppers, the model, guidance, prior sampling).
template <class Out>
[[nodiscard]] auto writable_view(Out&& out, const char* where) {
    auto o = view(std::forward<Out>(out));
    using V = decltype(o);
    static_assert(!std::is_const_v<typename V::value_type>, "diffuse: the output tensor must be writable (not const)");
    (void)where;
    return o;
}

// The same for code that reads or writes the elements on the host itself (the losses): a device tensor stops
// compilation with one sentence.
template <class Out>
[[nodiscard]] auto host_writable_view(Out&& out, const char* where) {
    using V = decltype(view(std::forward<Out>(out)));
    static_assert(V::space == memory_space::host,
                  "diffuse: this tensor lives in device memory; this computation runs on the host only: copy the "
                  "tensor to the host first");
    return writable_view(std::forward<Out>(out), where);
}

// The compile-time checks of a primitive's tensors (the output, when it has one, first), reported one at a
// time: the first check that fails names the mistake in a sentence and the primitive compiles nothing else,
// so that sentence is the first (and only) error, before any cast or call that would fail after it.
template <class Out, class... Ins>
constexpr bool check_primitive_tensors() {
    if constexpr (!tensor<Out>) {
        static_assert(tensor<Out>,
                      "diffuse: the output of this primitive is not a tensor diffuse knows: pass a container or a view "
                      "(evaluate an Eigen or xtensor expression first), include its adapter (diffuse/adapt/std.hpp, "
                      "eigen.hpp, eigen_tensor.hpp, xtensor.hpp) or specialise diffuse::tensor_traits");
        return false;
    } else if constexpr (!(tensor<Ins> && ...)) {
        static_assert((tensor<Ins> && ...),
                      "diffuse: an input of this primitive is not a tensor diffuse knows: pass a container or a view "
                      "(evaluate an Eigen or xtensor expression first), include its adapter (diffuse/adapt/std.hpp, "
                      "eigen.hpp, eigen_tensor.hpp, xtensor.hpp) or specialise diffuse::tensor_traits");
        return false;
    } else if constexpr (std::is_const_v<typename view_t<Out>::value_type>) {
        static_assert(!std::is_const_v<typename view_t<Out>::value_type>,
                      "diffuse: the output tensor must be writable (not const)");
        return false;
    } else if constexpr (!(std::is_same_v<tensor_value_t<Ins>, tensor_value_t<Out>> && ...)) {
        static_assert((std::is_same_v<tensor_value_t<Ins>, tensor_value_t<Out>> && ...),
                      "diffuse: all tensors of one primitive call must have the same element type (float or double): "
                      "convert the float tensors to double (or the double ones to float) first");
        return false;
    } else if constexpr (!check_call_space<tensor_value_t<Out>, Out, Ins...>()) {
        return false;
    } else {
        return true;
    }
}

template <class T, class Coefs, class Ptrs, std::size_t... I>
DIFFUSE_ALWAYS_INLINE void lincomb_loop(T* o, std::size_t n, const Coefs& c, const Ptrs& p,
                                        std::index_sequence<I...>) {
    // o[j] = ((c0·x0[j] + c1·x1[j]) + c2·x2[j]) + ..., each product and sum rounded (no contraction).
    // Scalars hoisted into locals so the loop body is a plain multiply-add chain the compiler vectorises.
    const std::tuple<std::tuple_element_t<I, Ptrs>...> ptr = p;
    // Blocks of 16 with a fixed-trip inner loop, so the compiler vectorises at -O2 as well as -O3; out
    // may equal an input exactly (each element is read before it is written), never overlap partially.
    constexpr std::size_t W = 16;
    std::size_t j = 0;
    for (; j + W <= n; j += W) {
        T r[W];
        for (std::size_t l = 0; l < W; ++l) r[l] = (... + (std::get<I>(c) * std::get<I>(ptr)[j + l]));  // left fold
        for (std::size_t l = 0; l < W; ++l) o[j + l] = r[l];
    }
    for (; j < n; ++j) o[j] = (... + (std::get<I>(c) * std::get<I>(ptr)[j]));  // ((c0·x0 + c1·x1) + c2·x2)...
}

#if DIFFUSE_HOST_X86_DISPATCH
// lincomb_loop in AVX2 intrinsics: eight floats (four doubles) a vector instead of SSE2's four (two), about
// twice as fast on tensors that stay in cache. The same operations in the same order — the left fold
// starting from c0·x0 (not 0 + c0·x0, which would turn −0 into +0), each product and sum rounded on its
// own (the target has no FMA) — so the same bits as the baseline loop (tests/core/test_lincomb_isa.cpp).
template <class T>
struct avx2_lanes;
template <>
struct avx2_lanes<float> {
    using type = __m256;
    static constexpr std::size_t width = 8;
    DIFFUSE_AVX2_LANE_OP type set1(float v) noexcept { return _mm256_set1_ps(v); }
    DIFFUSE_AVX2_LANE_OP type load(const float* x) noexcept { return _mm256_loadu_ps(x); }
    DIFFUSE_AVX2_LANE_OP type mul(type a, type b) noexcept { return _mm256_mul_ps(a, b); }
    DIFFUSE_AVX2_LANE_OP type add(type a, type b) noexcept { return _mm256_add_ps(a, b); }
    DIFFUSE_AVX2_LANE_OP void store(float* o, type v) noexcept { _mm256_storeu_ps(o, v); }
};
template <>
struct avx2_lanes<double> {
    using type = __m256d;
    static constexpr std::size_t width = 4;
    DIFFUSE_AVX2_LANE_OP type set1(double v) noexcept { return _mm256_set1_pd(v); }
    DIFFUSE_AVX2_LANE_OP type load(const double* x) noexcept { return _mm256_loadu_pd(x); }
    DIFFUSE_AVX2_LANE_OP type mul(type a, type b) noexcept { return _mm256_mul_pd(a, b); }
    DIFFUSE_AVX2_LANE_OP type add(type a, type b) noexcept { return _mm256_add_pd(a, b); }
    DIFFUSE_AVX2_LANE_OP void store(double* o, type v) noexcept { _mm256_storeu_pd(o, v); }
};

template <class T, class Coefs, class Ptrs, std::size_t... I>
__attribute__((target("avx2"))) void lincomb_loop_avx2(T* o, std::size_t n, const Coefs& c, const Ptrs& p,
                                                       std::index_sequence<I...>) {
    using L = avx2_lanes<T>;
    const std::tuple<std::tuple_element_t<I, Ptrs>...> ptr = p;
    const typename L::type cv[] = {L::set1(std::get<I>(c))...};
    std::size_t j = 0;
    for (; j + L::width <= n; j += L::width) {  // every input is read before out (which may be one of them)
        typename L::type acc = L::mul(cv[0], L::load(std::get<0>(ptr) + j));
        ((acc = I == 0 ? acc : L::add(acc, L::mul(cv[I], L::load(std::get<I>(ptr) + j)))), ...);
        L::store(o + j, acc);
    }
    for (; j < n; ++j) o[j] = (... + (std::get<I>(c) * std::get<I>(ptr)[j]));
}
#endif

// lincomb's kernel on one contiguous piece: the AVX2 loop where the CPU has AVX2, else the baseline one.
template <class T, class Coefs, class Ptrs, std::size_t... I>
void lincomb_kernel(T* o, std::size_t n, const Coefs& c, const Ptrs& p, std::index_sequence<I...> seq) {
#if DIFFUSE_HOST_X86_DISPATCH
    if (host_has_avx2()) {
        lincomb_loop_avx2<T>(o, n, c, p, seq);
        return;
    }
#endif
    lincomb_loop<T>(o, n, c, p, seq);
}

template <std::size_t... I, class Tuple>
auto evens(Tuple&& t, std::index_sequence<I...>) {
    return std::forward_as_tuple(std::get<2 * I>(std::forward<Tuple>(t))...);
}
template <std::size_t... I, class Tuple>
auto odds(Tuple&& t, std::index_sequence<I...>) {
    return std::forward_as_tuple(std::get<2 * I + 1>(std::forward<Tuple>(t))...);
}

}  // namespace detail

struct lincomb_t {
    // out = c0·x0 + c1·x1 + ...  (one pass over memory; out may alias an input exactly)
    template <class Out, class... Args>
    void operator()(Out&& out, Args&&... args) const {
        if constexpr (sizeof...(Args) < 2 || sizeof...(Args) % 2 != 0) {
            static_assert(sizeof...(Args) >= 2 && sizeof...(Args) % 2 == 0,
                          "diffuse::lincomb: call it as lincomb(out, c0, x0, c1, x1, ...): after out, arguments come in "
                          "(coefficient, tensor) pairs");
        } else {
            constexpr std::size_t K = sizeof...(Args) / 2;
            auto all = std::forward_as_tuple(std::forward<Args>(args)...);
            auto coefs = detail::evens(all, std::make_index_sequence<K>{});
            auto ins = detail::odds(all, std::make_index_sequence<K>{});
            run(std::forward<Out>(out), coefs, ins, std::make_index_sequence<K>{});
        }
    }

private:
    template <class Coefs, class Ins, class Out, std::size_t... I>
    static constexpr bool check_arguments(std::index_sequence<I...>) {
        if constexpr (!(lincomb_coefficient<std::tuple_element_t<I, Coefs>> && ...)) {
            static_assert((lincomb_coefficient<std::tuple_element_t<I, Coefs>> && ...),
                          "diffuse::lincomb: arguments alternate coefficient, tensor: a coefficient is a number or "
                          "diffuse::per_sample(values)");
            return false;
        } else if constexpr (!detail::check_primitive_tensors<Out, std::tuple_element_t<I, Ins>...>()) {
            return false;
        } else {
            return detail::check_coef_space<tensor_space_v<Out>, std::tuple_element_t<I, Coefs>...>();
        }
    }

    template <class Out, class Coefs, class Ins, std::size_t... I>
    static void run(Out&& out, const Coefs& coefs, const Ins& ins, std::index_sequence<I...> seq) {
        if constexpr (check_arguments<Coefs, Ins, Out>(seq)) {
            const auto o = view(std::forward<Out>(out));
            using T = std::remove_const_t<typename decltype(o)::value_type>;
            const auto views = std::make_tuple(view(std::get<I>(ins))...);
            (detail::check_input(o, std::get<I>(views), "lincomb", I), ...);
            (detail::check_coef(std::get<I>(coefs), o.batch, "lincomb", I), ...);
            if constexpr (detail::on_device<Out>) {
                detail::device_backend<T>::lincomb(o, coefs, views);
            } else {
                detail::for_each_segment(o.batch, o.per_sample, [&](std::size_t b, std::size_t j0, std::size_t j1) {
                    const std::size_t off = b * o.per_sample + j0;
                    const auto c = std::make_tuple(detail::coef_at<T>(std::get<I>(coefs), b)...);
                    const auto p = std::make_tuple(static_cast<const T*>(std::get<I>(views).data + off)...);
                    detail::lincomb_kernel<T>(o.data + off, j1 - j0, c, p, std::index_sequence<I...>{});
                });
            }
        }
    }
};
inline constexpr lincomb_t lincomb{};

struct transform_t {
    // out[i] = f(x0[i], x1[i], ...) for every element (f must be a pure element-wise function).
    template <class Out, class F, class... Ins>
    void operator()(Out&& out, F&& f, Ins&&... ins) const {
        if constexpr (detail::check_primitive_tensors<Out, Ins...>()) {
            const auto o = view(std::forward<Out>(out));
            using T = std::remove_const_t<typename decltype(o)::value_type>;
            // f(x0[i], x1[i], ...): one const T& per input
            constexpr bool callable = std::is_invocable_v<F&, std::conditional_t<true, const T&, Ins>...>;
            static_assert(callable,
                          "diffuse::transform: f must be callable with one element of every input (float or double)");
            if constexpr (callable) {
                const auto views = std::make_tuple(view(std::forward<Ins>(ins))...);
                run<T>(o, f, views, std::index_sequence_for<Ins...>{});
            }
        }
    }

private:
    template <class T, class O, class F, class Views, std::size_t... I>
    static void run(const O& o, F& f, const Views& views, std::index_sequence<I...>) {
        (detail::check_input(o, std::get<I>(views), "transform", I), ...);
        if constexpr (O::space == memory_space::device) {
            detail::device_backend<T>::transform(o, f, views);
        } else {
            detail::for_each_segment(o.batch, o.per_sample, [&](std::size_t b, std::size_t j0, std::size_t j1) {
                const std::size_t off = b * o.per_sample + j0;
                T* d = o.data + off;
                const auto p = std::make_tuple(static_cast<const T*>(std::get<I>(views).data + off)...);
                for (std::size_t j = 0; j < j1 - j0; ++j) d[j] = static_cast<T>(f(std::get<I>(p)[j]...));
            });
        }
    }
};
inline constexpr transform_t transform{};

struct clamp_t {
    // out = min(max(x, lo), hi); lo and hi are numbers or per-sample values, lo <= hi.
    template <class Out, class In, class Lo, class Hi>
    void operator()(Out&& out, In&& in, const Lo& lo, const Hi& hi) const {
        if constexpr (!coefficient<Lo> || !coefficient<Hi>) {
            static_assert(coefficient<Lo> && coefficient<Hi>,
                          "diffuse::clamp: the bounds lo and hi are numbers or diffuse::per_sample(values)");
        } else if constexpr (detail::check_primitive_tensors<Out, In>()) {
            const auto o = view(std::forward<Out>(out));
            using T = std::remove_const_t<typename decltype(o)::value_type>;
            const auto x = view(std::forward<In>(in));
            detail::check_input(o, x, "clamp", 0);
            detail::check_coef(lo, o.batch, "clamp", 0);
            detail::check_coef(hi, o.batch, "clamp", 1);
            for (std::size_t b = 0; b < o.batch; ++b) {
                const double l = detail::coef_at<double>(lo, b), h = detail::coef_at<double>(hi, b);
                detail::require(l <= h, "clamp", "lo", l, "<= hi = " + std::to_string(h));
            }
            if constexpr (detail::on_device<Out>) {
                detail::device_backend<T>::clamp(o, x, lo, hi);
            } else {
                detail::for_each_segment(o.batch, o.per_sample, [&](std::size_t b, std::size_t j0, std::size_t j1) {
                    const std::size_t off = b * o.per_sample + j0;
                    const T l = detail::coef_at<T>(lo, b), h = detail::coef_at<T>(hi, b);
                    T* d = o.data + off;
                    const T* s = x.data + off;
                    for (std::size_t j = 0; j < j1 - j0; ++j) {
                        const T v = s[j] < l ? l : s[j];
                        d[j] = v > h ? h : v;
                    }
                });
            }
        }
    }
};
inline constexpr clamp_t clamp{};

}  // namespace diffuse
