#pragma once
// The device backend of the core primitives: include this header and lincomb, transform, clamp, fill_normal,
// lincomb_noise, sum_squares, dot, mean and first_non_finite_sample run on tensors in device memory
// (tensor_traits<T>::space == memory_space::device; core/device_dispatch.hpp chooses by space).
//
// Each kernel is a DIFFUSE_HD functor over an index (the per-element body) and one launcher:
//   compiled by a CUDA compiler   a grid-stride __global__ kernel (256 threads a block)
//   DIFFUSE_CUDA_ON_HOST          a plain loop on the host (device memory is host memory: memory.hpp),
//                                 so CI runs the very same bodies without a GPU
//   other host compilers          a compile-time sentence: the launch needs a .cu file
// The results are the host primitives' bits:
//   - element-wise bodies do the host's operations in the host's order (lincomb's left fold), each product
//     and sum rounded on its own (__fmul_rn/__fadd_rn on the device: never contracted into an fma);
//   - the reductions keep the host's fixed blocks: per sample, per block of reduce_block elements, 8 lane
//     sums (lane l adds the elements j ≡ l mod 8 in order, as block_sum does), combined as block_sum
//     combines them, and the block sums added in block order — independent of the launch configuration;
//   - the noise is normal_at's, one Philox block (4 floats or 2 doubles) per thread. The generator itself
//     (core/random.hpp) uses plain +, −, ×, ÷, so device code that calls it must be compiled with
//     --fmad=false (the diffuse::cuda CMake target adds it): see docs/noise.md.
// Per-sample coefficients (and fill_normal's sample ids) reach the device once per call through a small
// per-thread device scratch; per_sample of a device view of doubles is read where it is (no copy). A
// reduction writes its per-sample results to that scratch and reads them back in one copy, or writes them
// into the caller's device memory; for_each_sample runs a per-sample functor through the launcher. Kernels go
// to the current stream; inside a CUDA graph capture (cuda/graph.hpp) they are recorded, host coefficients
// become the graph's constants, reductions that read back to the host are refused and
// require_finite_samples becomes a check after each replay (cuda/runtime.hpp).
// quantile_abs and dynamic_threshold: diffuse/cuda/quantile.hpp, included at the end of this header.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/config.hpp"
#include "diffuse/core/device_dispatch.hpp"
#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/core/lincomb_noise.hpp"
#include "diffuse/core/random.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/cuda/memory.hpp"

namespace diffuse::detail {

// ---------------------------------------------------------------------------------------------
// Arithmetic rounded after every operation (no fma contraction on the device, whatever --fmad says).
template <class T>
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T mul_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return __fmul_rn(a, b);
    else return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
template <class T>
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T add_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return __fadd_rn(a, b);
    else return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

template <class T>
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T div_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) return __fdiv_rn(a, b);
    else return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

// ---------------------------------------------------------------------------------------------
// The launcher: body(i) for every i in [0, n).
template <class Body>
struct launch_needs_cuda_compiler : std::false_type {};

#if defined(DIFFUSE_CUDA_ON_HOST)
template <class Body>
void launch(std::size_t n, const Body& body, const char*) {
    if (n == 0) return;
    run_or_record([n, body] {
        for (std::size_t i = 0; i < n; ++i) body(i);
    });
}
#elif defined(__CUDACC__)
inline constexpr unsigned launch_threads = 256;
inline constexpr std::size_t launch_max_blocks = 16384;  // then grid-stride

template <class Body>
__global__ void __launch_bounds__(launch_threads) grid_stride_kernel(std::size_t n, Body body) {
    const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
    for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) body(i);
}

template <class Body>
void launch(std::size_t n, const Body& body, const char* where) {
    if (n == 0) return;
    require_cuda_device(where);
    const std::size_t blocks = std::min((n + launch_threads - 1) / launch_threads, launch_max_blocks);
    grid_stride_kernel<<<static_cast<unsigned>(blocks), launch_threads, 0, current_stream()>>>(n, body);
    cuda_check(cudaGetLastError(), where, "kernel launch");
}
#else
template <class Body>
void launch(std::size_t, const Body&, const char*) {
    static_assert(launch_needs_cuda_compiler<Body>::value,
                  "diffuse: device primitives launch CUDA kernels: call them from a .cu file compiled by nvcc (or "
                  "define DIFFUSE_CUDA_ON_HOST, or build with THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP, to run "
                  "them on the host)");
}
#endif

