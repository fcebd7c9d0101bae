#pragma once
// The denoiser model: how any network drives any sampler.
//
// A network is anything callable as
//     net(x, cond, out)        x: tensor_view<const T>, cond: const model_cond&, out: tensor_view<T>
// writing its prediction for the batch x into caller-owned `out` (see the `network` concept). It declares,
// through diffuse::model, what it predicts (ε, x₀, v or score) and how it reads time (a discrete
// timestep of a VP schedule, continuous SDE time, σ, or the s·T of a flow-matching network).
//
// Samplers never call the network directly. They hold a sampler state x = α·x₀ + σ·ε (α = 1 in σ-space
// samplers, α = √ᾱ in VP samplers) and ask the model for a prediction:
//     m.predict(x, alpha, sigma, want, out)            // network time derived from σ/α
//     m.predict(x, alpha, sigma, want, out, t_net)     // the sampler already knows the network's time
// The model maps the signal-to-noise ratio α²/σ² to the network's own time and input scale
// (x_net = α_net/α · x, as k-diffusion's DiscreteEpsDDPMDenoiser scales by c_in = 1/√(σ²+1)),
// calls the network and converts its output to `want` with one fused lincomb. So a network trained on
// discrete timesteps runs under a continuous σ-space sampler, a score network under DDIM, and so on.
// A non-finite network output raises diffuse::error naming the time.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/reduce.hpp"
#include "diffuse/core/scratch.hpp"
#include "diffuse/core/tensor_copy.hpp"
#include "diffuse/process/parameterization.hpp"
#include "diffuse/schedules/sigmas.hpp"

namespace diffuse {

// What the sampler passes to the network besides x.
struct model_cond {
    std::span<const double> t;                          // per-sample time, in the network's own unit
    std::span<const std::uint8_t> unconditional = {};   // per sample: 1 = drop the conditioning (CFG); empty = none
    std::uint64_t first_sample = 0;                     // id of sample 0 in the whole batch (batch splits)
};

// S: the memory space of the tensors (host by default); a network for device states takes device views.
template <class N, class T, memory_space S = memory_space::host>
concept network = scalar<T> && requires(N& n, tensor_view<const T, S> x, const model_cond& c, tensor_view<T, S> out) {
    n(x, c, out);
};

// The network's time and its own α for a sampler state of the given σ/α (only the ratio matters).
struct network_time {
    double t;
    double alpha;
};

// A network trained on the discrete timesteps of a VP schedule (DDPM, Stable Diffusion).
// σ → t by interpolation in log σ (k-diffusion) or linear σ (diffusers' Euler family). A time type derived
// from it is a discrete-time network too (exact timesteps reach it, reads_discrete_time).
struct discrete_time {
    enum class interpolation { log_sigma, linear_sigma };
    discrete_sigmas table;
    interpolation mode = interpolation::log_sigma;

    explicit discrete_time(std::span<const double> alphas_cumprod, interpolation m = interpolation::log_sigma)
        : table(alphas_cumprod), mode(m) {}

    // Zero terminal SNR (Lin et al. 2024): a schedule whose last ᾱ is 0 has a network time for the state α = 0
    // (pure noise): t = T − 1 with α_net = 0. Elsewhere σ/α reads the table, whose last σ is then that of
    // ᾱ = 2^-24 (discrete_sigmas).
    [[nodiscard]] bool zero_terminal_snr() const noexcept { return table.zero_terminal_snr(); }

