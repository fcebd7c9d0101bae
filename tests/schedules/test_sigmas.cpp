// Tests of include/diffuse/schedules/sigmas.hpp against k-diffusion and diffusers' EulerDiscreteScheduler.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <cmath>
#include <string>

#include "diffuse/schedules/sigmas.hpp"
#include "golden_util.hpp"

using namespace diffuse;
using Catch::Matchers::Contains;

namespace {
std::vector<double> kd(const std::string& name) {
    if (name.rfind("karras_a", 0) == 0) return karras_sigmas(10, 0.0292, 14.6146);
    if (name.rfind("karras_b", 0) == 0) return karras_sigmas(50, 0.002, 80.0, 3.0);
    if (name.rfind("karras_c", 0) == 0) return karras_sigmas(1, 0.1, 10.0);
    if (name.rfind("exponential_a", 0) == 0) return exponential_sigmas(10, 0.0292, 14.6146);
    if (name.rfind("exponential_b", 0) == 0) return exponential_sigmas(33, 0.002, 80.0);
    if (name.rfind("polyexponential_a", 0) == 0) return polyexponential_sigmas(10, 0.0292, 14.6146);
    if (name.rfind("polyexponential_b", 0) == 0) return polyexponential_sigmas(25, 0.002, 80.0, 2.5);
    if (name.rfind("vp_a", 0) == 0) return vp_sigmas(20);
    return vp_sigmas(7, 10.0, 0.5, 1e-2);
}
}  // namespace

TEST_CASE("k-diffusion sigma schedules", "[schedules][sigmas][golden]") {
    for (std::string n : {"karras_a", "karras_b", "karras_c", "exponential_a", "exponential_b", "polyexponential_a",
                          "polyexponential_b", "vp_a", "vp_b"}) {
        INFO(n);
        const auto ours = kd(n);
        const auto g64 = sched_test::load("kd_" + n + "_f64").as<double>();
        const auto g32 = sched_test::load("kd_" + n + "_f32").as<double>();
        REQUIRE(ours.size() == g64.size());
        CHECK(ours.back() == 0.0);
        const bool vp = n.rfind("vp", 0) == 0;
        // Against k-diffusion run in float64: same formulas, different association of the linspace
        // (torch's symmetric linspace vs i/(n-1)) and libm pow/exp: agreement to 1e-13 relative. vp: we
        // evaluate exp(x) - 1 as expm1(x), which avoids the cancellation near t = eps_s (1e-10).
        CHECK(sched_test::max_rel(ours, g64) <= (vp ? 1e-10 : 1e-13));
        // Against the usual float32 run: torch's float32 pow/exp are vectorised polynomials and the base
        // raised to ρ carries float32 rounding amplified ρ-fold: 64 float32 ulp (measured max 39, for
        // ρ = 3 down to σ = 0.002). vp in float32 suffers the exp(x) - 1 cancellation upstream:
        // relative 1e-3 (measured 2.8e-4).
        if (vp)
            CHECK(sched_test::max_rel(ours, g32) <= 1e-3);
        else
            CHECK(sched_test::max_ulp_f32(ours, g32) <= 64);
    }
}

TEST_CASE("sigma <-> t conversions match k-diffusion and numpy.interp", "[schedules][sigmas][golden]") {
    const auto s = discrete_schedule::from_config("linear");
    const discrete_sigmas ds(s.alphas_cumprod);
    const auto st = sched_test::load("kd_sigma_to_t");
    const auto q = sched_test::row(st, 0), t = sched_test::row(st, 1);
    for (std::size_t i = 0; i < q.size(); ++i) CHECK(ds.sigma_to_t_log(q[i]) == Approx(t[i]).margin(1e-9).epsilon(1e-12));
    const auto ts = sched_test::load("kd_t_to_sigma");
    const auto tq = sched_test::row(ts, 0), sg = sched_test::row(ts, 1);
    for (std::size_t i = 0; i < tq.size(); ++i) CHECK(ds.t_to_sigma_log(tq[i]) == Approx(sg[i]).epsilon(1e-13));
    const auto gs = sched_test::load("kd_get_sigmas").as<double>();
    // k-diffusion builds t with a float32 linspace (and rounds t to float32 in t_to_sigma); so do we: the
    // rest is double arithmetic (torch's exp and log against the C library's).
    CHECK(sched_test::max_rel(discrete_sigmas_list(ds, 12), gs) <= 1e-14);
    const auto ip = sched_test::load("np_interp");
    const auto ti = sched_test::row(ip, 0), si = sched_test::row(ip, 1);
    for (std::size_t i = 0; i < ti.size(); ++i) CHECK(ds.t_to_sigma_linear(ti[i]) == Approx(si[i]).epsilon(1e-15));
}

