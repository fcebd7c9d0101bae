#pragma once
// The AVX-512 kernel of the counter-based normal generator (core/random.hpp) for float: the AVX2 kernel's
// stages (core/normal_avx2.hpp) on sixteen lanes, the same operations as normal_at, so the same bits.
//
//   detail::normal_chunk_avx512<B>(z, seed, sample, draw, block)   z[0, 4B) = normals of blocks [block, block + B)
//
// Compiled with __attribute__((target("avx512f"))) in every translation unit, run only when the CPU has
// AVX-512F (core/normal_kernel.hpp). AVX-512F has 512-bit fused multiply-adds of its own, which a compiler
// allowed to contract (GCC's default -ffp-contract=fast in GNU mode) could form from a multiply and an add
// and so change the bits; the arithmetic is therefore written with the explicitly rounded intrinsics
// (_mm512_mul_round_ps, ... with round-to-nearest), which compilers never fuse. The rounding is IEEE's
// default, so each result is the one normal_at computes.
//
// Beyond the AVX2 kernel: sixteen Philox blocks per register, the hi and lo halves of the products gathered
// by masked vpshufd, three-way xors in one vpternlog (Philox: twelve instructions per round for sixteen
// blocks), masked adds for the exponent adjustment of ln and for the block-number carry, mask blends for
// the quadrant. (Blocks in the low halves of 64-bit lanes, packed by vpermt2d at the end, ran at
// 2070 M values/s on Zen 5; sixteen per register at 2290.)

#include <cstddef>
#include <cstdint>

#include "diffuse/core/config.hpp"
#include "diffuse/core/normal_avx2.hpp"
#include "diffuse/core/philox.hpp"

#if DIFFUSE_NORMAL_AVX2
// GCC 12's AVX-512 intrinsics pass a self-initialised "undefined" vector as the pass-through operand, which
// its -Wuninitialized reports in every function they are inlined into (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define DIFFUSE_AVX512_DIAGNOSTIC_PUSHED 1
#endif
namespace diffuse::detail {

#define DIFFUSE_AVX512_INLINE inline __attribute__((always_inline, target("avx512f")))
#define DIFFUSE_AVX512_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

DIFFUSE_AVX512_INLINE __m512 mul512(__m512 a, __m512 b) noexcept { return _mm512_mul_round_ps(a, b, DIFFUSE_AVX512_NEAREST); }
DIFFUSE_AVX512_INLINE __m512 add512(__m512 a, __m512 b) noexcept { return _mm512_add_round_ps(a, b, DIFFUSE_AVX512_NEAREST); }
DIFFUSE_AVX512_INLINE __m512 sub512(__m512 a, __m512 b) noexcept { return _mm512_sub_round_ps(a, b, DIFFUSE_AVX512_NEAREST); }
DIFFUSE_AVX512_INLINE __m512 add_mul512(float a, __m512 z, __m512 b) noexcept {  // a + z·b, two roundings
    return add512(_mm512_set1_ps(a), mul512(z, b));
}
DIFFUSE_AVX512_INLINE __m512i xor3_512(__m512i a, __m512i b, __m512i c) noexcept {
    return _mm512_ternarylogic_epi32(a, b, c, 0x96);
}
// The hi and lo halves of the 32×32→64 products c·m of sixteen 32-bit lanes, from the 64-bit products of
// the even lanes and of the odd lanes (shifted down): each half gathered by one masked vpshufd (as fast here
// as vpmulld for lo, and two multiplies per product instead of three where vpmulld is slow).
DIFFUSE_AVX512_INLINE void mul_hi_lo_avx512(__m512i c, __m512i m, __m512i& hi, __m512i& lo) noexcept {
    const __m512i even = _mm512_mul_epu32(c, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
    hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_DDBB);
    lo = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CCAA);
}

