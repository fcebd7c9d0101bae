// The discrete-timestep steppers (samplers/ddpm.hpp, ddim.hpp, lcm.hpp, tcd.hpp) and the consistency stepper: pull,
// push, copies and the one-call form give the same bits over the options that change code paths, held rows
// included; a step where every sample holds calls no model and is not reported; the pull-mode refinement
// (the network's own prediction, exact timesteps only for a discrete-time network) is what fulfil() gives
// a push caller too; a model error names the step; a discrete grid without its final −1 is a named error.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/guidance/cfg.hpp"
#include "diffuse/guidance/editing.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/lcm.hpp"
#include "diffuse/samplers/tcd.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/schedules/timesteps.hpp"
#include "stepper_support.hpp"

using namespace diffuse;

namespace {

const auto schedule = discrete_schedule::from_config("linear", 1000);
const std::vector<double>& ac = schedule.alphas_cumprod;

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

constexpr std::size_t D = 5;  // values per sample in the check_modes runs

// A grid of the descending kind (shared or the per-sample rows of a mixed-strength img2img batch, whose
// weaker rows hold at their start timestep) and the batch it is for.
struct grid_case {
    const char* name;
    time_grid grid;
    std::size_t batch;
};

std::vector<grid_case> descending_grids() {
    const auto ts = discrete_timesteps(1000, 8, timestep_spacing::trailing);
    return {{"shared", discrete_grid(ts), 3},
            {"img2img rows (held steps)", img2img_grid(ts, std::vector<double>{1.0, 0.5, 0.3}), 3}};
}

template <class T>
void ddpm_modes(const grid_case& g) {
    const std::size_t B = g.batch;
    const auto x0 = stepper_check::initial_state<T>(B, D);
    const batch_shape shape{B, D};
    const counter_noise noise{7, 2};
    using stepper_check::check_modes;
    for (auto variance : {ddpm_variance::fixed_small, ddpm_variance::fixed_small_log, ddpm_variance::fixed_large,
                          ddpm_variance::learned, ddpm_variance::learned_range}) {
        for (int clipping = 0; clipping < 3; ++clipping) {
            ddpm_options o;
            o.variance_type = variance;
            o.clip_sample = clipping == 1;
            o.thresholding = clipping == 2;
            // learned: the network's second half is σ² itself; learned_range: v ∈ [−1, 1]
            auto model = [variance] {
                auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
                m.net().learned_variance = variance == ddpm_variance::learned ? 0.004 : 0.3;
                return m;
            };
            check_modes(std::string("ddpm ") + g.name + " variance " + std::to_string(int(variance)) + " clipping " +
                            std::to_string(clipping),
                        [&] {  // as the one-call form without an observer: x̂₀ not reported
                            ddpm_stepper<T> s(shape, ac, g.grid, o, noise, 4);
                            s.set_report_denoised(false);
                            return s;
                        },
                        model,
                        [&](auto& m, tensor_view<T> x) { sample_ddpm(m, x, ac, g.grid, o, noise, no_observer{}, 4); }, x0, B);
        }
    }
}

template <class T>
void ddim_modes(const grid_case& g) {
    const std::size_t B = g.batch;
    const auto x0 = stepper_check::initial_state<T>(B, D);
    const batch_shape shape{B, D};
    const counter_noise noise{8, 1};
    auto model = [] { return analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac)); };
    using stepper_check::check_modes;
    for (double eta : {0.0, 0.6}) {
        for (int variant = 0; variant < 5; ++variant) {
            ddim_options o;
            o.eta = eta;
            o.clip_sample = variant == 1 || variant == 3;
            o.thresholding = variant == 2;
            o.use_clipped_model_output = variant == 3;
            o.set_alpha_to_one = variant != 4;
            if (variant == 4) o.prev_timestep = prev_timestep_rule::fixed_stride;
            // the one-call form without an observer does not report x̂₀: the steppers are told the same
            check_modes(std::string("ddim ") + g.name + " eta " + std::to_string(eta) + " variant " + std::to_string(variant),
                        [&] {
                            ddim_stepper<T> s(shape, ac, g.grid, o, noise);
                            s.set_report_denoised(false);
                            return s;
                        },
                        model,
                        [&](auto& m, tensor_view<T> x) { sample_ddim(m, x, ac, g.grid, o, noise); }, x0, B);
        }
    }
}

