#pragma once
// Denoising losses for ε, x₀ and v targets with per-sample weights.
//
// For a noisy sample x_t = α_t·x₀ + σ_t·ε the network predicts one of
//   ε                       (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eq. 14)
//   x₀                      (the "sample" prediction)
//   v = α_t·ε − σ_t·x₀      (Salimans & Ho 2022, "Progressive Distillation", §4 / appendix D)
// and the loss is a weighted mean-squared error
//   L = (1/B) Σ_b w_b · (1/D) Σ_j (y_bj − target_bj)²
// whose gradient with respect to the model output,
//   ∂L/∂y_bj = 2 w_b (y_bj − target_bj) / (B·D),
// is written into a caller-owned tensor so that any framework (or diffuse's MLP) can back-propagate it.
// Everything runs on the diffuse primitives, so any adapted tensor type works.

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/losses/checks.hpp"

namespace diffuse {

// What the network predicts (diffusers' prediction_type: "epsilon", "sample", "v_prediction").
enum class denoising_target { epsilon, sample, v_prediction };

[[nodiscard]] inline denoising_target parse_denoising_target(std::string_view name) {
    if (name == "epsilon") return denoising_target::epsilon;
    if (name == "sample") return denoising_target::sample;
    if (name == "v_prediction") return denoising_target::v_prediction;
    detail::require(false, "parse_denoising_target", "prediction_type", std::string(name),
                    "{epsilon, sample, v_prediction}");
    return denoising_target::epsilon;
}


// target = ε, x₀ or α·ε − σ·x₀ (α, σ one value per sample; only v needs them, pass {} otherwise).
template <tensor X0, tensor Eps, class Out>
void make_denoising_target(denoising_target kind, const X0& x0, const Eps& noise, std::span<const double> alpha,
                           std::span<const double> sigma, Out&& target) {
    constexpr std::string_view where = "make_denoising_target";
    const auto vx = view(x0);
    const auto ve = view(noise);
    auto vt = detail::host_writable_view(std::forward<Out>(target), "make_denoising_target");
    detail::require_same_shape(vx, ve, where, "x0", "noise");
    detail::require_same_shape(vx, vt, where, "x0", "target");
    switch (kind) {
        case denoising_target::epsilon: lincomb(vt, 1.0, ve); break;
        case denoising_target::sample: lincomb(vt, 1.0, vx); break;
        case denoising_target::v_prediction: {
            detail::require_batch_values(alpha, vx.batch, where, "alpha", false);
            detail::require_batch_values(sigma, vx.batch, where, "sigma", false);
            std::vector<double> neg_sigma(sigma.size());
            for (std::size_t b = 0; b < sigma.size(); ++b) neg_sigma[b] = -sigma[b];
            lincomb(vt, per_sample(alpha), ve, per_sample(neg_sigma), vx);  // v = α·ε − σ·x₀
            break;
        }
    }
}

// Weighted MSE and its gradient: returns L = (1/B) Σ_b w_b·mean_j (y − target)², writes ∂L/∂y into
// `grad` (which may be the very tensor `target`, but not `output`), and the unweighted per-sample
// mean squared errors into `per_sample_mse` when it is non-empty. Empty `weights` means all ones.
template <tensor Y, tensor Tgt, class G>
double weighted_mse(const Y& output, const Tgt& target, std::span<const double> weights, G&& grad,
                    std::span<double> per_sample_mse = {}) {
    constexpr std::string_view where = "weighted_mse";
    const auto vy = view(output);
    const auto vt = view(target);
    auto vg = detail::host_writable_view(std::forward<G>(grad), "weighted_mse");
    detail::require_same_shape(vy, vt, where, "output", "target");
    detail::require_same_shape(vy, vg, where, "output", "grad");
    detail::require_weights(weights, vy.batch, where);
    detail::require_batch_values(per_sample_mse, vy.batch, where, "per_sample_mse", true);
    if (detail::views_overlap(vg, vy)) detail::fail(where, "grad must not overlap output");
    detail::require(vy.per_sample > 0, where, "elements per sample", vy.per_sample, ">= 1");
    const std::size_t B = vy.batch;
    if (B == 0) return 0.0;
    const double D = double(vy.per_sample);
    lincomb(vg, 1.0, vy, -1.0, vt);  // r = y − target
    std::vector<double> ss(B), scale(B);
    sum_squares(vg, ss);
    double loss = 0.0;
    for (std::size_t b = 0; b < B; ++b) {
        const double w = weights.empty() ? 1.0 : weights[b];
        const double mse = ss[b] / D;
        if (!per_sample_mse.empty()) per_sample_mse[b] = mse;
        loss += w * mse;
        scale[b] = 2.0 * w / (double(B) * D);
    }
    lincomb(vg, per_sample(scale), vg);  // ∂L/∂y = 2w(y − target)/(B·D)
    return loss / double(B);
}

// The denoising loss of Ho et al. (2020) generalised to the three targets and per-sample weights:
// builds the target from (x₀, ε, α, σ), then calls weighted_mse. `grad` receives ∂L/∂output.
template <tensor Y, tensor X0, tensor Eps, class G>
double denoising_loss(denoising_target kind, const Y& output, const X0& x0, const Eps& noise,
                      std::span<const double> alpha, std::span<const double> sigma, std::span<const double> weights,
                      G&& grad, std::span<double> per_sample_mse = {}) {
    auto vg = detail::host_writable_view(std::forward<G>(grad), "denoising_loss");
    const auto vy = view(output);
    detail::require_same_shape(vy, vg, "denoising_loss", "output", "grad");
    if (detail::views_overlap(vg, vy)) detail::fail("denoising_loss", "grad must not overlap output");
    make_denoising_target(kind, x0, noise, alpha, sigma, vg);  // grad holds the target for a moment
    return weighted_mse(vy, vg, weights, vg, per_sample_mse);
}

}  // namespace diffuse