// ---------------------------------------------------------------------------------------------
// The per-thread device scratch: grows, never shrinks; reused by every call of this host thread (calls on
// one thread are ordered on its default stream, so a copy into it waits for the kernels before it). Inside a
// capture, get() gives memory the graph owns instead (cuda/runtime.hpp).
class device_scratch {
public:
    device_scratch() = default;
    device_scratch(const device_scratch&) = delete;
    device_scratch& operator=(const device_scratch&) = delete;
    ~device_scratch() { raw_device_free(data_); }

    [[nodiscard]] void* get(std::size_t bytes, const char* where) {
        if (graph_recording* r = graph_recording::active()) return r->temporary(bytes, where);
        if (bytes > bytes_) {
            device_free(std::exchange(data_, nullptr));
            bytes_ = 0;
            data_ = device_allocate(bytes, where);
            bytes_ = bytes;
        }
        return data_;
    }

    static device_scratch& for_this_thread() {
        thread_local device_scratch scratch;
        return scratch;
    }

private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
};

// A coefficient as device code reads it: a number, or one double per sample in device memory.
template <class T>
struct device_coef {
    T value = 0;
    const double* per_sample = nullptr;
    [[nodiscard]] DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T at(std::size_t b) const {
        return per_sample != nullptr ? static_cast<T>(per_sample[b]) : value;  // as coef_at<T> converts
    }
};

template <class C>
inline constexpr bool is_per_sample_coef = std::is_same_v<std::remove_cvref_t<C>, per_sample_values>;
// Some coefficient is per sample (host values, or values already in device memory).
template <class... C>
inline constexpr bool any_per_sample_coef = ((is_per_sample_coef<C> || is_space_coef<std::remove_cvref_t<C>>) || ...);

// Host values on the device for one call: in the per-thread scratch (one copy), or inside a capture the
// graph's constants (uploaded once when the capture ends).
[[nodiscard]] inline const void* device_constants(const void* host, std::size_t bytes, const char* where) {
    if (graph_recording* r = graph_recording::active()) return r->stage_constants(host, bytes, where);
    void* device = device_scratch::for_this_thread().get(bytes, where);
    device_copy(device, host, bytes, copy_direction::host_to_device, where);
    return device;
}

// The coefficients of one call on the device: the per-sample ones reach it in one copy (device_constants).
template <class T, class... C>
[[nodiscard]] std::array<device_coef<T>, sizeof...(C)> upload_coefficients(std::size_t batch, const char* where,
                                                                           const C&... c) {
    std::array<device_coef<T>, sizeof...(C)> result{};
    constexpr std::size_t per_sample_count = (std::size_t(is_per_sample_coef<C>) + ... + 0);
    // one coefficient that needs no upload: a number, or per-sample values already in device memory (read by
    // the kernel where they are: inside a capture, each replay reads what the recorded work wrote there)
    auto direct = [](const auto& coef, device_coef<T>& r) {
        if constexpr (is_space_coef<std::remove_cvref_t<decltype(coef)>>) r.per_sample = coef.data;
        else if constexpr (!is_per_sample_coef<decltype(coef)>) r.value = static_cast<T>(coef);
    };
    if constexpr (per_sample_count == 0) {
        std::size_t k = 0;
        (direct(c, result[k++]), ...);
    } else {
        thread_local std::vector<double> staging;
        staging.resize(per_sample_count * batch);
        std::array<std::size_t, sizeof...(C)> slot_of{};
        std::size_t k = 0, slot = 0;
        auto one = [&](const auto& coef) {
            if constexpr (is_per_sample_coef<decltype(coef)>) {
                std::copy(coef.values.begin(), coef.values.end(), staging.begin() + std::ptrdiff_t(slot * batch));
                slot_of[k] = slot++;
            } else {
                direct(coef, result[k]);
            }
            ++k;
        };
        (one(c), ...);
        const auto* device =
            static_cast<const double*>(device_constants(staging.data(), staging.size() * sizeof(double), where));
        k = 0;
        ((result[k].per_sample = is_per_sample_coef<C> ? device + slot_of[k] * batch : result[k].per_sample, ++k), ...);
    }
    return result;
}


