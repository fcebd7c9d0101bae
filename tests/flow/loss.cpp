// The flow-matching training loss (losses/flow_matching.hpp) against diffusers' training utilities
// (tests/golden/flow/training.json from tools/gen_sampler_golden_flow.py), its gradient, and the level draws.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/losses/flow_matching.hpp"
#include "diffuse/schedules/flow.hpp"

namespace {
const diffuse::io::json_value& training() {
    static const auto v = diffuse::io::read_json_file(std::string(DIFFUSE_GOLDEN_DIR) + "/flow/training.json");
    return v;
}
std::vector<double> numbers(const diffuse::io::json_value& a) {
    std::vector<double> out;
    for (const auto& e : a.as_array()) out.push_back(e.as_number());
    return out;
}
}  // namespace

TEST_CASE("level densities equal compute_density_for_timestep_sampling on the same draws", "[flow][losses][golden]") {
    std::size_t seen[3] = {0, 0, 0};
    for (const auto& c : training().at("density").as_array()) {
        const auto scheme = diffuse::parse_flow_level_density(c.at("scheme").as_string());
        const double mean = c.at("logit_mean").as_number(), std = c.at("logit_std").as_number(), scale = c.at("mode_scale").as_number();
        const auto draw = numbers(c.at("draw")), u = numbers(c.at("u"));
        ++seen[std::size_t(scheme)];
        for (std::size_t i = 0; i < u.size(); ++i) {
            double got = draw[i];
            if (scheme == diffuse::flow_level_density::logit_normal)
                got = diffuse::logit_normal_level((draw[i] - mean) / std, mean, std);  // torch.normal(mean, std) = mean + std·n
            else if (scheme == diffuse::flow_level_density::mode)
                got = diffuse::mode_level(draw[i], scale);
            INFO(c.at("scheme").as_string() << " draw " << i);
            CHECK(got == Approx(u[i]).margin(2e-7));  // torch computes in float32
        }
    }
    CHECK(seen[0] > 0);
    CHECK(seen[1] > 0);
    CHECK(seen[2] > 0);
}

TEST_CASE("loss weightings equal compute_loss_weighting_for_sd3", "[flow][losses][golden]") {
    const auto& w = training().at("weighting");
    const auto sig = numbers(w.at("sigmas"));
    for (const char* scheme : {"sigma_sqrt", "cosmap", "none"}) {
        const auto got = diffuse::flow_loss_weights(diffuse::parse_flow_loss_weighting(scheme), sig);
        const auto want = numbers(w.at(scheme));
        for (std::size_t i = 0; i < sig.size(); ++i) {
            INFO(scheme << " sigma " << sig[i]);
            CHECK(got[i] == Approx(want[i]).epsilon(3e-7));
        }
    }
    CHECK(diffuse::flow_loss_weight(diffuse::flow_loss_weighting::cosmap, 0.5) == Approx(4.0 / M_PI));  // 2/(π·½)
    CHECK_THROWS_AS(diffuse::flow_loss_weight(diffuse::flow_loss_weighting::sigma_sqrt, 0.0), diffuse::error);
    CHECK_THROWS_AS(diffuse::flow_loss_weight(diffuse::flow_loss_weighting::none, 1.5), diffuse::error);
    CHECK_THROWS_AS(diffuse::parse_flow_loss_weighting("sqrt"), diffuse::error);
}

TEST_CASE("a draw picks the training grid's entry ⌊u·T⌋", "[flow][losses][golden]") {
    for (const auto& c : training().at("levels").as_array()) {
        diffuse::flow_match_config cfg;
        cfg.shift = c.at("shift").as_number();
        const auto train = diffuse::flow_training_sigmas(cfg);
        const auto u = numbers(c.at("u")), want = numbers(c.at("sigmas"));
        const auto got = diffuse::flow_training_levels(u, train);
        for (std::size_t i = 0; i < u.size(); ++i) CHECK(got[i] == want[i]);
    }
    const std::vector<double> train{1.0, 0.5}, edge{-0.3, 0.0, 0.49, 0.5, 0.999, 1.2};
    CHECK(diffuse::flow_training_levels(edge, train) == std::vector<double>{1.0, 1.0, 1.0, 0.5, 0.5, 0.5});
}

