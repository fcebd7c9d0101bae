// The sharded sampler's overhead against one process doing the same work, and its scaling over ranks.
// Work: N = 64 samples of D = 256 values in chunks of 16, Euler ancestral on the exact Gaussian-mixture
// denoiser, 20 steps; the initial state and the noise come from the chunk's global ids.
//   bm_direct            one process, a plain loop over the chunks into one N × D result
//   bm_sharded           mpi::sample_shard + mpi::gather_samples (on every rank of MPI_COMM_WORLD)
// Both allocate the result in each iteration. The ratio bm_sharded / bm_direct at 1 rank is the overhead
// (goal ≤ 5 %); under mpirun -np R, bm_sharded's real time against the 1-rank run is the scaling.
//
//   ninja -C build bench_sharded_sampling
//   ./build/benchmarks/bench_sharded_sampling --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   mpirun -np 2 --oversubscribe ./build/benchmarks/bench_sharded_sampling --benchmark_filter=bm_sharded_fixed
// bm_sharded_fixed runs a fixed number of iterations (ranks must agree on the count: every iteration is
// collective), real time, for N = 64 and N = 512 (the same chunks of 16, 8 times the work).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/sharded_sampling.hpp"
#include "diffuse/samplers/analytic.hpp"
#include "diffuse/samplers/euler.hpp"
#include "diffuse/schedules/sigmas.hpp"

using namespace diffuse;
namespace dm = diffuse::mpi;

namespace {
constexpr std::uint64_t N = 64;
constexpr std::size_t D = 256, B = 16, steps = 20;

const gaussian_mixture& data() {
    static const gaussian_mixture g = [] {
        std::vector<double> means(2 * D), vars{0.05, 0.1};
        for (std::size_t j = 0; j < D; ++j) means[j] = 0.5, means[D + j] = -0.5;
        return gaussian_mixture({0.4, 0.6}, means, vars);
    }();
    return g;
}
const time_grid& grid() {
    static const time_grid g(karras_sigmas(steps, 0.02, 20.0));
    return g;
}
void sample_chunk(const dm::shard_chunk& c, tensor_view<float> x) {
    auto m = analytic_model(data(), prediction::sample, sigma_time{});
    fill_normal(x, 1, 1000, c.first_sample);
    for (std::size_t i = 0; i < x.size(); ++i) x.data[i] *= 20.0f;
    sample_euler_ancestral(m, x, grid(), ancestral_options{}, counter_noise{1, c.first_sample});
}
const dm::communicator& world() {
    static dm::environment env;
    static const dm::communicator comm;
    return comm;
}

void bm_direct(benchmark::State& state) {
    const dm::shard_plan plan(N, B, 1);
    for (auto _ : state) {
        std::vector<float> all(N * D);
        for (std::size_t k = 0; k < plan.chunks(); ++k) {
            const auto c = plan.chunk(k);
            sample_chunk(c, tensor_view<float>{all.data() + c.first_sample * D, c.count, D});
        }
        benchmark::DoNotOptimize(all.data());
    }
}
BENCHMARK(bm_direct)->Unit(benchmark::kMillisecond);

void bm_sharded(benchmark::State& state) {
    const auto& comm = world();
    const dm::shard_plan plan(state.range(0), B, comm.size());
    for (auto _ : state) {
        const auto local = dm::sample_shard<float>(comm, plan, D, sample_chunk);
        auto all = dm::gather_samples(comm, plan, local);
        benchmark::DoNotOptimize(all.data());
    }
}
BENCHMARK(bm_sharded)->Unit(benchmark::kMillisecond)->Arg(N);

void bm_sharded_fixed(benchmark::State& state) { bm_sharded(state); }
BENCHMARK(bm_sharded_fixed)->Unit(benchmark::kMillisecond)->Iterations(30)->UseRealTime()->Arg(N)->Arg(8 * N);
}  // namespace
