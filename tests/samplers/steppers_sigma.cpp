// The σ-space steppers of samplers/euler.hpp: pull, push, copy and one-call give the same bits, with churn,
// ancestral noise, recorded noise and a per-sample grid; and the two-point-grid trap of the one-call form
// (fresh noise every call) is gone when a stepper is driven step by step.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/euler.hpp"
#include "stepper_support.hpp"

using namespace diffuse;

namespace {

template <class T>
void sigma_family(const time_grid& grid, std::size_t B) {
    const std::size_t D = 6;
    const auto x0 = stepper_check::initial_state<T>(B, D, grid(0, 0));
    auto model = [&] { return analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{}); };
    const batch_shape shape{B, D};
    churn_options churn;
    churn.s_churn = 2.0;
    churn.s_tmin = 0.1;
    const ancestral_options anc{0.8, 1.1};
    const counter_noise noise{7, 3};
    using stepper_check::check_modes;
    check_modes("euler", [&] { return euler_stepper<T>(shape, grid, churn, noise); }, model,
                [&](auto& m, tensor_view<T> x) { sample_euler(m, x, grid, churn, noise); }, x0, B);
    check_modes("heun", [&] { return heun_stepper<T>(shape, grid, churn, noise); }, model,
                [&](auto& m, tensor_view<T> x) { sample_heun(m, x, grid, churn, noise); }, x0, B);
    check_modes("dpm_2", [&] { return dpm_2_stepper<T>(shape, grid, churn, noise); }, model,
                [&](auto& m, tensor_view<T> x) { sample_dpm_2(m, x, grid, churn, noise); }, x0, B);
    check_modes("euler_ancestral", [&] { return euler_ancestral_stepper<T>(shape, grid, anc, noise); }, model,
                [&](auto& m, tensor_view<T> x) { sample_euler_ancestral(m, x, grid, anc, noise); }, x0, B);
    check_modes("dpm_2_ancestral", [&] { return dpm_2_ancestral_stepper<T>(shape, grid, anc, noise); }, model,
                [&](auto& m, tensor_view<T> x) { sample_dpm_2_ancestral(m, x, grid, anc, noise); }, x0, B);
    // recorded noise replays in draw order through a stepper as through the one-call form
    std::vector<double> rec(64 * B * D);
    for (std::size_t i = 0; i < rec.size(); ++i) rec[i] = double(i % 13) / 6.0 - 1.0;
    const recorded_noise recorded(rec, B * D);
    check_modes("euler_ancestral recorded", [&] { return euler_ancestral_stepper<T, const recorded_noise&>(shape, grid, anc, recorded); },
                model, [&](auto& m, tensor_view<T> x) { sample_euler_ancestral(m, x, grid, anc, recorded); }, x0, B);
}

}  // namespace

TEST_CASE("sigma steppers: pull, push, copies and one-call give the same bits", "[steppers][sigma]") {
    sigma_family<double>(time_grid({10.0, 4.0, 1.5, 0.6, 0.2, 0.05, 0.0}), 3);
    sigma_family<float>(time_grid({10.0, 4.0, 1.5, 0.6, 0.2, 0.05}), 2);
    sigma_family<double>(time_grid({8.0, 3.0, 1.0, 0.3, 0.0, 6.0, 2.0, 0.7, 0.1, 0.0}, 2), 2);  // per-sample rows
}

TEST_CASE("sigma steppers: stepping on two-point grids is not the workaround; the stepper keeps its draws",
          "[steppers][sigma]") {
    // The one-call form on each interval separately restarts the draw counter (draw 0 every call): a
    // different run from one call over the whole grid. A stepper driven step by step is that one call.
    const std::vector<double> sig{10.0, 4.0, 1.5, 0.6, 0.0};
    const std::size_t B = 2, D = 5;
    auto m = analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{});
    const auto x0 = stepper_check::initial_state<double>(B, D, sig[0]);
    std::vector<double> whole = x0, piecewise = x0, stepped = x0;
    sample_euler_ancestral(m, batched(whole, B), time_grid(sig));
    for (std::size_t i = 0; i + 1 < sig.size(); ++i)
        sample_euler_ancestral(m, batched(piecewise, B), time_grid({sig[i], sig[i + 1]}));
    euler_ancestral_stepper<double> s({B, D}, time_grid(sig));
    while (!s.done()) s.step(m, batched(stepped, B));
    CHECK(stepper_check::same_bits(stepped, whole));
    CHECK_FALSE(stepper_check::same_bits(piecewise, whole));
}

TEST_CASE("sigma steppers: a model error names the sampler and step once, and the stepper refuses to go on",
          "[steppers][sigma]") {
    const std::size_t B = 1, D = 3;
    int calls = 0;
    auto net = [&calls](tensor_view<const double> x, const model_cond&, tensor_view<double> out) {
        const bool broken = ++calls > 4;  // Heun: two calls a step, so step 2 fails
        for (std::size_t i = 0; i < x.size(); ++i) out[i] = broken ? std::nan("") : 0.5 * x[i];
    };
    model m(net, prediction::sample, sigma_time{});
    std::vector<double> x(B * D, 1.0);
    heun_stepper<double> s({B, D}, time_grid({5.0, 2.0, 1.0, 0.5}));
    s.step(m, batched(x, B));
    s.step(m, batched(x, B));
    try {
        s.step(m, batched(x, B));
        FAIL("no error");
    } catch (const error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("sample_heun: step 2 (sigma = 1") != std::string::npos);
        CHECK(msg.find("diffuse:", 1) == std::string::npos);
        CHECK(msg.find("NaN") != std::string::npos);
    }
    CHECK_THROWS_AS(s.step(m, batched(x, B)), error);
}

TEST_CASE("sigma steppers: a grid that is not a descending σ grid is a named error", "[steppers][sigma]") {
    const auto message = [&](const time_grid& g) {
        try {
            euler_stepper<double> s({g.rows(), 2}, g);
        } catch (const error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message(time_grid({1.0, 2.0, 0.0})).find("sigma[1] = 2 is outside the accepted range <= sigma[0]") !=
          std::string::npos);
    CHECK(message(time_grid({3.0, -1.0, 0.0})).find("sigma[1] = -1") != std::string::npos);
    CHECK(message(time_grid({3.0, 1.0, -0.5})).find("sigma[2] = -0.5") != std::string::npos);
    CHECK(message(time_grid({3.0, 1.0, 0.0, 1.0, 2.0, 0.5}, 2)).find("sigma[1] of row 1 = 2") != std::string::npos);
    CHECK(message(time_grid({3.0, 1.0, 0.0, 2.0, 1.0, 0.5}, 2)) == "no error");
    CHECK(message(time_grid({3.0, 1.0, 0.0})) == "no error");
    CHECK(message(time_grid({3.0, 3.0, 0.0})) == "no error");  // a repeated point is a step of zero
    std::vector<double> nan_x{1.0, std::nan("")};
    auto m = analytic_model(stepper_check::mixture(2), prediction::sample, sigma_time{});
    try {
        sample_euler(m, batched(nan_x, 1), time_grid({3.0, 0.0}));
        FAIL("no error");
    } catch (const error& e) {
        CHECK(std::string(e.what()).find("initial x holds NaN or Inf (sample 0, element 1)") != std::string::npos);
    }
}
