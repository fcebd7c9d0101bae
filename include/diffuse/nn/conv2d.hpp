#pragma once
// 2-D convolution of NHWC float activations (x[((b·H + y)·W + x)·C + c]) as an implicit GEMM on the
// micro-kernel of gemm.hpp:
//
//   out[b, oy, ox, co] = (((Σ_{ky,kx,ci} xp[b, oy·s + ky, ox·s + kx, ci] · w[co, ci, ky, kx]) + bias[co])
//                         + sample_bias[b, co] + residual[b, oy, ox, co]) / output_divisor
//
// evaluated left to right, each term rounded; the sum runs over ky, then kx, then ci (increasing), one
// float accumulator per output. xp is x zero-padded by (top, left, bottom, right); the padded copy goes to
// caller-provided scratch so the kernel has no edge branches. Output pixels (over the whole batch) are the
// GEMM rows: each row is k segments (one per ky) of k·Cin contiguous floats of xp, so a tile of 6 pixels
// may cross image rows and samples. Weights are packed once at construction as [Cout/16][ky][kx][ci][16].
// Bits do not depend on the thread count (see gemm.hpp).
//
// Stride-1 3×3 convolutions may instead run as Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray
// 2016): each 2×2 block of outputs comes from a 4×4 tile d of xp (tiles at stride 2) as
//
//   Y = Aᵀ [ Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
//
//        ⎡1  0 −1  0⎤        ⎡1   0   0⎤
//   Bᵀ = ⎢0  1  1  0⎥,  G =  ⎢½   ½   ½⎥,  Aᵀ = ⎡1 1  1  0⎤
//        ⎢0 −1  1  0⎥        ⎢½  −½   ½⎥       ⎣0 1 −1 −1⎦
//        ⎣0  1  0 −1⎦        ⎣0   0   1⎦
//
// U = G g Gᵀ is formed in double and packed once as 16 matrices Cin × Cout (one per position ξ of the 4×4
// tile); per block of tiles the input transform V = Bᵀ d B (additions only) fills 16 matrices tiles × Cin,
// 16 GEMMs M_ξ = V_ξ · U_ξ run on the micro-kernel, and the output transform (additions only) writes Y
// through the same epilogue as the direct convolution. Blocks are sized so that V and M stay in L2, and
// the work is split over tiles (input transform) and groups of 64 output channels (GEMMs, output
// transform) the same way for any thread count. The input transform reads x itself, so no padded copy.
//
// Either algorithm can apply a per-sample, per-channel prologue to its input, x' = act(x·a[b, c] + s[b, c])
// (a GroupNorm folded into its coefficients, see group_norm.hpp), padding staying 0.

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/nn/activation.hpp"
#include "diffuse/nn/gemm.hpp"

