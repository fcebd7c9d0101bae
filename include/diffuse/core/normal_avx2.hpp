#pragma once
// The AVX2 kernel of the counter-based normal generator (core/random.hpp) for float: the same
// operations as normal_at on eight lanes at a time, so the same bits.
//
//   detail::normal_chunk_avx2<B>(z, seed, sample, draw, block)   z[0, 4B) = normals of blocks [block, block + B)
//
// Compiled with __attribute__((target("avx2"))) in every translation unit (no global -mavx2), and only
// run when the CPU has AVX2 (core/normal_kernel.hpp chooses). FMA is deliberately not enabled: every
// a·b + c stays a rounded multiply followed by a rounded add, as in normal_at, which is what keeps the
// bits of the portable kernels (and of a CUDA build with --fmad=false).
//
// Two stages over arrays that stay in L1, each a short loop whose iterations are independent, so the
// out-of-order core overlaps several iterations and hides the latency of the long dependency chains
// (ten Philox rounds, the division and the polynomials):
//   1. Philox4x32-10 words, eight blocks per register (32-bit lanes in block order). The hi halves of the
//      32×32→64 products come from two _mm256_mul_epu32 (even lanes, and odd lanes shifted down) and one
//      blend, the lo halves from one _mm256_mullo_epi32; four register sets (32 blocks) per iteration,
//      whose ten dependent rounds interleave. Round 0 is formed once where the counter words are shared
//      by every block. (Blocks in the low halves of 64-bit lanes, four per register, took two more
//      instructions per value in shifts, xors on half-empty registers, spills and the final pack: 930 →
//      1050 M values/s on Zen 5.)
//   2. r = sqrt(−2 ln u1) (ln = portable_log on eight lanes) and (r cos 2πu2, r sin 2πu2)
//      (portable_sincos_2pi on eight lanes, t = 4·u2 formed directly, the quadrant by blends), then the
//      interleave into element order (4b, 4b+1 from words (w0, w1), 4b+2, 4b+3 from (w2, w3)) and
//      256-bit stores.
// (A build with global -mfma and GCC's default -ffp-contract=fast could contract these multiply-adds as it
// could the portable code's; docs/noise.md.)

#include <cstddef>
#include <cstdint>

#include "diffuse/core/config.hpp"
#include "diffuse/core/philox.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#define DIFFUSE_NORMAL_AVX2 1
#include <immintrin.h>
#else
#define DIFFUSE_NORMAL_AVX2 0
#endif

#if DIFFUSE_NORMAL_AVX2
namespace diffuse::detail {

#define DIFFUSE_AVX2_INLINE inline __attribute__((always_inline, target("avx2")))

// a + z·b, two roundings (no fma).
DIFFUSE_AVX2_INLINE __m256 add_mul_avx2(float a, __m256 z, __m256 b) noexcept {
    return _mm256_add_ps(_mm256_set1_ps(a), _mm256_mul_ps(z, b));
}

// portable_log (core/random.hpp) on eight floats in (0, 1]: the same operations in the same order.
DIFFUSE_AVX2_INLINE __m256 portable_log_avx2(__m256 x) noexcept {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i mbits = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)),
                                          _mm256_set1_epi32(0x3F800000));
    // big = all ones where m > √2: m / 2 by an exponent-field decrement, e + 1 by subtracting −1.
    const __m256i big =
        _mm256_castps_si256(_mm256_cmp_ps(_mm256_castsi256_ps(mbits), _mm256_set1_ps(1.41421356f), _CMP_GT_OQ));
    const __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(mbits, _mm256_and_si256(big, _mm256_set1_epi32(0x00800000))));
    const __m256 e = _mm256_sub_ps(
        _mm256_castsi256_ps(_mm256_or_si256(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), big), _mm256_set1_epi32(0x4B000000))),
        _mm256_set1_ps(8388608.0f + 127.0f));
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 s = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
    const __m256 z = _mm256_mul_ps(s, s);
    const __m256 q = add_mul_avx2(
        0.6666667f, z, add_mul_avx2(0.4f, z, add_mul_avx2(0.2857143f, z, add_mul_avx2(0.22222222f, z, _mm256_set1_ps(0.18181819f)))));
    const __m256 lnm = _mm256_add_ps(_mm256_add_ps(s, s), _mm256_mul_ps(_mm256_mul_ps(s, z), q));
    return _mm256_add_ps(_mm256_mul_ps(e, _mm256_set1_ps(0.69311523f)),
                         _mm256_add_ps(_mm256_mul_ps(e, _mm256_set1_ps(3.1946183e-05f)), lnm));
}

