#pragma once
// Multi-head self-attention over the pixels of an NHWC feature map, as diffusers' Attention block of
// UNet2DModel (AttnProcessor2_0 on a 4-D input), "Attention Is All You Need" eq. 1 per head:
//
//   x̂ = GroupNorm(x) (when the block has a norm);   q, k, v = x̂·W_qᵀ + b_q, x̂·W_kᵀ + b_k, x̂·W_vᵀ + b_v
//   o_h = softmax(q_h·k_hᵀ / √d) · v_h  for each head h (d = dim_head, columns h·d … h·d + d − 1)
//   y = (o·W_oᵀ + b_o + x) / rescale_output_factor
//
// q, k and v come from one GEMM with the three weights stacked. Scores are formed for blocks of
// query rows, so the memory is O(block × tokens), never tokens².

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/nn/activation.hpp"
#include "diffuse/nn/gemm.hpp"
#include "diffuse/nn/group_norm.hpp"
#include "diffuse/nn/linear.hpp"

namespace diffuse::nn {

namespace detail {
inline constexpr std::size_t attention_query_block = 64;

// Each row of s (rows × n) becomes softmax(row): e^{s − max} / Σ e^{s − max}.
DIFFUSE_ALWAYS_INLINE void softmax_rows_loop(float* s, std::size_t rows, std::size_t n) {
    for (std::size_t r = 0; r < rows; ++r) {
        float* row = s + r * n;
        float m = row[0];
        for (std::size_t j = 1; j < n; ++j) m = row[j] > m ? row[j] : m;
        float sum = 0.0f;
        for (std::size_t j = 0; j < n; ++j) {
            row[j] = exp_approx(row[j] - m);
            sum += row[j];
        }
        const float inv = 1.0f / sum;
        for (std::size_t j = 0; j < n; ++j) row[j] *= inv;
    }
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) inline void softmax_rows_avx2(float* s, std::size_t rows, std::size_t n) {
    softmax_rows_loop(s, rows, n);
}
#endif
inline void softmax_rows(float* s, std::size_t rows, std::size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (active_isa() == kernel_isa::avx2_fma) return softmax_rows_avx2(s, rows, n);
#endif
    softmax_rows_loop(s, rows, n);
}
}  // namespace detail

// Buffers of one attention call, reused across calls (grown, never shrunk).
struct attention_workspace {
    std::vector<float> normed, qkv, heads_out, scores, norm_coef;
    std::vector<double> norm_stats;
    packed_matrix keys_t, values;
};

class spatial_attention {
public:
    struct projection {
        std::span<const float> weight, bias;  // [out, in], [out]
    };

    spatial_attention() = default;
    // channels C, heads × dim_head = the inner width; norm: the block's GroupNorm, if it has one.
    spatial_attention(std::size_t channels, std::size_t heads, std::size_t dim_head, std::optional<group_norm> norm,
                      projection q, projection k, projection v, projection out, double rescale_output_factor)
        : channels_(channels), heads_(heads), dim_head_(dim_head), norm_(std::move(norm)), rescale_(float(rescale_output_factor)) {
        constexpr std::string_view where = "spatial_attention";
        diffuse::detail::require(heads >= 1, where, "heads", heads, ">= 1");
        diffuse::detail::require(dim_head >= 1, where, "dim_head", dim_head, ">= 1");
        diffuse::detail::require(rescale_output_factor > 0 && std::isfinite(rescale_output_factor), where,
                                 "rescale_output_factor", rescale_output_factor, "(0, inf)");
        const std::size_t inner = heads * dim_head;
        std::vector<float> w, b;
        for (const projection* p : {&q, &k, &v}) {
            if (p->weight.size() != inner * channels || p->bias.size() != inner)
                diffuse::detail::fail(where, "q/k/v projections need weight [" + std::to_string(inner) + ", " +
                                                 std::to_string(channels) + "] and bias [" + std::to_string(inner) + "]");
            w.insert(w.end(), p->weight.begin(), p->weight.end());
            b.insert(b.end(), p->bias.begin(), p->bias.end());
        }
        qkv_ = linear(channels, 3 * inner, w, b);
        out_ = linear(inner, channels, out.weight, out.bias);
        if (norm_ && norm_->channels() != channels)
            diffuse::detail::fail(where, "the group norm has " + std::to_string(norm_->channels()) + " channels, not " +
                                             std::to_string(channels));
    }

    [[nodiscard]] std::size_t channels() const noexcept { return channels_; }
    [[nodiscard]] std::size_t heads() const noexcept { return heads_; }
    [[nodiscard]] std::size_t dim_head() const noexcept { return dim_head_; }
    [[nodiscard]] const std::optional<group_norm>& norm() const noexcept { return norm_; }
    [[nodiscard]] const linear& qkv() const noexcept { return qkv_; }  // [q; k; v] stacked: 3·inner outputs
    [[nodiscard]] const linear& out() const noexcept { return out_; }
    [[nodiscard]] float rescale_output_factor() const noexcept { return rescale_; }

    // x, y: [batch, tokens, channels], y ≠ x.
    void forward(const float* x, std::size_t batch, std::size_t tokens, float* y, attention_workspace& ws) const {
        const std::size_t C = channels_, d = dim_head_, inner = heads_ * d, T = tokens;
        const std::size_t qb = std::min(T, detail::attention_query_block);
        grow(ws.normed, batch * T * C);
        grow(ws.qkv, batch * T * 3 * inner);
        grow(ws.heads_out, batch * T * inner);
        grow(ws.scores, qb * T);
        const float* xn = x;
        if (norm_) {
            grow(ws.norm_stats, norm_->stats_doubles(batch, T));
            grow(ws.norm_coef, norm_->coef_floats(batch));
            norm_->forward(x, batch, T, ws.normed.data(), activation::none, ws.norm_stats.data(), ws.norm_coef.data());
            xn = ws.normed.data();
        }
        qkv_.forward(xn, batch * T, ws.qkv.data());
        const float scale = static_cast<float>(1.0 / std::sqrt(double(d)));
        const std::size_t ld = 3 * inner;
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t h = 0; h < heads_; ++h) {
                const float* q = ws.qkv.data() + b * T * ld + h * d;
                const float* k = q + inner;
                const float* v = q + 2 * inner;
                ws.keys_t.pack(k, d, T, 1, std::ptrdiff_t(ld));    // kᵀ: (i, j) = k[j, i]
                ws.values.pack(v, T, d, std::ptrdiff_t(ld), 1);    // v:  (i, j) = v[i, j]
                for (std::size_t r0 = 0; r0 < T; r0 += qb) {
                    const std::size_t rows = std::min(qb, T - r0);
                    matmul_epilogue e;
                    e.alpha = scale;
                    matmul(rows, q + r0 * ld, ld, ws.keys_t, ws.scores.data(), T, e);
                    detail::softmax_rows(ws.scores.data(), rows, T);
                    matmul(rows, ws.scores.data(), T, ws.values, ws.heads_out.data() + (b * T + r0) * inner + h * d, inner);
                }
            }
        out_.forward(ws.heads_out.data(), batch * T, y, x);
        if (rescale_ != 1.0f)
            for (std::size_t i = 0; i < batch * T * C; ++i) y[i] /= rescale_;
    }

private:
    template <class V>
    static void grow(std::vector<V>& v, std::size_t n) {
        if (v.size() < n) v.resize(n);
    }

    std::size_t channels_ = 0, heads_ = 1, dim_head_ = 1;
    std::optional<group_norm> norm_;
    linear qkv_, out_;
    float rescale_ = 1.0f;
};

}  // namespace diffuse::nn