namespace diffuse::nn {

struct padding2d {
    std::size_t top = 0, left = 0, bottom = 0, right = 0;
};

struct conv_epilogue {
    const float* sample_bias = nullptr;  // [batch × Cout]: one value per sample and channel, added
    const float* residual = nullptr;     // [batch × Ho × Wo × Cout], added; may equal `out`
    float output_divisor = 1.0f;         // out = (((conv + bias) + sample_bias) + residual) / output_divisor
};

// The input of the convolution as x'[b, y, x, c] = act(x[b, y, x, c]·scale[b·ld + c] + shift[b·ld + c]) when
// scale is set (shift then too); ld = 0 means Cin.
struct conv_prologue {
    const float* scale = nullptr;
    const float* shift = nullptr;
    std::size_t ld = 0;
    activation act = activation::none;
    [[nodiscard]] bool enabled() const noexcept { return scale != nullptr; }
};

// automatic: Winograd for stride-1 3×3 convolutions with enough channels and pixels (where it measured
// faster), direct otherwise. winograd needs kernel 3 and stride 1.
enum class conv_algorithm { automatic, direct, winograd };

namespace detail {

inline constexpr std::size_t winograd_l2_bytes = std::size_t(1) << 20;  // V and M of one block of tiles
inline constexpr std::size_t winograd_max_tiles = 144;
inline constexpr std::size_t winograd_min_channels = 16;
inline constexpr std::size_t winograd_min_tiles = 16;   // fewer tiles (one 4×4 map: 4) run faster direct
inline constexpr std::size_t winograd_chunk = 16;       // channels per vector step of the transforms

// U = G g Gᵀ for one 3×3 filter g (row-major), in double: u[4·i + j].
inline void winograd_filter(const float* g, double* u) {
    double gg[4][3];  // G·g
    for (std::size_t c = 0; c < 3; ++c) {
        const double g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
        gg[0][c] = g0, gg[1][c] = 0.5 * (g0 + g1 + g2), gg[2][c] = 0.5 * (g0 - g1 + g2), gg[3][c] = g2;
    }
    for (std::size_t i = 0; i < 4; ++i) {
        const double g0 = gg[i][0], g1 = gg[i][1], g2 = gg[i][2];
        u[4 * i + 0] = g0, u[4 * i + 1] = 0.5 * (g0 + g1 + g2), u[4 * i + 2] = 0.5 * (g0 - g1 + g2), u[4 * i + 3] = g2;
    }
}

// The 16 input pixels of one tile: src[4·i + j] is xp at tile row i, column j (null where it is padding).
struct winograd_tile_input {
    const float* src[16];
};

// V_ξ[c] = (Bᵀ d B)_ξ for channels c0 .. c0 + n of one tile (n ≤ 16, a constant 16 when Full), written to
// v[ξ·v_ld + c].
template <bool Full>
DIFFUSE_ALWAYS_INLINE void winograd_input_chunk(const winograd_tile_input& t, std::size_t c0, std::size_t n_, float* v,
                                                std::size_t v_ld) {
    constexpr std::size_t W = winograd_chunk;
    const std::size_t n = Full ? W : n_;
    float d[16][W];
    for (std::size_t p = 0; p < 16; ++p) {
        const float* x = t.src[p];
        for (std::size_t c = 0; c < n; ++c) d[p][c] = x ? x[c0 + c] : 0.0f;
    }
    float r[16][W];  // Bᵀ d: rows (d0 − d2, d1 + d2, d2 − d1, d1 − d3)
    for (std::size_t j = 0; j < 4; ++j)
        for (std::size_t c = 0; c < n; ++c) {
            const float d0 = d[j][c], d1 = d[4 + j][c], d2 = d[8 + j][c], d3 = d[12 + j][c];
            r[j][c] = d0 - d2, r[4 + j][c] = d1 + d2, r[8 + j][c] = d2 - d1, r[12 + j][c] = d1 - d3;
        }
    for (std::size_t i = 0; i < 4; ++i) {  // (Bᵀ d) B: the same on the columns
        float* v0 = v + (4 * i) * v_ld + c0;
        for (std::size_t c = 0; c < n; ++c) {
            const float d0 = r[4 * i][c], d1 = r[4 * i + 1][c], d2 = r[4 * i + 2][c], d3 = r[4 * i + 3][c];
            v0[c] = d0 - d2, v0[v_ld + c] = d1 + d2, v0[2 * v_ld + c] = d2 - d1, v0[3 * v_ld + c] = d1 - d3;
        }
    }
}

DIFFUSE_ALWAYS_INLINE void winograd_input_tile_loop(const winograd_tile_input& t, std::size_t cin, float* v,
                                                    std::size_t v_ld) {
    std::size_t c0 = 0;
    for (; c0 + winograd_chunk <= cin; c0 += winograd_chunk) winograd_input_chunk<true>(t, c0, 0, v, v_ld);
    if (c0 < cin) winograd_input_chunk<false>(t, c0, cin - c0, v, v_ld);
}
#if DIFFUSE_NN_X86
__attribute__((target("avx2,fma"))) inline void winograd_input_tile_avx2(const winograd_tile_input& t, std::size_t cin,
                                                                         float* v, std::size_t v_ld) {
    winograd_input_tile_loop(t, cin, v, v_ld);
}
#endif
// V_ξ = Bᵀ d B of one tile for all Cin channels: v[ξ·v_ld + c].
inline void winograd_input_tile(const winograd_tile_input& t, std::size_t cin, float* v, std::size_t v_ld) {
#if DIFFUSE_NN_X86
    if (active_isa() == kernel_isa::avx2_fma) return winograd_input_tile_avx2(t, cin, v, v_ld);
#endif
    winograd_input_tile_loop(t, cin, v, v_ld);
}

// Where the output transform of one tile writes: out and residual at the tile's top-left pixel (`row`
// floats between output rows, `pixel` between pixels), which of its 2 × 2 pixels exist, the sample's row
// of sample_bias (or null).
struct winograd_tile_output {
    float* out;
    const float* residual;
    const float* sample_bias;
    std::size_t row, pixel;
    bool has_right, has_below;
};

// Y = Aᵀ M A for channels c0 .. c0 + n of one tile (M_ξ[c] at m[ξ·m_ld + c]; n ≤ 16, 16 when Full), then
// the conv epilogue out = (((Y + bias) + sample_bias) + residual) / divisor, each term rounded.
template <bool Full>
DIFFUSE_ALWAYS_INLINE void winograd_output_chunk(const float* m, std::size_t m_ld, std::size_t c0, std::size_t n_,
                                                 const winograd_tile_output& o, const float* bias, bool divide,
                                                 float divisor) {
    constexpr std::size_t W = winograd_chunk;
    const std::size_t n = Full ? W : n_;
    float t[8][W];  // Aᵀ M: rows (m0 + m1 + m2, m1 − m2 − m3); t[4·i + j] is row i, column j
    for (std::size_t j = 0; j < 4; ++j) {
        const float* p = m + j * m_ld + c0;
        for (std::size_t c = 0; c < n; ++c) {
            const float m0 = p[c], m1 = p[4 * m_ld + c], m2 = p[8 * m_ld + c], m3 = p[12 * m_ld + c];
            t[j][c] = (m0 + m1) + m2;
            t[4 + j][c] = (m1 - m2) - m3;
        }
    }
    for (std::size_t i = 0; i < (o.has_below ? 2u : 1u); ++i)  // (Aᵀ M) A: the same on the columns
        for (std::size_t j = 0; j < (o.has_right ? 2u : 1u); ++j) {
            const float* ti = t[4 * i];
            const std::size_t off = i * o.row + j * o.pixel + c0;
            float* y = o.out + off;
            const float* res = o.residual ? o.residual + off : nullptr;
            for (std::size_t c = 0; c < n; ++c) {
                float v = j == 0 ? (ti[c] + ti[W + c]) + ti[2 * W + c] : (ti[W + c] - ti[2 * W + c]) - ti[3 * W + c];
                if (bias) v = v + bias[c0 + c];
                if (o.sample_bias) v = v + o.sample_bias[c0 + c];
                if (res) v = v + res[c];
                if (divide) v = v / divisor;
                y[c] = v;
            }
        }
}

// The output transform of one tile for channels n0 .. n1.
DIFFUSE_ALWAYS_INLINE void winograd_output_tile_loop(const float* m, std::size_t m_ld, std::size_t n0, std::size_t n1,
                                                     const winograd_tile_output& o, const float* bias, bool divide,
                                                     float divisor) {
    std::size_t c0 = n0;
    for (; c0 + winograd_chunk <= n1; c0 += winograd_chunk)
        winograd_output_chunk<true>(m, m_ld, c0, 0, o, bias, divide, divisor);
    if (c0 < n1) winograd_output_chunk<false>(m, m_ld, c0, n1 - c0, o, bias, divide, divisor);
}
#if DIFFUSE_NN_X86
__attribute__((target("avx2,fma"))) inline void winograd_output_tile_avx2(const float* m, std::size_t m_ld, std::size_t n0,
                                                                          std::size_t n1, const winograd_tile_output& o,
                                                                          const float* bias, bool divide, float divisor) {
    winograd_output_tile_loop(m, m_ld, n0, n1, o, bias, divide, divisor);
}
#endif
inline void winograd_output_tile(const float* m, std::size_t m_ld, std::size_t n0, std::size_t n1,
                                 const winograd_tile_output& o, const float* bias, bool divide, float divisor) {
#if DIFFUSE_NN_X86
    if (active_isa() == kernel_isa::avx2_fma) return winograd_output_tile_avx2(m, m_ld, n0, n1, o, bias, divide, divisor);
#endif
    winograd_output_tile_loop(m, m_ld, n0, n1, o, bias, divide, divisor);
}

}  // namespace detail

class conv2d {
public:
    conv2d() = default;

