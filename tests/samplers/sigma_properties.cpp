// Properties of the σ-space samplers that need no reference: per-sample grids, tensor types, observers,
// errors, the Brownian tree's law and coherence, and first/second-order convergence on the Gaussian ODE.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <span>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/brownian.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/lms.hpp"
#include "diffuse/samplers/unipc.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "gaussian_support.hpp"

namespace {

const analytic_gauss::gaussian gauss{{0.7, -1.2, 0.0, 2.0}, {1.3, 0.5, 2.0, 0.9}};

// Exact solution of the probability-flow ODE for the Gaussian: per element, x(σ) − μ scales with
// √(s² + σ²) (the Gaussian's marginal standard deviation), so x(σ₁) = μ + (x(σ₀) − μ)·√((s²+σ₁²)/(s²+σ₀²)).
std::vector<double> exact_ode(std::vector<double> x, std::size_t D, double s0, double s1) {
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double m = gauss.mu[i % D], s2 = gauss.sd[i % D] * gauss.sd[i % D];
        x[i] = m + (x[i] - m) * std::sqrt((s2 + s1 * s1) / (s2 + s0 * s0));
    }
    return x;
}

template <class F>
double ode_error(F sampler, std::size_t n) {
    const std::size_t B = 2, D = 4;
    const double smin = 0.1, smax = 10.0;
    auto sig = diffuse::karras_sigmas(n, smin, smax);
    sig.pop_back();  // end at σ_min: the ODE solution there is smooth (no final jump to σ = 0)
    std::vector<double> x0(B * D);
    for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = smax * std::sin(1.0 + double(i));
    auto x = x0;
    auto m = analytic_gauss::ve_model(gauss);
    sampler(m, diffuse::batched(x, B), diffuse::time_grid(sig));
    return analytic_gauss::max_abs_diff(x, exact_ode(x0, D, smax, smin));
}

template <class F>
double order_of(F sampler) {
    const double e1 = ode_error(sampler, 16), e2 = ode_error(sampler, 32);
    return std::log2(e1 / e2);
}

}  // namespace

TEST_CASE("sigma samplers: convergence order on the Gaussian probability-flow ODE") {
    using diffuse::time_grid;
    auto euler = [](auto& m, auto x, const time_grid& g) { diffuse::sample_euler(m, x, g); };
    auto heun = [](auto& m, auto x, const time_grid& g) { diffuse::sample_heun(m, x, g); };
    auto dpm2 = [](auto& m, auto x, const time_grid& g) { diffuse::sample_dpm_2(m, x, g); };
    auto lms = [](auto& m, auto x, const time_grid& g) { diffuse::sample_lms(m, x, g); };
    auto dpmpp_2m = [](auto& m, auto x, const time_grid& g) {
        diffuse::sample_dpmpp_2m(m, x, g, diffuse::dpmpp_2m_options{diffuse::dpm_solver_type::midpoint, false, false});
    };
    auto ode_2m_sde = [](auto& m, auto x, const time_grid& g) {
        diffuse::dpmpp_2m_sde_options o;
        o.eta = 0;
        o.lower_order_final = false;
        diffuse::sample_dpmpp_2m_sde(m, x, g, o);
    };
    auto ode_3m_sde = [](auto& m, auto x, const time_grid& g) {
        diffuse::sample_dpmpp_3m_sde(m, x, g, diffuse::dpmpp_3m_sde_options{0.0, 1.0});
    };
    auto ode_2s = [](auto& m, auto x, const time_grid& g) {
        diffuse::sample_dpmpp_2s_ancestral(m, x, g, diffuse::dpmpp_sde_options{0.0, 1.0, 0.5});
    };
    auto unipc3 = [](auto& m, auto x, const time_grid& g) {
        diffuse::unipc_options o;
        o.solver_order = 3;
        o.lower_order_final = false;
        diffuse::sample_unipc(m, x, g, o);
    };
    const double p_unipc = order_of(unipc3);
    INFO("unipc-3 " << p_unipc);
    CHECK(p_unipc >= 2.1);
    const double p_euler = order_of(euler), p_heun = order_of(heun), p_dpm2 = order_of(dpm2), p_lms = order_of(lms),
                 p_2m = order_of(dpmpp_2m), p_2msde = order_of(ode_2m_sde), p_3m = order_of(ode_3m_sde), p_2s = order_of(ode_2s);
    INFO("orders: euler " << p_euler << " heun " << p_heun << " dpm2 " << p_dpm2 << " lms " << p_lms << " 2m " << p_2m
                          << " 2m-sde(eta 0) " << p_2msde << " 3m-sde(eta 0) " << p_3m << " 2s(eta 0) " << p_2s);
    CHECK(p_euler == Approx(1.0).margin(0.2));
    CHECK(p_heun == Approx(2.0).margin(0.3));
    CHECK(p_dpm2 == Approx(2.0).margin(0.3));
    CHECK(p_2m == Approx(2.0).margin(0.3));
    CHECK(p_2msde == Approx(2.0).margin(0.3));
    CHECK(p_2s == Approx(2.0).margin(0.3));
    CHECK(p_3m >= 2.1);  // 3rd-order steps after a 1st- and a 2nd-order start: the start limits the global order
    CHECK(p_lms >= 2.5);
}