// ---------------------------------------------------------------------------------------------
// Bodies.

// Σ c_k·x_k[i] as lincomb_kernel folds it: ((c0·x0 + c1·x1) + c2·x2) + ...
template <class T, std::size_t K>
struct lincomb_terms {
    const T* x[K];
    device_coef<T> c[K];
    [[nodiscard]] DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T value(std::size_t i, std::size_t b) const {
        T r = mul_rn(c[0].at(b), x[0][i]);
        for (std::size_t k = 1; k < K; ++k) r = add_rn(r, mul_rn(c[k].at(b), x[k][i]));
        return r;
    }
};

// One element per index.
template <class T, std::size_t K>
struct lincomb_body {
    T* out;
    lincomb_terms<T, K> terms;
    std::size_t per_sample;
    bool needs_sample;  // some coefficient is per sample
    DIFFUSE_HD void operator()(std::size_t i) const {
        out[i] = terms.value(i, needs_sample ? i / per_sample : 0);
    }
};

// 16 bytes (4 floats or 2 doubles) of one sample per index, as one vector load per input and one store,
// when every pointer is 16-byte aligned and a group never straddles two samples.
template <class T, std::size_t K>
struct lincomb_vector_body {
    static constexpr std::size_t width = 16 / sizeof(T);
    T* out;
    lincomb_terms<T, K> terms;
    std::size_t per_sample;
    bool needs_sample;
    DIFFUSE_HD void operator()(std::size_t g) const {
        const std::size_t i0 = g * width;
        const std::size_t b = needs_sample ? i0 / per_sample : 0;
#if defined(__CUDA_ARCH__)
        struct alignas(16) pack {
            T v[width];
        };
        pack r = *reinterpret_cast<const pack*>(terms.x[0] + i0);
        const T c0 = terms.c[0].at(b);
        for (std::size_t l = 0; l < width; ++l) r.v[l] = mul_rn(c0, r.v[l]);
        for (std::size_t k = 1; k < K; ++k) {
            const pack p = *reinterpret_cast<const pack*>(terms.x[k] + i0);
            const T ck = terms.c[k].at(b);
            for (std::size_t l = 0; l < width; ++l) r.v[l] = add_rn(r.v[l], mul_rn(ck, p.v[l]));
        }
        *reinterpret_cast<pack*>(out + i0) = r;
#else
        for (std::size_t l = 0; l < width; ++l) out[i0 + l] = terms.value(i0 + l, b);
#endif
    }
};

template <class T, class F, std::size_t K>
struct transform_body {
    T* out;
    const T* x[K == 0 ? 1 : K];
    F f;
    DIFFUSE_HD void operator()(std::size_t i) const { apply(i, std::make_index_sequence<K>{}); }
    template <std::size_t... I>
    DIFFUSE_HD void apply(std::size_t i, std::index_sequence<I...>) const {
        out[i] = static_cast<T>(f(x[I][i]...));
    }
};

template <class T>
struct clamp_body {
    T* out;
    const T* x;
    device_coef<T> lo, hi;
    std::size_t per_sample;
    bool needs_sample;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t b = needs_sample ? i / per_sample : 0;
        const T l = lo.at(b), h = hi.at(b);
        const T v = x[i] < l ? l : x[i];
        out[i] = v > h ? h : v;
    }
};

// The normals of one Philox block, each value exactly as normal_at computes it (the same operations on
// the same words): float lanes (0, 1) from words (w0, w1) and (2, 3) from (w2, w3); double from all four.
template <class T>
struct normal_block {
    static constexpr unsigned count = normals_per_block<T>;
    T v[count];
};

