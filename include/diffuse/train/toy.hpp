#pragma once
// Two-dimensional toy data sets and a reference training loop for the MLP denoiser on the VP SDE
// (used by the quickstart demo and its test).
//
//   toy_sample(toy_dataset::two_moons, n, seed)      n points, row-major (x, y), roughly unit scale
//   train_toy_vp(model, cfg, on_step)                  ε-prediction training on the VP SDE:
//       t ~ U[ε, 1], x_t = m(t)x₀ + s(t)z, L = ‖ε̂(x_t, t) − z‖² (Song et al. 2021 with the DDPM
//       parameterisation of Ho et al. 2020), Adam, optional EMA of the weights.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/losses/denoising.hpp"
#include "diffuse/losses/dsm.hpp"
#include "diffuse/core/host_rng.hpp"
#include "diffuse/nn/mlp.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/train/ema.hpp"

namespace diffuse {

enum class toy_dataset { two_moons, swiss_roll, eight_gaussians };

[[nodiscard]] inline toy_dataset parse_toy_dataset(std::string_view name) {
    if (name == "moons" || name == "two_moons") return toy_dataset::two_moons;
    if (name == "swiss" || name == "swiss_roll") return toy_dataset::swiss_roll;
    if (name == "gaussians" || name == "8gaussians" || name == "eight_gaussians") return toy_dataset::eight_gaussians;
    detail::require(false, "parse_toy_dataset", "dataset", std::string(name), "{moons, swiss_roll, 8gaussians}");
    return toy_dataset::two_moons;
}

// Points standardised to roughly zero mean and unit scale per coordinate.
[[nodiscard]] inline std::vector<double> toy_sample(toy_dataset kind, std::size_t n, std::uint64_t seed) {
    host_rng rng(seed);
    std::vector<double> p(2 * n);
    constexpr double pi = std::numbers::pi;
    for (std::size_t i = 0; i < n; ++i) {
        double x = 0, y = 0;
        switch (kind) {
            case toy_dataset::two_moons: {  // sklearn's make_moons with noise 0.05, then standardised
                const double a = pi * rng.uniform();
                if (rng.uniform() < 0.5) x = std::cos(a), y = std::sin(a);
                else x = 1.0 - std::cos(a), y = 0.5 - std::sin(a);
                x += 0.05 * rng.normal(), y += 0.05 * rng.normal();
                x = (x - 0.5) / 0.87, y = (y - 0.25) / 0.5;
                break;
            }
            case toy_dataset::swiss_roll: {  // sklearn's 2-D swiss roll (x, z), noise 0.25, scaled
                const double t = 1.5 * pi * (1.0 + 2.0 * rng.uniform());
                x = (t * std::cos(t) + 0.25 * rng.normal()) / 7.0;
                y = (t * std::sin(t) + 0.25 * rng.normal()) / 7.0;
                break;
            }
            case toy_dataset::eight_gaussians: {
                const double a = 2.0 * pi * double(rng.below(8)) / 8.0;
                x = (std::cos(a) * 2.0 + 0.1 * rng.normal()) / 1.42;
                y = (std::sin(a) * 2.0 + 0.1 * rng.normal()) / 1.42;
                break;
            }
        }
        p[2 * i] = x, p[2 * i + 1] = y;
    }
    return p;
}

struct toy_train_config {
    toy_dataset dataset = toy_dataset::two_moons;
    std::size_t steps = 4000, batch = 256;
    double lr = 2e-3, lr_final = 2e-4;  // cosine decay from lr to lr_final
    double t_eps = 1e-3;
    double beta_min = 0.1, beta_max = 20.0;
    double ema_decay = 0.999;           // 0 disables the EMA
    std::uint64_t seed = 0;
};

// Trains `model` in place (its EMA weights are copied in at the end when enabled); on_step(step, loss)
// is called after every step. Returns the mean loss of the last 10% of the steps.
inline double train_toy_vp(mlp_denoiser& model, const toy_train_config& cfg,
                           const std::function<void(std::size_t, double)>& on_step = {}) {
    constexpr const char* where = "train_toy_vp";
    detail::require(model.config().data_dim == 2, where, "model data_dim", model.config().data_dim, "2");
    detail::require(cfg.steps >= 1, where, "steps", cfg.steps, ">= 1");
    detail::require(cfg.batch >= 1, where, "batch", cfg.batch, ">= 1");
    detail::require(cfg.t_eps > 0.0 && cfg.t_eps < 1.0, where, "t_eps", cfg.t_eps, "(0, 1)");
    const vp_sde sde(cfg.beta_min, cfg.beta_max);
    const std::size_t B = cfg.batch;
    adam opt(cfg.lr);
    ema avg(model.parameters(), ema_options{cfg.ema_decay, 0.0, 0, true, 1.0, 0.75});
    host_rng rng(cfg.seed ^ 0x5eedull);
    std::vector<float> x0(2 * B), z(2 * B), xt(2 * B), y(2 * B), g(2 * B);
    std::vector<double> t(B);
    double tail = 0.0;
    std::size_t tail_n = 0;
    for (std::size_t step = 0; step < cfg.steps; ++step) {
        const auto data = toy_sample(cfg.dataset, B, cfg.seed * 1000003ull + step);
        for (std::size_t b = 0; b < B; ++b) {
            t[b] = cfg.t_eps + (1.0 - cfg.t_eps) * rng.uniform();
            const auto m = sde.marginal(t[b]);
            for (std::size_t j = 0; j < 2; ++j) {
                const std::size_t i = 2 * b + j;
                x0[i] = float(data[i]);
                z[i] = float(rng.normal());
                xt[i] = float(m.mean_coef * data[i] + m.std * double(z[i]));
            }
        }
        model.forward(xt.data(), t, B, y.data());
        const double loss = denoising_loss(denoising_target::epsilon, tensor_view<const float>{y.data(), B, 2},
                                           tensor_view<const float>{x0.data(), B, 2},
                                           tensor_view<const float>{z.data(), B, 2}, {}, {}, {},
                                           tensor_view<float>{g.data(), B, 2});
        model.zero_grad();
        model.backward(g.data());
        clip_grad_norm(model.gradients(), 1.0);
        const double c = 0.5 * (1.0 + std::cos(std::numbers::pi * double(step) / double(cfg.steps)));
        opt.lr = cfg.lr_final + (cfg.lr - cfg.lr_final) * c;
        opt.step(model.parameters(), model.gradients());
        if (cfg.ema_decay > 0.0) avg.update(model.parameters());
        if (step >= cfg.steps - cfg.steps / 10 - 1) tail += loss, ++tail_n;
        if (on_step) on_step(step, loss);
    }
    if (cfg.ema_decay > 0.0) avg.copy_to(model.parameters());
    return tail / double(tail_n);
}

}  // namespace diffuse
