// Flow-matching σ grids (schedules/flow.hpp) against diffusers' FlowMatchEulerDiscreteScheduler and
// FlowMatchHeunDiscreteScheduler over configurations drawn by tools/gen_sampler_golden_flow.py
// (tests/golden/flow/schedules.json), closed forms of the shifts, and the beta quantile.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <string>
#include <vector>

#include "diffuse/io/json.hpp"
#include "diffuse/schedules/flow.hpp"

namespace {
const diffuse::io::json_value& schedules() {
    static const auto v = diffuse::io::read_json_file(std::string(DIFFUSE_GOLDEN_DIR) + "/flow/schedules.json");
    return v;
}
std::vector<double> numbers(const diffuse::io::json_value& a) {
    std::vector<double> out;
    for (const auto& e : a.as_array()) out.push_back(e.as_number());
    return out;
}
bool flag(const diffuse::io::json_value& c, const char* key) {
    const auto* v = c.find(key);
    return v && v->as_bool();
}
// Equal as float32 values, or within 2 float32 ulps (numpy's float64 arithmetic vs ours before the cast).
void check_f32(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO(what << "[" << i << "]: got " << got[i] << ", reference " << want[i]);
        CHECK(std::abs(got[i] - want[i]) <= 2.5e-7 * std::max(1.0, std::abs(want[i])));
    }
}
}  // namespace

TEST_CASE("flow_match_sigmas equals diffusers' set_timesteps over drawn configurations", "[flow][schedule][golden]") {
    const auto& cases = schedules().at("cases").as_array();
    REQUIRE(cases.size() >= 100);
    std::size_t dynamic = 0, linear = 0, terminal = 0, karras = 0, expo = 0, beta = 0, inverted = 0, custom = 0, shifted = 0;
    for (std::size_t k = 0; k < cases.size(); ++k) {
        const auto& c = cases[k];
        diffuse::flow_match_config cfg;
        cfg.num_train_timesteps = std::size_t(c.at("num_train_timesteps").as_number());
        if (const auto* s = c.find("shift")) cfg.shift = s->as_number(), ++shifted;
        cfg.use_dynamic_shifting = flag(c, "use_dynamic_shifting");
        if (const auto* t = c.find("time_shift_type")) cfg.time_shift_type = diffuse::parse_time_shift_kind(t->as_string());
        if (const auto* t = c.find("shift_terminal")) cfg.shift_terminal = t->as_number(), ++terminal;
        if (flag(c, "use_karras_sigmas")) cfg.sigma_spacing = diffuse::flow_sigma_spacing::karras, ++karras;
        if (flag(c, "use_exponential_sigmas")) cfg.sigma_spacing = diffuse::flow_sigma_spacing::exponential, ++expo;
        if (flag(c, "use_beta_sigmas")) cfg.sigma_spacing = diffuse::flow_sigma_spacing::beta, ++beta;
        cfg.invert_sigmas = flag(c, "invert_sigmas");
        std::optional<double> mu;
        if (const auto* m = c.find("mu")) mu = m->as_number();
        std::vector<double> user;
        if (const auto* s = c.find("sigmas")) user = numbers(*s), ++custom;
        dynamic += cfg.use_dynamic_shifting;
        linear += cfg.use_dynamic_shifting && cfg.time_shift_type == diffuse::time_shift_kind::linear;
        inverted += cfg.invert_sigmas;
        INFO("case " << k);
        const auto got = diffuse::flow_match_sigmas(cfg, std::size_t(c.at("n").as_number()), mu, user);
        check_f32(got.sigmas, numbers(c.at("sigmas_out")), "sigmas");
        check_f32(got.timesteps, numbers(c.at("timesteps_out")), "timesteps");
        auto train_cfg = cfg;
        train_cfg.invert_sigmas = false;
        auto train = diffuse::flow_training_sigmas(train_cfg);
        train.resize(5);
        check_f32(train, numbers(c.at("training_sigmas_head")), "training sigmas");
    }
    // every option the generator claims was switched on in some drawn case
    CHECK(dynamic > 0);
    CHECK(linear > 0);
    CHECK(dynamic > linear);
    CHECK(terminal > 0);
    CHECK(karras > 0);
    CHECK(expo > 0);
    CHECK(beta > 0);
    CHECK(inverted > 0);
    CHECK(custom > 0);
    CHECK(shifted > 0);
}

