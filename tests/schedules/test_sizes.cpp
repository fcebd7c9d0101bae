// Every schedule, grid and spacing function that takes a count from the user checks it before converting it
// or computing n + 1 (issue 12): a negative count converted to std::size_t (−5 → 2^64 − 5), 0, 2^64 − 1
// (whose n + 1 wraps to 0) and a count past diffuse::detail::max_schedule_size (which would allocate
// gigabytes) are each a diffuse::error naming the parameter and the value, never a std::length_error,
// std::bad_alloc or a write into an empty vector.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/schedules/sigmas.hpp"
#include "diffuse/schedules/timesteps.hpp"

using namespace diffuse;
using Catch::Contains;

namespace {
struct counted_entry {
    std::string name;   // the function, as its messages name it
    std::string param;  // the count's parameter name
    std::function<void(std::size_t)> call;
    std::size_t min = 1;  // the smallest accepted count (0 for the linspace helpers)
};

const std::vector<double>& training_alphas_cumprod() {
    static const auto s = discrete_schedule::from_config("linear", 1000);
    return s.alphas_cumprod;
}

std::vector<counted_entry> entries() {
    const auto& ac = training_alphas_cumprod();
    static const discrete_sigmas ds(ac);
    static const std::vector<std::int64_t> timesteps{900, 500, 100};
    euler_options karras;
    karras.sigma_spacing = sigma_spacing_kind::karras;
    return {
        {"karras_sigmas", "n", [](std::size_t n) { (void)karras_sigmas(n, 0.1, 10.0); }},
        {"exponential_sigmas", "n", [](std::size_t n) { (void)exponential_sigmas(n, 0.1, 10.0); }},
        {"polyexponential_sigmas", "n", [](std::size_t n) { (void)polyexponential_sigmas(n, 0.1, 10.0); }},
        {"vp_sigmas", "n", [](std::size_t n) { (void)vp_sigmas(n); }},
        {"discrete_sigmas_list", "n", [](std::size_t n) { (void)discrete_sigmas_list(ds, n); }},
        {"euler_discrete_sigmas", "num_inference_steps", [&ac](std::size_t n) { (void)euler_discrete_sigmas(ac, n); }},
        {"euler_discrete_sigmas", "num_inference_steps",
         [&ac, karras](std::size_t n) { (void)euler_discrete_sigmas(ac, n, karras); }},
        {"discrete_timesteps", "num_train_timesteps", [](std::size_t n) { (void)discrete_timesteps(n, 1); }},
        {"discrete_timesteps", "num_inference_steps", [](std::size_t n) { (void)discrete_timesteps(1000, n); }},
        {"discrete_timesteps", "num_inference_steps",
         [](std::size_t n) { (void)discrete_timesteps(1000, n, timestep_spacing::trailing); }},
        {"previous_timestep", "num_train_timesteps", [](std::size_t n) { (void)previous_timestep(timesteps, 0, n); }},
        {"img2img_start_index", "num_inference_steps", [](std::size_t n) { (void)img2img_start_index(n, 0.5); }},
        {"img2img_start_index", "order", [](std::size_t n) { (void)img2img_start_index(10, 0.5, n); }},
        {"linear_betas", "num_train_timesteps", [](std::size_t n) { (void)linear_betas(n); }},
        {"scaled_linear_betas", "num_train_timesteps", [](std::size_t n) { (void)scaled_linear_betas(n); }},
        {"sigmoid_betas", "num_train_timesteps", [](std::size_t n) { (void)sigmoid_betas(n); }},
        {"alpha_bar_betas", "num_train_timesteps", [](std::size_t n) { (void)alpha_bar_betas(n); }},
        {"alpha_bar_betas", "num_train_timesteps", [](std::size_t n) { (void)cosine_betas(n); }},
        {"alpha_bar_betas", "num_train_timesteps",
         [](std::size_t n) { (void)make_betas(beta_schedule_kind::laplace, n); }},
        {"linear_betas", "num_train_timesteps",
         [](std::size_t n) { (void)discrete_schedule::from_kind(beta_schedule_kind::linear, n); }},
        {"scaled_linear_betas", "num_train_timesteps",
         [](std::size_t n) { (void)discrete_schedule::from_config("scaled_linear", n, 0.00085, 0.012); }},
        {"sigmoid_betas", "num_train_timesteps",
         [](std::size_t n) {
             discrete_schedule_config c;
             c.beta_schedule = "sigmoid";
             c.num_train_timesteps = n;
             (void)discrete_schedule::from_config(c);
         }},
        {"vp_sde", "N", [](std::size_t n) { (void)vp_sde(0.1, 20.0, n); }},
        {"subvp_sde", "N", [](std::size_t n) { (void)subvp_sde(0.1, 20.0, n); }},
        {"ve_sde", "N", [](std::size_t n) { (void)ve_sde(0.01, 50.0, n); }},
        {"numpy_linspace", "n", [](std::size_t n) { (void)detail::numpy_linspace(0.0, 1.0, n); }, 0},
        {"torch_linspace_f32", "n", [](std::size_t n) { (void)detail::torch_linspace_f32(0.0, 1.0, n); }, 0},
        {"spacing_values", "num_inference_steps",
         [](std::size_t n) { (void)detail::spacing_values(1000, n, timestep_spacing::leading, 0.0); }},
    };
}
}  // namespace

