#pragma once
// quantile_abs (core/reduce.hpp) and dynamic_threshold (core/threshold.hpp) on device tensors, with the host's
// bits. Per sample, the two order statistics of |x| that torch.quantile interpolates (ranks below and above,
// 0-based) are found exactly by a radix select on the bit patterns of |x| — non-negative IEEE values order as
// their bits — eight bits a pass from the top (4 passes for float, 8 for double):
//   count   each fixed block of reduce_block elements of a sample counts, for each of the two queries, the
//           elements whose higher bits equal the query's prefix, by their next 8-bit digit (256 counters);
//   select  one thread a query adds its blocks' counters in block order and takes the digit d at which the
//           running count passes the query's remaining rank r: prefix ← prefix | d, r ← r − (count below d).
// Counts are integers, so the order statistics are exact whatever the launch configuration; the interpolation
// is the host's (torch_lerp: one fma in T) and the threshold's division is rounded once, so the device gives
// the host's bits. Ties, ±0 (|−0| = +0) and +Inf order as std::nth_element orders them; NaN sorts last here
// (the host's order with NaN is unspecified, and samplers reject non-finite model outputs first).
// Memory: batch·2 query states, batch quantiles and batch·2·blocks·256 counters in the per-thread device
// scratch; dynamic_threshold reads nothing back to the host.
//
// Included by diffuse/cuda/primitives.hpp (it uses that header's launcher and scratch).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "diffuse/core/reduce.hpp"
#include "diffuse/core/threshold.hpp"
#include "diffuse/cuda/primitives.hpp"

namespace diffuse::detail {

template <class T>
using order_bits_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

// The bits of |v| (the sign bit cleared), as an unsigned integer that orders as |v| does.
template <class T>
[[nodiscard]] DIFFUSE_HD DIFFUSE_ALWAYS_INLINE order_bits_t<T> abs_bits(T v) {
    using U = order_bits_t<T>;
    U u;
    std::memcpy(&u, &v, sizeof(U));
    return u & ~(U(1) << (8 * sizeof(U) - 1));
}
template <class T>
[[nodiscard]] DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T from_bits(order_bits_t<T> u) {
    T v;
    std::memcpy(&v, &u, sizeof(T));
    return v;
}

inline constexpr std::size_t select_digits = 256;

// One query of the select: the bits found so far (prefix, under mask) and the rank left among the values
// that share them.
template <class T>
struct select_state {
    order_bits_t<T> prefix, mask;
    std::uint64_t rank;
};

template <class T>
struct select_init_body {
    select_state<T>* state;
    std::uint64_t below, above;
    DIFFUSE_HD void operator()(std::size_t t) const { state[t] = {0, 0, t % 2 == 0 ? below : above}; }
};

// index t = ((b·2 + query)·blocks + k): the digit counts of block k of sample b for one query.
template <class T>
struct select_count_body {
    const T* x;
    const select_state<T>* state;
    std::uint32_t* counts;
    std::size_t per_sample, blocks;
    unsigned shift;
    DIFFUSE_HD void operator()(std::size_t t) const {
        const std::size_t k = t % blocks, query = t / blocks, b = query / 2;
        const select_state<T> s = state[query];
        std::uint32_t* c = counts + t * select_digits;
        for (std::size_t d = 0; d < select_digits; ++d) c[d] = 0;
        const std::size_t j0 = k * reduce_block, n = per_sample - j0 < reduce_block ? per_sample - j0 : reduce_block;
        const T* xs = x + b * per_sample + j0;
        for (std::size_t j = 0; j < n; ++j) {
            const order_bits_t<T> u = abs_bits(xs[j]);
            if ((u & s.mask) == s.prefix) ++c[(u >> shift) & (select_digits - 1)];
        }
    }
};

// index t = b·2 + query: the next digit of the query's order statistic.
template <class T>
struct select_digit_body {
    select_state<T>* state;
    const std::uint32_t* counts;
    std::size_t blocks;
    unsigned shift;
    DIFFUSE_HD void operator()(std::size_t t) const {
        select_state<T>& s = state[t];
        std::uint64_t r = s.rank;
        std::size_t digit = select_digits - 1;
        for (std::size_t d = 0; d < select_digits; ++d) {
            std::uint64_t c = 0;
            for (std::size_t k = 0; k < blocks; ++k) c += counts[(t * blocks + k) * select_digits + d];
            if (r < c) {
                digit = d;
                break;
            }
            r -= c;
        }
        using U = order_bits_t<T>;
        s.prefix |= U(digit) << shift;
        s.mask |= U(select_digits - 1) << shift;
        s.rank = r;
    }
};

// quantile[b] = torch_lerp(lo, hi, w) from the two finished queries of sample b.
template <class T>
struct select_quantile_body {
    const select_state<T>* state;
    double* quantile;
    T w;
    DIFFUSE_HD void operator()(std::size_t b) const {
        quantile[b] = double(torch_lerp(from_bits<T>(state[2 * b].prefix), from_bits<T>(state[2 * b + 1].prefix), w));
    }
};

// x ← clamp(x, −s_b, s_b) / s_b, s_b = threshold_of(quantile[b], max_value).
template <class T>
struct threshold_body {
    T* x;
    const double* quantile;
    double max_value;
    std::size_t per_sample;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const T s = threshold_of<T>(quantile[i / per_sample], max_value);
        const T v = x[i];
        x[i] = div_rn(v < -s ? -s : (v > s ? s : v), s);
    }
};

template <class T>
    requires scalar<T>
struct device_quantile<T> {
    static constexpr bool available = true;

    template <class V>
    static void quantile_abs(const V& x, const quantile_rank<T>& r, std::span<double> out) {
        if (x.batch == 0) return;
        const double* q = quantiles(x, r, "quantile_abs");
        device_copy(out.data(), q, x.batch * sizeof(double), copy_direction::device_to_host, "quantile_abs");
    }

    template <class V>
    static void threshold(const V& x, const quantile_rank<T>& r, double max_value) {
        const double* q = quantiles(tensor_view<const T, memory_space::device>(x), r, "dynamic_threshold");
        launch(x.size(), threshold_body<T>{x.data, q, max_value, x.per_sample}, "dynamic_threshold");
    }

private:
    // The per-sample quantiles in the device scratch (valid until the next call that uses the scratch).
    template <class V>
    static const double* quantiles(const V& x, const quantile_rank<T>& r, const char* where) {
        const std::size_t blocks = (x.per_sample + reduce_block - 1) / reduce_block, queries = 2 * x.batch;
        const std::size_t state_bytes = queries * sizeof(select_state<T>), quantile_bytes = x.batch * sizeof(double);
        auto* base = static_cast<unsigned char*>(device_scratch::for_this_thread().get(
            state_bytes + quantile_bytes + queries * blocks * select_digits * sizeof(std::uint32_t), where));
        auto* state = reinterpret_cast<select_state<T>*>(base);
        auto* quantile = reinterpret_cast<double*>(base + state_bytes);
        auto* counts = reinterpret_cast<std::uint32_t*>(base + state_bytes + quantile_bytes);
        launch(queries, select_init_body<T>{state, r.below, r.above}, where);
        for (unsigned shift = 8 * sizeof(T); shift > 0;) {
            shift -= 8;
            launch(queries * blocks, select_count_body<T>{x.data, state, counts, x.per_sample, blocks, shift}, where);
            launch(queries, select_digit_body<T>{state, counts, blocks, shift}, where);
        }
        launch(x.batch, select_quantile_body<T>{state, quantile, r.w}, where);
        return quantile;
    }
};

}  // namespace diffuse::detail
