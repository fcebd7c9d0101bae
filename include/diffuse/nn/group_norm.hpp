#pragma once
// Group normalisation (Wu & He 2018) on NHWC activations, fused with the activation that follows it in
// a U-Net and with the scale-shift time conditioning of "Diffusion Models Beat GANs" (Dhariwal & Nichol).
//
//   y[b,p,c] = act( ((x[b,p,c] − μ[b,g]) / √(σ²[b,g] + ε) · γ[c] + β[c]) · (1 + s[b,c]) + h[b,c] )
//
// with g = c / (C/G) the channel's group, μ and σ² the mean and (biased) variance of the group over all
// pixels of sample b, and (s, h) the optional per-sample time scale and shift. Statistics are summed in
// double over fixed blocks of pixels, the blocks added in order, so the bits never depend on the
// thread count.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/nn/activation.hpp"

namespace diffuse::nn {

namespace detail {

inline constexpr std::size_t norm_pixel_block = 256;

// out[c] = act(x[c]·a[c] + b[c]) for one pixel.
template <activation A>
DIFFUSE_ALWAYS_INLINE void affine_activate_loop(const float* DIFFUSE_RESTRICT x, float* out, const float* DIFFUSE_RESTRICT a,
                                                const float* DIFFUSE_RESTRICT b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = apply<A>(x[i] * a[i] + b[i]);
}
#if defined(__x86_64__) || defined(__i386__)
template <activation A>
__attribute__((target("avx2,fma"))) void affine_activate_avx2(const float* x, float* out, const float* a, const float* b,
                                                              std::size_t pixels, std::size_t c) {
    for (std::size_t p = 0; p < pixels; ++p) affine_activate_loop<A>(x + p * c, out + p * c, a, b, c);
}
#endif
template <activation A>
void affine_activate_portable(const float* x, float* out, const float* a, const float* b, std::size_t pixels, std::size_t c) {
    for (std::size_t p = 0; p < pixels; ++p) affine_activate_loop<A>(x + p * c, out + p * c, a, b, c);
}
template <activation A>
void affine_activate(const float* x, float* out, const float* a, const float* b, std::size_t pixels, std::size_t c) {
#if defined(__x86_64__) || defined(__i386__)
    if (active_isa() == kernel_isa::avx2_fma) return affine_activate_avx2<A>(x, out, a, b, pixels, c);
#endif
    affine_activate_portable<A>(x, out, a, b, pixels, c);
}
// out[p, c] = act(x[p, c]·a[c] + b[c]) over `pixels` pixels of c channels.
inline void affine_activate(activation act, const float* x, float* out, const float* a, const float* b, std::size_t pixels,
                            std::size_t c) {
    switch (act) {
        case activation::none: return affine_activate<activation::none>(x, out, a, b, pixels, c);
        case activation::silu: return affine_activate<activation::silu>(x, out, a, b, pixels, c);
        case activation::mish: return affine_activate<activation::mish>(x, out, a, b, pixels, c);
        case activation::gelu: return affine_activate<activation::gelu>(x, out, a, b, pixels, c);
        case activation::relu: return affine_activate<activation::relu>(x, out, a, b, pixels, c);
    }
}

}  // namespace detail

class group_norm {
public:
    group_norm() = default;
    // γ (weight) and β (bias) of torch.nn.GroupNorm(groups, channels, eps).
    group_norm(std::size_t channels, std::size_t groups, double eps, std::span<const float> gamma, std::span<const float> beta)
        : channels_(channels), groups_(groups), eps_(eps), gamma_(gamma.begin(), gamma.end()), beta_(beta.begin(), beta.end()) {
        constexpr std::string_view where = "group_norm";
        diffuse::detail::require(groups >= 1, where, "groups", groups, ">= 1");
        if (channels == 0 || channels % groups != 0)
            diffuse::detail::fail(where, std::to_string(channels) + " channels cannot be split into " + std::to_string(groups) +
                                             " groups (the channel count must be a positive multiple of the group count)");
        diffuse::detail::require(eps > 0 && std::isfinite(eps), where, "eps", eps, "(0, inf)");
        if (gamma.size() != channels || beta.size() != channels)
            diffuse::detail::fail(where, "weight and bias need " + std::to_string(channels) + " values each, got " +
                                             std::to_string(gamma.size()) + " and " + std::to_string(beta.size()));
    }

