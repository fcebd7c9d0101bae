#pragma once
// The device GEMM (cuda/gemm.hpp) and the im2col body (cuda/nn_kernels.hpp) against their definitions, shared by
// test_cuda_host (the host loop of the GEMM contract, DIFFUSE_CUDA_ON_HOST) and test_cuda_gpu (cuBLAS):
//   GEMM   C(i, j) = α·Σ_p op(A)(i, p)·op(B)(p, j) + β·C(i, j), X(i, j) = X[i + j·ldX] (column-major), written out
//          here in double over random shapes (empty ones included), all four op combinations, leading
//          dimensions above the minimum, α, β (β = 0 with NaN in C: C is not read), batches with random strides
//          (a zero stride too: one A for every batch); the padding rows m ≤ i < ldc of C must stay untouched.
//          Bound: |device − reference| ≤ 1e-5·(α·Σ_p |a·b| + |β·c|) + 1e-30, float rounding of k ≤ 40 products
//          (≤ 40·2⁻²⁴ ≈ 2.4e-6 of that scale); a wrong index gives order 1.
//   mixed  device_gemm_ex in tf32 / bf16 / fp16 over the same random shapes: A, B encoded (bf16/fp16 bits; tf32:
//          float), the reference in double over the operands as the product sees them (the decoded 16-bit values,
//          exact; TF32: each operand rounded to nearest even). Bound: bf16/fp16 the same 1e-5 of the scale (float
//          accumulation of exact products); tf32 2⁻⁹ + 1e-5 of it: the tensor cores' rounding of a float operand may
//          differ from nearest-even by one TF32 ulp (2⁻¹⁰ relative, truncation), two operands a product. That the lower
//          precision is applied: the largest error against the float operands' product over all rounds is at
//          least 2⁻ᵖ/32 of the scale (one operand's rounding is up to 2⁻⁽ᵖ⁺¹⁾; p = 10 for tf32/fp16, 7 for bf16;
//          tf32 in the host loop only: cuBLAS may run a small TF32 product in plain FP32). Every batch-1 problem
//          also through device_gemm_bias (cuBLASLt's bias epilogue) with a random bias, the reference + bias[i].
//   conversions (cuda/reduced_precision.hpp) float → bf16 / fp16 / TF32 round to nearest even, from the
//          definition: the result r is the format's value nearest x, a tie going to the even pattern, ±Inf
//          exactly when |x| reaches the midpoint above the largest finite value, NaN → 0x7FFF (TF32: NaN kept);
//          over every 16-bit pattern's value, its midpoints with its neighbours and one float ulp either side
//          of them, and every 4093rd float pattern; the back conversions over all 2¹⁶ patterns against
//          m·2^(e−bias) written out; named edge cases (numpy's float16 and torch's bfloat16 casts give the same
//          values, NaN aside: CUDA's canonical 0x7FFF); and the device kernel convert_body gives the host
//          function's bits.
//   im2col cols[r·K + (ky·k + kx)·Cin + ci] = x'[b, oy·s + ky − top, ox·s + kx − left, ci] (zero outside), written
//          out here from a zero-padded copy of the image; exact (the same float operations).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "device_checks.hpp"
#include "diffuse/cuda/gemm.hpp"
#include "diffuse/cuda/nn_kernels.hpp"
#include "diffuse/cuda/reduced_precision.hpp"

