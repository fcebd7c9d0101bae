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
// torch has two float32 kernels for n >= 16, both reproduced here bit for bit (torch_kernel):
//   portable: the scalar kernel above, with the host libm's logf/sinf/cosf where torch calls them
//             (the kernel of non-x86 builds and of ATEN_CPU_CAPABILITY=default);
//   avx2:     the kernel x86 builds dispatch to on AVX2 and AVX-512 CPUs. It computes
//             theta = (2 pi)_float * u2 in float and uses Cephes-style single-precision polynomials
//             for ln and sin/cos (Moshier, "Methods and Programs for Mathematical Functions", 1989,
//             as vectorised by the AVX "mathfun" routines), whose multiply-adds the compiler fused
//             into fma; emulated below lane by lane with std::fma at exactly those places.
// The two differ by up to ~1.6e-6 absolute (see docs/noise.md). float64 and n < 16 use one kernel.
// The default is avx2 on x86-64 and portable elsewhere, as torch's own dispatch would choose on a
// CPU with AVX2.

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <type_traits>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/randn_forms.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

// Which of torch's float32 randn kernels (n >= 16) to reproduce.
enum class torch_kernel {
    portable,  // scalar kernel: non-x86 builds, or ATEN_CPU_CAPABILITY=default
    avx2,      // x86 builds on AVX2 / AVX-512 CPUs
#if defined(__x86_64__) || defined(_M_X64)
    native = avx2
#else
    native = portable
#endif
};

namespace detail {

// Cephes single-precision ln for x in (0, 1] as in torch's AVX2 kernel: x = 2^e m, m in [0.5, 1),
// folded to [sqrt(1/2), sqrt(2)) - 1; ln(1 + t) = t - t^2/2 + t^3 P(t) with P of degree 8;
// e ln2 in two parts (0.693359375 and -2.12194440e-4). fma where torch's compiled kernel has one.
inline float torch_avx2_log(float x) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
    const auto ie = static_cast<std::int32_t>(bits >> 23) - 0x7f;
    float m = std::bit_cast<float>((bits & ~0x7f800000u) | 0x3f000000u);  // [0.5, 1)
    float e = static_cast<float>(ie) + 1.0f;
    const bool low = m < 0.707106781186547524f;
    const float add = low ? m : 0.0f;
    m = m - 1.0f;
    e = e - (low ? 1.0f : 0.0f);
    m = m + add;  // t = 2m - 1 when m < sqrt(1/2), else m - 1
    const float z = m * m;
    float y = 7.0376836292E-2f;
    y = std::fma(y, m, -1.1514610310E-1f);
    y = std::fma(y, m, 1.1676998740E-1f);
    y = std::fma(y, m, -1.2420140846E-1f);
    y = std::fma(y, m, 1.4249322787E-1f);
    y = std::fma(y, m, -1.6668057665E-1f);
    y = std::fma(y, m, 2.0000714765E-1f);
    y = std::fma(y, m, -2.4999993993E-1f);
    y = std::fma(y, m, 3.3333331174E-1f);
    y = y * m;
    y = std::fma(y, z, e * -2.12194440e-4f);
    y = y - z * 0.5f;  // exact product
    m = m + y;
    return m + e * 0.693359375f;  // exact product
}

// Cephes single-precision sin and cos of x >= 0 as in torch's AVX2 kernel: j = even integer nearest
// above trunc(4x/pi), x - j pi/4 in three parts (DP1 + DP2 + DP3 = pi/4), polynomials on [-pi/4, pi/4],
// quadrant swap and signs from j.
inline void torch_avx2_sincos(float x, float& s, float& c) {
    const auto j = (static_cast<std::int32_t>(x * 1.27323954473516f) + 1) & ~1;
    const float y = static_cast<float>(j);
    const std::uint32_t sign_sin = static_cast<std::uint32_t>(j & 4) << 29;
    const std::uint32_t sign_cos = (~static_cast<std::uint32_t>(j - 2) & 4u) << 29;
    const bool direct = (j & 2) == 0;
    x = std::fma(y, -0.78515625f, x);
    x = std::fma(y, -2.4187564849853515625e-4f, x);
    x = std::fma(y, -3.77489497744594108e-8f, x);
    const float z = x * x;
    float yc = 2.443315711809948E-005f;
    yc = std::fma(yc, z, -1.388731625493765E-003f);
    yc = std::fma(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = std::fma(yc, z, -(z * 0.5f));  // cos x = 1 - z/2 + z^2 Q(z)
    yc = yc + 1.0f;
    float ys = -1.9515295891E-4f;
    ys = std::fma(ys, z, 8.3321608736E-3f);
    ys = std::fma(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = std::fma(ys, x, x);  // sin x = x + x z P(z)
    const float so = direct ? ys : yc, co = direct ? yc : ys;
    s = std::bit_cast<float>(std::bit_cast<std::uint32_t>(so) ^ sign_sin);
    c = std::bit_cast<float>(std::bit_cast<std::uint32_t>(co) ^ sign_cos);
}

}  // namespace detail

class torch_cpu_generator : public detail::randn_forms<torch_cpu_generator> {
public:
    // torch's default CPU seed (used when no seed is given there) is 67280421310721.
    static constexpr std::uint64_t default_seed = 67280421310721ull;

    explicit torch_cpu_generator(std::uint64_t seed = default_seed, torch_kernel kernel = torch_kernel::native)
        : kernel_(kernel) {
        manual_seed(seed);
    }

    [[nodiscard]] torch_kernel kernel() const noexcept { return kernel_; }
    void set_kernel(torch_kernel k) noexcept { kernel_ = k; }

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

    using detail::randn_forms<torch_cpu_generator>::randn;  // randn<T>(n) and randn(tensor)

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

    template <class T>
    void box_muller_16(T* d) const {
        if constexpr (std::is_same_v<T, float>) {
            if (kernel_ == torch_kernel::avx2) return box_muller_16_avx2(d);
        }
        box_muller_16_portable(d);
    }

    // torch's AVX2 float kernel, lane by lane: theta = (2 pi)_float u2 in float, Cephes ln and sincos,
    // X = fma(r cos theta, std, mean) with std = 1, mean = 0.
    static void box_muller_16_avx2(float* d) {
        for (int j = 0; j < 8; ++j) {
            const float u1 = 1.0f - d[j];
            const float u2 = d[j + 8];
            const float radius = std::sqrt(-2.0f * detail::torch_avx2_log(u1));
            const float theta = 6.2831855f * u2;  // (float)(2.0f * pi<double>)
            float s, c;
            detail::torch_avx2_sincos(theta, s, c);
            d[j] = std::fma(radius * c, 1.0f, 0.0f);
            d[j + 8] = std::fma(radius * s, 1.0f, 0.0f);
        }
    }

    // torch's scalar Box–Muller over 16 uniforms (lanes j and j + 8), in T's precision.
    template <class T>
    static void box_muller_16_portable(T* d) {
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

    torch_kernel kernel_ = torch_kernel::native;
    std::mt19937 engine_;
    std::uint64_t seed_ = default_seed;
    std::optional<double> next_double_normal_;
};

}  // namespace diffuse
