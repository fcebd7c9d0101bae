// Determinism of every stochastic sampler: the same seed gives identical bits whether the batch runs
// whole or split in two (the second part with counter_noise::first_sample = its offset), and whatever
// diffuse::set_num_threads says. Also: NaN or Inf from the model stops sampling with an error that names
// the step and the time.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/dpm_adaptive.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/lcm.hpp"
#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/schedules/beta.hpp"

#include "stepper_support.hpp"

using namespace diffuse;

namespace {

constexpr std::uint64_t seed = 1234;

time_grid sigma_grid() { return time_grid({10.0, 4.0, 1.5, 0.6, 0.2, 0.05, 0.0}); }
time_grid sigma_grid_positive() { return time_grid({10.0, 4.0, 1.5, 0.6, 0.2, 0.05}); }

// A sampler run on a batch view of D values per sample, with counter noise starting at first_sample.
using runner = std::function<void(tensor_view<double> x, std::uint64_t first_sample)>;

struct named_runner {
    const char* name;
    runner run;
};

std::vector<named_runner> samplers(std::size_t D, bool per_sample_only) {
    std::vector<named_runner> r;
    const auto ac = stepper_check::linear_alphas_cumprod();
    std::vector<std::int64_t> ts{999, 799, 599, 399, 199, 0};
    const vp_sde vp(0.1, 20, 25);
    const ve_sde ve(0.01, 20, 12);
    auto sigma_model = [D] { return analytic_model(stepper_check::mixture(D), prediction::sample, sigma_time{}); };
    r.push_back({"sample_euler (churn)", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     churn_options o;
                     o.s_churn = 2.0;
                     sample_euler(m, x, sigma_grid(), o, counter_noise{seed, f});
                 }});
    r.push_back({"sample_heun (churn)", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     churn_options o;
                     o.s_churn = 2.0;
                     sample_heun(m, x, sigma_grid(), o, counter_noise{seed, f});
                 }});
    r.push_back({"sample_euler_ancestral", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     sample_euler_ancestral(m, x, sigma_grid(), {}, counter_noise{seed, f});
                 }});
    r.push_back({"sample_dpm_2_ancestral", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     sample_dpm_2_ancestral(m, x, sigma_grid(), {}, counter_noise{seed, f});
                 }});
    r.push_back({"sample_dpmpp_2s_ancestral", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     sample_dpmpp_2s_ancestral(m, x, sigma_grid(), {}, counter_noise{seed, f});
                 }});
    r.push_back({"sample_dpmpp_sde", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     sample_dpmpp_sde(m, x, sigma_grid(), {}, counter_noise{seed, f});
                 }});
    r.push_back({"sample_dpmpp_2m_sde", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     sample_dpmpp_2m_sde(m, x, sigma_grid(), {}, counter_noise{seed, f});
                 }});
    r.push_back({"sample_dpmpp_3m_sde", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     sample_dpmpp_3m_sde(m, x, sigma_grid(), {}, counter_noise{seed, f});
                 }});
    r.push_back({"sample_dpm_adaptive (eta = 1, per-sample)", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     dpm_adaptive_options o;
                     o.eta = 1.0;
                     sample_dpm_adaptive(m, x, sigma_grid(), o, counter_noise{seed, f});
                 }});
    r.push_back({"sample_consistency", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = sigma_model();
                     consistency_options o;
                     o.clip_denoised = false;
                     sample_consistency(m, x, sigma_grid(), o, counter_noise{seed, f});
                 }});
    r.push_back({"sample_lcm", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
                     sample_lcm(m, x, ac, discrete_grid(lcm_timesteps(4)), {}, counter_noise{seed, f}, no_observer{}, f);
                 }});
    r.push_back({"sample_ddpm", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
                     ddpm_options o;
                     o.clip_sample = false;
                     sample_ddpm(m, x, ac, discrete_grid(ts), o, counter_noise{seed, f}, no_observer{}, f);
                 }});
    r.push_back({"sample_ddim (eta = 1)", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
                     ddim_options o;
                     o.clip_sample = false;
                     o.eta = 1.0;
                     sample_ddim(m, x, ac, discrete_grid(ts), o, counter_noise{seed, f}, no_observer{}, f);
                 }});
    for (auto pred : {sde_predictor::euler_maruyama, sde_predictor::reverse_diffusion, sde_predictor::ancestral}) {
        for (auto norm : {langevin_norm::per_sample, langevin_norm::batch_mean}) {
            if (per_sample_only && norm == langevin_norm::batch_mean) continue;  // couples the batch by design
            r.push_back({"sample_pc (VP)", [=](tensor_view<double> x, std::uint64_t f) {
                             auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, continuous_time<vp_sde>{vp});
                             pc_options o;
                             o.predictor = pred;
                             o.norm = norm;
                             o.n_steps = 2;
                             sample_pc(m, x, vp, time_grid(score_sde_time_grid(vp)), o, counter_noise{seed, f});
                         }});
        }
    }
    r.push_back({"sample_pc (VE, ald)", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = analytic_model(stepper_check::mixture(D), prediction::score, continuous_time<ve_sde>{ve});
                     pc_options o;
                     o.corrector = sde_corrector::ald;
                     sample_pc(m, x, ve, time_grid(score_sde_time_grid(ve)), o, counter_noise{seed, f});
                 }});
    r.push_back({"sample_annealed_langevin", [=](tensor_view<double> x, std::uint64_t f) {
                     auto m = analytic_model(stepper_check::mixture(D), prediction::score, sigma_time{});
                     annealed_langevin_options o;
                     o.n_steps_each = 3;
                     o.step_lr = 1e-3;
                     sample_annealed_langevin(m, x, sigma_grid_positive(), o, counter_noise{seed, f});
                 }});
    r.push_back({"sample_pf_ode_rk45 (per-sample)", [=](tensor_view<double> x, std::uint64_t) {
                     auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, continuous_time<vp_sde>{vp});
                     sample_pf_ode_rk45(m, x, vp, time_grid({1.0, 0.01}));
                 }});
    return r;
}

