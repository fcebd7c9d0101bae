#pragma once
// The quantile of the Beta(a, b) distribution (scipy.stats.beta.ppf), which diffusers' use_beta_sigmas
// spaces noise levels by (Lee et al. 2024, "Beta Sampling is All You Need"): the flow-matching σ of
// schedules/flow.hpp and the Euler-family σ of schedules/sigmas.hpp.
//
//   beta_quantile(q, a, b)     the inverse regularised incomplete beta function
//   detail::incomplete_beta    I_x(a, b)

#include <bit>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "diffuse/core/error.hpp"

namespace diffuse {

namespace detail {
// The regularised incomplete beta function I_x(a, b) by its continued fraction (DLMF 8.17.22), evaluated
// with the modified Lentz method; for x above the mean (a+1)/(a+b+2) through I_x(a, b) = 1 − I_{1−x}(b, a).
[[nodiscard]] inline double incomplete_beta(double x, double a, double b) {
    if (x <= 0) return 0.0;
    if (x >= 1) return 1.0;
    if (x > (a + 1) / (a + b + 2)) return 1.0 - incomplete_beta(1.0 - x, b, a);
    const double log_front = a * std::log(x) + b * std::log1p(-x) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b)) - std::log(a);
    // g = 1 + d₁/(1 + d₂/(1 + …)), d_{2m+1} = −(a+m)(a+b+m)x/((a+2m)(a+2m+1)), d_{2m} = m(b−m)x/((a+2m−1)(a+2m))
    constexpr double tiny = 1e-300;
    double g = 1.0, c = 1.0, d = 0.0;
    for (int j = 1; j <= 400; ++j) {
        const int m = j / 2;
        const double num = j % 2 == 0 ? m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
                                       : -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
        d = 1.0 + num * d;
        if (std::abs(d) < tiny) d = tiny;
        d = 1.0 / d;
        c = 1.0 + num / c;
        if (std::abs(c) < tiny) c = tiny;
        const double delta = c * d;
        g *= delta;
        if (std::abs(1.0 - delta) < 1e-16) break;
    }
    return std::exp(log_front) / g;
}
}  // namespace detail

// The q-quantile of the Beta(a, b) distribution (scipy.stats.beta.ppf): bisection on I_x(a, b) over the bit
// patterns of the doubles in [0, 1] (ordered as the values), so it ends on adjacent doubles however small x is.
[[nodiscard]] inline double beta_quantile(double q, double a, double b) {
    constexpr std::string_view where = "beta_quantile";
    detail::require(q >= 0 && q <= 1, where, "q", q, "[0, 1]");
    detail::require(std::isfinite(a) && a > 0, where, "a", a, "(0, inf)");
    detail::require(std::isfinite(b) && b > 0, where, "b", b, "(0, inf)");
    if (q == 0) return 0.0;
    if (q == 1) return 1.0;
    std::uint64_t lo = 0, hi = std::bit_cast<std::uint64_t>(1.0);
    while (hi - lo > 1) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        (detail::incomplete_beta(std::bit_cast<double>(mid), a, b) < q ? lo : hi) = mid;
    }
    return std::bit_cast<double>(hi);
}

}  // namespace diffuse
