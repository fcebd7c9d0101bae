// One forward pass of the reference U-Net with google/ddpm-cifar10-32's architecture (35.7 M parameters,
// 32×32), at batch 1 and 8 on 1 and 2 threads. The weights come from the folder named by DIFFUSE_UNET_DIR
// (e.g. tests/golden/unet-large/cifar10, written by tools/gen_unet_golden.py --large), else random ones.
// tools/bench_unet.py runs this program and PyTorch on the same weights in the same run and prints the ratios.
//
// Counters: GFLOP/s of the whole forward (2 × MACs / time) and of its convolutions alone, the share of the
// time in convolutions, group norms and attention (from unet2d_profile). BM_unet2d_load: the time to
// load the folder, and the process's peak RSS after it.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "diffuse/core/parallel.hpp"
#include "diffuse/io/diffusers.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/nn/unet2d.hpp"

namespace {

constexpr const char* cifar10_config = R"({
  "_class_name": "UNet2DModel", "act_fn": "silu", "attention_head_dim": null,
  "block_out_channels": [128, 256, 256, 256], "center_input_sample": false,
  "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
  "downsample_padding": 0, "flip_sin_to_cos": false, "freq_shift": 1, "in_channels": 3, "layers_per_block": 2,
  "mid_block_scale_factor": 1, "norm_eps": 1e-06, "norm_num_groups": 32, "out_channels": 3, "sample_size": 32,
  "time_embedding_type": "positional", "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"]})";

// Weights drawn N(0, 1/fan_in) (norm scales 1), so activations stay O(1) through the network.
class random_source final : public diffuse::nn::tensor_source {
public:
    std::vector<float> get(const std::string& name, const std::vector<std::size_t>& shape) override {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        std::vector<float> v(n);
        const bool norm = name.find("norm") != std::string::npos;
        const std::size_t fan_in = shape.size() > 1 ? n / shape[0] : 1;
        std::normal_distribution<float> d(0.0f, shape.size() > 1 ? 1.0f / std::sqrt(float(fan_in)) : 0.02f);
        for (auto& x : v) x = norm && name.ends_with(".weight") ? 1.0f : d(rng_);
        return v;
    }

private:
    std::mt19937 rng_{7};
};

diffuse::nn::unet2d& network() {
    static diffuse::nn::unet2d net = [] {
        if (const char* dir = std::getenv("DIFFUSE_UNET_DIR")) return diffuse::io::load_unet2d(dir);
        random_source src;
        return diffuse::nn::unet2d(diffuse::nn::parse_unet2d_config(diffuse::io::parse_json(cifar10_config)), src);
    }();
    return net;
}

void bm_unet2d_load(benchmark::State& state) {
    const char* dir = std::getenv("DIFFUSE_UNET_DIR");
    if (!dir) {
        state.SkipWithError("DIFFUSE_UNET_DIR is not set");
        return;
    }
    for (auto _ : state) {
        auto net = diffuse::io::load_unet2d(dir);
        benchmark::DoNotOptimize(net.parameter_count());
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    state.counters["peak_rss_MiB"] = double(ru.ru_maxrss) / 1024.0;
}
BENCHMARK(bm_unet2d_load)->Unit(benchmark::kMillisecond)->Iterations(3);

void bm_unet2d_forward(benchmark::State& state) {
    const auto batch = std::size_t(state.range(0));
    diffuse::set_num_threads(unsigned(state.range(1)));
    auto& net = network();
    const std::size_t n = batch * 3 * 32 * 32;
    std::vector<float> x(n), out(n);
    std::mt19937 rng(1);
    std::normal_distribution<float> d;
    for (auto& v : x) v = d(rng);
    std::vector<double> t(batch);
    for (std::size_t b = 0; b < batch; ++b) t[b] = double(37 + 101 * b);
    net.forward(x.data(), batch, 32, 32, t, {}, out.data());  // sizes the workspace
    diffuse::nn::unet2d_profile prof;
    net.set_profile(&prof);
    for (auto _ : state) {
        net.forward(x.data(), batch, 32, 32, t, {}, out.data());
        benchmark::DoNotOptimize(out.data());
    }
    net.set_profile(nullptr);
    diffuse::set_num_threads(1);
    const double per_forward = prof.conv_flops / double(prof.forwards);
    state.counters["conv_GFLOP_per_image"] = per_forward / double(batch) * 1e-9;
    state.counters["GFLOPs"] = benchmark::Counter(per_forward, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["conv_GFLOPs"] = prof.conv_flops / prof.conv * 1e-9;
    state.counters["conv_share"] = prof.conv / prof.total;
    state.counters["norm_share"] = prof.norm / prof.total;
    state.counters["attention_share"] = prof.attention / prof.total;
    state.counters["other_share"] = prof.other() / prof.total;
}
BENCHMARK(bm_unet2d_forward)
    ->ArgNames({"batch", "threads"})
    ->Args({1, 1})
    ->Args({8, 1})
    ->Args({1, 2})
    ->Args({8, 2})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();


}  // namespace