// portable_sincos_2pi (core/random.hpp) on eight floats, given t = 4u (u in [0, 1); the caller forms t
// exactly): q = round(t), f = t − q; Taylor polynomials of sin(πf/2), cos(πf/2); quadrant rotation.
struct sincos_avx2 {
    __m256 sin, cos;
};
DIFFUSE_AVX2_INLINE sincos_avx2 portable_sincos_2pi_avx2(__m256 t) noexcept {
    const __m256 tq = _mm256_add_ps(t, _mm256_set1_ps(12582912.0f));  // 1.5·2^23: round to nearest
    const __m256 f = _mm256_sub_ps(t, _mm256_sub_ps(tq, _mm256_set1_ps(12582912.0f)));
    const __m256i qi = _mm256_castps_si256(tq);  // q in the low mantissa bits
    const __m256 z = _mm256_mul_ps(f, f);
    const __m256 s = _mm256_mul_ps(
        f, add_mul_avx2(1.5707964f, z,
                        add_mul_avx2(-0.6459641f, z,
                                     add_mul_avx2(0.079692625f, z,
                                                  add_mul_avx2(-0.004681754f, z, _mm256_set1_ps(0.00016044118f))))));
    const __m256 c = add_mul_avx2(
        1.0f, z,
        add_mul_avx2(-1.2337005f, z,
                     add_mul_avx2(0.2536695f, z,
                                  add_mul_avx2(-0.02086348f, z,
                                               add_mul_avx2(0.00091926026f, z, _mm256_set1_ps(-2.5202042e-05f))))));
    // Quadrant q mod 4 (bits b1 b0 of qi): swap for odd q (b0), negate sin for q = 2, 3 (b1) and cos for
    // q = 1, 2 (b1 xor b0). Shifted to the sign position: b0 is the blend mask, the signs are sign-bit xors.
    const __m256i b0 = _mm256_slli_epi32(qi, 31), b1 = _mm256_slli_epi32(qi, 30);
    const __m256 odd = _mm256_castsi256_ps(b0);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
    const __m256 so = _mm256_blendv_ps(s, c, odd), co = _mm256_blendv_ps(c, s, odd);
    return {_mm256_xor_ps(so, _mm256_and_ps(_mm256_castsi256_ps(b1), sign)),
            _mm256_xor_ps(co, _mm256_and_ps(_mm256_castsi256_ps(_mm256_xor_si256(b1, b0)), sign))};
}

// From words: u1 = ((w >> 8) + 1)·2^-24 in (0, 1], and t = 4·u2 = (w >> 8)·2^-22 (u2 = (w >> 8)·2^-24 in
// [0, 1)); every step is exact, so t has the bits of normal_at's 4·u2.
DIFFUSE_AVX2_INLINE __m256 uniform_open0_avx2(const std::uint32_t* w) noexcept {
    const __m256i k = _mm256_srli_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(w)), 8);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(k, _mm256_set1_epi32(1))), _mm256_set1_ps(5.9604645e-08f));
}
DIFFUSE_AVX2_INLINE __m256 four_uniform_open1_avx2(const std::uint32_t* w) noexcept {
    const __m256i k = _mm256_srli_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(w)), 8);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(k), _mm256_set1_ps(2.3841858e-07f));
}

// Interleaves the 64-bit pairs of x and y: (x0 y0 | x2 y2) for lo, (x1 y1 | x3 y3) for hi.
DIFFUSE_AVX2_INLINE __m256 unpack_pairs_lo_avx2(__m256 x, __m256 y) noexcept {
    return _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)));
}
DIFFUSE_AVX2_INLINE __m256 unpack_pairs_hi_avx2(__m256 x, __m256 y) noexcept {
    return _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)));
}

