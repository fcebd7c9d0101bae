// The device U-Net's forward with its convolutions through im2col + GEMM (no engine) and through cuDNN
// (cudnn_conv_engine, cuda/cudnn_conv.hpp), in the same run: a diffusers UNet2DModel folder (argv[1], default
// examples/fashion_mnist/unet) at its sample size, batch 1 and 64, GEMM operands in fp32, tf32, bf16 and fp16.
// Each figure is the median of 21 timed forwards (cudaEvent) after 3 warm-ups (the first builds cuDNN's plans);
// a line per case:
//   unet2d forward, batch 64 32x32 (bf16) im2col 1.234 ms cudnn 0.567 ms ratio 0.46 (cudnn / im2col)
// then how many convolutions of one forward cuDNN ran and declined, and the two outputs' largest difference
// relative to the im2col output's scale (the same model: a rounding-level number).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "bench_timing.hpp"
#include "cudnn_engine.hpp"  // (tests/cuda: the engine in a host-compiled translation unit)
#include "diffuse/cuda/unet2d.hpp"
#include "diffuse/io/diffusers.hpp"
#include "gpu_program.hpp"  // (tests/cuda)

int main(int argc, char** argv) {
    if (!diffuse_device_checks::start_gpu_program("bench_cudnn")) return 77;
    const std::string folder = argc > 1 ? argv[1] : "examples/fashion_mnist/unet";
    const diffuse::nn::unet2d host = diffuse::io::load_unet2d(folder);
    const auto engine = diffuse_device_checks::make_cudnn_conv_engine();
    std::printf("bench_cudnn: %s, %s\n", folder.c_str(), engine->name().c_str());
    constexpr int warm = 3, timed = 21;
    for (const diffuse::device_precision p : {diffuse::device_precision::fp32, diffuse::device_precision::tf32,
                                              diffuse::device_precision::bf16, diffuse::device_precision::fp16}) {
        diffuse::nn::device_unet2d im2col(host, p), cudnn(host, p);
        cudnn.set_conv_engine(engine);
        for (const std::size_t b : {std::size_t(1), std::size_t(64)}) {
            diffuse_bench::unet_forward_inputs in(host.config(), b);
            const double im2col_ms = diffuse_bench::median_ms([&] { in.forward(im2col); }, warm, timed);
            std::vector<float> reference(in.y.size()), got(in.y.size());
            diffuse::copy(reference, in.y);
            const auto before = cudnn.engine_use();
            const double cudnn_ms = diffuse_bench::median_ms([&] { in.forward(cudnn); }, warm, timed);
            const auto after = cudnn.engine_use();
            diffuse::copy(got, in.y);
            if (const cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess) {
                std::printf("bench_cudnn: CUDA error %s in the U-Net forward\n", cudaGetErrorString(e));
                return 1;
            }
            double worst = 0, scale = 0;
            for (std::size_t i = 0; i < got.size(); ++i) {
                worst = std::max(worst, std::abs(double(got[i]) - double(reference[i])));
                scale = std::max(scale, std::abs(double(reference[i])));
            }
            constexpr std::size_t runs = warm + timed;
            std::printf("unet2d forward, batch %-3zu %zux%zu (%s) im2col %9.3f ms cudnn %9.3f ms ratio %.2f\n", b, in.h, in.w,
                        diffuse::precision_name(p), im2col_ms, cudnn_ms, cudnn_ms / im2col_ms);
            std::printf("  engine_use per forward: %zu by cudnn, %zu declined; cudnn vs im2col max difference / scale %.3g\n",
                        (after.engine - before.engine) / runs, (after.declined - before.declined) / runs,
                        scale > 0 ? worst / scale : 0.0);
        }
    }
    return 0;
}
