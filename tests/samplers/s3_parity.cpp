// Parity of the score_sde-family samplers (samplers/sde.hpp, samplers/ode.hpp) with a faithful numpy
// re-implementation of score_sde's update rules and with scipy's RK45 (tools/gen_sampler_golden_s3.py),
// fed identical noise through diffuse::recorded_noise.
//
// Tolerances (float64): the stochastic and fixed-step samplers agree to 1e-10 relative to the sample's
// scale — the two sides evaluate the same expressions, rounding differs only in the order of a few
// multiply-adds (the port folds each update into one lincomb) and in the score's arithmetic (the
// analytic model goes through E[x₀|x] and Tweedie, the script uses the direct mixture score). RK45:
// 1e-8 — scipy combines the stages with BLAS dot products in another order, and the port's step-size
// sequence must come out identical (checked: same number of model calls as scipy's nfev).
// A float32 spot check runs two specs in single precision against the float64 reference (1e-4).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/sde.hpp"

using namespace diffuse;

namespace {

constexpr std::size_t B = 3, D = 3;

std::string golden(const std::string& name) { return std::string(DIFFUSE_GOLDEN_DIR) + "/samplers/s3/" + name + ".npy"; }
std::vector<double> load(const std::string& name) { return io::read_npy(golden(name)).as<double>(); }

gaussian_mixture parity_data() { return gaussian_mixture({0.4, 0.6}, {1.0, -0.5, 0.3, -1.0, 0.8, -0.2}, {0.09, 0.25}); }

template <class Sde>
auto score_model(const Sde& sde) {
    return analytic_model(parity_data(), prediction::score, continuous_time<Sde>{sde});
}

template <class T>
void check_close(const std::vector<T>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    double scale = 1.0;
    for (double v : want) scale = std::max(scale, std::abs(v));
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element " << i << ": got " << double(got[i]) << ", reference " << want[i]);
        CHECK(std::abs(double(got[i]) - want[i]) <= tol * scale);
    }
}

struct pc_case {
    const char* name;
    const char* sde;
    sde_predictor predictor;
    sde_corrector corrector;
    double snr;
    std::size_t n_steps;
    bool probability_flow, denoise;
    langevin_norm norm;
};

constexpr std::size_t N = 25;

template <class T, class Sde>
std::vector<T> run_pc(const Sde& sde, double eps, const pc_case& c) {
    auto m = score_model(sde);
    const auto x0 = load(std::string(c.name) + "_x");
    std::vector<T> x(x0.begin(), x0.end());
    recorded_noise noise(load(std::string(c.name) + "_noise"), B * D);
    pc_options o;
    o.predictor = c.predictor;
    o.corrector = c.corrector;
    o.snr = c.snr;
    o.n_steps = c.n_steps;
    o.probability_flow = c.probability_flow;
    o.denoise = c.denoise;
    o.norm = c.norm;
    o.reference_dt = true;
    sample_pc(m, sde, batched(x, B), time_grid(score_sde_time_grid(sde, eps)), o, noise);
    return x;
}

template <class T>
std::vector<T> run_pc_named(const pc_case& c) {
    const std::string s = c.sde;
    if (s == "vp") return run_pc<T>(vp_sde(0.1, 20, N), 1e-3, c);
    if (s == "subvp") return run_pc<T>(subvp_sde(0.1, 20, N), 1e-3, c);
    return run_pc<T>(ve_sde(0.01, 50, N), 1e-5, c);
}

using P = sde_predictor;
using C = sde_corrector;
const langevin_norm BM = langevin_norm::batch_mean, PS = langevin_norm::per_sample;
const pc_case pc_cases[] = {
    {"em_vp", "vp", P::euler_maruyama, C::none, 0.16, 1, false, true, BM},
    {"em_subvp", "subvp", P::euler_maruyama, C::none, 0.16, 1, false, true, BM},
    {"em_ve", "ve", P::euler_maruyama, C::none, 0.16, 1, false, true, BM},
    {"em_pf_vp", "vp", P::euler_maruyama, C::none, 0.16, 1, true, false, BM},
    {"rd_langevin_vp", "vp", P::reverse_diffusion, C::langevin, 0.16, 1, false, true, BM},
    {"rd_langevin_subvp", "subvp", P::reverse_diffusion, C::langevin, 0.16, 1, false, true, BM},
    {"rd_langevin_ve", "ve", P::reverse_diffusion, C::langevin, 0.16, 1, false, true, BM},
    {"rd_pf_ve", "ve", P::reverse_diffusion, C::none, 0.16, 1, true, true, BM},
    {"anc_langevin2_vp", "vp", P::ancestral, C::langevin, 0.1, 2, false, true, BM},
    {"anc_langevin2_ve", "ve", P::ancestral, C::langevin, 0.1, 2, false, false, BM},
    {"rd_ald_vp", "vp", P::reverse_diffusion, C::ald, 0.16, 1, false, true, BM},
    {"rd_ald_ve", "ve", P::reverse_diffusion, C::ald, 0.16, 2, false, true, BM},
    {"langevin_only_ve", "ve", P::none, C::langevin, 0.16, 1, false, true, BM},
    {"rd_langevin_persample_vp", "vp", P::reverse_diffusion, C::langevin, 0.16, 1, false, true, PS},
    {"rd_langevin_persample_ve", "ve", P::reverse_diffusion, C::langevin, 0.2, 2, false, true, PS},
};

}  // namespace

