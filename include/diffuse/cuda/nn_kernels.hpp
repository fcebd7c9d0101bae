#pragma once
// The U-Net's layers as device kernels (float32, NHWC activations) around the GEMMs of cuda/gemm.hpp: each
// is a DIFFUSE_HD body over one output index, launched with the core launcher of cuda/primitives.hpp (a
// grid-stride kernel under nvcc, a host loop under DIFFUSE_CUDA_ON_HOST, so CI runs the same bodies on the
// CPU). The convolutions are im2col (with the group norm + activation prologue applied while forming the
// columns) + one GEMM + the bias/residual epilogue, or a convolution engine's call (cuda/conv_engine.hpp)
// between affine_body (the prologue, into the operand storage) and the epilogue; linear layers one GEMM + the
// epilogue; attention two strided-batched GEMMs around the softmax below. The operations and their order per output are nn/'s
// (conv2d.hpp, group_norm.hpp, attention.hpp, resample.hpp), except the summation order of the long dot
// products (cuBLAS's, or the host loop's, here; the CPU model's blocked GEMM there; a residual that the output
// overwrites is added before the bias, through the GEMM's β) and the exponential (expf here, nn's exp_approx
// there): results agree to float rounding, not to the bit.
// The GEMM operands may be in a lower precision (cuda/reduced_precision.hpp's operand encodings): im2col writes
// its columns, and convert_body / the softmax their outputs, as Operand::storage (float → bf16/fp16 fused into
// the kernel that forms the operand); every other kernel and every activation stays float.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "diffuse/core/config.hpp"
#include "diffuse/cuda/primitives.hpp"
#include "diffuse/cuda/reduced_precision.hpp"
#include "diffuse/nn/activation.hpp"

namespace diffuse::nn::device_kernels {

// act(x) as nn/activation.hpp defines it: silu x·σ(x), mish x·tanh(softplus x), gelu (erf form), relu.
[[nodiscard]] DIFFUSE_HD inline float activate(activation a, float x) {
    switch (a) {
        case activation::silu: return x / (1.0f + ::expf(-x));
        case activation::mish: {
            const float e = ::expf(x > 20.0f ? 20.0f : x), n = e * (e + 2.0f);
            return x > 20.0f ? x : x * n / (n + 2.0f);
        }
        case activation::gelu: return static_cast<float>(0.5 * double(x) * (1.0 + ::erf(double(x) * 0.70710678118654752440)));
        case activation::relu: return x > 0.0f ? x : 0.0f;
        case activation::none: break;
    }
    return x;
}

// The per-channel affine map (+ activation) applied to a convolution's input (a group norm's coefficients):
// x' = act(x·scale[b·ld + c] + shift[b·ld + c]); scale == nullptr: x' = x.
struct affine_input {
    const float* scale = nullptr;
    const float* shift = nullptr;
    std::size_t ld = 0;
    activation act = activation::none;
    [[nodiscard]] DIFFUSE_HD float operator()(float v, std::size_t b, std::size_t c) const {
        return scale ? activate(act, v * scale[b * ld + c] + shift[b * ld + c]) : v;
    }
};

// im2col: the columns of a k×k convolution, cols[r·K + (ky·k + kx)·Cin + ci] = x'[b, oy·s + ky − top, ox·s + kx − left, ci]
// for the output rows r = r0 + ρ, r = (b·Ho + oy)·Wo + ox (ρ < the chunk's rows), K = k·k·Cin; x' = input(x), zero
// outside the image (the padding is zero after the prologue, as conv2d pads its input). The columns' index matches
// conv2d::weight_matrix's rows, so y[r, :] = cols[r, :]·B is the convolution (a GEMM: cuda/gemm.hpp). The columns
// are stored as Operand::encode(x') (fp32_operand: x' itself).
template <class Operand>
struct im2col_body {
    const float* x;
    typename Operand::storage* cols;
    affine_input input;
    std::size_t r0, h, wd, cin, ho, wo, k, stride, top, left;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t ci = i % cin;
        std::size_t t = i / cin;
        const std::size_t kx = t % k;
        t /= k;
        const std::size_t ky = t % k, r = r0 + t / k;
        const std::size_t ox = r % wo, oy = (r / wo) % ho, b = r / (wo * ho);
        const std::size_t iy = oy * stride + ky, ix = ox * stride + kx;  // padded coordinates
        float v = 0.0f;
        if (iy >= top && iy - top < h && ix >= left && ix - left < wd)
            v = input(x[((b * h + (iy - top)) * wd + (ix - left)) * cin + ci], b, ci);
        cols[i] = Operand::encode(v);
    }
};

