// Predictor–corrector sampling of the quickstart's two moons with the exact denoiser.
//
// The data: two moons written as a Gaussian mixture (40 components along each arc, each with the
// data's noise 0.05 standardised as toy_sample does), so samplers/analytic.hpp gives the exact score at
// every (x, t) and a sampler's only errors are its own. The reference: toy_sample's moons; the floor is
// the mean sliced Wasserstein distance between independent data samples of the same size.
//
// What the quickstart's PC row needs, shown with the exact score (so it is the sampler's settings, not
// the learned network):
//   * reverse diffusion + Langevin with the reference's batch-mean step size ε = 2α(r·mean‖z‖/mean‖s‖)²,
//     r = 0.16, N = 250, eps = 1e-3 reproduces the data (SW within 2× the floor; measured 0.069 vs
//     floor 0.055 at n = 1000, no point outside the plot's view);
//   * the per-sample step size ε_b = 2α(r‖z_b‖/‖s_b‖)² does not, even with the exact score: in two
//     dimensions ‖s_b‖ of a sample near a mode of p_t is close to 0 and ‖z_b‖ is χ₂-distributed, so ε_b is
//     heavy-tailed and some samples are thrown far off (measured: SW 0.52 with 7 points outside
//     [−2.6, 2.6]² here; 0.2–0.5 with 10–60 of 2000 points outside for r = 0.05 and 0.16 alike). The per-sample rule assumes high-dimensional
//     data, where per-sample norms concentrate.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/metrics/sample_distance.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/prior.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/train/toy.hpp"

namespace {

// toy_sample's two moons (arcs of radius 1, noise 0.05, then x ← (x − 0.5)/0.87, y ← (y − 0.25)/0.5) as a
// mixture of K Gaussians per arc, equally spaced in angle.
diffuse::gaussian_mixture moons_mixture(std::size_t K) {
    std::vector<double> w, mu, var;
    for (int arc = 0; arc < 2; ++arc)
        for (std::size_t k = 0; k < K; ++k) {
            const double a = std::numbers::pi * (double(k) + 0.5) / double(K);
            const double x = arc == 0 ? std::cos(a) : 1.0 - std::cos(a), y = arc == 0 ? std::sin(a) : 0.5 - std::sin(a);
            w.push_back(1.0);
            mu.push_back((x - 0.5) / 0.87);
            mu.push_back((y - 0.25) / 0.5);
            var.push_back(std::pow(0.05 / 0.87, 2));
            var.push_back(std::pow(0.05 / 0.5, 2));
        }
    return diffuse::gaussian_mixture(w, mu, var);
}

}  // namespace

TEST_CASE("predictor-corrector with the exact two-moons score reproduces the data (batch-mean Langevin step)",
          "[train][toy][pc]") {
    using namespace diffuse;
    const std::size_t n = 1000;
    const auto held = toy_sample(toy_dataset::two_moons, n, 777);
    const auto dirs = random_directions(100, 2, 9);
    double floor = 0;
    for (std::uint64_t k = 0; k < 8; ++k) {
        const auto a = toy_sample(toy_dataset::two_moons, n, 1000 + 2 * k), b = toy_sample(toy_dataset::two_moons, n, 1001 + 2 * k);
        floor += sliced_wasserstein(batched(a, n), batched(b, n), dirs) / 8;
    }
    const vp_sde sde(0.1, 20.0, 250);
    auto exact = analytic_model(moons_mixture(40), prediction::epsilon, continuous_time<vp_sde>{sde});
    auto run = [&](langevin_norm norm, double snr) {
        std::vector<double> x(2 * n);
        sample_prior(sde, batched(x, n), 7);
        pc_options o;  // reverse-diffusion predictor + Langevin corrector, one corrector step
        o.norm = norm;
        o.snr = snr;
        sample_pc(exact, batched(x, n), sde, time_grid(score_sde_time_grid(sde, 1e-3)), o, counter_noise{8});
        std::size_t outside = 0;
        for (double v : x) outside += std::abs(v) > 2.6 ? 1 : 0;
        return std::pair{sliced_wasserstein(batched(x, n), batched(held, n), dirs), outside};
    };
    const auto [good, good_out] = run(langevin_norm::batch_mean, 0.16);
    INFO("batch-mean SW " << good << ", floor " << floor);
    CHECK(good < 2.0 * floor);
    CHECK(good_out == 0);
    // The diagnosis of the quickstart's former PC row: the per-sample step size, not the network. If
    // sample_pc's per-sample rule is ever made robust in low dimensions, this check is the one to revisit.
    const auto [bad, bad_out] = run(langevin_norm::per_sample, 0.05);
    INFO("per-sample SW " << bad << ", points outside the view " << bad_out);
    CHECK(bad > 3.0 * floor);
    CHECK(bad_out > 0);
}
