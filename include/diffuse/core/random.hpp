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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "diffuse/core/config.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/normal_kernel.hpp"
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
    // m in [1, 2) from the mantissa; when m > sqrt(2), m / 2 (exponent field - 1, exact) and e + 1, in
    // integer arithmetic: integer selects keep a loop over many x branch-free (GCC will not if-convert
    // a conditional FP operation, as it may trap), so it vectorises.
    const std::uint32_t mbits = (bits & 0x007FFFFFu) | 0x3F800000u;
    const std::uint32_t big = std::bit_cast<float>(mbits) > 1.41421356f ? 1u : 0u;
    const float m = std::bit_cast<float>(mbits - (big << 23));
    // Biased exponent (+ big) placed into the mantissa of 2^23: value 2^23 + biased.
    const float e = std::bit_cast<float>(((bits >> 23) + big) | 0x4B000000u) - (8388608.0f + 127.0f);
    const float f = m - 1.0f;  // exact (Sterbenz)
    const float s = f / (m + 1.0f);
    const float z = s * s;
    const float p = 0.6666667f + z * (0.4f + z * (0.2857143f + z * (0.22222222f + z * 0.18181819f)));
    const float lnm = (s + s) + s * z * p;
    return e * 0.69311523f + (e * 3.1946183e-05f + lnm);
}

DIFFUSE_HD DIFFUSE_ALWAYS_INLINE double portable_log(double x) noexcept {
    const std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
    // As for float.
    const std::uint64_t mbits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    const std::uint64_t big = std::bit_cast<double>(mbits) > 1.4142135623730951 ? 1u : 0u;
    const double m = std::bit_cast<double>(mbits - (big << 52));
    const double e = std::bit_cast<double>(((bits >> 52) + big) | 0x4330000000000000ull) - (4503599627370496.0 + 1023.0);
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
    const float tq = t + 12582912.0f;  // round to nearest (1.5 * 2^23 trick), exact for t < 2^22:
    const float q = tq - 12582912.0f;  // q = round(t), also the low bits of tq's mantissa
    const std::uint32_t qi = std::bit_cast<std::uint32_t>(tq);
    const float f = t - q;
    const float z = f * f;
    const float s =
        f * (1.5707964f + z * (-0.6459641f + z * (0.079692625f + z * (-0.004681754f + z * 0.00016044118f))));
    const float c =
        1.0f + z * (-1.2337005f + z * (0.2536695f + z * (-0.02086348f + z * (0.00091926026f + z * -2.5202042e-05f))));
    // Quadrant q mod 4: swap sin and cos for q = 1, 3; negate sin for q = 2, 3 and cos for q = 1, 2.
    // In integer bit operations (negation = flipping the sign bit), which vectorise well.
    const std::uint32_t sb = std::bit_cast<std::uint32_t>(s), cb = std::bit_cast<std::uint32_t>(c);
    const std::uint32_t swap = 0u - (qi & 1u);
    const std::uint32_t so = sb ^ ((sb ^ cb) & swap), co = sb ^ cb ^ so;
    return {std::bit_cast<float>(so ^ ((qi & 2u) << 30)), std::bit_cast<float>(co ^ (((qi + 1u) & 2u) << 30))};
}

