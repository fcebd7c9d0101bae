// The score-SDE, probability-flow ODE and adaptive steppers (samplers/sde.hpp, ode.hpp, dpm_adaptive.hpp):
// pull, push, copies between any two steps and the one-call form give the same bits for every predictor ×
// corrector of PC on the VP, sub-VP and VE SDEs, annealed Langevin, the PF-ODE Euler/Heun/RK45 solvers and
// DPM-adaptive (both error norms, η > 0, rejected attempts, per-sample grids); the SDE steppers pass the exact
// SDE time to a model that reads it, and name it in push mode.
//
// The models of the mode checks read time through σ/α (sigma_time): in push mode the caller fulfils the plain
// evaluation, which for an SDE-time model would derive t from α and σ (equal to the exact t up to rounding).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/dpm_adaptive.hpp"
#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/prior.hpp"
#include "diffuse/samplers/sde.hpp"
#include "stepper_support.hpp"

using namespace diffuse;

namespace {

constexpr std::size_t D = 4;

gaussian_mixture mix() {
    return gaussian_mixture({0.35, 0.65}, {0.6, -0.2, 0.9, 0.1, -0.7, 0.4, -0.5, -0.3}, {0.05, 0.12});
}

template <class T>
std::vector<T> initial(std::size_t B, double scale, std::uint64_t seed = 5) {
    std::vector<T> x(B * D);
    fill_normal(tensor_view<T>{x.data(), B, D}, seed, 0);
    for (auto& v : x) v = T(v * scale);
    return x;
}

const char* name_of(sde_predictor p) {
    switch (p) {
        case sde_predictor::euler_maruyama: return "euler_maruyama";
        case sde_predictor::reverse_diffusion: return "reverse_diffusion";
        case sde_predictor::ancestral: return "ancestral";
        case sde_predictor::none: return "none";
    }
    return "";
}
const char* name_of(sde_corrector c) {
    switch (c) {
        case sde_corrector::none: return "none";
        case sde_corrector::langevin: return "langevin";
        case sde_corrector::ald: return "ald";
    }
    return "";
}

// Every predictor × corrector of PC on one SDE, with probability_flow, denoise, reference_dt and both
// Langevin norms among the variants; a per-sample grid and recorded noise once.
template <class T, class Sde>
void pc_family(const Sde& sde, const char* sde_name, std::size_t B) {
    const auto x0 = initial<T>(B, sde.prior_std());
    // 8 steps of the reference's linspace(T, eps) and the end point 0 (the SDE's N sets its discrete tables)
    std::vector<double> pts(9, 0.0);
    for (std::size_t i = 0; i < 8; ++i) pts[i] = Sde::T + (Sde::default_eps - Sde::T) * double(i) / 7.0;
    const time_grid grid(pts);
    auto model = [] { return analytic_model(mix(), prediction::epsilon, sigma_time{}); };
    const batch_shape shape{B, D};
    const counter_noise noise{21, 4};
    using stepper_check::check_modes;
    for (auto pred : {sde_predictor::euler_maruyama, sde_predictor::reverse_diffusion, sde_predictor::ancestral,
                      sde_predictor::none}) {
        if (pred == sde_predictor::ancestral && std::is_same_v<Sde, subvp_sde>) continue;  // VP and VE only
        for (auto corr : {sde_corrector::none, sde_corrector::langevin, sde_corrector::ald}) {
            if (pred == sde_predictor::none && corr == sde_corrector::none) continue;  // nothing to do
            for (int variant = 0; variant < 4; ++variant) {
                pc_options o;
                o.predictor = pred;
                o.corrector = corr;
                o.n_steps = 2;
                o.snr = 0.1;
                o.denoise = variant != 1;
                o.norm = variant == 2 ? langevin_norm::per_sample : langevin_norm::batch_mean;
                o.reference_dt = variant == 3;
                o.probability_flow = variant == 3 && pred != sde_predictor::ancestral;
                const std::string name = std::string("pc ") + sde_name + " " + name_of(pred) + " + " + name_of(corr) +
                                         " variant " + std::to_string(variant);
                check_modes(name, [&] { return pc_stepper<T, Sde>(shape, sde, grid, o, noise); }, model,
                            [&](auto& m, tensor_view<T> x) { sample_pc(m, x, sde, grid, o, noise); }, x0, B);
            }
        }
    }
    // the predictor-only one-call forms are PC steppers without a corrector
    pc_options em;
    em.predictor = sde_predictor::euler_maruyama;
    em.corrector = sde_corrector::none;
    check_modes(std::string("euler_maruyama ") + sde_name, [&] { return pc_stepper<T, Sde>(shape, sde, grid, em, noise); },
                model, [&](auto& m, tensor_view<T> x) { sample_euler_maruyama(m, x, sde, grid, {}, noise); }, x0, B);
    pc_options rd = em;
    rd.predictor = sde_predictor::reverse_diffusion;
    check_modes(std::string("reverse_diffusion ") + sde_name, [&] { return pc_stepper<T, Sde>(shape, sde, grid, rd, noise); },
                model, [&](auto& m, tensor_view<T> x) { sample_reverse_diffusion(m, x, sde, grid, {}, noise); }, x0, B);
    if constexpr (!std::is_same_v<Sde, subvp_sde>) {
        pc_options an = em;
        an.predictor = sde_predictor::ancestral;
        check_modes(std::string("sde_ancestral ") + sde_name, [&] { return pc_stepper<T, Sde>(shape, sde, grid, an, noise); },
                    model, [&](auto& m, tensor_view<T> x) { sample_sde_ancestral(m, x, sde, grid, {}, noise); }, x0, B);
    }
    // a per-sample grid (each row its own start time) and recorded noise replayed in draw order
    std::vector<std::vector<double>> rows;
    for (std::size_t b = 0; b < B; ++b) {
        rows.push_back({Sde::T - 0.1 * double(b), 0.6, 0.3 - 0.05 * double(b), 0.1, 0.0});
    }
    const auto per_sample = time_grid::per_sample(rows);
    pc_options o;
    o.norm = langevin_norm::per_sample;
    check_modes(std::string("pc per-sample grid ") + sde_name, [&] { return pc_stepper<T, Sde>(shape, sde, per_sample, o, noise); },
                model, [&](auto& m, tensor_view<T> x) { sample_pc(m, x, sde, per_sample, o, noise); }, x0, B);
    std::vector<double> rec(3 * grid.steps() * B * D);
    for (std::size_t i = 0; i < rec.size(); ++i) rec[i] = double(i % 11) / 5.0 - 1.0;
    const recorded_noise recorded(rec, B * D);
    check_modes(std::string("pc recorded ") + sde_name,
                [&] { return pc_stepper<T, Sde, const recorded_noise&>(shape, sde, grid, {}, recorded); }, model,
                [&](auto& m, tensor_view<T> x) { sample_pc(m, x, sde, grid, {}, recorded); }, x0, B);
}

template <class T, class Sde>
void pf_ode_family(const Sde& sde, const char* sde_name, std::size_t B, double rk_rtol) {
    const auto x0 = initial<T>(B, sde.prior_std());
    std::vector<double> pts(7);
    for (std::size_t i = 0; i < pts.size(); ++i)
        pts[i] = Sde::T + (0.02 - Sde::T) * double(i) / double(pts.size() - 1);
    const time_grid grid(pts);
    auto model = [] { return analytic_model(mix(), prediction::score, sigma_time{}); };
    const batch_shape shape{B, D};
    using stepper_check::check_modes;
    for (bool denoise : {false, true}) {
        const pf_ode_options o{denoise};
        const std::string tag = std::string(sde_name) + (denoise ? " denoise" : "");
        check_modes("pf_ode_euler " + tag, [&] { return pf_ode_euler_stepper<T, Sde>(shape, sde, grid, o); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_pf_ode_euler(m, x, sde, grid, o); }, x0, B);
        check_modes("pf_ode_heun " + tag, [&] { return pf_ode_heun_stepper<T, Sde>(shape, sde, grid, o); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_pf_ode_heun(m, x, sde, grid, o); }, x0, B);
    }
    // RK45: per-sample and batch norms, the final denoise, a per-sample grid; the stats of a stepper equal
    // the one-call form's, and some attempt is rejected (a first step far too large)
    const time_grid coarse({Sde::T, 0.6, 0.25, 0.02});
    std::vector<std::vector<double>> rows;
    for (std::size_t b = 0; b < B; ++b) rows.push_back({Sde::T - 0.05 * double(b), 0.5, 0.1 + 0.02 * double(b)});
    const auto per_sample = time_grid::per_sample(rows);
    bool rejected = false;
    for (int variant = 0; variant < 4; ++variant) {
        rk45_options o;
        o.rtol = o.atol = rk_rtol;
        o.norm = variant % 2 == 0 ? rk_error_norm::per_sample : rk_error_norm::batch;
        o.denoise = variant >= 2;
        o.first_step = variant == 1 ? 0.4 : 0.0;
        const time_grid& g = variant == 2 ? per_sample : coarse;
        const std::string name = "pf_ode_rk45 " + std::string(sde_name) + " variant " + std::to_string(variant);
        ode_stats one{};
        check_modes(name, [&] { return pf_ode_rk45_stepper<T, Sde>(shape, sde, g, o); }, model,
                    [&](auto& m, tensor_view<T> x) { one = sample_pf_ode_rk45(m, x, sde, g, o); }, x0, B);
        pf_ode_rk45_stepper<T, Sde> s(shape, sde, g, o);
        auto m = model();
        auto x = x0;
        while (!s.done()) s.step(m, stepper_check::as_view(x, B));
        INFO(name);
        CHECK(s.stats().nfe == one.nfe);
        CHECK(s.stats().accepted == one.accepted);
        CHECK(s.stats().rejected == one.rejected);
        CHECK(one.accepted > 0);
        rejected = rejected || s.stats().rejected > 0;
    }
    CHECK(rejected);
}

template <class T>
void annealed_langevin_family(std::size_t B) {
    const time_grid sigmas({8.0, 3.0, 1.0, 0.3, 0.1});
    const auto x0 = initial<T>(B, 8.0);
    auto model = [] { return analytic_model(mix(), prediction::score, sigma_time{}); };
    const batch_shape shape{B, D};
    const counter_noise noise{3, 1};
    for (bool denoise : {false, true}) {
        const annealed_langevin_options o{1e-3, 3, denoise};
        stepper_check::check_modes(
            std::string("annealed_langevin") + (denoise ? " denoise" : ""),
            [&] { return annealed_langevin_stepper<T>(shape, sigmas, o, noise); }, model,
            [&](auto& m, tensor_view<T> x) { sample_annealed_langevin(m, x, sigmas, o, noise); }, x0, B);
    }
    annealed_langevin_stepper<T> s(shape, sigmas, {});
    CHECK(s.steps() == 5);  // one step per noise level: every point of the grid
}

template <class T>
void dpm_adaptive_family(std::size_t B) {
    const time_grid grid({14.0, 3.0, 0.6, 0.05, 0.0});
    std::vector<std::vector<double>> rows;
    for (std::size_t b = 0; b < B; ++b) rows.push_back({12.0 - double(b), 1.5 + 0.2 * double(b), 0.05 * double(b)});
    const auto per_sample = time_grid::per_sample(rows);
    const auto x0 = initial<T>(B, 14.0);
    auto model = [] { return analytic_model(mix(), prediction::sample, sigma_time{}); };
    const batch_shape shape{B, D};
    const counter_noise noise{9, 2};
    bool rejected = false;
    for (int order : {2, 3}) {
        for (int variant = 0; variant < 4; ++variant) {
            dpm_adaptive_options o;
            o.order = order;
            o.rtol = 0.02;
            o.atol = 0.002;
            o.h_init = variant == 3 ? 2.0 : 0.05;  // a first step far too large: rejected
            o.norm = variant == 1 ? rk_error_norm::batch : rk_error_norm::per_sample;
            o.eta = variant >= 2 ? 0.7 : 0.0;
            const time_grid& g = variant == 2 ? per_sample : grid;
            const std::string name = "dpm_adaptive order " + std::to_string(order) + " variant " + std::to_string(variant);
            ode_stats one{};
            stepper_check::check_modes(
                name, [&] { return dpm_adaptive_stepper<T>(shape, g, o, noise); }, model,
                [&](auto& m, tensor_view<T> x) { one = sample_dpm_adaptive(m, x, g, o, noise); }, x0, B);
            dpm_adaptive_stepper<T> s(shape, g, o, noise);
            auto m = model();
            auto x = x0;
            while (!s.done()) s.step(m, stepper_check::as_view(x, B));
            INFO(name);
            CHECK(s.stats().nfe == one.nfe);
            CHECK(s.stats().accepted == one.accepted);
            CHECK(s.stats().rejected == one.rejected);
            rejected = rejected || s.stats().rejected > 0;
        }
    }
    CHECK(rejected);
    // recorded noise, replayed by each sample's accepted-step number
    std::vector<double> rec(400 * B * D);
    for (std::size_t i = 0; i < rec.size(); ++i) rec[i] = double(i % 17) / 8.0 - 1.0;
    const recorded_noise recorded(rec, B * D);
    dpm_adaptive_options o;
    o.eta = 1.0;
    stepper_check::check_modes(
        "dpm_adaptive recorded", [&] { return dpm_adaptive_stepper<T, const recorded_noise&>(shape, grid, o, recorded); },
        model, [&](auto& m, tensor_view<T> x) { sample_dpm_adaptive(m, x, grid, o, recorded); }, x0, B);
}

}  // namespace

