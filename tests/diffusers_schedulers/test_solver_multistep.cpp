// diffusers' multistep solver schedulers (samplers/dpm_solver_multistep.hpp, samplers/deis.hpp) and their table
// (schedules/solver_sigmas.hpp): the stepper driving modes over configurations drawn at random, closed-form runs
// (a constant prediction is integrated exactly by every order), the table against the reference's recorded
// training tables, and every argument check. Parity with diffusers itself: tests/golden/samplers/solver_multistep
// (tests/samplers/test_parity.cpp).
// The EDM schedulers (EDMDPMSolverMultistepScheduler: the same stepper on a σ-space table; EDMEulerScheduler: the
// Euler stepper with diffusers' churn order) with the EDM σ table (schedules/edm.hpp) and the EDM-preconditioned
// model (samplers/model.hpp edm_time) are tested here too; their parity: tests/golden/samplers/edm.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../samplers/stepper_support.hpp"
#include "diffuse/adapt/std.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/deis.hpp"
#include "diffuse/samplers/dpm_solver_multistep.hpp"
#include "diffuse/samplers/dpm_solver_singlestep.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/schedules/edm.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/solver_sigmas.hpp"

using namespace diffuse;

namespace {

std::vector<double> alphas(const std::string& beta = "linear", std::size_t T = 1000) {
    discrete_schedule_config c;
    c.beta_schedule = beta;
    c.num_train_timesteps = T;
    if (beta == "scaled_linear") {
        c.beta_start = 0.00085;
        c.beta_end = 0.012;
    }
    return discrete_schedule::from_config(c).alphas_cumprod;
}

// A network that predicts the same value everywhere (x̂₀ = c or ε̂ = c, by the model's declaration).
struct constant_network {
    double c;
    template <class T>
    void operator()(tensor_view<const T>, const model_cond&, tensor_view<T> out) const {
        for (std::size_t i = 0; i < out.size(); ++i) out.data[i] = T(c);
    }
};
// Noise that is all zeros: the SDE variants then follow their mean.
struct zero_noise {
    template <class V>
    void operator()(const V& out, std::uint64_t) const {
        for (std::size_t i = 0; i < out.size(); ++i) out.data[i] = 0;
    }
};

solver_schedule_options drawn_table(std::mt19937_64& g, bool deis) {
    solver_schedule_options t;
    t.spacing = std::array{timestep_spacing::linspace, timestep_spacing::leading, timestep_spacing::trailing}[g() % 3];
    t.steps_offset = t.spacing == timestep_spacing::leading ? std::int64_t(g() % 2) : 0;
    t.sigma_spacing = std::array{solver_sigma_spacing::training, solver_sigma_spacing::karras, solver_sigma_spacing::exponential,
                                 solver_sigma_spacing::lu_lambdas}[g() % (deis ? 3 : 4)];
    t.final_sigma = deis ? final_sigma_rule::repeat_last_spaced : (g() % 2 ? final_sigma_rule::sigma_min : final_sigma_rule::zero);
    return t;
}

}  // namespace

