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

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
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

class conv2d {
public:
    conv2d() = default;

    // weight in PyTorch's layout [Cout, Cin, k, k]; bias [Cout] or empty.
    conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t stride, padding2d pad,
           std::span<const float> weight, std::span<const float> bias)
        : cin_(in_channels), cout_(out_channels), k_(kernel), s_(stride), pad_(pad) {
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
        w_.pack(b.data(), K, cout_, std::ptrdiff_t(cout_), 1);
        bias_.assign(bias.begin(), bias.end());
    }

    [[nodiscard]] std::size_t in_channels() const noexcept { return cin_; }
    [[nodiscard]] std::size_t out_channels() const noexcept { return cout_; }
    [[nodiscard]] std::size_t kernel() const noexcept { return k_; }
    [[nodiscard]] std::size_t stride() const noexcept { return s_; }
    [[nodiscard]] padding2d padding() const noexcept { return pad_; }

    // Ho = (h + top + bottom − k) / stride + 1; throws when the padded input is smaller than the kernel.
    [[nodiscard]] std::size_t out_height(std::size_t h) const {
        return out_size(h, pad_.top, pad_.bottom, "h");
    }
    [[nodiscard]] std::size_t out_width(std::size_t w) const {
        return out_size(w, pad_.left, pad_.right, "w");
    }

    // Floats of scratch forward() needs: the zero-padded input, batch × (h+top+bottom) × (w+left+right) × Cin;
    // 0 when there is no padding.
    [[nodiscard]] std::size_t scratch_floats(std::size_t batch, std::size_t h, std::size_t w) const {
        if (!padded()) return 0;
        const std::size_t hp = detail::checked_add(h, pad_.top + pad_.bottom, "conv2d", "padded height");
        const std::size_t wp = detail::checked_add(w, pad_.left + pad_.right, "conv2d", "padded width");
        return detail::checked_mul(
            detail::checked_mul(detail::checked_mul(batch, hp, "conv2d", "scratch size"), wp, "conv2d", "scratch size"),
            cin_, "conv2d", "scratch size");
    }

    // x [batch, h, w, Cin] -> out [batch, Ho, Wo, Cout]; scratch holds scratch_floats(batch, h, w) floats.
    // No allocation. e.residual may be `out` itself; x must not overlap out.
    void forward(const float* x, std::size_t batch, std::size_t h, std::size_t w, float* out, float* scratch,
                 const conv_epilogue& e = {}) const {
        if (cout_ == 0) diffuse::detail::fail("conv2d::forward", "the convolution is default-constructed (no weights)");
        const std::size_t ho = out_height(h), wo = out_width(w);
        const std::size_t need = scratch_floats(batch, h, w);
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

        const float* src = x;
        std::size_t hp = h, wp = w;
        if (need != 0) {
            hp = h + pad_.top + pad_.bottom;
            wp = w + pad_.left + pad_.right;
            pad_input(x, batch, h, w, scratch);
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

    // xp = x with zero borders: xp[b, y + top, x + left, c] = x[b, y, x, c].
    void pad_input(const float* x, std::size_t batch, std::size_t h, std::size_t w, float* xp) const {
        const std::size_t wp = w + pad_.left + pad_.right, row = wp * cin_;
        for (std::size_t b = 0; b < batch; ++b) {
            for (std::size_t y = 0; y < pad_.top; ++y, xp += row) std::fill(xp, xp + row, 0.0f);
            for (std::size_t y = 0; y < h; ++y, xp += row) {
                std::fill(xp, xp + pad_.left * cin_, 0.0f);
                const float* src = x + (b * h + y) * w * cin_;
                std::copy(src, src + w * cin_, xp + pad_.left * cin_);
                std::fill(xp + (pad_.left + w) * cin_, xp + row, 0.0f);
            }
            for (std::size_t y = 0; y < pad_.bottom; ++y, xp += row) std::fill(xp, xp + row, 0.0f);
        }
    }

    std::size_t cin_ = 0, cout_ = 0, k_ = 0, s_ = 1;
    padding2d pad_{};
    packed_matrix w_;
    std::vector<float> bias_;
};

}  // namespace diffuse::nn