template <class T>
void lcm_modes(const grid_case& g) {
    const std::size_t B = g.batch;
    const auto x0 = stepper_check::initial_state<T>(B, D);
    const batch_shape shape{B, D};
    const counter_noise noise{9, 3};
    auto model = [] { return analytic_model(stepper_check::mixture(D), prediction::v, discrete_time(ac)); };
    using stepper_check::check_modes;
    for (int clipping = 0; clipping < 3; ++clipping) {
        lcm_options o;
        o.clip_sample = clipping == 1;
        o.thresholding = clipping == 2;
        check_modes(std::string("lcm ") + g.name + " clipping " + std::to_string(clipping),
                    [&] { return lcm_stepper<T>(shape, ac, g.grid, o, noise, 2); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_lcm(m, x, ac, g.grid, o, noise, no_observer{}, 2); }, x0, B);
    }
    // recorded noise replays in draw order (draw i = step i's) through a stepper as through the one-call form
    std::vector<double> rec(g.grid.steps() * B * D);
    for (std::size_t i = 0; i < rec.size(); ++i) rec[i] = double(i % 11) / 5.0 - 1.0;
    const recorded_noise recorded(rec, B * D);
    const lcm_options o;
    check_modes(std::string("lcm recorded ") + g.name,
                [&] { return lcm_stepper<T, const recorded_noise&>(shape, ac, g.grid, o, recorded); }, model,
                [&](auto& m, tensor_view<T> x) { sample_lcm(m, x, ac, g.grid, o, recorded); }, x0, B);
}

template <class T>
void tcd_modes(const grid_case& g) {
    const std::size_t B = g.batch;
    const auto x0 = stepper_check::initial_state<T>(B, D);
    const batch_shape shape{B, D};
    const counter_noise noise{10, 4};
    auto model = [] { return analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac)); };
    using stepper_check::check_modes;
    for (double eta : {0.0, 0.3, 1.0}) {
        tcd_options o;
        o.eta = eta;
        check_modes(std::string("tcd ") + g.name + " eta " + std::to_string(eta),
                    [&] { return tcd_stepper<T>(shape, ac, g.grid, o, noise, 2); }, model,
                    [&](auto& m, tensor_view<T> x) { sample_tcd(m, x, ac, g.grid, o, noise, no_observer{}, 2); }, x0, B);
    }
}

template <class T>
void ddim_inverse_modes() {
    const std::size_t B = 2;
    const auto x0 = stepper_check::initial_state<T>(B, D, 0.5);
    const batch_shape shape{B, D};
    const auto ts = discrete_timesteps(1000, 8, timestep_spacing::leading);
    auto model = [] { return analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac)); };
    using stepper_check::check_modes;
    for (int target = 0; target < 2; ++target) {
        for (int variant = 0; variant < 3; ++variant) {
            ddim_inverse_options o;
            o.model_at_target = target == 1;
            o.set_alpha_to_one = variant != 1;
            o.clip_sample = variant == 2;
            o.clip_sample_range = 2.0;
            std::vector<double> points;
            if (o.model_at_target) points.push_back(-1.0);  // the clean data
            for (auto it = ts.rbegin(); it != ts.rend(); ++it) points.push_back(double(*it));
            const time_grid grid(points);
            check_modes("ddim_inverse model_at_target " + std::to_string(target) + " variant " + std::to_string(variant),
                        [&] { return ddim_inverse_stepper<T>(shape, ac, grid, o); }, model,
                        [&](auto& m, tensor_view<T> x) { sample_ddim_inverse(m, x, ac, grid, o); }, x0, B);
        }
    }
    // per-sample rows inverted to different depths: the shallower row holds at its end
    const time_grid rows(std::vector<double>{1, 201, 401, 601, 801, 1, 201, 401, 401, 401}, 2);
    const ddim_inverse_options o;
    check_modes("ddim_inverse held rows", [&] { return ddim_inverse_stepper<T>(shape, ac, rows, o); }, model,
                [&](auto& m, tensor_view<T> x) { sample_ddim_inverse(m, x, ac, rows, o); }, x0, B);
}

template <class T>
void consistency_modes() {
    const std::size_t B = 2;
    const auto x0 = stepper_check::initial_state<T>(B, D, 20.0);
    const batch_shape shape{B, D};
    struct raw {
        void operator()(tensor_view<const T> u, const model_cond& c, tensor_view<T> out) const {
            for (std::size_t b = 0; b < u.batch; ++b)
                for (std::size_t j = 0; j < u.per_sample; ++j) out.sample(b)[j] = T(std::tanh(u.sample(b)[j]) + 1e-3 * c.t[b]);
        }
    };
    auto model = [] { return consistency_model(raw{}, 0.5, 0.002); };
    const counter_noise noise{10, 5};
    const time_grid shared(consistency_sigmas(consistency_timesteps(3)));
    const auto rows = time_grid::per_sample({{80.0, 5.0, 0.5, 0.002}, {20.0, 2.0, 0.3, 0.0}});
    using stepper_check::check_modes;
    for (int variant = 0; variant < 3; ++variant) {
        consistency_options o;
        o.clip_denoised = variant != 1;
        o.s_noise = variant == 2 ? 0.8 : 1.0;
        for (const auto* grid : {&shared, &rows})
            check_modes("consistency variant " + std::to_string(variant) + (grid == &rows ? " rows" : " shared"),
                        [&] { return consistency_stepper<T>(shape, *grid, o, noise); }, model,
                        [&](auto& m, tensor_view<T> x) { sample_consistency(m, x, *grid, o, noise); }, x0, B);
    }
}

}  // namespace

