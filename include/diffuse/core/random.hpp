#pragma once
// The counter-based normal generator: the noise value of element `element` of sample `sample` at
// draw `draw` under `seed` is a pure function of those four numbers. It does not depend on batch
// composition, on how a tensor is split across calls, threads or processes, or on the device.
//
//   normal_at<T>(seed, sample, draw, element)                    one value
//   normal_fill<T>(out, count, seed, sample, draw, first_element)  out[i] = normal_at(..., first_element + i)
//
// Mapping onto Philox4x32-10 (core/philox.hpp; Salmon et al. 2011):
//   key      = (seed mod 2^32, seed / 2^32)                         the whole 64-bit seed
//   block    = element / 4 (float) or element / 2 (double)          one Philox call per block
//   counter  = (block mod 2^32, draw, sample mod 2^32, (sample / 2^32) | (block / 2^32) << 28)
// The map (sample, draw, block) -> counter is injective on the accepted ranges, so distinct
// (sample, draw, element-block) triples never share Philox output under one seed:
//   element < 2^36  (so block < 2^36 and block / 2^32 fits the top 4 bits of the last word)
//   draw    < 2^32
//   sample  < 2^60  (sample / 2^32 fits the low 28 bits of the last word)
// Host code throws diffuse::error for values outside these ranges; device code (no exceptions)
// masks them, which is defined behaviour but aliases streams.
//
// Uniforms, open at 0 so that log never sees 0 (Box & Muller 1958 need u1 in (0, 1]):
//   float : u1 = (floor(w / 2^8) + 1) * 2^-24 in (0, 1],  u2 = floor(w' / 2^8) * 2^-24 in [0, 1)
//   double: u1 = 2 - (1 + k * 2^-52) in [2^-52, 1],       u2 = (1 + k' * 2^-52) - 1 in [0, 1)
//           with k = the 52 high bits of two words (w0, w1), k' likewise from (w2, w3).
// Box–Muller (Box & Muller, Ann. Math. Statist. 29, 1958):
//   r = sqrt(-2 ln u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2)
// float: words (w0, w1) give elements 4b, 4b+1 and (w2, w3) give 4b+2, 4b+3.
// double: (w0, w1, w2, w3) give elements 2b, 2b+1.
//
// Portable mathematics: ln and sincos(2 pi u) below use only +, -, *, / and sqrt, all correctly
// rounded in IEEE 754 on the host and in CUDA (default -prec-div/-prec-sqrt), and no libm, so any
// conforming implementation produces the same bits as long as the compiler does not contract a*b+c
// into fma (GCC/Clang on x86-64 without -mfma do not; build device code with --fmad=false for
// bit-identity). Measured accuracy against long double libm over 2e6 generator uniforms
// (tests/noise/test_random.cpp):
//   float : log <= 1.64 ulp, sin/cos(2 pi u) <= 1.71 ulp (where |value| > 1e-3; 8.8e-11 absolute near 0)
//   double: log relative error <= 2.3e-16, sin/cos(2 pi u) <= 1.6e-16 absolute.

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "diffuse/core/config.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/philox.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

// Accepted ranges of the counter mapping (exclusive upper bounds).
inline constexpr std::uint64_t normal_element_limit = std::uint64_t{1} << 36;
inline constexpr std::uint64_t normal_draw_limit = std::uint64_t{1} << 32;
inline constexpr std::uint64_t normal_sample_limit = std::uint64_t{1} << 60;

