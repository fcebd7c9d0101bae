#pragma once
// What the discrete-timestep samplers (DDPM, DDIM, LCM, TCD) share: timestep grids, the stepper base that asks
// for the x̂₀ / ε̂ pair, and x̂₀ clipping / dynamic thresholding.
//
// Grids. A discrete sampler's time_grid holds integer training timesteps t_0 >= t_1 >= … and a final −1,
// which stands for "past the last timestep" (ᾱ = 1, or ᾱ_0 when set_alpha_to_one is false); the
// steppers reject a grid without it (discrete_grid appends it). A step whose two points are equal leaves
// that sample unchanged without noise: a mixed-strength batch pads the rows of its weaker samples with
// their start timestep (see guidance/editing.hpp); a step where every sample holds calls no model.
//
// The model is evaluated at the VP state α = √ᾱ_t, σ = √(1 − ᾱ_t) for one of the pair (x̂₀, ε̂); the other
// follows from x = α·x₀ + σ·ε (Ho et al. 2020, eq. 15; Song et al. 2021a, eq. 12). A stepper asks for ε̂
// (x̂₀ where α = 0, a zero-terminal-SNR timestep, at which ε̂ does not determine x̂₀) and states the exact
// timesteps in evaluation::t_net. In pull mode its fulfil() refines that for a diffuse::model: the
// network's own kind of prediction is asked for (ε for ε- and score-networks, x̂₀ for x̂₀- and v-networks),
// and only a network trained on discrete timesteps is given t_net (the others read their time from σ/α).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <coroutine>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/threshold.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/grid.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/stepper.hpp"

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
    if (!ok)
        require(false, where, "time_grid point", v,
                std::string("an integer timestep in [0, ") + std::to_string(T - 1) + "]" + (allow_final ? " or -1" : ""));
    return static_cast<std::int64_t>(v);
}

// The name of grid point i of sample b in messages ("time_grid point 3", "… of row 1" for per-sample grids).
inline std::string grid_point_name(const time_grid& g, std::size_t i, std::size_t b) {
    return "time_grid point " + std::to_string(i) + (g.shared() ? std::string() : " of row " + std::to_string(b));
}
// A grid point's value in messages, printed as detail::describe prints values (500, not 500.000000).
inline std::string grid_value_text(double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
}

// Checks the grid of a sampler that walks from noise to data (DDPM, DDIM, LCM) before any model call:
// points 0 … N−1 integer timesteps in [0, T−1], non-increasing (equal points hold a sample), and the last
// point −1 (past the last timestep). A grid without its −1 would stop at the noisy state of its last
// timestep and return it as the sample. With wrapped_last (diffusers' N + 1 trailing list,
// discrete_timesteps(…, trailing_extra_timestep)), point N−1 may also be −1: the last step starts at the
// timestep −1, whose ᾱ upstream reads at Python's index −1 (wrapped_alpha_cumprod).
inline void check_descending_grid(const time_grid& g, std::size_t batch, std::size_t T, const char* where,
                                  bool wrapped_last = false) {
    g.check_batch(batch, where);
    const std::size_t rows = g.shared() ? 1 : batch, N = g.steps();
    for (std::size_t b = 0; b < rows; ++b) {
        for (std::size_t i = 0; i < N; ++i) {
            const double v = g(i, b);
            if (wrapped_last && i > 0 && i + 1 == N && v == -1.0) continue;
            if (!(v == std::floor(v) && v >= 0 && v < double(T)))
                require(false, where, grid_point_name(g, i, b), v,
                        "an integer timestep in [0, " + std::to_string(T - 1) + "] (only the last point is -1)");
            if (i > 0 && !(v <= g(i - 1, b)))
                require(false, where, grid_point_name(g, i, b), v,
                        "<= the point before it, " + grid_value_text(g(i - 1, b)) +
                            " (the grid descends from noise to data; equal points hold a sample)");
        }
        if (g(N, b) != -1.0)
            require(false, where, grid_point_name(g, N, b) + " (the last)", g(N, b),
                "{-1}: the grid ends past the last timestep, as discrete_grid(timesteps) appends it (without -1 the "
                "run would stop at the noisy state of timestep " + grid_value_text(g(N, b)) + ")");
    }
}

