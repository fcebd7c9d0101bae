#pragma once
// What the discrete-timestep samplers (DDPM, DDIM) share: timestep grids, the x̂₀ / ε̂ pair from any model,
// and x̂₀ clipping / dynamic thresholding.
//
// Grids. A discrete sampler's time_grid holds integer training timesteps t_0 > t_1 > … and a final −1,
// which stands for "past the last timestep" (ᾱ = 1, or ᾱ_0 when set_alpha_to_one is false). A step whose
// two points are equal leaves that sample unchanged without noise: a mixed-strength batch pads the rows of
// its weaker samples with their start timestep (see guidance/img2img.hpp).
//
// The model is asked for its own kind of prediction (ε for ε- and score-networks, x₀ for x₀- and
// v-networks) at the VP state α = √ᾱ_t, σ = √(1 − ᾱ_t); the other of the pair follows from
// x = α·x₀ + σ·ε (Ho et al. 2020, eq. 15; Song et al. 2021a, eq. 12). A network trained on discrete
// timesteps is called at exactly t.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/model.hpp"

namespace diffuse {

// The grid of a discrete sampler: the descending timesteps and a final −1.
[[nodiscard]] inline time_grid discrete_grid(std::span<const std::int64_t> timesteps) {
    detail::require(!timesteps.empty(), "discrete_grid", "timesteps.size()", timesteps.size(), ">= 1");
    std::vector<double> p(timesteps.begin(), timesteps.end());
    p.push_back(-1.0);
    return time_grid(std::move(p));
}
// One row per sample (all of one length), each with its final −1.
[[nodiscard]] inline time_grid discrete_grid(const std::vector<std::vector<std::int64_t>>& rows) {
    std::vector<std::vector<double>> r;
    for (const auto& row : rows) {
        r.emplace_back(row.begin(), row.end());
        r.back().push_back(-1.0);
    }
    return time_grid::per_sample(r);
}

// x̂₀ processing of diffusers' DDPM / DDIM schedulers (names and defaults as their configs).
struct sample_clipping {
    bool clip_sample = true;              // clamp x̂₀ to [−clip_sample_range, clip_sample_range]
    double clip_sample_range = 1.0;
    bool thresholding = false;            // dynamic thresholding (Saharia et al. 2022, §2.3); wins over clip
    double dynamic_thresholding_ratio = 0.995;
    double sample_max_value = 1.0;
};

namespace detail {

// The integer timestep at grid point i of sample b; −1 (past the end) only where allow_final.
inline std::int64_t grid_timestep(const time_grid& g, std::size_t i, std::size_t b, std::size_t T, bool allow_final,
                                  const char* where) {
    const double v = g(i, b);
    const bool ok = v == std::floor(v) && v < double(T) && (v >= 0 || (allow_final && v == -1.0));
    require(ok, where, "time_grid point", v,
            std::string("an integer timestep in [0, ") + std::to_string(T - 1) + "]" + (allow_final ? " or -1" : ""));
    return static_cast<std::int64_t>(v);
}

// Workspaces of a discrete sampler, allocated once at entry.
template <class T>
struct discrete_workspace {
    std::vector<T> x0, eps, noise, scratch;
    // t: timestep, ac: ᾱ_t, alpha = √ᾱ_t, sigma = √(1−ᾱ_t); c*: step coefficients, d*: conversions
    std::vector<double> t, ac, alpha, sigma, c0, c1, c2, c3, q, d0, d1;
    discrete_workspace(std::size_t batch, std::size_t n)
        : x0(n), eps(n), noise(n), t(batch), ac(batch), alpha(batch), sigma(batch), c0(batch), c1(batch), c2(batch),
          c3(batch), q(batch), d0(batch), d1(batch) {}
    // Sets timestep t (ᾱ = ac) for sample b.
    void set_state(std::size_t b, double timestep, double alpha_cumprod) {
        t[b] = timestep;
        ac[b] = alpha_cumprod;
        alpha[b] = std::sqrt(alpha_cumprod);
        sigma[b] = std::sqrt(1.0 - alpha_cumprod);
    }
};

template <class Model>
constexpr bool reads_discrete_time() {
    return std::is_same_v<std::remove_cvref_t<decltype(std::declval<Model&>().time())>, discrete_time>;
}

// Whether the sampler asks the model for ε (ε- and score-networks) or for x₀ (x₀- and v-networks).
template <class Model>
bool native_eps(const Model& m) {
    return m.predicts() == prediction::epsilon || m.predicts() == prediction::score;
}

// Completes the pair: x̂₀ = (x − σ·ε̂)/α when ε̂ was predicted, else ε̂ = (x − α·x̂₀)/σ.
template <class T>
void complete_pair(tensor_view<T> x, discrete_workspace<T>& ws, bool have_eps) {
    const tensor_view<T> x0{ws.x0.data(), x.batch, x.per_sample}, eps{ws.eps.data(), x.batch, x.per_sample};
    for (std::size_t b = 0; b < x.batch; ++b) {
        ws.d0[b] = have_eps ? 1.0 / ws.alpha[b] : 1.0 / ws.sigma[b];
        ws.d1[b] = have_eps ? -ws.sigma[b] / ws.alpha[b] : -ws.alpha[b] / ws.sigma[b];
    }
    lincomb(have_eps ? x0 : eps, per_sample(ws.d0), x, per_sample(ws.d1), have_eps ? eps : x0);
}

// Network times for the model: the exact timesteps for a discrete-time network, else derived from σ/α.
template <class Model, class T>
std::span<const double> net_times(const discrete_workspace<T>& ws) {
    if constexpr (reads_discrete_time<Model>()) return ws.t;
    else return {};
}

// ws.x0 and ws.eps from the model at the VP state (ws.alpha, ws.sigma, timesteps ws.t).
template <class Model, class T>
void predict_x0_eps(Model& m, tensor_view<T> x, discrete_workspace<T>& ws, std::uint64_t first_sample) {
    const bool e = native_eps(m);
    m.predict(tensor_view<const T>(x), ws.alpha, ws.sigma, e ? prediction::epsilon : prediction::sample,
              tensor_view<T>{e ? ws.eps.data() : ws.x0.data(), x.batch, x.per_sample}, net_times<Model>(ws), first_sample);
    complete_pair(x, ws, e);
}

// ε̂ recomputed from the (clipped) x̂₀: DDIM's use_clipped_model_output.
template <class T>
void eps_from_x0(tensor_view<T> x, discrete_workspace<T>& ws) {
    complete_pair(x, ws, false);
}

// Clip or dynamically threshold x̂₀ in place (diffusers _threshold_sample: s = the ratio-quantile of |x̂₀|
// per sample, clamped to [1, sample_max_value]; x̂₀ ← clamp(x̂₀, −s, s) / s).
template <class T>
void process_x0(tensor_view<T> x0, const sample_clipping& o, std::vector<double>& q, std::vector<T>& scratch) {
    if (o.thresholding) {
        quantile_abs(tensor_view<const T>(x0), o.dynamic_thresholding_ratio, q, scratch);
        for (std::size_t b = 0; b < x0.batch; ++b) {
            const T s = static_cast<T>(std::min(std::max(q[b], 1.0), o.sample_max_value));
            const tensor_view<T> row{x0.sample(b), 1, x0.per_sample};
            transform(row, [s](T v) { return (v < -s ? -s : (v > s ? s : v)) / s; }, row);
        }
    } else if (o.clip_sample) {
        clamp(x0, x0, -o.clip_sample_range, o.clip_sample_range);
    }
}

inline void check_clipping(const sample_clipping& o, const char* where) {
    require(o.clip_sample_range > 0, where, "clip_sample_range", o.clip_sample_range, "(0, inf)");
    require(o.dynamic_thresholding_ratio > 0 && o.dynamic_thresholding_ratio <= 1, where, "dynamic_thresholding_ratio",
            o.dynamic_thresholding_ratio, "(0, 1]");
    require(o.sample_max_value >= 1, where, "sample_max_value", o.sample_max_value, "[1, inf)");
}

}  // namespace detail
}  // namespace diffuse