TEST_CASE("counts are checked before conversion and before n + 1", "[schedules][errors][sizes]") {
    constexpr std::size_t max_size = std::numeric_limits<std::size_t>::max();
    const std::size_t minus_five = static_cast<std::size_t>(-5);  // what karras_sigmas(-5, ...) receives
    for (const auto& e : entries()) {
        INFO(e.name << "(" << e.param << ")");
        CHECK_THROWS_WITH(e.call(minus_five), Contains(e.name) && Contains(e.param + " = 18446744073709551611") &&
                                                  Contains("-5 converted to std::size_t"));
        CHECK_THROWS_WITH(e.call(max_size), Contains(e.name) && Contains(e.param + " = 18446744073709551615") &&
                                                Contains("-1 converted to std::size_t"));
        CHECK_THROWS_WITH(e.call(detail::max_schedule_size + 1),
                          Contains(e.name) && Contains(e.param + " = 16777217") && Contains("<= "));
        if (e.min == 0) {
            CHECK_NOTHROW(e.call(0));
        } else {
            CHECK_THROWS_WITH(e.call(0), Contains(e.name) && Contains(e.param + " = 0") && Contains(">= 1"));
        }
        CHECK_NOTHROW(e.call(25));
    }
}

TEST_CASE("the largest accepted count is 2^24", "[schedules][sizes]") {
    CHECK(detail::max_schedule_size == std::size_t{1} << 24);
    CHECK(discrete_timesteps(detail::max_schedule_size, 2).size() == 2);
    CHECK(vp_sde(0.1, 20.0, detail::max_schedule_size).N == detail::max_schedule_size);
    CHECK(img2img_start_index(detail::max_schedule_size, 1.0, detail::max_schedule_size).start_index == 0);
}

TEST_CASE("an SDE whose public N was set out of range fails where N is used", "[schedules][sizes]") {
    vp_sde vp;
    vp.N = 0;
    CHECK_THROWS_WITH(vp.discretize(0.5), Contains("vp_sde::discretize") && Contains("N = 0"));
    subvp_sde sub;
    sub.N = static_cast<std::size_t>(-1);
    CHECK_THROWS_WITH(sub.discretize(0.5), Contains("subvp_sde::discretize") && Contains("-1 converted"));
    ve_sde ve;
    ve.N = 0;
    CHECK_THROWS_WITH(ve.discretize(0.5), Contains("ve_sde::discretize") && Contains("N = 0"));
}
