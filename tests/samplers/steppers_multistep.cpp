// The σ-space multistep and DPM-Solver++ steppers (samplers/dpm_solver.hpp, lms.hpp, unipc.hpp): pull, push,
// copy and one-call give the same bits, for every option that changes the code path, with counter, recorded
// and Brownian-tree noise, on grids ending in 0 or not and on per-sample grids; and the two-point-grid trap of
// the one-call form (the multistep history restarts every call) is gone when a stepper is driven step by step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/brownian.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/lms.hpp"
#include "diffuse/samplers/unipc.hpp"
#include "stepper_support.hpp"

using namespace diffuse;

namespace {

// The largest σ of the grid (the top of a Brownian tree's interval; its bottom is 0 so σ_N = 0 is inside).
double sigma_max(const time_grid& grid) {
    double hi = 0;
    for (std::size_t b = 0; b < grid.rows(); ++b)
        for (std::size_t i = 0; i <= grid.steps(); ++i) hi = std::max(hi, grid(i, b));
    return hi;
}

std::string solver_name(dpm_solver_type t) { return t == dpm_solver_type::midpoint ? "midpoint" : "heun"; }

template <class T>
void multistep_family(const time_grid& grid, std::size_t B) {
    constexpr std::size_t D = 6;
    const auto x0 = stepper_check::initial_state<T>(B, D, grid(0, 0));
    auto model = [] { return analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{}); };
    const batch_shape shape{B, D};
    const counter_noise noise{7, 3};
    const auto tree = [&] { return brownian_tree_noise(11, 0.0, sigma_max(grid), 3); };
    std::vector<double> rec(64 * B * D);
    for (std::size_t i = 0; i < rec.size(); ++i) rec[i] = double(i % 13) / 6.0 - 1.0;
    const recorded_noise recorded(rec, B * D);
    using stepper_check::check_modes;

    // DPM-Solver++(2M): solver type and diffusers' final-step rules
    for (const dpmpp_2m_options o : {dpmpp_2m_options{dpm_solver_type::midpoint, true, false},
                                     dpmpp_2m_options{dpm_solver_type::heun, true, false},
                                     dpmpp_2m_options{dpm_solver_type::midpoint, false, false},
                                     dpmpp_2m_options{dpm_solver_type::heun, false, true}}) {
        check_modes("dpmpp_2m " + solver_name(o.solver_type) + " lower_order_final " + std::to_string(o.lower_order_final) +
                        " euler_at_final " + std::to_string(o.euler_at_final),
                    [&] { return dpmpp_2m_stepper<T>(shape, grid, o); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_dpmpp_2m(m, x, grid, o); }, x0, B);
    }

    // DPM-Solver++(2S) ancestral: η > 0 (ancestral noise) and η = 0 (the ODE solver, no draws)
    for (const dpmpp_sde_options o : {dpmpp_sde_options{0.8, 1.1, 0.5}, dpmpp_sde_options{0.0, 1.0, 0.5}}) {
        const std::string name = "dpmpp_2s_ancestral eta " + std::to_string(o.eta);
        check_modes(name, [&] { return dpmpp_2s_ancestral_stepper<T>(shape, grid, o, noise); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_dpmpp_2s_ancestral(m, x, grid, o, noise); }, x0, B);
        check_modes(name + " recorded",
                    [&] { return dpmpp_2s_ancestral_stepper<T, const recorded_noise&>(shape, grid, o, recorded); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_dpmpp_2s_ancestral(m, x, grid, o, recorded); }, x0, B);
    }

