// Tests of include/diffuse/schedules/continuous.hpp: golden values are a numpy transcription of the
// reference sde_lib formulas (tools/gen_schedule_golden.py); properties integrate the variance ODE.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <numbers>

#include "diffuse/schedules/continuous.hpp"
#include "golden_util.hpp"

using namespace diffuse;
using Catch::Matchers::Contains;

namespace {
template <class Sde>
void check_golden(const Sde& sde, const char* name, bool has_ddpm_rule) {
    const auto g = sched_test::load(name);
    const auto t = sched_test::row(g, 0);
    for (std::size_t i = 0; i < t.size(); ++i) {
        INFO(name << " t = " << t[i]);
        const auto m = sde.marginal(t[i]);
        // Relative 1e-9: the reference computes 1 - exp(x) where we use -expm1(x) (more accurate at
        // small t, where the reference loses up to ~1e-11 relative).
        CHECK(m.mean_coef == Approx(sched_test::row(g, 1)[i]).epsilon(1e-12));
        CHECK(m.std == Approx(sched_test::row(g, 2)[i]).epsilon(1e-9).margin(1e-300));
        CHECK(sde.drift_coef(t[i]) == Approx(sched_test::row(g, 3)[i]).epsilon(1e-14));
        CHECK(sde.diffusion(t[i]) == Approx(sched_test::row(g, 4)[i]).epsilon(1e-9).margin(1e-300));
        const auto d = sde.discretize(t[i]);
        CHECK(d.f == Approx(sched_test::row(g, 5)[i]).epsilon(has_ddpm_rule ? 1e-10 : 1e-9).margin(1e-300));
        CHECK(d.G == Approx(sched_test::row(g, 6)[i]).epsilon(1e-10).margin(1e-300));
        const auto em = sde.discretize_em(t[i], 1.0 / 1000);
        CHECK(em.f == Approx(sched_test::row(g, 7)[i]).epsilon(1e-14));
        CHECK(em.G == Approx(sched_test::row(g, 8)[i]).epsilon(1e-9).margin(1e-300));
    }
}

// Σ(t) from dΣ/dt = 2 f(t) Σ + g(t)², Σ(t0) = std(t0)², by classical RK4 with `steps` steps.
template <class Sde>
double integrate_variance(const Sde& sde, double t0, double t1, int steps) {
    const double s0 = sde.marginal(t0).std;
    double S = s0 * s0, t = t0;
    const double h = (t1 - t0) / steps;
    auto rhs = [&](double tt, double SS) {
        const double g = sde.diffusion(tt);
        return 2.0 * sde.drift_coef(tt) * SS + g * g;
    };
    for (int k = 0; k < steps; ++k) {
        const double k1 = rhs(t, S), k2 = rhs(t + h / 2, S + h / 2 * k1), k3 = rhs(t + h / 2, S + h / 2 * k2),
                     k4 = rhs(t + h, S + h * k3);
        S += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
        t = t0 + (k + 1) * h;
    }
    return S;
}
}  // namespace

TEST_CASE("VP, sub-VP and VE coefficients match the reference formulas", "[schedules][continuous][golden]") {
    check_golden(vp_sde{}, "sde_vp", true);
    check_golden(subvp_sde{}, "sde_subvp", false);
    check_golden(ve_sde{}, "sde_ve", true);
}

TEST_CASE("defaults, priors and log-densities", "[schedules][continuous]") {
    CHECK(vp_sde::default_eps == 1e-3);
    CHECK(ve_sde::default_eps == 1e-5);
    CHECK(vp_sde::T == 1.0);
    CHECK(vp_sde::prior_std() == 1.0);
    CHECK(ve_sde{}.prior_std() == 50.0);
    const double ln2pi = std::log(2 * std::numbers::pi);
    CHECK(vp_sde::prior_logp(3.0, 4) == Approx(-2 * ln2pi - 1.5).epsilon(1e-15));
    CHECK(subvp_sde::prior_logp(0.0, 1) == Approx(-0.5 * ln2pi).epsilon(1e-15));
    CHECK(ve_sde{}.prior_logp(2500.0, 2) == Approx(-std::log(2 * std::numbers::pi * 2500.0) - 0.5).epsilon(1e-15));
}