    [[nodiscard]] network_time operator()(double alpha, double sigma) const {
        if (alpha == 0.0 && zero_terminal_snr()) return {table.t_max(), 0.0};
        const double s = sigma / alpha;
        const double t = mode == interpolation::log_sigma ? table.sigma_to_t_log(s) : table.sigma_to_t_linear(s);
        return {t, 1.0 / std::sqrt(1.0 + s * s)};
    }
    // α of the network's own state at a known (possibly fractional) timestep; exactly 0 at the last timestep
    // of a zero-terminal-SNR schedule.
    [[nodiscard]] double alpha_at(double t) const {
        if (t == table.t_max() && zero_terminal_snr()) return 0.0;
        const double s = mode == interpolation::log_sigma ? table.t_to_sigma_log(t) : table.t_to_sigma_linear(t);
        return 1.0 / std::sqrt(1.0 + s * s);
    }
};

// A network of a continuous SDE (vp_sde, subvp_sde, ve_sde from schedules/continuous.hpp), time t ∈ [eps, 1].
template <class Sde>
struct continuous_time {
    Sde sde;
    [[nodiscard]] network_time operator()(double alpha, double sigma) const {
        const double t = sde.t_from_log_snr(2.0 * (std::log(alpha) - std::log(sigma)));
        return {t, sde.marginal(t).mean_coef};
    }
    [[nodiscard]] double alpha_at(double t) const { return sde.marginal(t).mean_coef; }
};

// A variance-exploding network that reads σ itself (EDM's D(x; σ), NCSN): t = σ, α_net = 1.
struct sigma_time {
    [[nodiscard]] network_time operator()(double alpha, double sigma) const { return {sigma / alpha, 1.0}; }
    [[nodiscard]] double alpha_at(double) const { return 1.0; }
};

// An EDM-preconditioned raw network F (Karras et al. 2022, Table 1; diffusers' EDM schedulers): it reads the
// σ-space state scaled by c_in = 1/√(σ² + σ_data²) at network time c_noise = log(σ)/4 (σ = σ/α of the sampler's
// state), and the model's x₀ prediction is D(x; σ) = c_skip·x + c_out·F with c_skip = σ_data²/(σ² + σ_data²),
// c_out = ±σ·σ_data/√(σ² + σ_data²): + for diffusers' prediction_type "epsilon", − for "v_prediction".
// A model with this time predicts prediction::sample (edm_model below declares it).
enum class edm_output { epsilon, v_prediction };

[[nodiscard]] inline edm_output parse_edm_output(std::string_view name) {
    if (name == "epsilon") return edm_output::epsilon;
    if (name == "v_prediction") return edm_output::v_prediction;
    detail::require(false, "parse_edm_output", "prediction_type", name, "{epsilon, v_prediction}");
    return edm_output::epsilon;
}

struct edm_time {
    double sigma_data = 0.5;
    edm_output output = edm_output::epsilon;

    [[nodiscard]] network_time operator()(double alpha, double sigma) const { return {0.25 * std::log(sigma / alpha), 1.0}; }
    [[nodiscard]] double alpha_at(double) const { return 1.0; }
    // The coefficients at σ-space noise level σ > 0 (c_out signed by `output`).
    [[nodiscard]] edm_coefficients precondition(double sigma) const {
        auto c = edm_precondition(sigma, sigma_data);
        if (output == edm_output::v_prediction) c.c_out = -c.c_out;
        return c;
    }
};

// A flow-matching network (rectified flow: SD3, Flux): its own state is x = (1 − s)·x₀ + s·ε, s ∈ [0, 1],
// and it reads time as s·T (T = num_train_timesteps, diffusers' timestep = σ·T). A sampler state
// x = α·x₀ + σ·ε maps to s = σ/(α + σ) and the network input x/(α + σ) — also at α = 0 (pure noise, s = 1)
// and σ = 0 (data, s = 0), so flow samplers start from s = 1 and σ-space samplers (α = 1, σ = s/(1 − s))
// run a flow network too.
struct flow_time {
    double num_train_timesteps = 1000.0;

