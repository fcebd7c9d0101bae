#pragma once
// CUDA graph capture (diffuse/cuda/graph.hpp), shared by test_cuda_host (the recording as host operations) and
// test_cuda_gpu (real graphs). For random configurations and each sampler family below: the capture runs
// nothing (x unchanged), a replay gives the direct run's bits, a second replay on another initial state gives
// that state's direct run, and the graph holds one deferred finite check per model call plus the initial one;
// set_noise_seed gives the direct run with another seed (DDPM, and the PC sampler's Langevin corrector, whose
// step sizes come from the replay's own noise). The families include the two whose per-sample reductions stay on
// the device: the PC sampler with the Langevin corrector (batch-mean and per-sample norms) and guidance rescale;
// and the reductions into device memory with lincomb's per_sample of them, replayed against the host's bits.
// Then what a capture must refuse (reads back to the host, nesting) and the deferred checks failing after a
// replay with the direct run's error.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "device_checks.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/cuda/graph.hpp"
#include "diffuse/guidance/cfg.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/flow_match.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/samplers/noise_source.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/samplers/unipc.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/continuous.hpp"
#include "diffuse/schedules/sigmas.hpp"

namespace diffuse_device_checks {

// v/(1 + |v|), and 1/(v − 7) (infinite at 7: the non-finite network output of the deferred check)
struct soft_sign {
    template <class T>
    DIFFUSE_HD T operator()(T v) const {
        return v / (T(1) + (v < T(0) ? -v : v));
    }
};
struct pole_at_seven {
    template <class T>
    DIFFUSE_HD T operator()(T v) const {
        return T(1) / (v - T(7));
    }
};

// A small nonlinear network in primitives only, so it runs in either memory space: out = a(t)·f(x) + c(t)·x, a
// and c per sample from the network time and the unconditional flag (classifier-free guidance then has two
// different predictions); counts its calls when given a counter.
template <class F>
struct primitive_net {
    std::size_t* calls = nullptr;
    std::vector<double> a{}, c{};
    template <class T, memory_space S>
    void operator()(diffuse::tensor_view<const T, S> x, const diffuse::model_cond& cond, diffuse::tensor_view<T, S> out) {
        if (calls != nullptr) ++*calls;
        a.resize(x.batch);
        c.resize(x.batch);
        for (std::size_t b = 0; b < x.batch; ++b) {
            const double t = cond.t[b];
            const double drop = cond.unconditional.empty() ? 0.0 : double(cond.unconditional[b]);
            a[b] = 0.6 + 0.3 * std::sin(0.013 * t + 0.5) - 0.25 * drop;
            c[b] = 0.2 * std::cos(0.007 * t) + 0.1 * drop;
        }
        diffuse::transform(out, F{}, x);
        diffuse::lincomb(out, diffuse::per_sample(a), out, diffuse::per_sample(c), x);
    }
};

inline std::vector<double> linear_alphas_cumprod() {
    const auto a = diffuse::alphas_from_betas(diffuse::linear_betas(1000));
    std::vector<double> ac(a.size());
    double p = 1;
    for (std::size_t i = 0; i < a.size(); ++i) ac[i] = p *= a[i];
    return ac;
}

inline diffuse::time_grid leading_timesteps(std::size_t steps) {
    std::vector<std::int64_t> t(steps);
    for (std::size_t i = 0; i < steps; ++i) t[i] = std::int64_t((steps - 1 - i) * (1000 / steps));
    return diffuse::discrete_grid(t);
}

// The message of the diffuse::error f throws ("" when it throws none, "not a diffuse::error" for another).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const diffuse::error& e) {
        return e.what();
    } catch (...) {
        return "not a diffuse::error";
    }
    return "";
}

template <class T>
std::vector<T> to_host(const device_buffer<T>& d) {
    std::vector<T> h(d.size());
    diffuse::copy(h, d);
    return h;
}

