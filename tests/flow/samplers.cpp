// Flow Euler and flow Heun (samplers/flow_match.hpp) as steppers: pull, push, copies and the one-call form
// agree bit for bit; convergence orders on Gaussian data, whose flow ODE has a closed-form solution; the noise
// draws each option makes; the network times; argument checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/flow_match.hpp"
#include "diffuse/schedules/flow.hpp"

using diffuse::prediction;

namespace {
diffuse::gaussian_mixture mixture() {
    return diffuse::gaussian_mixture({0.3, 0.7}, {1.0, -0.5, 0.3, 0.2, -1.0, 0.8, -0.2, 0.5}, {0.09, 0.25});
}
auto flow_model(diffuse::gaussian_mixture g = mixture()) {
    return diffuse::analytic_model(std::move(g), prediction::flow_velocity, diffuse::flow_time{1000.0});
}
std::vector<double> noise(std::size_t n, std::uint64_t seed) {
    std::vector<double> z(n);
    diffuse::fill_normal(diffuse::batched(z, 1), seed, 0, 0);
    return z;
}
diffuse::time_grid shifted_grid(std::size_t n, double shift = 3.0) {
    diffuse::flow_match_config c;
    c.shift = shift;
    return diffuse::time_grid(diffuse::flow_match_sigmas(c, n).sigmas);
}
// Counts the draws a sampler makes (standard normals from the counter generator).
struct counting_noise {
    std::size_t* draws;
    template <class V>
    void operator()(const V& out, std::uint64_t draw) const {
        ++*draws;
        diffuse::fill_normal(out, 7, draw, 0);
    }
};

// Pull, push and a copy taken after every step give the one-call result.
template <class Stepper, class Run>
void check_driving_modes(Stepper proto, Run one_call, std::vector<double> x0) {
    const std::size_t B = proto.batch();
    auto a = x0, b = x0, c = x0, d = x0;
    auto m = flow_model();
    one_call(m, a);
    {
        auto s = proto;
        while (!s.done()) s.step(m, diffuse::batched(b, B));
    }
    {
        auto s = proto;
        while (!s.done())
            for (auto* e = s.begin_step(diffuse::batched(c, B)); e; e = s.resume()) diffuse::evaluate(m, *e);
    }
    {
        auto s = proto;
        while (!s.done()) {
            s.step(m, diffuse::batched(d, B));
            auto copy = s;  // resumes identically
            s = copy;
        }
    }
    CHECK(a == b);
    CHECK(a == c);
    CHECK(a == d);
    CHECK(a != x0);
}
}  // namespace

TEST_CASE("flow steppers: pull, push, copies and the one-call form agree", "[flow][samplers]") {
    const auto g = shifted_grid(9);
    const auto z = noise(8, 1);
    const diffuse::batch_shape shape{2, 4};
    diffuse::flow_euler_options eo;
    check_driving_modes(diffuse::flow_euler_stepper<double>(shape, g, eo), [&](auto& m, auto& x) {
        diffuse::sample_flow_euler(m, diffuse::batched(x, 2), g, eo);
    }, z);
    eo.stochastic_sampling = true;
    check_driving_modes(diffuse::flow_euler_stepper<double, diffuse::counter_noise>(shape, g, eo, {3}), [&](auto& m, auto& x) {
        diffuse::sample_flow_euler(m, diffuse::batched(x, 2), g, eo, diffuse::counter_noise{3});
    }, z);
    diffuse::flow_heun_options ho;
    ho.s_churn = 2.0;
    check_driving_modes(diffuse::flow_heun_stepper<double>(shape, g, ho, {5}), [&](auto& m, auto& x) {
        diffuse::sample_flow_heun(m, diffuse::batched(x, 2), g, ho, diffuse::counter_noise{5});
    }, z);
}