// The hi and lo halves of the 32×32→64 products c·m of eight 32-bit lanes.
DIFFUSE_AVX2_INLINE void mul_hi_lo_avx2(__m256i c, __m256i m, __m256i& hi, __m256i& lo) noexcept {
    const __m256i even = _mm256_mul_epu32(c, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m);
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_mullo_epi32(c, m);
}

// The normals of Philox blocks [block, block + B) into z[0, 4B) in element order, bit for bit those of
// normal_at<float>. B is a multiple of 32.
template <std::size_t B>
__attribute__((target("avx2"))) void normal_chunk_avx2(float* DIFFUSE_RESTRICT z, std::uint64_t seed,
                                                       std::uint64_t sample, std::uint64_t draw,
                                                       std::uint64_t block) noexcept {
    // S register sets of eight blocks each in flight, so that the ten dependent rounds of one set overlap
    // with the others'.
    constexpr std::size_t S = 4;
    static_assert(B % (8 * S) == 0, "diffuse: the AVX2 normal kernel works on groups of 32 blocks");
    // Stage 1. u1 words (w0 | w2) and u2 words (w1 | w3) in block order.
    alignas(32) std::uint32_t wu1[2 * B], wu2[2 * B];
    {
        const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
        __m256i rk0[10], rk1[10];
        for (unsigned r = 0; r < 10; ++r) {
            rk0[r] = _mm256_set1_epi32(static_cast<int>(k0 + r * philox_w0));
            rk1[r] = _mm256_set1_epi32(static_cast<int>(k1 + r * philox_w1));
        }
        const __m256i m0 = _mm256_set1_epi32(static_cast<int>(philox_m0));
        const __m256i m1 = _mm256_set1_epi32(static_cast<int>(philox_m1));
        // counter = (block mod 2^32, draw, sample mod 2^32, word 3), word 3 = (sample >> 32) | (block >> 32)
        // << 28 (two disjoint bit fields). Round 0 with words 1 and 2 the same for every block: its
        // product m1·c2, and so the new words 0 and 1, are formed once (the values philox_round gives).
        const std::uint64_t p1 = std::uint64_t{philox_m1} * static_cast<std::uint32_t>(sample);
        const __m256i r0_w0 =
            _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(p1 >> 32) ^ static_cast<std::uint32_t>(draw) ^ k0));
        const __m256i r0_w1 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(p1)));
        const auto sample_hi = static_cast<std::uint32_t>((sample >> 32) & 0x0FFFFFFFu);
        const __m256i key1 = _mm256_set1_epi32(static_cast<int>(k1));
        const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
        for (std::size_t j = 0; j < B; j += 8 * S) {
            __m256i c[S][4];
#pragma GCC unroll 8
            for (std::size_t k = 0; k < S; ++k) {
                const std::uint64_t first = block + j + 8 * k;
                const __m256i first_lo = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first)));
                const __m256i lo = _mm256_add_epi32(first_lo, lanes);  // block mod 2^32 of each lane
                // Lanes whose block number carried into bit 32 (lo < first_lo unsigned) have block >> 32
                // one higher: + 2^28 in word 3 (mod 2^32, as the field is word 3's top four bits; before the
                // key, whose top bits would otherwise take the carry).
                const __m256i carried = _mm256_cmpgt_epi32(_mm256_xor_si256(first_lo, sign), _mm256_xor_si256(lo, sign));
                const __m256i word3 = _mm256_sub_epi32(
                    _mm256_set1_epi32(static_cast<int>(sample_hi | static_cast<std::uint32_t>((first >> 32) & 0xF) << 28)),
                    _mm256_slli_epi32(carried, 28));
                __m256i hi0, lo0;
                mul_hi_lo_avx2(lo, m0, hi0, lo0);  // round 0: (hi0, lo0) = m0·(block mod 2^32)
                c[k][0] = r0_w0;
                c[k][1] = r0_w1;
                c[k][2] = _mm256_xor_si256(_mm256_xor_si256(word3, key1), hi0);
                c[k][3] = lo0;
            }