// One sampler family: direct runs from x0 and x1, a capture, two replays.
template <class T, class Run>
void check_graph_of(log& out, const std::string& name, std::size_t batch, const std::vector<T>& x0,
                    const std::vector<T>& x1, Run run) {
    device_buffer<T> direct(x0.size());
    std::size_t calls = 0;
    diffuse::copy(direct, x0);
    run(direct.view(batch, x0.size() / batch), &calls);
    const std::vector<T> want0 = to_host(direct);
    diffuse::copy(direct, x1);
    run(direct.view(batch, x0.size() / batch), &calls);
    const std::vector<T> want1 = to_host(direct);

    device_buffer<T> x(x0.size());
    diffuse::copy(x, x0);
    calls = 0;
    std::string failure = error_of([&] {
        auto graph = diffuse::capture_graph([&] { run(x.view(batch, x0.size() / batch), &calls); });
        out.same_bits(name + ": the capture runs nothing", x0, to_host(x));
        out.same(name + ": deferred finite checks (model calls + the initial x)", calls + 1, graph.checks());
        graph.replay();
        out.same_bits(name + ": replay vs the direct run", want0, to_host(x));
        diffuse::copy(x, x1);
        graph.replay();
        out.same_bits(name + ": replay on another initial x vs its direct run", want1, to_host(x));
    });
    ++out.checks;
    if (!failure.empty()) out.fail(name + ": " + failure);
}

inline void require_error(log& out, const std::string& what, const std::string& message, const std::string& part) {
    ++out.checks;
    if (message.find(part) == std::string::npos)
        out.fail(what + ": expected a diffuse::error containing \"" + part + "\", got \"" + message + "\"");
}

