#pragma once
// Mean and scatter of a feature set accumulated block by block, for statistics over data that never sits
// in one place (sharded samples, streamed features). A block's moments are (n, μ, M₂ = Σ (x−μ)(x−μ)ᵀ); two
// blocks merge by the pairwise update of Chan, Golub & LeVeque 1979 ("Updating formulae and a pairwise
// algorithm for computing sample variances"):
//   n = n_a + n_b,  δ = μ_b − μ_a,  μ = μ_a + δ·n_b/n,  M₂ = M₂a + M₂b + δδᵀ·n_a·n_b/n
// and the covariance is M₂/(n−1) (unbiased, as feature_statistics and numpy.cov). Merging the same blocks
// in the same order gives the same bits, which is how the sharded Fréchet distance stays independent of
// the rank count; the result agrees with feature_statistics on all rows to rounding.
//
//   auto m = diffuse::block_moments(batched(block, n));   // one block
//   total.merge(m);                                        // in a fixed block order
//   diffuse::gaussian_statistics s = total.statistics();

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/metrics/gaussian_statistics.hpp"

namespace diffuse {


struct feature_moments {
    std::size_t dim = 0;
    double count = 0;              // n (exact up to 2^53 samples)
    std::vector<double> mean;      // μ, dim
    std::vector<double> scatter;   // M₂, dim × dim, row-major

    // Values in a flat form: [n, μ (dim), M₂ (dim²)], what a sharded reduction sends.
    [[nodiscard]] static std::size_t packed_size(std::size_t dim) noexcept { return 1 + dim + dim * dim; }
    void pack(std::span<double> out) const {
        if (out.size() != packed_size(dim)) diffuse::detail::fail("feature_moments::pack", "wrong buffer size");
        out[0] = count;
        std::copy(mean.begin(), mean.end(), out.begin() + 1);
        std::copy(scatter.begin(), scatter.end(), out.begin() + 1 + std::ptrdiff_t(dim));
    }
    [[nodiscard]] static feature_moments unpack(std::span<const double> in, std::size_t dim) {
        if (in.size() != packed_size(dim)) diffuse::detail::fail("feature_moments::unpack", "wrong buffer size");
        feature_moments m;
        m.dim = dim;
        m.count = in[0];
        if (!(m.count >= 0) || m.count != std::floor(m.count))
            diffuse::detail::fail("feature_moments::unpack", "the count is not a non-negative integer");
        m.mean.assign(in.begin() + 1, in.begin() + 1 + std::ptrdiff_t(dim));
        m.scatter.assign(in.begin() + 1 + std::ptrdiff_t(dim), in.end());
        return m;
    }

    // Chan, Golub & LeVeque's pairwise update (above); merging an empty set changes nothing.
    void merge(const feature_moments& b) {
        if (b.count == 0) return;
        if (count == 0) {
            *this = b;
            return;
        }
        if (b.dim != dim)
            diffuse::detail::fail("feature_moments::merge", "the feature dimensions differ: " + std::to_string(dim) +
                                                                " and " + std::to_string(b.dim));
        const double n = count + b.count, wa = count * b.count / n, fb = b.count / n;
        std::vector<double> delta(dim);
        for (std::size_t j = 0; j < dim; ++j) delta[j] = b.mean[j] - mean[j];
        for (std::size_t i = 0; i < dim; ++i)
            for (std::size_t j = 0; j < dim; ++j)
                scatter[i * dim + j] = (scatter[i * dim + j] + b.scatter[i * dim + j]) + delta[i] * delta[j] * wa;
        for (std::size_t j = 0; j < dim; ++j) mean[j] += delta[j] * fb;
        count = n;
    }

    // Mean and covariance M₂/(n−1); needs n ≥ 2.
    [[nodiscard]] gaussian_statistics statistics() const {
        diffuse::detail::require(count >= 2, "feature_moments::statistics", "number of samples", count, ">= 2");
        gaussian_statistics s;
        s.dim = dim;
        s.mean = mean;
        s.cov.resize(dim * dim);
        for (std::size_t i = 0; i < dim * dim; ++i) s.cov[i] = scatter[i] / (count - 1);
        return s;
    }
};

// The moments of one block: rows of `features` are samples (any count ≥ 1), per_sample the dimension.
template <tensor F>
[[nodiscard]] feature_moments block_moments(const F& features) {
    const auto v = diffuse::detail::host_input(features);
    diffuse::detail::require(v.batch >= 1, "block_moments", "number of samples", v.batch, ">= 1");
    diffuse::detail::require(v.per_sample >= 1 && v.per_sample <= 65536, "block_moments", "feature dimension", v.per_sample,
                             "[1, 65536]");
    const std::size_t N = v.batch, D = v.per_sample;
    feature_moments m;
    m.dim = D;
    m.count = double(N);
    m.mean.assign(D, 0.0);
    m.scatter.assign(D * D, 0.0);
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < D; ++j) {
            const double x = double(v.sample(i)[j]);
            if (!std::isfinite(x))
                diffuse::detail::fail("block_moments", "feature " + std::to_string(j) + " of sample " + std::to_string(i) +
                                                           " is not finite");
            m.mean[j] += x;
        }
    for (auto& u : m.mean) u /= double(N);
    std::vector<double> d(D);
    for (std::size_t i = 0; i < N; ++i) {
        for (std::size_t j = 0; j < D; ++j) d[j] = double(v.sample(i)[j]) - m.mean[j];
        for (std::size_t a = 0; a < D; ++a)
            for (std::size_t b = 0; b < D; ++b) m.scatter[a * D + b] += d[a] * d[b];
    }
    return m;
}

}  // namespace diffuse
