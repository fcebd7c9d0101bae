#pragma once
// Test support for the S2 sampler tests: an analytic Gaussian network and golden-file helpers.

#include <cmath>
#include <cstddef>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/core/tensor.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/samplers/model.hpp"

namespace s2 {

inline std::string golden(const std::string& name) { return std::string(DIFFUSE_GOLDEN_DIR) + "/samplers/s2/" + name + ".npy"; }
inline std::vector<double> load(const std::string& name) { return diffuse::io::read_npy(golden(name)).as<double>(); }
inline std::vector<std::size_t> shape(const std::string& name) { return diffuse::io::read_npy(golden(name)).shape; }

// Data x₀ ~ N(μ_j, s_j²) independently per element j (element j of a sample uses μ[j % size]).
// Exact posterior mean at the state x = α x₀ + σ ε:  E[x₀|x] = μ + α s²/(α² s² + σ²)·(x − α μ).
struct gaussian {
    std::vector<double> mu, sd;
    [[nodiscard]] double x0(double x, std::size_t j, double alpha, double sigma) const {
        const double m = mu[j % mu.size()], s2 = sd[j % sd.size()] * sd[j % sd.size()];
        return m + alpha * s2 / (alpha * alpha * s2 + sigma * sigma) * (x - alpha * m);
    }
};

inline gaussian golden_gaussian() {
    const auto g = load("gauss");
    const std::size_t d = g.size() / 2;
    return {std::vector<double>(g.begin(), g.begin() + std::ptrdiff_t(d)), std::vector<double>(g.begin() + std::ptrdiff_t(d), g.end())};
}

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

// cases.txt lines: tag sampler key=value ...
struct golden_case {
    std::string tag, sampler;
    std::vector<std::pair<std::string, std::string>> opts;
    [[nodiscard]] double num(const std::string& k, double dflt) const {
        for (const auto& [a, v] : opts)
            if (a == k) return std::stod(v);
        return dflt;
    }
    [[nodiscard]] std::string str(const std::string& k, const std::string& dflt) const {
        for (const auto& [a, v] : opts)
            if (a == k) return v;
        return dflt;
    }
};

inline std::vector<golden_case> golden_cases(const std::string& prefix) {
    std::ifstream f(std::string(DIFFUSE_GOLDEN_DIR) + "/samplers/s2/cases.txt");
    std::vector<golden_case> out;
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream is(line);
        golden_case c;
        is >> c.tag >> c.sampler;
        if (c.tag.rfind(prefix, 0) != 0) continue;
        std::string kv;
        while (is >> kv) {
            const auto eq = kv.find('=');
            c.opts.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
        }
        out.push_back(c);
    }
    return out;
}

template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<double>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m;
}

}  // namespace s2
