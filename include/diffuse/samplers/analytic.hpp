#pragma once
// Analytic denoisers: data whose every prediction is known in closed form, for tests, benchmarks and demos.
//
// The data distribution is a mixture of Gaussians with diagonal covariances,
//     p₀(x₀) = Σ_k w_k N(x₀; μ_k, diag(s_k²)),
// (one component: plain Gaussian data). For any state x = α·x₀ + σ·ε (VP: α = √ᾱ; VE: α = 1) the marginal
// stays a mixture, p(x) = Σ_k w_k N(x; α·μ_k, diag(α²s_k² + σ²)), and the posterior mean of x₀ is exact:
//     r_k(x)   = w_k N(x; α μ_k, α²s_k² + σ²) / Σ_j w_j N(x; α μ_j, α²s_j² + σ²)      (responsibilities)
//     E[x₀|x]  = Σ_k r_k(x) (μ_k + α s_k² / (α² s_k² + σ²) · (x − α μ_k))            (Gaussian conditioning)
// and, by Tweedie's formula (Efron 2011; Song et al. 2021, eq. 5 target), the noise and the score:
//     ε̂ = (x − α·E[x₀|x]) / σ,     ∇ₓ log p(x) = −ε̂ / σ = (α·E[x₀|x] − x) / σ².
// With the exact denoiser, a sampler's only error is its own discretisation (and, for stochastic samplers,
// its statistics), which is what the parity, convergence and distribution tests need.
//
// For the flow-matching state x = (1 − s)·x₀ + s·ε (α = 1 − s, σ = s) the same formulas give the exact
// velocity u = E[ε − x₀ | x] (the minimiser of the flow-matching loss, Lipman et al. 2023, eq. 9).
// analytic_denoiser is a network (samplers/model.hpp) reading the network time through a clock that gives
// the (α, σ) of that time, consistent with the diffuse::model time it is paired with; analytic_model(...)
// builds the pair for a discrete VP schedule, a continuous SDE, σ itself or a flow-matching time. Classifier-free guidance can be
// exercised with conditional weights: rows the sampler marks conditional see the mixture reweighted.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/samplers/model.hpp"

namespace diffuse {

// (α, σ) of a state x = α·x₀ + σ·ε.
struct state_scale {
    double alpha;
    double sigma;
};

class gaussian_mixture {
public:
    // weights: K positive numbers (normalised here); means: K×D row-major; variances: K×D (diagonal) or
    // K values (isotropic per component), each ≥ 0.
    gaussian_mixture(std::vector<double> weights, std::vector<double> means, std::vector<double> variances)
        : w_(std::move(weights)), mu_(std::move(means)), var_(std::move(variances)) {
        constexpr const char* where = "gaussian_mixture";
        const std::size_t K = w_.size();
        detail::require(K >= 1, where, "weights.size()", K, ">= 1");
        detail::require(!mu_.empty() && mu_.size() % K == 0, where, "means.size()", mu_.size(),
                        "a positive multiple of the number of components " + std::to_string(K));
        D_ = mu_.size() / K;
        if (var_.size() == K) {  // isotropic: expand to K×D
            std::vector<double> full(K * D_);
            for (std::size_t k = 0; k < K; ++k) std::fill_n(full.begin() + std::ptrdiff_t(k * D_), D_, var_[k]);
            var_ = std::move(full);
        }
        detail::require(var_.size() == K * D_, where, "variances.size()", var_.size(),
                        "K = " + std::to_string(K) + " or K*D = " + std::to_string(K * D_));
        double total = 0;
        for (double w : w_) {
            detail::require(w > 0 && std::isfinite(w), where, "weights[k]", w, "(0, inf)");
            total += w;
        }
        for (double& w : w_) w /= total;
        for (double m : mu_) detail::require(std::isfinite(m), where, "means[i]", m, "finite");
        for (double v : var_) detail::require(v >= 0 && std::isfinite(v), where, "variances[i]", v, "[0, inf)");
    }