DIFFUSE_HD DIFFUSE_ALWAYS_INLINE sincos_result<double> portable_sincos_2pi(double u) noexcept {
    const double t = 4.0 * u;
    const double tq = t + 6755399441055744.0;  // 1.5 * 2^52, as for float
    const double q = tq - 6755399441055744.0;
    const std::uint64_t qi = std::bit_cast<std::uint64_t>(tq);
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
    const std::uint64_t sb = std::bit_cast<std::uint64_t>(s), cb = std::bit_cast<std::uint64_t>(c);
    const std::uint64_t swap = 0u - (qi & 1u);
    const std::uint64_t so = sb ^ ((sb ^ cb) & swap), co = sb ^ cb ^ so;
    return {std::bit_cast<double>(so ^ ((qi & 2u) << 62)), std::bit_cast<double>(co ^ (((qi + 1u) & 2u) << 62))};
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

// ---------------------------------------------------------------------------------------------
// The vectorised host kernel behind normal_fill: one chunk of normal_chunk_blocks consecutive Philox
// blocks at a time, in four stages over small arrays that stay in L1. Every loop has a fixed trip
// count and works on one element per iteration, so GCC and Clang vectorise the portable mathematics
// at -O2 and -O3 alike; each value goes through exactly the operations of normal_at (same order, no
// reassociation, no contraction), so the bits are the same.
inline constexpr std::size_t normal_chunk_blocks = 64;

// Stage 1: the Philox words of blocks [block, block + B). Word k of block j goes to dst[k][j]. Simd: the
// SSE2 intrinsics (normal_kernel::sse2) rather than scalar philox4x32_10_words (normal_kernel::portable).
template <bool Simd>
DIFFUSE_ALWAYS_INLINE void normal_chunk_words(std::uint32_t* const (&dst)[4], std::uint64_t seed, std::uint64_t sample,
                                              std::uint64_t draw, std::uint64_t block) noexcept {
    constexpr std::size_t B = normal_chunk_blocks;
    const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    const auto d = static_cast<std::uint32_t>(draw), s0 = static_cast<std::uint32_t>(sample);
    const auto s1 = static_cast<std::uint32_t>((sample >> 32) & 0x0FFFFFFFu);
#if defined(__SSE2__)
    if constexpr (Simd) {
        // Two blocks per register, each 32-bit word in the low half of a 64-bit lane: _mm_mul_epu32 then
        // yields the whole 64-bit product, lo in the low half and hi = product >> 32. The high halves
        // carry garbage that _mm_mul_epu32 ignores and the final pack drops. Two register sets (four
        // blocks) per iteration for instruction-level parallelism.
        alignas(16) std::uint64_t c0[B], c3[B];
        for (std::size_t j = 0; j < B; ++j) {
            const std::uint64_t b = block + j;
            c0[j] = static_cast<std::uint32_t>(b);
            c3[j] = s1 | static_cast<std::uint32_t>((b >> 32) & 0xFu) << 28;
        }
        __m128i rk0[10], rk1[10];
        for (int r = 0; r < 10; ++r) {
            rk0[r] = _mm_set1_epi64x(static_cast<std::uint32_t>(k0 + static_cast<std::uint32_t>(r) * philox_w0));
            rk1[r] = _mm_set1_epi64x(static_cast<std::uint32_t>(k1 + static_cast<std::uint32_t>(r) * philox_w1));
        }
        const __m128i m0 = _mm_set1_epi64x(philox_m0), m1 = _mm_set1_epi64x(philox_m1);
        const __m128i cd = _mm_set1_epi64x(d), cs = _mm_set1_epi64x(s0);
        for (std::size_t j = 0; j < B; j += 4) {
            __m128i a0 = _mm_load_si128(reinterpret_cast<const __m128i*>(c0 + j)), a1 = cd, a2 = cs,
                    a3 = _mm_load_si128(reinterpret_cast<const __m128i*>(c3 + j));
            __m128i b0 = _mm_load_si128(reinterpret_cast<const __m128i*>(c0 + j + 2)), b1 = cd, b2 = cs,
                    b3 = _mm_load_si128(reinterpret_cast<const __m128i*>(c3 + j + 2));
            for (int r = 0; r < 10; ++r) {  // philox_round on both sets
                const __m128i pa0 = _mm_mul_epu32(a0, m0), pa1 = _mm_mul_epu32(a2, m1);
                const __m128i pb0 = _mm_mul_epu32(b0, m0), pb1 = _mm_mul_epu32(b2, m1);
                a0 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(pa1, 32), a1), rk0[r]);
                a2 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(pa0, 32), a3), rk1[r]);
                a1 = pa1;
                a3 = pa0;
                b0 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(pb1, 32), b1), rk0[r]);
                b2 = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(pb0, 32), b3), rk1[r]);
                b1 = pb1;
                b3 = pb0;
            }
            // Low halves of (a, b) in block order j, j+1, j+2, j+3.
            const auto pack = [](__m128i lo, __m128i hi) {
                return _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(lo), _mm_castsi128_ps(hi), _MM_SHUFFLE(2, 0, 2, 0)));
            };
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[0] + j), pack(a0, b0));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[1] + j), pack(a1, b1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[2] + j), pack(a2, b2));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[3] + j), pack(a3, b3));
        }
        return;
    } else  // (an else, so that compilers that see the SSE2 branch do not call the loop unreachable)
#endif
    {
        for (std::size_t j = 0; j < B; ++j) {
            const philox4x32_block w = normal_block_words(seed, sample, draw, block + j);
            dst[0][j] = w.w0;
            dst[1][j] = w.w1;
            dst[2][j] = w.w2;
            dst[3][j] = w.w3;
        }
    }
    (void)k0, (void)k1, (void)d, (void)s0, (void)s1;
}

// Square roots of x[0, n), n a multiple of 4. IEEE 754 sqrt is correctly rounded, so the SSE2
// instructions give the bits of std::sqrt; they are spelled out because std::sqrt may set errno,
// which keeps compilers from vectorising it without -fno-math-errno.
template <class T, std::size_t n>
DIFFUSE_ALWAYS_INLINE void sqrt_array(T* DIFFUSE_RESTRICT x) noexcept {
#if defined(__SSE2__)
    if constexpr (std::is_same_v<T, float>) {
        for (std::size_t i = 0; i < n; i += 4) _mm_store_ps(x + i, _mm_sqrt_ps(_mm_load_ps(x + i)));
    } else {
        for (std::size_t i = 0; i < n; i += 2) _mm_store_pd(x + i, _mm_sqrt_pd(_mm_load_pd(x + i)));
    }
#else
    for (std::size_t i = 0; i < n; ++i) x[i] = std::sqrt(x[i]);
#endif
}

