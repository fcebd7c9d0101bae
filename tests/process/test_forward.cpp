#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/process/forward.hpp"

namespace {
std::string golden(const std::string& name) { return std::string(DIFFUSE_GOLDEN_DIR) + "/process/" + name; }

struct config {
    const char* name;
    std::size_t T;
    double b0, b1;
};
const config configs[] = {{"linear", 1000, 1e-4, 0.02},
                          {"scaled_linear", 1000, 0.00085, 0.012},
                          {"squaredcos_cap_v2", 1000, 1e-4, 0.02},
                          {"linear", 50, 1e-4, 0.2}};

}  // namespace

TEST_CASE("q_sample matches diffusers add_noise with per-sample timesteps") {
    for (int k = 0; k < 4; ++k) {
        const auto& c = configs[k];
        const auto s = diffuse::discrete_schedule::from_config(c.name, c.T, c.b0, c.b1);
        const auto x0 = diffuse::io::read_npy(golden("addnoise_" + std::to_string(k) + "_x0.npy")).as<float>();
        const auto noise = diffuse::io::read_npy(golden("addnoise_" + std::to_string(k) + "_noise.npy")).as<float>();
        const auto t = diffuse::io::read_npy(golden("addnoise_" + std::to_string(k) + "_t.npy")).as<std::int64_t>();
        const auto ref = diffuse::io::read_npy(golden("addnoise_" + std::to_string(k) + "_out.npy")).as<float>();
        std::vector<float> out(x0.size());
        diffuse::q_sample(diffuse::batched(out, 4), diffuse::batched(x0, 4), diffuse::batched(noise, 4), s, t);
        INFO("schedule " << c.name << " T=" << c.T);
        // diffusers forms √ᾱ as torch.pow(ᾱ, 0.5), which is not always the correctly rounded square root
        // (1 ulp off for some ᾱ); everything else is the same float32 arithmetic. Tolerance: 2 float32 ulp
        // of the terms' magnitude (the sum itself may cancel).
        for (std::size_t i = 0; i < out.size(); ++i) {
            const std::size_t b = i / 16;
            const auto m = diffuse::marginal(s, t[b]);
            const double scale = std::abs(m.alpha * x0[i]) + std::abs(m.sigma * noise[i]);
            CHECK(std::abs(double(out[i]) - double(ref[i])) <= 2 * 1.1920929e-7 * scale);
        }
    }
}

TEST_CASE("posterior coefficients match diffusers' DDPM formulas") {
    for (int k = 0; k < 4; ++k) {
        const auto& c = configs[k];
        const auto s = diffuse::discrete_schedule::from_config(c.name, c.T, c.b0, c.b1);
        const auto ref = diffuse::io::read_npy(golden("posterior_" + std::to_string(k) + ".npy")).as<double>();
        for (std::size_t t = 0; t < c.T; ++t) {
            const auto p = diffuse::posterior(s, std::int64_t(t));
            CHECK(p.coef_x0 == Approx(ref[t]).epsilon(1e-12));
            CHECK(p.coef_xt == Approx(ref[c.T + t]).epsilon(1e-12).margin(1e-300));
            CHECK(p.variance == Approx(ref[2 * c.T + t]).epsilon(1e-12).margin(1e-300));
        }
        const auto p0 = diffuse::posterior(s, 0), p1 = diffuse::posterior(s, 1);
        CHECK(p0.variance == 0.0);
        CHECK(p0.log_variance_clipped == std::log(p1.variance));
    }
}

TEST_CASE("SNR is monotone and consistent with the marginal") {
    const auto s = diffuse::discrete_schedule::from_config("linear", 1000);
    double prev = INFINITY;
    for (std::int64_t t = 0; t < 1000; ++t) {
        const auto m = diffuse::marginal(s, t);
        // σ² holds 1 − ᾱ rounded to float32 (as diffusers), snr uses 1 − ᾱ in double
        CHECK(diffuse::snr(s, t) == Approx(m.alpha * m.alpha / (m.sigma * m.sigma)).epsilon(1e-6));
        CHECK(diffuse::log_snr(s, t) == Approx(std::log(diffuse::snr(s, t))).epsilon(1e-12));
        CHECK(diffuse::snr(s, t) < prev);
        prev = diffuse::snr(s, t);
    }
    CHECK_THROWS_WITH(diffuse::marginal(s, 1000), Catch::Contains("t = 1000"));
    CHECK_THROWS_WITH(diffuse::snr(s, -1), Catch::Contains("[0, 999]"));
    std::vector<float> a(8), b(8), o(8);
    const std::vector<std::int64_t> t3 = {1, 2, 3};
    CHECK_THROWS_WITH(diffuse::q_sample(diffuse::batched(o, 2), diffuse::batched(a, 2), diffuse::batched(b, 2), s, t3),
                      Catch::Contains("t has 3 values but the batch has 2"));
}

TEST_CASE("posterior_mean applies each sample's own coefficients") {
    const auto s = diffuse::discrete_schedule::from_config("scaled_linear", 1000, 0.00085, 0.012);
    const std::vector<std::int64_t> t = {0, 500, 999};
    const std::vector<double> x0 = {1, -2, 0.5, 3, -1, 2}, xt = {0.1, 0.2, -0.3, 0.4, 2, -2};
    std::vector<double> mu(6);
    diffuse::posterior_mean(diffuse::batched(mu, 3), diffuse::batched(x0, 3), diffuse::batched(xt, 3), s, t);
    for (std::size_t i = 0; i < 6; ++i) {
        const auto p = diffuse::posterior(s, t[i / 2]);
        CHECK(mu[i] == p.coef_x0 * x0[i] + p.coef_xt * xt[i]);
    }
    // At t = 0 the posterior is a point mass on x₀: coefficient β₀/(1−ᾱ₀) on x₀ (1 up to the float32
    // rounding of ᾱ₀ = 1 − β₀, relative 3e-5 here), exactly 0 on x_t.
    CHECK(diffuse::posterior(s, 0).coef_xt == 0.0);
    CHECK(mu[0] == Approx(x0[0]).epsilon(1e-4));
    // The mean of q(x_{t−1}|x_t, x₀) interpolates between the two marginal scalings (Ho et al. eq. 7):
    // with x_t = √ᾱ_t·x₀ exactly (no noise), μ̃ = √ᾱ_{t−1}·x₀.
    const std::vector<std::int64_t> t1 = {500};
    const double ab = s.alphas_cumprod[500], ab_prev = s.alphas_cumprod[499];
    std::vector<double> a0 = {1.0}, at = {std::sqrt(ab)}, m(1);
    diffuse::posterior_mean(m, a0, at, s, t1);
    CHECK(m[0] == Approx(std::sqrt(ab_prev)).epsilon(1e-6));
}