    // weight in PyTorch's layout [Cout, Cin, k, k]; bias [Cout] or empty.
    conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t stride, padding2d pad,
           std::span<const float> weight, std::span<const float> bias, conv_algorithm algorithm = conv_algorithm::automatic)
        : cin_(in_channels), cout_(out_channels), k_(kernel), s_(stride), pad_(pad), algo_(algorithm) {
        using diffuse::detail::require;
        require(in_channels >= 1, "conv2d", "in_channels", in_channels, ">= 1");
        require(out_channels >= 1, "conv2d", "out_channels", out_channels, ">= 1");
        require(kernel >= 1, "conv2d", "kernel", kernel, ">= 1");
        require(stride >= 1, "conv2d", "stride", stride, ">= 1");
        (void)detail::checked_add(pad.top, pad.bottom, "conv2d", "pad.top + pad.bottom");
        (void)detail::checked_add(pad.left, pad.right, "conv2d", "pad.left + pad.right");
        const std::size_t kk = detail::checked_mul(kernel, kernel, "conv2d", "kernel × kernel");
        const std::size_t K = detail::checked_mul(kk, in_channels, "conv2d", "kernel × kernel × in_channels");
        const std::size_t wsize = detail::checked_mul(K, out_channels, "conv2d", "weight size (out × in × k × k)");
        if (weight.size() != wsize)
            diffuse::detail::fail("conv2d", "weight has " + std::to_string(weight.size()) + " values but [out_channels, "
                                            "in_channels, kernel, kernel] = [" + std::to_string(out_channels) + ", " +
                                            std::to_string(in_channels) + ", " + std::to_string(kernel) + ", " +
                                            std::to_string(kernel) + "] needs " + std::to_string(wsize));
        if (!bias.empty() && bias.size() != out_channels)
            diffuse::detail::fail("conv2d", "bias has " + std::to_string(bias.size()) + " values but out_channels = " +
                                            std::to_string(out_channels) + " (pass an empty bias for none)");
        // B[(ky·k + kx)·Cin + ci, co] = w[co, ci, ky, kx]
        std::vector<float> b(wsize);
        for (std::size_t co = 0; co < cout_; ++co)
            for (std::size_t ci = 0; ci < cin_; ++ci)
                for (std::size_t t = 0; t < kk; ++t) b[(t * cin_ + ci) * cout_ + co] = weight[(co * cin_ + ci) * kk + t];
        if (algorithm == conv_algorithm::winograd && !(kernel == 3 && stride == 1))
            diffuse::detail::fail("conv2d", "algorithm = winograd needs kernel = 3 and stride = 1, not kernel = " +
                                                std::to_string(kernel) + ", stride = " + std::to_string(stride));
        if (algorithm != conv_algorithm::winograd) w_.pack(b.data(), K, cout_, std::ptrdiff_t(cout_), 1);
        if (algorithm == conv_algorithm::winograd || (algorithm == conv_algorithm::automatic && winograd_suits())) {
            // U_ξ[ci, co] = (G g[co, ci] Gᵀ)_ξ
            std::vector<float> u(16 * cin_ * cout_);
            double t[16];
            for (std::size_t co = 0; co < cout_; ++co)
                for (std::size_t ci = 0; ci < cin_; ++ci) {
                    detail::winograd_filter(weight.data() + (co * cin_ + ci) * 9, t);
                    for (std::size_t xi = 0; xi < 16; ++xi) u[(xi * cin_ + ci) * cout_ + co] = static_cast<float>(t[xi]);
                }
            wino_.resize(16);
            for (std::size_t xi = 0; xi < 16; ++xi)
                wino_[xi].pack(u.data() + xi * cin_ * cout_, cin_, cout_, std::ptrdiff_t(cout_), 1);
        }
        bias_.assign(bias.begin(), bias.end());
    }

