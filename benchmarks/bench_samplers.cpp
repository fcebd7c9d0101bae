// Per-step cost of each sampler's update, excluding the network, on 1×4×64×64 and 16×4×128×128 float32
// states, against the bytes the update must move. tools/bench_diffusers_step.py times diffusers'
// scheduler.step on the same sizes; benchmarks/RESULTS.md records the ratios.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target bench_samplers
//   ./build/benchmarks/bench_samplers --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Each benchmark runs a whole sampler for `steps` model evaluations with a null network (it leaves its
// output untouched: the model's cost is zero) and reports time per model evaluation. What remains is the
// sampler's update plus the model plumbing every step pays (the finite check of the model output).
// The work is diffusers' (tools/bench_diffusers_step.py): the network predicts ε (diffusers' default
// prediction_type), so the σ samplers pay the ε → x₀ conversion D = x − σ·ε as diffusers' schedulers do,
// and DDPM runs without clipping (clip_sample = False on both sides).
// bytes_per_second counts the minimal traffic of one update: tensors read + written, float32, listed
// per sampler below (e.g. Euler: read x and D, write x = 3 tensors; plus 1 read for the finite check).
// One thread (diffuse's default). Times are CPU time (robust on a shared machine; one thread).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/ddpm.hpp"
#include "diffuse/samplers/dpm_solver.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/samplers/flow_match.hpp"
#include "diffuse/samplers/lms.hpp"
#include "diffuse/samplers/ode.hpp"
#include "diffuse/samplers/sde.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/flow.hpp"

using namespace diffuse;

namespace {

// A network whose output costs nothing: it leaves `out` as the sampler's workspace holds it.
struct null_net {
    template <class T>
    void operator()(tensor_view<const T>, const model_cond&, tensor_view<T>) const noexcept {}
};

constexpr std::size_t steps = 50;

std::vector<double> alphas_cumprod() {
    const auto a = alphas_from_betas(scaled_linear_betas(1000, 0.00085, 0.012));
    std::vector<double> ac(a.size());
    double p = 1;
    for (std::size_t i = 0; i < a.size(); ++i) ac[i] = p *= a[i];
    return ac;
}

time_grid sigma_grid(bool final_zero) {
    std::vector<double> p;
    for (std::size_t i = 0; i < steps; ++i) p.push_back(14.6 * std::pow(0.03 / 14.6, double(i) / double(steps - 1)));
    p.push_back(final_zero ? 0.0 : 0.02);
    return time_grid(p);
}

time_grid discrete_steps() {
    std::vector<std::int64_t> ts(steps);
    for (std::size_t i = 0; i < steps; ++i) ts[i] = std::int64_t(980 - 20 * i);
    return discrete_grid(ts);
}

// state.range(0): batch; per sample 4×H×W with H = W = state.range(1).
void run(benchmark::State& state, const std::function<void(tensor_view<float>)>& sampler, double nfe, double tensors) {
    const std::size_t B = std::size_t(state.range(0)), D = 4 * std::size_t(state.range(1) * state.range(1));
    std::vector<float> x(B * D);
    for (auto _ : state) {
        state.PauseTiming();
        fill_normal(batched(x, B), 1, 0);
        state.ResumeTiming();
        sampler(tensor_view<float>{x.data(), B, D});
        benchmark::DoNotOptimize(x.data());
        benchmark::ClobberMemory();
    }
    // seconds per model evaluation (rate inverted: elapsed time / (iterations·nfe))
    state.counters["per_step"] =
        benchmark::Counter(double(state.iterations()) * nfe, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.SetBytesProcessed(std::int64_t(double(state.iterations()) * nfe * tensors * double(B * D) * sizeof(float)));
}

const auto ac = alphas_cumprod();

// tensors moved per model evaluation (read + written), finite check included
void bm_ddpm(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::epsilon, discrete_time(ac));
        ddpm_options o;
        o.clip_sample = false;
        sample_ddpm(m, x, ac, discrete_steps(), o, counter_noise{1});
    }, steps, 5);  // check ε; x̂₀ (r x, ε; w), μ̃ + σz with z generated in place (r x̂₀, x; w)
}
void bm_ddim(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::epsilon, discrete_time(ac));
        ddim_options o;
        o.clip_sample = false;
        sample_ddim(m, x, ac, discrete_steps(), o);
    }, steps, 4);  // check ε; x = a·x + b·ε (r x, ε; w x)
}
void bm_euler(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::epsilon, sigma_time{});
        sample_euler(m, x, sigma_grid(true));
    }, steps, 7);  // check ε; D = x − σ·ε (r x, ε; w); x = a·x + b·D (r x, D; w)
}
void bm_euler_ancestral(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::epsilon, sigma_time{});
        sample_euler_ancestral(m, x, sigma_grid(true), {}, counter_noise{1});
    }, steps, 9);  // check; D (3); Euler step (3); x += σ_up·z with z generated in place (r x; w)
}
void bm_heun(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::epsilon, sigma_time{});
        sample_heun(m, x, sigma_grid(false));
    }, 2 * steps, 7);
}
void bm_lms(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::epsilon, sigma_time{});
        sample_lms(m, x, sigma_grid(true));
    }, steps, 10);
}
void bm_dpmpp_2m(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::epsilon, sigma_time{});
        sample_dpmpp_2m(m, x, sigma_grid(true));
    }, steps, 8);
}
void bm_pc_ve(benchmark::State& s) {  // reverse diffusion + 1 Langevin step: 2 model evaluations per step
    run(s, [](tensor_view<float> x) {
        const ve_sde sde(0.01, 348, steps);
        auto m = model(null_net{}, prediction::score, continuous_time<ve_sde>{sde});
        sample_pc(m, x, sde, time_grid(score_sde_time_grid(sde)), {}, counter_noise{1});
    }, 2 * steps, 6);
}
void bm_euler_maruyama_vp(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        const vp_sde sde(0.1, 20, steps);
        auto m = model(null_net{}, prediction::score, continuous_time<vp_sde>{sde});
        sample_euler_maruyama(m, x, sde, time_grid(score_sde_time_grid(sde)), {}, counter_noise{1});
    }, steps, 6);
}
void bm_pf_ode_heun_vp(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        const vp_sde sde(0.1, 20, steps);
        std::vector<double> p(steps + 1);
        for (std::size_t i = 0; i <= steps; ++i) p[i] = 1.0 + (1e-3 - 1.0) * double(i) / double(steps);
        auto m = model(null_net{}, prediction::score, continuous_time<vp_sde>{sde});
        sample_pf_ode_heun(m, x, sde, time_grid(p));
    }, 2 * steps, 4);
}