TEMPLATE_TEST_CASE("solver multistep steppers: pull, push and copies give the same bits over drawn configurations",
                   "[diffusers_schedulers][stepper]", float, double) {
    using T = TestType;
    const std::size_t B = 2, D = 6;
    const auto ac = alphas("scaled_linear");
    const auto x0 = stepper_check::initial_state<T>(B, D);
    const batch_shape shape{B, D};
    // ε-networks: push mode states ε̂ at the timestep's VP state, pull mode reads the network's own prediction with
    // the table's σ (as upstream); the two are the same bits when the network predicts ε
    const auto eps_model = [&] { return analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac)); };
    std::mt19937_64 g(20261202);
    bool seen_sde = false, seen_order3 = false, seen_threshold = false;
    for (int k = 0; k < 8; ++k) {
        dpm_solver_multistep_options o;
        o.solver_order = 1 + std::size_t(k % 3);
        o.algorithm_type = dpm_solver_algorithm(g() % 4);
        if (o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver && o.solver_order == 3) o.solver_order = 2;
        o.solver_type = g() % 2 ? dpm_solver_type::heun : dpm_solver_type::midpoint;
        o.lower_order_final = g() % 2;
        o.euler_at_final = g() % 4 == 0;
        o.thresholding = g() % 3 == 0;
        o.sample_max_value = 1.5;
        auto t = drawn_table(g, false);
        const bool noise_form = o.algorithm_type == dpm_solver_algorithm::dpmsolver || o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver;
        if (noise_form) t.final_sigma = final_sigma_rule::sigma_min;
        if ((o.solver_type == dpm_solver_type::heun || o.solver_order == 3) && t.final_sigma == final_sigma_rule::sigma_min)
            t.sigma_spacing = solver_sigma_spacing::training;  // a spaced list ending at σ_min repeats it: a 0/0 step
        const auto table = multistep_solver_schedule(ac, 4 + g() % 6, t);
        seen_sde = seen_sde || o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp || o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver;
        seen_order3 = seen_order3 || o.solver_order == 3;
        seen_threshold = seen_threshold || o.thresholding;
        const counter_noise noise{7, 0};
        stepper_check::check_modes(
            "dpm_solver_multistep draw " + std::to_string(k), [&] { return dpm_solver_multistep_stepper<T>(shape, ac, table, o, noise); },
            eps_model, [&](auto& m, tensor_view<T> x) { sample_dpm_solver_multistep(m, x, ac, table, o, noise); }, x0, B);
    }
    CHECK(seen_sde);
    CHECK(seen_order3);
    CHECK(seen_threshold);
    for (int k = 0; k < 6; ++k) {
        dpm_solver_singlestep_options o;
        o.solver_order = 1 + std::size_t(k % 3);
        o.algorithm_type = std::array{dpm_solver_algorithm::dpmsolver_pp, dpm_solver_algorithm::sde_dpmsolver_pp,
                                      dpm_solver_algorithm::dpmsolver}[g() % 3];
        o.solver_type = k % 2 ? dpm_solver_type::heun : dpm_solver_type::midpoint;
        o.lower_order_final = g() % 2;
        o.thresholding = o.algorithm_type != dpm_solver_algorithm::dpmsolver && g() % 3 == 0;
        auto t = drawn_table(g, false);
        t.spacing = timestep_spacing::linspace;
        if (t.sigma_spacing == solver_sigma_spacing::lu_lambdas) t.sigma_spacing = solver_sigma_spacing::karras;
        t.final_sigma = o.algorithm_type == dpm_solver_algorithm::dpmsolver ? final_sigma_rule::sigma_min : final_sigma_rule::zero;
        const auto table = multistep_solver_schedule(ac, 4 + g() % 6, t);
        const counter_noise noise{11, 0};
        stepper_check::check_modes(
            "dpm_solver_singlestep draw " + std::to_string(k),
            [&] { return dpm_solver_singlestep_stepper<T>(shape, ac, table, o, noise); }, eps_model,
            [&](auto& m, tensor_view<T> x) { sample_dpm_solver_singlestep(m, x, ac, table, o, noise); }, x0, B);
    }
    for (int k = 0; k < 4; ++k) {
        deis_options o;
        o.solver_order = 1 + std::size_t(k % 3);
        o.lower_order_final = g() % 2;
        o.thresholding = k == 3;
        const auto table = multistep_solver_schedule(ac, 4 + g() % 6, drawn_table(g, true));
        stepper_check::check_modes(
            "deis draw " + std::to_string(k), [&] { return deis_stepper<T>(shape, ac, table, o); }, eps_model,
            [&](auto& m, tensor_view<T> x) { sample_deis(m, x, ac, table, o); }, x0, B);
    }
}

