// Throughput of the counter-based normal generator (normal_fill) per kernel, of the fused noise term
// (lincomb_noise against fill_normal followed by lincomb) and of the torch-compatible generator. Build with
// -DCMAKE_BUILD_TYPE=Release; run ./bench_noise, or tools/bench_noise.py, which times torch.randn and numpy
// in the same run and prints the ratios (benchmarks/RESULTS.md).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/core/lincomb_noise.hpp"
#include "diffuse/core/random.hpp"
#include "diffuse/core/torch_generator.hpp"

// Arguments: count, kernel (diffuse::normal_kernel: 0 portable, 1 sse2, 2 avx2, 3 avx512).
template <class T>
static void bm_normal_fill(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto kernel = static_cast<diffuse::normal_kernel>(state.range(1));
    if (!diffuse::normal_kernel_supported(kernel)) {
        state.SkipWithError("kernel not supported on this CPU");
        return;
    }
    const diffuse::normal_kernel saved = diffuse::active_normal_kernel();
    diffuse::set_normal_kernel(kernel);
    std::vector<T> v(n);
    std::uint64_t draw = 0;
    for (auto _ : state) {
        diffuse::normal_fill(v.data(), n, 1234, 5, draw++ % 1000, 0);
        benchmark::DoNotOptimize(v.data());
        benchmark::ClobberMemory();
    }
    diffuse::set_normal_kernel(saved);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(T)));
}
BENCHMARK_TEMPLATE(bm_normal_fill, float)->ArgsProduct({{1 << 12, 1 << 20, 1 << 22}, {0, 1, 2, 3}});
BENCHMARK_TEMPLATE(bm_normal_fill, double)->ArgsProduct({{1 << 12, 1 << 22}, {0, 1, 2}});

// The ancestral noise term x ← x + c·z on a batch of 4×64×64 or 16×4×128×128 floats: fused (lincomb_noise,
// noise generated in L1) against the unfused pair fill_normal(z) + lincomb(x, 1, x, c, z). Argument 2: the
// normal kernel. Bytes: the minimal traffic (read and write x).
static void bm_noise_term(benchmark::State& state, bool fused) {
    const auto B = static_cast<std::size_t>(state.range(0)), D = 4 * static_cast<std::size_t>(state.range(1) * state.range(1));
    const auto kernel = static_cast<diffuse::normal_kernel>(state.range(2));
    if (!diffuse::normal_kernel_supported(kernel)) {
        state.SkipWithError("kernel not supported on this CPU");
        return;
    }
    const diffuse::normal_kernel saved = diffuse::active_normal_kernel();
    diffuse::set_normal_kernel(kernel);
    std::vector<float> x(B * D, 0.5f), z(B * D);
    const auto xv = diffuse::batched(x, B), zv = diffuse::batched(z, B);
    std::uint64_t draw = 0;
    for (auto _ : state) {
        if (fused) {
            diffuse::lincomb_noise(xv, 1.0, xv, 0.01, diffuse::normal_noise{1234, draw++ % 1000, 0});
        } else {
            diffuse::fill_normal(zv, 1234, draw++ % 1000, 0);
            diffuse::lincomb(xv, 1.0, xv, 0.01, zv);
        }
        benchmark::DoNotOptimize(x.data());
        benchmark::ClobberMemory();
    }
    diffuse::set_normal_kernel(saved);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * B * D));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * B * D * 2 * sizeof(float)));
}
BENCHMARK_CAPTURE(bm_noise_term, fused, true)->ArgsProduct({{1}, {64}, {1, 2, 3}})->Args({16, 128, 3});
BENCHMARK_CAPTURE(bm_noise_term, unfused, false)->ArgsProduct({{1}, {64}, {1, 2, 3}})->Args({16, 128, 3});

template <class T>
static void bm_normal_at(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<T> v(n);
    for (auto _ : state) {
        for (std::size_t i = 0; i < n; ++i) v[i] = diffuse::normal_at<T>(1234, 5, 0, i);
        benchmark::DoNotOptimize(v.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(T)));
}
BENCHMARK_TEMPLATE(bm_normal_at, float)->Arg(1 << 16);

template <class T>
static void bm_torch_randn(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto kernel = static_cast<diffuse::torch_kernel>(state.range(1));
    std::vector<T> v(n);
    diffuse::torch_cpu_generator g(0, kernel);
    for (auto _ : state) {
        g.randn(v.data(), n);
        benchmark::DoNotOptimize(v.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(T)));
}
BENCHMARK_TEMPLATE(bm_torch_randn, float)
    ->Args({1 << 20, static_cast<int>(diffuse::torch_kernel::portable)})
    ->Args({1 << 20, static_cast<int>(diffuse::torch_kernel::avx2)});
BENCHMARK_TEMPLATE(bm_torch_randn, double)->Args({1 << 20, static_cast<int>(diffuse::torch_kernel::portable)});
