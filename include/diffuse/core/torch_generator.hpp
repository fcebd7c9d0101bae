#pragma once
// A CPU generator reproducing torch's CPU generator for normal noise:
//   torch.manual_seed(s); torch.randn(shape, dtype=float32 or float64)
// so that a pipeline ported from diffusers can start from the very same latents. The generator
// carries state across calls exactly as torch's does, so a sequence of randn calls of different
// sizes and dtypes (initial noise, then per-step noise) matches torch's sequence.
//
// What torch does (ATen CPU generator and its normal kernel):
//   * engine: MT19937 (Matsumoto & Nishimura 1998) seeded with the low 32 bits of the 64-bit seed;
//     one 32-bit output per float uniform, two (hi, lo) per 64-bit value.
//   * uniforms in [0, 1): float = (w & (2^24 - 1)) * 2^-24, double = (w64 & (2^53 - 1)) * 2^-53.
//   * n >= 16 elements: fill all n uniforms, then Box–Muller over blocks of 16 (lanes j and j + 8):
//       u1 = 1 - U[j] (in (0, 1]), u2 = U[j + 8], r = sqrt(-2 ln u1), theta = 2 pi u2,
//       X[j] = r cos theta, X[j + 8] = r sin theta.
//     If n is not a multiple of 16 the last 16 positions [n - 16, n) get 16 fresh uniforms and the
//     block is transformed again (overwriting values already produced).
//     float computes r and the trigonometry in float (theta = (float)(2 pi (double) u2)), double in double.
//   * n < 16: each element is one draw of a double Box–Muller normal: with no cached value,
//       u1, u2 = two double uniforms, r = sqrt(-2 log1p(-u2)), theta = 2 pi u1,
//       return r cos theta and cache r sin theta for the next such draw (float or double alike);
//     the cache is cleared by manual_seed. float results are the double value rounded to float.
// This class reproduces the portable (non-vectorised) torch kernel bit for bit, using the host's
// libm for log/sin/cos/log1p exactly where torch does. torch's x86 builds use an AVX2 kernel for
// float32 with n >= 16 whose float32 trigonometry differs: see docs/noise.md and
// tests/noise/test_torch_generator.cpp for the measured difference.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <type_traits>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

class torch_cpu_generator {
public:
    // torch's default CPU seed (used when no seed is given there) is 67280421310721.
    static constexpr std::uint64_t default_seed = 67280421310721ull;

    explicit torch_cpu_generator(std::uint64_t seed = default_seed) { manual_seed(seed); }

    // torch.manual_seed(seed): reseeds MT19937 with the low 32 bits and clears the cached normal.
    void manual_seed(std::uint64_t seed) {
        seed_ = seed;
        engine_.seed(static_cast<std::mt19937::result_type>(seed & 0xFFFFFFFFu));
        next_double_normal_.reset();
    }

    [[nodiscard]] std::uint64_t initial_seed() const noexcept { return seed_; }

    // torch.randn(n, dtype=T) into out[0, n).
    template <scalar T>
    void randn(T* out, std::size_t n) {
        static_assert(!std::is_const_v<T>, "diffuse: randn writes through out");
        if (n == 0) return;
        detail::require(out != nullptr, "torch_cpu_generator::randn", "out", "nullptr", "a non-null pointer");
        if (n >= 16) {
            for (std::size_t i = 0; i < n; ++i) out[i] = uniform<T>();
            for (std::size_t i = 0; i + 16 <= n; i += 16) box_muller_16(out + i);
            if (n % 16 != 0) {
                T* tail = out + n - 16;  // redraw the last 16 and transform them again
                for (std::size_t i = 0; i < 16; ++i) tail[i] = uniform<T>();
                box_muller_16(tail);
            }
        } else {
            for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(normal_double());
        }
    }

    template <scalar T>
    [[nodiscard]] std::vector<T> randn(std::size_t n) {
        std::vector<T> v(n);
        randn(v.data(), n);
        return v;
    }

    // Fills a host tensor in its flat (sample-major) order, as torch.randn(x.shape) would.
    template <tensor X>
    void randn(X&& x) {
        auto v = view(std::forward<X>(x));
        using V = decltype(v);
        static_assert(V::space == memory_space::host, "diffuse: torch_cpu_generator fills host tensors only");
        static_assert(!std::is_const_v<typename V::value_type>, "diffuse: randn needs a writable tensor");
        randn(v.data, v.size());
    }

    // One raw MT19937 output (torch's generator.random()).
    std::uint32_t random() { return static_cast<std::uint32_t>(engine_()); }
    // Two outputs as (first << 32) | second (torch's random64()).
    std::uint64_t random64() {
        const std::uint64_t hi = random();
        return (hi << 32) | random();
    }

private:
    template <class T>
    T uniform() {
        if constexpr (std::is_same_v<T, float>) {
            return static_cast<float>(random() & 0xFFFFFFu) * (1.0f / 16777216.0f);
        } else {
            return static_cast<double>(random64() & 0x1FFFFFFFFFFFFFull) * (1.0 / 9007199254740992.0);
        }
    }

    // torch's scalar Box–Muller over 16 uniforms (lanes j and j + 8), in T's precision.
    template <class T>
    static void box_muller_16(T* d) {
        constexpr double two_pi = 6.283185307179586;  // 2.0f * pi<double>
        for (int j = 0; j < 8; ++j) {
            const T u1 = T(1) - d[j];  // [0, 1) -> (0, 1]
            const T u2 = d[j + 8];
            const T radius = std::sqrt(T(-2) * std::log(u1));
            const T theta = static_cast<T>(two_pi * static_cast<double>(u2));
            // X = r cos(theta) * std + mean with std = 1, mean = 0 (the "+ 0" turns -0 into +0 as torch's does).
            d[j] = radius * std::cos(theta) * T(1) + T(0);
            d[j + 8] = radius * std::sin(theta) * T(1) + T(0);
        }
    }

    // torch's double normal_distribution with the cached second value.
    double normal_double() {
        if (next_double_normal_) {
            const double v = *next_double_normal_;
            next_double_normal_.reset();
            return v * 1.0 + 0.0;
        }
        const double u1 = uniform<double>();
        const double u2 = uniform<double>();
        const double r = std::sqrt(-2.0 * std::log1p(-u2));
        const double theta = 2.0 * 3.141592653589793 * u1;
        next_double_normal_ = r * std::sin(theta);
        return r * std::cos(theta) * 1.0 + 0.0;
    }

    std::mt19937 engine_;
    std::uint64_t seed_ = default_seed;
    std::optional<double> next_double_normal_;
};

}  // namespace diffuse
