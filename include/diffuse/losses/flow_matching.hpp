#pragma once
// The flow-matching (rectified flow) training loss, as diffusers' SD3/Flux training scripts compute it with
// training_utils.compute_density_for_timestep_sampling and compute_loss_weighting_for_sd3.
//
// For data x₀, noise ε and a level σ ∈ [0, 1] the network sees x_σ = (1 − σ)·x₀ + σ·ε and regresses the velocity
//   target u = ε − x₀                                 (Lipman et al. 2023, eq. 23; Liu et al. 2023, eq. 1)
// with the weighted mean-squared error of losses/denoising.hpp, L = (1/B) Σ_b w_b·mean_j (y − u)², whose
// gradient ∂L/∂y is written into a caller-owned tensor.
//
// Levels (Esser et al. 2024, "Scaling Rectified Flow Transformers", §3.1): a draw u ∈ [0, 1) from
//   uniform         u ~ U[0, 1)
//   logit_normal    u = sigmoid(m + s·n), n ~ N(0, 1)                                        (eq. 19)
//   mode            u = 1 − r − scale·(cos²(π·r/2) − 1 + r), r ~ U[0, 1)                      (eq. 20)
// picks the training grid's entry ⌊u·T⌋ (schedules/flow.hpp: flow_training_sigmas, shifted as the scheduler is).
// Loss weights: none (1), sigma_sqrt (σ⁻²), cosmap (2/(π(1 − 2σ + 2σ²)), eq. 21 of the same paper).
// Draws come from host_rng (counter-based Philox), so a seed fixes them on every platform.

#include <cmath>
#include <cstddef>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/host_rng.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/losses/checks.hpp"
#include "diffuse/losses/denoising.hpp"

