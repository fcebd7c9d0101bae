// Zero terminal SNR (Lin et al. 2024) through the model and the samplers, diffusers' Euler churn order, the
// trailing spacing's extra timestep and k-diffusion's float32 timesteps of the discrete σ grid.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/sigmas.hpp"

using Catch::Matchers::Contains;
using diffuse::prediction;

namespace {
diffuse::discrete_schedule zero_snr_schedule(const char* kind) {
    return diffuse::discrete_schedule::from_config(kind, 1000, 0.00085, 0.012, true);
}
diffuse::gaussian_mixture mixture() { return diffuse::gaussian_mixture({0.3, 0.7}, {0.5, -1.0, -0.8, 1.2}, {0.04, 0.1}); }
}  // namespace

TEST_CASE("zero terminal SNR: the σ table and the network time at alpha = 0", "[samplers][zero_snr]") {
    for (const char* kind : {"linear", "scaled_linear", "squaredcos_cap_v2"}) {
        INFO(kind);
        const auto s = zero_snr_schedule(kind);
        REQUIRE(s.alphas_cumprod.back() == 0.0);
        const diffuse::discrete_sigmas ds(s.alphas_cumprod);
        CHECK(ds.zero_terminal_snr());
        CHECK(ds.sigma_max() == std::sqrt((1.0 - 0x1p-24) / 0x1p-24));
        CHECK(ds.sigma_to_t_log(ds.sigma_max()) == 999.0);
        CHECK(ds.sigma_to_t_log(1e6) == 999.0);
        CHECK(ds.sigma_to_t_linear(ds.sigma_max()) == 999.0);
        for (auto mode : {diffuse::discrete_time::interpolation::log_sigma, diffuse::discrete_time::interpolation::linear_sigma}) {
            const diffuse::discrete_time time(s.alphas_cumprod, mode);
            const auto nt = time(0.0, 1.0);
            CHECK(nt.t == 999.0);
            CHECK(nt.alpha == 0.0);
            CHECK(time.alpha_at(999.0) == 0.0);
            CHECK(time.alpha_at(998.0) == Approx(std::sqrt(s.alphas_cumprod[998])).epsilon(1e-12));
        }
    }
    // without zero terminal SNR alpha = 0 has no network time
    const auto plain = diffuse::discrete_schedule::from_config("scaled_linear", 1000, 0.00085, 0.012);
    auto m = diffuse::analytic_model(mixture(), prediction::v, diffuse::discrete_time(plain.alphas_cumprod));
    std::vector<double> x{0.3, -0.2}, out(2), a{0.0}, sg{1.0};
    CHECK_THROWS_WITH(m.predict(x, a, sg, prediction::sample, out), Contains("alpha = 0") && Contains("zero-terminal-SNR"));
}

TEST_CASE("zero terminal SNR: predictions at alpha = 0", "[samplers][zero_snr]") {
    const auto s = zero_snr_schedule("scaled_linear");
    std::mt19937_64 g(5);
    std::normal_distribution<double> n;
    std::vector<double> x(4), out(4), out2(4), a{0.0, 0.0}, sg{1.0, 1.0}, t{999.0, 999.0};
    for (auto& v : x) v = n(g);
    const auto mix = mixture();
    // the exact posterior at α = 0 is the data mean whatever x: v = −x₀·σ, ε = x
    const double mean0 = 0.3 * 0.5 + 0.7 * -0.8, mean1 = 0.3 * -1.0 + 0.7 * 1.2;
    for (auto pred : {prediction::v, prediction::sample}) {
        auto m = diffuse::analytic_model(mix, pred, diffuse::discrete_time(s.alphas_cumprod));
        m.predict(diffuse::batched(x, 2), a, sg, prediction::sample, diffuse::batched(out, 2), t);  // exact timesteps (DDIM, DDPM)
        CHECK(out[0] == Approx(mean0).epsilon(1e-12));
        CHECK(out[1] == Approx(mean1).epsilon(1e-12));
        CHECK(out[2] == Approx(mean0).epsilon(1e-12));
        m.predict(diffuse::batched(x, 2), a, sg, prediction::epsilon, diffuse::batched(out2, 2));  // time from σ/α
        for (std::size_t j = 0; j < 4; ++j) CHECK(out2[j] == Approx(x[j]).epsilon(1e-12));
    }
    // an ε-network does not determine x₀ at α = 0 (diffusers returns NaN): a named error
    auto eps = diffuse::analytic_model(mix, prediction::epsilon, diffuse::discrete_time(s.alphas_cumprod));
    CHECK_THROWS_WITH(eps.predict(diffuse::batched(x, 2), a, sg, prediction::sample, diffuse::batched(out, 2), t), Contains("to recover x0 from eps"));
    // α = 0 with a time whose α is not 0 is refused
    std::vector<double> t998{998.0, 998.0};
    CHECK_THROWS_WITH(eps.predict(diffuse::batched(x, 2), a, sg, prediction::epsilon, diffuse::batched(out, 2), t998), Contains("zero-terminal-SNR"));
}