TEST_CASE("flow Euler and Heun converge at orders 1 and 2 to the exact Gaussian flow", "[flow][samplers]") {
    // Gaussian data N(μ, v): x_s = (1 − s)μ + √((1 − s)²v + s²)·z solves dx/ds = E[ε − x₀ | x], so x_0 = μ + √v·z.
    const std::vector<double> mu{0.7, -1.2, 0.0, 2.0}, var{1.69, 0.25, 4.0, 0.81};
    auto m = flow_model(diffuse::gaussian_mixture::gaussian(mu, var));
    const auto z = noise(4, 2);
    auto error = [&](bool heun, std::size_t n) {
        std::vector<double> s(n + 1);
        for (std::size_t i = 0; i <= n; ++i) s[i] = 1.0 - double(i) / double(n);
        auto x = z;
        if (heun) diffuse::sample_flow_heun(m, diffuse::batched(x, 1), diffuse::time_grid(s), {}, diffuse::no_noise{});
        else diffuse::sample_flow_euler(m, diffuse::batched(x, 1), diffuse::time_grid(s));
        double e = 0;
        for (std::size_t j = 0; j < 4; ++j) e = std::max(e, std::abs(x[j] - (mu[j] + std::sqrt(var[j]) * z[j])));
        return e;
    };
    const double e1 = error(false, 40), e2 = error(false, 80), h1 = error(true, 40), h2 = error(true, 80);
    INFO("Euler " << e1 << " -> " << e2 << ", Heun " << h1 << " -> " << h2);
    CHECK(e1 / e2 > 1.7);
    CHECK(e1 / e2 < 2.3);
    CHECK(h1 / h2 > 3.4);
    CHECK(h1 / h2 < 4.6);
    CHECK(h1 < e1);
}

TEST_CASE("flow samplers draw the noise diffusers draws", "[flow][samplers]") {
    const std::size_t n = 7;
    const auto g = shifted_grid(n);
    auto m = flow_model();
    const auto z = noise(8, 3);
    std::size_t draws = 0;
    auto x = z;
    diffuse::flow_euler_options eo;
    eo.stochastic_sampling = true;
    diffuse::sample_flow_euler(m, diffuse::batched(x, 2), g, eo, counting_noise{&draws});
    CHECK(draws == n - 1);  // none into s = 0
    // the last stochastic step lands on x̂₀ = x − s·u: compare with the observer's denoised of that step
    std::vector<double> last_den;
    x = z;
    diffuse::sample_flow_euler(m, diffuse::batched(x, 2), g, eo, counting_noise{&draws},
                               [&](const diffuse::step_info<double>& i) { last_den.assign(i.denoised.data, i.denoised.data + 8); });
    CHECK(x == last_den);

    diffuse::flow_heun_options ho;
    ho.s_churn = 1.0;
    draws = 0;
    x = z;
    diffuse::sample_flow_heun(m, diffuse::batched(x, 2), g, ho, counting_noise{&draws});
    CHECK(draws == 2 * (n - 1) + 1);  // churn before the predictor, a discarded draw in the corrector, one at the end
    const auto with_discard = x;
    ho.corrector_draw = false;
    draws = 0;
    x = z;
    diffuse::sample_flow_heun(m, diffuse::batched(x, 2), g, ho, counting_noise{&draws});
    CHECK(draws == n);
    CHECK(x != with_discard);  // the numbering changed which normals the churn used
    // churn limited to [s_tmin, s_tmax] outside the grid: deterministic, no draw (no_noise would throw)
    ho.s_tmin = 2.0;
    ho.s_tmax = 3.0;
    x = z;
    diffuse::sample_flow_heun(m, diffuse::batched(x, 2), g, ho, diffuse::no_noise{});
    auto y = z;
    diffuse::sample_flow_heun(m, diffuse::batched(y, 2), g, {}, diffuse::no_noise{});
    CHECK(x == y);
    // γ = min(s_churn/(2N − 1), √2 − 1): a huge s_churn is capped, and changes the sample
    ho = {};
    ho.s_churn = 1e6;
    x = z;
    diffuse::sample_flow_heun(m, diffuse::batched(x, 2), g, ho, diffuse::counter_noise{1});
    for (double v : x) CHECK(std::isfinite(v));
    CHECK(x != y);
}