TEST_CASE("solver multistep: a constant prediction is integrated exactly by every order", "[diffusers_schedulers][closed_form]") {
    const auto ac = alphas("linear");
    const std::size_t B = 2, D = 3;
    rc::prop("data form: x_N − α_N·c = (σ_N/σ_0)·(x_0 − α_0·c), times e^{−(λ_N − λ_0)} for the SDE mean", [&] {
        std::mt19937_64 g(*rc::gen::arbitrary<std::uint64_t>());
        dpm_solver_multistep_options o;
        o.solver_order = 1 + g() % 3;
        o.solver_type = g() % 2 ? dpm_solver_type::heun : dpm_solver_type::midpoint;
        o.lower_order_final = g() % 2;
        o.algorithm_type = g() % 2 ? dpm_solver_algorithm::sde_dpmsolver_pp : dpm_solver_algorithm::dpmsolver_pp;
        auto t = drawn_table(g, false);
        t.final_sigma = final_sigma_rule::sigma_min;
        if (o.solver_type == dpm_solver_type::heun || o.solver_order == 3) t.sigma_spacing = solver_sigma_spacing::training;
        const auto table = multistep_solver_schedule(ac, *rc::gen::inRange<std::size_t>(2, 40), t);
        const double c = 0.3 + double(g() % 100) / 100.0;
        diffuse::model m(constant_network{c}, prediction::sample, discrete_time(ac));
        auto x = stepper_check::initial_state<double>(B, D);
        const auto start = x;
        if (g() % 2) {
            sample_dpm_solver_multistep(m, batched(x, B), ac, table, o, zero_noise{});
        } else {  // the singlestep blocks: each order-p step from the block's start state
            dpm_solver_singlestep_options so;
            so.solver_order = o.solver_order;
            so.solver_type = o.solver_type;
            so.algorithm_type = o.algorithm_type;
            so.lower_order_final = o.lower_order_final;
            sample_dpm_solver_singlestep(m, batched(x, B), ac, table, so, zero_noise{});
        }
        const auto p0 = detail::vp_point_of(table.sigmas.front()), pN = detail::vp_point_of(table.sigmas.back());
        const bool sde = o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp;
        const double decay = pN.sigma / p0.sigma * (sde ? std::exp(-(pN.lambda - p0.lambda)) : 1.0);
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double want = pN.alpha * c + decay * (start[i] - p0.alpha * c);
            RC_ASSERT(std::abs(x[i] - want) <= 1e-10 * (1 + std::abs(want)));
        }
    });
    rc::prop("noise form and DEIS: x_N/α_N = x_0/α_0 + (ρ_N − ρ_0)·c, ρ = σ/α", [&] {
        std::mt19937_64 g(*rc::gen::arbitrary<std::uint64_t>());
        const bool use_deis = g() % 2;
        auto t = drawn_table(g, use_deis);
        if (!use_deis) t.final_sigma = final_sigma_rule::sigma_min;
        const std::size_t order = 1 + g() % 3;
        t.sigma_spacing = solver_sigma_spacing::training;  // a spaced list ending at σ_min repeats it: heun's 0/0
        const auto table = multistep_solver_schedule(ac, *rc::gen::inRange<std::size_t>(2, 40), t);
        const double c = -0.5 + double(g() % 100) / 100.0;
        diffuse::model m(constant_network{c}, prediction::epsilon, discrete_time(ac));
        auto x = stepper_check::initial_state<double>(B, D);
        const auto start = x;
        if (use_deis) {
            deis_options o;
            o.solver_order = order;
            sample_deis(m, batched(x, B), ac, table, o);
        } else {
            dpm_solver_multistep_options o;
            o.solver_order = order;
            o.algorithm_type = dpm_solver_algorithm::dpmsolver;
            o.solver_type = g() % 2 ? dpm_solver_type::heun : dpm_solver_type::midpoint;
            sample_dpm_solver_multistep(m, batched(x, B), ac, table, o, no_noise{});
        }
        const auto p0 = detail::vp_point_of(table.sigmas.front()), pN = detail::vp_point_of(table.sigmas.back());
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double want = pN.alpha * (start[i] / p0.alpha + (pN.sigma / pN.alpha - p0.sigma / p0.alpha) * c);
            RC_ASSERT(std::abs(x[i] - want) <= 1e-9 * (1 + std::abs(want)));
        }
    });
}

TEST_CASE("singlestep order lists as diffusers' get_order_list", "[diffusers_schedulers][table]") {
    using v = std::vector<std::size_t>;
    CHECK(dpm_solver_singlestep_orders(7, 3, true, false) == v{1, 2, 3, 1, 2, 3, 1});
    CHECK(dpm_solver_singlestep_orders(6, 3, true, false) == v{1, 2, 3, 1, 2, 1});
    CHECK(dpm_solver_singlestep_orders(8, 3, false, false) == v{1, 2, 3, 1, 2, 3, 1, 2});  // 8 % 3 forces lower_order_final
    CHECK(dpm_solver_singlestep_orders(6, 3, false, false) == v{1, 2, 3, 1, 2, 3});
    CHECK(dpm_solver_singlestep_orders(6, 2, true, false) == v{1, 2, 1, 2, 1, 1});
    CHECK(dpm_solver_singlestep_orders(6, 2, false, true) == v{1, 2, 1, 2, 1, 1});  // a final σ of 0 forces it too
    CHECK(dpm_solver_singlestep_orders(5, 2, false, false) == v{1, 2, 1, 2, 1});
    CHECK(dpm_solver_singlestep_orders(3, 1, false, false) == v{1, 1, 1});
    rc::prop("an order list has N entries, starts each block with 1 and never exceeds the order", [] {
        const auto N = *rc::gen::inRange<std::size_t>(1, 200);
        const auto p = *rc::gen::inRange<std::size_t>(1, 4);
        const auto o = dpm_solver_singlestep_orders(N, p, *rc::gen::arbitrary<bool>(), *rc::gen::arbitrary<bool>());
        RC_ASSERT(o.size() == N);
        RC_ASSERT(o[0] == 1u);
        for (std::size_t i = 0; i < N; ++i) {
            RC_ASSERT(o[i] >= 1u);
            RC_ASSERT(o[i] <= p);
            if (i > 0 && o[i] > 1) RC_ASSERT(o[i] == o[i - 1] + 1);
        }
    });
    CHECK_THROWS_AS(dpm_solver_singlestep_orders(5, 4, false, false), error);
    CHECK_THROWS_AS(dpm_solver_singlestep_orders(0, 2, false, false), error);
}

