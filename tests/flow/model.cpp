// The flow-velocity parameterisation in the model wrapper: conversions between u = ε − x₀ and the other
// predictions at any (α, σ), the flow_time mapping (also at α = 0), and the change of variables that lets a
// flow network drive the σ-space samplers and a VP network drive the flow samplers.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/flow_match.hpp"
#include "diffuse/samplers/model.hpp"

using diffuse::prediction;

namespace {
diffuse::gaussian_mixture two_bumps() {
    return diffuse::gaussian_mixture({0.4, 0.6}, {1.0, -0.5, 0.3, -1.0, 0.8, -0.2}, {0.09, 0.25});
}
// The ground-truth value of prediction p for x₀, ε at (α, σ).
double truth(prediction p, double x0, double eps, double a, double s) {
    switch (p) {
        case prediction::epsilon: return eps;
        case prediction::sample: return x0;
        case prediction::v: return a * eps - s * x0;
        case prediction::score: return -eps / s;
        case prediction::flow_velocity: return eps - x0;
    }
    return 0;
}
}  // namespace

TEST_CASE("flow velocity converts to and from every prediction at any state", "[flow][model]") {
    const prediction all[] = {prediction::epsilon, prediction::sample, prediction::v, prediction::score, prediction::flow_velocity};
    rc::prop("want = a·x + b·have reproduces the truth", [&] {
        const double a = *rc::gen::inRange(1, 2000) / 1000.0, s = *rc::gen::inRange(1, 2000) / 1000.0;
        const double x0 = *rc::gen::inRange(-3000, 3000) / 1000.0, eps = *rc::gen::inRange(-3000, 3000) / 1000.0;
        const double x = a * x0 + s * eps;
        for (auto have : all)
            for (auto want : all) {
                if (have != prediction::flow_velocity && want != prediction::flow_velocity) continue;
                const auto c = diffuse::convert_coefficients(have, want, a, s);
                const double got = c.a * x + c.b * truth(have, x0, eps, a, s);
                RC_ASSERT(std::abs(got - truth(want, x0, eps, a, s)) < 1e-9 * (1 + std::abs(truth(want, x0, eps, a, s))) / std::min(a, s));
            }
    });
    // at α = 0 (pure noise) the velocity still gives x₀ and ε: x₀ = x − σu (σ = 1), ε = x
    const auto c = diffuse::convert_coefficients(prediction::flow_velocity, prediction::sample, 0.0, 1.0);
    CHECK(c.a == 1.0);
    CHECK(c.b == -1.0);
    const auto e = diffuse::convert_coefficients(prediction::flow_velocity, prediction::epsilon, 0.0, 1.0);
    CHECK(e.a == 1.0);
    CHECK(e.b == 0.0);
    // ε alone cannot give the velocity at α = 0
    CHECK_THROWS_AS(diffuse::convert_coefficients(prediction::epsilon, prediction::flow_velocity, 0.0, 1.0), diffuse::error);
    CHECK(diffuse::parse_prediction("flow_prediction") == prediction::flow_velocity);
}

TEST_CASE("flow_time maps a state to s = σ/(α+σ), t = s·T and the input x/(α+σ)", "[flow][model]") {
    const diffuse::flow_time ft{1000.0};
    const auto nt = ft(0.5, 1.5);  // s = 0.75
    CHECK(nt.t == Approx(750.0));
    CHECK(nt.alpha == Approx(0.25));
    CHECK(ft(0.0, 1.0).t == 1000.0);
    CHECK(ft.input_scale(0.5, 1.5) == Approx(0.5));

    // The exact mixture velocity: at α = 0 the model's x₀ is the data mean; at any state it equals the
    // denoiser read through σ-space.
    auto flow = diffuse::analytic_model(two_bumps(), prediction::flow_velocity, diffuse::flow_time{1000.0});
    auto ve = diffuse::analytic_model(two_bumps(), prediction::sample, diffuse::sigma_time{});
    const std::vector<double> x{0.3, -1.2, 0.7, 2.0, 0.1, -0.4};
    std::vector<double> out(6), ref(6);
    const std::vector<double> a0{0.0, 0.0}, s1{1.0, 1.0};
    flow.predict(diffuse::batched(x, 2), a0, s1, prediction::sample, diffuse::batched(out, 2));
    const auto mean = two_bumps().data_mean();
    for (std::size_t j = 0; j < 6; ++j) CHECK(out[j] == Approx(mean[j % 3]).margin(1e-14));
    const std::vector<double> a{1.0, 1.0}, s{0.4, 2.5};
    flow.predict(diffuse::batched(x, 2), a, s, prediction::sample, diffuse::batched(out, 2));
    ve.predict(diffuse::batched(x, 2), a, s, prediction::sample, diffuse::batched(ref, 2));
    for (std::size_t j = 0; j < 6; ++j) CHECK(out[j] == Approx(ref[j]).margin(1e-13));
    // t_net given: the network runs at that time, the input scale still comes from the state
    flow.net().calls = 0;
    const std::vector<double> t{400.0 / 1.4 * 1.0, 2500.0 / 3.5};  // s·T of the two states
    flow.predict(diffuse::batched(x, 2), a, s, prediction::sample, diffuse::batched(out, 2), t);
    for (std::size_t j = 0; j < 6; ++j) CHECK(out[j] == Approx(ref[j]).margin(1e-12));
    CHECK(flow.net().calls == 1);
    // neither α nor σ: no state
    const std::vector<double> zero{0.0, 0.0};
    CHECK_THROWS_AS(flow.predict(diffuse::batched(x, 2), zero, zero, prediction::sample, diffuse::batched(out, 2)), diffuse::error);
    auto broken = diffuse::analytic_model(two_bumps(), prediction::flow_velocity, diffuse::flow_time{0.0});
    CHECK_THROWS_WITH(broken.predict(diffuse::batched(x, 2), a, s, prediction::sample, diffuse::batched(out, 2)),
                      Catch::Contains("num_train_timesteps"));
}