    [[nodiscard]] network_time operator()(double alpha, double sigma) const {
        detail::require(num_train_timesteps > 0 && std::isfinite(num_train_timesteps), "flow_time", "num_train_timesteps",
                        num_train_timesteps, "(0, inf)");
        const double s = sigma / (alpha + sigma);
        return {s * num_train_timesteps, 1.0 - s};
    }
    [[nodiscard]] double alpha_at(double t) const { return 1.0 - t / num_train_timesteps; }
    // x_net = x/(α + σ), whatever the network time: the flow state has α_net + σ_net = 1.
    [[nodiscard]] double input_scale(double alpha, double sigma) const { return 1.0 / (alpha + sigma); }
};

namespace detail {
// Whether a model is a network trained on discrete timesteps (a diffuse::model with discrete_time or a time
// type derived from it, or a wrapper such as cfg_model that forwards time()): it is called at exactly the
// sampler's timesteps.
template <class Model>
constexpr bool reads_discrete_time() {
    if constexpr (requires(const Model& m) { m.time(); })
        return std::is_base_of_v<discrete_time, std::remove_cvref_t<decltype(std::declval<const Model&>().time())>>;
    else
        return false;
}

// A time whose network input scale is defined at α = 0 (flow_time) says so with input_scale(α, σ).
template <class Time>
concept has_input_scale = requires(const Time& t, double a) { { t.input_scale(a, a) } -> std::convertible_to<double>; };
// A time whose network output is preconditioned (edm_time): x₀ = c_skip·x + c_out·F(c_in·x, c_noise).
template <class Time>
concept preconditioned_time = requires(const Time& t, double s) { { t.precondition(s) } -> std::same_as<edm_coefficients>; };
}  // namespace detail

template <class Net, class Time>
class model {
public:
    model(Net net, prediction predicts, Time time) : net_(std::move(net)), predicts_(predicts), time_(std::move(time)) {
        if constexpr (detail::preconditioned_time<Time>) {
            detail::require(predicts_ == prediction::sample, "model", "prediction", static_cast<int>(predicts_),
                            "{sample} (a preconditioned network's model predicts x0 = c_skip*x + c_out*F)");
            detail::require(time_.sigma_data > 0 && std::isfinite(time_.sigma_data), "model", "sigma_data", time_.sigma_data,
                            "(0, inf)");
        }
    }

    [[nodiscard]] prediction predicts() const noexcept { return predicts_; }
    [[nodiscard]] const Time& time() const noexcept { return time_; }
    [[nodiscard]] Net& net() noexcept { return net_; }

    // Whether the network has a time at α = 0 (a discrete-time network of a zero-terminal-SNR schedule).
    [[nodiscard]] bool zero_terminal_snr() const noexcept {
        if constexpr (requires(const Time& t) { t.zero_terminal_snr(); }) return time_.zero_terminal_snr();
        else return false;
    }

    // Network time for a sampler state with the given α, σ. α = 0 only where zero_terminal_snr().
    [[nodiscard]] network_time time_of(double alpha, double sigma) const {
        if constexpr (detail::has_input_scale<Time>) {  // a flow network: any state with α, σ ≥ 0 but not both 0
            detail::require(alpha >= 0 && std::isfinite(alpha), "model::predict", "alpha", alpha, "[0, inf)");
            detail::require(sigma >= 0 && std::isfinite(sigma) && alpha + sigma > 0, "model::predict", "sigma", sigma,
                            "[0, inf) with alpha + sigma > 0");
            return time_(alpha, sigma);
        }
        check_alpha(alpha);
        detail::require(sigma > 0 && std::isfinite(sigma), "model::predict", "sigma", sigma, "(0, inf)");
        return time_(alpha, sigma);
    }

    // out = the `want` prediction at state x = α·x₀ + σ·ε (per-sample α, σ). When t_net is given, the
    // network is called at exactly those times with its own α taken from them; otherwise both are derived
    // from σ/α. `unconditional` (empty, or one flag per sample) reaches the network as
    // model_cond::unconditional (classifier-free guidance). out must have x's shape and its own memory;
    // alpha and sigma hold one value per sample, t_net and unconditional one or none.
    template <tensor X, tensor Out>
    void predict(X&& x_in, std::span<const double> alpha, std::span<const double> sigma, prediction want, Out&& out_in,
                 std::span<const double> t_net = {}, std::uint64_t first_sample = 0,
                 std::span<const std::uint8_t> unconditional = {}) {
        if constexpr (same_element_type<X, Out>() && same_space<X, Out>()) {
            constexpr const char* where = "model::predict";
            const auto x = view(std::forward<X>(x_in));
            const auto out = detail::writable_view(std::forward<Out>(out_in), where);
            check_arguments(x, alpha, sigma, out, t_net, unconditional, where);
            predict_impl(x, alpha, sigma, want, out, tensor_view<tensor_value_t<X>, tensor_space_v<X>>{}, t_net, first_sample,
                         unconditional);
        }
    }