TEST_CASE("discrete steppers: pull, push, copies and one-call give the same bits", "[steppers][discrete]") {
    for (const auto& g : descending_grids()) {
        ddpm_modes<double>(g);
        ddpm_modes<float>(g);
        ddim_modes<double>(g);
        ddim_modes<float>(g);
        lcm_modes<double>(g);
        lcm_modes<float>(g);
        tcd_modes<double>(g);
        tcd_modes<float>(g);
    }
    ddim_inverse_modes<double>();
    ddim_inverse_modes<float>();
    consistency_modes<double>();
    consistency_modes<float>();
}

namespace {
// A random configuration of the one-evaluation discrete samplers' update straight from x and the model output
// (no clipping): network kind, schedule (zero terminal SNR: α = 0 at t = 999, where the pair is asked as x̂₀),
// spacing, steps, batch and sample size.
constexpr int observe_state_only = 2;

// Calls run(observer...) with no observer (observe 0), one of x̂₀ (1) or one of the state only
// (observe_state_only); returns the number of steps whose report matched it (x̂₀ present or absent).
template <class T, class Run>
std::size_t run_observed(tensor_view<T> x, int observe, Run&& run) {
    std::size_t seen = 0;
    if (observe == observe_state_only) run(ignores_denoised{[&](const step_info<T>& i) { seen += i.denoised.size() == 0; }});
    else if (observe) run([&](const step_info<T>& i) { seen += i.denoised.size() == x.size(); });
    else run();
    return seen;
}

struct fused_case {
    prediction kind;
    bool zero_snr;
    discrete_schedule sched;
    time_grid grid;
    std::size_t steps, batch, per_sample;
};
fused_case random_fused_case(std::mt19937_64& rng) {
    auto pick = [&](std::size_t n) { return std::size_t(rng() % n); };
    const prediction kinds[] = {prediction::epsilon, prediction::sample, prediction::v};
    const bool zero_snr = pick(2) == 1;
    const prediction kind = kinds[zero_snr ? 1 + pick(2) : pick(3)];  // an ε-network has no x̂₀ where α = 0
    const timestep_spacing spacings[] = {timestep_spacing::leading, timestep_spacing::trailing, timestep_spacing::linspace};
    const std::size_t N = 1 + pick(20), B = 1 + pick(4), Dm = 3 + pick(30);
    return {kind, zero_snr, discrete_schedule::from_config("scaled_linear", 1000, 0.00085, 0.012, zero_snr),
            discrete_grid(discrete_timesteps(1000, N, spacings[pick(3)])), N, B, Dm};
}

// one_call(x, observe, clip): the sampler's one-call form on x (batch rows) with an observer of x̂₀ (true),
// none (false) or an observer wrapped in ignores_denoised (observe_state_only), x̂₀ clipped or not; returns
// the number of steps whose step_info the observer saw as expected (x̂₀ present, or absent when wrapped). make_stepper(): a stepper of the same run.
// Without clipping the run without observer (one pass over x and the output) must match the run with one
// (the pair formed) within rounding, and a stepper told not to report x̂₀ must give its bits; with clipping
// both one-call runs form the pair: the same bits.
template <class T, class OneCall, class MakeStepper>
void check_update_from_output(const fused_case& c, OneCall one_call, MakeStepper make_stepper) {
    INFO("kind " << int(c.kind) << " zero_snr " << c.zero_snr << " steps " << c.steps << " batch " << c.batch
                 << " per_sample " << c.per_sample);
    const auto x0 = stepper_check::initial_state<T>(c.batch, c.per_sample);
    auto run_once = [&](bool observe, bool clip) {
        std::vector<T> x = x0;
        CHECK(one_call(batched(x, c.batch), observe, clip) == (observe ? c.steps : 0));
        return x;
    };
    const auto fused = run_once(false, false), pair = run_once(true, false);
    {  // an observer wrapped in ignores_denoised sees every step without x̂₀, and the run is the one without observer
        std::vector<T> x = x0;
        CHECK(one_call(batched(x, c.batch), observe_state_only, false) == c.steps);
        CHECK(stepper_check::same_bits(x, fused));
    }
    const double tol = std::is_same_v<T, float> ? 4e-6 : 1e-14;  // measured worst: 4.5e-7, 8.3e-16
    double scale = 1, worst = 0;
    for (std::size_t i = 0; i < pair.size(); ++i) {
        scale = std::max(scale, std::abs(double(pair[i])));
        worst = std::max(worst, std::abs(double(fused[i]) - double(pair[i])));
    }
    CHECK(worst <= tol * scale);
    {
        auto m = analytic_model(stepper_check::mixture(c.per_sample), c.kind, discrete_time(c.sched.alphas_cumprod));
        auto s = make_stepper();
        s.set_report_denoised(false);
        std::vector<T> x = x0;
        while (!s.done()) {
            s.step(m, batched(x, c.batch));
            CHECK(s.info(batched(std::as_const(x), c.batch)).denoised.size() == 0);
        }
        CHECK(stepper_check::same_bits(x, fused));
    }
    CHECK(stepper_check::same_bits(run_once(false, true), run_once(true, true)));
}

template <class T>
void ddim_update_from_output_case(std::mt19937_64& rng) {
    const fused_case c = random_fused_case(rng);
    ddim_options o;
    o.clip_sample = false;
    o.eta = rng() % 2 ? double(rng() % 1000) / 1000.0 : 0.0;
    o.set_alpha_to_one = rng() % 2 == 1;
    o.use_clipped_model_output = rng() % 2 == 1;  // no effect without clipping
    o.prev_timestep = rng() % 2 ? prev_timestep_rule::fixed_stride : prev_timestep_rule::next_in_list;
    const double range = 0.5 + double(rng() % 4);
    INFO("ddim eta " << o.eta << " alpha_to_one " << o.set_alpha_to_one << " fixed_stride " << int(o.prev_timestep));
    const counter_noise noise{5, 1};
    check_update_from_output<T>(
        c,
        [&](tensor_view<T> x, int observe, bool clip) {
            auto m = analytic_model(stepper_check::mixture(c.per_sample), c.kind, discrete_time(c.sched.alphas_cumprod));
            ddim_options oc = o;
            oc.clip_sample = clip;
            oc.clip_sample_range = range;
            return run_observed<T>(x, observe, [&](auto&&... observer) {
                sample_ddim(m, x, c.sched.alphas_cumprod, c.grid, oc, noise, observer...);
            });
        },
        [&] { return ddim_stepper<T>(batch_shape{c.batch, c.per_sample}, c.sched.alphas_cumprod, c.grid, o, noise); });
}

template <class T>
void ddpm_update_from_output_case(std::mt19937_64& rng) {
    const fused_case c = random_fused_case(rng);
    ddpm_options o;
    o.clip_sample = false;
    const ddpm_variance variances[] = {ddpm_variance::fixed_small, ddpm_variance::fixed_small_log, ddpm_variance::fixed_large};
    o.variance_type = variances[rng() % 3];
    const double range = 0.5 + double(rng() % 4);
    INFO("ddpm variance " << int(o.variance_type));
    const counter_noise noise{6, 2};
    check_update_from_output<T>(
        c,
        [&](tensor_view<T> x, int observe, bool clip) {
            auto m = analytic_model(stepper_check::mixture(c.per_sample), c.kind, discrete_time(c.sched.alphas_cumprod));
            ddpm_options oc = o;
            oc.clip_sample = clip;
            oc.clip_sample_range = range;
            return run_observed<T>(x, observe, [&](auto&&... observer) {
                sample_ddpm(m, x, c.sched.alphas_cumprod, c.grid, oc, noise, observer...);
            });
        },
        [&] { return ddpm_stepper<T>(batch_shape{c.batch, c.per_sample}, c.sched.alphas_cumprod, c.grid, o, noise); });
}
}  // namespace