namespace diffuse {

// diffusers' weighting_scheme for the level density (compute_density_for_timestep_sampling).
enum class flow_level_density { uniform, logit_normal, mode };
// … and for the loss weight (compute_loss_weighting_for_sd3).
enum class flow_loss_weighting { none, sigma_sqrt, cosmap };

// diffusers' weighting_scheme names: "logit_normal" and "mode" choose the density (any other: uniform).
[[nodiscard]] inline flow_level_density parse_flow_level_density(std::string_view scheme) {
    if (scheme == "logit_normal") return flow_level_density::logit_normal;
    if (scheme == "mode") return flow_level_density::mode;
    if (scheme == "uniform" || scheme == "none" || scheme == "sigma_sqrt" || scheme == "cosmap") return flow_level_density::uniform;
    detail::require(false, "parse_flow_level_density", "weighting_scheme", std::string(scheme),
                    "{sigma_sqrt, logit_normal, mode, cosmap, none, uniform}");
    return flow_level_density::uniform;
}
// "sigma_sqrt" and "cosmap" choose the weight (any other: none).
[[nodiscard]] inline flow_loss_weighting parse_flow_loss_weighting(std::string_view scheme) {
    if (scheme == "sigma_sqrt") return flow_loss_weighting::sigma_sqrt;
    if (scheme == "cosmap") return flow_loss_weighting::cosmap;
    if (scheme == "none" || scheme == "uniform" || scheme == "logit_normal" || scheme == "mode") return flow_loss_weighting::none;
    detail::require(false, "parse_flow_loss_weighting", "weighting_scheme", std::string(scheme),
                    "{sigma_sqrt, logit_normal, mode, cosmap, none, uniform}");
    return flow_loss_weighting::none;
}

struct flow_level_options {
    flow_level_density density = flow_level_density::uniform;
    double logit_mean = 0.0;   // diffusers' --logit_mean
    double logit_std = 1.0;    // --logit_std
    double mode_scale = 1.29;  // --mode_scale (SD3)
};

namespace detail {
inline void check_flow_level_options(const flow_level_options& o, const char* where) {
    require(std::isfinite(o.logit_mean), where, "logit_mean", o.logit_mean, "finite");
    require(std::isfinite(o.logit_std) && o.logit_std >= 0, where, "logit_std", o.logit_std, "[0, inf)");
    require(std::isfinite(o.mode_scale), where, "mode_scale", o.mode_scale, "finite");
}
}  // namespace detail

// The logit-normal level of a standard normal draw n: sigmoid(mean + std·n) (Esser et al. 2024, eq. 19).
[[nodiscard]] inline double logit_normal_level(double n, double mean = 0.0, double std = 1.0) {
    return 1.0 / (1.0 + std::exp(-(mean + std * n)));
}
// The mode-sampling level of a uniform draw r: 1 − r − scale·(cos²(π·r/2) − 1 + r) (Esser et al. 2024, eq. 20).
[[nodiscard]] inline double mode_level(double r, double scale = 1.29) {
    const double c = std::cos(std::numbers::pi * r / 2.0);
    return 1.0 - r - scale * (c * c - 1.0 + r);
}

// `batch` draws u of the density (compute_density_for_timestep_sampling), one host_rng draw each.
[[nodiscard]] inline std::vector<double> sample_flow_levels(const flow_level_options& o, std::size_t batch, host_rng& rng) {
    detail::check_flow_level_options(o, "sample_flow_levels");
    std::vector<double> u(batch);
    for (auto& v : u) {
        switch (o.density) {
            case flow_level_density::logit_normal: v = logit_normal_level(rng.normal(), o.logit_mean, o.logit_std); break;
            case flow_level_density::mode: v = mode_level(rng.uniform(), o.mode_scale); break;
            case flow_level_density::uniform: v = rng.uniform(); break;
        }
    }
    return u;
}

// σ of each draw: training_sigmas[⌊u·T⌋] (the training scripts' `indices = (u * T).long()`), the index clamped
// into [0, T − 1] (a mode draw with scale outside [−1, 2/(π − 2)] leaves [0, 1)).
[[nodiscard]] inline std::vector<double> flow_training_levels(std::span<const double> u, std::span<const double> training_sigmas) {
    constexpr std::string_view where = "flow_training_levels";
    detail::require(!training_sigmas.empty(), where, "training_sigmas.size()", training_sigmas.size(), ">= 1");
    const double T = double(training_sigmas.size());
    std::vector<double> s(u.size());
    for (std::size_t b = 0; b < u.size(); ++b) {
        if (!std::isfinite(u[b])) detail::require(false, where, "u[" + std::to_string(b) + "]", u[b], "finite");
        const double i = std::floor(u[b] * T);
        s[b] = training_sigmas[i <= 0 ? 0 : i >= T - 1 ? training_sigmas.size() - 1 : std::size_t(i)];
    }
    return s;
}

// compute_loss_weighting_for_sd3: 1, σ⁻² or 2/(π(1 − 2σ + 2σ²)).
[[nodiscard]] inline double flow_loss_weight(flow_loss_weighting w, double sigma) {
    detail::require(std::isfinite(sigma) && sigma >= 0 && sigma <= 1, "flow_loss_weight", "sigma", sigma, "[0, 1]");
    switch (w) {
        case flow_loss_weighting::sigma_sqrt:
            detail::require(sigma > 0, "flow_loss_weight", "sigma", sigma, "(0, 1] for sigma_sqrt");
            return 1.0 / (sigma * sigma);
        case flow_loss_weighting::cosmap: return 2.0 / (std::numbers::pi * (1.0 - 2.0 * sigma + 2.0 * sigma * sigma));
        case flow_loss_weighting::none: break;
    }
    return 1.0;
}
[[nodiscard]] inline std::vector<double> flow_loss_weights(flow_loss_weighting w, std::span<const double> sigma) {
    std::vector<double> out(sigma.size());
    for (std::size_t b = 0; b < sigma.size(); ++b) out[b] = flow_loss_weight(w, sigma[b]);
    return out;
}

// x_σ = (1 − σ)·x₀ + σ·ε per sample (diffusers' scale_noise / the training scripts' noisy_model_input).
template <tensor X0, tensor Eps, class Out>
void flow_matching_noisy(const X0& x0, const Eps& noise, std::span<const double> sigma, Out&& x_t) {
    constexpr std::string_view where = "flow_matching_noisy";
    const auto vx = view(x0);
    const auto ve = view(noise);
    auto vo = detail::host_writable_view(std::forward<Out>(x_t), "flow_matching_noisy");
    detail::require_same_shape(vx, ve, where, "x0", "noise");
    detail::require_same_shape(vx, vo, where, "x0", "x_t");
    detail::require_batch_values(sigma, vx.batch, where, "sigma", false);
    std::vector<double> keep(sigma.size());
    for (std::size_t b = 0; b < sigma.size(); ++b) {
        if (!(sigma[b] >= 0 && sigma[b] <= 1)) detail::require(false, where, "sigma[" + std::to_string(b) + "]", sigma[b], "[0, 1]");
        keep[b] = 1.0 - sigma[b];
    }
    lincomb(vo, per_sample(keep), vx, per_sample(sigma), ve);
}

// The flow-matching loss: target u = ε − x₀, L = (1/B) Σ_b w_b·mean_j (y − u)², ∂L/∂y into grad (which must not
// overlap output). Empty weights: all ones (pass flow_loss_weights(...) for sigma_sqrt / cosmap).
template <tensor Y, tensor X0, tensor Eps, class G>
double flow_matching_loss(const Y& output, const X0& x0, const Eps& noise, std::span<const double> weights, G&& grad,
                          std::span<double> per_sample_mse = {}) {
    constexpr std::string_view where = "flow_matching_loss";
    const auto vy = view(output);
    const auto vx = view(x0);
    const auto ve = view(noise);
    auto vg = detail::host_writable_view(std::forward<G>(grad), "flow_matching_loss");
    detail::require_same_shape(vy, vg, where, "output", "grad");
    detail::require_same_shape(vx, ve, where, "x0", "noise");
    detail::require_same_shape(vy, vx, where, "output", "x0");
    if (detail::views_overlap(vg, vy)) detail::fail(where, "grad must not overlap output");
    if (detail::views_overlap(vg, vx) || detail::views_overlap(vg, ve)) detail::fail(where, "grad must not overlap x0 or noise");
    lincomb(vg, 1.0, ve, -1.0, vx);  // grad holds the target u = ε − x₀ for a moment
    return weighted_mse(vy, vg, weights, vg, per_sample_mse);
}

}  // namespace diffuse