// Flow matching on SD3's shifted grid (shift 3): the state is the flow state, the network a velocity predictor.
time_grid flow_grid() {
    flow_match_config c;
    c.shift = 3.0;
    return time_grid(flow_match_sigmas(c, steps).sigmas);
}
void bm_flow_euler(benchmark::State& s) {
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::flow_velocity, flow_time{});
        sample_flow_euler(m, x, flow_grid());
    }, steps, 7);  // check u; x̂₀ = x − s·u for the observer (r x, u; w); x + dt·u (r x, u; w x)
}
void bm_flow_heun(benchmark::State& s) {  // 2N − 1 evaluations, as FlowMatchHeunDiscreteScheduler
    run(s, [](tensor_view<float> x) {
        auto m = model(null_net{}, prediction::flow_velocity, flow_time{});
        sample_flow_heun(m, x, flow_grid(), {}, no_noise{});
    }, 2 * steps - 1, 6);
}

void sizes(benchmark::internal::Benchmark* b) {
    b->Args({1, 64})->Args({16, 128})->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(bm_ddpm)->Apply(sizes);
BENCHMARK(bm_ddim)->Apply(sizes);
BENCHMARK(bm_euler)->Apply(sizes);
BENCHMARK(bm_euler_ancestral)->Apply(sizes);
BENCHMARK(bm_heun)->Apply(sizes);
BENCHMARK(bm_lms)->Apply(sizes);
BENCHMARK(bm_dpmpp_2m)->Apply(sizes);
BENCHMARK(bm_pc_ve)->Apply(sizes);
BENCHMARK(bm_euler_maruyama_vp)->Apply(sizes);
BENCHMARK(bm_pf_ode_heun_vp)->Apply(sizes);
BENCHMARK(bm_flow_euler)->Apply(sizes);
BENCHMARK(bm_flow_heun)->Apply(sizes);
