#pragma once
// Per-sample reductions. Each writes one double per sample into `out` (size = batch): a host span, or for
// sum_squares, dot, mean and variance also a tensor_view<double, S> of batch values in x's memory space S — on
// device tensors the results then stay in device memory (nothing is read back, so a CUDA graph capture records
// the reduction), ready for per_sample(view) in lincomb or a for_each_sample formula (core/device_dispatch.hpp).
//
//   sum_squares(x, out)      out[b] = Σ x²            (norms, Langevin step sizes, losses)
//   dot(x, y, out)           out[b] = Σ x·y
//   mean(x, out)             out[b] = Σ x / n
//   variance(x, out)         out[b] = Σ (x − mean)² / (n − 1)   (two passes; n = 1: / 1; guidance rescale's std)
//   quantile_abs(x, q, out)  out[b] = q-quantile of |x| with torch.quantile's linear interpolation
//                            (dynamic thresholding, Saharia et al. 2022)
//   first_non_finite_sample(x)   the first sample holding a NaN or ±Inf, or x's batch when none does
//   require_finite_samples(x, fail_at)   fail_at(b) for that sample, if any (deferred inside a CUDA graph capture)
//
// Sums accumulate in double over fixed blocks of `reduce_block` elements and then add the block
// sums in order, so the bits do not depend on the thread count.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstddef>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "diffuse/core/config.hpp"
#include "diffuse/core/cpu_features.hpp"
#include "diffuse/core/elementwise.hpp"