TEST_CASE("solver tables: the correctly rounded training table is within one float32 ulp of the reference's",
          "[diffusers_schedulers][table]") {
    const std::filesystem::path dir = std::filesystem::path(DIFFUSE_GOLDEN_DIR) / "samplers" / "solver_multistep";
    std::size_t compared = 0;
    for (const auto& [beta, T] : {std::pair{std::string("linear"), std::size_t{1000}}, {"scaled_linear", 1000},
                                  {"squaredcos_cap_v2", 1000}, {"linear", 800}, {"scaled_linear", 800}, {"squaredcos_cap_v2", 800}}) {
        const auto file = dir / ("training_sigmas_" + beta + "_" + std::to_string(T) + ".npy");
        if (!std::filesystem::exists(file)) continue;
        const auto ref = io::read_npy(file.string()).as<double>();
        const auto ours = solver_training_sigmas(alphas(beta, T));
        REQUIRE(ref.size() == 2 * T);
        std::size_t differ = 0;
        for (std::size_t i = 0; i < T; ++i) {
            const float sa = float(ours.sigmas[i]), sb = float(ref[i]);
            CHECK((sa == sb || std::nextafter(sa, sb) == sb));  // σ: at most one ulp
            differ += sa != sb;
            // log σ: one ulp of itself plus what one ulp of σ (≤ 1.2e-7 relative) moves it
            const float la = float(ours.log_sigmas[i]), lb = float(ref[T + i]);
            CHECK(std::abs(double(la) - double(lb)) <= 1.2e-7 + 2.0 * std::abs(double(std::nextafter(lb, 2 * lb + 1) - lb)));
        }
        CHECK(differ < T / 2);  // most entries agree exactly
        ++compared;
    }
    CHECK(compared >= 3);
}

TEST_CASE("solver tables: spacings, λ clipping and the final σ", "[diffusers_schedulers][table]") {
    const auto ac = alphas("squaredcos_cap_v2");
    const auto train = solver_training_sigmas(ac);
    for (auto spacing : {timestep_spacing::linspace, timestep_spacing::leading, timestep_spacing::trailing}) {
        solver_schedule_options t;
        t.spacing = spacing;
        const auto s = multistep_solver_schedule(ac, 10, t);
        REQUIRE(s.timesteps.size() == 10);
        REQUIRE(s.sigmas.size() == 11);
        CHECK(s.sigmas.back() == 0.0);
        for (std::size_t i = 0; i < 10; ++i) CHECK(s.sigmas[i] == train.sigmas[std::size_t(s.timesteps[i])]);  // np.interp at knots
        for (std::size_t i = 1; i < 10; ++i) CHECK(s.timesteps[i] < s.timesteps[i - 1]);
        CHECK(s.timesteps.front() <= 999);
        t.final_sigma = final_sigma_rule::sigma_min;
        CHECK(multistep_solver_schedule(ac, 10, t).sigmas.back() == train.sigmas.front());
    }
    // λ_min clipping stops the walk early: the first timestep has λ ≥ the bound
    solver_schedule_options t;
    t.lambda_min_clipped = -5.1;
    const auto clipped = multistep_solver_schedule(ac, 10, t);
    const auto first = std::size_t(clipped.timesteps.front());
    CHECK(first < 999);
    const double a = ac[first];
    CHECK(0.5 * std::log(a) - 0.5 * std::log(1 - a) >= -5.1 - 1e-5);
    // Karras: σ_max … σ_min with ρ = 7; DEIS repeats the last σ
    t = {};
    t.sigma_spacing = solver_sigma_spacing::karras;
    t.final_sigma = final_sigma_rule::repeat_last_spaced;
    const auto k = multistep_solver_schedule(ac, 7, t);
    CHECK(k.sigmas.front() == Approx(train.sigmas.back()).epsilon(1e-6));
    CHECK(k.sigmas[6] == Approx(train.sigmas.front()).epsilon(1e-6));
    CHECK(k.sigmas[7] == k.sigmas[6]);
}