TEST_CASE("zero terminal SNR: DDIM and DDPM from t = 999", "[samplers][zero_snr]") {
    const auto s = zero_snr_schedule("squaredcos_cap_v2");
    const auto ts = diffuse::discrete_timesteps(1000, 10, diffuse::timestep_spacing::trailing);
    REQUIRE(ts.front() == 999);
    const auto grid = diffuse::discrete_grid(ts);
    std::vector<double> x0(6, 0.0);
    std::mt19937_64 g(9);
    std::normal_distribution<double> n;
    for (auto& v : x0) v = n(g);
    for (auto pred : {prediction::v, prediction::sample}) {
        auto m = diffuse::analytic_model(mixture(), pred, diffuse::discrete_time(s.alphas_cumprod));
        auto x = x0;
        diffuse::ddim_options o;
        o.clip_sample = false;
        diffuse::sample_ddim(m, diffuse::batched(x, 3), s.alphas_cumprod, grid, o, diffuse::no_noise{});
        for (double v : x) CHECK(std::isfinite(v));
        // the first step's x̂₀ is the data mean: DDIM's x after step 0 is √ᾱ_p·mean + √(1 − ᾱ_p)·x_T
        auto y = x0;
        diffuse::ddim_stepper<double, diffuse::no_noise> st({3, 2}, s.alphas_cumprod, grid, o);
        st.step(m, diffuse::batched(y, 3));
        const double ap = s.alphas_cumprod[std::size_t(ts[1])];
        CHECK(y[0] == Approx(std::sqrt(ap) * (0.3 * 0.5 + 0.7 * -0.8) + std::sqrt(1 - ap) * x0[0]).epsilon(1e-12));
        auto z = x0;
        diffuse::ddpm_options po;
        po.clip_sample = false;
        diffuse::sample_ddpm(m, diffuse::batched(z, 3), s.alphas_cumprod, grid, po, diffuse::counter_noise{3});
        for (double v : z) CHECK(std::isfinite(v));
    }
    auto eps = diffuse::analytic_model(mixture(), prediction::epsilon, diffuse::discrete_time(s.alphas_cumprod));
    auto x = x0;
    CHECK_THROWS_WITH(diffuse::sample_ddim(eps, diffuse::batched(x, 3), s.alphas_cumprod, grid, {}, diffuse::no_noise{}),
                      Contains("step 0") && Contains("to recover x0 from eps"));
}

TEST_CASE("Euler: diffusers' churn order", "[samplers][zero_snr][euler]") {
    std::mt19937_64 g(11);
    std::normal_distribution<double> n;
    std::uniform_real_distribution<double> u(0.05, 20.0);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<double> sig(7);
        for (auto& v : sig) v = u(g);
        std::sort(sig.rbegin(), sig.rend());
        sig.back() = trial % 2 ? 0.0 : 0.01;
        const diffuse::time_grid grid(sig);
        std::vector<double> x0(4);
        for (auto& v : x0) v = sig[0] * n(g);
        for (auto pred : {prediction::epsilon, prediction::v, prediction::sample}) {
            INFO("trial " << trial << " prediction " << int(pred));
            auto m = diffuse::analytic_model(mixture(), pred, diffuse::sigma_time{});
            diffuse::churn_options k, d;
            d.order = diffuse::churn_order::diffusers;
            d.diffusers_prediction = pred;
            // without churn both orders are the same Euler step
            auto xa = x0, xb = x0;
            diffuse::sample_euler(m, diffuse::batched(xa, 2), grid, k, diffuse::counter_noise{1});
            diffuse::sample_euler(m, diffuse::batched(xb, 2), grid, d, diffuse::counter_noise{1});
            for (std::size_t j = 0; j < 4; ++j) CHECK(xb[j] == Approx(xa[j]).epsilon(1e-12).margin(1e-12));
            // one churned step against its closed form (diffusers' EulerDiscreteScheduler.step)
            k.s_churn = d.s_churn = 3.0;
            std::vector<double> z(4);
            for (auto& v : z) v = n(g);
            diffuse::euler_stepper<double, diffuse::recorded_noise> st({2, 2}, grid, d, diffuse::recorded_noise(z, 4));
            auto x = x0;
            st.step(m, diffuse::batched(x, 2));
            const double s0 = sig[0], s1 = sig[1], gamma = std::min(3.0 / 6.0, std::sqrt(2.0) - 1), hat = s0 * (1 + gamma);
            std::vector<double> den(4), a1{1.0, 1.0}, sg{s0, s0};
            m.predict(diffuse::batched(x0, 2), a1, sg, prediction::sample, diffuse::batched(den, 2));
            for (std::size_t j = 0; j < 4; ++j) {
                const double xh = x0[j] + std::sqrt(hat * hat - s0 * s0) * z[j];
                const double eps_hat = (x0[j] - den[j]) / s0, v_hat = (x0[j] / (s0 * s0 + 1) - den[j]) * std::sqrt(s0 * s0 + 1) / s0;
                const double x0_hat = pred == prediction::epsilon ? xh - hat * eps_hat
                                      : pred == prediction::v    ? v_hat * (-s0 / std::sqrt(s0 * s0 + 1)) + xh / (s0 * s0 + 1)
                                                                 : den[j];
                CHECK(x[j] == Approx(xh + (xh - x0_hat) / hat * (s1 - hat)).epsilon(1e-10));
            }
            // the two orders differ once the churn is on
            auto xk = x0, xd = x0;
            diffuse::sample_euler(m, diffuse::batched(xk, 2), grid, k, diffuse::counter_noise{4});
            diffuse::sample_euler(m, diffuse::batched(xd, 2), grid, d, diffuse::counter_noise{4});
            double diff = 0;
            for (std::size_t j = 0; j < 4; ++j) diff = std::max(diff, std::abs(xk[j] - xd[j]));
            CHECK(diff > 1e-6);
        }
    }
    diffuse::churn_options d;
    d.order = diffuse::churn_order::diffusers;
    const diffuse::time_grid grid(std::vector<double>{2.0, 1.0, 0.0});
    CHECK_THROWS_WITH((diffuse::heun_stepper<double, diffuse::counter_noise>({1, 1}, grid, d)), Contains("churn_order"));
    d.diffusers_prediction = prediction::score;
    CHECK_THROWS_WITH((diffuse::euler_stepper<double, diffuse::counter_noise>({1, 1}, grid, d)), Contains("score"));
}

