#pragma once
// torch's CUDA generator for normal noise, computed on the host:
//   g = torch.Generator("cuda").manual_seed(s)      (torch.cuda.manual_seed(s) for the default generator)
//   torch.randn(shape, generator=g, device="cuda", dtype=torch.float32 or torch.float64)
// so that a pipeline written for a GPU — diffusers draws its latents and its per-step noise this way — can
// start from the same latents on any machine. The generator carries torch's Philox offset across calls, so a
// sequence of randn calls matches torch's sequence.
//
// What torch does (ATen/native/cuda/DistributionTemplates.h: normal_kernel, distribution_nullary_kernel,
// calc_execution_policy; curand's device API: curand_init, curand4, curand_normal4, curand_normal2_double):
//   * launch: 256 threads a block and G = min(⌈n/256⌉, SMs·(max threads per SM / 256)) blocks, N = 256·G
//     threads. Thread t runs curand_init(seed, subsequence t, offset) and, in its k-th pass (k = 0, 1, …),
//     draws U values (float: curand_normal4, U = 4; double: curand_normal2_double, U = 2); value j goes to
//     element t + (k·U + j)·N, values past n are dropped. The generator's offset then grows by
//     4·⌈n / (N·U)⌉. So for n ≤ 256·G_max (270,336 values on an H100 or H200) element i is the first value
//     of thread i, and the device's size matters only above that (torch_cuda_device).
//   * each pass takes one Philox4x32-10 block (Salmon et al. 2011; core/philox.hpp): key (seed mod 2^32,
//     seed / 2^32), counter (c mod 2^32, c / 2^32, t mod 2^32, t / 2^32) with c = offset/4 + k.
//   * float (curand's _curand_box_muller, device branch): words (w0, w1) then (w2, w3) give
//       u = w0·2^-32 + 2^-33,  v = fma(w1, 2π_f·2^-32, 2π_f·2^-33)   (float; the device fuses v's multiply-add)
//       s = √(−2 ln u),  values (s·sin v, s·cos v);
//     double (_curand_box_muller_double): zx = w0 ^ (w1 << 21), zy = w2 ^ (w3 << 21) (53 bits),
//       u = zx·2^-53 + 2^-54,  v = zy·2^-52 + 2^-53,  s = √(−2 ln u),  values (s·sin πv, s·cos πv).
// Accuracy: the Philox words, the uniforms u and v and the element each value goes to are exact; ln, √ and the
// sines are evaluated here in long double and rounded once, while the device uses logf (≤ 1 ulp), the hardware
// approximation __sincosf (PTX sin.approx/cos.approx: absolute error up to about 2^-20.5) for float and log,
// sincospi (≤ 2 ulp) for double. Expected agreement (from those documented bounds; not yet measured on a GPU):
// float values within about 2^-20.5·s ≈ 5e-6 absolute (s ≤ 6.8 since u ≥ 2^-33), double values within a few
// ulp. Against curand's host branch (tests/cuda/torch_cuda_randn.cpp, which checks everything but the device's
// own last-bit math) the float values differ by at most 1.2e-6, the double ones by 2.7e-15 (200,000 values,
// 3 seeds); benchmarks/cuda/run_device_checks.sh compares with torch on a GPU (bound 1e-5 / 1e-13).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/randn_forms.hpp"
#include "diffuse/core/philox.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

// What torch's launch configuration reads of the GPU (cudaDeviceProp): H100 and H200 by default; A100 has
// 108 multiprocessors, an RTX 4090 128 of 1536 threads each.
struct torch_cuda_device {
    std::uint32_t multiprocessors = 132;
    std::uint32_t max_threads_per_multiprocessor = 2048;
};

