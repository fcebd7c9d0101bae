// Device backend throughput on one GPU, all in one run (so the ratios hold on a shared machine):
//   lincomb with 3 inputs (3 reads + 1 write per element) against cudaMemcpy device to device (1 read +
//   1 write) — the memory-bandwidth goal is lincomb >= 85% of cudaMemcpy's bytes per second;
//   fill_normal and lincomb_noise (normals per second); sum_squares (the fixed-block reduction);
//   with a diffusers UNet2DModel folder as the second argument: one device_unet2d forward at batch 1 and 64 at
//   the model's sample size with the GEMM operands in fp32, tf32, bf16 and fp16 (float accumulation; activations
//   float) — tools/bench_unet_cuda.py times PyTorch eager on the same folder in the same precisions — and a
//   50-step DDIM run over that network (fp32, batch 1 and 64) run directly and as one CUDA graph replay
//   (cuda/graph.hpp; the capture itself is not timed).
// Each figure is the median of 21 timed repetitions (cudaEvent) after 3 warm-ups.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <cuda_runtime_api.h>

#include "bench_timing.hpp"
#include "diffuse/cuda/graph.hpp"
#include "diffuse/cuda/primitives.hpp"
#include "diffuse/cuda/unet2d.hpp"
#include "diffuse/io/diffusers.hpp"
#include "diffuse/samplers/ddim.hpp"
#include "diffuse/samplers/model.hpp"
#include "diffuse/schedules/beta.hpp"
#include "diffuse/schedules/timesteps.hpp"
#include "gpu_program.hpp"  // (tests/cuda)

using diffuse_bench::median_ms;

