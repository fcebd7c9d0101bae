#pragma once
// The U-Net's layers as device kernels (float32, NHWC activations): each is a DIFFUSE_HD body over one
// output index, launched with the core launcher of cuda/primitives.hpp (a grid-stride kernel under nvcc, a
// host loop under DIFFUSE_CUDA_ON_HOST, so CI runs the same bodies on the CPU). The operations and their
// order per output are nn/'s (conv2d.hpp, group_norm.hpp, attention.hpp, resample.hpp), except the
// summation order of the long dot products (one running sum here, the CPU's blocked GEMM there) and the
// exponential (expf here, nn's exp_approx there): results agree to float rounding, not to the bit.
//
// One thread per output element, the output channel fastest: neighbouring threads read the same input
// value (a broadcast) and neighbouring weights B[k, co] (coalesced); the weights are the direct algorithm's
// matrix B[(ky·k + kx)·Cin + ci, co] (conv2d::weight_matrix), Wᵀ for a linear layer.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "diffuse/core/config.hpp"
#include "diffuse/cuda/primitives.hpp"
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

// y[b, oy, ox, co] = ((((Σ_{ky,kx,ci} x'[b, oy·s + ky − top, ox·s + kx − left, ci]·B[(ky·k + kx)·Cin + ci, co]) + bias[co])
//                     + sample_bias[b·sb_ld + co]) + residual[i]) / divisor; x' = input(x), zero outside the image.
struct conv_body {
    const float* x;
    const float* w;
    const float* bias;
    float* y;
    affine_input input;
    const float* sample_bias;
    std::size_t sb_ld;
    const float* residual;  // may be y
    float divisor;
    std::size_t h, wd, cin, ho, wo, cout, k, stride, top, left;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t co = i % cout;
        std::size_t r = i / cout;
        const std::size_t ox = r % wo;
        r /= wo;
        const std::size_t oy = r % ho, b = r / ho;
        float acc = 0.0f;
        for (std::size_t ky = 0; ky < k; ++ky) {
            const std::size_t iy = oy * stride + ky;  // + top: the padded coordinate
            if (iy < top || iy - top >= h) continue;
            for (std::size_t kx = 0; kx < k; ++kx) {
                const std::size_t ix = ox * stride + kx;
                if (ix < left || ix - left >= wd) continue;
                const float* xp = x + ((b * h + (iy - top)) * wd + (ix - left)) * cin;
                const float* wp = w + (ky * k + kx) * cin * cout + co;
                for (std::size_t ci = 0; ci < cin; ++ci) acc += input(xp[ci], b, ci) * wp[ci * cout];
            }
        }
        float out = acc;
        if (bias) out += bias[co];
        if (sample_bias) out += sample_bias[b * sb_ld + co];
        if (residual) out += residual[i];
        if (divisor != 1.0f) out /= divisor;
        y[i] = out;
    }
};

// y[r, n] = ((Σ_k x[r·ldx + k]·B[k·N + n] + bias[n]) + residual[r·N + n]) / divisor
struct linear_body {
    const float* x;
    std::size_t ldx;
    const float* w;
    const float* bias;
    const float* residual;
    float divisor;
    float* y;
    std::size_t K, N;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t n = i % N, r = i / N;
        float acc = 0.0f;
        for (std::size_t k = 0; k < K; ++k) acc += x[r * ldx + k] * w[k * N + n];
        float out = acc;
        if (bias) out += bias[n];
        if (residual) out += residual[i];
        if (divisor != 1.0f) out /= divisor;
        y[i] = out;
    }
};

// Group norm statistics (group_norm.hpp's formula, in double), two passes over fixed pixel blocks:
//   partial[(b·G + g)·nb + blk] = Σ over the block's pixels and the group's channels of x (pass 1) or of
//   (x − μ[b, g])² (pass 2);   then stats[2(b·G + g)] = μ, stats[2(b·G + g) + 1] = 1/√(σ² + ε), the blocks
//   added in block order.
inline constexpr std::size_t norm_pixel_block = 256;
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
// y[i] = input(x[i]) over [batch, pixels, C]
struct affine_body {
    const float* x;
    float* y;
    affine_input input;
    std::size_t per_sample, C;
    DIFFUSE_HD void operator()(std::size_t i) const { y[i] = input(x[i], i / per_sample, i % C); }
};

// Attention of one head: scores[((b·H + h)·T + i)·T + j] = (Σ_d q[b, i, h, d]·k[b, j, h, d])·scale, q, k, v
// interleaved as the qkv projection writes them: row (b·T + i) of width 3·inner = [q | k | v].
struct attention_scores_body {
    const float* qkv;
    float* scores;
    std::size_t T, H, d;
    float scale;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t inner = H * d, ld = 3 * inner;
        const std::size_t j = i % T, q = (i / T) % T, bh = i / (T * T), h = bh % H, b = bh / H;
        const float* qp = qkv + (b * T + q) * ld + h * d;
        const float* kp = qkv + (b * T + j) * ld + inner + h * d;
        float acc = 0.0f;
        for (std::size_t e = 0; e < d; ++e) acc += qp[e] * kp[e];
        scores[i] = acc * scale;
    }
};
// One row of scores → softmax, the maximum subtracted first (attention.hpp's softmax_rows).
struct softmax_row_body {
    float* scores;
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
        for (std::size_t j = 0; j < n; ++j) row[j] *= inv;
    }
};
// heads_out[(b·T + q)·inner + h·d + e] = Σ_j p[b, h, q, j]·v[b, j, h, e]
struct attention_values_body {
    const float* qkv;
    const float* probs;
    float* out;
    std::size_t T, H, d;
    DIFFUSE_HD void operator()(std::size_t i) const {
        const std::size_t inner = H * d, ld = 3 * inner;
        const std::size_t e = i % d, h = (i / d) % H, q = (i / inner) % T, b = i / (inner * T);
        const float* p = probs + ((b * H + h) * T + q) * T;
        const float* v = qkv + b * T * ld + 2 * inner + h * d + e;
        float acc = 0.0f;
        for (std::size_t j = 0; j < T; ++j) acc += p[j] * v[j * ld];
        out[i] = acc;
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