#pragma GCC unroll 10
            for (unsigned r = 1; r < 10; ++r) {  // philox_round on every set
#pragma GCC unroll 8
                for (std::size_t k = 0; k < S; ++k) {
                    __m256i hi0, lo0, hi1, lo1;
                    mul_hi_lo_avx2(c[k][0], m0, hi0, lo0);
                    mul_hi_lo_avx2(c[k][2], m1, hi1, lo1);
                    c[k][0] = _mm256_xor_si256(_mm256_xor_si256(c[k][1], rk0[r]), hi1);
                    c[k][2] = _mm256_xor_si256(_mm256_xor_si256(c[k][3], rk1[r]), hi0);
                    c[k][1] = lo1;
                    c[k][3] = lo0;
                }
            }
#pragma GCC unroll 8
            for (std::size_t k = 0; k < S; ++k) {
                const std::size_t at = j + 8 * k;
                _mm256_store_si256(reinterpret_cast<__m256i*>(wu1 + at), c[k][0]);
                _mm256_store_si256(reinterpret_cast<__m256i*>(wu1 + B + at), c[k][2]);
                _mm256_store_si256(reinterpret_cast<__m256i*>(wu2 + at), c[k][1]);
                _mm256_store_si256(reinterpret_cast<__m256i*>(wu2 + B + at), c[k][3]);
            }
        }
    }
    // Stage 2. r = sqrt(−2 ln u1), u1 = ((w >> 8) + 1)·2^-24, and (r cos 2πu2, r sin 2πu2), u2 = (w >> 8)·2^-24;
    // pairs A from (w0, w1), B from (w2, w3).
    const __m256 minus_two = _mm256_set1_ps(-2.0f);
    for (std::size_t g = 0; g < B; g += 8) {
        const __m256 ra = _mm256_sqrt_ps(_mm256_mul_ps(minus_two, portable_log_avx2(uniform_open0_avx2(wu1 + g))));
        const __m256 rb = _mm256_sqrt_ps(_mm256_mul_ps(minus_two, portable_log_avx2(uniform_open0_avx2(wu1 + B + g))));
        const sincos_avx2 a = portable_sincos_2pi_avx2(four_uniform_open1_avx2(wu2 + g));
        const sincos_avx2 b = portable_sincos_2pi_avx2(four_uniform_open1_avx2(wu2 + B + g));
        const __m256 ca = _mm256_mul_ps(ra, a.cos), sa = _mm256_mul_ps(ra, a.sin);
        const __m256 cb = _mm256_mul_ps(rb, b.cos), sb = _mm256_mul_ps(rb, b.sin);
        // Per 128-bit half, lanes hold blocks (0 1 2 3) and (4 5 6 7); each block's four values are
        // (ca, sa, cb, sb).
        const __m256 al = _mm256_unpacklo_ps(ca, sa), ah = _mm256_unpackhi_ps(ca, sa);
        const __m256 bl = _mm256_unpacklo_ps(cb, sb), bh = _mm256_unpackhi_ps(cb, sb);
        const __m256 o0 = unpack_pairs_lo_avx2(al, bl);  // blocks 0 | 4
        const __m256 o1 = unpack_pairs_hi_avx2(al, bl);  // blocks 1 | 5
        const __m256 o2 = unpack_pairs_lo_avx2(ah, bh);  // blocks 2 | 6
        const __m256 o3 = unpack_pairs_hi_avx2(ah, bh);  // blocks 3 | 7
        float* out = z + 4 * g;
        _mm256_storeu_ps(out, _mm256_permute2f128_ps(o0, o1, 0x20));
        _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(o2, o3, 0x20));
        _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(o0, o1, 0x31));
        _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(o2, o3, 0x31));
    }
}

#undef DIFFUSE_AVX2_INLINE

}  // namespace diffuse::detail
#endif