// The normals of blocks [block, block + B) into z[0, B * per), in element order.
// Pairs: float has 2B pairs, pair p < B from words (w0, w1) of block p (elements 4p, 4p+1) and pair
// B + p from (w2, w3) (elements 4p+2, 4p+3); double has B pairs, pair p from (w0, w1 | w2, w3) of
// block p (elements 2p, 2p+1).
template <class T, bool Simd>
void normal_chunk(T* DIFFUSE_RESTRICT z, std::uint64_t seed, std::uint64_t sample, std::uint64_t draw,
                  std::uint64_t block) noexcept {
    constexpr std::size_t B = normal_chunk_blocks;
    constexpr bool is_float = std::is_same_v<T, float>;
    constexpr std::size_t P = is_float ? 2 * B : B;  // Box–Muller pairs
    // Float: words laid out (w0, w2 | w1, w3) so that u1 and u2 each read one contiguous run of 2B
    // words; double: (w0, w1 | w2, w3), u1 reading (hi, lo) = (w0, w1) and u2 = (w2, w3).
    alignas(64) std::uint32_t w[4 * B];
    if constexpr (is_float) normal_chunk_words<Simd>({w, w + 2 * B, w + B, w + 3 * B}, seed, sample, draw, block);
    else normal_chunk_words<Simd>({w, w + B, w + 2 * B, w + 3 * B}, seed, sample, draw, block);

    // Stage 2: r^2 = -2 ln u1; stage 3: r = sqrt(r^2).
    alignas(64) T r[P];
    for (std::size_t p = 0; p < P; ++p) {
        if constexpr (is_float) r[p] = T(-2) * portable_log(uniform_open0(w[p]));
        else r[p] = T(-2) * portable_log(uniform_open0(w[p], w[B + p]));
    }
    sqrt_array<T, P>(r);

    // Stage 4: (r cos 2 pi u2, r sin 2 pi u2).
    alignas(64) T zc[P], zs[P];
    for (std::size_t p = 0; p < P; ++p) {
        T u2;
        if constexpr (is_float) u2 = uniform_open1(w[2 * B + p]);
        else u2 = uniform_open1(w[2 * B + p], w[3 * B + p]);
        const sincos_result<T> sc = portable_sincos_2pi(u2);
        zc[p] = r[p] * sc.cos;
        zs[p] = r[p] * sc.sin;
    }
    // Element order.
    if constexpr (is_float) {
        for (std::size_t p = 0; p < B; ++p) {
            z[4 * p] = zc[p];
            z[4 * p + 1] = zs[p];
            z[4 * p + 2] = zc[B + p];
            z[4 * p + 3] = zs[B + p];
        }
    } else {
        for (std::size_t p = 0; p < B; ++p) {
            z[2 * p] = zc[p];
            z[2 * p + 1] = zs[p];
        }
    }
}

}  // namespace detail

namespace detail {

// The chunk kernel of the active normal_kernel (core/normal_kernel.hpp); all give the same bits.
template <class T>
using normal_chunk_fn = void (*)(T*, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t);
template <class T>
[[nodiscard]] inline normal_chunk_fn<T> active_normal_chunk() noexcept {
    const normal_kernel k = active_normal_kernel();
#if DIFFUSE_NORMAL_AVX2
    if constexpr (std::is_same_v<T, float>) {
        if (k == normal_kernel::avx512) return &normal_chunk_avx512<normal_chunk_blocks>;
        if (k == normal_kernel::avx2) return &normal_chunk_avx2<normal_chunk_blocks>;
    }
#endif
    return k == normal_kernel::portable ? &normal_chunk<T, false> : &normal_chunk<T, true>;
}

// normal_fill from a block boundary (first_element % per == 0) on: whole chunks straight into out, the
// last partial chunk through a local buffer, a tail shorter than two blocks one by one. Out of line
// (and so out of the caller's view), as GCC's -Warray-bounds otherwise misjudges the partial-chunk copy
// for small caller arrays.
template <class T>
[[gnu::noinline]] void normal_fill_blocks(T* out, std::size_t count, std::uint64_t seed, std::uint64_t sample,
                                          std::uint64_t draw, std::uint64_t first_element) noexcept {
    constexpr std::uint64_t per = normals_per_block<T>;
    constexpr std::size_t chunk = normal_chunk_blocks * per;  // values per chunk
    const normal_chunk_fn<T> normal_chunk = active_normal_chunk<T>();
    alignas(64) T z[chunk];
    std::uint64_t e = first_element;
    for (std::size_t i = 0; i < count;) {
        const std::size_t n = count - i < chunk ? count - i : chunk;
        if (n == chunk) {
            normal_chunk(out + i, seed, sample, draw, e / per);
        } else if (n < 2 * per) {
            for (std::size_t k = 0; k < n; ++k) out[i + k] = normal_at<T>(seed, sample, draw, e + k);
        } else {
            normal_chunk(z, seed, sample, draw, e / per);
            for (std::size_t k = 0; k < n; ++k) out[i + k] = z[k];
        }
        i += n;
        e += n;
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
    for (; i < count && e % per != 0; ++i, ++e) out[i] = normal_at<T>(seed, sample, draw, e);  // to a block boundary
    if (i < count) detail::normal_fill_blocks<T>(out + i, count - i, seed, sample, draw, e);
}

}  // namespace diffuse