TEST_CASE("solver multistep: every argument is checked", "[diffusers_schedulers][errors]") {
    const auto ac = alphas("linear");
    const batch_shape shape{1, 4};
    const auto table = multistep_solver_schedule(ac, 8);
    auto zero_snr = ac;
    zero_snr.back() = 0.0;
    CHECK_THROWS_AS(multistep_solver_schedule(zero_snr, 8), error);
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, zero_snr, table), error);
    CHECK_THROWS_AS(multistep_solver_schedule(ac, 0), error);
    CHECK_THROWS_AS(multistep_solver_schedule(ac, 1001), error);
    solver_schedule_options bad;
    bad.lambda_min_clipped = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(multistep_solver_schedule(ac, 8, bad), error);
    bad = {};
    bad.lambda_min_clipped = 100.0;  // removes every timestep
    CHECK_THROWS_AS(multistep_solver_schedule(ac, 8, bad), error);
    bad = {};
    bad.spacing = timestep_spacing::leading;
    bad.steps_offset = 200;  // pushes the first timestep past T − 1
    CHECK_THROWS_AS(multistep_solver_schedule(ac, 8, bad), error);
    bad = {};
    bad.spacing = timestep_spacing::trailing;  // numpy.arange(1200, 0, -1200/14) has 15 values, the last -1
    CHECK_THROWS_AS(multistep_solver_schedule(alphas("linear", 1200), 14, bad), error);
    CHECK_THROWS_AS(multistep_solver_schedule(ac, 8, {}, training_sigma_table{{1.0}, {0.0}}), error);

    dpm_solver_multistep_options o;
    o.solver_order = 4;
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, table, o), error);
    o.solver_order = 3;
    o.algorithm_type = dpm_solver_algorithm::sde_dpmsolver;  // no third-order update upstream
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, table, o), error);
    o.algorithm_type = dpm_solver_algorithm::dpmsolver;  // the noise form needs a final σ > 0
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, table, o), error);
    o = {};
    o.thresholding = true;
    o.sample_max_value = 0.5;
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, table, o), error);
    // heun over Karras σ ending at σ_min: the last two σ coincide and the order-2 step is 0/0 (NaN upstream)
    solver_schedule_options k;
    k.sigma_spacing = solver_sigma_spacing::karras;
    k.final_sigma = final_sigma_rule::sigma_min;
    o = {};
    o.solver_type = dpm_solver_type::heun;
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, multistep_solver_schedule(ac, 20, k), o), error);
    o.solver_type = dpm_solver_type::midpoint;  // the midpoint form is finite there (the step holds x)
    CHECK_NOTHROW(dpm_solver_multistep_stepper<float>(shape, ac, multistep_solver_schedule(ac, 20, k), o));

    auto broken = table;
    broken.sigmas.pop_back();
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, broken, {}), error);
    broken = table;
    broken.timesteps[2] = 1000;
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, broken, {}), error);
    broken = table;
    broken.sigmas[3] = broken.sigmas[2] * 2;  // σ must not increase
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, ac, broken, {}), error);
    broken = table;
    broken.sigmas[1] = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(deis_stepper<float>(shape, ac, broken, {}), error);
    CHECK_THROWS_AS(deis_stepper<float>(shape, ac, table, {}), error);  // DEIS needs a final σ > 0
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(batch_shape{0, 4}, ac, table, {}), error);
    dpm_solver_singlestep_options so;
    so.algorithm_type = dpm_solver_algorithm::sde_dpmsolver;  // not a singlestep algorithm upstream
    CHECK_THROWS_AS(dpm_solver_singlestep_stepper<float>(shape, ac, table, so), error);
    so.algorithm_type = dpm_solver_algorithm::dpmsolver;
    CHECK_THROWS_AS(dpm_solver_singlestep_stepper<float>(shape, ac, table, so), error);  // final σ 0
    solver_schedule_options smin;
    smin.final_sigma = final_sigma_rule::sigma_min;
    so.thresholding = true;  // upstream's noise-form thresholding is broken
    CHECK_THROWS_AS(dpm_solver_singlestep_stepper<float>(shape, ac, multistep_solver_schedule(ac, 8, smin), so), error);

    // a run with the wrong x, a NaN start, and a deterministic algorithm that never draws from no_noise
    auto m = analytic_model(stepper_check::mixture(4), prediction::epsilon, discrete_time(ac));
    std::vector<float> x(8, 0.5f);
    CHECK_THROWS_AS(sample_dpm_solver_multistep(m, batched(x, 3), ac, table, {}, no_noise{}), error);
    x[1] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(sample_dpm_solver_multistep(m, batched(x, 2), ac, table, {}, no_noise{}), error);
    x[1] = 0.5f;
    CHECK_NOTHROW(sample_dpm_solver_multistep(m, batched(x, 2), ac, table, {}, no_noise{}));
    o = {};
    o.algorithm_type = dpm_solver_algorithm::sde_dpmsolver_pp;
    CHECK_THROWS_AS(sample_dpm_solver_multistep(m, batched(x, 2), ac, table, o, no_noise{}), error);
}