TEST_CASE("sde steppers: PC, every predictor x corrector, pull, push, copies and one-call give the same bits",
          "[steppers][sde]") {
    pc_family<double>(vp_sde(0.1, 20, 25), "vp", 3);
    pc_family<float>(vp_sde(0.1, 20, 25), "vp", 2);
    pc_family<double>(subvp_sde(0.1, 20, 25), "subvp", 3);
    pc_family<float>(subvp_sde(0.1, 20, 25), "subvp", 2);
    pc_family<double>(ve_sde(0.01, 50, 25), "ve", 3);
    pc_family<float>(ve_sde(0.01, 50, 25), "ve", 2);
}

TEST_CASE("sde steppers: annealed Langevin gives the same bits in every mode", "[steppers][sde]") {
    annealed_langevin_family<double>(3);
    annealed_langevin_family<float>(2);
}

TEST_CASE("ode steppers: probability-flow Euler, Heun and RK45 give the same bits in every mode", "[steppers][ode]") {
    pf_ode_family<double>(vp_sde(0.1, 20, 30), "vp", 3, 1e-5);
    pf_ode_family<float>(vp_sde(0.1, 20, 30), "vp", 2, 1e-4);
    pf_ode_family<double>(subvp_sde(0.1, 20, 30), "subvp", 3, 1e-5);
    pf_ode_family<float>(subvp_sde(0.1, 20, 30), "subvp", 2, 1e-4);
    pf_ode_family<double>(ve_sde(0.01, 50, 30), "ve", 3, 1e-5);
    pf_ode_family<float>(ve_sde(0.01, 50, 30), "ve", 2, 1e-4);
}