TEST_CASE("ddim, ddpm: the update from x and the model output matches the update from the pair within rounding",
          "[steppers][discrete]") {
    std::mt19937_64 rng(20261202);
    for (std::size_t c = 0; c < 24; ++c) {
        INFO("config " << c);
        ddim_update_from_output_case<double>(rng);
        ddim_update_from_output_case<float>(rng);
        ddpm_update_from_output_case<double>(rng);
        ddpm_update_from_output_case<float>(rng);
    }
}

TEST_CASE("discrete steppers: a step where every sample holds calls no model, is not reported and keeps its draw",
          "[steppers][discrete]") {
    const std::size_t B = 2, D = 4;
    // step 0 holds both rows (equal points), then three real steps
    const time_grid held = discrete_grid(std::vector<std::vector<std::int64_t>>{{700, 700, 400, 100}, {500, 500, 300, 0}});
    const time_grid rest = discrete_grid(std::vector<std::vector<std::int64_t>>{{700, 400, 100}, {500, 300, 0}});
    const auto x0 = stepper_check::initial_state<double>(B, D);
    ddim_options o;
    o.eta = 1.0;
    auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
    ddim_stepper<double> s({B, D}, ac, held, o, counter_noise{3});
    std::vector<double> x = x0;
    CHECK(s.begin_step(batched(x, B)) == nullptr);  // completed without an evaluation
    CHECK_FALSE(s.reported());
    CHECK(s.step_index() == 1);
    CHECK(x == x0);
    CHECK(m.net().calls == 0);
    while (!s.done()) {
        s.step(m, batched(x, B));
        CHECK(s.reported());
    }
    CHECK(m.net().calls == 3);
    // the observer sees steps 1, 2, 3; the one-call form gives the same bits
    std::vector<std::size_t> seen;
    std::vector<double> y = x0;
    sample_ddim(m, batched(y, B), ac, held, o, counter_noise{3}, [&](const step_info<double>& i) { seen.push_back(i.step); });
    CHECK(seen == std::vector<std::size_t>{1, 2, 3});
    CHECK(stepper_check::same_bits(x, y));
    // draw i is step i's: the held step's number is skipped, as in the run without it shifted by one
    std::vector<double> z = x0;
    sample_ddim(m, batched(z, B), ac, rest, o, [](const auto& v, std::uint64_t k) { counter_noise{3}(v, k + 1); });
    CHECK(stepper_check::same_bits(x, z));
    // the same holds for DDPM and LCM: nothing evaluated at the held step
    auto m2 = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
    std::vector<double> w = x0;
    sample_ddpm(m2, batched(w, B), ac, held);
    sample_lcm(m2, batched(w, B), ac, held);
    CHECK(m2.net().calls == 6);
}