std::vector<double> start(std::size_t B, std::size_t D) {
    std::vector<double> x(B * D);
    fill_normal(batched(x, B), 99, 0);
    return x;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("determinism: identical bits whole or split across batches", "[samplers][score_sde][determinism]") {
    constexpr std::size_t B = 6, D = 5, split = 2;
    for (const auto& s : samplers(D, true)) {
        INFO(s.name);
        auto whole = start(B, D);
        s.run(tensor_view<double>{whole.data(), B, D}, 0);
        auto parts = start(B, D);
        s.run(tensor_view<double>{parts.data(), split, D}, 0);
        s.run(tensor_view<double>{parts.data() + split * D, B - split, D}, split);
        CHECK(same_bits(whole, parts));
        bool finite = true;
        for (double v : whole) finite = finite && std::isfinite(v);
        CHECK(finite);
        auto again = start(B, D);
        s.run(tensor_view<double>{again.data(), B, D}, 0);
        CHECK(same_bits(whole, again));
    }
}

TEST_CASE("determinism: identical bits for any thread count", "[samplers][score_sde][determinism]") {
    // 4 × 2^16 = 2^18 elements: large enough for the primitives to split work across threads.
    constexpr std::size_t B = 4, D = std::size_t(1) << 16;
    for (const auto& s : samplers(D, false)) {
        INFO(s.name);
        set_num_threads(1);
        auto one = start(B, D);
        s.run(tensor_view<double>{one.data(), B, D}, 0);
        set_num_threads(2);
        auto two = start(B, D);
        s.run(tensor_view<double>{two.data(), B, D}, 0);
        set_num_threads(1);
        CHECK(same_bits(one, two));
    }
}

namespace {

// A score network that returns NaN (or Inf) once its time falls below `bad_below`.
struct poisoned {
    double bad_below;
    double value;
    void operator()(tensor_view<const double> x, const model_cond& c, tensor_view<double> out) const {
        for (std::size_t b = 0; b < x.batch; ++b)
            for (std::size_t j = 0; j < x.per_sample; ++j)
                out.sample(b)[j] = c.t[b] < bad_below ? value : -x.sample(b)[j];
    }
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("NaN/Inf from the model stops sampling naming the step and time", "[samplers][score_sde][nan]") {
    const vp_sde vp(0.1, 20, 25);
    for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        auto model_at = [&](double below) { return model(poisoned{below, bad}, prediction::score, continuous_time<vp_sde>{vp}); };
        std::vector<double> x(6, 0.5);
        // score_sde_time_grid(vp) = linspace(1, 1e-3, 25): t_8 = 0.667 is the first time below 0.7
        auto check_msg = [](const std::string& msg, const char* where, const char* step) {
            INFO(msg);
            CHECK(msg.find(where) != std::string::npos);
            CHECK(msg.find(step) != std::string::npos);
            CHECK(msg.find("t = 0.66") != std::string::npos);
            CHECK(msg.find("NaN or Inf") != std::string::npos);
        };
        {
            auto m = model_at(0.7);
            check_msg(error_of([&] { sample_pc(m, batched(x, 2), vp, time_grid(score_sde_time_grid(vp))); }), "sample_pc",
                      "step 8");
        }
        {
            auto m = model_at(0.7);
            check_msg(error_of([&] { sample_euler_maruyama(m, batched(x, 2), vp, time_grid(score_sde_time_grid(vp))); }),
                      "sample_pc", "step 8");
        }
        std::vector<double> pts{1.0, 0.9, 0.8, 0.7, 0.666, 0.5};
        {
            auto m = model_at(0.7);
            check_msg(error_of([&] { sample_pf_ode_euler(m, batched(x, 2), vp, time_grid(pts)); }), "sample_pf_ode_euler",
                      "step 4");
        }
        {
            auto m = model_at(0.7);
            check_msg(error_of([&] { sample_pf_ode_heun(m, batched(x, 2), vp, time_grid(pts)); }), "sample_pf_ode_heun",
                      "step 3");
        }
        {
            auto m = model_at(0.67);
            const auto msg = error_of([&] { sample_pf_ode_rk45(m, batched(x, 2), vp, time_grid({1.0, 0.6})); });
            INFO(msg);
            CHECK(msg.find("sample_pf_ode_rk45") != std::string::npos);
            CHECK(msg.find("step 0") != std::string::npos);
            CHECK(msg.find("NaN or Inf") != std::string::npos);
        }
        {
            auto m = model(poisoned{0.5, bad}, prediction::score, sigma_time{});
            const auto msg = error_of([&] {
                sample_annealed_langevin(m, batched(x, 2), time_grid({2.0, 1.0, 0.4, 0.1}), {1e-3, 2, false});
            });
            INFO(msg);
            CHECK(msg.find("step 2") != std::string::npos);  // one step per noise level
            CHECK(msg.find("sigma = 0.4") != std::string::npos);
            CHECK(msg.find("NaN or Inf") != std::string::npos);
        }
    }
}