TEST_CASE("flow samplers feed the network the reference's timesteps", "[flow][samplers]") {
    diffuse::flow_match_config c;
    c.shift = 3.0;
    const std::size_t n = 5;
    const auto sch = diffuse::flow_match_sigmas(c, n);
    std::vector<double> seen;
    auto net = [&](diffuse::tensor_view<const double> x, const diffuse::model_cond& cond, diffuse::tensor_view<double> out) {
        seen.push_back(cond.t[0]);
        for (std::size_t j = 0; j < x.size(); ++j) out.data[j] = -x.data[j];
    };
    diffuse::model<decltype(net), diffuse::flow_time> m(net, prediction::flow_velocity, {1000.0});
    auto x = noise(3, 4);
    diffuse::flow_euler_options eo;
    eo.timesteps = sch.timesteps;
    diffuse::sample_flow_euler(m, diffuse::batched(x, 1), diffuse::time_grid(sch.sigmas), eo);
    CHECK(seen == sch.timesteps);
    seen.clear();
    diffuse::flow_heun_options ho;
    ho.timesteps = sch.timesteps;
    diffuse::sample_flow_heun(m, diffuse::batched(x, 1), diffuse::time_grid(sch.sigmas), ho, diffuse::no_noise{});
    const std::vector<double> heun{sch.timesteps[0], sch.timesteps[1], sch.timesteps[1], sch.timesteps[2], sch.timesteps[2],
                                   sch.timesteps[3], sch.timesteps[3], sch.timesteps[4], sch.timesteps[4]};
    CHECK(seen == heun);
    seen.clear();
    diffuse::sample_flow_euler(m, diffuse::batched(x, 1), diffuse::time_grid(sch.sigmas));  // derived: s·T
    REQUIRE(seen.size() == n);
    for (std::size_t i = 0; i < n; ++i) CHECK(seen[i] == Approx(sch.sigmas[i] * 1000.0));
}

TEST_CASE("flow sampler arguments are checked", "[flow][samplers]") {
    auto m = flow_model();
    auto x = noise(8, 5);
    auto X = diffuse::batched(x, 2);
    using G = diffuse::time_grid;
    CHECK_THROWS_WITH(diffuse::sample_flow_euler(m, X, G({1.0, 1.5, 0.0})), Catch::Contains("s[1]") && Catch::Contains("[0, 1]"));
    CHECK_THROWS_WITH(diffuse::sample_flow_euler(m, X, G({1.0, 0.2, 0.5, 0.0})), Catch::Contains("s[2]") && Catch::Contains("monotone"));
    CHECK_THROWS_WITH(diffuse::sample_flow_heun(m, X, G({0.0, 0.5, 1.0}), {}, diffuse::no_noise{}), Catch::Contains("noise to data"));
    diffuse::flow_euler_options eo;
    eo.stochastic_sampling = true;
    CHECK_THROWS_WITH(diffuse::sample_flow_euler(m, X, G({1.0, 0.0}), eo), Catch::Contains("no_noise"));
    eo = {};
    eo.timesteps = {1000.0, 500.0};
    CHECK_THROWS_WITH(diffuse::sample_flow_euler(m, X, G({1.0, 0.0}), eo), Catch::Contains("timesteps.size()"));
    diffuse::flow_heun_options ho;
    ho.s_churn = -1;
    CHECK_THROWS_WITH(diffuse::sample_flow_heun(m, X, G({1.0, 0.0}), ho), Catch::Contains("s_churn"));
    ho = {};
    ho.s_noise = NAN;
    CHECK_THROWS_WITH(diffuse::sample_flow_heun(m, X, G({1.0, 0.0}), ho), Catch::Contains("s_noise"));
    CHECK_THROWS_WITH(diffuse::sample_flow_euler(m, X, G({1.0, 0.5, 0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0}, 3)), Catch::Contains("3 rows"));
    diffuse::flow_euler_stepper<double> s({3, 4}, G({1.0, 0.0}));
    CHECK_THROWS_WITH(s.step(m, X), Catch::Contains("made for 3 x 4"));
    x[3] = NAN;
    CHECK_THROWS_WITH(diffuse::sample_flow_euler(m, X, G({1.0, 0.0})), Catch::Contains("initial x"));
}

TEST_CASE("per-sample flow grids: each row walks its own levels", "[flow][samplers]") {
    auto m = flow_model();
    const auto z = noise(8, 6);
    const std::vector<double> r0{1.0, 0.6, 0.2, 0.0}, r1{0.8, 0.5, 0.1, 0.0};
    auto both = z;
    diffuse::sample_flow_heun(m, diffuse::batched(both, 2), diffuse::time_grid::per_sample({r0, r1}), {}, diffuse::no_noise{});
    std::vector<double> a(z.begin(), z.begin() + 4), b(z.begin() + 4, z.end());
    diffuse::sample_flow_heun(m, diffuse::batched(a, 1), diffuse::time_grid(r0), {}, diffuse::no_noise{});
    diffuse::sample_flow_heun(m, diffuse::batched(b, 1), diffuse::time_grid(r1), {}, diffuse::no_noise{});
    for (std::size_t j = 0; j < 4; ++j) {
        CHECK(both[j] == Approx(a[j]).margin(1e-15));
        CHECK(both[4 + j] == Approx(b[j]).margin(1e-15));
    }
}
