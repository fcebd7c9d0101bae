// lincomb against a plain STREAM triad and a hand-written loop over the same four arrays, in the same run.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target bench_lincomb
//   ./build/benchmarks/bench_lincomb --benchmark_repetitions=7 --benchmark_report_aggregates_only=true
//
// Bandwidth is counted STREAM's way: bytes read plus bytes written, no write-allocate traffic.
// STREAM triad a = b + s·c moves 3 arrays; lincomb with 3 inputs moves 4.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/elementwise.hpp"

namespace {

constexpr std::size_t big = std::size_t(64) << 20;  // bytes per tensor
constexpr std::size_t n_big = big / sizeof(float);

void stream_triad(benchmark::State& state) {
    std::vector<float> a(n_big, 0.0f), b(n_big, 1.0f), c(n_big, 2.0f);
    const float s = 3.0f;
    for (auto _ : state) {
        float* __restrict__ pa = a.data();
        const float* __restrict__ pb = b.data();
        const float* __restrict__ pc = c.data();
        for (std::size_t i = 0; i < n_big; ++i) pa[i] = pb[i] + s * pc[i];
        benchmark::DoNotOptimize(pa);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(3 * big));
}
BENCHMARK(stream_triad)->Unit(benchmark::kMillisecond)->UseRealTime();

void lincomb_3_inputs(benchmark::State& state) {
    std::vector<float> out(n_big, 0.0f), x(n_big, 1.0f), y(n_big, 2.0f), z(n_big, 3.0f);
    for (auto _ : state) {
        diffuse::lincomb(out, 0.5, x, -1.5, y, 0.25, z);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(4 * big));
}
BENCHMARK(lincomb_3_inputs)->Unit(benchmark::kMillisecond)->UseRealTime();

// The hand-written loop over the same four arrays (out = 0.5·x − 1.5·y + 0.25·z): what lincomb_3_inputs
// would reach with no shape checks, coefficient conversion or dispatch.
void plain_loop_3_inputs(benchmark::State& state) {
    std::vector<float> out(n_big, 0.0f), x(n_big, 1.0f), y(n_big, 2.0f), z(n_big, 3.0f);
    for (auto _ : state) {
        float* __restrict__ o = out.data();
        const float* __restrict__ a = x.data();
        const float* __restrict__ b = y.data();
        const float* __restrict__ c = z.data();
        for (std::size_t i = 0; i < n_big; ++i) o[i] = 0.5f * a[i] + -1.5f * b[i] + 0.25f * c[i];
        benchmark::DoNotOptimize(o);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(4 * big));
}
BENCHMARK(plain_loop_3_inputs)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same with per-sample coefficients over a batch of 16.
void lincomb_3_inputs_per_sample(benchmark::State& state) {
    std::vector<float> out(n_big, 0.0f), x(n_big, 1.0f), y(n_big, 2.0f), z(n_big, 3.0f);
    const std::vector<double> a(16, 0.5), b(16, -1.5), c(16, 0.25);
    for (auto _ : state) {
        diffuse::lincomb(diffuse::batched(out, 16), diffuse::per_sample(a), diffuse::batched(x, 16),
                         diffuse::per_sample(b), diffuse::batched(y, 16), diffuse::per_sample(c), diffuse::batched(z, 16));
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(4 * big));
}
BENCHMARK(lincomb_3_inputs_per_sample)->Unit(benchmark::kMillisecond)->UseRealTime();

// Per-call overhead on a small latent: 4×64×64 floats (64 KiB per tensor, in cache).
void lincomb_small_4x64x64(benchmark::State& state) {
    const std::size_t n = 4 * 64 * 64;
    std::vector<float> out(n), x(n, 1.0f), y(n, 2.0f), z(n, 3.0f);
    for (auto _ : state) {
        diffuse::lincomb(out, 0.5, x, -1.5, y, 0.25, z);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(4 * n * sizeof(float)));
}
BENCHMARK(lincomb_small_4x64x64)->UseRealTime();

void plain_loop_small_4x64x64(benchmark::State& state) {
    const std::size_t n = 4 * 64 * 64;
    std::vector<float> out(n), x(n, 1.0f), y(n, 2.0f), z(n, 3.0f);
    for (auto _ : state) {
        float* __restrict__ o = out.data();
        const float* __restrict__ a = x.data();
        const float* __restrict__ b = y.data();
        const float* __restrict__ c = z.data();
        for (std::size_t i = 0; i < n; ++i) o[i] = 0.5f * a[i] + -1.5f * b[i] + 0.25f * c[i];
        benchmark::DoNotOptimize(o);
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(4 * n * sizeof(float)));
}
BENCHMARK(plain_loop_small_4x64x64)->UseRealTime();

// Tiny tensor: what one call costs beyond the arithmetic (shape checks, dispatch).
void lincomb_tiny_16(benchmark::State& state) {
    std::vector<float> out(16), x(16, 1.0f), y(16, 2.0f), z(16, 3.0f);
    for (auto _ : state) {
        diffuse::lincomb(out, 0.5, x, -1.5, y, 0.25, z);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(lincomb_tiny_16)->UseRealTime();

}  // namespace