TEST_CASE("dpm_adaptive stepper: both norms, eta > 0, rejections and per-sample grids in every mode",
          "[steppers][dpm_adaptive]") {
    dpm_adaptive_family<double>(3);
    dpm_adaptive_family<float>(2);
}

TEST_CASE("sde steppers: a model on the SDE's time gets the exact t in pull mode; push mode names it",
          "[steppers][sde]") {
    const vp_sde vp(0.1, 20, 25);
    const std::size_t B = 2;
    const std::vector<double> pts = score_sde_time_grid(vp);
    std::vector<double> seen;
    auto net = [&seen](tensor_view<const double> x, const model_cond& c, tensor_view<double> out) {
        seen.push_back(c.t[0]);
        for (std::size_t i = 0; i < x.size(); ++i) out[i] = -0.5 * x[i];
    };
    model m(net, prediction::score, continuous_time<vp_sde>{vp});
    std::vector<double> x(B * D);
    sample_prior(vp, batched(x, B), 3);
    pc_options o;
    o.corrector = sde_corrector::none;
    pc_stepper<double, vp_sde> s({B, D}, vp, time_grid(pts), o);
    while (!s.done()) s.step(m, batched(x, B));
    REQUIRE(seen.size() == 25);
    for (std::size_t i = 0; i < 25; ++i) CHECK(seen[i] == pts[i]);  // bit-exact: the grid's own t
    // push: the evaluation states the SDE time and the marginal's α, σ at it
    pc_stepper<double, vp_sde> p({B, D}, vp, time_grid(pts), o);
    std::size_t i = 0;
    while (!p.done()) {
        for (const auto* e = p.begin_step(batched(x, B)); e != nullptr; e = p.resume()) {
            CHECK(e->time_name == "t");
            REQUIRE(e->time.size() == B);
            CHECK(e->time[0] == pts[i]);
            CHECK(e->t_net.empty());
            CHECK(e->want == prediction::score);
            CHECK(e->alpha[1] == vp.marginal(pts[i]).mean_coef);
            CHECK(e->sigma[1] == vp.marginal(pts[i]).std);
            evaluate(m, *e);
        }
        ++i;
    }
    // the one-call form with an SDE-time model goes through the exact-time path too
    seen.clear();
    std::vector<double> y(B * D);
    sample_prior(vp, batched(y, B), 3);
    auto z = y;
    sample_pc(m, batched(y, B), vp, time_grid(pts), o);
    pc_stepper<double, vp_sde> q({B, D}, vp, time_grid(pts), o);
    run(q, m, batched(z, B));
    CHECK(stepper_check::same_bits(y, z));
}