// Workspaces of a discrete sampler, allocated once at entry in the state's memory space (scratch: the host
// buffer of dynamic thresholding's quantile).
template <class T, memory_space S = memory_space::host>
struct discrete_workspace {
    space_buffer<T, S> x0, eps, noise;
    std::vector<T> scratch;
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

// Whether the network predicts ε (ε- and score-networks) rather than x₀ (x₀- and v-networks).
template <class Model>
bool native_eps(const Model& m) {
    return m.predicts() == prediction::epsilon || m.predicts() == prediction::score;
}

// The other half of the pair from x and the model output y: x̂₀ = (x − σ·ε̂)/α = d0·x + d1·y when y = ε̂, else
// ε̂ = (x − α·x̂₀)/σ = d0·x + d1·y with y = x̂₀.
struct pair_coefficients {
    double d0, d1;
};
[[nodiscard]] inline pair_coefficients other_of_pair(double alpha, double sigma, bool have_eps) noexcept {
    return have_eps ? pair_coefficients{1.0 / alpha, -sigma / alpha} : pair_coefficients{1.0 / sigma, -alpha / sigma};
}

// Completes the pair: x̂₀ = (x − σ·ε̂)/α when ε̂ was predicted, else ε̂ = (x − α·x̂₀)/σ.
template <class T, memory_space S>
void complete_pair(tensor_view<T, S> x, discrete_workspace<T, S>& ws, bool have_eps) {
    const tensor_view<T, S> x0{ws.x0.data(), x.batch, x.per_sample}, eps{ws.eps.data(), x.batch, x.per_sample};
    for (std::size_t b = 0; b < x.batch; ++b) {
        const pair_coefficients c = other_of_pair(ws.alpha[b], ws.sigma[b], have_eps);
        ws.d0[b] = c.d0;
        ws.d1[b] = c.d1;
    }
    lincomb(have_eps ? x0 : eps, per_sample(ws.d0), x, per_sample(ws.d1), have_eps ? eps : x0);
}

// An update x ← a·x̂₀ + b·ε̂ + e·x + c·z (per-sample a, b, e, c; b or e empty: 0) written from x and the model
// output y alone, the other half of the pair substituted (other_of_pair): x ← cx·x + cy·y + c·z with
// cx = a·d0 + e, cy = a·d1 + b where y = ε̂ (x̂₀ = d0·x + d1·y), cx = b·d0 + e, cy = a + b·d1 where y = x̂₀.
// One pass over x and y instead of forming x̂₀ or ε̂ first, for steps where nothing else reads them (no
// clipping, no observer of x̂₀); the result differs from the two-pass form by rounding only. c = ws.c2 and
// z = noise draw `draw` where noisy. False, with x untouched, where a coefficient is not finite (α or σ = 0
// on the converted side): the caller then takes the two-pass form.
template <class T, class Noise, memory_space S>
bool update_from_output(tensor_view<T, S> x, discrete_workspace<T, S>& ws, std::span<const double> a, std::span<const double> b,
                        std::span<const double> e, bool have_eps, bool noisy, Noise& noise, std::uint64_t draw) {
    for (std::size_t s = 0; s < x.batch; ++s) {
        const pair_coefficients c = other_of_pair(ws.alpha[s], ws.sigma[s], have_eps);
        const double bs = b.empty() ? 0.0 : b[s], es = e.empty() ? 0.0 : e[s];
        ws.d0[s] = (have_eps ? a[s] * c.d0 : bs * c.d0) + es;
        ws.d1[s] = have_eps ? a[s] * c.d1 + bs : a[s] + bs * c.d1;
        if (!std::isfinite(ws.d0[s]) || !std::isfinite(ws.d1[s])) return false;
    }
    const tensor_view<T, S> y{(have_eps ? ws.eps : ws.x0).data(), x.batch, x.per_sample};
    const tensor_view<T, S> z{ws.noise.data(), x.batch, x.per_sample};
    const auto cx = per_sample(ws.d0), cy = per_sample(ws.d1);
    if (noisy) lincomb_noise(x, cx, x, cy, y, per_sample(ws.c2), noise_term(noise, z, draw));
    else lincomb(x, cx, x, cy, y);
    return true;
}

// ε̂ recomputed from the (clipped) x̂₀: DDIM's use_clipped_model_output.
template <class T, memory_space S>
void eps_from_x0(tensor_view<T, S> x, discrete_workspace<T, S>& ws) {
    complete_pair(x, ws, false);
}

// Clip or dynamically threshold x̂₀ in place (diffusers _threshold_sample: core/threshold.hpp).
template <class T, memory_space S>
void process_x0(tensor_view<T, S> x0, const sample_clipping& o, std::vector<double>& q, std::vector<T>& scratch) {
    if (o.thresholding) dynamic_threshold(x0, o.dynamic_thresholding_ratio, o.sample_max_value, q, scratch);
    else if (o.clip_sample) clamp(x0, x0, -o.clip_sample_range, o.clip_sample_range);
}

inline void check_clipping(const sample_clipping& o, const char* where) {
    require(o.clip_sample_range > 0, where, "clip_sample_range", o.clip_sample_range, "(0, inf)");
    require(o.dynamic_thresholding_ratio > 0 && o.dynamic_thresholding_ratio <= 1, where, "dynamic_thresholding_ratio",
            o.dynamic_thresholding_ratio, "(0, 1]");
    require(o.sample_max_value >= 1, where, "sample_max_value", o.sample_max_value, "[1, inf)");
}

// What a discrete stepper's pending request leaves to fulfil() in pull mode (see the top of this file).
enum class discrete_request {
    as_stated,     // the stated prediction (LCM's x̂₀); only t_net depends on the model
    pair,          // one of the pair x̂₀ / ε̂: the network's own kind where the model declares it
    network_own,   // the network's raw output, read by the step as the upstream scheduler reads it
};

// The common part of the discrete-timestep steppers: the training schedule ᾱ (a copy), the grid, the
// workspaces, the noise source, and the model requests. Derived provides run_step (one step's update) and
// checks its grid and options.
template <class Derived, class T, class Noise, memory_space S = memory_space::host>
class discrete_stepper : public stepper<Derived, T, S> {
public:
    [[nodiscard]] std::size_t steps() const noexcept { return grid_.steps(); }
    [[nodiscard]] const time_grid& grid() const noexcept { return grid_; }

