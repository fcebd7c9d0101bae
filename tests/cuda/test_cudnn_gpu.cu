// cudnn_conv_engine (cuda/cudnn_conv.hpp) on a real GPU (DIFFUSE_ENABLE_CUDA=ON with the cuDNN frontend's headers):
//   - the engine on random convolution problems (batch 1–3, h, w 3–12, cin / cout 1–40, k 1 or 3, stride 1 or 2,
//     random zero padding, diffusers' asymmetric (0, 1, 0, 1) included) in fp32, tf32, bf16 and fp16 against the
//     convolution in double of the decoded operands (unet2d_checks.hpp's reference_convolution): within 1e-5 of the
//     output's scale in fp32 — on a problem with K = 4608 too, where TF32 products would be ~1e-4 off, so fp32 is
//     not run on TF32 tensor cores — and 8·2^-p otherwise; a declined problem is counted and its reason printed
//     (a failure only when every fp32 problem is declined);
//   - the device U-Net with the engine (unet2d_checks.hpp's random_unet2d_forward) in each precision against the
//     CPU U-Net within unet2d_tolerance, its captured forward replaying with the direct forward's bits, and the
//     engine running convolutions in each precision's section.
// The engine comes from cudnn_engine.cpp (host compiler), so this file never parses the cuDNN frontend.
// Exits 77 (CTest SKIP_RETURN_CODE) when the machine has no CUDA device.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "cudnn_engine.hpp"
#include "gpu_program.hpp"
#include "gpu_section.hpp"
#include "unet2d_checks.hpp"