template <class T>
void check_graphs(std::mt19937_64& rng, log& out, int rounds) {
    using net = primitive_net<soft_sign>;
    const auto ac = linear_alphas_cumprod();
    for (int round = 0; round < rounds; ++round) {
        const std::size_t batch = 1 + rng() % 4, per_sample = 1 + rng() % 300, steps = 2 + rng() % 5;
        const diffuse::counter_noise noise{rng(), 5};
        const auto sigmas = diffuse::karras_sigmas(steps, 0.03, 14.6);
        const diffuse::time_grid sigma_grid(sigmas);
        std::vector<T> x0 = random_values<T>(rng, batch * per_sample), x1 = random_values<T>(rng, batch * per_sample);
        auto scaled = [&](const std::vector<T>& v) {
            std::vector<T> r = v;
            for (auto& e : r) e = T(e * sigmas[0]);
            return r;
        };
        const std::vector<T> s0 = scaled(x0), s1 = scaled(x1);
        const std::string config = " (" + std::to_string(batch) + "x" + std::to_string(per_sample) + ", " +
                                   std::to_string(steps) + " steps)";
        auto discrete = [&](std::size_t* calls) {
            return diffuse::model(net{calls}, diffuse::prediction::epsilon, diffuse::discrete_time(ac));
        };

        check_graph_of<T>(out, "ddim, eta 0.5" + config, batch, x0, x1, [&](auto x, std::size_t* calls) {
            auto m = discrete(calls);
            diffuse::ddim_options o;
            o.eta = 0.5;
            diffuse::sample_ddim(m, x, ac, leading_timesteps(steps), o, noise);
        });
        check_graph_of<T>(out, "ddim with dynamic thresholding" + config, batch, x0, x1, [&](auto x, std::size_t* calls) {
            auto m = discrete(calls);
            diffuse::ddim_options o;
            o.thresholding = true;
            o.dynamic_thresholding_ratio = 0.9;
            o.sample_max_value = 1.5;
            diffuse::sample_ddim(m, x, ac, leading_timesteps(steps), o);
        });
        check_graph_of<T>(out, "ddpm, clipped" + config, batch, x0, x1, [&](auto x, std::size_t* calls) {
            auto m = discrete(calls);
            diffuse::ddpm_options o;
            o.clip_sample = true;
            diffuse::sample_ddpm(m, x, ac, leading_timesteps(steps), o, noise);
        });
        std::vector<double> recorded((steps + 1) * batch * per_sample);
        for (auto& v : recorded) v = std::normal_distribution<double>()(rng);
        const diffuse::recorded_noise replayed(recorded, batch * per_sample);
        check_graph_of<T>(out, "ddpm with recorded noise (each draw a constant of the graph)" + config, batch, x0, x1,
                          [&](auto x, std::size_t* calls) {
                              auto m = discrete(calls);
                              diffuse::sample_ddpm(m, x, ac, leading_timesteps(steps), diffuse::ddpm_options{}, replayed);
                          });
        check_graph_of<T>(out, "euler ancestral" + config, batch, s0, s1, [&](auto x, std::size_t* calls) {
            auto m = discrete(calls);
            diffuse::sample_euler_ancestral(m, x, sigma_grid, {}, noise);
        });
        check_graph_of<T>(out, "heun" + config, batch, s0, s1, [&](auto x, std::size_t* calls) {
            auto m = discrete(calls);
            diffuse::sample_heun(m, x, sigma_grid);
        });
        check_graph_of<T>(out, "dpm-solver++ 2m sde" + config, batch, s0, s1, [&](auto x, std::size_t* calls) {
            auto m = discrete(calls);
            diffuse::sample_dpmpp_2m_sde(m, x, sigma_grid, {}, noise);
        });
        check_graph_of<T>(out, "unipc" + config, batch, s0, s1, [&](auto x, std::size_t* calls) {
            auto m = discrete(calls);
            diffuse::sample_unipc(m, x, sigma_grid);
        });
        check_graph_of<T>(out, "classifier-free guidance (dpm-solver++ 2m)" + config, batch, s0, s1,
                          [&](auto x, std::size_t* calls) {
                              auto inner = discrete(calls);
                              diffuse::cfg_model guided(inner, 4.5);
                              diffuse::sample_dpmpp_2m(guided, x, sigma_grid);
                          });
        // guidance rescale: the variances and the factor stay on the device, computed in each replay
        check_graph_of<T>(out, "classifier-free guidance with rescale 0.7 (euler ancestral)" + config, batch, s0, s1,
                          [&](auto x, std::size_t* calls) {
                              auto inner = discrete(calls);
                              diffuse::cfg_model guided(inner, 4.5, 0.7);
                              diffuse::sample_euler_ancestral(guided, x, sigma_grid, {}, noise);
                          });
        // the predictor-corrector sampler with the Langevin corrector: its norms and step sizes stay on the device
        std::vector<double> pc_points(steps + 1);
        for (std::size_t i = 0; i < steps; ++i) pc_points[i] = 1.0 - 0.9 * double(i) / double(steps);
        pc_points[steps] = 1e-3;
        const diffuse::time_grid pc_grid(pc_points);
        for (const auto norm : {diffuse::langevin_norm::batch_mean, diffuse::langevin_norm::per_sample}) {
            const std::string which = norm == diffuse::langevin_norm::batch_mean ? "batch-mean" : "per-sample";
            check_graph_of<T>(out, "pc with the langevin corrector, " + which + " norms, 2 moves" + config, batch, x0, x1,
                              [&](auto x, std::size_t* calls) {
                                  const diffuse::vp_sde sde{};
                                  auto m = diffuse::model(net{calls}, diffuse::prediction::epsilon,
                                                          diffuse::continuous_time<diffuse::vp_sde>{sde});
                                  diffuse::pc_options o;
                                  o.norm = norm;
                                  o.n_steps = 2;
                                  diffuse::sample_pc(m, x, sde, pc_grid, o, noise);
                              });
        }
    }

    // New noise for each replay: set_noise_seed(captured, seed) gives the direct run with that seed.
    for (const std::uint64_t captured_seed : {std::uint64_t(11), std::uint64_t(0xfedcba9876543210)}) {
        const std::size_t batch = 3, per_sample = 1 + rng() % 200, steps = 4;
        const std::vector<T> x0 = random_values<T>(rng, batch * per_sample);
        const std::uint64_t seed = rng();
        std::size_t calls = 0;
        auto ddpm = [&](diffuse::tensor_view<T, memory_space::device> x, std::uint64_t s) {
            auto m = diffuse::model(net{&calls}, diffuse::prediction::epsilon, diffuse::discrete_time(ac));
            diffuse::fill_normal(x, s, 9);  // the initial noise, drawn inside the run
            diffuse::sample_ddpm(m, x, ac, leading_timesteps(steps), diffuse::ddpm_options{}, diffuse::counter_noise{s, 5});
        };
        device_buffer<T> direct(x0.size()), x(x0.size());
        ddpm(direct.view(batch, per_sample), seed);
        const std::vector<T> want = to_host(direct);
        ddpm(direct.view(batch, per_sample), captured_seed);
        const std::vector<T> captured_run = to_host(direct);
        const std::string failure = error_of([&] {
            auto graph = diffuse::capture_graph([&] { ddpm(x.view(batch, per_sample), captured_seed); });
            graph.replay();
            out.same_bits("ddpm with its initial noise: a replay with the captured seed", captured_run, to_host(x));
            graph.set_noise_seed(captured_seed, seed);
            graph.replay();
            out.same_bits("ddpm with its initial noise: a replay after set_noise_seed vs the direct run with that seed", want,
                          to_host(x));
            require_error(out, "set_noise_seed of a seed the capture did not draw with",
                          error_of([&] { graph.set_noise_seed(captured_seed + 1, seed); }), "drew no noise with seed");
        });
        ++out.checks;
        if (!failure.empty()) out.fail("set_noise_seed: " + failure);
    }

    // The Langevin corrector's step sizes come from the replay's own noise: after set_noise_seed, the direct run
    // with that seed (both norm options).
    for (const auto norm : {diffuse::langevin_norm::batch_mean, diffuse::langevin_norm::per_sample}) {
        const std::size_t batch = 3, per_sample = 1 + rng() % 200;
        const std::vector<T> x0 = random_values<T>(rng, batch * per_sample);
        const std::uint64_t captured_seed = rng(), seed = rng();
        std::size_t calls = 0;
        const diffuse::vp_sde sde{};
        const diffuse::time_grid grid(std::vector<double>{1.0, 0.6, 0.3, 1e-3});
        auto pc = [&](diffuse::tensor_view<T, memory_space::device> x, std::uint64_t s) {
            auto m = diffuse::model(net{&calls}, diffuse::prediction::epsilon, diffuse::continuous_time<diffuse::vp_sde>{sde});
            diffuse::pc_options o;
            o.norm = norm;
            diffuse::sample_pc(m, x, sde, grid, o, diffuse::counter_noise{s, 3});
        };
        device_buffer<T> direct(x0.size()), x(x0.size());
        diffuse::copy(direct, x0);
        pc(direct.view(batch, per_sample), seed);
        const std::vector<T> want = to_host(direct);
        diffuse::copy(x, x0);
        const std::string failure = error_of([&] {
            auto graph = diffuse::capture_graph([&] { pc(x.view(batch, per_sample), captured_seed); });
            diffuse::copy(x, x0);
            graph.set_noise_seed(captured_seed, seed);
            graph.replay();
            out.same_bits("pc with the langevin corrector: a replay after set_noise_seed vs the direct run with that seed",
                          want, to_host(x));
        });
        ++out.checks;
        if (!failure.empty()) out.fail("pc set_noise_seed: " + failure);
    }

    // A guided model held across the capture and grown afterwards by a direct call at a larger batch: the graph
    // keeps the scratch buffers it captured (grow_buffer), so its replay still gives the direct run's bits (and
    // touches no freed memory: AddressSanitizer watches in CI).
    {
        const std::size_t batch = 2, per_sample = 50;
        const std::vector<T> x0 = random_values<T>(rng, batch * per_sample), big = random_values<T>(rng, 3 * batch * per_sample);
        std::size_t calls = 0;
        auto inner = diffuse::model(net{&calls}, diffuse::prediction::epsilon, diffuse::discrete_time(ac));
        diffuse::cfg_model guided(inner, 3.0);
        const diffuse::time_grid grid(diffuse::karras_sigmas(3, 0.03, 14.6));
        auto run = [&](device_buffer<T>& x, std::size_t b) { diffuse::sample_dpmpp_2m(guided, x.view(b, per_sample), grid); };
        device_buffer<T> direct(x0.size()), x(x0.size()), y(big.size());
        diffuse::copy(direct, x0);
        run(direct, batch);
        const std::vector<T> want = to_host(direct);
        diffuse::copy(x, x0);
        const std::string failure = error_of([&] {
            auto graph = diffuse::capture_graph([&] { run(x, batch); });
            diffuse::copy(y, big);
            run(y, 3 * batch);  // regrows the guided model's scratch
            graph.replay();
            out.same_bits("a graph replayed after its model's scratch grew", want, to_host(x));
        });
        ++out.checks;
        if (!failure.empty()) out.fail("graph after regrowth: " + failure);
    }

    // Refused inside a capture, with the call named; the thread then runs directly again.
    const std::size_t batch = 2, per_sample = 40;
    const std::vector<T> x0 = random_values<T>(rng, batch * per_sample);
    device_buffer<T> x(x0.size());
    diffuse::copy(x, x0);
    std::size_t calls = 0;
    require_error(out, "a reduction into host memory in a capture",
                  error_of([&] {
                      std::vector<double> norms(batch);
                      auto g = diffuse::capture_graph([&] { diffuse::sum_squares(x.view(batch, per_sample), norms); });
                  }),
                  "sum_squares: it copies device values to the host, which cannot happen while a CUDA graph is being captured");
    require_error(out, "a variance into host memory in a capture",
                  error_of([&] {
                      std::vector<double> v(batch);
                      auto g = diffuse::capture_graph([&] { diffuse::variance(x.view(batch, per_sample), v); });
                  }),
                  "variance: it copies device values to the host");
    {  // reductions into device memory and lincomb's per_sample of them: captured, computed in each replay
        device_buffer<double> sums(batch), vars(batch);
        device_buffer<T> y(x0.size());
        const std::vector<T> x1 = random_values<T>(rng, batch * per_sample);
        auto reduce_and_scale = [&] {
            diffuse::sum_squares(x.view(batch, per_sample), sums.view(1, batch));
            diffuse::variance(x.view(batch, per_sample), vars.view(batch, 1));
            diffuse::lincomb(y.view(batch, per_sample), diffuse::per_sample(sums.view(1, batch)), x.view(batch, per_sample),
                             diffuse::per_sample(vars.view(1, batch)), x.view(batch, per_sample));
        };
        std::vector<double> host_sums(batch), host_vars(batch);
        std::vector<T> want(x0.size());
        auto host_run = [&](const std::vector<T>& v) {
            diffuse::sum_squares(diffuse::tensor_view<const T>{v.data(), batch, per_sample}, host_sums);
            diffuse::variance(diffuse::tensor_view<const T>{v.data(), batch, per_sample}, host_vars);
            diffuse::lincomb(diffuse::tensor_view<T>{want.data(), batch, per_sample}, diffuse::per_sample(host_sums),
                             diffuse::tensor_view<const T>{v.data(), batch, per_sample}, diffuse::per_sample(host_vars),
                             diffuse::tensor_view<const T>{v.data(), batch, per_sample});
        };
        const std::string failure = error_of([&] {
            auto graph = diffuse::capture_graph(reduce_and_scale);
            for (const auto* v : {&x1, &x0}) {
                diffuse::copy(x, *v);
                graph.replay();
                host_run(*v);
                out.same_bits("sum_squares into device memory, replayed, vs the host", host_sums, to_host(sums));
                out.same_bits("variance into device memory, replayed, vs the host", host_vars, to_host(vars));
                out.same_bits("lincomb of per-sample device values, replayed, vs the host", want, to_host(y));
            }
        });
        ++out.checks;
        if (!failure.empty()) out.fail("reductions into device memory in a capture: " + failure);
        device_buffer<double> three(batch + 1);
        require_error(out, "sum_squares into device values of the wrong size",
                      error_of([&] { diffuse::sum_squares(x.view(batch, per_sample), three.view(1, batch + 1)); }),
                      "sum_squares: out has 3 values but the batch has 2");
        require_error(out, "variance into device values of the wrong size",
                      error_of([&] { diffuse::variance(x.view(batch, per_sample), three.view(1, batch + 1)); }),
                      "variance: out has 3 values but the batch has 2");
        require_error(out, "lincomb with per-sample device values of the wrong size",
                      error_of([&] {
                          diffuse::lincomb(y.view(batch, per_sample), diffuse::per_sample(three.view(1, batch + 1)),
                                           x.view(batch, per_sample));
                      }),
                      "per-sample coefficient 0 has 3 values but the batch has 2");
    }
    require_error(out, "a copy to the host in a capture", error_of([&] {
                      std::vector<T> back(x0.size());
                      auto g = diffuse::capture_graph([&] { diffuse::copy(back, x); });
                  }),
                  "copy: it copies device values to the host");
    require_error(out, "a capture inside a capture", error_of([&] {
                      auto g = diffuse::capture_graph([&] { auto inner = diffuse::capture_graph([] {}); });
                  }),
                  "captures do not nest");
    out.same_bits("refused captures leave x as it was", x0, to_host(x));
    {
        device_buffer<T> y(x0.size());
        diffuse::copy(y, x0);
        diffuse::lincomb(y, 2.0, y);  // runs directly again after the refusals
        std::vector<T> want = x0;
        for (auto& v : want) v = T(2.0 * v);
        out.same_bits("direct work after refused captures", want, to_host(y));
    }

    // The deferred checks: a replay whose initial x holds NaN, and one whose network returns Inf, throw the
    // direct run's errors.
    const auto grid = leading_timesteps(3);
    auto ddim_of = [&](auto net_value, device_buffer<T>& state) {
        return diffuse::capture_graph([&, net_value]() mutable {
            auto m = diffuse::model(net_value, diffuse::prediction::epsilon, diffuse::discrete_time(ac));
            diffuse::sample_ddim(m, state.view(batch, per_sample), ac, grid, diffuse::ddim_options{});
        });
    };
    {
        auto graph = ddim_of(net{&calls}, x);
        std::vector<T> bad = x0;
        bad[per_sample + 3] = std::numeric_limits<T>::quiet_NaN();
        diffuse::copy(x, bad);
        require_error(out, "a replay from an x with NaN in sample 1", error_of([&] { graph.replay(); }),
                      "the initial x holds NaN or Inf (sample 1), before any model call");
    }
    {
        device_buffer<T> y(x0.size());
        auto graph = ddim_of(primitive_net<pole_at_seven>{&calls}, y);
        std::vector<T> at_pole = x0;
        at_pole[per_sample + 5] = T(7);
        diffuse::copy(y, at_pole);
        require_error(out, "a replay whose network returns Inf for sample 1", error_of([&] { graph.replay(); }),
                      "model::predict: the network returned NaN or Inf for sample 1");
        diffuse::copy(y, x0);
        out.same("the same graph replays on finite values", 0, error_of([&] { graph.replay(); }).size());
    }
}

}  // namespace diffuse_device_checks