    // Gaussian data N(mean, diag(variance)); variance has D values or one (isotropic).
    [[nodiscard]] static gaussian_mixture gaussian(std::vector<double> mean, std::vector<double> variance) {
        if (variance.size() == 1 && mean.size() > 1) variance.assign(mean.size(), variance[0]);
        return gaussian_mixture({1.0}, std::move(mean), std::move(variance));
    }

    [[nodiscard]] std::size_t dim() const noexcept { return D_; }
    [[nodiscard]] std::size_t components() const noexcept { return w_.size(); }
    [[nodiscard]] std::span<const double> weights() const noexcept { return w_; }
    [[nodiscard]] std::span<const double> mean(std::size_t k) const { return {mu_.data() + k * D_, D_}; }
    [[nodiscard]] std::span<const double> variance(std::size_t k) const { return {var_.data() + k * D_, D_}; }
    // Smallest per-dimension variance (0 when some component is a point mass in some dimension).
    [[nodiscard]] double min_variance() const noexcept { return *std::min_element(var_.begin(), var_.end()); }

    // Moments of the data p₀: E[x₀] = Σ w_k μ_k, Cov = Σ w_k (diag(s_k²) + μ_k μ_kᵀ) − E E ᵀ (D×D, row-major).
    [[nodiscard]] std::vector<double> data_mean() const {
        std::vector<double> m(D_, 0.0);
        for (std::size_t k = 0; k < components(); ++k)
            for (std::size_t d = 0; d < D_; ++d) m[d] += w_[k] * mu_[k * D_ + d];
        return m;
    }
    [[nodiscard]] std::vector<double> data_covariance() const {
        const auto m = data_mean();
        std::vector<double> c(D_ * D_, 0.0);
        for (std::size_t k = 0; k < components(); ++k)
            for (std::size_t i = 0; i < D_; ++i) {
                c[i * D_ + i] += w_[k] * var_[k * D_ + i];
                for (std::size_t j = 0; j < D_; ++j) c[i * D_ + j] += w_[k] * mu_[k * D_ + i] * mu_[k * D_ + j];
            }
        for (std::size_t i = 0; i < D_; ++i)
            for (std::size_t j = 0; j < D_; ++j) c[i * D_ + j] -= m[i] * m[j];
        return c;
    }

    // log p(x) of one state x (D values) at (α, σ), with the given component weights (default: the mixture's).
    template <class T>
    [[nodiscard]] double log_density(std::span<const T> x, state_scale s, std::span<const double> weights = {}) const {
        check_state(x.size(), s, weights, "gaussian_mixture::log_density");
        std::vector<double> lp(components());
        log_joint(x.data(), s, weights.empty() ? std::span<const double>(w_) : weights, lp.data());
        return log_sum_exp(lp);
    }

    // r_k(x) for one state x; out has K values.
    template <class T>
    void responsibilities(std::span<const T> x, state_scale s, std::span<double> out,
                          std::span<const double> weights = {}) const {
        check_state(x.size(), s, weights, "gaussian_mixture::responsibilities");
        detail::require(out.size() == components(), "gaussian_mixture::responsibilities", "out.size()", out.size(),
                        "the number of components " + std::to_string(components()));
        log_joint(x.data(), s, weights.empty() ? std::span<const double>(w_) : weights, out.data());
        normalise(out);
    }

