#pragma once
// Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017, "GANs Trained by
// a Two Time-Scale Update Rule…", the FID formula; Dowson & Landau 1982):
//   d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂)
// tr √(Σ₁Σ₂) is computed as tr √(A Σ₂ A) with A = Σ₁^{1/2} (both symmetric eigendecompositions, Eigen),
// which equals the reference's scipy.linalg.sqrtm(Σ₁·Σ₂) trace and stays real and stable for
// singular covariances. Part of the diffuse::eigen component (needs Eigen 3).
//
//   auto s1 = diffuse::feature_statistics(batched(features1, N1));   // N1 samples × dim
//   double fid = diffuse::frechet_distance(s1, s2);

#include <Eigen/Dense>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/metrics/gaussian_statistics.hpp"

namespace diffuse {


// Rows of `features` are samples (batch = number of samples, per_sample = feature dimension).
template <tensor F>
[[nodiscard]] gaussian_statistics feature_statistics(const F& features) {
    const auto v = detail::host_input(features);
    detail::require(v.batch >= 2, "feature_statistics", "number of samples", v.batch, ">= 2");
    detail::require(v.per_sample >= 1, "feature_statistics", "feature dimension", v.per_sample, ">= 1");
    const std::size_t N = v.batch, D = v.per_sample;
    Eigen::MatrixXd X(N, D);
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < D; ++j) {
            const double x = double(v.sample(i)[j]);
            if (!std::isfinite(x))
                detail::fail("feature_statistics", "feature " + std::to_string(j) + " of sample " + std::to_string(i) +
                                                       " is not finite");
            X(Eigen::Index(i), Eigen::Index(j)) = x;
        }
    const Eigen::RowVectorXd mu = X.colwise().mean();
    X.rowwise() -= mu;
    const Eigen::MatrixXd C = (X.transpose() * X) / double(N - 1);
    gaussian_statistics s;
    s.dim = D;
    s.mean.assign(mu.data(), mu.data() + D);
    s.cov.resize(D * D);
    for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = 0; j < D; ++j) s.cov[i * D + j] = C(Eigen::Index(i), Eigen::Index(j));
    return s;
}

namespace detail {
inline void check_statistics(const gaussian_statistics& s, const char* name) {
    if (s.mean.size() != s.dim || s.cov.size() != s.dim * s.dim || s.dim == 0)
        fail("frechet_distance", std::string(name) + " is inconsistent: dim " + std::to_string(s.dim) + ", " +
                                     std::to_string(s.mean.size()) + " means, " + std::to_string(s.cov.size()) +
                                     " covariance entries");
    for (std::size_t i = 0; i < s.dim; ++i)
        for (std::size_t j = 0; j < s.dim; ++j) {
            const double a = s.cov[i * s.dim + j], b = s.cov[j * s.dim + i];
            if (!std::isfinite(a) || std::abs(a - b) > 1e-9 * (std::abs(a) + std::abs(b)) + 1e-300)
                fail("frechet_distance", std::string(name) + " covariance is not finite and symmetric");
        }
}
}  // namespace detail

[[nodiscard]] inline double frechet_distance(const gaussian_statistics& a, const gaussian_statistics& b) {
    detail::check_statistics(a, "statistics 1");
    detail::check_statistics(b, "statistics 2");
    if (a.dim != b.dim)
        detail::fail("frechet_distance", "the feature dimensions differ: " + std::to_string(a.dim) + " and " +
                                             std::to_string(b.dim));
    const auto D = Eigen::Index(a.dim);
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> S1(a.cov.data(), D, D);
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> S2(b.cov.data(), D, D);
    const Eigen::Map<const Eigen::VectorXd> m1(a.mean.data(), D), m2(b.mean.data(), D);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> e1(S1);
    if (e1.info() != Eigen::Success) detail::fail("frechet_distance", "eigendecomposition of covariance 1 failed");
    const Eigen::VectorXd r1 = e1.eigenvalues().cwiseMax(0.0).cwiseSqrt();
    const Eigen::MatrixXd A = e1.eigenvectors() * r1.asDiagonal() * e1.eigenvectors().transpose();  // Σ₁^{1/2}
    Eigen::MatrixXd M = A * S2 * A;
    M = 0.5 * (M + M.transpose());
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> em(M, Eigen::EigenvaluesOnly);
    if (em.info() != Eigen::Success) detail::fail("frechet_distance", "eigendecomposition of A·Σ₂·A failed");
    const double tr_covmean = em.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
    const double d2 = (m1 - m2).squaredNorm() + S1.trace() + S2.trace() - 2.0 * tr_covmean;
    return d2;
}

template <tensor F1, tensor F2>
[[nodiscard]] double frechet_distance(const F1& features1, const F2& features2) {
    return frechet_distance(feature_statistics(features1), feature_statistics(features2));
}

}  // namespace diffuse