// t = 4·u2 = (w >> 8)·2^-22 from sixteen words (exact; see four_uniform_open1_avx2).
DIFFUSE_AVX512_INLINE __m512 four_uniform_open1_avx512(const std::uint32_t* w) noexcept {
    return mul512(_mm512_cvtepi32_ps(_mm512_srli_epi32(_mm512_load_si512(w), 8)), _mm512_set1_ps(2.3841858e-07f));
}
// Interleaves the 64-bit pairs of x and y per 128-bit lane: (x0 y0) for lo, (x1 y1) for hi.
DIFFUSE_AVX512_INLINE __m512 unpack_pairs_lo_avx512(__m512 x, __m512 y) noexcept {
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
}
DIFFUSE_AVX512_INLINE __m512 unpack_pairs_hi_avx512(__m512 x, __m512 y) noexcept {
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
}

// portable_log on sixteen floats in (0, 1] (see portable_log_avx2).
DIFFUSE_AVX512_INLINE __m512 portable_log_avx512(__m512 x) noexcept {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i mbits = _mm512_ternarylogic_epi32(bits, _mm512_set1_epi32(0x007FFFFF), _mm512_set1_epi32(0x3F800000),
                                                    0xEA);  // (bits & mantissa) | 1.0f
    const __mmask16 big = _mm512_cmp_ps_mask(_mm512_castsi512_ps(mbits), _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    const __m512 m = _mm512_castsi512_ps(_mm512_mask_sub_epi32(mbits, big, mbits, _mm512_set1_epi32(0x00800000)));
    const __m512i biased = _mm512_srli_epi32(bits, 23);
    const __m512i eb = _mm512_or_si512(_mm512_mask_add_epi32(biased, big, biased, _mm512_set1_epi32(1)),
                                       _mm512_set1_epi32(0x4B000000));
    const __m512 e = sub512(_mm512_castsi512_ps(eb), _mm512_set1_ps(8388608.0f + 127.0f));
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 s = _mm512_div_round_ps(sub512(m, one), add512(m, one), DIFFUSE_AVX512_NEAREST);
    const __m512 z = mul512(s, s);
    const __m512 q = add_mul512(
        0.6666667f, z, add_mul512(0.4f, z, add_mul512(0.2857143f, z, add_mul512(0.22222222f, z, _mm512_set1_ps(0.18181819f)))));
    const __m512 lnm = add512(add512(s, s), mul512(mul512(s, z), q));
    return add512(mul512(e, _mm512_set1_ps(0.69311523f)), add512(mul512(e, _mm512_set1_ps(3.1946183e-05f)), lnm));
}

struct sincos_avx512 {
    __m512 sin, cos;
};
// portable_sincos_2pi on sixteen floats, given t = 4u (see portable_sincos_2pi_avx2).
DIFFUSE_AVX512_INLINE sincos_avx512 portable_sincos_2pi_avx512(__m512 t) noexcept {
    const __m512 tq = add512(t, _mm512_set1_ps(12582912.0f));
    const __m512 f = sub512(t, sub512(tq, _mm512_set1_ps(12582912.0f)));
    const __m512i qi = _mm512_castps_si512(tq);
    const __m512 z = mul512(f, f);
    const __m512 s = mul512(
        f, add_mul512(1.5707964f, z,
                      add_mul512(-0.6459641f, z,
                                 add_mul512(0.079692625f, z, add_mul512(-0.004681754f, z, _mm512_set1_ps(0.00016044118f))))));
    const __m512 c = add_mul512(
        1.0f, z,
        add_mul512(-1.2337005f, z,
                   add_mul512(0.2536695f, z,
                              add_mul512(-0.02086348f, z, add_mul512(0.00091926026f, z, _mm512_set1_ps(-2.5202042e-05f))))));
    const __mmask16 odd = _mm512_test_epi32_mask(qi, _mm512_set1_epi32(1));
    const __m512i so = _mm512_castps_si512(_mm512_mask_blend_ps(odd, s, c));
    const __m512i co = _mm512_castps_si512(_mm512_mask_blend_ps(odd, c, s));
    const __m512i b1 = _mm512_slli_epi32(qi, 30), b10 = _mm512_xor_si512(b1, _mm512_slli_epi32(qi, 31));
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    return {_mm512_castsi512_ps(_mm512_ternarylogic_epi32(so, b1, sign, 0x78)),    // so ^ (b1 & sign)
            _mm512_castsi512_ps(_mm512_ternarylogic_epi32(co, b10, sign, 0x78))};  // co ^ (b10 & sign)
}

// The normals of Philox blocks [block, block + B) into z[0, 4B) in element order, bit for bit those of
// normal_at<float>. B is a multiple of 64.
template <std::size_t B>
__attribute__((target("avx512f"))) void normal_chunk_avx512(float* DIFFUSE_RESTRICT z, std::uint64_t seed,
                                                            std::uint64_t sample, std::uint64_t draw,
                                                            std::uint64_t block) noexcept {
    constexpr std::size_t S = 4;  // register sets of sixteen blocks in flight
    static_assert(B % (16 * S) == 0, "diffuse: the AVX-512 normal kernel works on groups of 64 blocks");
    // Stage 1. u1 words (w0 | w2) and u2 words (w1 | w3), in block order.
    alignas(64) std::uint32_t wu1[2 * B], wu2[2 * B];
    {
        const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
        __m512i rk0[10], rk1[10];
        for (unsigned r = 0; r < 10; ++r) {
            rk0[r] = _mm512_set1_epi32(static_cast<int>(k0 + r * philox_w0));
            rk1[r] = _mm512_set1_epi32(static_cast<int>(k1 + r * philox_w1));
        }
        const __m512i m0 = _mm512_set1_epi32(static_cast<int>(philox_m0));
        const __m512i m1 = _mm512_set1_epi32(static_cast<int>(philox_m1));
        // Round 0 where the counter is shared by every block, and word 3, as in normal_chunk_avx2.
        const std::uint64_t p1 = std::uint64_t{philox_m1} * static_cast<std::uint32_t>(sample);
        const __m512i r0_w0 =
            _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(p1 >> 32) ^ static_cast<std::uint32_t>(draw) ^ k0));
        const __m512i r0_w1 = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(p1)));
        const auto sample_hi = static_cast<std::uint32_t>((sample >> 32) & 0x0FFFFFFFu);
        const __m512i key1 = _mm512_set1_epi32(static_cast<int>(k1));
        const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (std::size_t j = 0; j < B; j += 16 * S) {
            __m512i c[S][4];
#pragma GCC unroll 8
            for (std::size_t k = 0; k < S; ++k) {
                const std::uint64_t first = block + j + 16 * k;
                const __m512i first_lo = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first)));
                const __m512i lo = _mm512_add_epi32(first_lo, lanes);  // block mod 2^32 of each lane
                // lanes whose block number carried into bit 32: block >> 32 one higher, + 2^28 in word 3
                // (before the key, as in normal_chunk_avx2)
                const __mmask16 carried = _mm512_cmplt_epu32_mask(lo, first_lo);
                const __m512i word3 = _mm512_set1_epi32(
                    static_cast<int>(sample_hi | static_cast<std::uint32_t>((first >> 32) & 0xF) << 28));
                __m512i hi0, lo0;
                mul_hi_lo_avx512(lo, m0, hi0, lo0);
                c[k][0] = r0_w0;
                c[k][1] = r0_w1;
                c[k][2] = xor3_512(_mm512_mask_add_epi32(word3, carried, word3, _mm512_set1_epi32(1 << 28)), key1, hi0);
                c[k][3] = lo0;
            }