template <class T>
[[nodiscard]] DIFFUSE_HD DIFFUSE_ALWAYS_INLINE normal_block<T> normal_block_values(std::uint64_t seed, std::uint64_t sample,
                                                                                   std::uint64_t draw, std::uint64_t block) {
    const philox4x32_block w = normal_block_words(seed, sample, draw, block);
    normal_block<T> out;
    if constexpr (std::is_same_v<T, float>) {
        const float r0 = box_muller_radius(uniform_open0(w.w0));
        const sincos_result<float> sc0 = portable_sincos_2pi(uniform_open1(w.w1));
        const float r1 = box_muller_radius(uniform_open0(w.w2));
        const sincos_result<float> sc1 = portable_sincos_2pi(uniform_open1(w.w3));
        out.v[0] = r0 * sc0.cos;
        out.v[1] = r0 * sc0.sin;
        out.v[2] = r1 * sc1.cos;
        out.v[3] = r1 * sc1.sin;
    } else {
        const double r = box_muller_radius(uniform_open0(w.w0, w.w1));
        const sincos_result<double> sc = portable_sincos_2pi(uniform_open1(w.w2, w.w3));
        out.v[0] = r * sc.cos;
        out.v[1] = r * sc.sin;
    }
    return out;
}

// Index g = one Philox block of one sample: sample g / blocks_per_sample, block g % blocks_per_sample.
struct noise_layout {
    std::uint64_t seed, draw, first_sample;
    const std::uint64_t* sample_ids;  // device memory, or null: sample id first_sample + b
    std::size_t per_sample, blocks_per_sample;
    const std::uint64_t* seed_in_memory;  // in a CUDA graph: the graph's seed slot (device_graph::set_noise_seed)
    [[nodiscard]] DIFFUSE_HD std::uint64_t id(std::size_t b) const {
        return sample_ids != nullptr ? sample_ids[b] : first_sample + b;
    }
    [[nodiscard]] DIFFUSE_HD std::uint64_t seed_now() const { return seed_in_memory != nullptr ? *seed_in_memory : seed; }
};

// out = Σ c_k·x_k + c_noise·z with z generated in registers: lincomb_kernel's fold with the noise last
// (K = 0, c_noise = 1 is fill_normal: 1·z = z exactly).
template <class T, std::size_t K>
struct lincomb_noise_body {
    T* out;
    lincomb_terms<T, K == 0 ? 1 : K> terms;
    device_coef<T> c_noise;
    noise_layout z;
    DIFFUSE_HD void operator()(std::size_t g) const {
        constexpr unsigned per = normals_per_block<T>;
        const std::size_t b = g / z.blocks_per_sample, block = g % z.blocks_per_sample;
        const normal_block<T> n = normal_block_values<T>(z.seed_now(), z.id(b), z.draw, block);
        const std::size_t j0 = block * per, i0 = b * z.per_sample + j0;
        const std::size_t count = z.per_sample - j0 < per ? z.per_sample - j0 : per;
        const T cn = c_noise.at(b);
        for (std::size_t l = 0; l < count; ++l) {
            const T noise_term = mul_rn(cn, n.v[l]);
            if constexpr (K == 0) out[i0 + l] = noise_term;
            else out[i0 + l] = add_rn(terms.value(i0 + l, b), noise_term);
        }
    }
};

// First pass of the fixed-block reductions: index t = ((b·blocks + k)·8 + l), the lane sum l of block k
// of sample b, in block_sum's order.
template <class T, sum_kind Kind>
struct block_lane_sum_body {
    const T* x;
    const T* y;
    double* partial;
    std::size_t per_sample, blocks;
    const double* means;  // centered_squares: m_b per sample
    DIFFUSE_HD void operator()(std::size_t t) const {
        const std::size_t l = t % 8, bk = t / 8, b = bk / blocks, k = bk % blocks;
        const std::size_t j0 = k * reduce_block;
        const std::size_t n = per_sample - j0 < reduce_block ? per_sample - j0 : reduce_block;
        const T* xs = x + b * per_sample + j0;
        const T* ys = y + b * per_sample + j0;
        double acc = 0;
        for (std::size_t j = l; j < n; j += 8) {
            const double u = double(xs[j]);
            if constexpr (Kind == sum_kind::squares) acc = add_rn(acc, mul_rn(u, u));
            else if constexpr (Kind == sum_kind::dot) acc = add_rn(acc, mul_rn(u, double(ys[j])));
            else if constexpr (Kind == sum_kind::centered_squares) {
                const double d = add_rn(u, -means[b]);
                acc = add_rn(acc, mul_rn(d, d));
            } else acc = add_rn(acc, u);
        }
        partial[t] = acc;
    }
};

