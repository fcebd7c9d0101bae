#pragma once
// The Gaussian fitted to a feature set: what frechet_distance compares (metrics/frechet.hpp) and what
// feature_moments (metrics/feature_moments.hpp) produces block by block.

#include <cstddef>
#include <vector>

namespace diffuse {

// Mean and covariance (unbiased, like numpy.cov(rowvar=False)) of a feature set.
struct gaussian_statistics {
    std::size_t dim = 0;
    std::vector<double> mean;  // dim
    std::vector<double> cov;   // dim × dim, row-major
};

}  // namespace diffuse