    // For networks with a learned variance (Nichol & Dhariwal 2021, §3.1): the network writes twice the state's
    // values per sample, [prediction, variance output v]; out receives the `want` prediction and
    // variance_out the raw v (diffusers splits the channels the same way: first half, second half).
    // out and variance_out must both have x's shape and memory of their own.
    template <tensor X, tensor Out, tensor Var>
    void predict_with_variance(X&& x_in, std::span<const double> alpha, std::span<const double> sigma, prediction want,
                               Out&& out_in, Var&& variance_out, std::span<const double> t_net = {},
                               std::uint64_t first_sample = 0) {
        if constexpr (same_element_type<X, Out, Var>() && same_space<X, Out, Var>()) {
            constexpr const char* where = "model::predict_with_variance";
            const auto x = view(std::forward<X>(x_in));
            const auto out = detail::writable_view(std::forward<Out>(out_in), where);
            const auto var = detail::writable_view(std::forward<Var>(variance_out), where);
            check_arguments(x, alpha, sigma, out, t_net, {}, where);
            detail::require_shape(var, x, where, "variance_out");
            detail::require_disjoint(var, x, where, "variance_out", "x");
            detail::require_disjoint(var, out, where, "variance_out", "out");
            predict_impl(x, alpha, sigma, want, out, var, t_net, first_sample, {});
        }
    }

private:
    void check_alpha(double alpha) const {
        if (alpha == 0.0 && zero_terminal_snr()) return;
        detail::require(alpha > 0 && std::isfinite(alpha), "model::predict", "alpha", alpha,
                        zero_terminal_snr() ? "[0, inf)" : "(0, inf) (alpha = 0 needs a zero-terminal-SNR discrete schedule)");
    }

    template <class X, class... Outs>
    static constexpr bool same_element_type() {
        constexpr bool same = (std::is_same_v<tensor_value_t<X>, tensor_value_t<Outs>> && ...);
        static_assert(same, "diffuse::model: x and the output tensors must have the same element type (float or double)");
        return same;
    }
    template <class X, class... Outs>
    static constexpr bool same_space() {
        constexpr bool same = ((tensor_space_v<X> == tensor_space_v<Outs>) && ...);
        static_assert(same, "diffuse::model: x and the output tensors must live in the same memory space");
        return same;
    }

    // Every shape and length, before anything is written: an out smaller than x would otherwise be written
    // past its end.
    template <class XV, class OV>
    static void check_arguments(const XV& x, std::span<const double> alpha, std::span<const double> sigma, const OV& out,
                                std::span<const double> t_net, std::span<const std::uint8_t> unconditional,
                                const char* where) {
        detail::require_shape(out, x, where, "out");
        detail::require_disjoint(out, x, where, "out", "x");  // the conversion reads x after the network wrote out
        detail::require_per_sample(alpha, x.batch, where, "alpha");
        detail::require_per_sample(sigma, x.batch, where, "sigma");
        detail::require_per_sample(t_net, x.batch, where, "t_net", true);
        detail::require_per_sample(unconditional, x.batch, where, "the unconditional mask", true);
    }