int main(int argc, char** argv) {
    if (!diffuse_device_checks::start_gpu_program("bench_cuda")) return 77;
    const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (std::size_t(1) << 26);  // floats per tensor
    const std::size_t batch = 16, per_sample = n / batch;
    using buffer = diffuse::space_buffer<float, diffuse::memory_space::device>;
    buffer x0(n), x1(n), x2(n), out(n);
    diffuse::fill_normal(x0.view(batch, per_sample), 1, 0);
    diffuse::fill_normal(x1.view(batch, per_sample), 1, 1);
    diffuse::fill_normal(x2.view(batch, per_sample), 1, 2);
    std::vector<double> c(batch, 0.5), norms(batch);
    const double bytes = double(n) * sizeof(float);

    const double memcpy_ms = median_ms([&] { cudaMemcpy(out.data(), x0.data(), n * sizeof(float), cudaMemcpyDeviceToDevice); });
    const double lincomb_ms = median_ms([&] {
        diffuse::lincomb(out.view(batch, per_sample), 0.5, x0.view(batch, per_sample), -0.25, x1.view(batch, per_sample),
                         diffuse::per_sample(c), x2.view(batch, per_sample));
    });
    const double fill_ms = median_ms([&] { diffuse::fill_normal(out.view(batch, per_sample), 7, 3); });
    const double noise_ms = median_ms([&] {
        diffuse::lincomb_noise(out.view(batch, per_sample), 0.9, x0.view(batch, per_sample), 0.1,
                               x1.view(batch, per_sample), diffuse::per_sample(c), diffuse::normal_noise{7, 3, 0});
    });
    const double sum_ms = median_ms([&] { diffuse::sum_squares(x0.view(batch, per_sample), norms); });
    const cudaError_t status = cudaDeviceSynchronize();
    if (status != cudaSuccess) {
        std::printf("bench_cuda: CUDA error %s\n", cudaGetErrorString(status));
        return 1;
    }

    const double memcpy_gbs = 2 * bytes / memcpy_ms / 1e6, lincomb_gbs = 4 * bytes / lincomb_ms / 1e6;
    std::printf("%-40s %12s %14s\n", "operation (float, 16 samples)", "ms (median)", "rate");
    std::printf("%-40s %12.3f %11.1f GB/s\n", "cudaMemcpy device to device", memcpy_ms, memcpy_gbs);
    std::printf("%-40s %12.3f %11.1f GB/s\n", "lincomb, 3 inputs", lincomb_ms, lincomb_gbs);
    std::printf("%-40s %12s %13.1f %%   (goal >= 85 %%)\n", "lincomb / cudaMemcpy bandwidth", "", 100 * lincomb_gbs / memcpy_gbs);
    std::printf("%-40s %12.3f %7.2f Gnormal/s\n", "fill_normal", fill_ms, double(n) / fill_ms / 1e6);
    std::printf("%-40s %12.3f %7.2f Gnormal/s\n", "lincomb_noise, 2 inputs + noise", noise_ms, double(n) / noise_ms / 1e6);
    std::printf("%-40s %12.3f %11.1f GB/s\n", "sum_squares (fixed blocks)", sum_ms, bytes / sum_ms / 1e6);

    if (argc > 2) {
        const diffuse::nn::unet2d host = diffuse::io::load_unet2d(argv[2]);
        const auto& cfg = host.config();
        const std::size_t h = diffuse_bench::sample_size(cfg).first, w = diffuse_bench::sample_size(cfg).second;
        // the U-Net forward in each GEMM operand precision (cuda/reduced_precision.hpp)
        for (const diffuse::device_precision p : {diffuse::device_precision::fp32, diffuse::device_precision::tf32,
                                                  diffuse::device_precision::bf16, diffuse::device_precision::fp16}) {
            diffuse::nn::device_unet2d net(host, p);
            for (std::size_t b : {std::size_t(1), std::size_t(64)}) {
                diffuse_bench::unet_forward_inputs in(cfg, b);
                const double ms = median_ms([&] { in.forward(net); });
                const cudaError_t e = cudaDeviceSynchronize();
                if (e != cudaSuccess) {
                    std::printf("bench_cuda: CUDA error %s in the U-Net forward\n", cudaGetErrorString(e));
                    return 1;
                }
                std::printf("unet2d forward, batch %-3zu %zux%zu (%s) %15.3f %9.1f img/s\n", b, h, w, diffuse::precision_name(p), ms,
                            double(b) / ms * 1e3);
            }
        }
        // 50 DDIM steps over the fp32 network: directly, and as one CUDA graph replay
        const auto alphas = diffuse::alphas_from_betas(diffuse::linear_betas(1000));
        std::vector<double> ac(alphas.size());
        double p = 1;
        for (std::size_t i = 0; i < ac.size(); ++i) ac[i] = p *= alphas[i];
        const diffuse::time_grid grid = diffuse::discrete_grid(diffuse::discrete_timesteps(1000, 50, diffuse::timestep_spacing::leading, 1));
        diffuse::nn::device_unet2d net(host);
        for (std::size_t b : {std::size_t(1), std::size_t(64)}) {
            buffer x(b * cfg.in_channels * h * w);
            diffuse::nn::device_unet2d_network network(net, h, w);
            if (cfg.class_conditional() && cfg.class_embed_type != diffuse::nn::class_embedding_kind::identity)
                network.set_class_labels(std::vector<std::int64_t>(b, 0), 0);
            diffuse::model m(network, diffuse::prediction::epsilon, diffuse::discrete_time(ac));
            const auto run = [&] { diffuse::sample_ddim(m, x.view(b, x.size() / b), ac, grid, diffuse::ddim_options{}); };
            // (1 warm-up and 5 timed runs: a run is 50 U-Net forwards)
            const double direct_ms = median_ms([&] {
                diffuse::fill_normal(x.view(b, x.size() / b), 5, 0);
                run();
            }, 1, 5);
            auto graph = diffuse::capture_graph([&] {
                diffuse::fill_normal(x.view(b, x.size() / b), 5, 0);
                run();
            });
            const double graph_ms = median_ms([&] { graph.replay(); }, 1, 5);
            std::printf("ddim 50 steps, batch %-3zu %zux%zu direct %12.3f ms   graph %9.3f ms (%zu nodes)   direct / graph %.2f\n", b,
                        h, w, direct_ms, graph_ms, graph.size(), direct_ms / graph_ms);
        }
    }
    std::printf("elements per tensor: %zu\n", n);
    return 0;
}
