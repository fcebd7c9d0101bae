// Throughput of the counter-based normal generator (normal_fill) and of the torch-compatible
// generator. Build with -DCMAKE_BUILD_TYPE=Release; run ./bench_noise.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "diffuse/core/random.hpp"
#include "diffuse/core/torch_generator.hpp"

// Arguments: count, kernel (diffuse::normal_kernel: 0 portable, 1 sse2, 2 avx2).
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
BENCHMARK_TEMPLATE(bm_normal_fill, float)->ArgsProduct({{1 << 12, 1 << 20, 1 << 22}, {0, 1, 2}});
BENCHMARK_TEMPLATE(bm_normal_fill, double)->ArgsProduct({{1 << 12, 1 << 22}, {0, 1, 2}});

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