    // Pull mode's answer to a request, refined for the model type (push mode gets the evaluation as stated):
    // exact timesteps only for a network trained on them, and the network's own prediction where the step
    // can use it (the pair x̂₀ / ε̂, the raw output).
    template <class Model>
    void fulfil(Model& m, const evaluation<T, S>& e) {
        evaluation<T, S> r = e;
        if constexpr (!reads_discrete_time<Model>()) r.t_net = {};
        if constexpr (requires { m.predicts(); }) {
            if (request_ == discrete_request::pair) {
                // at α = 0 only x̂₀ completes the pair: an ε-network's conversion there raises the model's error
                answered_ = native_eps(m) && !pair_needs_x0_ ? prediction::epsilon : prediction::sample;
                r.out = answered_ == prediction::epsilon ? view_of(ws.eps) : view_of(ws.x0);
            } else if (request_ == discrete_request::network_own) {
                answered_ = m.predicts();
            }
            r.want = answered_;
        }
        evaluate(m, r);
    }

protected:
    discrete_stepper(batch_shape shape, std::span<const double> alphas_cumprod, const time_grid& grid, Noise noise,
                     std::uint64_t first_sample, const char* where)
        : stepper<Derived, T, S>(shape.batch, shape.per_sample, where), alphas_cumprod_(alphas_cumprod.begin(), alphas_cumprod.end()),
          grid_(grid), ws(shape.batch, shape.batch * shape.per_sample), noise(std::forward<Noise>(noise)),
          first_sample_(first_sample) {
        require(!alphas_cumprod_.empty(), where, "alphas_cumprod.size()", alphas_cumprod_.size(), ">= 1");
        for (std::size_t t = 0; t < alphas_cumprod_.size(); ++t)
            if (!(alphas_cumprod_[t] >= 0 && alphas_cumprod_[t] <= 1))
                require(false, where, "alphas_cumprod[" + std::to_string(t) + "]", alphas_cumprod_[t], "[0, 1]");
        grid_.check_batch(shape.batch, where);
    }