    // DPM-Solver++ SDE: two evaluations and two draws a step; the intermediate point r; η = 0
    for (const dpmpp_sde_options o :
         {dpmpp_sde_options{1.0, 1.0, 0.5}, dpmpp_sde_options{0.6, 0.9, 0.3}, dpmpp_sde_options{0.0, 1.0, 0.7}}) {
        const std::string name = "dpmpp_sde eta " + std::to_string(o.eta) + " r " + std::to_string(o.r);
        check_modes(name, [&] { return dpmpp_sde_stepper<T>(shape, grid, o, noise); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_dpmpp_sde(m, x, grid, o, noise); }, x0, B);
        check_modes(name + " brownian tree", [&] { return dpmpp_sde_stepper<T, brownian_tree_noise>(shape, grid, o, tree()); },
                    model,
                    [&](auto& m, tensor_view<T> x) {
                        auto t = tree();
                        sample_dpmpp_sde(m, x, grid, o, t);
                    },
                    x0, B);
        check_modes(name + " recorded", [&] { return dpmpp_sde_stepper<T, const recorded_noise&>(shape, grid, o, recorded); },
                    model, [&](auto& m, tensor_view<T> x) { sample_dpmpp_sde(m, x, grid, o, recorded); }, x0, B);
    }

    // DPM-Solver++(2M) SDE: solver type, η, final-step rules
    for (const dpmpp_2m_sde_options o : {dpmpp_2m_sde_options{1.0, 1.0, dpm_solver_type::midpoint, true, false},
                                         dpmpp_2m_sde_options{0.7, 1.2, dpm_solver_type::heun, false, false},
                                         dpmpp_2m_sde_options{0.0, 1.0, dpm_solver_type::heun, true, true}}) {
        const std::string name = "dpmpp_2m_sde " + solver_name(o.solver_type) + " eta " + std::to_string(o.eta) +
                                 " lower_order_final " + std::to_string(o.lower_order_final);
        check_modes(name, [&] { return dpmpp_2m_sde_stepper<T>(shape, grid, o, noise); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_dpmpp_2m_sde(m, x, grid, o, noise); }, x0, B);
        check_modes(name + " brownian tree",
                    [&] { return dpmpp_2m_sde_stepper<T, brownian_tree_noise>(shape, grid, o, tree()); }, model,
                    [&](auto& m, tensor_view<T> x) {
                        auto t = tree();
                        sample_dpmpp_2m_sde(m, x, grid, o, t);
                    },
                    x0, B);
    }

    // DPM-Solver++(3M) SDE: η (and s_noise), with counter, tree and recorded noise
    for (const dpmpp_3m_sde_options o : {dpmpp_3m_sde_options{1.0, 1.0}, dpmpp_3m_sde_options{0.5, 0.8},
                                         dpmpp_3m_sde_options{0.0, 1.0}}) {
        const std::string name = "dpmpp_3m_sde eta " + std::to_string(o.eta);
        check_modes(name, [&] { return dpmpp_3m_sde_stepper<T>(shape, grid, o, noise); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_dpmpp_3m_sde(m, x, grid, o, noise); }, x0, B);
        check_modes(name + " brownian tree",
                    [&] { return dpmpp_3m_sde_stepper<T, brownian_tree_noise>(shape, grid, o, tree()); }, model,
                    [&](auto& m, tensor_view<T> x) {
                        auto t = tree();
                        sample_dpmpp_3m_sde(m, x, grid, o, t);
                    },
                    x0, B);
        check_modes(name + " recorded",
                    [&] { return dpmpp_3m_sde_stepper<T, const recorded_noise&>(shape, grid, o, recorded); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_dpmpp_3m_sde(m, x, grid, o, recorded); }, x0, B);
    }

    // LMS: every order (the ring of derivatives wraps at the order)
    for (std::size_t order = 1; order <= 4; ++order) {
        const lms_options o{order};
        check_modes("lms order " + std::to_string(order), [&] { return lms_stepper<T>(shape, grid, o); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_lms(m, x, grid, o); }, x0, B);
    }

    // UniPC: every order, both B(h), the corrector on, off after some steps, and without lower_order_final
    for (std::size_t order = 1; order <= 3; ++order)
        for (const auto variant : {unipc_variant::bh1, unipc_variant::bh2})
            for (const unipc_options& o : {unipc_options{order, variant, true, {}}, unipc_options{order, variant, true, {0, 2}},
                                          unipc_options{order, variant, false, {1}}}) {
                std::string name = "unipc order " + std::to_string(order) +
                                   (variant == unipc_variant::bh1 ? " bh1" : " bh2") +
                                   " lower_order_final " + std::to_string(o.lower_order_final) + " no corrector after";
                for (auto k : o.disable_corrector) name.append(1, ' ').append(std::to_string(k));
                check_modes(name, [&] { return unipc_stepper<T>(shape, grid, o); }, model,
                            [&](auto& m, tensor_view<T> x) { sample_unipc(m, x, grid, o); }, x0, B);
            }
}

