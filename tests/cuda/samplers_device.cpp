// The sampling stack on device tensors: every sampler family below samples the same random configuration on
// host vectors and on thrust::device_vector (thrust's CPP device system in CI: the device backend's code path
// on the CPU) with a network written with diffuse primitives, so it runs in either space, and the two results
// must have the same bits.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include "graph_checks.hpp"
#include "diffuse/adapt/std.hpp"
#include "diffuse/adapt/thrust.hpp"
#include "diffuse/cuda/primitives.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/guidance/cfg.hpp"
#include "diffuse/samplers/brownian.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/flow_match.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/samplers/unipc.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/schedules/sigmas.hpp"

namespace {

using diffuse_device_checks::leading_timesteps;
using diffuse_device_checks::linear_alphas_cumprod;
using primitive_net = diffuse_device_checks::primitive_net<diffuse_device_checks::soft_sign>;

// One random configuration: batch, elements per sample, steps, seeds.
struct configuration {
    std::size_t batch, per_sample, steps;
    std::uint64_t noise_seed, state_seed;
};

configuration draw_configuration(std::mt19937_64& rng) {
    std::uniform_int_distribution<std::size_t> batch(1, 4), per_sample(1, 37), steps(2, 7);
    return {batch(rng), per_sample(rng), steps(rng), rng(), rng()};
}

template <class T>
std::vector<T> initial_state(const configuration& c, double scale) {
    std::vector<T> x(c.batch * c.per_sample);
    diffuse::fill_normal(diffuse::tensor_view<T>{x.data(), c.batch, c.per_sample}, c.state_seed, 0);
    for (auto& v : x) v = T(v * scale);
    return x;
}

diffuse::time_grid linear_grid(double from, double to, std::size_t steps) {
    std::vector<double> p(steps + 1);
    for (std::size_t i = 0; i <= steps; ++i) p[i] = from + (to - from) * double(i) / double(steps);
    return diffuse::time_grid(p);
}

// Runs `sample(x)` (a generic callable taking a batched tensor) on a host vector and on a device_vector from the
// same initial state, and requires the same bits.
template <class T, class Sample>
void same_bits_on_both(const std::string& name, const configuration& c, double scale, Sample sample) {
    INFO(name << ": batch " << c.batch << " x " << c.per_sample << ", " << c.steps << " steps");
    const std::vector<T> x0 = initial_state<T>(c, scale);
    std::vector<T> host = x0;
    sample(diffuse::batched(host, c.batch));
    thrust::device_vector<T> device(x0.begin(), x0.end());
    sample(diffuse::batched(device, c.batch));
    std::vector<T> back(device.size());
    thrust::copy(device.begin(), device.end(), back.begin());
    REQUIRE(host != x0);  // the run did something
    REQUIRE(std::memcmp(host.data(), back.data(), host.size() * sizeof(T)) == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("samplers give the same bits on host and device tensors", "[cuda][samplers]", float, double) {
    using T = TestType;
    std::mt19937_64 rng(20261202);
    const auto ac = linear_alphas_cumprod();
    for (int round = 0; round < 3; ++round) {
        const configuration c = draw_configuration(rng);
        const diffuse::counter_noise noise{c.noise_seed, 5};
        const auto sigmas = diffuse::karras_sigmas(c.steps, 0.03, 14.6);
        const diffuse::time_grid sigma_grid(sigmas);

        // every call makes its own model, so both runs start from the same (empty) scratch
        const auto discrete_model = [&] {
            return diffuse::model(primitive_net{}, diffuse::prediction::epsilon, diffuse::discrete_time(ac));
        };
        same_bits_on_both<T>("ddim", c, 1.0, [&](auto x) {
            auto m = discrete_model();
            diffuse::ddim_options o;
            o.eta = 0.5;
            diffuse::sample_ddim(m, x, ac, leading_timesteps(c.steps), o, noise);
        });
        same_bits_on_both<T>("ddim with dynamic thresholding", c, 1.0, [&](auto x) {
            auto m = discrete_model();
            diffuse::ddim_options o;
            o.thresholding = true;
            o.dynamic_thresholding_ratio = 0.9;
            o.sample_max_value = 1.5;
            diffuse::sample_ddim(m, x, ac, leading_timesteps(c.steps), o);
        });
        same_bits_on_both<T>("ddpm", c, 1.0, [&](auto x) {
            auto m = discrete_model();
            diffuse::ddpm_options o;
            o.clip_sample = true;
            diffuse::sample_ddpm(m, x, ac, leading_timesteps(c.steps), o, noise);
        });
        same_bits_on_both<T>("euler with churn", c, sigmas[0], [&](auto x) {
            auto m = discrete_model();
            diffuse::churn_options o;
            o.s_churn = 1.0;
            diffuse::sample_euler(m, x, sigma_grid, o, noise);
        });
        same_bits_on_both<T>("euler ancestral", c, sigmas[0], [&](auto x) {
            auto m = discrete_model();
            diffuse::sample_euler_ancestral(m, x, sigma_grid, {}, noise);
        });
        same_bits_on_both<T>("heun", c, sigmas[0], [&](auto x) {
            auto m = discrete_model();
            diffuse::sample_heun(m, x, sigma_grid);
        });
        same_bits_on_both<T>("dpm-solver++ 2m", c, sigmas[0], [&](auto x) {
            auto m = discrete_model();
            diffuse::sample_dpmpp_2m(m, x, sigma_grid);
        });
        same_bits_on_both<T>("dpm-solver++ 2m sde", c, sigmas[0], [&](auto x) {
            auto m = discrete_model();
            diffuse::sample_dpmpp_2m_sde(m, x, sigma_grid, {}, noise);
        });
        same_bits_on_both<T>("unipc", c, sigmas[0], [&](auto x) {
            auto m = discrete_model();
            diffuse::sample_unipc(m, x, sigma_grid);
        });
        same_bits_on_both<T>("flow-match euler", c, 1.0, [&](auto x) {
            auto m = diffuse::model(primitive_net{}, diffuse::prediction::flow_velocity, diffuse::flow_time{});
            diffuse::sample_flow_euler(m, x, linear_grid(1.0, 0.0, c.steps));
        });
        same_bits_on_both<T>("predictor-corrector (reverse diffusion + Langevin)", c, 1.0, [&](auto x) {
            const diffuse::vp_sde sde{};
            auto m = diffuse::model(primitive_net{}, diffuse::prediction::epsilon, diffuse::continuous_time<diffuse::vp_sde>{sde});
            diffuse::sample_pc(m, x, sde, linear_grid(1.0, 1e-3, c.steps), {}, noise);
        });
        same_bits_on_both<T>("classifier-free guidance (dpm-solver++ 2m)", c, sigmas[0], [&](auto x) {
            auto inner = discrete_model();
            diffuse::cfg_model guided(inner, 4.5);
            diffuse::sample_dpmpp_2m(guided, x, sigma_grid);
        });
        // host-only noise sources: each draw formed on the host, then copied to the device state
        std::vector<double> recorded((c.steps + 1) * c.batch * c.per_sample);
        diffuse::fill_normal(diffuse::tensor_view<double>{recorded.data(), c.steps + 1, c.batch * c.per_sample}, c.noise_seed, 9);
        const diffuse::recorded_noise replayed(recorded, c.batch * c.per_sample);
        same_bits_on_both<T>("ddpm with recorded noise", c, 1.0, [&](auto x) {
            auto m = discrete_model();
            diffuse::sample_ddpm(m, x, ac, leading_timesteps(c.steps), diffuse::ddpm_options{}, replayed);
        });
        same_bits_on_both<T>("dpm-solver++ 2m sde with the brownian tree", c, sigmas[0], [&](auto x) {
            auto m = discrete_model();
            diffuse::brownian_tree_noise tree(c.noise_seed, 0.0, sigmas[0]);
            diffuse::sample_dpmpp_2m_sde(m, x, sigma_grid, {}, tree);
        });
        same_bits_on_both<T>("classifier-free guidance with rescale (euler ancestral)", c, sigmas[0], [&](auto x) {
            auto inner = discrete_model();
            diffuse::cfg_model guided(inner, 4.5, 0.7);
            diffuse::sample_euler_ancestral(guided, x, sigma_grid, {}, noise);
        });
    }
}
