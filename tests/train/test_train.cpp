#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/train/distillation.hpp"
#include "diffuse/train/ema.hpp"

using diffuse::batched;
using Catch::Matchers::Contains;

TEST_CASE("ema_decay matches diffusers' EMAModel.get_decay", "[train][ema]") {
    // values printed by diffusers 0.42 EMAModel(...).get_decay(step)
    const std::uint64_t steps[] = {0, 1, 2, 3, 4, 5, 10, 100, 10000};
    const double plain[] = {0.0, 0.0, 0.18181818181818182, 0.25, 0.3076923076923077, 0.35714285714285715,
                            0.5263157894736842, 0.9174311926605505, 0.9991008092716556};
    const double warm[] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.4053964424986395, 0.7676319197574591, 0.9676465052297423,
                           0.9989997749409213};
    diffuse::ema_options a;
    diffuse::ema_options b{0.999, 0.1, 3, true, 1.0, 0.75};
    for (int i = 0; i < 9; ++i) {
        CHECK(diffuse::ema_decay(a, steps[i]) == Approx(plain[i]).epsilon(1e-14));
        CHECK(diffuse::ema_decay(b, steps[i]) == Approx(warm[i]).epsilon(1e-14));
    }
    std::vector<float> p{1.0f, 2.0f};
    diffuse::ema e(p, a);
    std::vector<float> q{3.0f, 2.0f};
    e.update(q);  // step 1: decay 0 -> copy
    CHECK(e.shadow()[0] == 3.0f);
    std::vector<float> r{5.0f, 2.0f};
    e.update(r);  // step 2: decay 2/11
    CHECK(e.shadow()[0] == Approx(3.0 - (1 - 2.0 / 11) * (3.0 - 5.0)));
    std::vector<float> out(2);
    e.copy_to(out);
    CHECK(out[1] == 2.0f);
    std::vector<float> wrong(3);
    CHECK_THROWS_WITH(e.update(wrong), Contains("params has 3 values"));
    diffuse::ema_options bad;
    bad.decay = 1.5;
    CHECK_THROWS_WITH(diffuse::ema(p, bad), Contains("decay = 1.5"));
}

TEST_CASE("progressive distillation: one student step reproduces two teacher steps", "[train][distillation]") {
    const std::size_t B = 3, D = 4;
    std::vector<double> z(B * D), x1(B * D), x2(B * D), zmid(B * D), z2(B * D), tgt(B * D), zs(B * D);
    for (std::size_t i = 0; i < B * D; ++i) z[i] = std::sin(double(i)), x1[i] = std::cos(double(i)), x2[i] = 0.3 * double(i % 5);
    auto as = [](double t) { return std::cos(t * M_PI / 2); };
    auto ss = [](double t) { return std::sin(t * M_PI / 2); };
    std::vector<double> a_t(B), s_t(B), a_m(B), s_m(B), a_2(B), s_2(B);
    const double ts[] = {0.9, 0.5, 0.2};
    for (std::size_t b = 0; b < B; ++b) {
        a_t[b] = as(ts[b]), s_t[b] = ss(ts[b]);
        a_m[b] = as(ts[b] - 0.05), s_m[b] = ss(ts[b] - 0.05);
        a_2[b] = as(ts[b] - 0.1), s_2[b] = ss(ts[b] - 0.1);
    }
    // teacher: x̂₀ = x1 at t, x2 at t'
    diffuse::ddim_step(batched(z, B), batched(x1, B), a_t, s_t, a_m, s_m, batched(zmid, B));
    diffuse::ddim_step(batched(zmid, B), batched(x2, B), a_m, s_m, a_2, s_2, batched(z2, B));
    diffuse::progressive_distillation_target(batched(z, B), batched(z2, B), a_t, s_t, a_2, s_2, batched(tgt, B));
    // student: one DDIM step from t with x̂₀ = target lands on z2
    diffuse::ddim_step(batched(z, B), batched(tgt, B), a_t, s_t, a_2, s_2, batched(zs, B));
    for (std::size_t i = 0; i < B * D; ++i) CHECK(zs[i] == Approx(z2[i]).epsilon(1e-12).margin(1e-12));
    // same x̂₀ in both teacher steps: the target is that x̂₀ (DDIM is exact on a fixed x̂₀)
    diffuse::ddim_step(batched(zmid, B), batched(x1, B), a_m, s_m, a_2, s_2, batched(z2, B));
    diffuse::progressive_distillation_target(batched(z, B), batched(z2, B), a_t, s_t, a_2, s_2, batched(tgt, B));
    for (std::size_t i = 0; i < B * D; ++i) CHECK(tgt[i] == Approx(x1[i]).epsilon(1e-10).margin(1e-10));
    std::vector<double> zero_sigma(B, 0.0);
    CHECK_THROWS_WITH(diffuse::ddim_step(batched(z, B), batched(x1, B), a_t, zero_sigma, a_2, s_2, batched(zs, B)),
                      Contains("sigma_s[0] = 0"));
    std::vector<double> short_a(2);
    CHECK_THROWS_WITH(diffuse::progressive_distillation_target(batched(z, B), batched(z2, B), short_a, s_t, a_2, s_2,
                                                               batched(tgt, B)),
                      Contains("alpha_t has 2 values"));
}

TEST_CASE("consistency models: scalings, schedules, pairs and distillation targets", "[train][consistency]") {
    // boundary condition f(x, σ_min) = x
    const auto s0 = diffuse::consistency_scalings(0.002);
    CHECK(s0.c_skip == 1.0);
    CHECK(s0.c_out == 0.0);
    const auto s1 = diffuse::consistency_scalings(1.0, 0.5, 0.002);
    CHECK(s1.c_skip == Approx(0.25 / (0.998 * 0.998 + 0.25)));
    CHECK(s1.c_out == Approx(0.998 * 0.5 / std::sqrt(1.25)));
    const auto b = diffuse::consistency_boundaries(18);
    CHECK(b.front() == 0.002);
    CHECK(b.back() == 80.0);
    for (std::size_t i = 1; i < b.size(); ++i) CHECK(b[i] > b[i - 1]);
    CHECK(diffuse::ct_num_scales(0, 1000) == 2);
    CHECK(diffuse::ct_num_scales(1000, 1000) == 151);
    CHECK(diffuse::ct_target_decay(0, 1000) == Approx(0.95));
    CHECK_THROWS_AS(diffuse::ct_num_scales(5, 4), diffuse::error);
    CHECK_THROWS_AS(diffuse::consistency_scalings(0.001), diffuse::error);
    std::vector<double> x0{1.0, 2.0}, z{0.5, -0.5}, xn(2), xn1(2);
    const std::vector<double> sn{0.1}, sn1{0.3};
    diffuse::consistency_training_pair(x0, z, sn, sn1, xn, xn1);
    CHECK(xn[0] == Approx(1.05));
    CHECK(xn1[1] == Approx(2.0 - 0.15));
    CHECK_THROWS_WITH(diffuse::consistency_training_pair(x0, z, sn1, sn, xn, xn1), Contains("sigma_n1[0]"));
    // with the exact denoiser of a point mass at x0, one Euler step lands exactly on x0 + σ_n z
    std::vector<double> tgt(2);
    diffuse::consistency_distillation_target(xn1, x0, sn, sn1, tgt);
    CHECK(tgt[0] == Approx(xn[0]));
    CHECK(tgt[1] == Approx(xn[1]));
}