    // x0[b] = E[x₀ | x[b]] at per-sample (α, σ); optional per-sample weights (batch × K, row-major).
    // `scratch` holds K doubles (resized here, reused across calls).
    template <class T>
    void denoise(tensor_view<const T> x, std::span<const double> alpha, std::span<const double> sigma,
                 tensor_view<T> x0, std::vector<double>& scratch, std::span<const double> row_weights = {}) const {
        constexpr const char* where = "gaussian_mixture::denoise";
        if (x.per_sample != D_ || x0.per_sample < D_ || x0.batch != x.batch)
            detail::fail(where, "the state has " + std::to_string(x.per_sample) + " values per sample, the data " +
                                    std::to_string(D_) + " and the output " + std::to_string(x0.per_sample));
        if (alpha.size() != x.batch || sigma.size() != x.batch ||
            (!row_weights.empty() && row_weights.size() != x.batch * components()))
            detail::fail(where, "alpha, sigma (and row weights) need one entry per sample");
        const std::size_t K = components();
        scratch.resize(K);
        for (std::size_t b = 0; b < x.batch; ++b) {
            const state_scale s{alpha[b], sigma[b]};
            const auto w = row_weights.empty() ? std::span<const double>(w_) : row_weights.subspan(b * K, K);
            check_state(D_, s, w, where);
            const T* xb = x.sample(b);
            T* ob = x0.sample(b);
            log_joint(xb, s, w, scratch.data());
            normalise(scratch);
            for (std::size_t d = 0; d < D_; ++d) {
                double acc = 0;
                for (std::size_t k = 0; k < K; ++k) {
                    const double mu = mu_[k * D_ + d], v = var_[k * D_ + d];
                    const double gain = s.alpha * v / (s.alpha * s.alpha * v + s.sigma * s.sigma);
                    acc += scratch[k] * (mu + gain * (double(xb[d]) - s.alpha * mu));
                }
                ob[d] = static_cast<T>(acc);
            }
        }
    }

private:
    void check_state(std::size_t n, state_scale s, std::span<const double> weights, const char* where) const {
        if (n != D_) detail::fail(where, "the state has " + std::to_string(n) + " values but the data has " + std::to_string(D_));
        detail::require(s.alpha >= 0 && std::isfinite(s.alpha), where, "alpha", s.alpha, "[0, inf)");
        detail::require(s.sigma >= 0 && std::isfinite(s.sigma), where, "sigma", s.sigma, "[0, inf)");
        detail::require(s.sigma > 0 || min_variance() > 0, where, "sigma", s.sigma,
                        "(0, inf) (the data has a component of zero variance)");
        if (!weights.empty()) {
            detail::require(weights.size() == components(), where, "weights.size()", weights.size(),
                            std::to_string(components()));
            for (double w : weights) detail::require(w >= 0 && std::isfinite(w), where, "weights[k]", w, "[0, inf)");
        }
    }
    // lp[k] = log w_k + log N(x; α μ_k, diag(α² s_k² + σ²))
    template <class T>
    void log_joint(const T* x, state_scale s, std::span<const double> w, double* lp) const {
        constexpr double log_2pi = 1.8378770664093454835606594728112;
        for (std::size_t k = 0; k < components(); ++k) {
            double q = 0;
            for (std::size_t d = 0; d < D_; ++d) {
                const double v = s.alpha * s.alpha * var_[k * D_ + d] + s.sigma * s.sigma;
                const double r = double(x[d]) - s.alpha * mu_[k * D_ + d];
                q += r * r / v + std::log(v) + log_2pi;
            }
            lp[k] = (w[k] > 0 ? std::log(w[k]) : -INFINITY) - 0.5 * q;
        }
    }
    static double log_sum_exp(std::span<const double> lp) {
        const double m = *std::max_element(lp.begin(), lp.end());
        if (!std::isfinite(m)) return m;
        double s = 0;
        for (double v : lp) s += std::exp(v - m);
        return m + std::log(s);
    }
    static void normalise(std::span<double> lp) {
        const double lse = log_sum_exp(lp);
        for (double& v : lp) v = std::exp(v - lse);
    }

