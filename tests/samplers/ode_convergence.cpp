// Convergence order of the ODE samplers on the closed-form Gaussian probability-flow ODE.
//
// Gaussian data x₀ ~ N(μ, diag(s²)) stays Gaussian along any process x = α·x₀ + σ·ε, with marginal
// N(αμ, α²s² + σ²) per dimension, and the probability-flow ODE (Song et al. 2021, eq. 13) maps states
// affinely: x(t) = α_t μ + √((α_t²s² + σ_t²)/(α_0²s² + σ_0²)) · (x(t_0) − α_0 μ). So the global error of a
// sampler run from t_0 to t_1 is known exactly. A method of order p has error ≈ C·N^{−p}; the test fits
// the least-squares slope of log(error) against log(N) over N = 16 … 256 (halving steps; N = 8 is still
// pre-asymptotic for these VP dynamics with β up to 20) and asserts it:
//   PF-ODE Euler ≈ 1, PF-ODE Heun ≈ 2 (t-space, VP SDE);
//   σ-space Euler ≈ 1, Heun ≈ 2, DPM-Solver++(2M) ≈ 2, DPM-Solver++(3M) (3M SDE with η = 0) ≥ 2,
//   UniPC (bh2, orders 2 and 3) ≥ 2;
//   RK45 meets its tolerance: global error ≤ 10·(rtol·|x| + atol) for rtol from 1e-3 to 1e-8, and shrinks
//   with it.
// Set DIFFUSE_PRINT_SLOPES=1 to print the measured slopes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/dpm_adaptive.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/unipc.hpp"

using namespace diffuse;

namespace {

const std::vector<double> mu{0.5, -1.0, 2.0};
const std::vector<double> var{0.25, 1.0, 0.09};
constexpr std::size_t B = 2, D = 3;

gaussian_mixture data() { return gaussian_mixture::gaussian(mu, var); }

std::vector<double> start_state() { return {0.3, -1.2, 0.8, -0.7, 1.5, 0.1}; }

// Exact PF-ODE map from (α0, σ0) to (α1, σ1).
std::vector<double> exact(const std::vector<double>& x0, double a0, double s0, double a1, double s1) {
    std::vector<double> y(x0.size());
    for (std::size_t i = 0; i < x0.size(); ++i) {
        const std::size_t d = i % D;
        const double k = std::sqrt((a1 * a1 * var[d] + s1 * s1) / (a0 * a0 * var[d] + s0 * s0));
        y[i] = a1 * mu[d] + k * (x0[i] - a0 * mu[d]);
    }
    return y;
}

double max_err(const std::vector<double>& a, const std::vector<double>& b) {
    double e = 0;
    for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::abs(a[i] - b[i]));
    return e;
}

// Least-squares slope of log(err) against log(N), negated (the order).
double order(const std::vector<double>& Ns, const std::vector<double>& errs) {
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < Ns.size(); ++i) {
        mx += std::log(Ns[i]);
        my += std::log(errs[i]);
    }
    mx /= double(Ns.size());
    my /= double(Ns.size());
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < Ns.size(); ++i) {
        sxy += (std::log(Ns[i]) - mx) * (std::log(errs[i]) - my);
        sxx += (std::log(Ns[i]) - mx) * (std::log(Ns[i]) - mx);
    }
    return -sxy / sxx;
}

void report(const char* name, double p, const std::vector<double>& errs) {
    if (std::getenv("DIFFUSE_PRINT_SLOPES")) {
        std::printf("%-28s order %.3f   errors", name, p);
        for (double e : errs) std::printf(" %.3e", e);
        std::printf("\n");
    }
}

const std::vector<double> Ns{16, 32, 64, 128, 256};

// Measured order of run(N) -> error over Ns.
double measure(const char* name, const std::function<double(std::size_t)>& run) {
    std::vector<double> errs;
    for (double n : Ns) errs.push_back(run(std::size_t(n)));
    const double p = order(Ns, errs);
    report(name, p, errs);
    return p;
}

// VP PF-ODE from t = 1 to t = 0.1 on a uniform grid.
const vp_sde vp{};
constexpr double t0 = 1.0, t1 = 0.1;
time_grid t_grid(std::size_t n) {
    std::vector<double> p(n + 1);
    for (std::size_t i = 0; i <= n; ++i) p[i] = t0 + (t1 - t0) * double(i) / double(n);
    return time_grid(p);
}
std::vector<double> vp_exact() {
    const auto m0 = vp.marginal(t0), m1 = vp.marginal(t1);
    return exact(start_state(), m0.mean_coef, m0.std, m1.mean_coef, m1.std);
}

// σ-space (VE) from σ = 10 to σ = 0.1 on a geometric grid.
constexpr double s0 = 10.0, s1 = 0.1;
time_grid sigma_grid(std::size_t n) {
    std::vector<double> p(n + 1);
    for (std::size_t i = 0; i <= n; ++i) p[i] = s0 * std::pow(s1 / s0, double(i) / double(n));
    return time_grid(p);
}
std::vector<double> ve_start() {
    auto x = start_state();
    for (auto& v : x) v *= s0;
    return x;
}
std::vector<double> ve_exact() { return exact(ve_start(), 1.0, s0, 1.0, s1); }

}  // namespace