TEST_CASE("discrete steppers: push evaluations state the timesteps; fulfil() refines them for the model type",
          "[steppers][discrete]") {
    const std::size_t B = 2, D = 4;
    const auto ts = discrete_timesteps(1000, 6, timestep_spacing::leading);
    const auto grid = discrete_grid(ts);
    const auto x0 = stepper_check::initial_state<double>(B, D);
    {
        ddpm_options o;
        o.variance_type = ddpm_variance::learned_range;
        ddpm_stepper<double> s({B, D}, ac, grid, o);
        std::vector<double> x = x0;
        const auto* e = s.begin_step(batched(x, B));
        REQUIRE(e != nullptr);
        CHECK(e->time_name == "timestep");
        REQUIRE(e->t_net.size() == B);
        CHECK(e->t_net[0] == double(ts[0]));
        CHECK(e->want == prediction::epsilon);
        CHECK(e->variance_out.size() == B * D);  // the learned variance is asked for
        CHECK(e->alpha[1] == Approx(std::sqrt(ac[std::size_t(ts[0])])).epsilon(1e-15));
    }
    // x̂₀- and v-networks: pull asks the network's own prediction; a push caller gets the same bits through
    // s.fulfil(m, e), and within rounding through the plain evaluate(m, e) (which asks ε̂)
    for (auto pred : {prediction::sample, prediction::v}) {
        ddim_options o;
        o.eta = 0.5;
        auto m = analytic_model(stepper_check::mixture(D), pred, discrete_time(ac));
        std::vector<double> ref = x0, fulfilled = x0, plain = x0;
        sample_ddim(m, batched(ref, B), ac, grid, o);
        ddim_stepper<double> a({B, D}, ac, grid, o), b({B, D}, ac, grid, o);
        while (!a.done()) {
            for (const auto* e = a.begin_step(batched(fulfilled, B)); e; e = a.resume()) a.fulfil(m, *e);
            for (const auto* e = b.begin_step(batched(plain, B)); e; e = b.resume()) evaluate(m, *e);
        }
        CHECK(stepper_check::same_bits(fulfilled, ref));
        for (std::size_t i = 0; i < ref.size(); ++i) CHECK(plain[i] == Approx(ref[i]).epsilon(1e-12).margin(1e-13));
    }
    // a network that does not read discrete timesteps gets its time from σ/α in pull mode (no t_net)
    {
        struct recording_net {
            std::vector<double>* times;
            void operator()(tensor_view<const double> x, const model_cond& c, tensor_view<double> out) const {
                times->push_back(c.t[0]);
                for (std::size_t i = 0; i < x.size(); ++i) out[i] = 0.1 * x[i];
            }
        };
        const vp_sde sde;
        std::vector<double> discrete_times, continuous_times;
        model md(recording_net{&discrete_times}, prediction::epsilon, discrete_time(ac));
        model mc(recording_net{&continuous_times}, prediction::epsilon, continuous_time<vp_sde>{sde});
        std::vector<double> x = x0, y = x0;
        sample_ddim(md, batched(x, B), ac, grid);
        sample_ddim(mc, batched(y, B), ac, grid);
        REQUIRE(discrete_times.size() == ts.size());
        REQUIRE(continuous_times.size() == ts.size());
        for (std::size_t i = 0; i < ts.size(); ++i) {
            CHECK(discrete_times[i] == double(ts[i]));
            CHECK(continuous_times[i] > 0.0);
            CHECK(continuous_times[i] <= 1.0);
        }
    }
}

