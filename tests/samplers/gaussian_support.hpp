#pragma once
// Test support for the σ-space sampler property tests: an analytic Gaussian network. (The golden parity cases run
// as specs through tests/samplers/test_parity.cpp.)

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffuse/core/tensor.hpp"
#include "diffuse/samplers/model.hpp"

namespace analytic_gauss {

// Data x₀ ~ N(μ_j, s_j²) independently per element j (element j of a sample uses μ[j % size]).
// Exact posterior mean at the state x = α x₀ + σ ε:  E[x₀|x] = μ + α s²/(α² s² + σ²)·(x − α μ).
struct gaussian {
    std::vector<double> mu, sd;
    [[nodiscard]] double x0(double x, std::size_t j, double alpha, double sigma) const {
        const double m = mu[j % mu.size()], s2 = sd[j % sd.size()] * sd[j % sd.size()];
        return m + alpha * s2 / (alpha * alpha * s2 + sigma * sigma) * (x - alpha * m);
    }
};

// The ideal network of a given kind. `of_t(t)` gives the network's own (α, σ) at its time t.
template <class OfT>
struct gaussian_net {
    gaussian g;
    diffuse::prediction kind;
    OfT of_t;
    int* calls = nullptr;
    template <class T>
    void operator()(diffuse::tensor_view<const T> x, const diffuse::model_cond& c, diffuse::tensor_view<T> out) const {
        if (calls) ++*calls;
        for (std::size_t b = 0; b < x.batch; ++b) {
            const auto [alpha, sigma] = of_t(c.t[b]);
            for (std::size_t j = 0; j < x.per_sample; ++j) {
                const double xv = x.sample(b)[j], x0 = g.x0(xv, j, alpha, sigma), eps = (xv - alpha * x0) / sigma;
                double v = x0;
                switch (kind) {
                    case diffuse::prediction::epsilon: v = eps; break;
                    case diffuse::prediction::sample: v = x0; break;
                    case diffuse::prediction::v: v = alpha * eps - sigma * x0; break;
                    case diffuse::prediction::score: v = -eps / sigma; break;
                    case diffuse::prediction::flow_velocity: v = eps - x0; break;
                }
                out.sample(b)[j] = T(v);
            }
        }
    }
};

struct ve_of_t {
    std::pair<double, double> operator()(double t) const { return {1.0, t}; }
};

// A σ-space denoiser D(x; σ) for the Gaussian (k-diffusion's model(x, sigma)).
inline auto ve_model(const gaussian& g, int* calls = nullptr) {
    return diffuse::model(gaussian_net<ve_of_t>{g, diffuse::prediction::sample, {}, calls}, diffuse::prediction::sample,
                          diffuse::sigma_time{});
}

template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<double>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m;
}

}  // namespace analytic_gauss