TEST_CASE("marginal std solves the variance ODE", "[schedules][continuous][property]") {
    // RK4 with 4000 steps on [t0, t]: global error O(h^4) ~ 1e-12 for these smooth coefficients; we allow
    // 1e-8 relative (the VE right-hand side grows like σmax² so we compare relatively).
    rc::prop("VP / sub-VP / VE", [] {
        const double b0 = *rc::gen::inRange(1, 100) / 100.0;           // [0.01, 1)
        const double b1 = b0 + *rc::gen::inRange(0, 3000) / 100.0;     // + [0, 30)
        const double t = *rc::gen::inRange(1, 1001) / 1000.0;
        const vp_sde vp(b0, b1);
        const subvp_sde sv(b0, b1);
        const double v_vp = integrate_variance(vp, 0.0, t, 4000);
        RC_ASSERT(std::fabs(v_vp - std::pow(vp.marginal(t).std, 2)) <= 1e-8 * std::pow(vp.marginal(t).std, 2));
        const double v_sv = integrate_variance(sv, 0.0, t, 4000);
        RC_ASSERT(std::fabs(v_sv - std::pow(sv.marginal(t).std, 2)) <= 1e-8 * std::pow(sv.marginal(t).std, 2) + 1e-15);
        const double smin = *rc::gen::inRange(1, 100) / 1000.0;
        const double smax = smin * (1.5 + *rc::gen::inRange(0, 1000) / 10.0);
        const ve_sde ve(smin, smax);
        const double v_ve = integrate_variance(ve, 0.0, t, 4000);
        RC_ASSERT(std::fabs(v_ve - std::pow(ve.marginal(t).std, 2)) <= 1e-8 * std::pow(ve.marginal(t).std, 2));
    });
}

TEST_CASE("log-SNR and its inverse", "[schedules][continuous][property]") {
    rc::prop("t_from_log_snr(log_snr(t)) == t", [] {
        const double t = *rc::gen::inRange(1, 1001) / 1000.0;
        const vp_sde vp(0.1, 20.0);
        const subvp_sde sv(0.1, 20.0);
        const ve_sde ve(0.01, 50.0);
        RC_ASSERT(std::fabs(vp.t_from_log_snr(vp.log_snr(t)) - t) <= 1e-10);
        RC_ASSERT(std::fabs(sv.t_from_log_snr(sv.log_snr(t)) - t) <= 1e-8);
        RC_ASSERT(std::fabs(ve.t_from_log_snr(ve.log_snr(t)) - t) <= 1e-12);
        // λ = log(mean² / std²)
        const auto m = vp.marginal(t);
        RC_ASSERT(std::fabs(vp.log_snr(t) - std::log(m.mean_coef * m.mean_coef / (m.std * m.std))) <= 1e-9);
        const auto ms = sv.marginal(t);
        RC_ASSERT(std::fabs(sv.log_snr(t) - std::log(ms.mean_coef * ms.mean_coef / (ms.std * ms.std))) <= 1e-9);
    });
}

TEST_CASE("continuous SDEs reject invalid arguments", "[schedules][continuous][errors]") {
    CHECK_THROWS_WITH(vp_sde(0.0, 20.0), Contains("beta_min") && Contains("= 0"));
    CHECK_THROWS_WITH(vp_sde(1.0, 0.5), Contains("beta_max") && Contains("0.5"));
    CHECK_THROWS_WITH(subvp_sde(0.1, 20.0, 0), Contains("N") && Contains("= 0"));
    CHECK_THROWS_WITH(ve_sde(0.0, 50.0), Contains("sigma_min") && Contains("= 0"));
    CHECK_THROWS_WITH(ve_sde(1.0, 1.0), Contains("sigma_max") && Contains("= 1"));
    CHECK_THROWS_WITH(vp_sde{}.marginal(1.5), Contains("t") && Contains("1.5") && Contains("[0, 1]"));
    CHECK_THROWS_WITH(ve_sde{}.discretize(-0.1), Contains("t") && Contains("-0.1"));
    CHECK_THROWS_WITH(vp_sde{}.discretize_em(0.5, 0.0), Contains("dt") && Contains("= 0"));
    CHECK_THROWS_WITH(vp_sde::prior_logp(-1.0, 3), Contains("sum_sq") && Contains("-1"));
    CHECK_THROWS_WITH(ve_sde{}.prior_logp(1.0, 0), Contains("dim") && Contains("= 0"));
}