TEST_CASE("Euler sigma lists match diffusers EulerDiscreteScheduler", "[schedules][sigmas][golden]") {
    struct euler_case {
        const char* name;
        const char* sched;
        std::size_t T;
        double b0, b1;
        bool zsnr;
        std::size_t N;
        euler_options opt;
    };
    euler_options lead;
    lead.spacing = timestep_spacing::leading;
    lead.steps_offset = 1;
    euler_options trail;
    trail.spacing = timestep_spacing::trailing;
    euler_options kar;
    kar.sigma_spacing = sigma_spacing_kind::karras;
    euler_options ex;
    ex.sigma_spacing = sigma_spacing_kind::exponential;
    euler_options smin;
    smin.final_sigma_min = true;
    euler_options kov = kar;
    kov.sigma_min = 0.1;
    kov.sigma_max = 10.0;
    const euler_case cases[] = {
        {"linear_linspace_50", "linear", 1000, 1e-4, 0.02, false, 50, {}},
        {"sd_leading_30", "scaled_linear", 1000, 0.00085, 0.012, false, 30, lead},
        {"sd_trailing_25", "scaled_linear", 1000, 0.00085, 0.012, false, 25, trail},
        {"sd_karras_20", "scaled_linear", 1000, 0.00085, 0.012, false, 20, kar},
        {"sd_exponential_15", "scaled_linear", 1000, 0.00085, 0.012, false, 15, ex},
        {"zsnr_trailing_10", "scaled_linear", 1000, 0.00085, 0.012, true, 10, trail},
        {"cosine_sigmamin_10", "squaredcos_cap_v2", 1000, 1e-4, 0.02, false, 10, smin},
        {"linear_T50_7", "linear", 50, 1e-4, 0.02, false, 7, {}},
        {"karras_sigma_override_12", "linear", 1000, 1e-4, 0.02, false, 12, kov},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        const auto s = discrete_schedule::from_config(c.sched, c.T, c.b0, c.b1, c.zsnr);
        const auto e = euler_discrete_sigmas(s, c.N, c.opt);
        auto gs = sched_test::load(std::string("euler_") + c.name + "_sigmas").as<double>();
        const auto gt = sched_test::load(std::string("euler_") + c.name + "_timesteps").as<double>();
        const double ginit = gs.back();
        gs.pop_back();
        REQUIRE(e.sigmas.size() == c.N + 1);
        // 1 float32 ulp: σ_train = sqrt((1-ᾱ)/ᾱ) goes through torch's MKL float32 sqrt (<= 1 ulp, not
        // correctly rounded) before numpy's float64 interpolation.
        // Zero-SNR: ᾱ near T inherits the rescale's sqrt difference (see test_beta.cpp): 16 ulp (measured 5).
        CHECK(sched_test::max_ulp_f32(e.sigmas, gs) <= (c.zsnr ? 16 : 1));
        CHECK(sched_test::ulp_f32(e.init_noise_sigma, ginit) <= 1);
        REQUIRE(e.timesteps.size() == gt.size());
        if (c.opt.sigma_spacing == sigma_spacing_kind::none) {
            CHECK(e.timesteps == gt);
        } else {
            // Timesteps from σ through log-σ interpolation over numpy float32 logs: 1e-3 absolute.
            for (std::size_t i = 0; i < gt.size(); ++i) CHECK(e.timesteps[i] == Approx(gt[i]).margin(1e-3));
        }
    }
}

TEST_CASE("sigma <-> t round trips", "[schedules][sigmas][property]") {
    const auto s = discrete_schedule::from_config("scaled_linear", 1000, 0.00085, 0.012);
    const discrete_sigmas ds(s.alphas_cumprod);
    rc::prop("log and linear interpolation invert each other", [&] {
        const double t = *rc::gen::inRange(0, 999000) / 1000.0;
        RC_ASSERT(std::fabs(ds.sigma_to_t_log(ds.t_to_sigma_log(t)) - t) <= 1e-9);
        RC_ASSERT(std::fabs(ds.sigma_to_t_linear(ds.t_to_sigma_linear(t)) - t) <= 1e-9);
        const double a = *rc::gen::inRange(1, 999999) / 1e6;
        RC_ASSERT(std::fabs(alpha_cumprod_from_sigma(sigma_from_alpha_cumprod(a)) - a) <= 1e-15);
    });
}

TEST_CASE("sigma schedules reject invalid arguments", "[schedules][sigmas][errors]") {
    CHECK_THROWS_WITH(karras_sigmas(10, 0.1, 10.0, 0.0), Contains("rho") && Contains("= 0") && Contains("(0, inf)"));
    CHECK_THROWS_WITH(karras_sigmas(10, 0.1, 10.0, -1.0), Contains("rho") && Contains("-1"));
    CHECK_THROWS_WITH(karras_sigmas(10, 10.0, 1.0), Contains("sigma_max") && Contains("= 1"));
    CHECK_THROWS_WITH(exponential_sigmas(10, 1.0, 1.0), Contains("sigma_max") && Contains("= 1"));
    CHECK_THROWS_WITH(exponential_sigmas(10, 0.0, 1.0), Contains("sigma_min") && Contains("= 0"));
    CHECK_THROWS_WITH(polyexponential_sigmas(10, -0.5, 1.0), Contains("sigma_min") && Contains("-0.5"));
    CHECK_THROWS_WITH(karras_sigmas(0, 0.1, 10.0), Contains("n") && Contains("= 0") && Contains(">= 1"));
    CHECK_THROWS_WITH(vp_sigmas(0), Contains("n") && Contains("= 0"));
    CHECK_THROWS_WITH(vp_sigmas(5, 19.9, 0.1, 0.0), Contains("eps_s") && Contains("= 0"));
    CHECK_THROWS_WITH(sigma_from_alpha_cumprod(0.0), Contains("alpha_cumprod") && Contains("= 0"));
    const auto s = discrete_schedule::from_config("linear");
    const discrete_sigmas ds(s.alphas_cumprod);
    CHECK_THROWS_WITH(ds.t_to_sigma_log(1000.0), Contains("t") && Contains("1000"));
    CHECK_THROWS_WITH(ds.sigma_to_t_log(-1.0), Contains("sigma") && Contains("-1"));
    CHECK_THROWS_WITH(euler_discrete_sigmas(s, 1001), Contains("num_inference_steps") && Contains("1001"));
    CHECK_THROWS_WITH(euler_discrete_sigmas(s, 0), Contains("num_inference_steps") && Contains("= 0"));
}
