#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/io/png.hpp"
#include "diffuse/metrics/sample_distance.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/discrete.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/prior.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/train/toy.hpp"

using Catch::Matchers::Contains;

TEST_CASE("quickstart, shortened: a trained MLP samples two moons close to the data", "[train][toy][slow]") {
    diffuse::toy_train_config cfg;
    cfg.steps = 1200;
    diffuse::mlp_config mc;
    mc.hidden = 64;
    mc.time_scale = 1000.0;
    diffuse::mlp_denoiser net(mc, 1);
    const double loss = diffuse::train_toy_vp(net, cfg);
    CHECK(loss < 0.35);
    const std::size_t n = 1000;
    const auto held = diffuse::toy_sample(cfg.dataset, n, 777);
    const auto dirs = diffuse::random_directions(100, 2, 9);
    // The floor: the mean distance between independent data samples of this size (one pair alone
    // fluctuates by a factor of two).
    double floor = 0;
    for (std::uint64_t k = 0; k < 8; ++k) {
        const auto a = diffuse::toy_sample(cfg.dataset, n, 1000 + 2 * k), b = diffuse::toy_sample(cfg.dataset, n, 1001 + 2 * k);
        floor += diffuse::sliced_wasserstein(diffuse::batched(a, n), diffuse::batched(b, n), dirs) / 8;
    }
    auto network = [&](diffuse::tensor_view<const double> x, const diffuse::model_cond& c, diffuse::tensor_view<double> o) {
        net(x, c.t, o);
    };
    const diffuse::vp_sde sde;
    auto model = diffuse::model(network, diffuse::prediction::epsilon, diffuse::continuous_time<diffuse::vp_sde>{sde});
    std::vector<double> ac(1000);
    for (std::size_t i = 0; i < 1000; ++i) ac[i] = std::pow(sde.marginal(double(i + 1) / 1000.0).mean_coef, 2);
    std::vector<std::int64_t> ts(50);
    for (std::size_t i = 0; i < 50; ++i) ts[i] = std::int64_t(std::llround(999.0 * double(49 - i) / 49.0));
    std::vector<double> x(2 * n);
    diffuse::fill_normal(diffuse::batched(x, n), 3, 0);
    diffuse::ddim_options o;
    o.clip_sample = false;
    diffuse::sample_ddim(model, diffuse::batched(x, n), ac, diffuse::discrete_grid(ts), o);
    const double d = diffuse::sliced_wasserstein(diffuse::batched(x, n), diffuse::batched(held, n), dirs);
    // pure noise N(0, I) is about 0.3 away; two data samples ~0.04
    INFO("SW " << d << ", floor " << floor);
    CHECK(d < 3.0 * floor);
    // Predictor–corrector as the quickstart runs it (score_sde's VP setting, batch-mean Langevin step).
    {
        const diffuse::vp_sde pc_sde(0.1, 20.0, 250);
        auto pc_model = diffuse::model(network, diffuse::prediction::epsilon, diffuse::continuous_time<diffuse::vp_sde>{pc_sde});
        std::vector<double> y(2 * n);
        diffuse::sample_prior(pc_sde, diffuse::batched(y, n), 7);
        diffuse::sample_pc(pc_model, diffuse::batched(y, n), pc_sde, diffuse::time_grid(diffuse::score_sde_time_grid(pc_sde)),
                           {}, diffuse::counter_noise{8});
        const double dpc = diffuse::sliced_wasserstein(diffuse::batched(y, n), diffuse::batched(held, n), dirs);
        INFO("PC SW " << dpc << ", floor " << floor);
        CHECK(dpc < 3.0 * floor);
    }
    const auto noise = [&] {
        std::vector<double> z(2 * n);
        diffuse::fill_normal(diffuse::batched(z, n), 5, 0);
        return z;
    }();
    CHECK(diffuse::sliced_wasserstein(diffuse::batched(noise, n), diffuse::batched(held, n), dirs) > 3.0 * floor);
    CHECK_THROWS_AS(diffuse::parse_toy_dataset("circles"), diffuse::error);
}

TEST_CASE("encode_png writes a valid stored-deflate PNG", "[train][png]") {
    std::vector<unsigned char> rgb(3 * 2 * 2, 255);
    const auto png = diffuse::io::encode_png(2, 2, rgb);
    REQUIRE(png.size() > 8);
    CHECK(png[1] == 'P');
    // IHDR CRC of a 2x2 RGB image is fixed: 0xfd d4 9a 73
    CHECK(png[29] == 0xfd);
    CHECK(png[30] == 0xd4);
    CHECK(png[31] == 0x9a);
    CHECK(png[32] == 0x73);
    CHECK_THROWS_WITH(diffuse::io::encode_png(3, 2, rgb), Contains("rgb has 12 bytes"));
}