namespace {
edm_schedule_options drawn_edm_table(std::mt19937_64& g, edm_scheduler s) {
    edm_schedule_options e;
    e.sigma_min = 0.002 * (1 + double(g() % 50));
    e.sigma_max = 5.0 + double(g() % 100);
    e.rho = 3.0 + double(g() % 8);
    e.sigma_schedule = g() % 2 ? edm_sigma_schedule::exponential : edm_sigma_schedule::karras;
    e.final_sigma = edm_final_sigma(g() % 2 ? "zero" : "sigma_min", s);
    return e;
}
// A raw network that records what it was given and returns F = x_net + t (elementwise).
struct recording_network {
    std::vector<double>* seen_x;
    std::vector<double>* seen_t;
    template <class T>
    void operator()(tensor_view<const T> x, const model_cond& c, tensor_view<T> out) const {
        seen_x->assign(x.data, x.data + x.size());
        seen_t->assign(c.t.begin(), c.t.end());
        for (std::size_t b = 0; b < x.batch; ++b)
            for (std::size_t i = 0; i < x.per_sample; ++i) out.sample(b)[i] = T(double(x.sample(b)[i]) + c.t[b]);
    }
};
}  // namespace

TEMPLATE_TEST_CASE("EDM schedulers: pull, push and copies give the same bits over drawn configurations",
                   "[diffusers_schedulers][edm][stepper]", float, double) {
    using T = TestType;
    const std::size_t B = 2, D = 6;
    const batch_shape shape{B, D};
    std::mt19937_64 g(20261203);
    const auto edm_net = [&](double sigma_data, edm_output out) {
        return [=] { return analytic_model(stepper_check::mixture(D), prediction::sample, edm_time{sigma_data, out}); };
    };
    bool seen_sde = false, seen_order3 = false, seen_threshold = false, seen_churn = false;
    for (int k = 0; k < 8; ++k) {
        dpm_solver_multistep_options o;
        o.solver_order = 1 + std::size_t(k % 3);
        o.algorithm_type = g() % 2 ? dpm_solver_algorithm::sde_dpmsolver_pp : dpm_solver_algorithm::dpmsolver_pp;
        if (o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp && o.solver_order == 3) o.solver_order = 2;
        o.solver_type = g() % 2 ? dpm_solver_type::heun : dpm_solver_type::midpoint;
        o.lower_order_final = g() % 2;
        o.euler_at_final = g() % 4 == 0;
        o.thresholding = g() % 3 == 0;
        o.sample_max_value = 1.5;
        auto e = drawn_edm_table(g, edm_scheduler::dpm_solver_multistep);
        if (o.solver_type == dpm_solver_type::heun || o.solver_order == 3)
            e.final_sigma = final_sigma_rule::zero;  // σ_min after a list ending at σ_min: heun's 0/0 (upstream's NaN)
        const sigma_space_table table{edm_sigmas(4 + g() % 8, e)};
        seen_sde = seen_sde || o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp;
        seen_order3 = seen_order3 || o.solver_order == 3;
        seen_threshold = seen_threshold || o.thresholding;
        const auto x0 = stepper_check::initial_state<T>(B, D, table.sigmas.front());
        const counter_noise noise{7, 0};
        stepper_check::check_modes(
            "edm dpm_solver_multistep draw " + std::to_string(k), [&] { return dpm_solver_multistep_stepper<T>(shape, table, o, noise); },
            edm_net(0.3 + 0.1 * double(k), k % 2 ? edm_output::v_prediction : edm_output::epsilon),
            [&](auto& m, tensor_view<T> x) { sample_dpm_solver_multistep(m, x, table, o, noise); }, x0, B);
    }
    for (int k = 0; k < 6; ++k) {
        churn_options c;
        c.order = churn_order::diffusers;
        c.diffusers_edm_sigma_data = 0.5 + 0.2 * double(k);
        c.s_churn = k % 3 == 0 ? 0.0 : 0.5 * double(k);
        c.s_tmin = k == 4 ? 1.0 : 0.0;
        c.s_noise = k == 5 ? 0.8 : 1.0;
        seen_churn = seen_churn || c.s_churn > 0;
        const time_grid grid(edm_sigmas(4 + g() % 8, drawn_edm_table(g, edm_scheduler::euler)));
        const auto x0 = stepper_check::initial_state<T>(B, D, grid(0, 0));
        const counter_noise noise{9, 0};
        stepper_check::check_modes(
            "edm euler draw " + std::to_string(k), [&] { return euler_stepper<T>(shape, grid, c, noise); },
            edm_net(c.diffusers_edm_sigma_data, k % 2 ? edm_output::v_prediction : edm_output::epsilon),
            [&](auto& m, tensor_view<T> x) { sample_euler(m, x, grid, c, noise); }, x0, B);
    }
    CHECK(seen_sde);
    CHECK(seen_order3);
    CHECK(seen_threshold);
    CHECK(seen_churn);
}

