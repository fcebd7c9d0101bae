// Per-step overhead of the samplers' own work (issue 9: samplers as steppers must not cost more than 5 %
// per step). The network is out = 0.5·x (one multiply per value, the same in every build), so what is timed
// is the sampler: coefficient set-up, lincombs, noise, the model plumbing (finite check of the output) and
// the bookkeeping around each step. State: float, batch 1 × 4·64·64 values, 50 steps.
//
//   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build bench_stepper
//   ./build/benchmarks/bench_stepper --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The bm_sample_* benchmarks use only the one-call sample_* functions with arguments that mean the same
// before and after the stepper refactor, so this file compiles against both trees and
// tools/bench_stepper_compare.sh times the two builds against each other. Where the stepper core exists,
// bm_euler_stepper_pull / _push drive euler_stepper<float> directly (s.step(m, x); begin_step/resume with
// diffuse::evaluate) for the cost of each driving mode against sample_euler.
//
// Each iteration is one whole run: the initial x is copied in (one 64 KiB copy, 1/50 of it per step, the same
// in every build), then every step. per_step = CPU time / (iterations · steps); one thread.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/schedules/beta.hpp"

#if __has_include("diffuse/samplers/stepper.hpp")
#include "diffuse/samplers/stepper.hpp"
#define DIFFUSE_BENCH_HAS_STEPPER 1
#endif

using namespace diffuse;

