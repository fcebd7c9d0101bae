#pragma once
// Inception Score from class probabilities (Salimans et al. 2016, "Improved Techniques for Training
// GANs", §4):  IS = exp(E_x KL(p(y|x) ‖ p(y))), computed on `splits` equal consecutive parts of the
// samples as the reference implementation does, returning the mean and the (population) standard
// deviation over the splits.

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"

namespace diffuse {

struct inception_score_result {
    double mean = 0.0, std = 0.0;
};

// probs: one row of class probabilities per sample (batch = samples, per_sample = classes). Each row
// must be non-negative and sum to 1 within 1e-4.
template <tensor P>
[[nodiscard]] inception_score_result inception_score(const P& probs, std::size_t splits = 10) {
    const auto v = detail::host_input(probs);
    const std::size_t N = v.batch, C = v.per_sample;
    detail::require(splits >= 1 && splits <= N, "inception_score", "splits", splits,
                    "[1, number of samples = " + std::to_string(N) + "]");
    detail::require(C >= 1, "inception_score", "classes", C, ">= 1");
    for (std::size_t i = 0; i < N; ++i) {
        double s = 0;
        for (std::size_t c = 0; c < C; ++c) {
            const double p = double(v.sample(i)[c]);
            if (!(p >= 0.0 && p <= 1.0))
                detail::fail("inception_score", "probability " + std::to_string(c) + " of sample " + std::to_string(i) +
                                                    " is outside [0, 1]");
            s += p;
        }
        if (std::abs(s - 1.0) > 1e-4)
            detail::fail("inception_score", "the probabilities of sample " + std::to_string(i) + " sum to " +
                                                std::to_string(s) + ", not 1");
    }
    std::vector<double> scores(splits);
    for (std::size_t k = 0; k < splits; ++k) {
        const std::size_t i0 = k * N / splits, i1 = (k + 1) * N / splits;
        std::vector<double> py(C, 0.0);
        for (std::size_t i = i0; i < i1; ++i)
            for (std::size_t c = 0; c < C; ++c) py[c] += double(v.sample(i)[c]);
        for (auto& p : py) p /= double(i1 - i0);
        double kl = 0.0;
        for (std::size_t i = i0; i < i1; ++i)
            for (std::size_t c = 0; c < C; ++c) {
                const double p = double(v.sample(i)[c]);
                if (p > 0.0) kl += p * (std::log(p) - std::log(py[c]));  // KL(p(y|x) ‖ p(y))
            }
        scores[k] = std::exp(kl / double(i1 - i0));
    }
    inception_score_result r;
    for (double s : scores) r.mean += s / double(splits);
    for (double s : scores) r.std += (s - r.mean) * (s - r.mean) / double(splits);
    r.std = std::sqrt(r.std);
    return r;
}

}  // namespace diffuse