TEST_CASE("FlowMatchHeun's grid is the static-shift grid with its inner points doubled", "[flow][schedule][golden]") {
    for (const auto& c : schedules().at("heun").as_array()) {
        diffuse::flow_match_config cfg;
        cfg.shift = c.at("shift").as_number();
        const std::size_t n = std::size_t(c.at("n").as_number());
        const auto g = diffuse::flow_match_sigmas(cfg, n);
        std::vector<double> doubled{g.sigmas[0]}, times{g.timesteps[0]};
        for (std::size_t i = 1; i < n; ++i) {
            doubled.insert(doubled.end(), {g.sigmas[i], g.sigmas[i]});
            times.insert(times.end(), {g.timesteps[i], g.timesteps[i]});
        }
        doubled.push_back(0.0);
        check_f32(doubled, numbers(c.at("sigmas_out")), "heun sigmas");
        check_f32(times, numbers(c.at("timesteps_out")), "heun timesteps");
    }
}

TEST_CASE("shifts: closed forms and properties", "[flow][schedule]") {
    CHECK(diffuse::shift_sigma(1.0, 3.0) == 1.0);
    CHECK(diffuse::shift_sigma(0.0, 3.0) == 0.0);
    CHECK(diffuse::shift_sigma(0.5, 3.0) == Approx(0.75));  // 1.5/(1 + 2·0.5)
    CHECK(diffuse::time_shift(diffuse::time_shift_kind::exponential, 0.0, 0.3) == Approx(0.3));  // e^0 = 1: identity
    CHECK(diffuse::time_shift(diffuse::time_shift_kind::linear, 1.0, 0.3) == Approx(0.3));
    // μ = log s makes the exponential time shift the static shift s
    CHECK(diffuse::time_shift(diffuse::time_shift_kind::exponential, std::log(3.0), 0.2) == Approx(diffuse::shift_sigma(0.2, 3.0)));
    CHECK(diffuse::calculate_shift(256) == Approx(0.5));
    CHECK(diffuse::calculate_shift(4096) == Approx(1.15));
    CHECK(diffuse::calculate_shift(2176) == Approx(0.825));
    rc::prop("the static shift is increasing in σ and maps [0, 1] onto itself", [] {
        const double s = *rc::gen::inRange(1, 1000) / 100.0, a = *rc::gen::inRange(0, 1000) / 1000.0;
        const double b = a + *rc::gen::inRange(1, 1000) / 1000.0 * (1.0 - a);
        const double sa = diffuse::shift_sigma(a, s), sb = diffuse::shift_sigma(b, s);
        RC_ASSERT(sa >= 0.0);
        RC_ASSERT(sb <= 1.0 + 1e-15);
        RC_ASSERT(sa < sb);
        RC_ASSERT(std::abs(diffuse::shift_sigma(sa, 1.0 / s) - a) < 1e-12);  // shift 1/s undoes shift s
    });
    rc::prop("a stretched grid ends at shift_terminal and keeps its first point's distance ratios", [] {
        diffuse::flow_match_config c;
        c.shift = 1 + *rc::gen::inRange(0, 500) / 100.0;
        c.shift_terminal = *rc::gen::inRange(1, 500) / 1000.0;
        const std::size_t n = *rc::gen::inRange(2, 40);
        const auto g = diffuse::flow_match_sigmas(c, n);
        RC_ASSERT(std::abs(g.sigmas[n - 1] - *c.shift_terminal) < 1e-6);
        RC_ASSERT(std::abs(g.sigmas[0] - 1.0) < 2e-7);  // diffusers' float32 shift of 1 may round to 1 + 2⁻²³
        for (std::size_t i = 0; i + 1 < n; ++i) RC_ASSERT(g.sigmas[i + 1] < g.sigmas[i]);
        RC_ASSERT(g.sigmas[n] == 0.0);
    });
}

