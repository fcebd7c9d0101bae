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

// sums[c] = Σ_p x[p·C + c], sums[C + c] = Σ_p x[p·C + c]² in double, p in increasing order.
DIFFUSE_ALWAYS_INLINE void channel_sums_loop(const float* DIFFUSE_RESTRICT x, std::size_t pixels, std::size_t C,
                                             double* DIFFUSE_RESTRICT sums) {
    double* DIFFUSE_RESTRICT s = sums;
    double* DIFFUSE_RESTRICT q = sums + C;
    for (std::size_t c = 0; c < C; ++c) s[c] = 0.0, q[c] = 0.0;
    for (std::size_t p = 0; p < pixels; ++p) {
        const float* DIFFUSE_RESTRICT row = x + p * C;
        for (std::size_t c = 0; c < C; ++c) {
            const double v = row[c];
            s[c] += v;
            q[c] += v * v;
        }
    }
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) inline void channel_sums_avx2(const float* x, std::size_t pixels, std::size_t C,
                                                                  double* sums) {
    channel_sums_loop(x, pixels, C, sums);
}
#endif
inline void channel_sums(const float* x, std::size_t pixels, std::size_t C, double* sums) {
#if defined(__x86_64__) || defined(__i386__)
    if (active_isa() == kernel_isa::avx2_fma) return channel_sums_avx2(x, pixels, C, sums);
#endif
    channel_sums_loop(x, pixels, C, sums);
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
    [[nodiscard]] double eps() const noexcept { return eps_; }
    [[nodiscard]] std::span<const float> gamma() const noexcept { return gamma_; }
    [[nodiscard]] std::span<const float> beta() const noexcept { return beta_; }

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
        coefficients(x, batch, pixels, stats, coef, time_scale_shift);
        const std::size_t C = channels_, nb = blocks(pixels);
        run(batch * pixels * C, batch * nb, [&](std::size_t task) {
            const std::size_t b = task / nb, k = task % nb;
            const float* a = coef + b * 2 * C;
            const std::size_t p0 = k * detail::norm_pixel_block, p1 = std::min(pixels, p0 + detail::norm_pixel_block);
            const std::size_t off = (b * pixels + p0) * C;
            detail::affine_activate(act, x + off, out + off, a, a + C, p1 - p0, C);
        });
    }

    // The normalisation as per-sample affine coefficients, y = act(x·a[b, c] + s[b, c]), without writing y:
    // coef[b·2C + c] = a[b, c], coef[b·2C + C + c] = s[b, c] (a conv2d prologue can apply them, conv2d.hpp).
    void coefficients(const float* x, std::size_t batch, std::size_t pixels, double* stats, float* coef,
                      const float* time_scale_shift = nullptr) const {
        const std::size_t C = channels_, nb = blocks(pixels), cpg = C / groups_;
        double* partial = stats;  // [batch, nb, 2, C]: Σx and Σx² per block and channel
        run(batch * pixels * C, batch * nb, [&](std::size_t task) {
            const std::size_t b = task / nb, k = task % nb;
            const std::size_t p0 = k * detail::norm_pixel_block, p1 = std::min(pixels, p0 + detail::norm_pixel_block);
            detail::channel_sums(x + (b * pixels + p0) * C, p1 - p0, C, partial + task * 2 * C);
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
    }

private:
    // f(0 .. n−1), on the pool when the tensor (`elements` floats) is large enough.
    template <class F>
    static void run(std::size_t elements, std::size_t n, const F& f) {
        if (elements >= diffuse::detail::parallel_threshold / 4) diffuse::detail::thread_pool::instance().run(n, f);
        else for (std::size_t i = 0; i < n; ++i) f(i);
    }
    [[nodiscard]] static std::size_t blocks(std::size_t pixels) noexcept {
        return (pixels + detail::norm_pixel_block - 1) / detail::norm_pixel_block;
    }
    std::size_t channels_ = 0, groups_ = 1;
    double eps_ = 1e-5;
    std::vector<float> gamma_, beta_;
};

}  // namespace diffuse::nn