TEST_CASE("EDM DPM-Solver: a constant x0 prediction is integrated exactly by every order", "[diffusers_schedulers][edm][closed_form]") {
    const std::size_t B = 2, D = 3;
    rc::prop("x_N − c = (σ_N/σ_0)·(x_0 − c), squared for the SDE mean", [&] {
        std::mt19937_64 g(*rc::gen::arbitrary<std::uint64_t>());
        dpm_solver_multistep_options o;
        o.algorithm_type = g() % 2 ? dpm_solver_algorithm::sde_dpmsolver_pp : dpm_solver_algorithm::dpmsolver_pp;
        o.solver_order = 1 + g() % (o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp ? 2 : 3);
        o.solver_type = g() % 2 ? dpm_solver_type::heun : dpm_solver_type::midpoint;
        o.lower_order_final = g() % 2;
        o.euler_at_final = g() % 3 == 0;
        auto e = drawn_edm_table(g, edm_scheduler::dpm_solver_multistep);
        if (o.solver_type == dpm_solver_type::heun || o.solver_order == 3) e.final_sigma = final_sigma_rule::zero;  // heun's 0/0
        const sigma_space_table table{edm_sigmas(*rc::gen::inRange<std::size_t>(2, 40), e)};
        const double c = 0.3 + double(g() % 100) / 100.0;
        diffuse::model m(constant_network{c}, prediction::sample, sigma_time{});
        auto x = stepper_check::initial_state<double>(B, D, table.sigmas.front());
        const auto start = x;
        sample_dpm_solver_multistep(m, batched(x, B), table, o, zero_noise{});
        const double r = table.sigmas.back() / table.sigmas.front();
        const double decay = o.algorithm_type == dpm_solver_algorithm::sde_dpmsolver_pp ? r * r : r;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double want = c + decay * (start[i] - c);
            RC_ASSERT(std::abs(x[i] - want) <= 1e-10 * (1 + std::abs(want)));
        }
    });
}

TEST_CASE("EDM preconditioning: the model feeds c_in·x at log(σ)/4 and returns c_skip·x + c_out·F", "[diffusers_schedulers][edm][model]") {
    std::vector<double> seen_x, seen_t;
    const std::size_t B = 2, D = 3;
    for (const auto out : {edm_output::epsilon, edm_output::v_prediction}) {
        const edm_time time{0.7, out};
        auto m = edm_model(recording_network{&seen_x, &seen_t}, time);
        const std::vector<double> x{0.5, -1.0, 2.0, 3.0, 0.25, -4.0}, alpha{1.0, 0.5}, sigma{2.0, 0.05};
        std::vector<double> x0(6), eps(6);
        m.predict(batched(x, B), alpha, sigma, prediction::sample, batched(x0, B));
        for (std::size_t b = 0; b < B; ++b) {
            const double s = sigma[b] / alpha[b], sd = 0.7;
            const double c_skip = sd * sd / (s * s + sd * sd), c_out = (out == edm_output::epsilon ? 1 : -1) * s * sd / std::sqrt(s * s + sd * sd);
            const double c_in = 1 / std::sqrt(s * s + sd * sd), t = 0.25 * std::log(s);
            CHECK(seen_t[b] == Approx(t).epsilon(1e-14));
            for (std::size_t i = 0; i < D; ++i) {
                const double xs = x[b * D + i] / alpha[b];  // the σ-space state
                CHECK(seen_x[b * D + i] == Approx(c_in * xs).epsilon(1e-14));
                CHECK(x0[b * D + i] == Approx(c_skip * xs + c_out * (c_in * xs + t)).epsilon(1e-13));
            }
        }
        m.predict(batched(x, B), alpha, sigma, prediction::epsilon, batched(eps, B));
        for (std::size_t i = 0; i < x.size(); ++i) {
            const std::size_t b = i / D;
            CHECK(eps[i] == Approx((x[i] - alpha[b] * x0[i]) / sigma[b]).epsilon(1e-12));
        }
    }
    // the exact denoiser behind an EDM network: its model's x̂₀ is the mixture's posterior mean
    auto edm = analytic_model(stepper_check::mixture(D), prediction::sample, edm_time{0.4, edm_output::v_prediction});
    auto plain = analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{});
    const std::vector<double> x{0.5, -1.0, 2.0, 3.0, 0.25, -4.0}, ones{1.0, 1.0}, sigma{3.0, 0.01};
    std::vector<double> a(6), b(6);
    edm.predict(batched(x, B), ones, sigma, prediction::sample, batched(a, B));
    plain.predict(batched(x, B), ones, sigma, prediction::sample, batched(b, B));
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-10).margin(1e-12));

    CHECK_THROWS_AS((diffuse::model(recording_network{&seen_x, &seen_t}, prediction::epsilon, edm_time{})), error);
    CHECK_THROWS_AS(edm_model(recording_network{&seen_x, &seen_t}, edm_time{0.0}), error);
    CHECK_THROWS_AS(parse_edm_output("sample"), error);
}

