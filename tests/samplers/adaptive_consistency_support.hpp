#pragma once
// Test support for the DPM-adaptive, LCM and consistency tests (DPM-adaptive, LCM, consistency models): golden files and the
// networks of tools/gen_sampler_golden_adaptive_consistency.py. The Gaussian network is the one of (gaussian_support.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "diffuse/core/tensor.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/samplers/model.hpp"
#include "gaussian_support.hpp"

namespace adaptive_golden {

inline std::string golden(const std::string& name) { return std::string(DIFFUSE_GOLDEN_DIR) + "/samplers/adaptive_consistency/" + name + ".npy"; }
inline std::vector<double> load(const std::string& name) { return diffuse::io::read_npy(golden(name)).as<double>(); }

inline analytic_gauss::gaussian gaussian() {
    const auto g = load("gauss");
    const std::size_t d = g.size() / 2;
    return {std::vector<double>(g.begin(), g.begin() + std::ptrdiff_t(d)), std::vector<double>(g.begin() + std::ptrdiff_t(d), g.end())};
}

// The Gaussian's ideal network on the discrete VP timesteps of an ᾱ table (network time = integer timestep).
struct vp_of_t {
    const std::vector<double>* ac;
    std::pair<double, double> operator()(double t) const {
        const double a = (*ac)[std::size_t(t)];
        return {std::sqrt(a), std::sqrt(1.0 - a)};
    }
};

// The raw consistency network of the generator: F_j(u, c) = sin(w_j u + 0.001 c) + 0.1 u.
struct cm_raw_net {
    std::vector<double> w;
    template <class T>
    void operator()(diffuse::tensor_view<const T> u, const diffuse::model_cond& c, diffuse::tensor_view<T> out) const {
        for (std::size_t b = 0; b < u.batch; ++b)
            for (std::size_t j = 0; j < u.per_sample; ++j) {
                const double v = double(u.sample(b)[j]);
                out.sample(b)[j] = T(std::sin(w[j % w.size()] * v + 0.001 * c.t[b]) + 0.1 * v);
            }
    }
};

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

template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<double>& b) {
    double m = b.size() == a.size() ? 0.0 : INFINITY;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m;
}

inline std::vector<golden_case> cases(const std::string& prefix) {
    std::ifstream f(std::string(DIFFUSE_GOLDEN_DIR) + "/samplers/adaptive_consistency/cases.txt");
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

inline bool flag(const golden_case& c, const std::string& k) {
    const auto v = c.str(k, "0");
    return v == "1" || v == "True" || v == "true";
}

}  // namespace adaptive_golden