TEST_CASE("sigma samplers: a per-sample grid equals running each sample alone with its own grid") {
    const std::size_t B = 3, D = 4;
    std::vector<std::vector<double>> rows = {diffuse::karras_sigmas(6, 0.05, 12.0), diffuse::karras_sigmas(6, 0.02, 3.0),
                                             diffuse::exponential_sigmas(6, 0.1, 7.0)};
    const auto grid = diffuse::time_grid::per_sample(rows);
    std::vector<double> x0(B * D);
    for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = 3.0 * std::cos(0.7 * double(i));
    auto check = [&](auto run) {
        auto x = x0;
        auto m = analytic_gauss::ve_model(gauss);
        run(m, diffuse::batched(x, B), grid, diffuse::counter_noise{7, 0});
        for (std::size_t b = 0; b < B; ++b) {
            std::vector<double> xb(x0.begin() + std::ptrdiff_t(b * D), x0.begin() + std::ptrdiff_t((b + 1) * D));
            run(m, diffuse::batched(xb, 1), diffuse::time_grid(rows[b]), diffuse::counter_noise{7, b});
            for (std::size_t j = 0; j < D; ++j) CHECK(x[b * D + j] == xb[j]);
        }
    };
    using G = diffuse::time_grid;
    using N = diffuse::counter_noise;
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_euler(m, x, g, diffuse::churn_options{1.0}, n); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_heun(m, x, g, diffuse::churn_options{1.0}, n); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_dpm_2(m, x, g, diffuse::churn_options{1.0}, n); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_euler_ancestral(m, x, g, {}, n); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_dpm_2_ancestral(m, x, g, {}, n); });
    check([](auto& m, auto x, const G& g, N) { diffuse::sample_lms(m, x, g); });
    check([](auto& m, auto x, const G& g, N) { diffuse::sample_dpmpp_2m(m, x, g); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_dpmpp_2s_ancestral(m, x, g, {}, n); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_dpmpp_sde(m, x, g, {}, n); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_dpmpp_2m_sde(m, x, g, {}, n); });
    check([](auto& m, auto x, const G& g, N n) { diffuse::sample_dpmpp_3m_sde(m, x, g, {}, n); });
}

TEST_CASE("sigma samplers: a per-sample grid where only some rows end at 0 (second-stage samplers)") {
    // Row 0 ends at σ = 0 (Euler into 0 on its last step), row 1 at 0.05 (Heun/DPM2 stage on its last step).
    auto r0 = diffuse::karras_sigmas(4, 0.05, 10.0);
    auto r1 = r0;
    r1.back() = 0.05 * 0.5;
    const auto grid = diffuse::time_grid::per_sample({r0, r1});
    std::vector<double> x0 = {5, -3, 2, 8, -1, 4, 6, -7};
    auto run_both = [&](auto run) {
        auto x = x0;
        auto m = analytic_gauss::ve_model(gauss);
        run(m, diffuse::batched(x, 2), grid);
        for (std::size_t b = 0; b < 2; ++b) {
            std::vector<double> xb(x0.begin() + std::ptrdiff_t(b * 4), x0.begin() + std::ptrdiff_t(b * 4 + 4));
            run(m, diffuse::batched(xb, 1), diffuse::time_grid(b == 0 ? r0 : r1));
            for (std::size_t j = 0; j < 4; ++j) CHECK(x[b * 4 + j] == Approx(xb[j]).epsilon(1e-15).margin(1e-15));
        }
    };
    using G = diffuse::time_grid;
    run_both([](auto& m, auto x, const G& g) { diffuse::sample_heun(m, x, g); });
    run_both([](auto& m, auto x, const G& g) { diffuse::sample_dpm_2(m, x, g); });
    run_both([](auto& m, auto x, const G& g) { diffuse::sample_dpmpp_2s_ancestral(m, x, g, {0.0, 1.0, 0.5}); });
    run_both([](auto& m, auto x, const G& g) { diffuse::sample_dpmpp_sde(m, x, g, {0.0, 1.0, 0.5}); });
}