    template <class XV, class OV, class VV>
    void predict_impl(const XV& x, std::span<const double> alpha, std::span<const double> sigma, prediction want,
                      const OV& out, const VV& var, std::span<const double> t_net, std::uint64_t first_sample,
                      std::span<const std::uint8_t> unconditional) {
        using T = std::remove_const_t<typename XV::value_type>;
        constexpr memory_space S = XV::space;
        static_assert(network<Net, T, S>,
                      "diffuse::model: the network must be callable as net(tensor_view<const T, S> x, const model_cond&, "
                      "tensor_view<T, S> out) for the memory space S of the sampler's state");
        const std::size_t B = x.batch;
        t_.resize(B);
        scale_.resize(B);
        ca_.resize(B);
        cb_.resize(B);
        bool rescale = false;
        for (std::size_t b = 0; b < B; ++b) {
            network_time nt;
            if (t_net.empty()) {
                nt = time_of(alpha[b], sigma[b]);
            } else {
                if constexpr (detail::has_input_scale<Time>) (void)time_of(alpha[b], sigma[b]);
                else check_alpha(alpha[b]);
                nt = {t_net[b], time_.alpha_at(t_net[b])};
                if (!detail::has_input_scale<Time> && (alpha[b] == 0.0) != (nt.alpha == 0.0))
                    detail::fail("model::predict", "sample " + std::to_string(b) + ": alpha = " + std::to_string(alpha[b]) +
                                                       " but the network's alpha at t_net = " + std::to_string(t_net[b]) +
                                                       " is " + std::to_string(nt.alpha) +
                                                       " (alpha = 0 is the last timestep of a zero-terminal-SNR schedule)");
            }
            t_[b] = nt.t;
            if constexpr (detail::preconditioned_time<Time>) {
                // x₀ = c_skip·x/α + c_out·F(c_in·x/α, c_noise) at the σ-space level σ/α; then want = k.a·x + k.b·x₀
                const auto e = time_.precondition(sigma[b] / alpha[b]);
                const auto k = convert_coefficients(prediction::sample, want, alpha[b], sigma[b]);
                scale_[b] = e.c_in / alpha[b];
                ca_[b] = k.a + k.b * e.c_skip / alpha[b];
                cb_[b] = k.b * e.c_out;
                rescale = true;
                continue;
            }
            if constexpr (detail::has_input_scale<Time>) {
                scale_[b] = time_.input_scale(alpha[b], sigma[b]);  // x_net = x/(α + σ), defined at α = 0
            } else if (std::is_base_of_v<discrete_time, Time> && !t_net.empty()) {
                // a VP network given its timestep reads the state normalised to unit variance, x/√(α² + σ²)
                // (diffusers' scale_model_input, k-diffusion's c_in), whether or not t_net's own α agrees:
                // KDPM2 ancestral feeds two timesteps at one σ (kdpm2_ancestral_sigmas); 1/σ at α = 0
                scale_[b] = 1.0 / std::sqrt(alpha[b] * alpha[b] + sigma[b] * sigma[b]);
            } else {
                // x_net = scale·x; at α = α_net = 0 (zero terminal SNR) both states are pure noise and the VP network's
                // σ_net = 1 sets the scale
                scale_[b] = alpha[b] == 0.0 ? 1.0 / sigma[b] : nt.alpha / alpha[b];
            }
            rescale = rescale || std::abs(scale_[b] - 1.0) > 1e-15;
            // want = a·x_net + b·out_net at the network's own (α_net, σ_net) = scale·(α, σ)
            const auto c = convert_coefficients(predicts_, want, scale_[b] * alpha[b], scale_[b] * sigma[b]);
            ca_[b] = c.a * scale_[b];
            cb_[b] = c.b;
        }
        tensor_view<const T, S> x_net = x;
        if (rescale) {
            const auto scaled = scratch_.template get<T, S>(0, x.batch, x.per_sample);
            lincomb(scaled, per_sample(scale_), x);
            x_net = scaled;
        }
        if (var.data == nullptr) {
            net_(x_net, model_cond{t_, unconditional, first_sample}, out);
            check_finite(out);
        } else {  // the network writes [prediction, variance] per sample into one buffer, split here
            const auto wide = scratch_.template get<T, S>(1, x.batch, 2 * x.per_sample);
            net_(x_net, model_cond{t_, unconditional, first_sample}, wide);
            check_finite(wide);
            const std::size_t D = x.per_sample;
            for (std::size_t b = 0; b < B; ++b) {
                detail::copy_values(detail::sample_view(out, b), tensor_view<const T, S>{wide.sample(b), 1, D});
                detail::copy_values(detail::sample_view(var, b), tensor_view<const T, S>{wide.sample(b) + D, 1, D});
            }
        }
        if (predicts_ != want || rescale) lincomb(out, per_sample(ca_), x, per_sample(cb_), out);
    }

    template <class V>
    void check_finite(const V& out) {
        auto fail_at = [](std::size_t b, double t) {
            detail::fail("model::predict", "the network returned NaN or Inf for sample " + std::to_string(b) +
                                               " at network time t = " + std::to_string(t));
        };
        if constexpr (V::space == memory_space::host) {
            if (const std::size_t b = first_non_finite_sample(out); b < out.batch) fail_at(b, t_[b]);
        } else {  // (device memory: the check may run after a graph replay, so it keeps its own times)
            require_finite_samples(out, [fail_at, t = t_](std::size_t b) { fail_at(b, t[b]); });
        }
    }

    Net net_;
    prediction predicts_;
    Time time_;
    std::vector<double> t_, scale_, ca_, cb_;
    detail::scratch_tensors<2> scratch_;  // 0: the rescaled network input, 1: [prediction, variance] of a learned variance
};

// The model of an EDM-preconditioned raw network (edm_time): it predicts x₀ = D(x; σ).
template <class Net>
[[nodiscard]] auto edm_model(Net net, edm_time time = {}) {
    return model<Net, edm_time>(std::move(net), prediction::sample, time);
}

}  // namespace diffuse