TEST_CASE("beta_quantile inverts the regularised incomplete beta function", "[flow][schedule]") {
    CHECK(diffuse::beta_quantile(0.5, 0.6, 0.6) == Approx(0.5).margin(1e-15));  // symmetric
    CHECK(diffuse::beta_quantile(0.3, 1.0, 1.0) == Approx(0.3).margin(1e-15));  // Beta(1, 1) is uniform
    CHECK(diffuse::beta_quantile(0.25, 2.0, 1.0) == Approx(0.5).margin(1e-14));  // CDF x²
    CHECK(diffuse::beta_quantile(0.1, 0.6, 0.6) == Approx(0.03958440558878085).epsilon(1e-13));  // scipy.stats.beta.ppf
    rc::prop("the quantile is the first double where I_x(a, b) reaches q", [] {
        const double a = *rc::gen::inRange(5, 500) / 100.0, b = *rc::gen::inRange(5, 500) / 100.0;
        const double q = *rc::gen::inRange(1, 1000) / 1000.0;
        const double x = diffuse::beta_quantile(q, a, b);
        // x brackets q between adjacent doubles (where the CDF is steep one ulp of x moves I by more than 1e-12)
        RC_ASSERT(diffuse::detail::incomplete_beta(x, a, b) >= q - 1e-14);
        RC_ASSERT(diffuse::detail::incomplete_beta(std::nextafter(x, 0.0), a, b) <= q + 1e-14);
    });
}

TEST_CASE("flow schedule arguments are checked", "[flow][schedule]") {
    diffuse::flow_match_config c;
    CHECK_THROWS_AS(diffuse::flow_match_sigmas(c, 0), diffuse::error);
    c.use_dynamic_shifting = true;
    CHECK_THROWS_WITH(diffuse::flow_match_sigmas(c, 4), Catch::Contains("mu"));
    c.time_shift_type = diffuse::time_shift_kind::linear;
    CHECK_THROWS_AS(diffuse::flow_match_sigmas(c, 4, -1.0), diffuse::error);
    c = {};
    c.shift = 0;
    CHECK_THROWS_WITH(diffuse::flow_match_sigmas(c, 4), Catch::Contains("shift"));
    c = {};
    c.shift_terminal = 1.0;
    CHECK_THROWS_WITH(diffuse::flow_match_sigmas(c, 4), Catch::Contains("shift_terminal"));
    c = {};
    const std::vector<double> three{1.0, 0.5, 0.2}, bad{1.0, 1.5};
    CHECK_THROWS_WITH(diffuse::flow_match_sigmas(c, 4, std::nullopt, three), Catch::Contains("sigmas.size()"));
    CHECK_THROWS_WITH(diffuse::flow_match_sigmas(c, 2, std::nullopt, bad), Catch::Contains("sigmas[1]"));
    c.sigma_spacing = diffuse::flow_sigma_spacing::karras;  // one step: the range's one point, as diffusers
    CHECK(diffuse::flow_match_sigmas(c, 1).sigmas == std::vector<double>{1.0, 0.0});
    c = {};
    c.num_train_timesteps = 0;
    CHECK_THROWS_AS(diffuse::flow_training_sigmas(c), diffuse::error);
    CHECK_THROWS_AS(diffuse::beta_quantile(1.5, 0.6, 0.6), diffuse::error);
    CHECK_THROWS_AS(diffuse::calculate_shift(100, 256, 256), diffuse::error);
    CHECK_THROWS_AS(diffuse::parse_time_shift_kind("cubic"), diffuse::error);
}
