#pragma once
// The device benchmarks' timing and U-Net inputs (bench_cuda.cu, bench_cudnn.cu): CUDA-event medians, and the
// random input, times and labels of one device_unet2d forward at a batch.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "diffuse/cuda/primitives.hpp"
#include "diffuse/cuda/unet2d.hpp"

namespace diffuse_bench {

// The median of `timed` runs of f by CUDA events, after `warm` untimed ones.
template <class F>
double median_ms(F&& f, int warm = 3, int timed = 21) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    for (int i = 0; i < warm; ++i) f();
    std::vector<float> ms;
    for (int i = 0; i < timed; ++i) {
        cudaEventRecord(start);
        f();
        cudaEventRecord(stop);
        cudaEventSynchronize(stop);
        float t = 0;
        cudaEventElapsedTime(&t, start, stop);
        ms.push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

// The model's sample size {h, w} (32 × 32 when it names none; w = h when it names only h).
[[nodiscard]] inline std::pair<std::size_t, std::size_t> sample_size(const diffuse::nn::unet2d_config& cfg) {
    const std::size_t h = cfg.sample_height ? cfg.sample_height : 32;
    return {h, cfg.sample_width ? cfg.sample_width : h};
}

// One forward's operands at batch b: x normal (seed 3), y, t = 500 for every sample, class 0 when the model
// takes labels; h × w the model's sample_size.
struct unet_forward_inputs {
    using buffer = diffuse::space_buffer<float, diffuse::memory_space::device>;
    std::size_t batch, h, w;
    buffer x, y;
    std::vector<double> t;
    std::vector<std::int64_t> labels;

    unet_forward_inputs(const diffuse::nn::unet2d_config& cfg, std::size_t b)
        : batch(b), h(sample_size(cfg).first), w(sample_size(cfg).second), x(b * cfg.in_channels * h * w),
          y(b * cfg.out_channels * h * w), t(b, 500.0) {
        diffuse::fill_normal(x.view(b, x.size() / b), 3, 0);
        if (cfg.class_conditional() && cfg.class_embed_type != diffuse::nn::class_embedding_kind::identity) labels.assign(b, 0);
    }
    void forward(diffuse::nn::device_unet2d& net) {
        net.forward(x.view(batch, x.size() / batch), h, w, t, labels, y.view(batch, y.size() / batch));
    }
};

}  // namespace diffuse_bench
