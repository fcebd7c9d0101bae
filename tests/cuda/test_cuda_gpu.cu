// The device backend on a real GPU (DIFFUSE_ENABLE_CUDA=ON): every device primitive against the host
// primitive bit for bit (tests/cuda/device_checks.hpp), host/device noise equality included; the device U-Net
// against the CPU U-Net within 1e-5 of the output scale (tests/cuda/unet2d_checks.hpp), its convolutions, linear
// layers and attention products through cuBLAS, and with TF32 / BF16 / FP16 operands (cublasGemmEx) within
// unet2d_tolerance (8·2^-p) and visibly apart from fp32; cuBLAS's GEMM against the column-major definition over
// all four op combinations, leading dimensions, α/β and batch strides, the mixed-precision GEMM likewise, im2col
// and the float ↔ 16-bit conversions, convert_body on the GPU included (tests/cuda/gemm_checks.hpp); sampling
// runs and U-Net forwards captured as CUDA graphs against the direct runs, bit for bit (tests/cuda/graph_checks.hpp,
// unet2d_checks.hpp); with DIFFUSE_TORCH_RANDN_DIR set, torch.randn on this GPU against torch_cuda_generator. Exits 77
// (CTest SKIP_RETURN_CODE) when the machine has no CUDA device.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "device_checks.hpp"
#include "diffuse/core/torch_cuda_generator.hpp"
#include "diffuse/io/npy.hpp"
#include "gemm_checks.hpp"
#include "gpu_program.hpp"
#include "gpu_section.hpp"
#include "graph_checks.hpp"
#include "unet2d_checks.hpp"

namespace {
namespace checks = diffuse_device_checks;
using checks::section;
}  // namespace

int main() {
    if (!diffuse_device_checks::start_gpu_program("test_cuda_gpu")) return 77;
    checks::log log;
    log.echo = true;
    const bool ok = section(log, "primitives against the host, bit for bit", [&] { log.absorb(checks::check_all(20261202, 40)); }) &&
                    section(log, "transform with a __host__ __device__ lambda", [&] {
        std::vector<float> x(1000), host(1000), device(1000);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i) * 0.01f - 3.0f;
        const auto f = [] __host__ __device__(float v) { return v * v - 1.0f; };
        checks::device_buffer<float> dx(x.size()), dout(x.size());
        diffuse::copy(dx, x);
        diffuse::transform(host, f, x);
        diffuse::transform(dout, f, dx);
        diffuse::copy(device, dout);
        log.same_bits("transform with a __host__ __device__ lambda", host, device);
    }) &&
                    // cuBLAS (cuda/gemm.hpp) against the column-major definition; the im2col body against its definition
                    section(log, "cuBLAS GEMMs, im2col, conversions", [&] {
        std::mt19937_64 gemm_rng(20261204);
        checks::check_gemm(gemm_rng, log, 400);
        checks::check_gemm_ex(gemm_rng, log, 200);  // cublasGemmEx / cublasGemmStridedBatchedEx: TF32, BF16, FP16
        checks::check_im2col(gemm_rng, log, 100);
        checks::check_conversions(log);  // float ↔ bf16 / fp16 / TF32, and convert_body on the GPU
    }) &&
                    // the device U-Net (its convolutions, linear layers and attention through cuBLAS) against the CPU
                    // U-Net on random small configurations (bound: tests/cuda/unet2d_device.cpp)
                    section(log, "device U-Net against the CPU U-Net, fp32", [&] {
        std::mt19937_64 rng(20261203);
        for (int round = 0; round < 24; ++round) {
            const auto r = checks::random_unet2d_forward(rng);
            log.at_most("device U-Net vs CPU U-Net, " + r.description + ": max relative error", r.max_relative_error, 1e-5);
            log.same("device U-Net, " + r.description + ": a captured forward replays with the direct forward's bits", 1,
                     r.graph_replay_same_bits ? 1 : 0);
        }
    }) &&
                    // in TF32, BF16 and FP16 (cuBLAS's tensor cores): within unet2d_tolerance of the CPU model, and
                    // visibly apart from the fp32 device model (the lower precision is applied)
                    section(log, "device U-Net in TF32, BF16, FP16", [&] {
        std::mt19937_64 low_rng(20261206);
        for (int round = 0; round < 12; ++round) {
            const diffuse::device_precision p = round % 3 == 0 ? diffuse::device_precision::tf32
                                                : round % 3 == 1 ? diffuse::device_precision::bf16
                                                                 : diffuse::device_precision::fp16;
            const auto r = checks::random_unet2d_forward(low_rng, p);
            log.at_most("device U-Net vs CPU U-Net, " + r.description + ": max relative error", r.max_relative_error,
                        checks::unet2d_tolerance(p));
            if (p != diffuse::device_precision::tf32)  // (cuBLAS may run small TF32 products in FP32: gemm_checks.hpp)
                log.at_most("device U-Net vs its fp32 form, " + r.description + ": the lower precision is applied (bound / distance)",
                            checks::unet2d_min_deviation(p), r.vs_fp32);
        }
    }) &&
                    // CUDA graphs (cuda/graph.hpp): captured sampling runs replay with the direct runs' bits;
                    // refusals; deferred checks
                    section(log, "CUDA graphs", [&] {
        std::mt19937_64 graph_rng(20261205);
        checks::check_graphs<float>(graph_rng, log, 3);
        checks::check_graphs<double>(graph_rng, log, 2);
    });

    // torch.randn on this GPU (tools/gen_torch_cuda_randn.py wrote it to $DIFFUSE_TORCH_RANDN_DIR) against
    // torch_cuda_generator on the host: the bound of core/torch_cuda_generator.hpp's accuracy note
    if (const char* dir = std::getenv("DIFFUSE_TORCH_RANDN_DIR"); ok && dir != nullptr && *dir != '\0')
        section(log, "torch.randn on this GPU against torch_cuda_generator", [&] {
            const std::string d = dir;
            const auto props = diffuse::io::read_npy(d + "/device.npy").as<std::uint64_t>();
            const diffuse::torch_cuda_device device{std::uint32_t(props.at(0)), std::uint32_t(props.at(1))};
            const auto compare = [&]<class T>(T, const char* name, double bound) {
                const std::vector<T> torch_values = diffuse::io::read_npy(d + "/" + name + ".npy").as<T>();
                std::vector<T> ours;
                for (const std::uint64_t seed : {std::uint64_t(0), std::uint64_t(42), (std::uint64_t(1) << 40) + 3}) {
                    diffuse::torch_cuda_generator g(seed, device);
                    for (const std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(4096), std::size_t(300000), std::size_t(5)}) {
                        const std::vector<T> v = g.template randn<T>(n);
                        ours.insert(ours.end(), v.begin(), v.end());
                    }
                }
                double worst = ours.size() == torch_values.size() ? 0.0 : INFINITY;
                for (std::size_t i = 0; i < std::min(ours.size(), torch_values.size()); ++i)
                    worst = std::max(worst, std::abs(double(ours[i]) - double(torch_values[i])));
                std::printf("torch.randn on CUDA (%s) vs torch_cuda_generator: max |difference| %.3g\n", name, worst);
                log.at_most(std::string("torch.randn on CUDA (") + name + ") vs torch_cuda_generator, max |difference|", worst, bound);
            };
            compare(float{}, "float32", 1e-5);
            compare(double{}, "float64", 1e-13);
        });

    std::printf("test_cuda_gpu: %zu checks, %zu failed%s\n", log.checks, log.failures.size(),
                ok ? "" : " (stopped early: the device was left in error)");
    return log.failures.empty() ? 0 : 1;
}
