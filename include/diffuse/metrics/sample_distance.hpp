#pragma once
// Distances between two samples of low-dimensional data (rows = points):
//
//   sliced_wasserstein(X, Y, directions, p)   SW_p = (mean_k W_p^p(⟨X,θ_k⟩, ⟨Y,θ_k⟩))^{1/p}
//                                             (Rabin et al. 2011; Bonneel et al. 2015), with the
//                                             exact 1-D W_p between the empirical distributions
//                                             (any sizes: the quantile functions are merged)
//   sliced_wasserstein(X, Y, n, seed, p)      the same with n random unit directions
//   mmd2(X, Y, bandwidths, unbiased)          squared maximum mean discrepancy (Gretton et al. 2012,
//                                             eq. 3 unbiased / eq. 5 biased) with the kernel
//                                             Σ_h exp(−‖x − y‖² / (2h²))

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/core/host_rng.hpp"

namespace diffuse {

namespace detail {
template <class V>
void check_points(const V& v, const char* where, const char* name) {
    require(v.batch >= 1, where, std::string(name) + " points", v.batch, ">= 1");
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(double(v.data[i])))
            fail(where, std::string(name) + " holds a non-finite value at index " + std::to_string(i));
}

// W_p^p between the empirical distributions of sorted a (n) and sorted b (m): ∫₀¹ |F⁻¹(u) − G⁻¹(u)|^p du.
[[nodiscard]] inline double wasserstein_1d_pow(const std::vector<double>& a, const std::vector<double>& b, double p) {
    const std::size_t n = a.size(), m = b.size();
    std::size_t i = 0, j = 0;
    double u = 0.0, total = 0.0;
    while (i < n && j < m) {
        const double ua = double(i + 1) / double(n), ub = double(j + 1) / double(m);
        const double next = std::min(ua, ub);
        const double d = std::abs(a[i] - b[j]);
        total += (next - u) * (p == 1.0 ? d : p == 2.0 ? d * d : std::pow(d, p));
        u = next;
        // advance whichever quantile piece ends here (both when they end together: i·m == j·n)
        const bool adv_a = (i + 1) * m <= (j + 1) * n, adv_b = (j + 1) * n <= (i + 1) * m;
        if (adv_a) ++i;
        if (adv_b) ++j;
    }
    return total;
}
// 1/‖θ_k‖ of direction k (D values); a zero or non-finite direction is an error.
[[nodiscard]] inline double inverse_norm(const double* th, std::size_t D, std::size_t k, const char* where) {
    double n2 = 0;
    for (std::size_t j = 0; j < D; ++j) n2 += th[j] * th[j];
    if (!(n2 > 0.0) || !std::isfinite(n2)) fail(where, "direction " + std::to_string(k) + " is zero or not finite");
    return 1.0 / std::sqrt(n2);
}
// out[i] = ⟨v_i, θ⟩ / ‖θ‖ for every point i of v (the sharded form in mpi/sharded_metrics.hpp shares it).
template <class V>
void project(const V& v, const double* th, double inv, double* out) {
    for (std::size_t i = 0; i < v.batch; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < v.per_sample; ++j) s += double(v.sample(i)[j]) * th[j];
        out[i] = s * inv;
    }
}
// Two finite point sets of the same dimension.
template <class VX, class VY>
void check_point_sets(const VX& vx, const VY& vy, const char* where) {
    check_points(vx, where, "x");
    check_points(vy, where, "y");
    if (vx.per_sample != vy.per_sample)
        fail(where, "x has dimension " + std::to_string(vx.per_sample) + " but y has " + std::to_string(vy.per_sample));
}
}  // namespace detail

// directions: K rows of `dim` values (normalised here; zero rows are rejected).
template <tensor X, tensor Y>
[[nodiscard]] double sliced_wasserstein(const X& x, const Y& y, std::span<const double> directions, double p = 2.0) {
    constexpr const char* where = "sliced_wasserstein";
    const auto vx = detail::host_input(x);
    const auto vy = detail::host_input(y);
    detail::check_point_sets(vx, vy, where);
    detail::require(p >= 1.0 && std::isfinite(p), where, "p", p, "[1, inf)");
    const std::size_t D = vx.per_sample;
    detail::require(D >= 1 && !directions.empty() && directions.size() % D == 0, where, "directions.size()",
                    directions.size(), "a positive multiple of the dimension " + std::to_string(D));
    const std::size_t K = directions.size() / D;
    std::vector<double> a(vx.batch), b(vy.batch);
    double total = 0.0;
    for (std::size_t k = 0; k < K; ++k) {
        const double* th = directions.data() + k * D;
        const double inv = detail::inverse_norm(th, D, k, where);
        detail::project(vx, th, inv, a.data());
        detail::project(vy, th, inv, b.data());
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        total += detail::wasserstein_1d_pow(a, b, p);
    }
    return std::pow(total / double(K), 1.0 / p);
}

