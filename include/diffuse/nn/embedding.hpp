#pragma once
// Time (and class) embeddings of diffusers' UNet2DModel, computed in float32 step by step as PyTorch does
// so that the same timesteps give the same features.
//
// Sinusoidal ("positional", DDPM; diffusers' get_timestep_embedding), half = dim/2:
//   f_i = exp(−ln(10000)·i / (half − freq_shift)),  e = [sin(t·f), cos(t·f)]  ([cos, sin] when flip_sin_to_cos),
//   zero-padded to an odd dim.
// Gaussian Fourier features ("fourier", score_sde's NCSN++; GaussianFourierProjection with log = true):
//   x = ln t,  e = [sin(2π·x·w), cos(2π·x·w)] for the stored random frequencies w.
// Learned ("learned"): row t of a table, t an integer timestep.

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse::nn {

// The dim/2 frequencies f_i of the sinusoidal embedding, as float32 tensors hold them.
[[nodiscard]] inline std::vector<float> sinusoidal_frequencies(std::size_t dim, double freq_shift) {
    const std::size_t half = dim / 2;
    diffuse::detail::require(half == 0 || double(half) != freq_shift, "sinusoidal_frequencies", "freq_shift", freq_shift,
                             "!= dim / 2");
    std::vector<float> f(half);
    const float neg_log_period = static_cast<float>(-std::log(10000.0));
    const float denom = static_cast<float>(double(half) - freq_shift);
    for (std::size_t i = 0; i < half; ++i) {
        const float exponent = (neg_log_period * static_cast<float>(i)) / denom;  // float32, as torch
        f[i] = static_cast<float>(std::exp(double(exponent)));
    }
    return f;
}

// out: [t.size(), dim] with freqs = sinusoidal_frequencies(dim, freq_shift).
inline void sinusoidal_embedding(std::span<const double> t, std::span<const float> freqs, std::size_t dim,
                                 bool flip_sin_to_cos, float* out) {
    const std::size_t half = freqs.size();
    for (std::size_t b = 0; b < t.size(); ++b) {
        const float tb = static_cast<float>(t[b]);
        float* row = out + b * dim;
        for (std::size_t i = 0; i < half; ++i) {
            const double arg = double(tb * freqs[i]);  // the float32 product, then sin/cos correctly rounded
            const float s = static_cast<float>(std::sin(arg)), c = static_cast<float>(std::cos(arg));
            row[i] = flip_sin_to_cos ? c : s;
            row[half + i] = flip_sin_to_cos ? s : c;
        }
        if (dim % 2 == 1) row[dim - 1] = 0.0f;
    }
}

// out: [t.size(), 2·w.size()]; t > 0.
inline void fourier_embedding(std::span<const double> t, std::span<const float> w, float* out) {
    const std::size_t n = w.size();
    const float two_pi_f = static_cast<float>(3.14159265358979323846);
    for (std::size_t b = 0; b < t.size(); ++b) {
        diffuse::detail::require(t[b] > 0 && std::isfinite(t[b]), "fourier_embedding", "t", t[b],
                                 "(0, inf) (Fourier features take ln t)");
        const float x = static_cast<float>(std::log(double(static_cast<float>(t[b]))));
        float* row = out + b * 2 * n;
        for (std::size_t i = 0; i < n; ++i) {
            const float proj = ((x * w[i]) * 2.0f) * two_pi_f;  // x[:, None] * W[None, :] * 2 * π, left to right
            row[i] = static_cast<float>(std::sin(double(proj)));
            row[n + i] = static_cast<float>(std::cos(double(proj)));
        }
    }
}

// out: [t.size(), dim] = table[t]; t must be an integer in [0, rows).
inline void learned_embedding(std::span<const double> t, std::span<const float> table, std::size_t dim, float* out) {
    const std::size_t rows = dim == 0 ? 0 : table.size() / dim;
    for (std::size_t b = 0; b < t.size(); ++b) {
        diffuse::detail::require(t[b] >= 0 && t[b] < double(rows) && t[b] == std::floor(t[b]), "learned_embedding", "t",
                                 t[b], "an integer timestep in [0, " + std::to_string(rows) + ")");
        const std::size_t r = static_cast<std::size_t>(t[b]);
        for (std::size_t i = 0; i < dim; ++i) out[b * dim + i] = table[r * dim + i];
    }
}

}  // namespace diffuse::nn
