#pragma once
// The operand precisions of the device GEMMs (cuda/gemm.hpp's device_gemm_ex, the device U-Net): float32,
// TF32, bfloat16 and IEEE half, each with float accumulation, and the float ↔ 16-bit conversions behind them —
// our own DIFFUSE_HD functions, so the host-run build (DIFFUSE_CUDA_ON_HOST) needs no CUDA header and runs the
// same conversions as the device.
//
//   precision  operand storage          value as the product sees it                 significand bits
//   fp32       float                    x                                            24
//   tf32       float                    x rounded to 10 fraction bits (tf32_round)   11
//   bf16       std::uint16_t (bits)     the top half of x's float bits, rounded      8
//   fp16       std::uint16_t (bits)     IEEE binary16 (5 exponent bits, 10 fraction)  11
//
// Rounding is to nearest, ties to even, as CUDA's __float2bfloat16_rn / __float2half_rn: a float above the
// largest finite value by half an ulp or more becomes ±Inf (bf16: ≥ 0x7F7F8000's magnitude; fp16: |x| ≥ 65520),
// ±Inf stays ±Inf, every NaN becomes the canonical NaN 0x7FFF (sign dropped, as CUDA does), float subnormals
// round into bf16's subnormals (same exponent range), and fp16's subnormals (|x| < 2⁻¹⁴, step 2⁻²⁴) are
// formed exactly (|x| ≤ 2⁻²⁵ rounds to ±0). The back conversions are exact (every 16-bit value is a float; bf16
// is the top half of the float, NaN payload included; an fp16 NaN becomes 0x7FFFFFFF as in CUDA). Checked
// against CUDA's host conversions (__float2bfloat16_rn, __float2half_rn) over all 2³² floats and
// (__bfloat162float, __half2float) over all 2¹⁶ patterns: the same bits everywhere.
// TF32 is the float pattern with its 13 low fraction bits rounded off (nearest even; NaN/Inf kept): the value a
// tensor core multiplies when cuBLAS runs with CUBLAS_COMPUTE_32F_FAST_TF32 — up to the last TF32 bit, since
// the hardware's own rounding of float operands is not specified to be round-to-nearest (the host-run check is
// a tolerance, not bits).

#include <cstdint>
#include <string>

#include "diffuse/core/config.hpp"
#include "diffuse/core/error.hpp"

#if !defined(__CUDA_ARCH__)
#include <bit>
#endif

namespace diffuse {

// The precision of a device GEMM's operands (A and B); C, α, β and the accumulation are float in every case.
enum class device_precision : unsigned char { fp32, tf32, bf16, fp16 };

[[nodiscard]] inline const char* precision_name(device_precision p) {
    switch (p) {
        case device_precision::fp32: return "fp32";
        case device_precision::tf32: return "tf32";
        case device_precision::bf16: return "bf16";
        case device_precision::fp16: return "fp16";
    }
    return "an unknown precision";
}

// Fraction bits of the operand's significand (p: relative rounding error ≤ 2^-(p+1)).
[[nodiscard]] constexpr int fraction_bits(device_precision p) {
    return p == device_precision::fp32 ? 23 : p == device_precision::bf16 ? 7 : 10;
}

namespace detail {

[[nodiscard]] DIFFUSE_HD inline std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    return std::bit_cast<std::uint32_t>(f);
#endif
}
[[nodiscard]] DIFFUSE_HD inline float float_from_bits(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    return std::bit_cast<float>(u);
#endif
}

}  // namespace detail