    [[nodiscard]] conv_algorithm algorithm() const noexcept { return algo_; }
    // Whether forward() on `batch` inputs of h × w runs Winograd's F(2×2, 3×3).
    [[nodiscard]] bool uses_winograd(std::size_t batch, std::size_t h, std::size_t w) const {
        if (wino_.empty()) return false;
        if (w_.cols() == 0) return true;  // forced
        return winograd_tiles(batch, h, w) >= detail::winograd_min_tiles;
    }

    [[nodiscard]] std::size_t in_channels() const noexcept { return cin_; }
    [[nodiscard]] std::size_t out_channels() const noexcept { return cout_; }
    [[nodiscard]] std::size_t kernel() const noexcept { return k_; }
    [[nodiscard]] std::size_t stride() const noexcept { return s_; }
    [[nodiscard]] padding2d padding() const noexcept { return pad_; }
    // The weights as the direct algorithm's matrix B[(ky·k + kx)·Cin + ci, co] = w[co, ci, ky, kx], and the bias.
    [[nodiscard]] std::vector<float> weight_matrix() const {
        if (algo_ == conv_algorithm::winograd)
            diffuse::detail::fail("conv2d::weight_matrix", "a conv2d built with algorithm = winograd keeps no direct weights");
        return w_.unpacked();
    }
    [[nodiscard]] std::span<const float> bias() const noexcept { return bias_; }