// A noise source with state (as a Brownian tree has): counts its calls.
struct counting_noise {
    int calls = 0;
    template <class V>
    void operator()(const V& out, std::uint64_t draw) {
        ++calls;
        fill_normal(out, 5, draw);
    }
};

}  // namespace

TEST_CASE("multistep steppers: pull, push, copies and one-call give the same bits", "[steppers][multistep]") {
    const time_grid to_zero({12.0, 6.0, 3.0, 1.5, 0.8, 0.4, 0.2, 0.0});
    const time_grid not_to_zero({10.0, 4.0, 1.5, 0.6, 0.2, 0.05});
    const time_grid per_sample({8.0, 3.0, 1.0, 0.3, 0.1, 0.0, 6.0, 2.0, 0.7, 0.2, 0.05, 0.01}, 2);
    SECTION("double, shared grid ending in 0") { multistep_family<double>(to_zero, 3); }
    SECTION("float, shared grid ending in 0") { multistep_family<float>(to_zero, 2); }
    SECTION("double, shared grid ending above 0") { multistep_family<double>(not_to_zero, 2); }
    SECTION("float, shared grid ending above 0") { multistep_family<float>(not_to_zero, 3); }
    SECTION("double, per-sample grid") { multistep_family<double>(per_sample, 2); }
    SECTION("float, per-sample grid") { multistep_family<float>(per_sample, 2); }
}

TEST_CASE("multistep steppers: sampling on two-point grids loses the history; a stepper keeps it",
          "[steppers][multistep]") {
    // The one-call form on each interval separately starts a new run every call: first order every time (no
    // previous D), a different result from one call over the whole grid. A stepper driven one step at a time
    // is that one call, bit for bit.
    const std::vector<double> sig{10.0, 4.0, 1.5, 0.6, 0.2, 0.0};
    const std::size_t B = 2, D = 5;
    auto m = analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{});
    const auto x0 = stepper_check::initial_state<double>(B, D, sig[0]);
    const auto piecewise_differs = [&](auto one_call, auto make_stepper) {
        std::vector<double> whole = x0, piecewise = x0, stepped = x0;
        one_call(batched(whole, B), time_grid(sig));
        for (std::size_t i = 0; i + 1 < sig.size(); ++i) one_call(batched(piecewise, B), time_grid({sig[i], sig[i + 1]}));
        auto s = make_stepper();
        while (!s.done()) s.step(m, batched(stepped, B));
        CHECK(stepper_check::same_bits(stepped, whole));
        CHECK_FALSE(stepper_check::same_bits(piecewise, whole));
    };
    piecewise_differs([&](auto x, const time_grid& g) { sample_dpmpp_2m(m, x, g); },
                      [&] { return dpmpp_2m_stepper<double>({B, D}, time_grid(sig)); });
    piecewise_differs([&](auto x, const time_grid& g) { sample_lms(m, x, g); },
                      [&] { return lms_stepper<double>({B, D}, time_grid(sig)); });
    piecewise_differs([&](auto x, const time_grid& g) { sample_unipc(m, x, g); },
                      [&] { return unipc_stepper<double>({B, D}, time_grid(sig)); });
    piecewise_differs([&](auto x, const time_grid& g) { sample_dpmpp_3m_sde(m, x, g); },
                      [&] { return dpmpp_3m_sde_stepper<double>({B, D}, time_grid(sig)); });
}