namespace diffuse {
namespace detail {

inline constexpr std::size_t reduce_block = 4096;

// Σ f(x0[j], x1[j]) over [0, n) in double with 8 interleaved partial sums (a fixed order).
template <class T, class F>
[[nodiscard]] double block_sum(const T* x, const T* y, std::size_t n, F f) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (std::size_t l = 0; l < 8; ++l) acc[l] += f(double(x[j + l]), double(y[j + l]));
    for (std::size_t l = 0; j < n; ++j, ++l) acc[l] += f(double(x[j]), double(y[j]));
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// f(u, v) is the term of elements u of x and v of y, or f(b) makes sample b's term function.
template <class X, class Y, class F>
void per_sample_sum(const X& x, const Y& y, std::span<double> out, const char* where, F f) {
    if (out.size() != x.batch)
        fail(where, "out has " + std::to_string(out.size()) + " values but the batch has " + std::to_string(x.batch));
    check_input(x, y, where, 1);
    const std::size_t blocks = (x.per_sample + reduce_block - 1) / reduce_block;
    auto sum_block = [&](std::size_t b, std::size_t k) {
        const std::size_t j0 = k * reduce_block, n = std::min(reduce_block, x.per_sample - j0);
        if constexpr (std::is_invocable_v<F&, std::size_t>) return block_sum(x.sample(b) + j0, y.sample(b) + j0, n, f(b));
        else return block_sum(x.sample(b) + j0, y.sample(b) + j0, n, f);
    };
    auto& pool = thread_pool::instance();
    if (pool.threads() == 1 || x.size() < parallel_threshold) {
        for (std::size_t b = 0; b < x.batch; ++b) {
            double s = 0;
            for (std::size_t k = 0; k < blocks; ++k) s += sum_block(b, k);
            out[b] = s;
        }
        return;
    }
    std::vector<double> partial(x.batch * blocks);
    pool.run(partial.size(), [&](std::size_t i) { partial[i] = sum_block(i / blocks, i % blocks); });
    for (std::size_t b = 0; b < x.batch; ++b) {
        double s = 0;
        for (std::size_t k = 0; k < blocks; ++k) s += partial[b * blocks + k];
        out[b] = s;
    }
}

// The compile-time checks of a reduction's inputs, one sentence at a time (the first failing check is the
// only error: the reduction compiles nothing else).
template <class... Xs>
constexpr bool check_reduce_inputs() {
    if constexpr (!(tensor<Xs> && ...)) {
        static_assert((tensor<Xs> && ...),
                      "diffuse: the input of this reduction is not a tensor diffuse knows: pass a container or a view "
                      "(evaluate an Eigen or xtensor expression first), include its adapter (diffuse/adapt/std.hpp, "
                      "eigen.hpp, eigen_tensor.hpp, xtensor.hpp) or specialise diffuse::tensor_traits");
        return false;
    } else if constexpr (!(std::is_same_v<tensor_value_t<Xs>, tensor_value_t<std::tuple_element_t<0, std::tuple<Xs...>>>> &&
                           ...)) {
        static_assert((std::is_same_v<tensor_value_t<Xs>, tensor_value_t<std::tuple_element_t<0, std::tuple<Xs...>>>> &&
                       ...),
                      "diffuse: both tensors of a reduction must have the same element type (float or double): convert "
                      "one of them first");
        return false;
    } else if constexpr (!check_call_space<tensor_value_t<std::tuple_element_t<0, std::tuple<Xs...>>>, Xs...>()) {
        return false;
    } else {
        return true;
    }
}

// The read-only view of a host-only computation's input (metrics, losses).
template <class X>
[[nodiscard]] auto host_input(X&& x) {
    auto v = view(std::forward<X>(x));
    static_assert(decltype(v)::space == memory_space::host,
                  "diffuse: this tensor lives in device memory; this computation runs on the host only: copy the "
                  "tensor to the host first");
    return tensor_view<const std::remove_const_t<typename decltype(v)::value_type>>(v);
}

// The read-only view of a reduction's input (in the input's memory space).
template <class X>
[[nodiscard]] auto input_view(X&& x) {
    auto v = view(std::forward<X>(x));
    using V = decltype(v);
    return tensor_view<const std::remove_const_t<typename V::value_type>, V::space>(v);
}

// The sums of the per-sample reductions, named for the device backend (which cannot take the host's
// lambdas): Σ x², Σ x·y, Σ x, and variance's Σ (x − m_b)².
enum class sum_kind { squares, dot, plain, centered_squares };

// A reduction's output: a host span, or batch values in memory space S (a host view is a span).
template <memory_space S>
struct space_out {
    double* data;
    std::size_t size;
};
[[nodiscard]] inline std::span<double> reduction_out(std::span<double> out) { return out; }
template <memory_space S>
[[nodiscard]] auto reduction_out(tensor_view<double, S> out) {
    if constexpr (S == memory_space::host) return std::span<double>(out.data, out.size());
    else return space_out<S>{out.data, out.size()};
}
template <class Out>
[[nodiscard]] std::size_t out_size(const Out& out) {
    if constexpr (std::is_same_v<Out, std::span<double>>) return out.size();
    else return out.size;
}
// The device backend's destination: the host span, or the device pointer.
template <class Out>
[[nodiscard]] auto backend_out(const Out& out) {
    if constexpr (std::is_same_v<Out, std::span<double>>) return out;
    else return out.data;
}
// The compile-time check that an output in a memory space is in x's (one sentence).
template <class X, class Out>
constexpr bool check_out_space() {
    constexpr bool ok = std::is_same_v<Out, std::span<double>> || std::is_same_v<Out, space_out<X::space>>;
    static_assert(ok, "diffuse: a reduction's per-sample results go to a host span or to a tensor_view<double, S> in "
                      "the memory space S of its input");
    return ok;
}

// per_sample_sum on the space of x and y: the host code, or the device backend's fixed-block reduction
// (same blocks, same order, same bits). out: a host span, or space_out in x's space.
template <sum_kind Kind, class X, class Y, class Out>
void space_sum(const X& x, const Y& y, Out out, const char* where) {
    if constexpr (!check_out_space<X, Out>()) {
        return;
    } else if constexpr (X::space == memory_space::device) {
        if (out_size(out) != x.batch)
            fail(where, "out has " + std::to_string(out_size(out)) + " values but the batch has " + std::to_string(x.batch));
        check_input(x, y, where, 1);
        device_backend<std::remove_const_t<typename X::value_type>>::template per_sample_sum<Kind>(x, y, backend_out(out));
    } else if constexpr (Kind == sum_kind::squares) {
        per_sample_sum(x, y, out, where, [](double a, double) { return a * a; });
    } else if constexpr (Kind == sum_kind::dot) {
        per_sample_sum(x, y, out, where, [](double u, double v) { return u * v; });
    } else {
        per_sample_sum(x, y, out, where, [](double a, double) { return a; });
    }
}

}  // namespace detail

namespace detail {

// Whether x[0, n) holds a NaN or ±Inf: the exponent field is all ones exactly when (bits & E) + (E's lowest
// bit) carries into the sign position, so one integer and/add/or per element, which vectorises at any -O.
template <class T>
[[nodiscard]] DIFFUSE_ALWAYS_INLINE bool any_non_finite_loop(const T* x, std::size_t n) noexcept {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr U exponent = sizeof(T) == 4 ? U(0x7F800000u) : U(0x7FF0000000000000ull);
    constexpr U lowest = exponent & (~exponent + 1);  // the exponent field's lowest bit
    constexpr U sign = U(1) << (8 * sizeof(T) - 1);
    // 64 bytes of independent accumulators, one per lane of a fixed-trip inner loop (a single accumulator
    // makes GCC 12 build it from shuffles).
    constexpr std::size_t W = 64 / sizeof(T);
    U acc[W] = {};
    std::size_t j = 0;
    for (; j + W <= n; j += W)
        for (std::size_t l = 0; l < W; ++l) acc[l] |= (std::bit_cast<U>(x[j + l]) & exponent) + lowest;
    for (std::size_t l = 0; j < n; ++j, ++l) acc[l] |= (std::bit_cast<U>(x[j]) & exponent) + lowest;
    U all = 0;
    for (std::size_t l = 0; l < W; ++l) all |= acc[l];
    return (all & sign) != 0;
}

#if DIFFUSE_HOST_X86_DISPATCH
// The same loop compiled for AVX2 (twice the lanes of the SSE2 baseline; the answer does not depend on it).
template <class T>
[[nodiscard]] __attribute__((target("avx2"))) bool any_non_finite_avx2(const T* x, std::size_t n) noexcept {
    return any_non_finite_loop(x, n);
}
#endif

// any_non_finite_loop on the widest vectors this CPU has among the baseline and AVX2 (run-time choice).
template <class T>
[[nodiscard]] bool any_non_finite(const T* x, std::size_t n) noexcept {
#if DIFFUSE_HOST_X86_DISPATCH
    if (host_has_avx2()) return any_non_finite_avx2(x, n);
#endif
    return any_non_finite_loop(x, n);
}

}  // namespace detail

// The first sample (in batch order) that holds a NaN or ±Inf, or x's batch when every value is finite.
// A finiteness test for network outputs: it reads each value once and does no arithmetic that could
// overflow (a sum of squares calls 1e200 doubles infinite).
template <class X>
[[nodiscard]] std::size_t first_non_finite_sample(X&& x) {
    if constexpr (!detail::check_reduce_inputs<X>()) {
        return 0;
    } else {
        const auto v = detail::input_view(std::forward<X>(x));
        if constexpr (decltype(v)::space == memory_space::device) {
            return detail::device_backend<tensor_value_t<X>>::first_non_finite_sample(v);
        } else {
            for (std::size_t b = 0; b < v.batch; ++b)
                if (detail::any_non_finite(v.sample(b), v.per_sample)) return b;
            return v.batch;
        }
    }
}

// fail_at(b) (which throws) with the first sample b of x that holds a NaN or ±Inf, if one does. On device
// tensors inside a CUDA graph capture (diffuse/cuda/graph.hpp) the test is recorded and fail_at runs after
// each replay, so it must own what it reads (capture by value).
template <class X, class F>
void require_finite_samples(X&& x, const F& fail_at) {
    if constexpr (detail::check_reduce_inputs<X>()) {
        const auto v = detail::input_view(std::forward<X>(x));
        if constexpr (decltype(v)::space == memory_space::device) {
            detail::device_backend<tensor_value_t<X>>::require_finite_samples(v, fail_at);
        } else if (const std::size_t b = first_non_finite_sample(v); b < v.batch) {
            fail_at(b);
        }
    }
}

namespace detail {
// v[b] ← v[b] / divisor (mean's last step on per-sample results in their memory space).
struct divide_values {
    double* v;
    double divisor;
    DIFFUSE_HD void operator()(std::size_t b) const { v[b] = v[b] / divisor; }
};

template <class X, class Out>
void sum_squares_into(X&& x, Out out) {
    if constexpr (check_reduce_inputs<X>()) {
        const auto v = input_view(std::forward<X>(x));
        space_sum<sum_kind::squares>(v, v, out, "sum_squares");
    }
}
template <class X, class Y, class Out>
void dot_into(X&& x, Y&& y, Out out) {
    if constexpr (check_reduce_inputs<X, Y>()) {
        const auto a = input_view(std::forward<X>(x));
        const auto b = input_view(std::forward<Y>(y));
        space_sum<sum_kind::dot>(a, b, out, "dot");
    }
}
template <class X, class Out>
void mean_into(X&& x, Out out) {
    if constexpr (check_reduce_inputs<X>()) {
        const auto v = input_view(std::forward<X>(x));
        require(v.per_sample > 0, "mean", "per_sample", v.per_sample, ">= 1");
        space_sum<sum_kind::plain>(v, v, out, "mean");
        if constexpr (std::is_same_v<Out, std::span<double>>) {
            for (auto& m : out) m /= double(v.per_sample);
        } else if constexpr (check_out_space<decltype(v), Out>()) {
            for_each_sample<decltype(v)::space>(v.batch, divide_values{out.data, double(v.per_sample)}, "mean");
        }
    }
}

// The unbiased per-sample variance in two passes over the fixed blocks: m = mean(x) (as mean computes it), then
// Σ (x − m)² in double (each difference, square and sum rounded on its own), divided by n − 1 (by 1 when n = 1).
// Device tensors: the same blocks and operations on the device (core/device_dispatch.hpp), read back in one
// copy into a host span or left in device memory.
template <class X, class Out>
void variance_into(X&& x, Out out) {
    if constexpr (check_reduce_inputs<X>()) {
        constexpr const char* where = "variance";
        const auto v = input_view(std::forward<X>(x));
        require(v.per_sample > 0, where, "per_sample", v.per_sample, ">= 1");
        if (out_size(out) != v.batch)
            fail(where, "out has " + std::to_string(out_size(out)) + " values but the batch has " + std::to_string(v.batch));
        const double divisor = double(v.per_sample > 1 ? v.per_sample - 1 : 1);
        if constexpr (!check_out_space<decltype(v), Out>()) {
            return;
        } else if constexpr (decltype(v)::space == memory_space::device) {
            device_backend<std::remove_const_t<typename decltype(v)::value_type>>::variance(v, divisor, backend_out(out));
        } else {
            std::vector<double> means(v.batch);
            mean_into(v, std::span<double>(means));
            per_sample_sum(v, v, out, where, [&](std::size_t b) {
                return [m = means[b]](double u, double) {
                    const double d = u - m;
                    return d * d;
                };
            });
            for (auto& s : out) s /= divisor;
        }
    }
}
}  // namespace detail

template <class X>
void sum_squares(X&& x, std::span<double> out) {
    detail::sum_squares_into(std::forward<X>(x), out);
}
template <class X, memory_space S>
void sum_squares(X&& x, tensor_view<double, S> out) {
    detail::sum_squares_into(std::forward<X>(x), detail::reduction_out(out));
}

template <class X, class Y>
void dot(X&& x, Y&& y, std::span<double> out) {
    detail::dot_into(std::forward<X>(x), std::forward<Y>(y), out);
}
template <class X, class Y, memory_space S>
void dot(X&& x, Y&& y, tensor_view<double, S> out) {
    detail::dot_into(std::forward<X>(x), std::forward<Y>(y), detail::reduction_out(out));
}

template <class X>
void mean(X&& x, std::span<double> out) {
    detail::mean_into(std::forward<X>(x), out);
}
template <class X, memory_space S>
void mean(X&& x, tensor_view<double, S> out) {
    detail::mean_into(std::forward<X>(x), detail::reduction_out(out));
}

template <class X>
void variance(X&& x, std::span<double> out) {
    detail::variance_into(std::forward<X>(x), out);
}
template <class X, memory_space S>
void variance(X&& x, tensor_view<double, S> out) {
    detail::variance_into(std::forward<X>(x), detail::reduction_out(out));
}

namespace detail {

// Specialised (float, double) by diffuse/cuda/quantile.hpp: quantile_abs and dynamic_threshold on device tensors.
template <class T>
struct device_quantile {
    static constexpr bool available = false;
};

// torch.quantile's interpolation point for n values, computed in T as torch computes it: rank = q·(n−1), the
// order statistics below = ⌊rank⌋ and above = min(below + 1, n − 1) (0-based), weight w = rank − below.
template <class T>
struct quantile_rank {
    std::size_t below, above;
    T w;
};
template <class T>
[[nodiscard]] quantile_rank<T> quantile_rank_of(double q, std::size_t n) {
    const T rank = static_cast<T>(q) * static_cast<T>(n - 1);
    const auto below = static_cast<std::size_t>(rank);
    return {below, std::min(below + 1, n - 1), rank - static_cast<T>(below)};
}

// torch.lerp as its vectorised CPU kernel computes it: fma(w, hi − lo, lo) for w < 0.5, else
// fma(w − 1, hi − lo, hi). One fma per sample, so the libm fallback costs nothing.
template <class T>
[[nodiscard]] DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T torch_lerp(T lo, T hi, T w) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return w < T(0.5) ? fmaf(w, hi - lo, lo) : fmaf(w - T(1), hi - lo, hi);
    else return w < T(0.5) ? ::fma(w, hi - lo, lo) : ::fma(w - T(1), hi - lo, hi);
#else
    return w < T(0.5) ? std::fma(w, hi - lo, lo) : std::fma(w - T(1), hi - lo, hi);
#endif
}

template <class V>
void check_quantile_args(const V& v, double q, std::span<double> out, const char* where) {
    require(q >= 0.0 && q <= 1.0, where, "q", q, "[0, 1]");
    require(v.per_sample > 0, where, "per_sample", v.per_sample, ">= 1");
    if (out.size() != v.batch)
        fail(where, "out has " + std::to_string(out.size()) + " values but the batch has " + std::to_string(v.batch));
}

}  // namespace detail

