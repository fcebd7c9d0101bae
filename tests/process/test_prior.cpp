#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/process/prior.hpp"
#include "diffuse/schedules/continuous.hpp"

TEST_CASE("prior samples have the prior's variance and prior_logp is the Gaussian log-density") {
    const diffuse::ve_sde ve{};
    const diffuse::vp_sde vp{};
    const std::size_t B = 2, D = 50000;
    std::vector<double> x(B * D);
    diffuse::prior_sample(diffuse::batched(x, B), ve, 11);
    std::vector<double> ss(B), lp(B);
    diffuse::sum_squares(diffuse::batched(x, B), ss);
    const double var = ve.prior_std() * ve.prior_std();
    for (std::size_t b = 0; b < B; ++b) CHECK(std::abs(ss[b] / D / var - 1) < 6 * std::sqrt(2.0 / D));
    diffuse::prior_logp(diffuse::batched(x, B), ve, lp);
    for (std::size_t b = 0; b < B; ++b)
        CHECK(lp[b] == Approx(-0.5 * D * std::log(2 * std::numbers::pi * var) - ss[b] / (2 * var)).epsilon(1e-12));
    std::vector<float> y = {0.5f, -1.0f};
    std::vector<double> one(1);
    diffuse::prior_logp(y, vp, one);
    CHECK(one[0] == Approx(-std::log(2 * std::numbers::pi) - 0.625).epsilon(1e-12));
}