TEST_CASE("a flow network under σ-space Euler equals flow Euler after the change of variables", "[flow][model]") {
    // x_ve = x_flow/(1 − s), σ = s/(1 − s): Euler in σ and Euler in s both take x to x̂₀ + (next level)·ε̂.
    auto m = diffuse::analytic_model(two_bumps(), prediction::flow_velocity, diffuse::flow_time{1000.0});
    const std::size_t n = 12;
    std::vector<double> s(n + 1), sig(n + 1);
    for (std::size_t i = 0; i <= n; ++i) {
        s[i] = 0.97 * (1.0 - double(i) / double(n)) * (1.0 - 0.3 * double(i) / double(n));
        sig[i] = s[i] / (1.0 - s[i]);
    }
    std::vector<double> xf{0.3, -1.2, 0.7, 2.0, 0.1, -0.4}, xv(6);
    for (std::size_t j = 0; j < 6; ++j) xv[j] = xf[j] / (1.0 - s[0]);
    std::vector<std::vector<double>> flow_path, ve_path;
    diffuse::sample_flow_euler(m, diffuse::batched(xf, 2), diffuse::time_grid(s), {}, diffuse::no_noise{},
                               [&](const diffuse::step_info<double>& i) { flow_path.emplace_back(i.x.data, i.x.data + 6); });
    diffuse::sample_euler(m, diffuse::batched(xv, 2), diffuse::time_grid(sig), {}, diffuse::no_noise{},
                          [&](const diffuse::step_info<double>& i) { ve_path.emplace_back(i.x.data, i.x.data + 6); });
    REQUIRE(flow_path.size() == n);
    REQUIRE(ve_path.size() == n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < 6; ++j) CHECK(flow_path[i][j] == Approx(ve_path[i][j] * (1.0 - s[i + 1])).margin(1e-12));
    for (std::size_t j = 0; j < 6; ++j) CHECK(xf[j] == Approx(xv[j]).margin(1e-12));
}

TEST_CASE("a VP ε-network drives flow Euler as it drives σ-space Euler", "[flow][model]") {
    const auto sched = diffuse::discrete_schedule::from_config(diffuse::discrete_schedule_config{});
    auto m = diffuse::analytic_model(two_bumps(), prediction::epsilon, diffuse::discrete_time(sched.alphas_cumprod));
    const std::size_t n = 8;
    std::vector<double> s(n + 1), sig(n + 1);
    for (std::size_t i = 0; i <= n; ++i) {
        s[i] = 0.9 * (1.0 - double(i) / double(n));
        sig[i] = s[i] / (1.0 - s[i]);
    }
    std::vector<double> xf{0.3, -1.2, 0.7}, xv(3);
    for (std::size_t j = 0; j < 3; ++j) xv[j] = xf[j] / (1.0 - s[0]);
    diffuse::sample_flow_euler(m, diffuse::batched(xf, 1), diffuse::time_grid(s));
    diffuse::sample_euler(m, diffuse::batched(xv, 1), diffuse::time_grid(sig), {}, diffuse::no_noise{});
    for (std::size_t j = 0; j < 3; ++j) CHECK(xf[j] == Approx(xv[j]).margin(1e-10));
    // from s = 1 (α = 0) an ε-network has no x₀: the error names the step and α
    std::vector<double> z{0.3, -1.2, 0.7};
    s[0] = 1.0;
    CHECK_THROWS_WITH(diffuse::sample_flow_euler(m, diffuse::batched(z, 1), diffuse::time_grid(s)),
                      Catch::Contains("step 0") && Catch::Contains("alpha"));
}