#pragma GCC unroll 10
            for (unsigned r = 1; r < 10; ++r) {
#pragma GCC unroll 8
                for (std::size_t k = 0; k < S; ++k) {
                    __m512i hi0, lo0, hi1, lo1;
                    mul_hi_lo_avx512(c[k][0], m0, hi0, lo0);
                    mul_hi_lo_avx512(c[k][2], m1, hi1, lo1);
                    c[k][0] = xor3_512(c[k][1], rk0[r], hi1);
                    c[k][2] = xor3_512(c[k][3], rk1[r], hi0);
                    c[k][1] = lo1;
                    c[k][3] = lo0;
                }
            }
#pragma GCC unroll 8
            for (std::size_t k = 0; k < S; ++k) {
                const std::size_t at = j + 16 * k;
                _mm512_store_si512(wu1 + at, c[k][0]);
                _mm512_store_si512(wu1 + B + at, c[k][2]);
                _mm512_store_si512(wu2 + at, c[k][1]);
                _mm512_store_si512(wu2 + B + at, c[k][3]);
            }
        }
    }
    // Stage 2. r = sqrt(−2 ln u1), u1 = ((w >> 8) + 1)·2^-24.
    alignas(64) float r[2 * B];
    for (std::size_t p = 0; p < 2 * B; p += 16) {
        const __m512i k = _mm512_srli_epi32(_mm512_load_si512(wu1 + p), 8);
        const __m512 u1 = mul512(_mm512_cvtepi32_ps(_mm512_add_epi32(k, _mm512_set1_epi32(1))), _mm512_set1_ps(5.9604645e-08f));
        _mm512_store_ps(r + p, _mm512_sqrt_round_ps(mul512(_mm512_set1_ps(-2.0f), portable_log_avx512(u1)), DIFFUSE_AVX512_NEAREST));
    }
    // Stage 3. (r cos 2πu2, r sin 2πu2) with t = 4·u2 = (w >> 8)·2^-22; pairs A from (w0, w1), B from (w2, w3).
    for (std::size_t g = 0; g < B; g += 16) {
        const sincos_avx512 a = portable_sincos_2pi_avx512(four_uniform_open1_avx512(wu2 + g));
        const sincos_avx512 b = portable_sincos_2pi_avx512(four_uniform_open1_avx512(wu2 + B + g));
        const __m512 ra = _mm512_load_ps(r + g), rb = _mm512_load_ps(r + B + g);
        const __m512 ca = mul512(ra, a.cos), sa = mul512(ra, a.sin), cb = mul512(rb, b.cos), sb = mul512(rb, b.sin);
        // 128-bit lane L holds blocks 4L..4L+3; each block's four values are (ca, sa, cb, sb).
        const __m512 al = _mm512_unpacklo_ps(ca, sa), ah = _mm512_unpackhi_ps(ca, sa);
        const __m512 bl = _mm512_unpacklo_ps(cb, sb), bh = _mm512_unpackhi_ps(cb, sb);
        const __m512 o0 = unpack_pairs_lo_avx512(al, bl), o1 = unpack_pairs_hi_avx512(al, bl);  // lane L: block 4L, 4L+1
        const __m512 o2 = unpack_pairs_lo_avx512(ah, bh), o3 = unpack_pairs_hi_avx512(ah, bh);  // lane L: 4L+2, 4L+3
        // 4×4 transpose of 128-bit lanes: output vector L = (o0.L, o1.L, o2.L, o3.L) = blocks 4L..4L+3.
        const __m512 t0 = _mm512_shuffle_f32x4(o0, o1, _MM_SHUFFLE(1, 0, 1, 0)), t1 = _mm512_shuffle_f32x4(o2, o3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 t2 = _mm512_shuffle_f32x4(o0, o1, _MM_SHUFFLE(3, 2, 3, 2)), t3 = _mm512_shuffle_f32x4(o2, o3, _MM_SHUFFLE(3, 2, 3, 2));
        float* out = z + 4 * g;
        _mm512_storeu_ps(out, _mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)));
        _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(t2, t3, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(t2, t3, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}

#undef DIFFUSE_AVX512_NEAREST
#undef DIFFUSE_AVX512_INLINE

}  // namespace diffuse::detail
#if defined(DIFFUSE_AVX512_DIAGNOSTIC_PUSHED)
#pragma GCC diagnostic pop
#undef DIFFUSE_AVX512_DIAGNOSTIC_PUSHED
#endif
#endif