// Second pass: sample b's blocks combined as block_sum combines its 8 lanes, then added in block order.
struct block_total_body {
    const double* partial;
    double* out;
    std::size_t blocks;
    DIFFUSE_HD void operator()(std::size_t b) const {
        double s = 0;
        for (std::size_t k = 0; k < blocks; ++k) {
            const double* a = partial + (b * blocks + k) * 8;
            s = add_rn(s, add_rn(add_rn(add_rn(a[0], a[1]), add_rn(a[2], a[3])), add_rn(add_rn(a[4], a[5]), add_rn(a[6], a[7]))));
        }
        out[b] = s;
    }
};

// v[b] ← v[b] / divisor (the mean's and the variance's last step, rounded once as on the host).
struct divide_body {
    double* v;
    double divisor;
    DIFFUSE_HD void operator()(std::size_t b) const { v[b] = div_rn(v[b], divisor); }
};

DIFFUSE_HD DIFFUSE_ALWAYS_INLINE void atomic_min(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
    atomicMin(p, v);
#else
    if (v < *p) *p = v;
#endif
}

template <class T>
struct first_non_finite_body {
    const T* x;
    unsigned long long* first;
    std::size_t per_sample;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const T v = x[i];
        if (!(v - v == T(0))) atomic_min(first, static_cast<unsigned long long>(i / per_sample));  // NaN or ±Inf
    }
};

// *slot = value (a deferred check's reset at the start of its part of a replay).
struct store_body {
    unsigned long long* slot;
    unsigned long long value;
    DIFFUSE_HD void operator()(std::size_t) const { *slot = value; }
};

