#pragma once
// Timestep and noise-level samplers for training.
//
//   uniform_timestep_sampler   t ~ U{0, …, T−1}, weights 1
//   loss_aware_sampler         importance sampling of t with p_t ∝ √E[L_t²] (Nichol & Dhariwal 2021,
//                              "Improved DDPM", §3.3, eq. 17): a history of the last `history` squared
//                              losses per timestep; until every timestep has a full history it samples
//                              uniformly. Returned weights w_t = 1/(T·p_t) keep the estimate unbiased:
//                              E_{t~p}[w_t L_t] = (1/T) Σ_t L_t.
//   lognormal_sigma_sampler    ln σ ~ N(P_mean, P_std²) (Karras et al. 2022, "EDM", Table 1: −1.2, 1.2)
//   uniform_time_sampler       t ~ U[eps, T] for continuous-time models (score_sde: eps = 1e-5)

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/host_rng.hpp"

namespace diffuse {

struct timestep_batch {
    std::vector<std::size_t> timesteps;
    std::vector<double> weights;  // importance weights, one per sample
};

namespace detail {
// Inverse-CDF draw from a discrete distribution given its cumulative sums (last = total).
[[nodiscard]] inline std::size_t draw_from_cdf(std::span<const double> cdf, double u) {
    const double x = u * cdf.back();
    auto it = std::upper_bound(cdf.begin(), cdf.end(), x);
    std::size_t i = std::size_t(it - cdf.begin());
    if (i >= cdf.size()) i = cdf.size() - 1;
    while (i > 0 && cdf[i] == cdf[i - 1]) --i;  // never return a zero-probability bin
    return i;
}
}  // namespace detail

class uniform_timestep_sampler {
public:
    explicit uniform_timestep_sampler(std::size_t num_timesteps) : T_(num_timesteps) {
        detail::require(num_timesteps >= 1, "uniform_timestep_sampler", "num_timesteps", num_timesteps, ">= 1");
    }
    [[nodiscard]] std::size_t num_timesteps() const noexcept { return T_; }
    [[nodiscard]] std::vector<double> probabilities() const { return std::vector<double>(T_, 1.0 / double(T_)); }
    [[nodiscard]] timestep_batch sample(std::size_t batch, host_rng& rng) const {
        timestep_batch r{std::vector<std::size_t>(batch), std::vector<double>(batch, 1.0)};
        for (auto& t : r.timesteps) t = std::size_t(rng.below(T_));
        return r;
    }

private:
    std::size_t T_;
};

class loss_aware_sampler {
public:
    explicit loss_aware_sampler(std::size_t num_timesteps, std::size_t history = 10, double uniform_prob = 0.001)
        : T_(num_timesteps), history_(history), uniform_prob_(uniform_prob), losses_(num_timesteps) {
        constexpr std::string_view where = "loss_aware_sampler";
        detail::require(num_timesteps >= 1, where, "num_timesteps", num_timesteps, ">= 1");
        detail::require(history >= 1, where, "history", history, ">= 1");
        detail::require(uniform_prob >= 0.0 && uniform_prob <= 1.0, where, "uniform_prob", uniform_prob, "[0, 1]");
    }

    [[nodiscard]] std::size_t num_timesteps() const noexcept { return T_; }

    // Every timestep has `history` losses recorded.
    [[nodiscard]] bool warmed_up() const noexcept {
        return std::all_of(losses_.begin(), losses_.end(), [&](const auto& h) { return h.size() == history_; });
    }

    // p_t: uniform before warm-up, else √(mean L²) normalised, mixed with uniform_prob of uniform.
    [[nodiscard]] std::vector<double> probabilities() const {
        std::vector<double> p(T_, 1.0 / double(T_));
        if (!warmed_up()) return p;
        double total = 0.0;
        for (std::size_t t = 0; t < T_; ++t) {
            double m2 = 0.0;
            for (double l : losses_[t]) m2 += l * l;
            p[t] = std::sqrt(m2 / double(history_));
            total += p[t];
        }
        if (!(total > 0.0) || !std::isfinite(total)) return std::vector<double>(T_, 1.0 / double(T_));
        for (auto& v : p) v = v / total * (1.0 - uniform_prob_) + uniform_prob_ / double(T_);
        return p;
    }

    // t ~ p, w = 1/(T·p_t). Timesteps with p_t = 0 are never drawn, so every weight is finite.
    [[nodiscard]] timestep_batch sample(std::size_t batch, host_rng& rng) const {
        if (!warmed_up()) return uniform_timestep_sampler(T_).sample(batch, rng);
        const auto p = probabilities();
        std::vector<double> cdf(T_);
        double acc = 0.0;
        for (std::size_t t = 0; t < T_; ++t) cdf[t] = (acc += p[t]);
        timestep_batch r{std::vector<std::size_t>(batch), std::vector<double>(batch)};
        for (std::size_t b = 0; b < batch; ++b) {
            const std::size_t t = detail::draw_from_cdf(cdf, rng.uniform());
            r.timesteps[b] = t;
            r.weights[b] = 1.0 / (double(T_) * (p[t] / acc));
        }
        return r;
    }

    // Records the per-sample losses of a batch (each must be finite), keeping the newest `history`.
    void update(std::span<const std::size_t> timesteps, std::span<const double> losses) {
        constexpr std::string_view where = "loss_aware_sampler::update";
        if (timesteps.size() != losses.size())
            detail::fail(where, "timesteps has " + std::to_string(timesteps.size()) + " values but losses has " +
                                    std::to_string(losses.size()));
        for (std::size_t i = 0; i < timesteps.size(); ++i) {
            detail::require(timesteps[i] < T_, where, "timesteps[" + std::to_string(i) + "]", timesteps[i],
                            "[0, " + std::to_string(T_) + ")");
            detail::require(std::isfinite(losses[i]), where, "losses[" + std::to_string(i) + "]", losses[i], "finite");
        }
        for (std::size_t i = 0; i < timesteps.size(); ++i) {
            auto& h = losses_[timesteps[i]];
            if (h.size() == history_) h.pop_front();
            h.push_back(losses[i]);
        }
    }

private:
    std::size_t T_, history_;
    double uniform_prob_;
    std::vector<std::deque<double>> losses_;
};

struct lognormal_sigma_sampler {
    double p_mean = -1.2, p_std = 1.2;

    [[nodiscard]] std::vector<double> sample(std::size_t batch, host_rng& rng) const {
        detail::require(std::isfinite(p_mean), "lognormal_sigma_sampler", "p_mean", p_mean, "finite");
        detail::require(p_std >= 0.0 && std::isfinite(p_std), "lognormal_sigma_sampler", "p_std", p_std, "[0, inf)");
        std::vector<double> s(batch);
        for (auto& v : s) v = std::exp(p_mean + p_std * rng.normal());  // σ = exp(P_mean + P_std·n)
        return s;
    }
};

struct uniform_time_sampler {
    double eps = 1e-5, t_max = 1.0;

    [[nodiscard]] std::vector<double> sample(std::size_t batch, host_rng& rng) const {
        detail::require(eps >= 0.0 && eps < t_max && std::isfinite(t_max), "uniform_time_sampler", "eps", eps,
                        "[0, t_max)");
        std::vector<double> t(batch);
        for (auto& v : t) v = eps + (t_max - eps) * rng.uniform();
        return t;
    }
};

}  // namespace diffuse