    [[nodiscard]] std::size_t num_train_timesteps() const noexcept { return alphas_cumprod_.size(); }
    // The timestep at grid point i of sample b (checked by the derived constructor), and its ᾱ (−1: past_end).
    [[nodiscard]] std::int64_t timestep(std::size_t i, std::size_t b) const noexcept {
        return static_cast<std::int64_t>(grid_(i, b));
    }
    [[nodiscard]] double alpha_cumprod(std::int64_t t, double past_end) const noexcept {
        return t >= 0 ? alphas_cumprod_[std::size_t(t)] : past_end;
    }
    // The state where a step starts (ws.set_state): the timestep −1 of a wrapped_last grid
    // (check_descending_grid) has diffusers' alphas_cumprod[-1], the last element ᾱ_{T−1}, and the network
    // time 0 (upstream feeds −1, outside a discrete-time network's table; numpy.interp clamps it to 0).
    void set_start_state(std::size_t b, std::int64_t t) {
        ws.set_state(b, t >= 0 ? double(t) : 0.0, t >= 0 ? alphas_cumprod_[std::size_t(t)] : alphas_cumprod_.back());
    }
    // A view of the batch's shape on a workspace (made on use, so a copied stepper's views are its own).
    [[nodiscard]] tensor_view<T, S> view_of(space_buffer<T, S>& v) { return v.view(this->batch(), this->per_sample()); }

    // co_await this->predict_pair(x), then complete_pair(x): ws.x0 = x̂₀ and ws.eps = ε̂ at the VP state
    // (ws.alpha, ws.sigma) of the timesteps ws.t; variance_out receives a learned variance where given.
    std::suspend_always predict_pair(tensor_view<T, S> x, tensor_view<T, S> variance_out = {}) {
        pair_needs_x0_ = std::any_of(ws.alpha.begin(), ws.alpha.end(), [](double a) { return a == 0.0; });
        answered_ = pair_needs_x0_ ? prediction::sample : prediction::epsilon;  // ε̂ determines x̂₀ only where α > 0
        return ask(discrete_request::pair, x, ws.alpha, ws.sigma,
                   view_of(answered_ == prediction::epsilon ? ws.eps : ws.x0), variance_out);
    }
    void complete_pair(tensor_view<T, S> x) { detail::complete_pair(x, ws, answered_ == prediction::epsilon); }

    // co_await this->ask(...): the `answered_` prediction at x = α·x₀ + σ·ε into out (fulfil may refine it
    // as `kind` allows; answered_ then says what out holds), the network time ws.t.
    std::suspend_always ask(discrete_request kind, tensor_view<T, S> x, std::span<const double> alpha,
                            std::span<const double> sigma, tensor_view<T, S> out, tensor_view<T, S> variance_out = {}) {
        request_ = kind;
        return this->request(evaluation<T, S>{x, alpha, sigma, answered_, out, ws.t, variance_out, first_sample_, "timestep", ws.t});
    }

    std::vector<double> alphas_cumprod_;
    time_grid grid_;
    discrete_workspace<T, S> ws;
    Noise noise;
    std::uint64_t first_sample_;
    discrete_request request_ = discrete_request::as_stated;
    prediction answered_ = prediction::epsilon;  // what the last evaluation wrote
    bool pair_needs_x0_ = false;                 // a sample of the pending pair request is at α = 0
};

}  // namespace detail
}  // namespace diffuse