// float → bfloat16 bits, round to nearest even: (u + 0x7FFF + bit 16 of u) >> 16 (a carry into the exponent
// is the next binade, or Inf past the largest finite value); NaN → 0x7FFF.
[[nodiscard]] DIFFUSE_HD inline std::uint16_t float_to_bf16_bits(float f) {
    const std::uint32_t u = detail::float_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFFu;
    return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
[[nodiscard]] DIFFUSE_HD inline float bf16_bits_to_float(std::uint16_t h) { return detail::float_from_bits(std::uint32_t(h) << 16); }

// float → IEEE binary16 bits, round to nearest even. Normal range (2⁻¹⁴ ≤ |x| < 65520): the exponent rebiased
// (127 → 15: subtract 112 << 23) and the 13 low fraction bits rounded off; below 2⁻¹⁴ the significand (with its
// implicit bit) shifted to units of 2⁻²⁴ and rounded; NaN → 0x7FFF.
[[nodiscard]] DIFFUSE_HD inline std::uint16_t float_to_fp16_bits(float f) {
    const std::uint32_t u = detail::float_bits(f), a = u & 0x7FFFFFFFu, sign = (u >> 16) & 0x8000u;
    if (a > 0x7F800000u) return 0x7FFFu;
    if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // |x| ≥ 65520 (and Inf): Inf
    auto round_shift = [](std::uint32_t v, unsigned shift) {                 // v / 2^shift, nearest even
        const std::uint32_t q = v >> shift, rem = v & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        return rem > half || (rem == half && (q & 1u)) ? q + 1u : q;
    };
    if (a >= 0x38800000u) return static_cast<std::uint16_t>(sign | round_shift(a - 0x38000000u, 13));
    const unsigned exponent = a >> 23;  // biased; |x| = significand·2^(exponent − 150)
    if (exponent < 102) return static_cast<std::uint16_t>(sign);  // |x| < 2⁻²⁵ (float subnormals included): ±0
    const std::uint32_t significand = (a & 0x7FFFFFu) | 0x800000u;
    return static_cast<std::uint16_t>(sign | round_shift(significand, 126u - exponent));  // units of 2⁻²⁴
}
// IEEE binary16 bits → float, exact: subnormals m·2⁻²⁴, normals rebiased, ±Inf widened, NaN → 0x7FFFFFFF (as
// CUDA's __half2float).
[[nodiscard]] DIFFUSE_HD inline float fp16_bits_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) {
        const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // m·2⁻²⁴, exact (m < 2¹⁰)
        return detail::float_from_bits(detail::float_bits(v) | sign);
    }
    if (e == 0x1F) return detail::float_from_bits(m != 0 ? 0x7FFFFFFFu : sign | 0x7F800000u);
    return detail::float_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

// x with its significand rounded to TF32's 10 fraction bits (nearest even), NaN and ±Inf unchanged.
[[nodiscard]] DIFFUSE_HD inline float tf32_round(float f) {
    const std::uint32_t u = detail::float_bits(f);
    if ((u & 0x7F800000u) == 0x7F800000u) return f;
    return detail::float_from_bits((u + 0xFFFu + ((u >> 13) & 1u)) & ~0x1FFFu);
}

// The operand encodings: storage type, float → storage (what a kernel writes: im2col's columns, converted
// activations, the uploaded weights) and storage → the value the product multiplies (the host GEMM loop's view
// of what the device GEMM receives).
struct fp32_operand {
    using storage = float;
    static constexpr device_precision precision = device_precision::fp32;
    [[nodiscard]] DIFFUSE_HD static float encode(float v) { return v; }
    [[nodiscard]] DIFFUSE_HD static float decode(float v) { return v; }
};
struct tf32_operand {  // float storage: cuBLAS rounds to TF32 inside the product
    using storage = float;
    static constexpr device_precision precision = device_precision::tf32;
    [[nodiscard]] DIFFUSE_HD static float encode(float v) { return v; }
    [[nodiscard]] DIFFUSE_HD static float decode(float v) { return tf32_round(v); }
};
struct bf16_operand {
    using storage = std::uint16_t;
    static constexpr device_precision precision = device_precision::bf16;
    [[nodiscard]] DIFFUSE_HD static std::uint16_t encode(float v) { return float_to_bf16_bits(v); }
    [[nodiscard]] DIFFUSE_HD static float decode(std::uint16_t v) { return bf16_bits_to_float(v); }
};
struct fp16_operand {
    using storage = std::uint16_t;
    static constexpr device_precision precision = device_precision::fp16;
    [[nodiscard]] DIFFUSE_HD static std::uint16_t encode(float v) { return float_to_fp16_bits(v); }
    [[nodiscard]] DIFFUSE_HD static float decode(std::uint16_t v) { return fp16_bits_to_float(v); }
};

namespace detail {
// f(the operand encoding of p) — fp32_operand{}, tf32_operand{}, bf16_operand{} or fp16_operand{}; a value of
// p outside the enumeration is a diffuse::error naming `where`.
template <class F>
decltype(auto) with_operand(device_precision p, const char* where, F&& f) {
    switch (p) {
        case device_precision::fp32: return f(fp32_operand{});
        case device_precision::tf32: return f(tf32_operand{});
        case device_precision::bf16: return f(bf16_operand{});
        case device_precision::fp16: return f(fp16_operand{});
    }
    fail(where, "unknown device_precision value " + std::to_string(int(p)) + " (fp32, tf32, bf16 or fp16)");
}
}  // namespace detail

}  // namespace diffuse