    // Ho = (h + top + bottom − k) / stride + 1; throws when the padded input is smaller than the kernel.
    [[nodiscard]] std::size_t out_height(std::size_t h) const {
        return out_size(h, pad_.top, pad_.bottom, "h");
    }
    [[nodiscard]] std::size_t out_width(std::size_t w) const {
        return out_size(w, pad_.left, pad_.right, "w");
    }

    // Floats of scratch forward() needs: for Winograd, the transformed tiles of one block (16 × tiles ×
    // (Cin + Cout)); else the zero-padded input, batch × (h+top+bottom) × (w+left+right) × Cin, 0 when there
    // is no padding and no prologue.
    [[nodiscard]] std::size_t scratch_floats(std::size_t batch, std::size_t h, std::size_t w, bool prologue = false) const {
        if (uses_winograd(batch, h, w)) {
            const std::size_t tiles = winograd_block(winograd_tiles(batch, h, w));
            const std::size_t v_m = detail::checked_mul(16 * tiles, cin_ + cout_, "conv2d", "scratch size");
            return prologue ? detail::checked_add(v_m, padded_floats(batch, h, w), "conv2d", "scratch size") : v_m;
        }
        if (!padded() && !prologue) return 0;
        return padded_floats(batch, h, w);
    }

private:
    [[nodiscard]] std::size_t padded_floats(std::size_t batch, std::size_t h, std::size_t w) const {
        const std::size_t hp = detail::checked_add(h, pad_.top + pad_.bottom, "conv2d", "padded height");
        const std::size_t wp = detail::checked_add(w, pad_.left + pad_.right, "conv2d", "padded width");
        return detail::checked_mul(
            detail::checked_mul(detail::checked_mul(batch, hp, "conv2d", "scratch size"), wp, "conv2d", "scratch size"),
            cin_, "conv2d", "scratch size");
    }

public:
    // x [batch, h, w, Cin] -> out [batch, Ho, Wo, Cout]; scratch holds scratch_floats(batch, h, w,
    // p.enabled()) floats. No allocation. e.residual may be `out` itself; x must not overlap out.
    void forward(const float* x, std::size_t batch, std::size_t h, std::size_t w, float* out, float* scratch,
                 const conv_epilogue& e = {}, const conv_prologue& p = {}) const {
        if (cout_ == 0) diffuse::detail::fail("conv2d::forward", "the convolution is default-constructed (no weights)");
        const std::size_t ho = out_height(h), wo = out_width(w);
        const std::size_t need = scratch_floats(batch, h, w, p.enabled());
        const std::size_t pixels = detail::checked_mul(detail::checked_mul(batch, ho, "conv2d::forward", "output size"),
                                                       wo, "conv2d::forward", "output size");
        (void)detail::checked_mul(detail::checked_mul(detail::checked_mul(batch, h, "conv2d::forward", "input size"), w,
                                                      "conv2d::forward", "input size"),
                                  cin_, "conv2d::forward", "input size");
        (void)detail::checked_mul(pixels, cout_, "conv2d::forward", "output size");
        if (pixels == 0) return;
        if (x == nullptr) diffuse::detail::fail("conv2d::forward", "x is null");
        if (out == nullptr) diffuse::detail::fail("conv2d::forward", "out is null");
        if (need != 0 && scratch == nullptr)
            diffuse::detail::fail("conv2d::forward", "scratch is null but the padded input needs " +
                                                         std::to_string(need) + " floats");
        diffuse::detail::require(e.output_divisor != 0.0f, "conv2d::forward", "output_divisor", e.output_divisor, "!= 0");
        if (p.enabled() && p.shift == nullptr) diffuse::detail::fail("conv2d::forward", "the prologue has a scale but no shift");
        if (uses_winograd(batch, h, w)) return forward_winograd(x, batch, h, w, out, scratch, e, p);

        const float* src = x;
        std::size_t hp = h, wp = w;
        if (need != 0) {
            hp = h + pad_.top + pad_.bottom;
            wp = w + pad_.left + pad_.right;
            pad_input(x, batch, h, w, scratch, p);
            src = scratch;
        }
        detail::tile_epilogue t;
        t.c = out;
        t.ldc = cout_;
        t.n = cout_;
        t.bias = bias_.empty() ? nullptr : bias_.data();
        t.row_bias = e.sample_bias;
        t.row_bias_ld = cout_;
        t.rows_per_group = ho * wo;
        t.residual = e.residual;
        t.ldr = cout_;
        t.divisor = e.output_divisor;
        t.divide = e.output_divisor != 1.0f;
        const std::size_t plane = ho * wo, s = s_, cin = cin_;
        // Row g = output pixel (b, oy, ox): its receptive field starts at xp[b, oy·s, ox·s, 0].
        const auto row = [=](std::size_t g) {
            const std::size_t b = g / plane, r = g % plane, oy = r / wo, ox = r % wo;
            return src + ((b * hp + oy * s) * wp + ox * s) * cin;
        };
        detail::gemm_rows(pixels, row, k_, k_ * cin_, std::ptrdiff_t(wp * cin_), w_, t);
    }

private:
    [[nodiscard]] bool padded() const noexcept { return pad_.top + pad_.left + pad_.bottom + pad_.right != 0; }