// Random directions, uniform on the sphere (normalised Gaussian vectors from host_rng(seed)).
[[nodiscard]] inline std::vector<double> random_directions(std::size_t count, std::size_t dim, std::uint64_t seed) {
    detail::require(count >= 1, "random_directions", "count", count, ">= 1");
    detail::require(dim >= 1, "random_directions", "dim", dim, ">= 1");
    host_rng rng(seed);
    std::vector<double> d(count * dim);
    for (std::size_t k = 0; k < count; ++k) {
        double n2 = 0;
        do {
            n2 = 0;
            for (std::size_t j = 0; j < dim; ++j) {
                d[k * dim + j] = rng.normal();
                n2 += d[k * dim + j] * d[k * dim + j];
            }
        } while (n2 == 0.0);
        for (std::size_t j = 0; j < dim; ++j) d[k * dim + j] /= std::sqrt(n2);
    }
    return d;
}

template <tensor X, tensor Y>
[[nodiscard]] double sliced_wasserstein(const X& x, const Y& y, std::size_t num_projections, std::uint64_t seed,
                                        double p = 2.0) {
    const auto vx = detail::host_input(x);
    detail::require(num_projections >= 1, "sliced_wasserstein", "num_projections", num_projections, ">= 1");
    const auto dirs = random_directions(num_projections, std::max<std::size_t>(vx.per_sample, 1), seed);
    return sliced_wasserstein(x, y, dirs, p);
}

// Squared MMD with a sum of Gaussian kernels. unbiased: the U-statistic (needs ≥ 2 points each).
template <tensor X, tensor Y>
[[nodiscard]] double mmd2(const X& x, const Y& y, std::span<const double> bandwidths, bool unbiased = true) {
    constexpr const char* where = "mmd2";
    const auto vx = detail::host_input(x);
    const auto vy = detail::host_input(y);
    detail::check_point_sets(vx, vy, where);
    detail::require(!bandwidths.empty(), where, "bandwidths.size()", bandwidths.size(), ">= 1");
    for (std::size_t i = 0; i < bandwidths.size(); ++i)
        detail::require(bandwidths[i] > 0.0 && std::isfinite(bandwidths[i]), where,
                        "bandwidths[" + std::to_string(i) + "]", bandwidths[i], "(0, inf)");
    if (unbiased) {
        detail::require(vx.batch >= 2, where, "x points", vx.batch, ">= 2 for the unbiased estimate");
        detail::require(vy.batch >= 2, where, "y points", vy.batch, ">= 2 for the unbiased estimate");
    }
    const std::size_t D = vx.per_sample;
    auto k = [&](const auto* a, const auto* b) {
        double d2 = 0;
        for (std::size_t j = 0; j < D; ++j) {
            const double d = double(a[j]) - double(b[j]);
            d2 += d * d;
        }
        double s = 0;
        for (double h : bandwidths) s += std::exp(-d2 / (2.0 * h * h));
        return s;
    };
    auto self = [&](const auto& v) {
        double s = 0;
        for (std::size_t i = 0; i < v.batch; ++i)
            for (std::size_t j = 0; j < v.batch; ++j)
                if (i != j || !unbiased) s += k(v.sample(i), v.sample(j));
        const double n = double(v.batch);
        return unbiased ? s / (n * (n - 1.0)) : s / (n * n);
    };
    double cross = 0;
    for (std::size_t i = 0; i < vx.batch; ++i)
        for (std::size_t j = 0; j < vy.batch; ++j) cross += k(vx.sample(i), vy.sample(j));
    cross /= double(vx.batch) * double(vy.batch);
    return self(vx) + self(vy) - 2.0 * cross;
}

}  // namespace diffuse