namespace detail {

// The launch torch uses for n values drawn U at a time (calc_execution_policy).
struct torch_cuda_launch {
    std::uint64_t threads;         // N = 256·G
    std::uint64_t counter_offset;  // the generator's offset increment
};
[[nodiscard]] inline torch_cuda_launch torch_cuda_launch_for(std::uint64_t n, std::uint64_t per_pass,
                                                             const torch_cuda_device& d) {
    constexpr std::uint64_t block = 256;
    const std::uint64_t max_blocks = std::uint64_t(d.multiprocessors) * (d.max_threads_per_multiprocessor / block);
    const std::uint64_t blocks = std::min((n + block - 1) / block, max_blocks);
    return {block * blocks, ((n - 1) / (block * blocks * per_pass) + 1) * 4};
}

// The Philox block of thread t's pass c (= offset/4 + k) under seed.
[[nodiscard]] inline philox4x32_block torch_cuda_words(std::uint64_t seed, std::uint64_t c, std::uint64_t t) {
    return philox4x32_10_words(static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c >> 32),
                               static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(t >> 32),
                               static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// Value j (0 … 3) of curand_normal4 from one Philox block: (s·sin v, s·cos v) of (w0, w1), then of (w2, w3).
[[nodiscard]] inline float torch_cuda_normal_float(const philox4x32_block& w, unsigned j) {
    const std::uint32_t a = j < 2 ? w.w0 : w.w2, b = j < 2 ? w.w1 : w.w3;
    constexpr float two_pi = 6.2831855f;  // curand's CURAND_2POW32_INV_2PI = 2^-32 · 6.2831855f
    const float u = static_cast<float>(a) * 0x1p-32f + 0x1p-33f;  // (exact product: fused or not, the same)
    const float v = std::fma(static_cast<float>(b), two_pi * 0x1p-32f, two_pi * 0x1p-33f);
    const auto s = static_cast<float>(std::sqrt(-2.0f * static_cast<float>(std::log(static_cast<long double>(u)))));
    const auto trig = static_cast<float>(j % 2 == 0 ? std::sin(static_cast<long double>(v)) : std::cos(static_cast<long double>(v)));
    return trig * s;
}

// Value j (0, 1) of curand_normal2_double from one Philox block: (s·sin πv, s·cos πv).
[[nodiscard]] inline double torch_cuda_normal_double(const philox4x32_block& w, unsigned j) {
    const std::uint64_t zx = std::uint64_t(w.w0) ^ (std::uint64_t(w.w1) << 21);
    const std::uint64_t zy = std::uint64_t(w.w2) ^ (std::uint64_t(w.w3) << 21);
    const double u = static_cast<double>(zx) * 0x1p-53 + 0x1p-54;  // both exact
    const double v = static_cast<double>(zy) * 0x1p-52 + 0x1p-53;
    const double s = std::sqrt(-2.0 * static_cast<double>(std::log(static_cast<long double>(u))));
    constexpr long double pi = 3.141592653589793238462643383279502884L;
    const long double angle = pi * static_cast<long double>(v);
    return static_cast<double>(j == 0 ? std::sin(angle) : std::cos(angle)) * s;
}

}  // namespace detail

class torch_cuda_generator : public detail::randn_forms<torch_cuda_generator> {
public:
    // torch's default CUDA seed, as for the CPU generator (torch.cuda.initial_seed() without manual_seed).
    static constexpr std::uint64_t default_seed = 67280421310721ull;

    explicit torch_cuda_generator(std::uint64_t seed = default_seed, torch_cuda_device device = {}) : device_(device) {
        if (device.multiprocessors == 0 || device.max_threads_per_multiprocessor < 256)
            detail::fail("torch_cuda_generator", "the device needs at least one multiprocessor of at least 256 threads");
        manual_seed(seed);
    }

    // manual_seed(seed): the seed, and the Philox offset back to 0.
    void manual_seed(std::uint64_t seed) noexcept {
        seed_ = seed;
        offset_ = 0;
    }
    [[nodiscard]] std::uint64_t initial_seed() const noexcept { return seed_; }
    // The Philox offset (torch: generator.get_offset()); set_offset as torch's, a multiple of 4.
    [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }
    void set_offset(std::uint64_t offset) {
        if (offset % 4 != 0)
            detail::fail("torch_cuda_generator::set_offset", "the offset " + std::to_string(offset) + " is not a multiple of 4");
        offset_ = offset;
    }
    [[nodiscard]] const torch_cuda_device& device() const noexcept { return device_; }

    // torch.randn(n, dtype=T, device="cuda", generator=this) into out[0, n).
    template <scalar T>
    void randn(T* out, std::size_t n) {
        static_assert(!std::is_const_v<T>, "diffuse: randn writes through out");
        constexpr const char* where = "torch_cuda_generator::randn";
        if (n == 0) return;
        detail::require(out != nullptr, where, "out", "nullptr", "a non-null pointer");
        if (n >= (std::size_t(1) << 31))  // torch splits such tensors into 32-bit-indexed launches
            detail::fail(where, std::to_string(n) + " values: at most 2^31 - 1 in one call are reproduced");
        constexpr unsigned per_pass = std::is_same_v<T, float> ? 4 : 2;
        const detail::torch_cuda_launch launch = detail::torch_cuda_launch_for(n, per_pass, device_);
        const std::uint64_t first_counter = offset_ / 4;
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t q = i / launch.threads, t = i % launch.threads;  // element i = t + (k·U + j)·N
            const std::uint64_t k = q / per_pass;
            const auto j = static_cast<unsigned>(q % per_pass);
            const philox4x32_block w = detail::torch_cuda_words(seed_, first_counter + k, t);
            if constexpr (std::is_same_v<T, float>) out[i] = detail::torch_cuda_normal_float(w, j);
            else out[i] = detail::torch_cuda_normal_double(w, j);
        }
        offset_ += launch.counter_offset;
    }

    using detail::randn_forms<torch_cuda_generator>::randn;  // randn<T>(n) and randn(tensor)

private:
    std::uint64_t seed_ = default_seed, offset_ = 0;
    torch_cuda_device device_;
};

}  // namespace diffuse