    [[nodiscard]] std::size_t out_size(std::size_t n, std::size_t lo, std::size_t hi, const char* param) const {
        const std::size_t np = detail::checked_add(detail::checked_add(n, lo, "conv2d", param), hi, "conv2d", param);
        if (np < k_)
            diffuse::detail::fail("conv2d", std::string("input ") + param + " = " + std::to_string(n) +
                                                " plus padding is smaller than the kernel (" + std::to_string(k_) + ")");
        return (np - k_) / s_ + 1;
    }

    // xp = x' with zero borders: xp[b, y + top, x + left, c] = x'[b, y, x, c] (x' = x, or the prologue's).
    void pad_input(const float* x, std::size_t batch, std::size_t h, std::size_t w, float* xp, const conv_prologue& p) const {
        const std::size_t wp = w + pad_.left + pad_.right, row = wp * cin_, ld = p.ld ? p.ld : cin_;
        for (std::size_t b = 0; b < batch; ++b) {
            for (std::size_t y = 0; y < pad_.top; ++y, xp += row) std::fill(xp, xp + row, 0.0f);
            for (std::size_t y = 0; y < h; ++y, xp += row) {
                std::fill(xp, xp + pad_.left * cin_, 0.0f);
                const float* src = x + (b * h + y) * w * cin_;
                if (p.enabled()) detail::affine_activate(p.act, src, xp + pad_.left * cin_, p.scale + b * ld, p.shift + b * ld, w, cin_);
                else std::copy(src, src + w * cin_, xp + pad_.left * cin_);
                std::fill(xp + (pad_.left + w) * cin_, xp + row, 0.0f);
            }
            for (std::size_t y = 0; y < pad_.bottom; ++y, xp += row) std::fill(xp, xp + row, 0.0f);
        }
    }

