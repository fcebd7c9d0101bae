// Parity with k-diffusion 0.1.1 (tools/gen_sampler_golden_s2.py): every σ-space sampler on the analytic
// Gaussian, fed k-diffusion's recorded noise in call order.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/lms.hpp"
#include "s2_support.hpp"

namespace {

template <class Model, class V, class Noise>
void run_case(const s2::golden_case& c, Model& m, V x, const diffuse::time_grid& grid, Noise& noise) {
    const std::string& s = c.sampler;
    if (s == "euler" || s == "heun" || s == "dpm_2") {
        diffuse::churn_options o;
        o.s_churn = c.num("s_churn", 0.0);
        o.s_tmin = c.num("s_tmin", 0.0);
        o.s_tmax = c.num("s_tmax", std::numeric_limits<double>::infinity());
        o.s_noise = c.num("s_noise", 1.0);
        o.noise_every_step = true;  // k-diffusion draws the churn noise at every step
        if (s == "euler") diffuse::sample_euler(m, x, grid, o, noise);
        else if (s == "heun") diffuse::sample_heun(m, x, grid, o, noise);
        else diffuse::sample_dpm_2(m, x, grid, o, noise);
    } else if (s == "euler_ancestral" || s == "dpm_2_ancestral") {
        const diffuse::ancestral_options o{c.num("eta", 1.0), c.num("s_noise", 1.0)};
        if (s == "euler_ancestral") diffuse::sample_euler_ancestral(m, x, grid, o, noise);
        else diffuse::sample_dpm_2_ancestral(m, x, grid, o, noise);
    } else if (s == "lms") {
        diffuse::sample_lms(m, x, grid, diffuse::lms_options{std::size_t(c.num("order", 4))});
    } else if (s == "dpmpp_2m") {
        diffuse::dpmpp_2m_options o;
        o.lower_order_final = false;
        diffuse::sample_dpmpp_2m(m, x, grid, o);
    } else if (s == "dpmpp_2s_ancestral" || s == "dpmpp_sde") {
        const diffuse::dpmpp_sde_options o{c.num("eta", 1.0), c.num("s_noise", 1.0), c.num("r", 0.5)};
        if (s == "dpmpp_sde") diffuse::sample_dpmpp_sde(m, x, grid, o, noise);
        else diffuse::sample_dpmpp_2s_ancestral(m, x, grid, o, noise);
    } else if (s == "dpmpp_2m_sde") {
        diffuse::dpmpp_2m_sde_options o;
        o.eta = c.num("eta", 1.0);
        o.s_noise = c.num("s_noise", 1.0);
        o.solver_type = diffuse::parse_dpm_solver_type(c.str("solver_type", "midpoint"));
        o.lower_order_final = false;
        diffuse::sample_dpmpp_2m_sde(m, x, grid, o, noise);
    } else if (s == "dpmpp_3m_sde") {
        diffuse::sample_dpmpp_3m_sde(m, x, grid, diffuse::dpmpp_3m_sde_options{c.num("eta", 1.0), c.num("s_noise", 1.0)},
                                     noise);
    } else {
        FAIL("unknown sampler " << s);
    }
}

template <class T>
double run_golden(const s2::golden_case& c) {
    const auto g = s2::golden_gaussian();
    const auto xs = s2::shape(c.tag + "_x");
    const std::size_t B = xs[0];
    const auto x0 = s2::load(c.tag + "_x");
    std::vector<T> x(x0.begin(), x0.end());
    const diffuse::time_grid grid(s2::load(c.tag + "_sigmas"));
    diffuse::recorded_noise noise(s2::load(c.tag + "_noise"), x.size());
    auto m = s2::ve_model(g);
    run_case(c, m, diffuse::batched(x, B), grid, noise);
    return s2::max_abs_diff(x, s2::load(c.tag + "_out"));
}

}  // namespace

TEST_CASE("s2: k-diffusion parity, float64, recorded noise") {
    const auto cases = s2::golden_cases("kd_");
    REQUIRE(cases.size() >= 60);
    int n64 = 0, n32 = 0;
    for (const auto& c : cases) {
        INFO(c.tag);
        if (c.tag.size() > 4 && c.tag.substr(c.tag.size() - 4) == "_f32") {
            // float32 spot checks: both sides round every operation to float32.
            CHECK(run_golden<float>(c) < 5e-6);  // measured <= 1.2e-6
            ++n32;
        } else {
            CHECK(run_golden<double>(c) < 1e-12);  // measured <= 3e-14
            ++n64;
        }
    }
    CHECK(n32 >= 5);
    CHECK(n64 >= 60);
}

TEST_CASE("s2: k-diffusion parity through the library's analytic Gaussian (samplers/analytic.hpp)") {
    const auto g = s2::golden_gaussian();
    std::vector<double> var;
    for (double sd : g.sd) var.push_back(sd * sd);
    for (const auto& c : s2::golden_cases("kd_")) {
        if (c.tag.find("_f32") != std::string::npos || c.tag.find("karras_10") == std::string::npos) continue;
        INFO(c.tag);
        auto m = diffuse::analytic_model(diffuse::gaussian_mixture::gaussian(g.mu, var), diffuse::prediction::epsilon);
        const std::size_t B = s2::shape(c.tag + "_x")[0];
        auto x = s2::load(c.tag + "_x");
        const diffuse::time_grid grid(s2::load(c.tag + "_sigmas"));
        diffuse::recorded_noise noise(s2::load(c.tag + "_noise"), x.size());
        run_case(c, m, diffuse::batched(x, B), grid, noise);
        CHECK(s2::max_abs_diff(x, s2::load(c.tag + "_out")) < 1e-10);
    }
}