// The epilogue of a convolution or linear layer over its GEMM's row-major result y[R, N] (rows r of the
// layer's first_row + r, sample (first_row + r) / rows_per_sample):
//   y[r·N + n] = (((s[r·N + n] + bias[n]) + sample_bias[sample·sb_ld + n]) + residual[r·N + n]) / divisor
// each term skipped when null (divisor when 1); s is y itself, or source when set (a convolution engine's result
// kept apart from a residual that is y).
struct bias_epilogue_body {
    float* y = nullptr;
    const float* source = nullptr;
    std::size_t N = 0;
    const float* bias = nullptr;
    const float* sample_bias = nullptr;
    std::size_t sb_ld = 0, rows_per_sample = 1, first_row = 0;
    const float* residual = nullptr;
    float divisor = 1.0f;
    [[nodiscard]] bool needed() const { return source || bias || sample_bias || residual || divisor != 1.0f; }
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t n = i % N, r = i / N;
        float out = source ? source[i] : y[i];
        if (bias) out += bias[n];
        if (sample_bias) out += sample_bias[((first_row + r) / rows_per_sample) * sb_ld + n];
        if (residual) out += residual[i];
        if (divisor != 1.0f) out /= divisor;
        y[i] = out;
    }
};

// Group norm statistics (group_norm.hpp's formula, in double), two passes over fixed pixel blocks:
//   partial[(b·G + g)·nb + blk] = Σ over the block's pixels and the group's channels of x (pass 1) or of
//   (x − μ[b, g])² (pass 2);   then stats[2(b·G + g)] = μ, stats[2(b·G + g) + 1] = 1/√(σ² + ε), the blocks
//   added in block order.
// 32 pixels a block: at batch 1 a 32×32 map with 32 groups is 1024 threads of 32·C/G terms each (256 pixels
// gave 128 threads, and a 16×16 map 32 threads of 2048 dependent additions).
inline constexpr std::size_t norm_pixel_block = 32;
struct group_partial_body {
    const float* x;
    const double* stats;  // null: pass 1 (Σx); else pass 2 (Σ(x − μ)²)
    double* partial;
    std::size_t pixels, C, G, nb;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t blk = i % nb, g = (i / nb) % G, b = i / (nb * G), cpg = C / G;
        const std::size_t p0 = blk * norm_pixel_block, p1 = p0 + norm_pixel_block < pixels ? p0 + norm_pixel_block : pixels;
        const double mean = stats ? stats[2 * (b * G + g)] : 0.0;
        double s = 0.0;
        for (std::size_t p = p0; p < p1; ++p) {
            const float* row = x + (b * pixels + p) * C + g * cpg;
            for (std::size_t c = 0; c < cpg; ++c) {
                const double v = double(row[c]) - mean;
                s += stats ? v * v : v;
            }
        }
        partial[i] = s;
    }
};
struct group_stats_body {
    const double* partial;
    double* stats;
    std::size_t nb;
    double n, eps;
    bool variance;  // false: write μ; true: write 1/√(σ² + ε)
    DIFFUSE_HD void operator()(std::size_t bg) const {
        double s = 0.0;
        for (std::size_t k = 0; k < nb; ++k) s += partial[bg * nb + k];
        if (variance) stats[2 * bg + 1] = 1.0 / ::sqrt(s / n + eps);
        else stats[2 * bg] = s / n;
    }
};
// coef[b·2C + c] = a = rstd·γ[c], coef[b·2C + C + c] = β[c] − μ·a; with the time scale-shift (s, h):
// a·(1 + s), (β − μ·a)·(1 + s) + h (group_norm::coefficients).
struct group_coef_body {
    const double* stats;
    const float* gamma;
    const float* beta;
    const float* scale_shift;  // [batch, 2C] or null
    float* coef;
    std::size_t C, G;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t c = i % C, b = i / C, bg = b * G + c / (C / G);
        const double mean = stats[2 * bg], rstd = stats[2 * bg + 1];
        double ac = rstd * gamma[c], bc = beta[c] - mean * ac;
        if (scale_shift) {
            const double s1 = 1.0 + double(scale_shift[b * 2 * C + c]), sh = scale_shift[b * 2 * C + C + c];
            ac *= s1;
            bc = bc * s1 + sh;
        }
        coef[b * 2 * C + c] = static_cast<float>(ac);
        coef[b * 2 * C + C + c] = static_cast<float>(bc);
    }
};
// y[i] = Operand::encode(input(x[i])) over [batch, pixels, C]: a group norm (+ activation) on its own, or a
// convolution's input for a convolution engine (cuda/conv_engine.hpp) in the operand storage.
template <class Operand>
struct affine_body {
    const float* x;
    typename Operand::storage* y;
    affine_input input;
    std::size_t per_sample, C;
    DIFFUSE_HD void operator()(std::size_t i) const { y[i] = Operand::encode(input(x[i], i / per_sample, i % C)); }
};