TEST_CASE("discrete steppers: a model error names the sampler and step once, and the stepper refuses to go on",
          "[steppers][discrete]") {
    struct poisoned {
        double bad_below;
        void operator()(tensor_view<const double> x, const model_cond& c, tensor_view<double> out) const {
            for (std::size_t b = 0; b < x.batch; ++b)
                for (std::size_t j = 0; j < x.per_sample; ++j)
                    out.sample(b)[j] = c.t[b] < bad_below ? std::numeric_limits<double>::quiet_NaN() : 0.1 * x.sample(b)[j];
        }
    };
    const std::size_t B = 2, D = 3;
    const auto grid = discrete_grid(std::vector<std::int64_t>{900, 700, 500, 300, 100});
    auto check_message = [](const std::string& msg, const std::string& where_step) {
        INFO(msg);
        CHECK(msg.find(where_step) != std::string::npos);
        CHECK(msg.find("diffuse:", 1) == std::string::npos);  // said once
        CHECK(msg.find("NaN or Inf") != std::string::npos);
    };
    model m(poisoned{400.0}, prediction::epsilon, discrete_time(ac));
    std::vector<double> x(B * D, 0.5);
    check_message(error_of([&] { sample_ddim(m, batched(x, B), ac, grid); }), "sample_ddim: step 3 (timestep = 300");
    x.assign(B * D, 0.5);
    check_message(error_of([&] { sample_ddpm(m, batched(x, B), ac, grid); }), "sample_ddpm: step 3 (timestep = 300");
    x.assign(B * D, 0.5);
    check_message(error_of([&] { sample_lcm(m, batched(x, B), ac, grid); }), "sample_lcm: step 3 (timestep = 300");
    const time_grid up({100.0, 300.0, 500.0});
    x.assign(B * D, 0.5);
    check_message(error_of([&] { sample_ddim_inverse(m, batched(x, B), ac, up); }), "sample_ddim_inverse: step 0 (timestep = 100");
    // a failed step leaves the stepper unusable
    x.assign(B * D, 0.5);
    ddpm_stepper<double> s({B, D}, ac, grid);
    for (int i = 0; i < 3; ++i) s.step(m, batched(x, B));
    CHECK_THROWS_AS(s.step(m, batched(x, B)), error);
    CHECK_THROWS_AS(s.step(m, batched(x, B)), error);
    // learned variance from a model without predict_with_variance: named at the step
    ddpm_options learned;
    learned.variance_type = ddpm_variance::learned_range;
    auto inner = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
    cfg_model<decltype(inner)> guided(inner, 2.0);
    x.assign(B * D, 0.5);
    const auto msg = error_of([&] { sample_ddpm(guided, batched(x, B), ac, grid, learned); });
    CHECK(msg.find("sample_ddpm: step 0") != std::string::npos);
    CHECK(msg.find("predict_with_variance") != std::string::npos);
}