TEST_CASE("sde/ode steppers: the x0 preview, the final denoise inside the last step, stats as they go",
          "[steppers][sde][ode]") {
    const vp_sde vp(0.1, 20, 25);
    const std::size_t B = 2;
    auto m = analytic_model(mix(), prediction::epsilon, continuous_time<vp_sde>{vp});
    std::vector<double> x(B * D);
    sample_prior(vp, batched(x, B), 8);
    const time_grid grid(score_sde_time_grid(vp));
    pc_stepper<double, vp_sde> s({B, D}, vp, grid);
    CHECK(s.steps() == grid.steps());
    s.step(m, batched(x, B));
    CHECK(s.info(tensor_view<const double>(batched(x, B))).denoised.size() == B * D);
    s.preview_denoised(false);
    s.step(m, batched(x, B));
    CHECK(s.info(tensor_view<const double>(batched(x, B))).denoised.size() == 0);
    // PF-ODE with denoise: the observer's last x is the final sample (the denoise is the last step's)
    const time_grid ode_grid({1.0, 0.5, 0.1, 0.01});
    std::vector<double> y(B * D), last;
    sample_prior(vp, batched(y, B), 8);
    std::size_t steps = 0;
    sample_pf_ode_heun(m, batched(y, B), vp, ode_grid, {true}, no_noise{}, [&](const step_info<double>& i) {
        ++steps;
        last.assign(i.x.data, i.x.data + i.x.size());
    });
    CHECK(steps == 3);
    CHECK(last == y);
    // RK45's stats grow step by step; the denoise counts one model call
    rk45_options r;
    r.denoise = true;
    pf_ode_rk45_stepper<double, vp_sde> rk({B, D}, vp, ode_grid, r);
    std::vector<double> z(B * D);
    sample_prior(vp, batched(z, B), 8);
    std::size_t nfe = 0;
    while (!rk.done()) {
        rk.step(m, batched(z, B));
        CHECK(rk.stats().nfe > nfe);
        nfe = rk.stats().nfe;
    }
    CHECK((nfe - 1 - 2) % 6 == 0);  // start (2 calls), 6 per attempt, 1 for the denoise
}

