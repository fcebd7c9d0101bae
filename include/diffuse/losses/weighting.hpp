#pragma once
// Per-sample loss weightings. Each is a function of the noise level of the sample; the vector forms
// fill one weight per sample for denoising_loss / weighted_mse.
//
//   min_snr_weight(snr, γ, target)   Min-SNR-γ (Hang et al. 2023, "Efficient Diffusion Training via
//                                    Min-SNR Weighting Strategy", eq. 8): the x₀-loss weight min(SNR, γ)
//                                    expressed for the chosen target: ε: min(SNR,γ)/SNR,
//                                    x₀: min(SNR,γ), v: min(SNR,γ)/(SNR+1) (as diffusers' train scripts).
//   soft_min_snr_weight(σ, σ_d)      soft-min-SNR (Crowson et al. 2024, "Scalable High-Resolution
//                                    Pixel-Space Image Synthesis with HDiT", §4.2), the weight of the
//                                    preconditioned (F-)objective: (σ·σ_d)² / (σ² + σ_d²)².
//   snr_plus_one_weight(σ, σ_d)      σ_d² / (σ² + σ_d²): k-diffusion's "snr" weighting of the F-objective.
//   edm_weight(σ, σ_d)               EDM's λ(σ) = (σ² + σ_d²) / (σ·σ_d)² (Karras et al. 2022, Table 1),
//                                    the weight of the denoiser (x₀) loss that makes the effective F-loss
//                                    weight one.
//   snr_from_alpha_sigma(α, σ)       SNR = α²/σ²;  snr_from_alpha_cumprod(ᾱ) = ᾱ/(1 − ᾱ).
// The likelihood weighting of denoising score matching (g(t)², Song et al. 2021) lives in dsm.hpp.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/losses/denoising.hpp"

namespace diffuse {

[[nodiscard]] inline double snr_from_alpha_cumprod(double alpha_cumprod) {
    detail::require(alpha_cumprod >= 0.0 && alpha_cumprod <= 1.0, "snr_from_alpha_cumprod", "alpha_cumprod",
                    alpha_cumprod, "[0, 1]");
    if (alpha_cumprod == 1.0) return std::numeric_limits<double>::infinity();
    return alpha_cumprod / (1.0 - alpha_cumprod);
}

[[nodiscard]] inline double snr_from_alpha_sigma(double alpha, double sigma) {
    detail::require(std::isfinite(alpha), "snr_from_alpha_sigma", "alpha", alpha, "finite");
    detail::require(sigma >= 0.0 && std::isfinite(sigma), "snr_from_alpha_sigma", "sigma", sigma, "[0, inf)");
    if (sigma == 0.0) return std::numeric_limits<double>::infinity();
    return (alpha * alpha) / (sigma * sigma);
}

// Min-SNR-γ weight for a loss on `target`. snr ≥ 0 (may be +inf), γ > 0.
[[nodiscard]] inline double min_snr_weight(double snr, double gamma, denoising_target target) {
    detail::require(gamma > 0.0 && std::isfinite(gamma), "min_snr_weight", "gamma", gamma, "(0, inf)");
    detail::require(snr >= 0.0, "min_snr_weight", "snr", snr, "[0, inf]");
    const double m = std::min(snr, gamma);  // Hang et al. eq. 8: w_t = min(SNR(t), γ) for the x₀ loss
    switch (target) {
        case denoising_target::sample: return m;
        case denoising_target::epsilon:
            detail::require(snr > 0.0, "min_snr_weight", "snr", snr, "(0, inf] for an epsilon target");
            return std::isinf(snr) ? 0.0 : m / snr;  // ε-loss = SNR · x₀-loss
        case denoising_target::v_prediction: return std::isinf(snr) ? 0.0 : m / (snr + 1.0);  // v-loss = (SNR+1)·x₀-loss
    }
    return m;
}

[[nodiscard]] inline double soft_min_snr_weight(double sigma, double sigma_data = 1.0) {
    detail::require(sigma >= 0.0 && std::isfinite(sigma), "soft_min_snr_weight", "sigma", sigma, "[0, inf)");
    detail::require(sigma_data > 0.0 && std::isfinite(sigma_data), "soft_min_snr_weight", "sigma_data", sigma_data,
                    "(0, inf)");
    const double s2 = sigma * sigma, d2 = sigma_data * sigma_data;
    return (s2 * d2) / ((s2 + d2) * (s2 + d2));
}

[[nodiscard]] inline double snr_plus_one_weight(double sigma, double sigma_data = 1.0) {
    detail::require(sigma >= 0.0 && std::isfinite(sigma), "snr_plus_one_weight", "sigma", sigma, "[0, inf)");
    detail::require(sigma_data > 0.0 && std::isfinite(sigma_data), "snr_plus_one_weight", "sigma_data", sigma_data,
                    "(0, inf)");
    const double d2 = sigma_data * sigma_data;
    return d2 / (sigma * sigma + d2);
}

[[nodiscard]] inline double edm_weight(double sigma, double sigma_data = 0.5) {
    detail::require(sigma > 0.0 && std::isfinite(sigma), "edm_weight", "sigma", sigma, "(0, inf)");
    detail::require(sigma_data > 0.0 && std::isfinite(sigma_data), "edm_weight", "sigma_data", sigma_data,
                    "(0, inf)");
    const double s = sigma * sigma_data;
    return (sigma * sigma + sigma_data * sigma_data) / (s * s);  // λ(σ) = 1 / c_out(σ)²
}

// Vector forms: one weight per sample.
[[nodiscard]] inline std::vector<double> min_snr_weights(std::span<const double> snr, double gamma,
                                                         denoising_target target) {
    std::vector<double> w(snr.size());
    for (std::size_t b = 0; b < snr.size(); ++b) w[b] = min_snr_weight(snr[b], gamma, target);
    return w;
}
[[nodiscard]] inline std::vector<double> soft_min_snr_weights(std::span<const double> sigma, double sigma_data = 1.0) {
    std::vector<double> w(sigma.size());
    for (std::size_t b = 0; b < sigma.size(); ++b) w[b] = soft_min_snr_weight(sigma[b], sigma_data);
    return w;
}
[[nodiscard]] inline std::vector<double> edm_weights(std::span<const double> sigma, double sigma_data = 0.5) {
    std::vector<double> w(sigma.size());
    for (std::size_t b = 0; b < sigma.size(); ++b) w[b] = edm_weight(sigma[b], sigma_data);
    return w;
}

}  // namespace diffuse
