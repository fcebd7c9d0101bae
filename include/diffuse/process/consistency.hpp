#pragma once
// The consistency-model parameterisation (Song et al. 2023, "Consistency Models"), shared by the few-step
// samplers (samplers/lcm.hpp) and the consistency training targets (train/distillation.hpp).
//
//   consistency_scalings(σ, σ_data, σ_min)   f(x, σ) = c_skip(σ)·x + c_out(σ)·F(x, σ) with
//       c_skip = σ_d²/((σ − σ_min)² + σ_d²),  c_out = (σ − σ_min)·σ_d/√(σ² + σ_d²)      (appendix C)
//       so that f(x, σ_min) = x, the boundary condition of eq. 3 (c_skip = 1, c_out = 0 there).
//   consistency_boundaries(N, σ_min, σ_max, ρ)   the discretisation of Karras et al. 2022 (eq. 5) the
//       models are trained on: σ_i = (σ_min^{1/ρ} + (i−1)/(N−1)·(σ_max^{1/ρ} − σ_min^{1/ρ}))^ρ, ascending,
//       i = 1 … N (appendix C).

#include <cmath>
#include <cstddef>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse {

struct consistency_scaling {
    double c_skip, c_out;
};

[[nodiscard]] inline consistency_scaling consistency_scalings(double sigma, double sigma_data = 0.5,
                                                              double sigma_min = 0.002) {
    detail::require(sigma >= sigma_min && std::isfinite(sigma), "consistency_scalings", "sigma", sigma,
                    "[sigma_min, inf)");
    detail::require(sigma_data > 0.0, "consistency_scalings", "sigma_data", sigma_data, "(0, inf)");
    const double d = sigma - sigma_min, sd2 = sigma_data * sigma_data;
    return {sd2 / (d * d + sd2), d * sigma_data / std::sqrt(sigma * sigma + sd2)};
}

[[nodiscard]] inline std::vector<double> consistency_boundaries(std::size_t N, double sigma_min = 0.002,
                                                                double sigma_max = 80.0, double rho = 7.0) {
    detail::require(N >= 2, "consistency_boundaries", "N", N, ">= 2");
    detail::require(sigma_min > 0.0 && sigma_max > sigma_min, "consistency_boundaries", "sigma_max", sigma_max,
                    "(sigma_min, inf) with sigma_min > 0");
    detail::require(rho > 0.0, "consistency_boundaries", "rho", rho, "(0, inf)");
    std::vector<double> s(N);
    const double a = std::pow(sigma_min, 1.0 / rho), b = std::pow(sigma_max, 1.0 / rho);
    for (std::size_t i = 0; i < N; ++i) s[i] = std::pow(a + double(i) / double(N - 1) * (b - a), rho);
    s.front() = sigma_min;
    s.back() = sigma_max;
    return s;
}

}  // namespace diffuse
