// API behaviour of the score_sde-family samplers: tensor adapters (std::vector via batched, Eigen),
// float and double, observer and early stop, per-sample grids, invalid arguments.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "diffuse/adapt/eigen.hpp"
#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/prior.hpp"
#include "diffuse/samplers/sde.hpp"

using namespace diffuse;

namespace {
gaussian_mixture data() { return gaussian_mixture({0.5, 0.5}, {1.0, 0.5, -1.0, -0.5}, {0.1, 0.2}); }
const vp_sde vp(0.1, 20, 30);
}  // namespace

TEST_CASE("score_sde api: an Eigen matrix gives the same bits as a std::vector", "[samplers][score_sde][api]") {
    auto m = analytic_model(data(), prediction::epsilon, continuous_time<vp_sde>{vp});
    std::vector<double> v(3 * 2);
    sample_prior(vp, batched(v, 3), 5);
    Eigen::MatrixXd e(2, 3);  // column-major: a column is a sample
    for (int b = 0; b < 3; ++b)
        for (int j = 0; j < 2; ++j) e(j, b) = v[std::size_t(b * 2 + j)];
    const time_grid grid(score_sde_time_grid(vp));
    sample_pc(m, batched(v, 3), vp, grid, {}, counter_noise{7});
    sample_pc(m, e, vp, grid, {}, counter_noise{7});
    for (int b = 0; b < 3; ++b)
        for (int j = 0; j < 2; ++j) CHECK(e(j, b) == v[std::size_t(b * 2 + j)]);
    Eigen::MatrixXf f(2, 3);
    sample_prior(vp, f, 5);
    auto rk = sample_pf_ode_rk45(m, f, vp, time_grid({1.0, 1e-3}));
    CHECK(rk.nfe > 0);
    for (int b = 0; b < 3; ++b)
        for (int j = 0; j < 2; ++j) CHECK(std::isfinite(f(j, b)));
}

TEST_CASE("score_sde api: observer sees every step and can stop early", "[samplers][score_sde][api]") {
    auto m = analytic_model(data(), prediction::score, continuous_time<vp_sde>{vp});
    std::vector<float> x(4 * 2);
    sample_prior(vp, batched(x, 4), 1);
    std::size_t seen = 0;
    bool had_x0 = true;
    sample_pc(m, batched(x, 4), vp, time_grid(score_sde_time_grid(vp)), {}, counter_noise{1},
              [&](const step_info<float>& s) {
                  CHECK(s.step == seen);
                  CHECK(s.steps == 30);
                  CHECK(s.time.size() == 4);
                  had_x0 = had_x0 && s.denoised.size() == 8;
                  ++seen;
                  return seen < 5;
              });
    CHECK(seen == 5);
    CHECK(had_x0);
    std::size_t ode_steps = 0;
    sample_pf_ode_heun(m, batched(x, 4), vp, time_grid({1.0, 0.5, 0.2, 0.1}), {}, no_noise{},
                       [&](const step_info<float>&) { ++ode_steps; });
    CHECK(ode_steps == 3);
}

TEST_CASE("score_sde api: a per-sample grid equals running each sample on its own row", "[samplers][score_sde][api]") {
    auto m = analytic_model(data(), prediction::epsilon, continuous_time<vp_sde>{vp});
    const std::vector<std::vector<double>> rows{{1.0, 0.6, 0.3, 0.05}, {0.7, 0.5, 0.2, 0.01}};
    std::vector<double> start{0.3, -0.4, 1.1, 0.2};
    auto x = start;
    sample_pf_ode_heun(m, batched(x, 2), vp, time_grid::per_sample(rows));
    auto xr = start;
    sample_pf_ode_rk45(m, batched(xr, 2), vp, time_grid::per_sample(rows));
    for (std::size_t b = 0; b < 2; ++b) {
        std::vector<double> one(start.begin() + std::ptrdiff_t(2 * b), start.begin() + std::ptrdiff_t(2 * b + 2));
        auto one_rk = one;
        sample_pf_ode_heun(m, batched(one, 1), vp, time_grid(rows[b]));
        sample_pf_ode_rk45(m, batched(one_rk, 1), vp, time_grid(rows[b]));
        for (std::size_t j = 0; j < 2; ++j) {
            CHECK(x[2 * b + j] == one[j]);
            CHECK(xr[2 * b + j] == one_rk[j]);
        }
    }
}

TEST_CASE("score_sde api: invalid arguments are rejected with the parameter named", "[samplers][score_sde][api]") {
    auto m = analytic_model(data(), prediction::score, continuous_time<vp_sde>{vp});
    std::vector<double> x(4, 0.1);
    const time_grid good(score_sde_time_grid(vp));
    pc_options o;
    o.snr = 0;
    CHECK_THROWS_WITH(sample_pc(m, batched(x, 2), vp, good, o), Catch::Contains("snr"));
    CHECK_THROWS_WITH(sample_pc(m, batched(x, 2), vp, time_grid({0.5, 0.7})), Catch::Contains("decreasing"));
    CHECK_THROWS_WITH(sample_pf_ode_euler(m, batched(x, 2), vp, time_grid({1.0, 0.0})), Catch::Contains("end point"));
    CHECK_THROWS_WITH(sample_pc(m, batched(x, 2), vp, time_grid({1.5, 0.5})), Catch::Contains("time_grid point"));
    rk45_options r;
    r.norm = rk_error_norm::batch;
    CHECK_THROWS_WITH(sample_pf_ode_rk45(m, batched(x, 2), vp, time_grid({1.0, 0.5, 0.8, 0.1}, 2), r),
                      Catch::Contains("shared time grid"));
    r = {};
    r.rtol = -1;
    CHECK_THROWS_WITH(sample_pf_ode_rk45(m, batched(x, 2), vp, time_grid({1.0, 0.1}), r), Catch::Contains("rtol"));
    pc_options a;
    a.predictor = sde_predictor::ancestral;
    const subvp_sde sub(0.1, 20, 30);
    auto ms = analytic_model(data(), prediction::score, continuous_time<subvp_sde>{sub});
    CHECK_THROWS_WITH(sample_pc(ms, batched(x, 2), sub, time_grid(score_sde_time_grid(sub)), a),
                      Catch::Contains("VP and VE"));
    CHECK_THROWS_WITH(sample_pc(m, batched(x, 2), vp, time_grid({1.0, 0.5, 1.0, 0.5, 1.0, 0.5}, 3)), Catch::Contains("rows"));
}
