// The entry points of guidance/ check every shape and length before they write (cfg_model::predict,
// img2img_start, inpaint_observer), and an error re-thrown with their context says "diffuse:" once.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/guidance/cfg.hpp"
#include "diffuse/guidance/editing.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/timesteps.hpp"

using namespace diffuse;
using Catch::Contains;

namespace {
// A σ-space ε network: the conditional rows predict 0.1·x, the unconditional ones 0.3·x; NaN for the
// unconditional rows when `fail_unconditional`.
struct guided_net {
    int calls = 0;
    bool fail_unconditional = false;
    void operator()(tensor_view<const float> x, const model_cond& c, tensor_view<float> out) {
        ++calls;
        for (std::size_t b = 0; b < x.batch; ++b) {
            const bool u = !c.unconditional.empty() && c.unconditional[b] != 0;
            for (std::size_t j = 0; j < x.per_sample; ++j)
                out.sample(b)[j] = u && fail_unconditional ? std::numeric_limits<float>::quiet_NaN()
                                                           : (u ? 0.3f : 0.1f) * x.sample(b)[j];
        }
    }
};

std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}
}  // namespace

TEST_CASE("cfg_model::predict checks out, alpha, sigma and t against x before the network runs", "[guidance][shapes]") {
    constexpr std::size_t B = 256, D = 4;
    model inner(guided_net{}, prediction::epsilon, sigma_time{});
    cfg_model<decltype(inner)> g(inner, 7.5);
    std::vector<float> x(B * D, 1.0f), out(B * D), big(1024 * 4);
    const std::vector<double> ones(B, 1.0), sig(B, 0.5), short_list(B - 1, 0.5);
    const tensor_view<const float> xv{x.data(), B, D};
    const tensor_view<float> ov{out.data(), B, D};
    struct wrong_shape {
        std::size_t batch, per_sample;
    };
    for (const auto w : {wrong_shape{128, 4}, wrong_shape{512, 4}, wrong_shape{256, 2}, wrong_shape{256, 8}}) {
        const std::string shape = std::to_string(w.batch) + " x " + std::to_string(w.per_sample);
        INFO(shape);
        CHECK_THROWS_WITH(g.predict(xv, ones, sig, prediction::epsilon, tensor_view<float>{big.data(), w.batch, w.per_sample}),
                          Contains("diffuse: cfg_model::predict: out is " + shape + " but x is 256 x 4"));
    }
    CHECK_THROWS_WITH(g.predict(xv, short_list, sig, prediction::epsilon, ov),
                      Contains("cfg_model::predict: alpha has 255 values"));
    CHECK_THROWS_WITH(g.predict(xv, ones, short_list, prediction::epsilon, ov),
                      Contains("cfg_model::predict: sigma has 255 values"));
    CHECK_THROWS_WITH(g.predict(xv, ones, sig, prediction::epsilon, ov, short_list),
                      Contains("cfg_model::predict: t_net has 255 values"));
    CHECK_THROWS_WITH(g.predict(xv, ones, sig, prediction::sample, tensor_view<float>{x.data(), B, D}),
                      Contains("out and x share memory"));
    CHECK(inner.net().calls == 0);

    g.predict(xv, ones, sig, prediction::epsilon, ov);
    CHECK(inner.net().calls == 1);
    CHECK(out[0] == Approx(0.3 + 7.5 * (0.1 - 0.3)));  // û + w·(ĉ − û)
}

TEST_CASE("a network error inside cfg_model names the doubled batch and says diffuse: once", "[guidance][errors]") {
    constexpr std::size_t B = 2, D = 3;
    model inner(guided_net{0, true}, prediction::epsilon, sigma_time{});
    cfg_model<decltype(inner)> g(inner, 3.0);
    std::vector<float> x(B * D, 1.0f), out(B * D);
    const std::vector<double> ones(B, 1.0), sig(B, 0.5);
    try {
        g.predict(batched(x, B), ones, sig, prediction::epsilon, batched(out, B));
        FAIL("no error");
    } catch (const error& e) {
        const std::string m = e.what();
        CHECK(count(m, "diffuse:") == 1);
        CHECK_THAT(m, Contains("cfg_model::predict: in the doubled batch the network saw (2 x 2 samples") &&
                          Contains("model::predict: the network returned NaN or Inf for sample 2"));
    }
    // ... and through a sampler, which adds the step
    try {
        sample_euler(g, batched(x, B), time_grid(karras_sigmas(3, 0.1, 10.0)));
        FAIL("no error");
    } catch (const error& e) {
        const std::string m = e.what();
        CHECK(count(m, "diffuse:") == 1);
        CHECK_THAT(m, Contains("sample_euler: step 0") && Contains("cfg_model::predict") && Contains("NaN or Inf"));
    }
}

TEST_CASE("img2img_start and inpaint_observer check image, noise, known and mask against x", "[guidance][shapes]") {
    constexpr std::size_t B = 4, D = 3;
    const auto sched = discrete_schedule::from_config("linear", 1000);
    const time_grid grid = img2img_grid(discrete_timesteps(1000, 10), std::vector<double>{0.5});
    std::vector<double> x(B * D), image(B * D, 0.5), noise(B * D, 0.1), small(2 * D), large(8 * D);
    CHECK_THROWS_WITH(img2img_start(batched(x, B), batched(small, 2), batched(noise, B), sched.alphas_cumprod, grid),
                      Contains("diffuse: img2img_start: image is 2 x 3 but x is 4 x 3"));
    CHECK_THROWS_WITH(img2img_start(batched(x, B), batched(large, 8), batched(noise, B), sched.alphas_cumprod, grid),
                      Contains("img2img_start: image is 8 x 3 but x is 4 x 3"));
    CHECK_THROWS_WITH(img2img_start(batched(x, B), batched(image, B), batched(small, 2), sched.alphas_cumprod, grid),
                      Contains("img2img_start: noise is 2 x 3 but x is 4 x 3"));
    CHECK_THROWS_WITH(img2img_start(batched(x, B), batched(image, B), batched(large, 4), sched.alphas_cumprod, grid),
                      Contains("img2img_start: noise is 4 x 6 but x is 4 x 3"));
    img2img_start(batched(x, B), batched(image, B), batched(noise, B), sched.alphas_cumprod, grid);

    std::vector<double> mask(B * D, 1.0);
    const std::vector<double> den(B * D);
    const step_info<double> info{0, grid.steps(), {}, tensor_view<const double>(batched(x, B)),
                                 tensor_view<const double>{den.data(), B, D}};
    inpaint_observer<double> wrong_known{batched(x, B), batched(small, 2), batched(mask, B), sched.alphas_cumprod, &grid};
    CHECK_THROWS_WITH(wrong_known(info), Contains("inpaint_observer: known is 2 x 3 but x is 4 x 3"));
    inpaint_observer<double> wrong_mask{batched(x, B), batched(image, B), batched(large, 4), sched.alphas_cumprod, &grid};
    CHECK_THROWS_WITH(wrong_mask(info), Contains("inpaint_observer: mask is 4 x 6 but x is 4 x 3"));
    inpaint_observer<double> right{batched(x, B), batched(image, B), batched(mask, B), sched.alphas_cumprod, &grid};
    right(info);
}
