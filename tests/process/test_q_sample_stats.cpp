#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/process/forward.hpp"

TEST_CASE("q_sample's empirical mean and variance match the closed form") {
    const auto s = diffuse::discrete_schedule::from_config("linear", 1000);
    rc::prop("for random t and x0, mean = sqrt(abar) x0 and variance = 1 - abar", [&] {
        const auto t = *rc::gen::inRange<std::int64_t>(0, 1000);
        const double x0v = *rc::gen::inRange(-2000, 2000) / 1000.0;
        const auto seed = *rc::gen::arbitrary<std::uint32_t>();
        const std::size_t n = 20000;
        std::vector<double> x0(n, x0v), noise(n), xt(n);
        diffuse::fill_normal(noise, seed, 0);
        const std::vector<std::int64_t> ts = {t};
        diffuse::q_sample(xt, x0, noise, s, ts);
        double m = 0, v = 0;
        for (double x : xt) m += x;
        m /= double(n);
        for (double x : xt) v += (x - m) * (x - m);
        v /= double(n - 1);
        const auto ab = s.alphas_cumprod[std::size_t(t)];
        const double var = 1 - ab;
        // 6 standard errors: mean s.e. √(var/n); variance s.e. var·√(2/(n−1))
        RC_ASSERT(std::abs(m - std::sqrt(ab) * x0v) <= 6 * std::sqrt(var / double(n)));
        RC_ASSERT(std::abs(v - var) <= 6 * var * std::sqrt(2.0 / double(n - 1)));
    });
}
