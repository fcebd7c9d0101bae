#pragma once
// What a network predicts, and conversions between the predictions.
//
// Every process here is x_t = α·x₀ + σ·ε (VP: α = √ᾱ, σ = √(1−ᾱ); VE: α = 1). Given x_t and one
// prediction, the others follow in closed form; each conversion is one fused lincomb with per-sample
// coefficients:
//   ε → x₀:     x₀ = (x − σ·ε)/α                          (Ho et al. 2020, eq. 15)
//   x₀ → ε:     ε = (x − α·x₀)/σ
//   v → x₀, ε:  v = α·ε − σ·x₀ (Salimans & Ho 2022, §4); x₀ = (α·x − σ·v)/(α²+σ²), ε = (σ·x + α·v)/(α²+σ²)
//   score:      ∇ log p(x_t) = −ε/σ                        (Song et al. 2021, DSM target)
//   flow:       u = ε − x₀, the velocity dx/ds of x = (1 − s)·x₀ + s·ε (rectified flow, Liu et al. 2023;
//               Lipman et al. 2023; Esser et al. 2024, SD3 §2). At any (α, σ) with α + σ > 0:
//               x₀ = (x − σ·u)/(α + σ), ε = (x + α·u)/(α + σ)
// EDM preconditioning (Karras et al. 2022, Table 1) turns a raw network F into x₀ = c_skip·x + c_out·F.

#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/elementwise.hpp"