TEST_CASE("sigma samplers: float and double, std::vector and std::array, agree") {
    const auto sig = diffuse::karras_sigmas(8, 0.03, 10.0);
    const diffuse::time_grid grid(sig);
    std::vector<double> xd = {4, -2, 1, 9, -3, 0.5, 2, -6};
    std::array<float, 8> xf{};
    for (std::size_t i = 0; i < 8; ++i) xf[i] = float(xd[i]);
    std::vector<double> rec(8 * 8);
    for (std::size_t i = 0; i < rec.size(); ++i) rec[i] = std::sin(3.0 * double(i));
    const diffuse::recorded_noise noise(rec, 8);
    auto m = analytic_gauss::ve_model(gauss);
    diffuse::sample_dpmpp_2m_sde(m, diffuse::batched(xd, 2), grid, {}, noise);
    diffuse::sample_dpmpp_2m_sde(m, diffuse::batched(xf, 2), grid, {}, noise);
    for (std::size_t i = 0; i < 8; ++i) CHECK(double(xf[i]) == Approx(xd[i]).margin(1e-5));
    // a std::span view of the same memory, as a tensor of 2 samples
    std::vector<double> xs = {4, -2, 1, 9, -3, 0.5, 2, -6}, xv = xs;
    diffuse::sample_heun(m, diffuse::batched(std::span<double>(xs), 2), grid);
    diffuse::sample_heun(m, diffuse::batched(xv, 2), grid);
    CHECK(xs == xv);
}

TEST_CASE("sigma samplers: the observer sees every step and can stop early") {
    const diffuse::time_grid grid(diffuse::karras_sigmas(10, 0.03, 10.0));
    std::vector<double> x = {4, -2, 1, 9};
    int calls = 0;
    auto m = analytic_gauss::ve_model(gauss, &calls);
    std::vector<double> seen;
    diffuse::sample_heun(m, x, grid, {}, diffuse::counter_noise{}, [&](const diffuse::step_info<double>& s) {
        seen.push_back(s.time[0]);
        CHECK(s.steps == 10);
        CHECK(s.denoised.size() == 4);
        return s.step < 3;  // stop after step 3
    });
    REQUIRE(seen.size() == 4);
    CHECK(seen[0] == Approx(10.0));
    CHECK(calls == 8);  // two evaluations per Heun step
}

TEST_CASE("sigma samplers: invalid arguments and a non-finite model throw naming the problem") {
    std::vector<double> x = {1, 2, 3, 4};
    auto m = analytic_gauss::ve_model(gauss);
    CHECK_THROWS_WITH(diffuse::sample_euler(m, x, diffuse::time_grid({5.0, -1.0, 0.0})), Catch::Contains("sigma[1] = -1"));
    CHECK_THROWS_WITH(diffuse::sample_euler(m, x, diffuse::time_grid({5.0, 1.0}), diffuse::churn_options{-1.0}),
                      Catch::Contains("s_churn"));
    CHECK_THROWS_WITH(diffuse::sample_euler_ancestral(m, x, diffuse::time_grid({5.0, 1.0}), {-0.5, 1.0}),
                      Catch::Contains("eta"));
    CHECK_THROWS_WITH(diffuse::sample_lms(m, x, diffuse::time_grid({5.0, 1.0}), {7}), Catch::Contains("order"));
    CHECK_THROWS_WITH(diffuse::sample_euler(m, diffuse::batched(x, 2), diffuse::time_grid({5, 1, 0, 4, 1, 0, 3, 1, 0}, 3)),
                      Catch::Contains("rows"));
    auto bad = diffuse::model(
        [](diffuse::tensor_view<const double> in, const diffuse::model_cond& c, diffuse::tensor_view<double> out) {
            for (std::size_t i = 0; i < in.size(); ++i) out[i] = c.t[0] < 2.0 ? std::nan("") : 0.0;
        },
        diffuse::prediction::sample, diffuse::sigma_time{});
    CHECK_THROWS_WITH(diffuse::sample_dpmpp_2m(bad, x, diffuse::time_grid(diffuse::karras_sigmas(5, 0.1, 10.0))),
                      Catch::Contains("step 2") && Catch::Contains("NaN"));
}