namespace diffuse_device_checks {

// One random GEMM problem: ops, sizes (empty ones too), leading dimensions above the minimum, batch strides
// (a zero stride for A sometimes), α and β (β = 0 with NaN in C, which must not leak), the operands as floats.
struct gemm_problem {
    diffuse::gemm_op op_a, op_b;
    bool ta, tb;
    std::size_t m, n, k, batch, lda, ldb, ldc, stride_a, stride_b, stride_c;
    float alpha, beta;
    std::vector<float> a, b, c;
    [[nodiscard]] std::string name() const {
        return std::string(ta ? "T" : "N") + (tb ? "T" : "N") + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
               " k=" + std::to_string(k) + " lda=" + std::to_string(lda) + " ldb=" + std::to_string(ldb) +
               " ldc=" + std::to_string(ldc) + " batch=" + std::to_string(batch) + " beta=" + std::to_string(beta);
    }
};

inline gemm_problem random_gemm_problem(std::mt19937_64& rng, int round) {
    using diffuse::gemm_op;
    std::uniform_int_distribution<std::size_t> dim(0, 9), kdim(0, 40), extra(0, 3), batches(1, 3), pick(0, 3);
    std::uniform_real_distribution<double> coef(-2.0, 2.0);
    gemm_problem g;
    g.op_a = pick(rng) % 2 ? gemm_op::transpose : gemm_op::none;
    g.op_b = pick(rng) % 2 ? gemm_op::transpose : gemm_op::none;
    g.m = dim(rng), g.n = dim(rng), g.k = kdim(rng), g.batch = round % 2 ? batches(rng) : 1;
    g.ta = g.op_a == gemm_op::transpose, g.tb = g.op_b == gemm_op::transpose;
    const std::size_t a_rows = g.ta ? g.k : g.m, a_cols = g.ta ? g.m : g.k, b_rows = g.tb ? g.n : g.k, b_cols = g.tb ? g.k : g.n;
    g.lda = std::max<std::size_t>(a_rows, 1) + extra(rng), g.ldb = std::max<std::size_t>(b_rows, 1) + extra(rng),
    g.ldc = std::max<std::size_t>(g.m, 1) + extra(rng);
    const std::size_t size_a = g.lda * a_cols, size_b = g.ldb * b_cols, size_c = g.ldc * g.n;
    g.stride_a = g.batch > 1 && pick(rng) == 0 ? 0 : size_a + extra(rng), g.stride_b = size_b + extra(rng),
    g.stride_c = size_c + extra(rng);
    g.alpha = static_cast<float>(coef(rng)), g.beta = pick(rng) == 0 ? 0.0f : static_cast<float>(coef(rng));
    g.a = random_values<float>(rng, g.stride_a * (g.batch - 1) + size_a + 1);
    g.b = random_values<float>(rng, g.stride_b * (g.batch - 1) + size_b + 1);
    g.c = random_values<float>(rng, g.stride_c * (g.batch - 1) + size_c + 1);
    if (g.beta == 0.0f)
        for (float& v : g.c) v = std::numeric_limits<float>::quiet_NaN();
    return g;
}

// got (the device's C) against C(i, j) = α·Σ_e seen_a(A index)·seen_b(B index) + β·C(i, j) within bound·scale
// (scale: the sum of the terms' magnitudes), and every element outside C unchanged. Returns the largest error
// against the product of the float operands themselves, / scale (how much the operands' rounding shows).
template <class SeenA, class SeenB>
double check_gemm_output(const gemm_problem& g, const std::vector<float>& got, SeenA seen_a, SeenB seen_b, double bound,
                         const std::string& what, log& out, const std::vector<float>* bias = nullptr) {
    double worst = 0.0, applied = 0.0;
    std::vector<bool> written(g.c.size(), false);
    for (std::size_t q = 0; q < g.batch; ++q)
        for (std::size_t j = 0; j < g.n; ++j)
            for (std::size_t i = 0; i < g.m; ++i) {
                double sum = 0.0, exact = 0.0, scale = 0.0;
                for (std::size_t e = 0; e < g.k; ++e) {
                    const std::size_t ia = q * g.stride_a + (g.ta ? e + i * g.lda : i + e * g.lda);
                    const std::size_t ib = q * g.stride_b + (g.tb ? j + e * g.ldb : e + j * g.ldb);
                    sum += seen_a(ia) * seen_b(ib);
                    exact += double(g.a[ia]) * double(g.b[ib]);
                    scale += std::abs(double(g.a[ia]) * double(g.b[ib]));
                }
                const std::size_t at = q * g.stride_c + i + j * g.ldc;
                double expect = double(g.alpha) * sum, expect_exact = double(g.alpha) * exact;
                scale *= std::abs(double(g.alpha));
                if (g.beta != 0.0f) {
                    expect += double(g.beta) * double(g.c[at]);
                    expect_exact += double(g.beta) * double(g.c[at]);
                    scale += std::abs(double(g.beta) * double(g.c[at]));
                }
                if (bias != nullptr) {
                    expect += double((*bias)[i]);
                    expect_exact += double((*bias)[i]);
                    scale += std::abs(double((*bias)[i]));
                }
                written[at] = true;
                const double err = std::abs(double(got[at]) - expect) / (bound * scale + 1e-30);
                worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : std::max(worst, err);
                if (scale > 0) applied = std::max(applied, std::abs(double(got[at]) - expect_exact) / scale);
            }
    out.at_most(what + ": error / (bound x scale)", worst, 1.0);
    std::size_t touched = 0;
    for (std::size_t i = 0; i < g.c.size(); ++i)
        if (!written[i] && std::memcmp(&got[i], &g.c[i], sizeof(float)) != 0) ++touched;
    out.same(what + ": elements outside C changed", 0, touched);
    return applied;
}

inline void check_gemm(std::mt19937_64& rng, log& out, int rounds) {
    for (int round = 0; round < rounds; ++round) {
        const gemm_problem g = random_gemm_problem(rng, round);
        device_buffer<float> da(g.a.size()), db(g.b.size()), dc(g.c.size());
        diffuse::copy(da, g.a);
        diffuse::copy(db, g.b);
        diffuse::copy(dc, g.c);
        if (g.batch == 1 && round % 4 != 1)
            diffuse::device_sgemm(g.op_a, g.op_b, g.m, g.n, g.k, g.alpha, da.data(), g.lda, db.data(), g.ldb, g.beta, dc.data(), g.ldc);
        else
            diffuse::device_sgemm_strided_batched(g.op_a, g.op_b, g.m, g.n, g.k, g.alpha, da.data(), g.lda, g.stride_a, db.data(),
                                                  g.ldb, g.stride_b, g.beta, dc.data(), g.ldc, g.stride_c, g.batch);
        std::vector<float> got(g.c.size());
        diffuse::copy(got, dc);
        const auto a = [&](std::size_t i) { return double(g.a[i]); };
        const auto b = [&](std::size_t i) { return double(g.b[i]); };
        check_gemm_output(g, got, a, b, 1e-5, "gemm " + g.name(), out);
    }
}

#if defined(DIFFUSE_CUDA_ON_HOST)
inline constexpr bool on_host = true;
#else
inline constexpr bool on_host = false;
#endif

inline void check_gemm_ex(std::mt19937_64& rng, log& out, int rounds) {
    const auto run = [&](auto operand) {
        using Operand = decltype(operand);
        using storage = typename Operand::storage;
        const diffuse::device_precision precision = Operand::precision;
        const int p = diffuse::fraction_bits(precision);
        const double bound = precision == diffuse::device_precision::tf32 ? std::ldexp(1.0, -9) + 1e-5 : 1e-5;
        double applied = 0.0;  // the largest |device − product of the float operands| / scale
        std::size_t fused = 0, declined = 0;  // device_gemm_bias problems run / declined by cuBLASLt
        for (int round = 0; round < rounds; ++round) {
            const gemm_problem g = random_gemm_problem(rng, round);
            std::vector<storage> ea(g.a.size()), eb(g.b.size());
            std::transform(g.a.begin(), g.a.end(), ea.begin(), [](float v) { return Operand::encode(v); });
            std::transform(g.b.begin(), g.b.end(), eb.begin(), [](float v) { return Operand::encode(v); });
            device_buffer<storage> da(ea.size()), db(eb.size());
            device_buffer<float> dc(g.c.size());
            constexpr auto to_device = diffuse::detail::copy_direction::host_to_device;
            diffuse::detail::device_copy(da.data(), ea.data(), ea.size() * sizeof(storage), to_device, "gemm_ex check");
            diffuse::detail::device_copy(db.data(), eb.data(), eb.size() * sizeof(storage), to_device, "gemm_ex check");
            diffuse::copy(dc, g.c);
            diffuse::device_gemm_ex(precision, g.op_a, g.op_b, g.m, g.n, g.k, g.alpha, da.data(), g.lda, g.stride_a, db.data(),
                                    g.ldb, g.stride_b, g.beta, dc.data(), g.ldc, g.stride_c, g.batch);
            std::vector<float> got(g.c.size());
            diffuse::copy(got, dc);
            // the operands as the product sees them: decoded 16-bit values; TF32 the float rounded (nearest even)
            const auto a = [&](std::size_t i) { return double(Operand::decode(ea[i])); };
            const auto b = [&](std::size_t i) { return double(Operand::decode(eb[i])); };
            const std::string what = std::string("gemm_ex ") + diffuse::precision_name(precision) + " " + g.name();
            applied = std::max(applied, check_gemm_output(g, got, a, b, bound, what, out));
            if (g.batch == 1) {  // the same product with a bias epilogue (cuBLASLt), when an algorithm exists
                const std::vector<float> bias = random_values<float>(rng, std::max<std::size_t>(g.m, 1));
                device_buffer<float> dbias(bias.size());
                diffuse::copy(dbias, bias);
                diffuse::copy(dc, g.c);
                const bool ran = diffuse::device_gemm_bias(precision, g.op_a, g.op_b, g.m, g.n, g.k, g.alpha, da.data(), g.lda,
                                                           db.data(), g.ldb, g.beta, dc.data(), g.ldc, dbias.data());
                diffuse::copy(got, dc);
                if (ran) {
                    ++fused;
                    check_gemm_output(g, got, a, b, bound, "gemm_bias " + what.substr(8), out, &bias);
                } else {
                    out.same("gemm_bias " + what.substr(8) + ": declined, C untouched", 0,
                             std::memcmp(got.data(), g.c.data(), got.size() * sizeof(float)) == 0 ? 0 : 1);
                    if (g.k > 0 && g.m > 0 && g.n > 0) ++declined;
                }
            }
        }
        // cuBLASLt may decline an odd shape, not the common ones; the host loop runs every one with k > 0
        out.at_most(std::string("gemm_bias ") + diffuse::precision_name(precision) + ": declined non-empty problems of " +
                        std::to_string(fused + declined) + " (host loop: none; cuBLASLt: under a quarter)",
                    double(declined), on_host ? 0.0 : double(fused + declined) / 4);
        // (TF32 on a GPU: CUBLAS_COMPUTE_32F_FAST_TF32 allows tensor cores, it does not promise them for every
        // shape — a small product may run in plain FP32 — so only the host loop's rounding is asserted)
        if (precision != diffuse::device_precision::fp32 && (precision != diffuse::device_precision::tf32 || on_host))
            out.at_most(std::string("gemm_ex ") + diffuse::precision_name(precision) +
                            ": the operands are rounded (2^-p/32 / largest error against the float product)",
                        std::ldexp(1.0, -p) / 32, applied);
    };
    run(diffuse::fp32_operand{});
    run(diffuse::tf32_operand{});
    run(diffuse::bf16_operand{});
    run(diffuse::fp16_operand{});
}

// A 16-bit (or TF32) format for the rounding check: the value of a magnitude pattern, the largest finite one.
struct rounding_format {
    const char* name;
    double (*value)(std::uint32_t magnitude);
    std::uint32_t max_finite, inf;
};
// |x| → the magnitude pattern r of its rounding: r is nearest-even per the definition (see the header).
inline bool rounds_to_nearest_even(const rounding_format& f, double x, std::uint32_t r) {
    const double ax = std::abs(x);
    const double top = f.value(f.max_finite), overflow = top + (top - f.value(f.max_finite - 1)) / 2;  // midpoint to Inf
    if (r == f.inf) return ax >= overflow;
    if (r > f.max_finite) return false;
    const double v = f.value(r);
    const double below = r == 0 ? 0.0 : (f.value(r - 1) + v) / 2, above = r == f.max_finite ? overflow : (v + f.value(r + 1)) / 2;
    const bool even = (r & 1u) == 0;
    if (r == 0) return ax < above || (ax == above && even);
    return (ax > below || (ax == below && even)) && (ax < above || (ax == above && even));
}

inline void check_conversions(log& out) {
    using namespace diffuse;
    const auto bits = [](float v) { return detail::float_bits(v); };
    const auto from_bits = [](std::uint32_t u) { return detail::float_from_bits(u); };
    // back conversions over every pattern against m·2^(e − bias) written out
    std::size_t bf16_wrong = 0, fp16_wrong = 0, bf16_trip = 0, fp16_trip = 0;
    for (std::uint32_t p = 0; p < 0x10000u; ++p) {
        const auto h = static_cast<std::uint16_t>(p);
        const double sign = (p & 0x8000u) ? -1.0 : 1.0;
        const std::uint32_t be = (p >> 7) & 0xFFu, bm = p & 0x7Fu, he = (p >> 10) & 0x1Fu, hm = p & 0x3FFu;
        const double bf = be == 0xFF ? (bm ? NAN : sign * INFINITY)
                          : be == 0  ? sign * std::ldexp(double(bm), -133)
                                     : sign * std::ldexp(double(128 + bm), int(be) - 134);
        const double hf = he == 0x1F ? (hm ? NAN : sign * INFINITY)
                          : he == 0  ? sign * std::ldexp(double(hm), -24)
                                     : sign * std::ldexp(double(1024 + hm), int(he) - 25);
        const float gb = bf16_bits_to_float(h), gh = fp16_bits_to_float(h);
        if (std::isnan(bf) ? !std::isnan(gb) : (double(gb) != bf || std::signbit(gb) != (sign < 0))) ++bf16_wrong;
        if (std::isnan(hf) ? !std::isnan(gh) : (double(gh) != hf || std::signbit(gh) != (sign < 0))) ++fp16_wrong;
        // and back: every value converts to its own pattern; every NaN to 0x7FFF
        if (float_to_bf16_bits(gb) != (std::isnan(bf) ? 0x7FFFu : p)) ++bf16_trip;
        if (float_to_fp16_bits(gh) != (std::isnan(hf) ? 0x7FFFu : p)) ++fp16_trip;
    }
    out.same("bf16 -> float over all patterns: wrong values", 0, bf16_wrong);
    out.same("fp16 -> float over all patterns: wrong values", 0, fp16_wrong);
    out.same("float -> bf16 of every bf16 value: not its pattern", 0, bf16_trip);
    out.same("float -> fp16 of every fp16 value: not its pattern", 0, fp16_trip);

    const rounding_format bf16{"bf16", [](std::uint32_t r) { return double(bf16_bits_to_float(std::uint16_t(r))); }, 0x7F7Fu, 0x7F80u};
    const rounding_format fp16{"fp16", [](std::uint32_t r) { return double(fp16_bits_to_float(std::uint16_t(r))); }, 0x7BFFu, 0x7C00u};
    const rounding_format tf32{"tf32", [](std::uint32_t r) { return double(detail::float_from_bits(r << 13)); }, 0x3FBFFu, 0x3FC00u};
    struct converter {
        const rounding_format* f;
        std::uint32_t (*round)(float);  // the magnitude pattern with the sign bit at bit 15 (tf32: 18)
        unsigned sign_bit;
    };
    const converter converters[] = {
        {&bf16, [](float v) { return std::uint32_t(float_to_bf16_bits(v)); }, 15},
        {&fp16, [](float v) { return std::uint32_t(float_to_fp16_bits(v)); }, 15},
        {&tf32, [](float v) { return detail::float_bits(tf32_round(v)) >> 13; }, 18},
    };
    for (const converter& cv : converters) {
        std::size_t wrong = 0, tested = 0;
        std::string first;
        const auto test = [&](float x) {
            ++tested;
            const std::uint32_t r = cv.round(x), sign = r >> cv.sign_bit, magnitude = r & ((1u << cv.sign_bit) - 1u);
            bool ok;
            if (std::isnan(x)) ok = cv.f == &tf32 ? std::isnan(tf32_round(x)) : r == 0x7FFFu;
            else ok = sign == (std::signbit(x) ? 1u : 0u) && rounds_to_nearest_even(*cv.f, double(x), magnitude);
            if (!ok && wrong++ == 0) first = std::to_string(bits(x)) + " -> " + std::to_string(r);
        };
        const std::uint32_t patterns = cv.f->inf + 1;  // magnitudes 0 … Inf
        for (std::uint32_t m = 0; m < patterns; ++m) {
            const double v = cv.f->value(m);
            const double next = m < cv.f->max_finite ? cv.f->value(m + 1) : v + (v - cv.f->value(m - 1));
            for (const double base : {v, (v + next) / 2}) {  // the value and the midpoint above it (exact in float)
                if (!std::isfinite(base)) continue;
                const float b = static_cast<float>(base);
                for (const float x : {b, std::nextafter(b, 0.0f), std::nextafter(b, INFINITY)}) {
                    test(x);
                    test(-x);
                }
            }
        }
        for (std::uint64_t u = 0; u < (std::uint64_t(1) << 32); u += 4093) test(from_bits(std::uint32_t(u)));
        for (const float x : {INFINITY, -INFINITY, NAN, -NAN, from_bits(0x7F800001u), from_bits(0xFFFFFFFFu)}) test(x);
        out.same(std::string("float -> ") + cv.f->name + ": not rounded to nearest even (of " + std::to_string(tested) +
                     "; first " + first + ")",
                 0, wrong);
    }
    // named cases: numpy's float16 and torch's bfloat16 casts give these (checked), the NaNs aside (CUDA's 0x7FFF)
    struct named { float x; std::uint16_t bf16, fp16; };
    const named cases[] = {
        {1.0f, 0x3F80, 0x3C00}, {-2.0f, 0xC000, 0xC000}, {0.1f, 0x3DCD, 0x2E66}, {1.0f / 3.0f, 0x3EAB, 0x3555},
        {65504.0f, 0x4780, 0x7BFF}, {65519.996f, 0x4780, 0x7BFF}, {65520.0f, 0x4780, 0x7C00}, {-0.0f, 0x8000, 0x8000},
        {5.9604645e-8f, 0x3380, 0x0001}, {2.9802322e-8f, 0x3300, 0x0000}, {2.9802326e-8f, 0x3300, 0x0001},
        {6.1035156e-5f, 0x3880, 0x0400}, {from_bits(0x7F7FFFFFu), 0x7F80, 0x7C00}, {from_bits(0x7F7F7FFFu), 0x7F7F, 0x7C00},
        {from_bits(0x00000001u), 0x0000, 0x0000}, {from_bits(0x00018000u), 0x0002, 0x0000},
        {INFINITY, 0x7F80, 0x7C00}, {-INFINITY, 0xFF80, 0xFC00}, {from_bits(0x7F800001u), 0x7FFF, 0x7FFF},
        {from_bits(0xFFC00000u), 0x7FFF, 0x7FFF},
    };
    std::size_t named_wrong = 0;
    for (const named& c : cases)
        if (float_to_bf16_bits(c.x) != c.bf16 || float_to_fp16_bits(c.x) != c.fp16) ++named_wrong;
    out.same("float -> bf16 / fp16 named cases: wrong", 0, named_wrong);
    out.same("tf32_round(1 + 2^-11) (a tie: to even 1)", bits(1.0f), bits(tf32_round(1.0f + std::ldexp(1.0f, -11))));
    out.same("tf32_round(1 + 3·2^-11) (a tie: to even 1 + 2^-9)", bits(1.0f + std::ldexp(1.0f, -9)),
             bits(tf32_round(1.0f + 3 * std::ldexp(1.0f, -11))));

    // the device kernel: convert_body's bits are the host function's
    std::vector<float> xs;
    for (std::uint64_t u = 0; u < (std::uint64_t(1) << 32); u += 65521) xs.push_back(from_bits(std::uint32_t(u)));
    device_buffer<float> dx(xs.size());
    device_buffer<std::uint16_t> dy(xs.size());
    diffuse::copy(dx, xs);
    const auto on_device = [&](auto operand) {
        using Operand = decltype(operand);
        detail::launch(xs.size(), nn::device_kernels::convert_body<Operand>{dx.data(), dy.data()}, "conversion check");
        std::vector<std::uint16_t> got(xs.size()), expect(xs.size());
        detail::device_copy(got.data(), dy.data(), got.size() * sizeof(std::uint16_t), detail::copy_direction::device_to_host,
                            "conversion check");
        std::transform(xs.begin(), xs.end(), expect.begin(), [](float v) { return Operand::encode(v); });
        out.same_bits(std::string("convert_body ") + precision_name(Operand::precision) + " on the device", expect, got);
    };
    on_device(bf16_operand{});
    on_device(fp16_operand{});
}

inline void check_im2col(std::mt19937_64& rng, log& out, int rounds) {
    namespace dk = diffuse::nn::device_kernels;
    std::uniform_int_distribution<std::size_t> batches(1, 2), size(1, 7), chans(1, 5), ks(1, 3), strides(1, 2), pads(0, 2),
        coin(0, 1);
    for (int round = 0; round < rounds; ++round) {
        const std::size_t batch = batches(rng), h = size(rng), w = size(rng), cin = chans(rng), k = ks(rng), s = strides(rng);
        const std::size_t top = pads(rng), bottom = pads(rng), left = pads(rng), right = pads(rng);
        if (h + top + bottom < k || w + left + right < k) continue;
        const std::size_t ho = (h + top + bottom - k) / s + 1, wo = (w + left + right - k) / s + 1, K = k * k * cin;
        const std::size_t rows = batch * ho * wo;
        std::uniform_int_distribution<std::size_t> first(0, rows - 1);
        const std::size_t r0 = first(rng), nr = rows - r0;
        const auto x = random_values<float>(rng, batch * h * w * cin);
        const auto coef = random_values<float>(rng, batch * 2 * cin);
        const bool affine = coin(rng) == 1;
        // x' = relu(x·scale + shift) per (sample, channel), zero-padded: the direct definition's image
        const std::size_t hp = h + top + bottom, wp = w + left + right;
        std::vector<float> padded(batch * hp * wp * cin, 0.0f);
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t y = 0; y < h; ++y)
                for (std::size_t xx = 0; xx < w; ++xx)
                    for (std::size_t c = 0; c < cin; ++c) {
                        float v = x[((b * h + y) * w + xx) * cin + c];
                        if (affine) {
                            v = v * coef[b * 2 * cin + c] + coef[b * 2 * cin + cin + c];
                            v = v > 0.0f ? v : 0.0f;
                        }
                        padded[((b * hp + y + top) * wp + xx + left) * cin + c] = v;
                    }
        std::vector<float> expect(nr * K);
        for (std::size_t r = r0; r < rows; ++r) {
            const std::size_t ox = r % wo, oy = (r / wo) % ho, b = r / (wo * ho);
            for (std::size_t ky = 0; ky < k; ++ky)
                for (std::size_t kx = 0; kx < k; ++kx)
                    for (std::size_t c = 0; c < cin; ++c)
                        expect[(r - r0) * K + (ky * k + kx) * cin + c] =
                            padded[((b * hp + oy * s + ky) * wp + ox * s + kx) * cin + c];
        }
        device_buffer<float> dx(x.size()), dcoef(coef.size()), dcols(nr * K);
        diffuse::copy(dx, x);
        diffuse::copy(dcoef, coef);
        dk::affine_input input;
        if (affine) input = {dcoef.data(), dcoef.data() + cin, 2 * cin, diffuse::nn::activation::relu};
        diffuse::detail::launch(nr * K, dk::im2col_body<diffuse::fp32_operand>{dx.data(), dcols.data(), input, r0, h, w, cin, ho, wo, k, s, top, left},
                                "im2col check");
        std::vector<float> got(nr * K);
        diffuse::copy(got, dcols);
        out.same_bits("im2col " + std::to_string(batch) + "x" + std::to_string(h) + "x" + std::to_string(w) + "x" +
                          std::to_string(cin) + " k=" + std::to_string(k) + " s=" + std::to_string(s) + " pad=" +
                          std::to_string(top) + std::to_string(bottom) + std::to_string(left) + std::to_string(right) +
                          " from row " + std::to_string(r0) + (affine ? " affine" : ""),
                      expect, got);
    }
}

}  // namespace diffuse_device_checks