// b[c·rows + r] = a[r·cols + c]: a row-major [rows, cols] matrix transposed (conv2d::weight_matrix's [k·k·Cin,
// Cout] into a convolution engine's KRSC [Cout, k·k·Cin]).
template <class T>
struct transpose_body {
    const T* a;
    T* b;
    std::size_t rows, cols;
    DIFFUSE_HD void operator()(std::size_t i) const { b[i] = a[(i % rows) * cols + i / rows]; }
};

// y[i] = Operand::encode(x[i]): float activations as a GEMM's 16-bit operand (a linear layer's input, q/k/v).
template <class Operand>
struct convert_body {
    const float* x;
    typename Operand::storage* y;
    DIFFUSE_HD void operator()(std::size_t i) const { y[i] = Operand::encode(x[i]); }
};

// One row of scores → softmax, the maximum subtracted first (attention.hpp's softmax_rows), in float; the
// probabilities are written as probs[r·n + j] = Operand::encode(p) (fp32_operand: probs = scores, in place).
template <class Operand>
struct softmax_row_body {
    float* scores;
    typename Operand::storage* probs;
    std::size_t n;
    DIFFUSE_HD void operator()(std::size_t r) const {
        float* row = scores + r * n;
        float m = row[0];
        for (std::size_t j = 1; j < n; ++j) m = row[j] > m ? row[j] : m;
        float sum = 0.0f;
        for (std::size_t j = 0; j < n; ++j) {
            row[j] = ::expf(row[j] - m);
            sum += row[j];
        }
        const float inv = 1.0f / sum;
        auto* out = probs + r * n;
        for (std::size_t j = 0; j < n; ++j) out[j] = Operand::encode(row[j] * inv);
    }
};
// Layout and resampling (nn/layout.hpp, nn/resample.hpp), one output element each.
// NCHW → NHWC (x ← 2x − 1 when centre), or NHWC → NCHW (÷ divisor[b] when set: Fourier time features).
struct nchw_nhwc_body {
    const float* x;
    float* y;
    std::size_t C, hw;
    bool to_nhwc, centre;
    const float* divisor;
    DIFFUSE_HD void operator()(std::size_t i) const {
        // i indexes the output
        const std::size_t b = i / (C * hw), r = i % (C * hw);
        const std::size_t c = to_nhwc ? r % C : r / hw, p = to_nhwc ? r / C : r % hw;
        float v = to_nhwc ? x[(b * C + c) * hw + p] : x[(b * hw + p) * C + c];
        if (centre) v = 2.0f * v - 1.0f;
        if (divisor) v /= divisor[b];
        y[i] = v;
    }
};
struct concat_body {  // y[p, :] = [a[p, 0:ca] | b[p, 0:cb]]
    const float* a;
    const float* b;
    float* y;
    std::size_t ca, cb;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t c = i % (ca + cb), p = i / (ca + cb);
        y[i] = c < ca ? a[p * ca + c] : b[p * cb + (c - ca)];
    }
};
struct upsample_body {  // y[b, i, j, c] = x[b, i/2, j/2, c]
    const float* x;
    float* y;
    std::size_t h, w, c;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t ch = i % c, j = (i / c) % (2 * w), r = (i / c) / (2 * w), row = r % (2 * h), b = r / (2 * h);
        y[i] = x[((b * h + row / 2) * w + j / 2) * c + ch];
    }
};
struct avg_pool_body {  // y[b, i, j, c] = (((x00 + x01) + x10) + x11) / 4
    const float* x;
    float* y;
    std::size_t h, w, c;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t ho = h / 2, wo = w / 2;
        const std::size_t ch = i % c, j = (i / c) % wo, r = (i / c) / wo, row = r % ho, b = r / ho;
        const float* p00 = x + ((b * h + 2 * row) * w + 2 * j) * c + ch;
        const float* p10 = p00 + w * c;
        y[i] = (((p00[0] + p00[c]) + p10[0]) + p10[c]) / 4.0f;
    }
};
// y[i] = act(y[i] + x[i]) (x null: act(y[i]))
struct add_activate_body {
    float* y;
    const float* x;
    activation act;
    DIFFUSE_HD void operator()(std::size_t i) const { y[i] = activate(act, x ? y[i] + x[i] : y[i]); }
};
// y[i] += table[rows[i / n]·n + i % n]: a class table's rows added to the time embedding
struct gather_add_body {
    float* y;
    const float* table;
    const float* rows;  // one row index per sample (exact in float: rows < 2²⁴)
    std::size_t n;
    DIFFUSE_HD void operator()(std::size_t i) const {
        y[i] += table[std::size_t(rows[i / n]) * n + i % n];
    }
};

}  // namespace diffuse::nn::device_kernels