TEST_CASE("discrete steppers: a grid without its final -1, or out of order, is a named error before any model call",
          "[steppers][discrete]") {
    const std::size_t B = 2, D = 3;
    auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
    std::vector<double> x(B * D, 0.5);
    const auto ts = discrete_timesteps(1000, 5);
    // the user's trap: the timesteps alone, without discrete_grid's −1, used to stop at timestep ts.back()
    const time_grid bare(std::vector<double>(ts.begin(), ts.end()));
    for (const auto& msg : {error_of([&] { sample_ddim(m, batched(x, B), ac, bare); }),
                            error_of([&] { sample_ddpm(m, batched(x, B), ac, bare); }),
                            error_of([&] { sample_lcm(m, batched(x, B), ac, bare); }),
                            error_of([&] { ddim_stepper<double>({B, D}, ac, bare); })}) {
        INFO(msg);
        CHECK(msg.find("time_grid point 4 (the last) = " + std::to_string(ts.back())) != std::string::npos);
        CHECK(msg.find("discrete_grid") != std::string::npos);
    }
    CHECK(m.net().calls == 0);
    // per-sample rows name the row; −1 only at the end; the grid descends; timesteps below T
    const auto row_msg = error_of([&] {
        sample_ddim(m, batched(x, B), ac, time_grid::per_sample({{900.0, 500.0, -1.0}, {900.0, 500.0, 100.0}}));
    });
    CHECK(row_msg.find("time_grid point 2 of row 1 (the last)") != std::string::npos);
    CHECK(error_of([&] { sample_ddim(m, batched(x, B), ac, time_grid({900.0, -1.0, -1.0})); })
              .find("time_grid point 1 = -1") != std::string::npos);
    CHECK(error_of([&] { sample_ddpm(m, batched(x, B), ac, time_grid({500.0, 700.0, -1.0})); })
              .find("the grid descends") != std::string::npos);
    CHECK(error_of([&] { sample_lcm(m, batched(x, B), ac, time_grid({1000.0, -1.0})); }).find("[0, 999]") !=
          std::string::npos);
    // img2img rows (held at their start) and discrete_grid's grids are accepted
    CHECK_NOTHROW(ddpm_stepper<double>({3, D}, ac, img2img_grid(ts, std::vector<double>{1.0, 0.6, 0.2})));
    CHECK_NOTHROW(lcm_stepper<double>({B, D}, ac, discrete_grid(lcm_timesteps(4))));
    // DDIM inversion: ascending, ending at a timestep; −1 only first and only with model_at_target
    CHECK(error_of([&] { sample_ddim_inverse(m, batched(x, B), ac, time_grid({100.0, 300.0, -1.0})); })
              .find("time_grid point 2 = -1") != std::string::npos);
    CHECK(error_of([&] { sample_ddim_inverse(m, batched(x, B), ac, time_grid({300.0, 100.0})); })
              .find("clean to noisy") != std::string::npos);
    CHECK(error_of([&] { sample_ddim_inverse(m, batched(x, B), ac, time_grid({-1.0, 100.0})); })
              .find("needs model_at_target") != std::string::npos);
    ddim_inverse_options at_target;
    at_target.model_at_target = true;
    CHECK_NOTHROW(ddim_inverse_stepper<double>({B, D}, ac, time_grid({-1.0, 100.0, 300.0}), at_target));
    CHECK(m.net().calls == 0);
    // the schedule itself
    const std::vector<double> bad_ac{0.9, 1.5};
    CHECK(error_of([&] { ddim_stepper<double>({B, D}, bad_ac, time_grid({1.0, -1.0})); }).find("alphas_cumprod[1]") !=
          std::string::npos);
}

TEST_CASE("tcd: gamma = 0 is DDIM's eta = 0 ending at alpha_cumprod[0]; gamma = 1 maps to s = 0; named errors",
          "[steppers][discrete][tcd]") {
    const std::size_t B = 2, D = 4;
    const auto x0 = stepper_check::initial_state<double>(B, D);
    const auto grid = discrete_grid(tcd_timesteps(6, 50, 1000));
    auto m = analytic_model(stepper_check::mixture(D), prediction::epsilon, discrete_time(ac));
    // γ = 0: s = t', x ← √ᾱ_{t'}·x̂₀ + √(1 − ᾱ_{t'})·ε̂ with t' = 0 after the last step: DDIM (η = 0, no clipping)
    // whose final ᾱ is ᾱ_0 (set_alpha_to_one = false)
    tcd_options g0;
    g0.eta = 0.0;
    ddim_options d;
    d.clip_sample = false;
    d.set_alpha_to_one = false;
    std::vector<double> a = x0, b = x0;
    sample_tcd(m, batched(a, B), ac, grid, g0);
    sample_ddim(m, batched(b, B), ac, grid, d);
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-13).margin(1e-13));
    // γ = 1: every step maps to x̂₀ at s = 0 and re-noises to ᾱ_{t'}: one step by hand from the model's pair
    tcd_options g1;
    g1.eta = 1.0;
    const auto one = discrete_grid(std::vector<std::int64_t>{799, 399});
    std::vector<double> c = x0, den;
    sample_tcd(m, batched(c, B), ac, one, g1, counter_noise{5}, [&](const step_info<double>& i) {
        if (i.step == 0) den.assign(i.denoised.data, i.denoised.data + i.denoised.size());
    });
    std::vector<double> z(B * D);
    counter_noise{5}(batched(z, B), 0);
    std::vector<double> c_first = x0;  // replay step 0 alone: x̂₀ at 799, then x_0-state, then re-noise to 399
    for (std::size_t k = 0; k < c_first.size(); ++k) {
        const double eps = (x0[k] - std::sqrt(ac[799]) * den[k]) / std::sqrt(1 - ac[799]);
        const double xs = std::sqrt(ac[0]) * den[k] + std::sqrt(1 - ac[0]) * eps;
        c_first[k] = std::sqrt(ac[399] / ac[0]) * xs + std::sqrt(1 - ac[399] / ac[0]) * z[k];
    }
    std::vector<double> c_step = x0;
    tcd_stepper<double> s({B, D}, ac, one, g1, counter_noise{5});
    s.step(m, batched(c_step, B));
    for (std::size_t k = 0; k < c_first.size(); ++k) CHECK(c_step[k] == Approx(c_first[k]).epsilon(1e-12).margin(1e-12));
    // named errors: γ outside [0, 1], a grid without its −1, a schedule the timesteps cannot come from
    tcd_options bad;
    bad.eta = 1.5;
    CHECK(error_of([&] { tcd_stepper<double>({B, D}, ac, grid, bad); }).find("sample_tcd") != std::string::npos);
    CHECK(error_of([&] { tcd_stepper<double>({B, D}, ac, grid, bad); }).find("eta") != std::string::npos);
    CHECK(error_of([&] { sample_tcd(m, batched(a, B), ac, time_grid({999.0, 499.0})); }).find("(the last)") !=
          std::string::npos);
    CHECK(error_of([&] { (void)tcd_timesteps(30, 20); }).find("num_inference_steps") != std::string::npos);
    CHECK(error_of([&] { (void)tcd_timesteps(3, 50, 1000, 0.0); }).find("strength") != std::string::npos);
    CHECK(error_of([&] { tcd_stepper<double>({3, D}, ac, grid); }).empty());
    CHECK(tcd_timesteps(4) == lcm_timesteps(4));
}

