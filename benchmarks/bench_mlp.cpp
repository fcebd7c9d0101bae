// Training speed of the reference MLP denoiser: one Adam step (forward, ε-loss, backward, update) on a
// batch of 256 two-dimensional points, for the quickstart's size (hidden 64) and a wider one (128).
#include <benchmark/benchmark.h>

#include <vector>

#include "diffuse/losses/denoising.hpp"
#include "diffuse/core/host_rng.hpp"
#include "diffuse/nn/mlp.hpp"

// CPU time is the process's (MeasureProcessCPUTime), the clock tools/bench_mlp.py reads for torch.
static void bm_mlp_train_step(benchmark::State& state) {
    diffuse::mlp_config c;
    c.hidden = std::size_t(state.range(0));
    c.time_scale = 1000.0;
    diffuse::mlp_denoiser m(c, 1);
    diffuse::adam opt(1e-3);
    const std::size_t B = 256;
    diffuse::host_rng rng(1);
    std::vector<float> x(2 * B), e(2 * B), y(2 * B), g(2 * B), x0(2 * B);
    std::vector<double> t(B);
    for (auto& v : x) v = float(rng.normal());
    for (auto& v : e) v = float(rng.normal());
    for (auto& v : t) v = rng.uniform();
    for (auto _ : state) {
        m.forward(x.data(), t, B, y.data());
        benchmark::DoNotOptimize(diffuse::denoising_loss(
            diffuse::denoising_target::epsilon, diffuse::tensor_view<const float>{y.data(), B, 2},
            diffuse::tensor_view<const float>{x0.data(), B, 2}, diffuse::tensor_view<const float>{e.data(), B, 2}, {},
            {}, {}, diffuse::tensor_view<float>{g.data(), B, 2}));
        m.zero_grad();
        m.backward(g.data());
        opt.step(m.parameters(), m.gradients());
    }
    state.counters["steps_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(bm_mlp_train_step)->Arg(64)->Arg(128)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);