namespace diffuse {

enum class prediction { epsilon, sample, v, score, flow_velocity };

// diffusers' prediction_type names: "epsilon", "sample", "v_prediction", "flow_prediction"; also "score".
[[nodiscard]] inline prediction parse_prediction(std::string_view name) {
    if (name == "epsilon") return prediction::epsilon;
    if (name == "sample") return prediction::sample;
    if (name == "v_prediction" || name == "v") return prediction::v;
    if (name == "score") return prediction::score;
    if (name == "flow_prediction" || name == "flow") return prediction::flow_velocity;
    detail::require(false, "parse_prediction", "prediction_type", std::string(name),
                    "{epsilon, sample, v_prediction, score, flow_prediction}");
    return prediction::epsilon;
}

// Per-sample coefficients (a, b) such that  want = a·x + b·have,  for x = α·x₀ + σ·ε.
struct conversion {
    double a, b;
};

namespace detail {
// A prediction p = c_x0·x₀ + c_eps·ε at the state (α, σ): ε (0, 1), x₀ (1, 0), v (−σ, α), flow velocity (−1, 1).
struct prediction_basis {
    double c_x0, c_eps;
};
[[nodiscard]] inline prediction_basis basis_of(prediction p, double alpha, double sigma) {
    switch (p) {
        case prediction::epsilon: return {0.0, 1.0};
        case prediction::sample: return {1.0, 0.0};
        case prediction::v: return {-sigma, alpha};
        case prediction::flow_velocity: return {-1.0, 1.0};
        case prediction::score: break;  // −ε/σ, handled by the caller through ε
    }
    return {0.0, 1.0};
}
// want = a·x + b·have where have, want are linear in (x₀, ε) (h and w their bases): solving
// [α σ; h₀ h₁]·[x₀; ε] = [x; have] (determinant Δ = α·h₁ − σ·h₀) gives
//   a = (w₀·h₁ − w₁·h₀)/Δ,  b = (w₁·α − w₀·σ)/Δ.
// For the flow velocity Δ = α + σ (u → x₀: a = 1/(α+σ), b = −σ/(α+σ)).
[[nodiscard]] inline conversion linear_conversion(prediction have, prediction want, double alpha, double sigma) {
    const auto h = basis_of(have, alpha, sigma), w = basis_of(want, alpha, sigma);
    const double det = alpha * h.c_eps - sigma * h.c_x0;
    require(det != 0, "convert_prediction", "the state (alpha, sigma)", std::to_string(alpha) + ", " + std::to_string(sigma),
            "one from which the prediction determines x0 and eps");
    return {(w.c_x0 * h.c_eps - w.c_eps * h.c_x0) / det, (w.c_eps * alpha - w.c_x0 * sigma) / det};
}
}  // namespace detail

[[nodiscard]] inline conversion convert_coefficients(prediction have, prediction want, double alpha, double sigma) {
    detail::require(alpha >= 0 && std::isfinite(alpha), "convert_prediction", "alpha", alpha, "[0, inf)");
    detail::require(sigma >= 0 && std::isfinite(sigma), "convert_prediction", "sigma", sigma, "[0, inf)");
    if (have == prediction::score) {  // score s = −ε/σ: treat as ε = −σ·s
        const conversion e = convert_coefficients(prediction::epsilon, want, alpha, sigma);
        return {e.a, -e.b * sigma};
    }
    if (want == prediction::score) {  // s = −ε/σ
        detail::require(sigma > 0, "convert_prediction", "sigma", sigma, "(0, inf) for a score");
        const conversion e = convert_coefficients(have, prediction::epsilon, alpha, sigma);
        return {-e.a / sigma, -e.b / sigma};
    }
    if (have == want) return {0.0, 1.0};
    if (have == prediction::flow_velocity || want == prediction::flow_velocity)
        return detail::linear_conversion(have, want, alpha, sigma);
    const double n = alpha * alpha + sigma * sigma;
    switch (have) {
        case prediction::epsilon:
            if (want == prediction::sample) {
                detail::require(alpha > 0, "convert_prediction", "alpha", alpha, "(0, inf) to recover x0 from eps");
                return {1.0 / alpha, -sigma / alpha};
            }
            // v = α·ε − σ·x₀ = α·ε − σ(x − σ·ε)/α = −(σ/α)·x + (n/α)·ε
            detail::require(alpha > 0, "convert_prediction", "alpha", alpha, "(0, inf) to form v from eps");
            return {-sigma / alpha, n / alpha};
        case prediction::sample:
            if (want == prediction::epsilon) {
                detail::require(sigma > 0, "convert_prediction", "sigma", sigma, "(0, inf) to recover eps from x0");
                return {1.0 / sigma, -alpha / sigma};
            }
            // v = α(x − α·x₀)/σ − σ·x₀ = (α/σ)·x − (n/σ)·x₀
            detail::require(sigma > 0, "convert_prediction", "sigma", sigma, "(0, inf) to form v from x0");
            return {alpha / sigma, -n / sigma};
        case prediction::v:
            detail::require(n > 0, "convert_prediction", "alpha^2 + sigma^2", n, "(0, inf)");
            if (want == prediction::sample) return {alpha / n, -sigma / n};
            return {sigma / n, alpha / n};  // epsilon
        case prediction::score:
        case prediction::flow_velocity: break;
    }
    return {0.0, 1.0};
}

// out = the `want` prediction from x (the state at α, σ per sample) and `have_value` (the model output).
// out may be the same tensor as have_value or x.
template <class Out, class X, class In>
void convert_prediction(Out&& out, X&& x, In&& have_value, prediction have, prediction want,
                        std::span<const double> alpha, std::span<const double> sigma,
                        std::vector<double>& ca, std::vector<double>& cb) {
    const auto o = view(out);
    if (alpha.size() != o.batch || sigma.size() != o.batch)
        detail::fail("convert_prediction", "alpha/sigma have " + std::to_string(alpha.size()) + "/" +
                                               std::to_string(sigma.size()) + " values but the batch has " +
                                               std::to_string(o.batch));
    ca.resize(o.batch);
    cb.resize(o.batch);
    for (std::size_t b = 0; b < o.batch; ++b) {
        const auto c = convert_coefficients(have, want, alpha[b], sigma[b]);
        ca[b] = c.a;
        cb[b] = c.b;
    }
    lincomb(o, per_sample(ca), std::forward<X>(x), per_sample(cb), std::forward<In>(have_value));
}

template <class Out, class X, class In>
void convert_prediction(Out&& out, X&& x, In&& have_value, prediction have, prediction want,
                        std::span<const double> alpha, std::span<const double> sigma) {
    std::vector<double> ca, cb;
    convert_prediction(std::forward<Out>(out), std::forward<X>(x), std::forward<In>(have_value), have, want, alpha,
                       sigma, ca, cb);
}

// EDM preconditioning (Karras et al. 2022, Table 1, "Ours"): D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise).
struct edm_coefficients {
    double c_skip, c_out, c_in, c_noise;
};

[[nodiscard]] inline edm_coefficients edm_precondition(double sigma, double sigma_data = 0.5) {
    detail::require(sigma >= 0 && std::isfinite(sigma), "edm_precondition", "sigma", sigma, "[0, inf)");
    detail::require(sigma_data > 0 && std::isfinite(sigma_data), "edm_precondition", "sigma_data", sigma_data, "(0, inf)");
    const double s2 = sigma * sigma, d2 = sigma_data * sigma_data, r = std::sqrt(s2 + d2);
    return {d2 / (s2 + d2), sigma * sigma_data / r, 1.0 / r, sigma > 0 ? 0.25 * std::log(sigma) : -INFINITY};
}

// EDM's loss weight λ(σ) = (σ² + σ_data²)/(σ·σ_data)² (Karras et al. 2022, eq. 8 and Table 1).
[[nodiscard]] inline double edm_loss_weight(double sigma, double sigma_data = 0.5) {
    detail::require(sigma > 0 && std::isfinite(sigma), "edm_loss_weight", "sigma", sigma, "(0, inf)");
    detail::require(sigma_data > 0, "edm_loss_weight", "sigma_data", sigma_data, "(0, inf)");
    return (sigma * sigma + sigma_data * sigma_data) / (sigma * sigma_data * sigma * sigma_data);
}

}  // namespace diffuse