TEST_CASE("sde/ode steppers: invalid options are refused when the stepper is made", "[steppers][sde]") {
    const subvp_sde sub(0.1, 20, 25);
    pc_options a;
    a.predictor = sde_predictor::ancestral;
    CHECK_THROWS_WITH((pc_stepper<double, subvp_sde>({2, D}, sub, time_grid(score_sde_time_grid(sub)), a)),
                      Catch::Contains("VP and VE"));
    pc_options pf;
    pf.predictor = sde_predictor::ancestral;
    pf.probability_flow = true;
    const vp_sde vp(0.1, 20, 25);
    CHECK_THROWS_WITH((pc_stepper<double, vp_sde>({2, D}, vp, time_grid(score_sde_time_grid(vp)), pf)),
                      Catch::Contains("probability_flow"));
    CHECK_THROWS_WITH((pf_ode_rk45_stepper<double, vp_sde>({2, D}, vp, time_grid({1.0, 0.0}))), Catch::Contains("end point"));
    CHECK_THROWS_WITH((annealed_langevin_stepper<double>({2, D}, time_grid({1.0, 0.0}))), Catch::Contains("sigma"));
    dpm_adaptive_options d;
    d.norm = rk_error_norm::batch;
    CHECK_THROWS_WITH((dpm_adaptive_stepper<double>({2, D}, time_grid::per_sample({{10, 0.1}, {5, 0.1}}), d)),
                      Catch::Contains("shared time grid"));
}