TEST_CASE("s3 parity: predictor-corrector samplers match score_sde's update rules", "[samplers][s3][parity]") {
    for (const auto& c : pc_cases) {
        INFO("spec " << c.name);
        // sub-VP: σ(eps) ≈ 1e-4, the score is ~1e8; the reference's std = 1 − e^{2·lmc} loses ~1e-12
        // relative to cancellation where the port uses expm1, and the final denoise step multiplies it.
        check_close(run_pc_named<double>(c), load(std::string(c.name) + "_out"), std::string(c.sde) == "subvp" ? 5e-9 : 1e-10);
    }
}

TEST_CASE("s3 parity: float32 spot checks", "[samplers][s3][parity]") {
    for (const auto& c : {pc_cases[0], pc_cases[4], pc_cases[6]}) {
        INFO("spec " << c.name);
        check_close(run_pc_named<float>(c), load(std::string(c.name) + "_out"), 1e-4);
    }
}

TEST_CASE("s3 parity: Euler-Maruyama on a per-sample grid", "[samplers][s3][parity]") {
    const vp_sde sde(0.1, 20, N);
    auto m = score_model(sde);
    const auto x0 = load("em_grid_persample_vp_x");
    std::vector<double> x(x0), grid = load("em_grid_persample_vp_grid");
    recorded_noise noise(load("em_grid_persample_vp_noise"), B * D);
    sample_euler_maruyama(m, sde, batched(x, B), time_grid(grid, B), {}, noise);
    check_close(x, load("em_grid_persample_vp_out"), 1e-10);
}

TEST_CASE("s3 parity: probability-flow ODE RK45 matches scipy's solve_ivp as score_sde calls it", "[samplers][s3][parity]") {
    auto run = [](const auto& sde, double eps, const char* name, bool denoise) {
        auto m = score_model(sde);
        const auto x0 = load(std::string(name) + "_x");
        std::vector<double> x(x0);
        rk45_options o;
        o.norm = rk_error_norm::batch;
        o.denoise = denoise;
        const auto st = sample_pf_ode_rk45(m, sde, batched(x, B), time_grid({1.0, eps}), o);
        INFO("spec " << name);
        // nfev counts the function calls of the reference solver; the denoising step is outside it
        CHECK(double(st.nfe - (denoise ? 1 : 0)) == load(std::string(name) + "_nfe")[0]);
        check_close(x, load(std::string(name) + "_out"), 1e-8);
    };
    run(vp_sde(0.1, 20, N), 1e-3, "rk45_vp", true);
    run(subvp_sde(0.1, 20, N), 1e-3, "rk45_subvp", false);
    run(ve_sde(0.01, 50, N), 1e-5, "rk45_ve", false);
}

TEST_CASE("s3 parity: probability-flow ODE Euler and Heun", "[samplers][s3][parity]") {
    const vp_sde sde(0.1, 20, N);
    std::vector<double> pts(21);
    for (std::size_t i = 0; i < 21; ++i) pts[i] = i == 20 ? 1e-3 : 1.0 + double(i) * ((1e-3 - 1.0) / 20.0);
    const time_grid grid(pts);
    auto m = score_model(sde);
    std::vector<double> x = load("pf_euler_vp_x");
    sample_pf_ode_euler(m, sde, batched(x, B), grid);
    check_close(x, load("pf_euler_vp_out"), 1e-10);
    x = load("pf_heun_vp_x");
    sample_pf_ode_heun(m, sde, batched(x, B), grid);
    check_close(x, load("pf_heun_vp_out"), 1e-10);
}

TEST_CASE("s3 parity: NCSN annealed Langevin dynamics", "[samplers][s3][parity]") {
    auto m = analytic_model(parity_data(), prediction::score, sigma_time{});
    std::vector<double> x = load("ald_ncsn_x");
    recorded_noise noise(load("ald_ncsn_noise"), B * D);
    annealed_langevin_options o;
    o.step_lr = 2e-3;
    o.n_steps_each = 3;
    o.denoise = true;
    sample_annealed_langevin(m, batched(x, B), time_grid(load("ald_ncsn_sigmas")), o, noise);
    check_close(x, load("ald_ncsn_out"), 1e-10);
}