    [[nodiscard]] std::size_t channels() const noexcept { return channels_; }
    [[nodiscard]] std::size_t groups() const noexcept { return groups_; }

    // Scratch that forward() needs for `batch` samples of `pixels` pixels: partial sums (doubles) and the
    // per-sample affine coefficients (floats).
    [[nodiscard]] std::size_t stats_doubles(std::size_t batch, std::size_t pixels) const noexcept {
        return batch * blocks(pixels) * 2 * channels_;
    }
    [[nodiscard]] std::size_t coef_floats(std::size_t batch) const noexcept { return batch * 2 * channels_; }

    // x, out: [batch, pixels, channels] (out may be x). time_scale_shift: null, or [batch, 2·channels] holding
    // per sample the C scales s then the C shifts h. stats, coef: stats_doubles() and coef_floats() of scratch.
    void forward(const float* x, std::size_t batch, std::size_t pixels, float* out, activation act, double* stats,
                 float* coef, const float* time_scale_shift = nullptr) const {
        const std::size_t C = channels_, nb = blocks(pixels), cpg = C / groups_;
        double* partial = stats;  // [batch, nb, 2, C]: Σx and Σx² per block and channel
        auto& pool = diffuse::detail::thread_pool::instance();
        const bool parallel = batch * pixels * C >= diffuse::detail::parallel_threshold / 4;
        auto run = [&](std::size_t n, auto&& f) {
            if (parallel) pool.run(n, f);
            else for (std::size_t i = 0; i < n; ++i) f(i);
        };
        run(batch * nb, [&](std::size_t task) {
            const std::size_t b = task / nb, k = task % nb;
            double* s = partial + task * 2 * C;
            double* q = s + C;
            for (std::size_t c = 0; c < C; ++c) s[c] = 0.0, q[c] = 0.0;
            const std::size_t p1 = std::min(pixels, (k + 1) * detail::norm_pixel_block);
            for (std::size_t p = k * detail::norm_pixel_block; p < p1; ++p) {
                const float* row = x + (b * pixels + p) * C;
                for (std::size_t c = 0; c < C; ++c) {
                    const double v = row[c];
                    s[c] += v;
                    q[c] += v * v;
                }
            }
        });
        // Per sample and group: μ, σ² = E[x²] − μ² (in double), then per channel y = x·a + b.
        const double n = double(pixels) * double(cpg);
        for (std::size_t b = 0; b < batch; ++b) {
            float* a = coef + b * 2 * C;
            float* sh = a + C;
            for (std::size_t g = 0; g < groups_; ++g) {
                double sum = 0, sq = 0;
                for (std::size_t k = 0; k < nb; ++k) {
                    const double* s = partial + (b * nb + k) * 2 * C;
                    for (std::size_t c = g * cpg; c < (g + 1) * cpg; ++c) sum += s[c], sq += s[C + c];
                }
                const double mean = sum / n, var = std::max(0.0, sq / n - mean * mean);
                const double rstd = 1.0 / std::sqrt(var + eps_);
                for (std::size_t c = g * cpg; c < (g + 1) * cpg; ++c) {
                    double ac = rstd * gamma_[c], bc = beta_[c] - mean * ac;
                    if (time_scale_shift) {
                        const double s1 = 1.0 + double(time_scale_shift[b * 2 * C + c]), h = time_scale_shift[b * 2 * C + C + c];
                        ac *= s1;
                        bc = bc * s1 + h;
                    }
                    a[c] = static_cast<float>(ac);
                    sh[c] = static_cast<float>(bc);
                }
            }
        }
        run(batch * nb, [&](std::size_t task) {
            const std::size_t b = task / nb, k = task % nb;
            const float* a = coef + b * 2 * C;
            const std::size_t p0 = k * detail::norm_pixel_block, p1 = std::min(pixels, p0 + detail::norm_pixel_block);
            const std::size_t off = (b * pixels + p0) * C;
            detail::affine_activate(act, x + off, out + off, a, a + C, p1 - p0, C);
        });
    }

private:
    [[nodiscard]] static std::size_t blocks(std::size_t pixels) noexcept {
        return (pixels + detail::norm_pixel_block - 1) / detail::norm_pixel_block;
    }
    std::size_t channels_ = 0, groups_ = 1;
    double eps_ = 1e-5;
    std::vector<float> gamma_, beta_;
};

}  // namespace diffuse::nn