    std::vector<double> w_, mu_, var_;
    std::size_t D_ = 0;
};

// Clocks: the (α, σ) of a network time, matching the model time each is paired with.
// A discrete VP schedule read through diffuse::discrete_time: σ_VE(t) from the model's own interpolation,
// α = 1/√(1+σ_VE²), σ = α·σ_VE (at integer t: √ᾱ_t and √(1−ᾱ_t)).
struct discrete_clock {
    discrete_time time;
    [[nodiscard]] state_scale operator()(double t) const {
        if (time.alpha_at(t) == 0.0) return {0.0, 1.0};  // the last timestep of a zero-terminal-SNR schedule
        const double s = time.mode == discrete_time::interpolation::log_sigma ? time.table.t_to_sigma_log(t)
                                                                              : time.table.t_to_sigma_linear(t);
        const double a = 1.0 / std::sqrt(1.0 + s * s);
        return {a, a * s};
    }
};
// σ-space (VE, EDM): the network time is σ.
struct sigma_clock {
    [[nodiscard]] state_scale operator()(double t) const { return {1.0, t}; }
};
// A flow-matching network (diffuse::flow_time): t = s·T, the state (1 − s)·x₀ + s·ε. Its velocity
// u = ε̂ − x̂₀ = (x − E[x₀|x])/s follows from the exact denoiser (convert_coefficients). A time rounded above T
// (diffusers' float32 σ·T of a shifted σ = 1) reads as T.
struct flow_clock {
    double num_train_timesteps = 1000.0;
    [[nodiscard]] state_scale operator()(double t) const {
        const double s = std::min(t / num_train_timesteps, 1.0);
        return {1.0 - s, s};
    }
};
// An EDM-preconditioned raw network (diffuse::edm_time): t = c_noise = log(σ)/4, the input x_net = c_in·(x₀ + σ·ε),
// and the raw output F = (x̂₀ − c_skip·x_net/c_in)/c_out, i.e. F = a·x_net + b·x̂₀ (raw_output).
struct edm_clock {
    edm_time time;
    [[nodiscard]] state_scale operator()(double t) const {
        const double sigma = std::exp(4.0 * t);
        const double c_in = time.precondition(sigma).c_in;
        return {c_in, c_in * sigma};
    }
    [[nodiscard]] conversion raw_output(double t) const {
        const auto c = time.precondition(std::exp(4.0 * t));
        return {-c.c_skip / (c.c_in * c.c_out), 1.0 / c.c_out};
    }
};
// A continuous SDE (vp_sde, subvp_sde, ve_sde): its marginal at t.
template <class Sde>
struct sde_clock {
    Sde sde;
    [[nodiscard]] state_scale operator()(double t) const {
        const auto m = sde.marginal(t);
        return {m.mean_coef, m.std};
    }
};

// The exact denoiser of a Gaussian mixture as a network predicting `predicts` (ε, x₀, v or score).
//
// Conditioning for classifier-free guidance: with conditional_weights set, rows the sampler passes as
// conditional (model_cond::unconditional empty or 0 for that row) see the mixture reweighted by them; rows
// marked unconditional see the mixture's own weights.
// Learned variance (improved DDPM): when the output has twice the state's values per sample, the second
// half is filled with `learned_variance` (the network's v ∈ [−1, 1] of learned_range interpolation).
template <class Clock>
class analytic_denoiser {
public:
    analytic_denoiser(gaussian_mixture data, prediction predicts, Clock clock)
        : data_(std::move(data)), predicts_(predicts), clock_(std::move(clock)) {}

    std::optional<std::vector<double>> conditional_weights;
    double learned_variance = 0.0;
    std::size_t calls = 0;  // number of network evaluations (tests count model calls)

    [[nodiscard]] const gaussian_mixture& data() const noexcept { return data_; }
    [[nodiscard]] prediction predicts() const noexcept { return predicts_; }
    [[nodiscard]] const Clock& clock() const noexcept { return clock_; }

