#pragma once
// cudnn_conv_engine (cuda/cudnn_conv.hpp) behind three functions of a host-compiled translation unit
// (cudnn_engine.cpp), for the GPU test and benchmark (test_cudnn_gpu.cu, bench_cudnn.cu): the .cu files, which
// nvcc compiles, then never parse the cuDNN frontend's headers — as a .cu, one costs nvcc's device front end
// (cicc) and cudafe++ on top of the host compile: ≈ 140 s of CPU instead of ≈ 50 s with g++ alone.
#include <memory>
#include <string>

#include "diffuse/cuda/conv_engine.hpp"

namespace diffuse_device_checks {

// A new cudnn_conv_engine (needs a CUDA device: a diffuse::error otherwise).
[[nodiscard]] std::shared_ptr<diffuse::nn::device_conv_engine> make_cudnn_conv_engine();
// The engine's declined_because(p) / uses_fallback_graph(p); `engine` must be one make_cudnn_conv_engine made.
[[nodiscard]] std::string cudnn_declined_because(const diffuse::nn::device_conv_engine& engine,
                                                 const diffuse::nn::conv_problem& p);
[[nodiscard]] bool cudnn_uses_fallback_graph(const diffuse::nn::device_conv_engine& engine,
                                             const diffuse::nn::conv_problem& p);

}  // namespace diffuse_device_checks