TEST_CASE("sigma samplers: Brownian tree: law of increments, covariance, determinism") {
    const std::size_t S = 4000, D = 2;
    diffuse::brownian_tree_noise tree(11, 0.02, 15.0);
    std::vector<double> w1(D), w2(D), w3(D);
    double m = 0, v = 0, cov12 = 0, inc_corr = 0;
    const double a = 0.3, b = 2.7, c = 9.1;
    for (std::size_t s = 0; s < S; ++s) {
        tree.path(a, s, w1);
        tree.path(b, s, w2);
        tree.path(c, s, w3);
        for (std::size_t j = 0; j < D; ++j) {
            const double z = (w2[j] - w1[j]) / std::sqrt(b - a);
            m += z;
            v += z * z;
            cov12 += w1[j] * w2[j];                                               // E = min(a, b) − σ_min = a − 0.02
            inc_corr += (w2[j] - w1[j]) * (w3[j] - w2[j]) / std::sqrt((b - a) * (c - b));  // disjoint: 0
        }
    }
    const double n = double(S * D);
    CHECK(std::abs(m / n) < 4 / std::sqrt(n));
    CHECK(std::abs(v / n - 1) < 4 * std::sqrt(2.0 / n));
    CHECK(std::abs(cov12 / n - (a - 0.02)) < 4 * std::sqrt((b - 0.02) * (a - 0.02) * 2 / n));
    CHECK(std::abs(inc_corr / n) < 4 / std::sqrt(n));
    // Deterministic, and the same sample id gives the same path whatever batch it sits in.
    std::vector<double> o1(3 * D), o2(D);
    const std::vector<double> from = {5.0, 5.0, 5.0}, to = {1.0, 1.0, 1.0};
    tree(diffuse::batched(o1, 3), 0, from, to);
    diffuse::brownian_tree_noise shifted(11, 0.02, 15.0, 2);
    shifted(diffuse::batched(o2, 1), 9, std::span<const double>(from).first(1), std::span<const double>(to).first(1));
    CHECK(o1[2 * D] == o2[0]);
    CHECK(o1[2 * D + 1] == o2[1]);
    CHECK(o1[0] != o1[D]);
    CHECK_THROWS_WITH(tree.path(20.0, 0, w1), Catch::Contains("sigma"));
}

TEST_CASE("sigma samplers: with a Brownian tree, SDE solutions converge as the steps shrink (coherent noise)") {
    // The same Brownian path drives runs with 25, 50 and 400 steps; the strong error against the fine run
    // must shrink. With independent noise per draw the runs would not approach each other at all.
    const std::size_t B = 2;
    std::vector<double> z = {1.1, -0.4, 0.3, 2.0, -1.5, 0.8, -0.2, 0.6};
    auto solve = [&](std::size_t n, bool tree_noise) {
        auto sig = diffuse::karras_sigmas(n, 0.05, 10.0);
        sig.pop_back();
        std::vector<double> x(z.size());
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = 10.0 * z[i];
        auto m = analytic_gauss::ve_model(gauss);
        diffuse::dpmpp_2m_sde_options o;
        o.lower_order_final = false;
        if (tree_noise) diffuse::sample_dpmpp_2m_sde(m, diffuse::batched(x, B), diffuse::time_grid(sig), o, diffuse::brownian_tree_noise(5, 0.05, 10.0));
        else diffuse::sample_dpmpp_2m_sde(m, diffuse::batched(x, B), diffuse::time_grid(sig), o, diffuse::counter_noise{5});
        return x;
    };
    const auto fine = solve(400, true);
    const double e25 = analytic_gauss::max_abs_diff(solve(25, true), fine), e50 = analytic_gauss::max_abs_diff(solve(50, true), fine);
    const double e50_indep = analytic_gauss::max_abs_diff(solve(50, false), solve(400, false));
    INFO("e25 " << e25 << " e50 " << e50 << " independent noise e50 " << e50_indep);
    CHECK(e50 < e25);
    CHECK(e50 < 0.2);
    CHECK(e50_indep > 3 * e50);
}