namespace detail {

// ---------------------------------------------------------------------------------------------
// Portable natural logarithm for positive, normal, finite x (our callers pass x in (0, 1]).
// x = 2^e * m with m in (sqrt(1/2), sqrt(2)];  s = (m - 1) / (m + 1);
// ln m = 2 atanh(s) = 2 s + s z (2/3 + 2/5 z + 2/7 z^2 + ...), z = s^2 <= 0.0295 (Taylor series);
// ln x = e ln2_hi + (e ln2_lo + ln m) with ln2_hi short enough that e ln2_hi is exact.
// Truncation: float keeps z^5 (relative 2e-9), double keeps z^10 (relative 2.3e-17).
// The exponent is extracted as a floating value (bit trick 2^p + e - 2^p), which vectorises
// without integer/float conversions.
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE float portable_log(float x) noexcept {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
    // Biased exponent placed into the mantissa of 2^23: value 2^23 + biased.
    float e = std::bit_cast<float>((bits >> 23) | 0x4B000000u) - (8388608.0f + 127.0f);
    float m = std::bit_cast<float>((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
    const bool big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    const float f = m - 1.0f;  // exact (Sterbenz)
    const float s = f / (m + 1.0f);
    const float z = s * s;
    const float p = 0.6666667f + z * (0.4f + z * (0.2857143f + z * (0.22222222f + z * 0.18181819f)));
    const float lnm = (s + s) + s * z * p;
    return e * 0.69311523f + (e * 3.1946183e-05f + lnm);
}

DIFFUSE_HD DIFFUSE_ALWAYS_INLINE double portable_log(double x) noexcept {
    const std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
    double e = std::bit_cast<double>((bits >> 52) | 0x4330000000000000ull) - (4503599627370496.0 + 1023.0);
    double m = std::bit_cast<double>((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
    const bool big = m > 1.4142135623730951;
    m = big ? m * 0.5 : m;
    e = big ? e + 1.0 : e;
    const double f = m - 1.0;
    const double s = f / (m + 1.0);
    const double z = s * s;
    const double p =
        0.6666666666666666 +
        z * (0.4 +
             z * (0.2857142857142857 +
                  z * (0.2222222222222222 +
                       z * (0.18181818181818182 +
                            z * (0.15384615384615385 +
                                 z * (0.13333333333333333 +
                                      z * (0.11764705882352941 +
                                           z * (0.10526315789473684 + z * 0.09523809523809523))))))));
    const double lnm = (s + s) + s * z * p;
    return e * 0.6931467056274414 + (e * 4.7493250390316726e-07 + lnm);
}

// ---------------------------------------------------------------------------------------------
// Portable sin(2 pi u) and cos(2 pi u) for u in [0, 1).
// Exact range reduction: t = 4u, q = nearest integer of t (0..4), f = t - q in [-1/2, 1/2] (both exact),
// so 2 pi u = q pi/2 + x with x = f pi/2 in [-pi/4, pi/4]. Taylor polynomials in f:
//   sin(pi f / 2) = sum_k (-1)^k (pi/2)^(2k+1) / (2k+1)! f^(2k+1)
//   cos(pi f / 2) = sum_k (-1)^k (pi/2)^(2k) / (2k)! f^(2k)
// float keeps k <= 4 (sin) and k <= 5 (cos), double k <= 8 for both (truncation < 1e-17).
// Then rotate by the quadrant q mod 4.
template <class T>
struct sincos_result {
    T sin, cos;
};

DIFFUSE_HD DIFFUSE_ALWAYS_INLINE sincos_result<float> portable_sincos_2pi(float u) noexcept {
    const float t = 4.0f * u;
    const float q = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 trick), exact for t < 2^22
    const float f = t - q;
    const float z = f * f;
    const float s =
        f * (1.5707964f + z * (-0.6459641f + z * (0.079692625f + z * (-0.004681754f + z * 0.00016044118f))));
    const float c =
        1.0f + z * (-1.2337005f + z * (0.2536695f + z * (-0.02086348f + z * (0.00091926026f + z * -2.5202042e-05f))));
    const bool swap = (q == 1.0f) | (q == 3.0f);
    const bool sin_neg = (q == 2.0f) | (q == 3.0f);
    const bool cos_neg = (q == 1.0f) | (q == 2.0f);
    const float so = swap ? c : s;
    const float co = swap ? s : c;
    return {sin_neg ? -so : so, cos_neg ? -co : co};
}

DIFFUSE_HD DIFFUSE_ALWAYS_INLINE sincos_result<double> portable_sincos_2pi(double u) noexcept {
    const double t = 4.0 * u;
    const double q = (t + 6755399441055744.0) - 6755399441055744.0;  // 1.5 * 2^52
    const double f = t - q;
    const double z = f * f;
    const double s =
        f * (1.5707963267948966 +
             z * (-0.6459640975062463 +
                  z * (0.07969262624616705 +
                       z * (-0.004681754135318688 +
                            z * (0.00016044118478735983 +
                                 z * (-3.598843235212085e-06 +
                                      z * (5.692172921967927e-08 +
                                           z * (-6.688035109811468e-10 + z * 6.0669357311061955e-12))))))));
    const double c =
        1.0 + z * (-1.2337005501361697 +
                   z * (0.25366950790104803 +
                        z * (-0.02086348076335296 +
                             z * (0.0009192602748394266 +
                                  z * (-2.5202042373060607e-05 +
                                       z * (4.710874778818172e-07 +
                                            z * (-6.386603083791852e-09 + z * 6.565963114979473e-11)))))));
    const bool swap = (q == 1.0) | (q == 3.0);
    const bool sin_neg = (q == 2.0) | (q == 3.0);
    const bool cos_neg = (q == 1.0) | (q == 2.0);
    const double so = swap ? c : s;
    const double co = swap ? s : c;
    return {sin_neg ? -so : so, cos_neg ? -co : co};
}

// ---------------------------------------------------------------------------------------------
// Uniforms from Philox words (see the header comment).
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE float uniform_open0(std::uint32_t w) noexcept {  // (0, 1]
    return static_cast<float>(static_cast<std::int32_t>(w >> 8) + 1) * 5.9604645e-08f;
}
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE float uniform_open1(std::uint32_t w) noexcept {  // [0, 1)
    return static_cast<float>(static_cast<std::int32_t>(w >> 8)) * 5.9604645e-08f;
}
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE double one_plus_52(std::uint32_t hi, std::uint32_t lo) noexcept {  // [1, 2)
    const std::uint64_t k = (static_cast<std::uint64_t>(hi) << 20) | (lo >> 12);
    return std::bit_cast<double>(k | 0x3FF0000000000000ull);
}
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE double uniform_open0(std::uint32_t hi, std::uint32_t lo) noexcept {  // (0, 1]
    return 2.0 - one_plus_52(hi, lo);
}
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE double uniform_open1(std::uint32_t hi, std::uint32_t lo) noexcept {  // [0, 1)
    return one_plus_52(hi, lo) - 1.0;
}

// Box–Muller radius r = sqrt(-2 ln u1).
template <class T>
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE T box_muller_radius(T u1) noexcept {
    return std::sqrt(T(-2) * portable_log(u1));
}

template <class T>
inline constexpr unsigned normals_per_block = std::is_same_v<T, float> ? 4u : 2u;

// The Philox output of one block of (seed, sample, draw).
DIFFUSE_HD DIFFUSE_ALWAYS_INLINE philox4x32_block normal_block_words(std::uint64_t seed, std::uint64_t sample,
                                                                     std::uint64_t draw,
                                                                     std::uint64_t block) noexcept {
    const auto c3 = static_cast<std::uint32_t>(((sample >> 32) & 0x0FFFFFFFu) | ((block >> 32) & 0xFu) << 28);
    return philox4x32_10_words(static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(draw),
                               static_cast<std::uint32_t>(sample), c3, static_cast<std::uint32_t>(seed),
                               static_cast<std::uint32_t>(seed >> 32));
}

inline void check_normal_args(const char* where, std::uint64_t sample, std::uint64_t draw, std::uint64_t first,
                              std::uint64_t count) {
    require(sample < normal_sample_limit, where, "sample", sample, "[0, 2^60)");
    require(draw < normal_draw_limit, where, "draw", draw, "[0, 2^32)");
    require(first < normal_element_limit, where, "element", first, "[0, 2^36)");
    require(count <= normal_element_limit - first, where, "first_element + count", first + count, "[0, 2^36]");
}

}  // namespace detail

// Standard normal value of element `element` of sample `sample` at draw `draw` under `seed`.
// Throws diffuse::error (host) when sample >= 2^60, draw >= 2^32 or element >= 2^36.
template <scalar T>
DIFFUSE_HD T normal_at(std::uint64_t seed, std::uint64_t sample, std::uint64_t draw, std::uint64_t element) {
#if !defined(__CUDA_ARCH__)
    detail::check_normal_args("normal_at", sample, draw, element, 0);
#endif
    using V = std::remove_const_t<T>;
    constexpr unsigned per = detail::normals_per_block<V>;
    const philox4x32_block w = detail::normal_block_words(seed, sample, draw, element / per);
    const unsigned lane = static_cast<unsigned>(element % per);
    V u1, u2;
    if constexpr (std::is_same_v<V, float>) {
        const bool second = lane >= 2;
        u1 = detail::uniform_open0(second ? w.w2 : w.w0);
        u2 = detail::uniform_open1(second ? w.w3 : w.w1);
    } else {
        u1 = detail::uniform_open0(w.w0, w.w1);
        u2 = detail::uniform_open1(w.w2, w.w3);
    }
    const V r = detail::box_muller_radius(u1);
    const detail::sincos_result<V> sc = detail::portable_sincos_2pi(u2);
    return (lane & 1u) ? r * sc.sin : r * sc.cos;
}

namespace detail {

// Full blocks [block, block + nb) written to out[0, nb * per). Simple loops over small arrays so the
// compiler vectorises Philox, the logarithm and the sine/cosine separately.
template <class T>
void normal_blocks(T* DIFFUSE_RESTRICT out, std::size_t nb, std::uint64_t seed, std::uint64_t sample,
                   std::uint64_t draw, std::uint64_t block) {
    constexpr std::size_t chunk = 128;  // blocks per pass: 2 KiB of words, stays in L1
    constexpr std::size_t pairs_per_block = normals_per_block<T> / 2;
    alignas(64) std::uint32_t w0[chunk], w1[chunk], w2[chunk], w3[chunk];
    alignas(64) T u1[chunk * pairs_per_block], u2[chunk * pairs_per_block];
    const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    const auto d = static_cast<std::uint32_t>(draw), s0 = static_cast<std::uint32_t>(sample);
    const auto s1 = static_cast<std::uint32_t>((sample >> 32) & 0x0FFFFFFFu);
    while (nb > 0) {
        const std::size_t n = nb < chunk ? nb : chunk;
        for (std::size_t j = 0; j < n; ++j) {
            const std::uint64_t b = block + j;
            std::uint32_t c0 = static_cast<std::uint32_t>(b), c1 = d, c2 = s0,
                          c3 = s1 | static_cast<std::uint32_t>((b >> 32) & 0xFu) << 28;
            std::uint32_t a0 = k0, a1 = k1;
            for (int r = 0; r < 10; ++r) {
                philox_round(c0, c1, c2, c3, a0, a1);
                a0 += philox_w0;
                a1 += philox_w1;
            }
            w0[j] = c0;
            w1[j] = c1;
            w2[j] = c2;
            w3[j] = c3;
        }
        std::size_t np;
        if constexpr (std::is_same_v<T, float>) {
            // pair 2j from (w0, w1), pair 2j+1 from (w2, w3)
            for (std::size_t j = 0; j < n; ++j) {
                u1[2 * j] = uniform_open0(w0[j]);
                u2[2 * j] = uniform_open1(w1[j]);
                u1[2 * j + 1] = uniform_open0(w2[j]);
                u2[2 * j + 1] = uniform_open1(w3[j]);
            }
            np = 2 * n;
        } else {
            for (std::size_t j = 0; j < n; ++j) {
                u1[j] = uniform_open0(w0[j], w1[j]);
                u2[j] = uniform_open1(w2[j], w3[j]);
            }
            np = n;
        }
        for (std::size_t m = 0; m < np; ++m) u1[m] = box_muller_radius(u1[m]);
        for (std::size_t m = 0; m < np; ++m) {
            const sincos_result<T> sc = portable_sincos_2pi(u2[m]);
            out[2 * m] = u1[m] * sc.cos;
            out[2 * m + 1] = u1[m] * sc.sin;
        }
        out += 2 * np;
        block += n;
        nb -= n;
    }
}

}  // namespace detail

// out[i] = normal_at<T>(seed, sample, draw, first_element + i) for i in [0, count), bit for bit.
// Throws diffuse::error when sample >= 2^60, draw >= 2^32 or first_element + count > 2^36.
template <scalar T>
void normal_fill(T* out, std::size_t count, std::uint64_t seed, std::uint64_t sample, std::uint64_t draw,
                 std::uint64_t first_element) {
    static_assert(!std::is_const_v<T>, "diffuse: normal_fill writes through out");
    detail::check_normal_args("normal_fill", sample, draw, first_element, count);
    if (count == 0) return;
    detail::require(out != nullptr, "normal_fill", "out", "nullptr", "a non-null pointer when count > 0");
    constexpr std::uint64_t per = detail::normals_per_block<T>;
    std::size_t i = 0;
    std::uint64_t e = first_element;
    for (; i < count && e % per != 0; ++i, ++e) out[i] = normal_at<T>(seed, sample, draw, e);
    const std::size_t nb = (count - i) / per;
    if (nb > 0) {
        detail::normal_blocks<T>(out + i, nb, seed, sample, draw, e / per);
        i += nb * per;
        e += nb * per;
    }
    for (; i < count; ++i, ++e) out[i] = normal_at<T>(seed, sample, draw, e);
}

}  // namespace diffuse