template <class T>
[[nodiscard]] inline bool aligned16(const T* p) {
    return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// ---------------------------------------------------------------------------------------------
// The backend the core primitives call for device tensors (shapes and coefficient counts already checked).
template <class T>
    requires scalar<T>
struct device_backend<T> {
    static constexpr bool available = true;

    template <class O, class Coefs, class Views>
    static void lincomb(const O& o, const Coefs& coefs, const Views& views) {
        constexpr std::size_t K = std::tuple_size_v<Views>;
        const auto c = std::apply([&](const auto&... cs) { return upload_coefficients<T>(o.batch, "lincomb", cs...); }, coefs);
        const bool needs_sample = std::apply([](const auto&... cs) { return any_per_sample_coef<decltype(cs)...>; }, coefs);
        lincomb_terms<T, K> terms{};
        bool vectorisable = aligned16(o.data);
        for (std::size_t k = 0; k < K; ++k) terms.c[k] = c[k];
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((terms.x[I] = std::get<I>(views).data, vectorisable = vectorisable && aligned16(terms.x[I])), ...);
        }(std::make_index_sequence<K>{});
        constexpr std::size_t width = lincomb_vector_body<T, K>::width;
        const std::size_t n = o.size();
        if (vectorisable && n % width == 0 && (!needs_sample || o.per_sample % width == 0))
            launch(n / width, lincomb_vector_body<T, K>{o.data, terms, o.per_sample, needs_sample}, "lincomb");
        else
            launch(n, lincomb_body<T, K>{o.data, terms, o.per_sample, needs_sample}, "lincomb");
    }

    template <class O, class F, class Views>
    static void transform(const O& o, F& f, const Views& views) {
        constexpr std::size_t K = std::tuple_size_v<Views>;
        transform_body<T, std::remove_cvref_t<F>, K> body{o.data, {}, f};
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((body.x[I] = std::get<I>(views).data), ...);
        }(std::make_index_sequence<K>{});
        launch(o.size(), body, "transform");
    }

    template <class O, class X, class Lo, class Hi>
    static void clamp(const O& o, const X& x, const Lo& lo, const Hi& hi) {
        const auto c = upload_coefficients<T>(o.batch, "clamp", lo, hi);
        launch(o.size(), clamp_body<T>{o.data, x.data, c[0], c[1], o.per_sample, any_per_sample_coef<Lo, Hi>}, "clamp");
    }

    template <class O>
    static void fill_normal(const O& o, std::uint64_t seed, std::uint64_t draw, std::uint64_t first_sample) {
        require(first_sample <= normal_sample_limit && o.batch <= normal_sample_limit - first_sample, "fill_normal",
                "first_sample + batch", first_sample + o.batch, "[0, 2^60]");
        check_normal_args("fill_normal", 0, draw, 0, o.per_sample);
        launch_fill(o, layout(o, seed, draw, first_sample, nullptr));
    }

    template <class O>
    static void fill_normal(const O& o, std::uint64_t seed, std::uint64_t draw, std::span<const std::uint64_t> ids) {
        for (const std::uint64_t id : ids) check_normal_args("fill_normal", id, draw, 0, o.per_sample);
        if (o.size() == 0) return;
        const auto* device = static_cast<const std::uint64_t*>(device_constants(ids.data(), ids.size_bytes(), "fill_normal"));
        launch_fill(o, layout(o, seed, draw, 0, device));
    }

    template <class O, class Coefs, class Views, class CNoise>
    static void lincomb_noise(const O& o, const Coefs& coefs, const Views& views, const CNoise& c_noise,
                              std::uint64_t seed, std::uint64_t draw, std::uint64_t first_sample) {
        constexpr std::size_t K = std::tuple_size_v<Views>;
        const auto c = std::apply(
            [&](const auto&... cs) { return upload_coefficients<T>(o.batch, "lincomb_noise", cs..., c_noise); }, coefs);
        lincomb_noise_body<T, K> body{o.data, {}, c[K], layout(o, seed, draw, first_sample, nullptr)};
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((body.terms.x[I] = std::get<I>(views).data, body.terms.c[I] = c[I]), ...);
        }(std::make_index_sequence<K>{});
        launch(o.batch * body.z.blocks_per_sample, body, "lincomb_noise");
    }

    // The per-sample sums of Kind over the host's blocks into `out`: host memory (through the scratch and one
    // copy back), or device memory (written there by the second pass: no read back, so a capture records it).
    template <sum_kind Kind, class X, class Y>
    static void per_sample_sum(const X& x, const Y& y, std::span<double> out) {
        if (x.batch == 0) return;
        auto* totals = static_cast<double*>(
            device_scratch::for_this_thread().get((x.batch + partial_count(x)) * sizeof(double), sum_name(Kind)));
        sums<Kind>(x, y, totals + x.batch, totals);
        device_copy(out.data(), totals, x.batch * sizeof(double), copy_direction::device_to_host, sum_name(Kind));
    }
    template <sum_kind Kind, class X, class Y>
    static void per_sample_sum(const X& x, const Y& y, double* out_on_device) {
        if (x.batch == 0) return;
        sums<Kind>(x, y, static_cast<double*>(device_scratch::for_this_thread().get(partial_count(x) * sizeof(double), sum_name(Kind))),
                   out_on_device);
    }

    // variance (core/reduce.hpp): the mean and the centered sum of squares over the host's blocks, all on the
    // device; the variances read back in one copy (host `out`) or left in device memory.
    template <class X>
    static void variance(const X& x, double divisor, std::span<double> out) {
        if (x.batch == 0) return;
        auto* means = static_cast<double*>(
            device_scratch::for_this_thread().get((2 * x.batch + partial_count(x)) * sizeof(double), "variance"));
        variance_passes(x, divisor, means, means + 2 * x.batch, means + x.batch);
        device_copy(out.data(), means + x.batch, x.batch * sizeof(double), copy_direction::device_to_host, "variance");
    }
    template <class X>
    static void variance(const X& x, double divisor, double* out_on_device) {
        if (x.batch == 0) return;
        auto* means = static_cast<double*>(
            device_scratch::for_this_thread().get((x.batch + partial_count(x)) * sizeof(double), "variance"));
        variance_passes(x, divisor, means, means + x.batch, out_on_device);
    }

    // body(b) for b in [0, n) on the device (for_each_sample, core/device_dispatch.hpp).
    template <class Body>
    static void for_each_sample(std::size_t n, const Body& body, const char* where) {
        launch(n, body, where);
    }

    template <class X>
    static std::size_t first_non_finite_sample(const X& x) {
        if (x.size() == 0) return x.batch;
        constexpr const char* where = "first_non_finite_sample";
        auto* first = static_cast<unsigned long long*>(
            device_scratch::for_this_thread().get(sizeof(unsigned long long), where));
        unsigned long long result = x.batch;
        device_copy(first, &result, sizeof(result), copy_direction::host_to_device, where);
        launch(x.size(), first_non_finite_body<T>{x.data, first, x.per_sample}, where);
        device_copy(&result, first, sizeof(result), copy_direction::device_to_host, where);
        return static_cast<std::size_t>(result);
    }

    // copy_from_host (core/tensor_copy.hpp): one host-to-device copy.
    template <class O>
    static void copy_from_host(const O& o, const T* host) {
        device_copy(o.data, host, o.size() * sizeof(T), copy_direction::host_to_device, "copy_from_host");
    }

    // require_finite_samples (core/reduce.hpp): now, or inside a capture a deferred check of each replay.
    template <class X, class F>
    static void require_finite_samples(const X& x, const F& fail_at) {
        graph_recording* recording = graph_recording::active();
        if (recording == nullptr) {
            if (const std::size_t b = first_non_finite_sample(x); b < x.batch) fail_at(b);
            return;
        }
        if (x.size() == 0) return;
        constexpr const char* where = "require_finite_samples";
        unsigned long long* slot = recording->check_slot(
            [batch = x.batch, fail_at](unsigned long long b) {
                if (b < batch) fail_at(static_cast<std::size_t>(b));
            },
            where);
        launch(1, store_body{slot, x.batch}, where);
        launch(x.size(), first_non_finite_body<T>{x.data, slot, x.per_sample}, where);
    }