namespace {

// The trivial network: out = 0.5·x (as an x₀ prediction it halves the state; as ε it is bounded by x).
struct half_net {
    template <class T>
    void operator()(tensor_view<const T> x, const model_cond&, tensor_view<T> out) const noexcept {
        const T* in = x.data;
        T* o = out.data;
        for (std::size_t i = 0, n = x.size(); i < n; ++i) o[i] = T(0.5) * in[i];
    }
};

constexpr std::size_t steps = 50;
constexpr std::size_t batch = 1, per_sample = 4 * 64 * 64;

std::vector<double> alphas_cumprod() {
    const auto a = alphas_from_betas(scaled_linear_betas(1000, 0.00085, 0.012));
    std::vector<double> ac(a.size());
    double p = 1;
    for (std::size_t i = 0; i < a.size(); ++i) ac[i] = p *= a[i];
    return ac;
}
const std::vector<double> ac = alphas_cumprod();

// Karras-like geometric σ grid 14.6 → 0.03, then 0 (or 0.02, so that every Heun step evaluates twice).
time_grid sigma_grid(bool final_zero) {
    std::vector<double> p;
    for (std::size_t i = 0; i < steps; ++i) p.push_back(14.6 * std::pow(0.03 / 14.6, double(i) / double(steps - 1)));
    p.push_back(final_zero ? 0.0 : 0.02);
    return time_grid(p);
}
const time_grid sigmas_to_zero = sigma_grid(true), sigmas_to_positive = sigma_grid(false);

time_grid discrete_steps() {
    std::vector<std::int64_t> ts(steps);
    for (std::size_t i = 0; i < steps; ++i) ts[i] = std::int64_t(980 - 20 * i);
    return discrete_grid(ts);
}
const time_grid timesteps = discrete_steps();

// The initial state, drawn once: σ_0·z for the σ-space samplers, z for DDIM/DDPM.
std::vector<float> initial(double scale) {
    std::vector<float> x(batch * per_sample);
    fill_normal(batched(x, batch), 1, 0);
    for (auto& v : x) v = float(scale * double(v));
    return x;
}

// One whole run, kept out of line so that an instruction count (valgrind --tool=callgrind
// --toggle-collect='*one_run*', tools/bench_stepper_compare.sh --instructions) sees exactly the run.
template <class Run>
[[gnu::noinline]] void one_run(Run& run, tensor_view<float> x) {
    run(x);
}

// One whole run per iteration; run(x) does the steps on x.
template <class Run>
void time_runs(benchmark::State& state, double scale, Run&& run) {
    const std::vector<float> x0 = initial(scale);
    std::vector<float> x(x0.size());
    for (auto _ : state) {
        std::copy(x0.begin(), x0.end(), x.begin());
        one_run(run, tensor_view<float>{x.data(), batch, per_sample});
        benchmark::DoNotOptimize(x.data());
        benchmark::ClobberMemory();
    }
    // seconds of CPU time per step (rate inverted: CPU time / (iterations · steps))
    state.counters["per_step"] =
        benchmark::Counter(double(state.iterations()) * double(steps), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["steps"] = double(steps);  // per run (for per-step instruction counts)
}

auto sigma_model() { return model(half_net{}, prediction::sample, sigma_time{}); }
auto eps_model() { return model(half_net{}, prediction::epsilon, discrete_time(ac)); }
const double sigma_max = 14.6;

void bm_sample_euler(benchmark::State& s) {
    auto m = sigma_model();
    time_runs(s, sigma_max, [&](tensor_view<float> x) { sample_euler(m, x, sigmas_to_zero); });
}
void bm_sample_euler_ancestral(benchmark::State& s) {
    auto m = sigma_model();
    time_runs(s, sigma_max, [&](tensor_view<float> x) {
        sample_euler_ancestral(m, x, sigmas_to_zero, ancestral_options{}, counter_noise{1});
    });
}
void bm_sample_heun(benchmark::State& s) {  // two model evaluations per step (the grid ends at σ = 0.02)
    auto m = sigma_model();
    time_runs(s, sigma_max, [&](tensor_view<float> x) { sample_heun(m, x, sigmas_to_positive); });
}
void bm_sample_dpmpp_2m(benchmark::State& s) {
    auto m = sigma_model();
    // four arguments: the fifth changes meaning in the refactor (observer before, noise after)
    time_runs(s, sigma_max, [&](tensor_view<float> x) { sample_dpmpp_2m(m, x, sigmas_to_zero, dpmpp_2m_options{}); });
}
void bm_sample_ddim(benchmark::State& s) {  // η = 0 (the default): deterministic
    auto m = eps_model();
    time_runs(s, 1.0, [&](tensor_view<float> x) { sample_ddim(m, x, ac, timesteps, ddim_options{}); });
}
void bm_sample_ddpm(benchmark::State& s) {
    auto m = eps_model();
    time_runs(s, 1.0, [&](tensor_view<float> x) { sample_ddpm(m, x, ac, timesteps, ddpm_options{}, counter_noise{1}); });
}

#ifdef DIFFUSE_BENCH_HAS_STEPPER
// euler_stepper driven by hand: pull (the stepper calls the model) and push (the caller answers each
// evaluation with diffuse::evaluate). Same run as bm_sample_euler, without the observer loop of run().
void bm_euler_stepper_pull(benchmark::State& s) {
    auto m = sigma_model();
    time_runs(s, sigma_max, [&](tensor_view<float> x) {
        euler_stepper<float> st(shape_of(x), sigmas_to_zero);
        while (!st.done()) st.step(m, x);
    });
}
void bm_euler_stepper_push(benchmark::State& s) {
    auto m = sigma_model();
    time_runs(s, sigma_max, [&](tensor_view<float> x) {
        euler_stepper<float> st(shape_of(x), sigmas_to_zero);
        while (!st.done())
            for (const evaluation<float>* e = st.begin_step(x); e != nullptr; e = st.resume()) evaluate(m, *e);
    });
}
#endif

void setup(benchmark::internal::Benchmark* b) { b->Unit(benchmark::kMicrosecond); }

}  // namespace

BENCHMARK(bm_sample_euler)->Apply(setup);
BENCHMARK(bm_sample_euler_ancestral)->Apply(setup);
BENCHMARK(bm_sample_heun)->Apply(setup);
BENCHMARK(bm_sample_dpmpp_2m)->Apply(setup);
BENCHMARK(bm_sample_ddim)->Apply(setup);
BENCHMARK(bm_sample_ddpm)->Apply(setup);
#ifdef DIFFUSE_BENCH_HAS_STEPPER
BENCHMARK(bm_euler_stepper_pull)->Apply(setup);
BENCHMARK(bm_euler_stepper_push)->Apply(setup);
#endif