    // Winograd for these channel counts at all (kernel 3, stride 1, enough channels).
    [[nodiscard]] bool winograd_suits() const noexcept {
        return k_ == 3 && s_ == 1 && cin_ >= detail::winograd_min_channels && cout_ >= detail::winograd_min_channels;
    }
    [[nodiscard]] std::size_t winograd_tiles(std::size_t batch, std::size_t h, std::size_t w) const {
        return batch * ((out_height(h) + 1) / 2) * ((out_width(w) + 1) / 2);
    }
    // Tiles per block: the blocks of equal size (a multiple of the 6-row micro-tile) that keep V and M of a
    // block within winograd_l2_bytes; depends on the shape only.
    [[nodiscard]] std::size_t winograd_block(std::size_t tiles) const noexcept {
        if (tiles == 0) return 0;
        const std::size_t per_tile = 16 * (cin_ + cout_) * sizeof(float);
        const std::size_t cap = std::clamp<std::size_t>(detail::winograd_l2_bytes / per_tile / detail::gemm_mr * detail::gemm_mr,
                                                        detail::gemm_mr, detail::winograd_max_tiles);
        const std::size_t blocks = (tiles + cap - 1) / cap;
        const std::size_t even = (tiles + blocks - 1) / blocks;
        return std::min(cap, (even + detail::gemm_mr - 1) / detail::gemm_mr * detail::gemm_mr);
    }