TEST_CASE("the flow-matching loss: diffusers' value, target ε − x₀ and its gradient", "[flow][losses]") {
    const auto& l = training().at("loss");
    const std::size_t B = std::size_t(l.at("batch").as_number());
    const auto x0 = numbers(l.at("x0")), eps = numbers(l.at("noise")), pred = numbers(l.at("pred"));
    const auto sig = numbers(l.at("sigmas")), w = numbers(l.at("weights"));
    std::vector<double> grad(x0.size()), noisy(x0.size());
    const double loss = diffuse::flow_matching_loss(diffuse::batched(pred, B), diffuse::batched(x0, B), diffuse::batched(eps, B),
                                                    diffuse::flow_loss_weights(diffuse::flow_loss_weighting::cosmap, sig),
                                                    diffuse::batched(grad, B));
    CHECK(loss == Approx(l.at("loss").as_number()).epsilon(1e-12));
    diffuse::flow_matching_noisy(diffuse::batched(x0, B), diffuse::batched(eps, B), sig, diffuse::batched(noisy, B));
    const auto want_noisy = numbers(l.at("noisy"));
    for (std::size_t i = 0; i < noisy.size(); ++i) CHECK(noisy[i] == Approx(want_noisy[i]).margin(1e-14));
    // finite differences of L in the output
    const std::size_t D = x0.size() / B;
    for (std::size_t i = 0; i < pred.size(); i += 5) {
        auto p = pred, m = pred;
        p[i] += 1e-6;
        m[i] -= 1e-6;
        std::vector<double> g2(grad.size());
        const auto lw = diffuse::flow_loss_weights(diffuse::flow_loss_weighting::cosmap, sig);
        const double lp = diffuse::flow_matching_loss(diffuse::batched(p, B), diffuse::batched(x0, B), diffuse::batched(eps, B), lw, diffuse::batched(g2, B));
        const double lm = diffuse::flow_matching_loss(diffuse::batched(m, B), diffuse::batched(x0, B), diffuse::batched(eps, B), lw, diffuse::batched(g2, B));
        CHECK(grad[i] == Approx((lp - lm) / 2e-6).epsilon(1e-6));
        CHECK(grad[i] == Approx(2.0 * w[i / D] * (pred[i] - (eps[i] - x0[i])) / double(B * D)).epsilon(1e-9));
    }
    // the exact velocity has zero loss
    std::vector<double> target(x0.size());
    for (std::size_t i = 0; i < target.size(); ++i) target[i] = eps[i] - x0[i];
    CHECK(diffuse::flow_matching_loss(diffuse::batched(target, B), diffuse::batched(x0, B), diffuse::batched(eps, B), {},
                                      diffuse::batched(grad, B)) == 0.0);
    // shapes and aliasing
    std::vector<double> short_grad(x0.size() - D);
    CHECK_THROWS_AS(diffuse::flow_matching_loss(diffuse::batched(pred, B), diffuse::batched(x0, B), diffuse::batched(eps, B), {},
                                                diffuse::batched(short_grad, B - 1)), diffuse::error);
    auto same = pred;
    CHECK_THROWS_WITH(diffuse::flow_matching_loss(diffuse::batched(same, B), diffuse::batched(x0, B), diffuse::batched(eps, B), {},
                                                  diffuse::batched(same, B)), Catch::Contains("overlap"));
    const std::vector<double> bad_sigma{0.5, 1.5, 0.1, 0.2};
    CHECK_THROWS_WITH(diffuse::flow_matching_noisy(diffuse::batched(x0, B), diffuse::batched(eps, B), bad_sigma, diffuse::batched(noisy, B)),
                      Catch::Contains("sigma[1]"));
}

TEST_CASE("level draws: seeded, in range, with the densities' medians", "[flow][losses]") {
    for (auto density : {diffuse::flow_level_density::uniform, diffuse::flow_level_density::logit_normal, diffuse::flow_level_density::mode}) {
        diffuse::flow_level_options o;
        o.density = density;
        o.logit_mean = 0.4;
        diffuse::host_rng r1(11), r2(11), r3(12);
        const auto a = diffuse::sample_flow_levels(o, 4001, r1), b = diffuse::sample_flow_levels(o, 4001, r2),
                   c = diffuse::sample_flow_levels(o, 4001, r3);
        CHECK(a == b);
        CHECK(a != c);
        auto sorted = a;
        std::sort(sorted.begin(), sorted.end());
        CHECK(sorted.front() >= 0.0);
        CHECK(sorted.back() <= 1.0);
        // medians: uniform ½; logit-normal sigmoid(mean); mode with scale 1.29 at r = ½: 1 − ½ − 1.29·(½ − 1 + ½) = ½
        const double median = sorted[2000];
        const double want = density == diffuse::flow_level_density::logit_normal ? 1.0 / (1.0 + std::exp(-0.4)) : 0.5;
        CHECK(median == Approx(want).margin(0.03));
    }
    diffuse::flow_level_options bad;
    bad.logit_std = -1;
    diffuse::host_rng r(0);
    CHECK_THROWS_AS(diffuse::sample_flow_levels(bad, 3, r), diffuse::error);
    CHECK(diffuse::mode_level(0.0) == 1.0);
    CHECK(diffuse::mode_level(1.0) == Approx(0.0).margin(1e-15));
}