namespace {

namespace checks = diffuse_device_checks;
using diffuse::device_precision;
using diffuse::nn::conv_problem;

constexpr device_precision precisions[] = {device_precision::fp32, device_precision::tf32, device_precision::bf16,
                                           device_precision::fp16};

[[nodiscard]] std::string describe(const conv_problem& p) {
    const auto z = [](std::size_t v) { return std::to_string(v); };
    return "batch " + z(p.batch) + ", " + z(p.h) + "x" + z(p.w) + ", " + z(p.cin) + " -> " + z(p.cout) + ", k " + z(p.k) +
           ", stride " + z(p.stride) + ", pad (" + z(p.pad.top) + ", " + z(p.pad.left) + ", " + z(p.pad.bottom) + ", " +
           z(p.pad.right) + "), " + diffuse::precision_name(p.precision);
}

// A random problem of the ranges above (pads 0 … k − 1 per side, or (0, 1, 0, 1)).
[[nodiscard]] conv_problem random_problem(std::mt19937_64& rng, device_precision precision) {
    const auto pick = [&](std::size_t lo, std::size_t hi) { return lo + std::size_t(rng() % (hi - lo + 1)); };
    conv_problem p;
    p.batch = pick(1, 3);
    p.h = pick(3, 12);
    p.w = pick(3, 12);
    p.cin = pick(1, 40);
    p.cout = pick(1, 40);
    p.k = pick(0, 1) ? 3 : 1;
    p.stride = pick(1, 2);
    if (pick(0, 3) == 0) p.pad = {0, 1, 0, 1};
    else p.pad = {pick(0, p.k - 1), pick(0, p.k - 1), pick(0, p.k - 1), pick(0, p.k - 1)};
    p.precision = precision;
    return p;
}

// One problem through the engine against the reference: false when the engine declined it.
bool check_problem(checks::log& log, diffuse::nn::device_conv_engine& engine, std::mt19937_64& rng, const conv_problem& p) {
    if (!engine.supports(p)) {
        std::printf("declined: %s: %s\n", describe(p).c_str(), checks::cudnn_declined_because(engine, p).c_str());
        return false;
    }
    std::normal_distribution<float> normal;
    std::vector<float> x(p.batch * p.h * p.w * p.cin), w(p.cout * p.k * p.k * p.cin);
    for (auto& v : x) v = normal(rng);
    for (auto& v : w) v = normal(rng);
    std::vector<float> expected(p.batch * p.out_h() * p.out_w() * p.cout), got(expected.size(), NAN);
    diffuse::detail::with_operand(p.precision, "test_cudnn_gpu", [&](auto operand) {
        using Operand = decltype(operand);
        using storage = typename Operand::storage;
        std::vector<storage> xs(x.size()), ws(w.size());
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = Operand::decode(xs[i] = Operand::encode(x[i]));
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = Operand::decode(ws[i] = Operand::encode(w[i]));
        checks::device_buffer<storage> dx(xs.size()), dw(ws.size());
        checks::device_buffer<float> dy(got.size());
        using diffuse::detail::copy_direction;  // (16-bit storage: a raw copy, not a tensor diffuse::copy knows)
        diffuse::detail::device_copy(dx.data(), xs.data(), xs.size() * sizeof(storage), copy_direction::host_to_device, "test_cudnn_gpu");
        diffuse::detail::device_copy(dw.data(), ws.data(), ws.size() * sizeof(storage), copy_direction::host_to_device, "test_cudnn_gpu");
        engine.convolve(p, dx.data(), dw.data(), dy.data());
        diffuse::copy(got, dy);
    });
    checks::reference_convolution(p, x.data(), w.data(), expected.data());
    const double bound = p.precision == device_precision::fp32 ? 1e-5 : checks::unet2d_tolerance(p.precision);
    log.at_most("cudnn_conv_engine, " + describe(p) + (checks::cudnn_uses_fallback_graph(engine, p) ? " (fallback graph)" : "") +
                    ": max relative error",
                checks::max_relative_error(got, expected), bound);
    return true;
}

[[nodiscard]] double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
    if (!diffuse_device_checks::start_gpu_program("test_cudnn_gpu")) return 77;
    checks::log log;
    log.echo = true;
    std::shared_ptr<diffuse::nn::device_conv_engine> engine;
    bool ok = checks::section(log, "cudnn_conv_engine", [&] {
        engine = checks::make_cudnn_conv_engine();
        std::printf("engine: %s\n", engine->name().c_str());
    }) && engine != nullptr;
    ok = ok && checks::section(log, "cudnn_conv_engine against the direct convolution in double", [&] {
        std::mt19937_64 rng(20261207);
        for (const device_precision precision : precisions) {
            const auto t0 = std::chrono::steady_clock::now();
            std::size_t ran = 0, declined = 0;
            for (int round = 0; round < 40; ++round) (check_problem(log, *engine, rng, random_problem(rng, precision)) ? ran : declined)++;
            std::printf("%s: %zu problems ran, %zu declined (%.1f s)\n", diffuse::precision_name(precision), ran, declined,
                        seconds_since(t0));
            if (precision == device_precision::fp32) log.at_most("cudnn_conv_engine: fp32 problems run (none declined all)", 1.0, double(ran));
        }
        // K = 512·3·3: TF32 operands (2^-11 relative each) would move the result by ~1e-4 of its scale
        conv_problem large{1, 8, 8, 512, 32, 3, 1, {1, 1, 1, 1}, device_precision::fp32};
        if (!check_problem(log, *engine, rng, large)) log.fail("cudnn_conv_engine declined the fp32 problem with K = 4608");
    });
    for (const device_precision precision : precisions) {
        if (!ok) break;
        const std::string name = std::string("device U-Net with cudnn_conv_engine against the CPU U-Net, ") +
                                 diffuse::precision_name(precision);
        ok = checks::section(log, name.c_str(), [&] {
            const auto t0 = std::chrono::steady_clock::now();
            std::mt19937_64 rng(20261208 + std::uint64_t(precision));
            diffuse::nn::conv_engine_use use;
            for (int round = 0; round < 4; ++round) {
                const auto r = checks::random_unet2d_forward(rng, precision, engine);
                log.at_most("device U-Net (cudnn) vs CPU U-Net, " + r.description + ": max relative error", r.max_relative_error,
                            checks::unet2d_tolerance(precision));
                log.same("device U-Net (cudnn), " + r.description + ": a captured forward replays with the direct forward's bits", 1,
                         r.graph_replay_same_bits ? 1 : 0);
                use.engine += r.engine_use.engine;
                use.declined += r.engine_use.declined;
            }
            std::printf("%s: %zu convolutions by the engine, %zu declined (%.1f s)\n", diffuse::precision_name(precision), use.engine,
                        use.declined, seconds_since(t0));
            log.at_most(name + ": convolutions run by the engine (at least 1)", 1.0, double(use.engine));
        });
    }
    std::printf("test_cudnn_gpu: %zu checks, %zu failed%s\n", log.checks, log.failures.size(),
                ok ? "" : " (stopped early: the device was left in error)");
    return log.failures.empty() ? 0 : 1;
}