    // F(2×2, 3×3) over blocks of tiles; tile t of the batch is (b, ty, tx) in row-major order, its input the
    // 4×4 pixels of xp from (2ty, 2tx). With a prologue, x' is first written once to a padded copy (each
    // pixel is in 4 tiles: the activation would otherwise be evaluated 4 times).
    void forward_winograd(const float* x, std::size_t batch, std::size_t h, std::size_t w, float* out, float* scratch,
                          const conv_epilogue& e, const conv_prologue& p) const {
        const std::size_t ho = out_height(h), wo = out_width(w), th = (ho + 1) / 2, tw = (wo + 1) / 2;
        const std::size_t tiles = batch * th * tw, per_block = winograd_block(tiles), cin = cin_, cout = cout_;
        float* vbuf = scratch;                         // V_ξ[t, ci] at vbuf[(ξ·per_block + t)·Cin + ci]
        float* mbuf = scratch + 16 * per_block * cin;  // M_ξ[t, co] at mbuf[(ξ·per_block + t)·Cout + co]
        padding2d pad = pad_;                          // of src (h × w) relative to xp
        if (p.enabled()) {
            float* xp = mbuf + 16 * per_block * cout;
            pad_input(x, batch, h, w, xp, p);
            x = xp;
            h += pad_.top + pad_.bottom;
            w += pad_.left + pad_.right;
            pad = {};
        }
        const detail::gemm_kernels kk = detail::active_gemm_kernels();
        const std::size_t groups = (wino_[0].panels() + detail::gemm_group_panels - 1) / detail::gemm_group_panels;
        auto& pool = diffuse::detail::thread_pool::instance();
        const auto run = [&](std::size_t n, const auto& f) {
            if (pool.threads() == 1 || n == 1) for (std::size_t i = 0; i < n; ++i) f(i);
            else pool.run(n, f);
        };
        for (std::size_t t0 = 0; t0 < tiles; t0 += per_block) {
            const std::size_t nt = std::min(per_block, tiles - t0);
            // V = Bᵀ d B, tasks of 6 tiles.
            run((nt + detail::gemm_mr - 1) / detail::gemm_mr, [&](std::size_t task) {
                const std::size_t i1 = std::min(nt, (task + 1) * detail::gemm_mr);
                for (std::size_t i = task * detail::gemm_mr; i < i1; ++i) {
                    const std::size_t t = t0 + i, b = t / (th * tw), r = t % (th * tw), ty = r / tw, tx = r % tw;
                    detail::winograd_tile_input in;
                    for (std::size_t dy = 0; dy < 4; ++dy)
                        for (std::size_t dx = 0; dx < 4; ++dx) {
                            // padded (2ty + dy, 2tx + dx) is x at (2ty + dy − top, 2tx + dx − left)
                            const std::size_t py = 2 * ty + dy, px = 2 * tx + dx;
                            const bool inside = py >= pad.top && py - pad.top < h && px >= pad.left && px - pad.left < w;
                            in.src[4 * dy + dx] = inside ? x + ((b * h + py - pad.top) * w + px - pad.left) * cin : nullptr;
                        }
                    detail::winograd_input_tile(in, cin, vbuf + i * cin, per_block * cin);
                }
            });
            // M_ξ = V_ξ · U_ξ and Y = Aᵀ M A, tasks of 64 output channels.
            run(groups, [&](std::size_t grp) {
                const std::size_t p0 = grp * detail::gemm_group_panels, p1 = std::min(wino_[0].panels(), p0 + detail::gemm_group_panels);
                for (std::size_t xi = 0; xi < 16; ++xi) {
                    detail::tile_epilogue te;
                    te.c = mbuf + xi * per_block * cout;
                    te.ldc = cout;
                    te.n = cout;
                    const float* v = vbuf + xi * per_block * cin;
                    const auto row = [v, cin](std::size_t m) { return v + m * cin; };
                    constexpr std::size_t rows = detail::gemm_block_tiles * detail::gemm_mr;
                    for (std::size_t r0 = 0; r0 < nt; r0 += rows)
                        detail::gemm_block(kk, nt, r0, std::min(nt, r0 + rows), row, 1, cin, 0, wino_[xi], te, p0, p1);
                }
                const std::size_t n0 = p0 * detail::gemm_nr, n1 = std::min(cout, p1 * detail::gemm_nr);
                for (std::size_t i = 0; i < nt; ++i) {
                    const std::size_t t = t0 + i, b = t / (th * tw), r = t % (th * tw), ty = r / tw, tx = r % tw;
                    const std::size_t off = ((b * ho + 2 * ty) * wo + 2 * tx) * cout;
                    detail::winograd_tile_output o;
                    o.out = out + off;
                    o.residual = e.residual ? e.residual + off : nullptr;
                    o.sample_bias = e.sample_bias ? e.sample_bias + b * cout : nullptr;
                    o.row = wo * cout;
                    o.pixel = cout;
                    o.has_right = 2 * tx + 1 < wo;
                    o.has_below = 2 * ty + 1 < ho;
                    detail::winograd_output_tile(mbuf + i * cout, per_block * cout, n0, n1, o,
                                                 bias_.empty() ? nullptr : bias_.data(), e.output_divisor != 1.0f,
                                                 e.output_divisor);
                }
            });
        }
    }

    std::size_t cin_ = 0, cout_ = 0, k_ = 0, s_ = 1;
    padding2d pad_{};
    conv_algorithm algo_ = conv_algorithm::automatic;
    packed_matrix w_;                   // direct: [k·k·Cin × Cout]
    std::vector<packed_matrix> wino_;   // Winograd: U_ξ [Cin × Cout], ξ < 16
    std::vector<float> bias_;
};

}  // namespace diffuse::nn
