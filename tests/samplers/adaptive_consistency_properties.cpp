// Properties of DPM-adaptive, LCM and consistency sampling beyond parity: per-sample control and grids (a batch equals its samples run
// alone), the batch-coupled option, adapters and float, observer, invalid arguments, NaN reporting, and the
// closed forms of LCM's and consistency models' boundary conditions.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/adapt/eigen.hpp"
#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/dpm_adaptive.hpp"
#include "diffuse/samplers/lcm.hpp"
#include "diffuse/schedules/beta.hpp"

using namespace diffuse;

namespace {

gaussian_mixture data() { return gaussian_mixture({0.4, 0.6}, {0.5, -0.3, 1.0, -0.8, 0.2, -1.1}, {0.09, 0.16}); }
constexpr std::size_t D = 3;

std::vector<double> start(std::size_t B, double scale, std::uint64_t seed = 3) {
    std::vector<double> x(B * D);
    fill_normal(batched(x, B), seed, 0);
    for (auto& v : x) v *= scale;
    return x;
}

std::vector<double> row(const std::vector<double>& x, std::size_t b) {
    return std::vector<double>(x.begin() + std::ptrdiff_t(b * D), x.begin() + std::ptrdiff_t((b + 1) * D));
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

std::vector<double> alphas_cumprod() {
    const auto a = alphas_from_betas(scaled_linear_betas(1000, 0.00085, 0.012));
    std::vector<double> ac(a.size());
    double p = 1;
    for (std::size_t i = 0; i < a.size(); ++i) ac[i] = p *= a[i];
    return ac;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("dpm_adaptive: per-sample control and per-sample grids equal each sample run alone", "[samplers][adaptive_consistency]") {
    auto m = analytic_model(data(), prediction::sample);
    const std::vector<std::vector<double>> rows{{14.6, 2.0, 0.03}, {8.0, 1.0, 0.05}, {3.0, 0.5, 0.0}};
    const auto grid = time_grid::per_sample(rows);
    for (double eta : {0.0, 1.0}) {
        dpm_adaptive_options o;
        o.eta = eta;
        o.rtol = 0.01;
        o.atol = 0.001;
        auto x = start(3, 5.0);
        const auto st = sample_dpm_adaptive(m, batched(x, 3), grid, o, counter_noise{11});
        std::size_t acc = 0, nfe_max = 0, nfe_sum = 0;
        for (std::size_t b = 0; b < 3; ++b) {
            auto xb = row(start(3, 5.0), b);
            const auto sb = sample_dpm_adaptive(m, batched(xb, 1), time_grid(rows[b]), o, counter_noise{11, b});
            INFO("eta " << eta << " sample " << b);
            CHECK(same_bits(xb, row(x, b)));
            acc += sb.accepted;
            nfe_max = std::max(nfe_max, sb.nfe);
            nfe_sum += sb.nfe;
        }
        CHECK(st.accepted == acc);
        // every interval takes as many batch calls as its slowest sample needs there
        CHECK(st.nfe >= nfe_max);
        CHECK(st.nfe <= nfe_sum);
    }
}

TEST_CASE("dpm_adaptive: batch norm, options, observer, adapters, errors", "[samplers][adaptive_consistency]") {
    auto m = analytic_model(data(), prediction::sample);
    dpm_adaptive_options o;
    o.norm = rk_error_norm::batch;
    auto x = start(2, 10.0);
    CHECK_THROWS_AS(sample_dpm_adaptive(m, batched(x, 2), time_grid::per_sample({{10, 0.1}, {5, 0.1}}), o), error);
    // batch mode: one controller for the batch, so k-diffusion's counts (once per attempt)
    const auto st = sample_dpm_adaptive(m, batched(x, 2), time_grid({10.0, 0.1}), o);
    CHECK(st.nfe == 3 * (st.accepted + st.rejected));
    // observer at every grid point, early stop
    std::vector<double> seen;
    auto y = start(2, 10.0);
    sample_dpm_adaptive(m, batched(y, 2), time_grid({10.0, 1.0, 0.1, 0.0}), {}, counter_noise{},
                        [&](const step_info<double>& s) { seen.push_back(s.time[0]); return s.step < 1; });
    CHECK(seen == std::vector<double>{10.0, 1.0});
    // σ = 0 at the end: x = D(x; σ_{N−1}) lands on the posterior mean
    auto z = start(2, 10.0);
    sample_dpm_adaptive(m, batched(z, 2), time_grid({10.0, 0.2, 0.0}));
    auto z2 = start(2, 10.0);
    sample_dpm_adaptive(m, batched(z2, 2), time_grid({10.0, 0.2}));
    std::vector<double> d(6), ones(2, 1.0), s(2, 0.2);
    m.predict(batched(z2, 2), ones, s, prediction::sample, batched(d, 2));
    for (std::size_t i = 0; i < 6; ++i) CHECK(z[i] == Approx(d[i]).margin(1e-12));
    // Eigen (column = sample) and float
    Eigen::MatrixXd e(int(D), 2);
    Eigen::MatrixXf f(int(D), 2);
    const auto s0 = start(2, 10.0);
    for (int b = 0; b < 2; ++b)
        for (int j = 0; j < int(D); ++j) e(j, b) = s0[std::size_t(b) * D + std::size_t(j)], f(j, b) = float(e(j, b));
    auto ref = start(2, 10.0);
    sample_dpm_adaptive(m, batched(ref, 2), time_grid({10.0, 0.1}));
    sample_dpm_adaptive(m, e, time_grid({10.0, 0.1}));
    sample_dpm_adaptive(m, f, time_grid({10.0, 0.1}));
    for (int b = 0; b < 2; ++b)
        for (int j = 0; j < int(D); ++j) {
            CHECK(e(j, b) == ref[std::size_t(b) * D + std::size_t(j)]);
            // float32 may choose other steps (see adaptive_consistency_parity.cpp): agreement to the solver's tolerance (rtol 0.05)
            CHECK(f(j, b) == Approx(ref[std::size_t(b) * D + std::size_t(j)]).margin(1e-2));
        }
    // invalid arguments name the parameter
    auto w = start(2, 10.0);
    dpm_adaptive_options bad;
    bad.order = 4;
    CHECK(error_of([&] { sample_dpm_adaptive(m, batched(w, 2), time_grid({10.0, 0.1}), bad); }).find("order") != std::string::npos);
    bad = {};
    bad.atol = 0;
    CHECK(error_of([&] { sample_dpm_adaptive(m, batched(w, 2), time_grid({10.0, 0.1}), bad); }).find("atol") != std::string::npos);
    CHECK(error_of([&] { sample_dpm_adaptive(m, batched(w, 2), time_grid({1.0, 2.0})); }).find("decreasing") != std::string::npos);
    bad = {};
    bad.max_attempts = 2;
    bad.rtol = 1e-9;
    bad.atol = 1e-12;
    CHECK(error_of([&] { sample_dpm_adaptive(m, batched(w, 2), time_grid({10.0, 0.1}), bad); }).find("max_attempts") !=
          std::string::npos);
}

TEST_CASE("lcm: timesteps, scalings, one step by hand, per-sample grids", "[samplers][adaptive_consistency]") {
    CHECK(lcm_timesteps(4) == std::vector<std::int64_t>{999, 759, 499, 259});
    CHECK(lcm_timesteps(1) == std::vector<std::int64_t>{999});
    CHECK(lcm_timesteps(4, 20) == std::vector<std::int64_t>{999, 749, 499, 249});
    CHECK_THROWS_AS(lcm_timesteps(51), error);
    const auto sc = lcm_scalings(259.0);
    CHECK(sc.c_skip == Approx(0.25 / (2590.0 * 2590.0 + 0.25)).epsilon(1e-15));
    CHECK(sc.c_out == Approx(2590.0 / std::sqrt(2590.0 * 2590.0 + 0.25)).epsilon(1e-15));

    const auto ac = alphas_cumprod();
    auto m = analytic_model(data(), prediction::epsilon, discrete_time(ac));
    // one step: x ← c_skip·x + c_out·x̂₀
    auto x = start(2, 1.0);
    const auto x_in = x;
    sample_lcm(m, batched(x, 2), ac, discrete_grid(std::vector<std::int64_t>{499}));
    std::vector<double> x0(6), t(2, 499.0), a(2, std::sqrt(ac[499])), s(2, std::sqrt(1 - ac[499]));
    auto xi = x_in;
    m.predict(batched(xi, 2), a, s, prediction::sample, batched(x0, 2), t);
    const auto c = lcm_scalings(499.0);
    for (std::size_t i = 0; i < 6; ++i) CHECK(x[i] == Approx(c.c_skip * x_in[i] + c.c_out * x0[i]).margin(1e-13));
    // per-sample grids (with a held, padded start) equal each sample alone
    const std::vector<std::vector<std::int64_t>> rows{{999, 759, 499, 259}, {499, 499, 339, 179}};
    auto xb = start(2, 1.0);
    sample_lcm(m, batched(xb, 2), ac, discrete_grid(rows), {}, counter_noise{5});
    auto x1 = row(start(2, 1.0), 0);
    sample_lcm(m, batched(x1, 1), ac, discrete_grid(rows[0]), {}, counter_noise{5, 0});
    CHECK(same_bits(x1, row(xb, 0)));
    auto x2 = row(start(2, 1.0), 1);
    sample_lcm(m, batched(x2, 1), ac, discrete_grid(std::vector<std::int64_t>{499, 339, 179}), {},
               [](auto v, std::uint64_t k) { counter_noise{5, 1}(v, k + 1); });  // the held step skipped draw 0
    CHECK(same_bits(x2, row(xb, 1)));
    // float through Eigen equals float through std::vector (same counter noise), and double without noise
    Eigen::MatrixXf f(int(D), 2);
    const auto s0 = start(2, 1.0);
    std::vector<float> fv(s0.begin(), s0.end());
    for (int b = 0; b < 2; ++b)
        for (int j = 0; j < int(D); ++j) f(j, b) = float(s0[std::size_t(b) * D + std::size_t(j)]);
    sample_lcm(m, batched(fv, 2), ac, discrete_grid(lcm_timesteps(4)), {}, counter_noise{8});
    sample_lcm(m, f, ac, discrete_grid(lcm_timesteps(4)), {}, counter_noise{8});
    for (int b = 0; b < 2; ++b)
        for (int j = 0; j < int(D); ++j) CHECK(f(j, b) == fv[std::size_t(b) * D + std::size_t(j)]);
    auto ref = start(2, 1.0);
    std::vector<float> f1(s0.begin(), s0.end());
    sample_lcm(m, batched(ref, 2), ac, discrete_grid(std::vector<std::int64_t>{759}));
    sample_lcm(m, batched(f1, 2), ac, discrete_grid(std::vector<std::int64_t>{759}));
    for (std::size_t i = 0; i < 6; ++i) CHECK(f1[i] == Approx(ref[i]).margin(1e-6));
    auto bad = start(2, 1.0);
    CHECK(error_of([&] { sample_lcm(m, batched(bad, 2), ac, discrete_grid(std::vector<std::int64_t>{1000})); })
              .find("time_grid point") != std::string::npos);
}

TEST_CASE("consistency: boundary condition, one step, per-sample grids, errors", "[samplers][adaptive_consistency]") {
    struct raw {
        void operator()(tensor_view<const double> u, const model_cond& c, tensor_view<double> out) const {
            for (std::size_t b = 0; b < u.batch; ++b)
                for (std::size_t j = 0; j < u.per_sample; ++j) out.sample(b)[j] = std::tanh(u.sample(b)[j]) + 1e-3 * c.t[b];
        }
    };
    auto m = consistency_model(raw{}, 0.5, 0.002);
    // f(x, σ_min) = x (c_skip = 1, c_out = 0: Song et al. 2023, eq. 3)
    auto x = start(2, 1.0);
    std::vector<double> out(6), ones(2, 1.0), smin(2, 0.002);
    m.predict(batched(x, 2), ones, smin, prediction::sample, batched(out, 2));
    for (std::size_t i = 0; i < 6; ++i) CHECK(out[i] == Approx(x[i]).margin(1e-15));
    // c_skip, c_out, c_in, c_noise at σ = 3 by hand
    std::vector<double> s3(2, 3.0);
    m.predict(batched(x, 2), ones, s3, prediction::sample, batched(out, 2));
    const double cs = 0.25 / (2.998 * 2.998 + 0.25), co = 2.998 * 0.5 / std::sqrt(9.0 + 0.25), ci = 1 / std::sqrt(9.25);
    for (std::size_t i = 0; i < 6; ++i)
        CHECK(out[i] == Approx(cs * x[i] + co * (std::tanh(ci * x[i]) + 1e-3 * 250.0 * std::log(3.0))).margin(1e-14));
    // one step = clamp(f(x, σ_0)) with no noise (τ_1 = σ_min)
    consistency_options o;
    auto y = start(2, 80.0);
    const auto y_in = y;
    sample_consistency(m, batched(y, 2), time_grid({80.0, 0.002}), o, counter_noise{1});
    std::vector<double> f0(6), s80(2, 80.0);
    auto yi = y_in;
    m.predict(batched(yi, 2), ones, s80, prediction::sample, batched(f0, 2));
    for (std::size_t i = 0; i < 6; ++i) CHECK(y[i] == std::clamp(f0[i], -1.0, 1.0));
    // per-sample grids equal each alone
    const std::vector<std::vector<double>> rows{{80.0, 5.0, 0.5, 0.002}, {20.0, 2.0, 0.3, 0.0}};
    o.clip_denoised = false;
    auto xb = start(2, 20.0);
    sample_consistency(m, batched(xb, 2), time_grid::per_sample(rows), o, counter_noise{4});
    for (std::size_t b = 0; b < 2; ++b) {
        auto xs = row(start(2, 20.0), b);
        sample_consistency(m, batched(xs, 1), time_grid(rows[b]), o, counter_noise{4, b});
        CHECK(same_bits(xs, row(xb, b)));
    }
    // the Karras σ of the 40-boundary schedule: 2 steps = {80, σ(20/39), 0.002}
    const auto sg = consistency_sigmas(consistency_timesteps(2));
    REQUIRE(sg.size() == 3);
    CHECK(sg[0] == 80.0);
    const double ramp = 20.0 / 39.0, a = std::pow(80.0, 1 / 7.0), bmin = std::pow(0.002, 1 / 7.0);
    CHECK(sg[1] == Approx(std::pow(a + ramp * (bmin - a), 7.0)).epsilon(1e-14));
    CHECK(sg[2] == 0.002);
    CHECK_THROWS_AS(consistency_sigmas(std::vector<std::int64_t>{0, 22}), error);
    consistency_options bad;
    bad.sigma_max = 0.001;
    auto z = start(2, 1.0);
    CHECK(error_of([&] { sample_consistency(m, batched(z, 2), time_grid({1.0, 0.002}), bad); }).find("sigma_max") !=
          std::string::npos);
}

TEST_CASE("DPM-adaptive, LCM, consistency: NaN/Inf from the model names the sampler, step and time", "[samplers][adaptive_consistency][nan]") {
    struct poisoned {
        double bad_below;
        void operator()(tensor_view<const double> x, const model_cond& c, tensor_view<double> out) const {
            for (std::size_t b = 0; b < x.batch; ++b)
                for (std::size_t j = 0; j < x.per_sample; ++j)
                    out.sample(b)[j] = c.t[b] < bad_below ? std::numeric_limits<double>::quiet_NaN() : 0.5 * x.sample(b)[j];
        }
    };
    auto m = model(poisoned{1.0}, prediction::sample, sigma_time{});
    auto x = start(2, 10.0);
    auto msg = error_of([&] { sample_dpm_adaptive(m, batched(x, 2), time_grid({10.0, 2.0, 0.1})); });
    INFO(msg);
    CHECK(msg.find("sample_dpm_adaptive: step 1") != std::string::npos);
    CHECK(msg.find("NaN or Inf") != std::string::npos);
    x = start(2, 10.0);
    msg = error_of([&] { sample_consistency(m, batched(x, 2), time_grid({10.0, 2.0, 0.5, 0.002})); });
    CHECK(msg.find("sample_consistency: step 2 (sigma = 0.5") != std::string::npos);
    const auto ac = alphas_cumprod();
    auto md = model(poisoned{300.0}, prediction::sample, discrete_time(ac));
    x = start(2, 1.0);
    msg = error_of([&] { sample_lcm(md, batched(x, 2), ac, discrete_grid(lcm_timesteps(4))); });
    CHECK(msg.find("sample_lcm: step 3 (timestep = 259") != std::string::npos);
}