TEST_CASE("diffusers' N + 1 trailing steps: discrete_timesteps keeps the -1, DDPM / DDIM accept it only when asked",
          "[steppers][discrete]") {
    const std::size_t B = 2, D = 3;
    const auto s1200 = discrete_schedule::from_config("linear", 1200);
    const std::vector<double>& ac1200 = s1200.alphas_cumprod;
    const auto plain = discrete_timesteps(1200, 14, timestep_spacing::trailing);
    const auto extra = discrete_timesteps(1200, 14, timestep_spacing::trailing, 0, true);
    CHECK(plain.size() == 14);
    REQUIRE(extra.size() == 15);
    CHECK(extra.back() == -1);
    CHECK(std::vector<std::int64_t>(extra.begin(), extra.end() - 1) == plain);
    CHECK(discrete_timesteps(1000, 14, timestep_spacing::trailing, 0, true).size() == 14);  // numpy gives N there
    CHECK(discrete_timesteps(1200, 14, timestep_spacing::leading, 0, true).size() == 14);   // trailing only
    auto m = analytic_model(stepper_check::mixture(D), prediction::v, discrete_time(ac1200));
    const auto x0 = stepper_check::initial_state<double>(B, D);
    std::vector<double> x = x0;
    CHECK(error_of([&] { sample_ddpm(m, batched(x, B), ac1200, discrete_grid(extra)); }).find("time_grid point 14 = -1") !=
          std::string::npos);
    CHECK(error_of([&] { sample_ddim(m, batched(x, B), ac1200, discrete_grid(extra)); }).find("time_grid point 14 = -1") !=
          std::string::npos);
    CHECK(m.net().calls == 0);
    // DDPM's step at −1 reads ᾱ_{T−1} and steps to ᾱ = 1: it returns that step's x̂₀ without noise
    ddpm_options o;
    o.trailing_extra_timestep = true;
    std::vector<double> last_den, last_t;
    sample_ddpm(m, batched(x, B), ac1200, discrete_grid(extra), o, counter_noise{2}, [&](const step_info<double>& i) {
        last_den.assign(i.denoised.data, i.denoised.data + i.denoised.size());
        last_t.assign(i.time.begin(), i.time.end());
    });
    CHECK(m.net().calls == 15);
    CHECK(last_t == std::vector<double>{0.0, 0.0});  // the network time of timestep −1
    CHECK(x == last_den);
    // DDIM: the extra step's state is that of ᾱ_{T−1}; with η = 0 and ᾱ_final = 1 it also returns x̂₀
    ddim_options d;
    d.trailing_extra_timestep = true;
    d.num_inference_steps = 14;
    d.clip_sample = false;
    std::vector<double> y = x0;
    std::vector<double> ddim_den;
    sample_ddim(m, batched(y, B), ac1200, discrete_grid(extra), d, counter_noise{2}, [&](const step_info<double>& i) {
        ddim_den.assign(i.denoised.data, i.denoised.data + i.denoised.size());
    });
    for (std::size_t k = 0; k < y.size(); ++k) CHECK(y[k] == Approx(ddim_den[k]).epsilon(1e-12).margin(1e-12));
    // −1 is accepted only as the last step's start
    CHECK(error_of([&] { ddpm_stepper<double>({B, D}, ac1200, time_grid({-1.0, 500.0, -1.0}), o); }).find("time_grid point 0") !=
          std::string::npos);
}