// The q-quantile of |x| per sample, as torch.quantile(x.abs(), q, dim=1) computes it in the tensor's
// precision: rank = q·(n−1), then torch.lerp between the neighbouring order statistics.
// `scratch` (of x's element type) is reused between calls to avoid allocation in sampling loops (host tensors;
// device tensors use the backend's scratch: diffuse/cuda/quantile.hpp, the same bits).
template <class X, class S>
void quantile_abs(X&& x, double q, std::span<double> out, std::vector<S>& scratch) {
    if constexpr (detail::check_reduce_inputs<X>()) {
        using T = tensor_value_t<X>;
        static_assert(std::is_same_v<S, T>, "diffuse::quantile_abs: scratch must hold x's element type (float or double)");
        if constexpr (std::is_same_v<S, T>) {
            const auto v = detail::input_view(std::forward<X>(x));
            detail::check_quantile_args(v, q, out, "quantile_abs");
            const auto r = detail::quantile_rank_of<T>(q, v.per_sample);
            if constexpr (decltype(v)::space == memory_space::device) {
                static_assert(detail::device_quantile<T>::available,
                              "diffuse: quantile_abs on device memory needs diffuse/cuda/quantile.hpp (included by "
                              "diffuse/cuda/primitives.hpp)");
                detail::device_quantile<T>::quantile_abs(v, r, out);
            } else {
                scratch.resize(v.per_sample);
                for (std::size_t b = 0; b < v.batch; ++b) {
                    const T* s = v.sample(b);
                    for (std::size_t j = 0; j < v.per_sample; ++j) scratch[j] = std::abs(s[j]);
                    std::nth_element(scratch.begin(), scratch.begin() + std::ptrdiff_t(r.below), scratch.end());
                    const T lo = scratch[r.below];
                    const T hi = r.above == r.below
                                     ? lo
                                     : *std::min_element(scratch.begin() + std::ptrdiff_t(r.below) + 1, scratch.end());
                    out[b] = detail::torch_lerp(lo, hi, r.w);
                }
            }
        }
    }
}

template <class X>
void quantile_abs(X&& x, double q, std::span<double> out) {
    if constexpr (detail::check_reduce_inputs<X>()) {
        std::vector<tensor_value_t<X>> scratch;
        quantile_abs(std::forward<X>(x), q, out, scratch);
    }
}

}  // namespace diffuse
