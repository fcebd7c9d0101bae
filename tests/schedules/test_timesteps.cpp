// Tests of include/diffuse/schedules/timesteps.hpp against diffusers' DDIMScheduler.set_timesteps.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cstdint>
#include <string>

#include "diffuse/schedules/timesteps.hpp"
#include "golden_util.hpp"

using namespace diffuse;
using Catch::Matchers::Contains;

TEST_CASE("timestep spacings match diffusers exactly", "[schedules][timesteps][golden]") {
    const std::size_t cases[][2] = {{1000, 50}, {1000, 7}, {1000, 1000}, {1000, 1}, {50, 29}, {999, 13}, {7, 7}, {7, 3}};
    int configs = 0;
    for (auto sp : {timestep_spacing::leading, timestep_spacing::trailing, timestep_spacing::linspace}) {
        for (auto [T, N] : cases) {
            for (std::int64_t off : {0, 1}) {
                if (off == 1 && sp != timestep_spacing::leading) continue;
                if (sp == timestep_spacing::leading && static_cast<std::int64_t>((N - 1) * (T / N)) + off > std::int64_t(T) - 1)
                    continue;
                const std::string name = "ts_" + std::string(to_string(sp)) + "_T" + std::to_string(T) + "_N" +
                                         std::to_string(N) + "_o" + std::to_string(off);
                INFO(name);
                const auto g = sched_test::load(name).as<std::int64_t>();
                const auto t = discrete_timesteps(T, N, sp, off);
                REQUIRE(t.size() == N);
                // Upstream trailing spacing yields N + 1 values for some (T, N), the extra one being -1.
                if (g.size() == N + 1) {
                    CHECK(sp == timestep_spacing::trailing);
                    CHECK(g.back() == -1);
                }
                CHECK(std::vector<std::int64_t>(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(N)) == t);
                ++configs;
            }
        }
    }
    CHECK(configs >= 25);
}

TEST_CASE("previous timestep: next entry by default, fixed stride for parity", "[schedules][timesteps]") {
    const auto t = discrete_timesteps(1000, 7, timestep_spacing::linspace);  // 999 832 666 500 333 167 0
    REQUIRE(t.front() == 999);
    CHECK(previous_timestep(t, 0, 1000) == t[1]);
    CHECK(previous_timestep(t, 6, 1000) == -1);
    // upstream DDIM: t - T // N = 999 - 142 = 857, not the next entry 832
    CHECK(previous_timestep(t, 0, 1000, prev_timestep_rule::fixed_stride) == 857);
    CHECK(previous_timestep(t, 6, 1000, prev_timestep_rule::fixed_stride) == -1);
    const auto lead = discrete_timesteps(1000, 50, timestep_spacing::leading, 1);
    for (std::size_t i = 0; i + 1 < lead.size(); ++i)
        CHECK(previous_timestep(lead, i, 1000, prev_timestep_rule::fixed_stride) == previous_timestep(lead, i, 1000));
    const std::vector<double> ac{0.9, 0.5, 0.1};
    CHECK(final_alpha_cumprod(ac, true) == 1.0);
    CHECK(final_alpha_cumprod(ac, false) == 0.9);
    CHECK(alpha_cumprod_prev(ac, -1, false) == 0.9);
    CHECK(alpha_cumprod_prev(ac, 2) == 0.1);
}

TEST_CASE("img2img start index", "[schedules][timesteps]") {
    auto s = img2img_start_index(50, 0.75);
    CHECK(s.init_timestep == 37);
    CHECK(s.t_start == 13);
    CHECK(s.start_index == 13);
    s = img2img_start_index(50, 0.75, 2);
    CHECK(s.start_index == 26);
    CHECK(img2img_start_index(10, 1.0).t_start == 0);
    CHECK(img2img_start_index(10, 0.0).t_start == 10);
    CHECK(img2img_start_index(3, 0.7).init_timestep == 2);  // int(2.0999999999999996) == 2
}

TEST_CASE("timesteps are descending and inside [0, T-1]", "[schedules][timesteps][property]") {
    rc::prop("every spacing", [] {
        const auto T = *rc::gen::inRange<std::size_t>(1, 3000);
        const auto N = *rc::gen::inRange<std::size_t>(1, T + 1);
        const auto sp = *rc::gen::element(timestep_spacing::leading, timestep_spacing::trailing, timestep_spacing::linspace);
        const auto t = discrete_timesteps(T, N, sp, 0);
        RC_ASSERT(t.size() == N);
        for (std::size_t i = 0; i < N; ++i) {
            RC_ASSERT(t[i] >= 0);
            RC_ASSERT(t[i] <= static_cast<std::int64_t>(T) - 1);
            if (i) RC_ASSERT(t[i] < t[i - 1]);
        }
    });
}

TEST_CASE("timesteps reject invalid arguments", "[schedules][timesteps][errors]") {
    CHECK_THROWS_WITH(discrete_timesteps(1000, 0), Contains("num_inference_steps") && Contains("= 0"));
    CHECK_THROWS_WITH(discrete_timesteps(100, 101), Contains("num_inference_steps") && Contains("101") &&
                                                        Contains("num_train_timesteps = 100"));
    CHECK_THROWS_WITH(discrete_timesteps(0, 1), Contains("num_train_timesteps") && Contains("= 0"));
    CHECK_THROWS_WITH(discrete_timesteps(1000, 1000, timestep_spacing::leading, 1),
                      Contains("steps_offset") && Contains("= 1"));
    CHECK_THROWS_WITH(discrete_timesteps(1000, 10, timestep_spacing::leading, -1), Contains("steps_offset"));
    CHECK_THROWS_WITH(parse_timestep_spacing("uniform"), Contains("timestep_spacing") && Contains("uniform"));
    CHECK_THROWS_WITH(img2img_start_index(10, 1.5), Contains("strength") && Contains("1.5") && Contains("[0, 1]"));
    CHECK_THROWS_WITH(img2img_start_index(10, -0.1), Contains("strength") && Contains("-0.1"));
    CHECK_THROWS_WITH(img2img_start_index(0, 0.5), Contains("num_inference_steps"));
    const std::vector<std::int64_t> t{10, 5};
    CHECK_THROWS_WITH(previous_timestep(t, 2, 20), Contains("index") && Contains("= 2"));
    const std::vector<double> ac{0.9};
    CHECK_THROWS_WITH(alpha_cumprod_prev(ac, 1), Contains("prev_t") && Contains("= 1"));
}