TEST_CASE("multistep samplers: one argument order; the observer stops the run where the stepper would stand",
          "[steppers][multistep]") {
    const time_grid grid({10.0, 4.0, 1.5, 0.6, 0.2, 0.05, 0.0});
    const std::size_t B = 2, D = 4;
    auto m = analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{});
    const auto x0 = stepper_check::initial_state<double>(B, D, 10.0);
    // (model, x, grid, options, noise, observer) for the deterministic samplers too: no_noise in the noise slot
    std::vector<double> stopped = x0, stepped = x0;
    std::vector<std::size_t> seen;
    sample_unipc(m, batched(stopped, B), grid, unipc_options{3}, no_noise{}, [&](const step_info<double>& s) {
        seen.push_back(s.step);
        CHECK(s.steps == grid.steps());
        CHECK(s.denoised.size() == B * D);
        return s.step < 2;  // stop after step 2
    });
    CHECK(seen == std::vector<std::size_t>{0, 1, 2});
    unipc_stepper<double> s({B, D}, grid, unipc_options{3});
    for (int i = 0; i < 3; ++i) s.step(m, batched(stepped, B));
    CHECK(stepper_check::same_bits(stopped, stepped));

    std::vector<double> a = x0, b = x0;
    int steps_seen = 0;
    sample_dpmpp_2m(m, batched(a, B), grid, {}, no_noise{}, [&](const step_info<double>&) { ++steps_seen; });
    sample_lms(m, batched(b, B), grid, {}, no_noise{}, [&](const step_info<double>&) { ++steps_seen; });
    CHECK(steps_seen == 2 * int(grid.steps()));
}

TEST_CASE("multistep samplers: the one-call form draws from the caller's noise source, not a copy",
          "[steppers][multistep]") {
    // A Brownian tree keeps workspaces between draws: the one-call form holds the source by reference.
    const time_grid grid({10.0, 4.0, 1.5, 0.6, 0.0});
    const std::size_t B = 1, D = 3;
    auto m = analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{});
    std::vector<double> x = stepper_check::initial_state<double>(B, D, 10.0);
    counting_noise noise;
    sample_dpmpp_sde(m, batched(x, B), grid, {}, noise);
    CHECK(noise.calls == 6);  // two draws on each step into σ > 0
    sample_dpmpp_2m_sde(m, batched(x, B), grid, {}, noise);
    CHECK(noise.calls == 9);
    brownian_tree_noise tree(3, 0.0, 10.0);
    std::vector<double> y = stepper_check::initial_state<double>(B, D, 10.0), z = y;
    sample_dpmpp_3m_sde(m, batched(y, B), grid, {}, tree);
    dpmpp_3m_sde_stepper<double, brownian_tree_noise&> s({B, D}, grid, {}, tree);
    while (!s.done()) s.step(m, batched(z, B));
    CHECK(stepper_check::same_bits(y, z));
}

TEST_CASE("multistep steppers: options are checked when the stepper is made", "[steppers][multistep]") {
    const time_grid grid({5.0, 1.0, 0.0});
    CHECK_THROWS_WITH(lms_stepper<double>({1, 2}, grid, lms_options{0}), Catch::Contains("sample_lms: order = 0"));
    CHECK_THROWS_WITH(unipc_stepper<double>({1, 2}, grid, unipc_options{4}), Catch::Contains("sample_unipc: solver_order = 4"));
    CHECK_THROWS_WITH(dpmpp_sde_stepper<double>({1, 2}, grid, dpmpp_sde_options{1.0, 1.0, 0.0}),
                      Catch::Contains("sample_dpmpp_sde: r = 0"));
    CHECK_THROWS_WITH(dpmpp_2m_sde_stepper<double>({1, 2}, grid, dpmpp_2m_sde_options{-1.0}),
                      Catch::Contains("sample_dpmpp_2m_sde: eta = -1"));
    CHECK_THROWS_WITH(dpmpp_3m_sde_stepper<double>({1, 2}, grid, dpmpp_3m_sde_options{1.0, -2.0}),
                      Catch::Contains("sample_dpmpp_3m_sde: s_noise = -2"));
    CHECK_THROWS_WITH(dpmpp_2s_ancestral_stepper<double>({1, 2}, grid, dpmpp_sde_options{-0.5}),
                      Catch::Contains("sample_dpmpp_2s_ancestral: eta = -0.5"));
}