TEST_CASE("EDM σ tables and their argument checks", "[diffusers_schedulers][edm][table][errors]") {
    edm_schedule_options e;
    const auto k = karras_sigmas(10, e.sigma_min, e.sigma_max, e.rho);
    auto s = edm_sigmas(10, e);
    REQUIRE(s.size() == 11);
    for (std::size_t i = 0; i < 10; ++i) CHECK(s[i] == double(float(k[i])));
    CHECK(s[10] == 0.0);
    e.final_sigma = edm_final_sigma("sigma_min", edm_scheduler::euler);
    CHECK(edm_sigmas(10, e)[10] == s[9]);
    e.final_sigma = edm_final_sigma("sigma_min", edm_scheduler::dpm_solver_multistep);
    CHECK(edm_sigmas(10, e)[10] == double(float(0.002)));
    e.sigma_schedule = parse_edm_sigma_schedule("exponential");
    const auto x = exponential_sigmas(10, e.sigma_min, e.sigma_max);
    s = edm_sigmas(10, e);
    for (std::size_t i = 0; i < 10; ++i) CHECK(s[i] == double(float(x[i])));
    CHECK_THROWS_AS(parse_edm_sigma_schedule("linear"), error);
    CHECK_THROWS_AS(edm_final_sigma("one", edm_scheduler::euler), error);
    CHECK_THROWS_AS(edm_sigmas(0, {}), error);
    edm_schedule_options bad;
    bad.sigma_max = bad.sigma_min;
    CHECK_THROWS_AS(edm_sigmas(5, bad), error);
    bad = {};
    bad.sigma_min = -1;
    CHECK_THROWS_AS(edm_sigmas(5, bad), error);
    bad = {};
    bad.rho = 0;
    CHECK_THROWS_AS(edm_sigmas(5, bad), error);

    const batch_shape shape{1, 4};
    const sigma_space_table table{edm_sigmas(8, {})};
    dpm_solver_multistep_options o;
    CHECK_NOTHROW(dpm_solver_multistep_stepper<float>(shape, table, o));
    o.algorithm_type = dpm_solver_algorithm::dpmsolver;  // upstream's EDM scheduler has the data form only
    CHECK_THROWS_WITH(dpm_solver_multistep_stepper<float>(shape, table, o), Catch::Contains("algorithm_type"));
    o.algorithm_type = dpm_solver_algorithm::sde_dpmsolver_pp;
    o.solver_order = 3;  // no third-order SDE update upstream
    CHECK_THROWS_WITH(dpm_solver_multistep_stepper<float>(shape, table, o), Catch::Contains("solver_order"));
    o = {};
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, sigma_space_table{{1.0}}, o), error);
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, sigma_space_table{{1.0, 2.0, 0.0}}, o), error);
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(shape, sigma_space_table{{1.0, -0.5}}, o), error);
    CHECK_THROWS_AS(dpm_solver_multistep_stepper<float>(batch_shape{0, 4}, table, o), error);
    churn_options c;
    c.order = churn_order::diffusers;
    c.diffusers_edm_sigma_data = -1;
    CHECK_THROWS_AS(euler_stepper<float>(shape, time_grid(table.sigmas), c), error);
}