private:
    static constexpr const char* sum_name(sum_kind kind) {
        return kind == sum_kind::squares ? "sum_squares" : kind == sum_kind::dot ? "dot" : "mean";
    }
    template <class X>
    static std::size_t partial_count(const X& x) {
        return x.batch * ((x.per_sample + reduce_block - 1) / reduce_block) * 8;
    }
    // Pass 1 into partial (partial_count values), pass 2 into totals (x.batch values), both in device memory.
    template <sum_kind Kind, class X, class Y>
    static void sums(const X& x, const Y& y, double* partial, double* totals, const double* means = nullptr) {
        const std::size_t blocks = (x.per_sample + reduce_block - 1) / reduce_block;
        launch(x.batch * blocks * 8, block_lane_sum_body<T, Kind>{x.data, y.data, partial, x.per_sample, blocks, means},
               sum_name(Kind));
        launch(x.batch, block_total_body{partial, totals, blocks}, sum_name(Kind));
    }
    // means (x.batch values), then the variances into out (x.batch values); partial: partial_count values.
    template <class X>
    static void variance_passes(const X& x, double divisor, double* means, double* partial, double* out) {
        constexpr const char* where = "variance";
        sums<sum_kind::plain>(x, x, partial, means);
        launch(x.batch, divide_body{means, double(x.per_sample)}, where);
        sums<sum_kind::centered_squares>(x, x, partial, out, means);
        launch(x.batch, divide_body{out, divisor}, where);
    }

    template <class O>
    static noise_layout layout(const O& o, std::uint64_t seed, std::uint64_t draw, std::uint64_t first_sample,
                               const std::uint64_t* ids) {
        constexpr unsigned per = normals_per_block<T>;
        graph_recording* recording = graph_recording::active();
        return {seed, draw, first_sample, ids, o.per_sample, (o.per_sample + per - 1) / per,
                recording != nullptr ? recording->seed_slot(seed, "noise") : nullptr};
    }

    template <class O>
    static void launch_fill(const O& o, const noise_layout& z) {
        launch(o.batch * z.blocks_per_sample, lincomb_noise_body<T, 0>{o.data, {}, device_coef<T>{T(1), nullptr}, z}, "fill_normal");
    }
};

}  // namespace diffuse::detail

// quantile_abs and dynamic_threshold on the device (they use the launcher and scratch above).
#include "diffuse/cuda/quantile.hpp"