TEST_CASE("convergence: probability-flow ODE Euler and Heun (VP, t-space)", "[samplers][score_sde][convergence]") {
    auto m = analytic_model(data(), prediction::epsilon, continuous_time<vp_sde>{vp});
    const auto want = vp_exact();
    const double p_euler = measure("pf_ode_euler (VP)", [&](std::size_t n) {
        auto x = start_state();
        sample_pf_ode_euler(m, batched(x, B), vp, t_grid(n));
        return max_err(x, want);
    });
    CHECK(p_euler == Approx(1.0).margin(0.1));
    const double p_heun = measure("pf_ode_heun (VP)", [&](std::size_t n) {
        auto x = start_state();
        sample_pf_ode_heun(m, batched(x, B), vp, t_grid(n));
        return max_err(x, want);
    });
    CHECK(p_heun == Approx(2.0).margin(0.15));
}

TEST_CASE("convergence: RK45 meets its tolerance", "[samplers][score_sde][convergence]") {
    auto m = analytic_model(data(), prediction::epsilon, continuous_time<vp_sde>{vp});
    const auto want = vp_exact();
    double xmax = 0;
    for (double v : want) xmax = std::max(xmax, std::abs(v));
    double prev = INFINITY;
    for (double rtol : {1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8}) {
        for (auto norm : {rk_error_norm::per_sample, rk_error_norm::batch}) {
            auto x = start_state();
            rk45_options o;
            o.rtol = rtol;
            o.atol = rtol * 1e-2;
            o.norm = norm;
            const auto st = sample_pf_ode_rk45(m, batched(x, B), vp, time_grid({t0, t1}), o);
            const double e = max_err(x, want);
            if (std::getenv("DIFFUSE_PRINT_SLOPES"))
                std::printf("rk45 rtol %.0e norm %d: error %.3e  (bound %.3e)  nfe %zu\n", rtol, int(norm), e,
                            rtol * xmax + o.atol, st.nfe);
            INFO("rtol " << rtol << " error " << e);
            CHECK(e <= 10 * (rtol * xmax + o.atol));
            if (norm == rk_error_norm::per_sample) {
                CHECK(e < prev);
                prev = e;
            }
        }
    }
}

TEST_CASE("convergence: DPM-adaptive meets its tolerance", "[samplers][score_sde][convergence]") {
    auto m = analytic_model(data(), prediction::sample, sigma_time{});
    const auto want = ve_exact();
    double xmax = 0;
    for (double v : want) xmax = std::max(xmax, std::abs(v));
    for (int ord : {2, 3}) {
        double prev = INFINITY;
        for (double rtol : {1e-2, 1e-3, 1e-4, 1e-5, 1e-6}) {
            auto x = ve_start();
            dpm_adaptive_options o;
            o.order = ord;
            o.rtol = rtol;
            o.atol = rtol * 1e-2;
            const auto st = sample_dpm_adaptive(m, batched(x, B), time_grid({s0, s1}), o);
            const double e = max_err(x, want);
            if (std::getenv("DIFFUSE_PRINT_SLOPES"))
                std::printf("dpm_adaptive order %d rtol %.0e: error %.3e  (bound %.3e)  nfe %zu\n", ord, rtol, e,
                            rtol * xmax + o.atol, st.nfe);
            INFO("order " << ord << " rtol " << rtol << " error " << e);
            CHECK(e <= 10 * (rtol * xmax + o.atol));
            CHECK(e < prev);
            prev = e;
        }
    }
}

TEST_CASE("convergence: sigma-space solvers (Euler, Heun, DPM-Solver++ 2M/3M)", "[samplers][score_sde][convergence]") {
    auto m = analytic_model(data(), prediction::sample, sigma_time{});
    const auto want = ve_exact();
    const double p_euler = measure("sample_euler (sigma)", [&](std::size_t n) {
        auto x = ve_start();
        sample_euler(m, batched(x, B), sigma_grid(n));
        return max_err(x, want);
    });
    CHECK(p_euler == Approx(1.0).margin(0.1));
    const double p_heun = measure("sample_heun (sigma)", [&](std::size_t n) {
        auto x = ve_start();
        sample_heun(m, batched(x, B), sigma_grid(n));
        return max_err(x, want);
    });
    CHECK(p_heun == Approx(2.0).margin(0.15));
    const double p_2m = measure("sample_dpmpp_2m (sigma)", [&](std::size_t n) {
        auto x = ve_start();
        dpmpp_2m_options o;
        o.lower_order_final = false;
        sample_dpmpp_2m(m, batched(x, B), sigma_grid(n), o);
        return max_err(x, want);
    });
    CHECK(p_2m == Approx(2.0).margin(0.15));
    const double p_3m = measure("sample_dpmpp_3m_sde eta=0", [&](std::size_t n) {
        auto x = ve_start();
        dpmpp_3m_sde_options o;
        o.eta = 0.0;
        sample_dpmpp_3m_sde(m, batched(x, B), sigma_grid(n), o);
        return max_err(x, want);
    });
    CHECK(p_3m >= 1.95);
    for (std::size_t order : {2, 3}) {
        const double p_unipc = measure(order == 2 ? "sample_unipc bh2 order 2" : "sample_unipc bh2 order 3", [&](std::size_t n) {
            auto x = ve_start();
            unipc_options o;
            o.solver_order = order;
            o.lower_order_final = false;
            sample_unipc(m, batched(x, B), sigma_grid(n), o);
            return max_err(x, want);
        });
        CHECK(p_unipc >= 1.95);
    }
}