    template <class T>
    void operator()(tensor_view<const T> x, const model_cond& c, tensor_view<T> out) {
        constexpr const char* where = "analytic_denoiser";
        const std::size_t B = x.batch, K = data_.components();
        if (c.t.size() != B) detail::fail(where, "the condition has " + std::to_string(c.t.size()) + " times for a batch of " + std::to_string(B));
        if (out.batch != B || (out.per_sample != x.per_sample && out.per_sample != 2 * x.per_sample))
            detail::fail(where, "the output must have the state's shape (or twice its values per sample for a learned variance)");
        if (!c.unconditional.empty() && c.unconditional.size() != B)
            detail::fail(where, "the unconditional mask needs one entry per sample");
        ++calls;
        alpha_.resize(B);
        sigma_.resize(B);
        for (std::size_t b = 0; b < B; ++b) {
            const auto s = clock_(c.t[b]);
            alpha_[b] = s.alpha;
            sigma_[b] = s.sigma;
        }
        std::span<const double> rows;
        if (conditional_weights) {
            detail::require(conditional_weights->size() == K, where, "conditional_weights.size()",
                            conditional_weights->size(), std::to_string(K));
            row_w_.resize(B * K);
            for (std::size_t b = 0; b < B; ++b) {
                const bool uncond = !c.unconditional.empty() && c.unconditional[b] != 0;
                for (std::size_t k = 0; k < K; ++k)
                    row_w_[b * K + k] = uncond ? data_.weights()[k] : (*conditional_weights)[k];
            }
            rows = row_w_;
        }
        data_.denoise(x, alpha_, sigma_, out, scratch_, rows);
        const std::size_t D = x.per_sample;
        for (std::size_t b = 0; b < B; ++b) {
            T* o = out.sample(b);
            if constexpr (requires(const Clock& k) { k.raw_output(0.0); }) {  // a preconditioned network's raw output
                const auto k = clock_.raw_output(c.t[b]);
                const T* xb = x.sample(b);
                for (std::size_t d = 0; d < D; ++d) o[d] = static_cast<T>(k.a * double(xb[d]) + k.b * double(o[d]));
            } else if (predicts_ != prediction::sample) {
                const auto k = convert_coefficients(prediction::sample, predicts_, alpha_[b], sigma_[b]);
                const T* xb = x.sample(b);
                for (std::size_t d = 0; d < D; ++d) o[d] = static_cast<T>(k.a * double(xb[d]) + k.b * double(o[d]));
            }
            if (out.per_sample == 2 * D) std::fill_n(o + D, D, static_cast<T>(learned_variance));
        }
    }

private:
    gaussian_mixture data_;
    prediction predicts_;
    Clock clock_;
    std::vector<double> alpha_, sigma_, row_w_, scratch_;
};

// The exact denoiser paired with the model time it is read through.
[[nodiscard]] inline auto analytic_model(gaussian_mixture data, prediction predicts, discrete_time time) {
    analytic_denoiser<discrete_clock> net(std::move(data), predicts, discrete_clock{time});
    return model<analytic_denoiser<discrete_clock>, discrete_time>(std::move(net), predicts, std::move(time));
}
[[nodiscard]] inline auto analytic_model(gaussian_mixture data, prediction predicts, sigma_time time = {}) {
    analytic_denoiser<sigma_clock> net(std::move(data), predicts, sigma_clock{});
    return model<analytic_denoiser<sigma_clock>, sigma_time>(std::move(net), predicts, time);
}
[[nodiscard]] inline auto analytic_model(gaussian_mixture data, prediction predicts, flow_time time) {
    analytic_denoiser<flow_clock> net(std::move(data), predicts, flow_clock{time.num_train_timesteps});
    return model<analytic_denoiser<flow_clock>, flow_time>(std::move(net), predicts, time);
}
// The exact denoiser behind an EDM-preconditioned raw network (its model predicts x₀; `predicts` must be sample).
[[nodiscard]] inline auto analytic_model(gaussian_mixture data, prediction predicts, edm_time time) {
    analytic_denoiser<edm_clock> net(std::move(data), prediction::sample, edm_clock{time});
    return model<analytic_denoiser<edm_clock>, edm_time>(std::move(net), predicts, time);
}
template <class Sde>
[[nodiscard]] auto analytic_model(gaussian_mixture data, prediction predicts, continuous_time<Sde> time) {
    analytic_denoiser<sde_clock<Sde>> net(std::move(data), predicts, sde_clock<Sde>{time.sde});
    return model<analytic_denoiser<sde_clock<Sde>>, continuous_time<Sde>>(std::move(net), predicts, std::move(time));
}

}  // namespace diffuse
