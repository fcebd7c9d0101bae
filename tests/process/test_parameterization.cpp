#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/process/parameterization.hpp"

using diffuse::prediction;

TEST_CASE("conversions among eps, x0, v, score and flow velocity round-trip for random inputs") {
    rc::prop("have -> want -> have is the identity", [] {
        const double alpha = *rc::gen::inRange(1, 1000) / 1000.0;
        const bool vp = *rc::gen::arbitrary<bool>();
        const double sigma = vp ? std::sqrt(1 - alpha * alpha) + 1e-3 : *rc::gen::inRange(1, 80000) / 1000.0;
        const auto have = *rc::gen::element(prediction::epsilon, prediction::sample, prediction::v, prediction::score,
                                            prediction::flow_velocity);
        const auto want = *rc::gen::element(prediction::epsilon, prediction::sample, prediction::v, prediction::score,
                                            prediction::flow_velocity);
        // x = α·x₀ + σ·ε for a random (x₀, ε): every prediction is then known exactly.
        const double x0 = *rc::gen::inRange(-3000, 3000) / 1000.0, eps = *rc::gen::inRange(-3000, 3000) / 1000.0;
        const double x = alpha * x0 + sigma * eps;
        auto exact = [&](prediction p) {
            switch (p) {
                case prediction::epsilon: return eps;
                case prediction::sample: return x0;
                case prediction::v: return alpha * eps - sigma * x0;
                case prediction::score: return -eps / sigma;
                case prediction::flow_velocity: return eps - x0;
            }
            return 0.0;
        };
        const auto c = diffuse::convert_coefficients(have, want, alpha, sigma);
        const double got = c.a * x + c.b * exact(have);
        RC_ASSERT(std::abs(got - exact(want)) <= 1e-9 * (1 + std::abs(exact(want))) / std::min(alpha, 1.0));
    });
}

TEST_CASE("convert_prediction applies per-sample coefficients to tensors") {
    const std::vector<double> alpha = {0.8, 0.6}, sigma = {0.6, 0.8};
    std::vector<float> x0 = {1, -1, 2, 0.5f}, eps = {0.5f, 0.25f, -1, 2}, x(4), got(4);
    for (int b = 0; b < 2; ++b)
        for (int j = 0; j < 2; ++j)
            x[b * 2 + j] = float(alpha[b] * x0[b * 2 + j] + sigma[b] * eps[b * 2 + j]);
    diffuse::convert_prediction(diffuse::batched(got, 2), diffuse::batched(x, 2), diffuse::batched(eps, 2),
                                prediction::epsilon, prediction::sample, alpha, sigma);
    for (int i = 0; i < 4; ++i) CHECK(got[i] == Approx(x0[i]).margin(1e-6));
    std::vector<double> wrong = {1.0};
    CHECK_THROWS_WITH(diffuse::convert_prediction(diffuse::batched(got, 2), diffuse::batched(x, 2), diffuse::batched(eps, 2),
                                                  prediction::epsilon, prediction::sample, wrong, sigma),
                      Catch::Contains("batch has 2"));
    CHECK_THROWS_WITH(diffuse::convert_coefficients(prediction::epsilon, prediction::sample, 0.0, 1.0),
                      Catch::Contains("alpha = 0"));
    CHECK_THROWS_WITH(diffuse::parse_prediction("velocity"), Catch::Contains("prediction_type = velocity"));
}

TEST_CASE("EDM preconditioning matches Karras et al. Table 1") {
    const double s = 2.0, d = 0.5;
    const auto c = diffuse::edm_precondition(s, d);
    CHECK(c.c_skip == Approx(0.25 / 4.25));
    CHECK(c.c_out == Approx(1.0 / std::sqrt(4.25)));
    CHECK(c.c_in == Approx(1.0 / std::sqrt(4.25)));
    CHECK(c.c_noise == Approx(std::log(2.0) / 4));
    // D(x) = c_skip·x + c_out·F is exact for the ideal F = (x0 − c_skip·x)/c_out: c_skip² σ² + c_out²... the
    // effective training target has unit variance (Karras et al., eq. 8 with λ = 1/c_out²).
    CHECK(diffuse::edm_loss_weight(s, d) == Approx(1.0 / (c.c_out * c.c_out)));
    CHECK_THROWS_WITH(diffuse::edm_precondition(1.0, 0.0), Catch::Contains("sigma_data = 0"));
}