TEST_CASE("trailing spacing: diffusers' extra timestep", "[samplers][zero_snr][schedules]") {
    for (std::size_t N = 1; N <= 50; ++N) CHECK_FALSE(diffuse::detail::trailing_has_extra_value(1000, N));
    for (auto [T, N] : {std::pair<std::size_t, std::size_t>{1200, 14}, {850, 22}, {600, 7}}) {
        INFO("T = " << T << ", N = " << N);
        CHECK(diffuse::detail::trailing_has_extra_value(T, N));
        const auto s = diffuse::discrete_schedule::from_config("scaled_linear", T, 0.00085, 0.012);
        diffuse::euler_options o;
        o.spacing = diffuse::timestep_spacing::trailing;
        const auto plain = diffuse::euler_discrete_sigmas(s, N, o);
        o.trailing_extra_timestep = true;
        const auto extra = diffuse::euler_discrete_sigmas(s, N, o);
        REQUIRE(plain.sigmas.size() == N + 1);
        REQUIRE(extra.sigmas.size() == N + 2);
        CHECK(extra.timesteps.back() == -1.0);
        for (std::size_t i = 0; i < N; ++i) CHECK(extra.sigmas[i] == plain.sigmas[i]);
        const float a0 = static_cast<float>(s.alphas_cumprod[0]);
        CHECK(extra.sigmas[N] == static_cast<double>(std::sqrt((1.0f - a0) / a0)));  // σ_train[0]
        CHECK(extra.sigmas[N + 1] == 0.0);
        o.sigma_spacing = diffuse::sigma_spacing_kind::karras;  // Karras σ: N values again, σ_min = σ_train[0]
        const auto k = diffuse::euler_discrete_sigmas(s, N, o);
        CHECK(k.sigmas.size() == N + 1);
        CHECK(k.sigmas[N - 1] == Approx(extra.sigmas[N]).epsilon(1e-6));
    }
}

TEST_CASE("discrete σ grid: k-diffusion's float32 timesteps", "[samplers][zero_snr][schedules]") {
    const auto s = diffuse::discrete_schedule::from_config("linear", 1000);
    const diffuse::discrete_sigmas ds(s.alphas_cumprod);
    for (std::size_t n : {3u, 7u, 24u, 50u}) {
        const auto grid = diffuse::discrete_sigmas_list(ds, n);
        const auto t = diffuse::detail::torch_linspace_f32(999.0, 0.0, n);
        REQUIRE(grid.size() == n + 1);
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(static_cast<double>(static_cast<float>(t[i])) == static_cast<double>(t[i]));
            CHECK(grid[i] == ds.t_to_sigma_log(static_cast<double>(t[i])));
        }
        CHECK(grid.front() == Approx(ds.sigma_max()).epsilon(1e-14));
        CHECK(grid[n - 1] == Approx(ds.sigma_min()).epsilon(1e-14));
        CHECK(grid[n] == 0.0);
    }
}
