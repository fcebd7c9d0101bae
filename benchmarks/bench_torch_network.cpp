// The per-call cost of diffuse::torch_network (nn/torch_network.hpp) against calling the TorchScript module
// directly, in the same run: tests/golden/torch/eps_mlp.pt (an 8 → 32 → 8 MLP with a time embedding) on a
// batch of 64 float samples, one thread.
//   bm_module_direct   module.forward({x, t}) on tensors made once outside the loop
//   bm_torch_network   torch_network's call: from_blob views of the sampler's x and t (t converted to
//                      float32), NoGradGuard, forward, the shape/dtype checks and the copy into out
//
//   ninja -C build bench_torch_network
//   ./build/benchmarks/bench_torch_network --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "diffuse/nn/torch_network.hpp"

namespace {
constexpr std::int64_t B = 64;
const std::string path = std::string(DIFFUSE_GOLDEN_DIR) + "/torch/eps_mlp.pt";

void bm_module_direct(benchmark::State& state) {
    at::set_num_threads(1);
    auto module = torch::jit::load(path);
    torch::NoGradGuard no_grad;
    const at::Tensor x = torch::randn({B, 2, 4});
    const at::Tensor t = torch::full({B}, 500.0f);
    for (auto _ : state) {
        auto y = module.forward({x, t}).toTensor();
        benchmark::DoNotOptimize(y.data_ptr<float>());
    }
}
BENCHMARK(bm_module_direct);

void bm_torch_network(benchmark::State& state) {
    at::set_num_threads(1);
    auto net = diffuse::torch_network(diffuse::torch_module_call{torch::jit::load(path)}, {2, 4});
    std::vector<float> x(B * 8, 0.5f), out(B * 8);
    const std::vector<double> t(B, 500.0);
    const diffuse::model_cond c{t};
    for (auto _ : state) {
        net(diffuse::tensor_view<const float>{x.data(), std::size_t(B), 8}, c, diffuse::tensor_view<float>{out.data(), std::size_t(B), 8});
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(bm_torch_network);
}  // namespace
