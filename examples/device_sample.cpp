// The bundled class-conditional Fashion-MNIST U-Net (examples/fashion_mnist/unet) sampled on the device:
// the folder is loaded on the host, uploaded once to diffuse::nn::device_unet2d, and DDIM (Song et al. 2021,
// eq. 12, η = 0; samplers/ddim.hpp) with classifier-free guidance (guidance/cfg.hpp: the batch doubled, the
// unconditional half given the null class 10) runs on device tensors; the images are copied back once and
// written as a PNG grid, one row per class.
//
//   example_device_sample [--steps 20] [--guidance 3] [--seed 0] [--per-class 4] [--size 32] [--out PNG]
//                         [--model DIR] [--precision fp32|tf32|bf16|fp16] [--graph] [--compare [TOLERANCE]]
// --size: the image side (a multiple of 4, the network's downsampling factor; it was trained at 32).
// --precision: the device U-Net's GEMM operand precision (cuda/reduced_precision.hpp; float accumulation and
//            float activations in every case), default fp32.
// --graph: the whole run (every step's network call, guidance and update) is captured once as a CUDA graph
//          (cuda/graph.hpp) and the images come from one replay of it; the capture time is printed apart.
// --compare: the same run (same initial noise, sampler and guidance) over the CPU U-Net (nn/unet2d.hpp);
//            prints max |device − cpu| / max |cpu| and exits with 1 when it is above TOLERANCE (default 1e-3 in
//            fp32, else 16·2^-p with p the operands' fraction bits: bf16 0.125, tf32 / fp16 0.0156).
//
// One source, two programs (examples/CMakeLists.txt):
//   example_device_sample        nvcc (DIFFUSE_ENABLE_CUDA=ON): the kernels run on the GPU
//   example_device_sample_host   the host compiler with THRUST_DEVICE_SYSTEM_CPP: the same kernel bodies run as
//                                host loops (cuda/memory.hpp, DIFFUSE_CUDA_ON_HOST); its CTest
//                                (device_sample_host) runs 3 steps at 8×8 with --compare.
// Tolerance: the device U-Net agrees with the CPU one to float rounding per call (cuda/unet2d.hpp; measured in
// tests/cuda/unet2d_device.cpp); 3 guided DDIM steps on the trained network measure 1.8e-6 (host-run, g++ -O3,
// 8×8, 2 per class of 2 classes), the bound 1e-3 is far under a wrong layer or label (order 1). In a lower
// precision each call is within ~2^-p of the CPU model (unet2d_device.cpp) and the guided steps carry it:
// the same 3 steps measure 1.4e-2 = 1.8·2^-7 in bf16 and 1.6e-3 = 1.6·2^-10 in tf32 and fp16 (host-run: the two
// round the same operands alike); the default bound 16·2^-p is 9x that and stays under a wrong layer's error.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <diffuse/adapt/std.hpp>
#include <diffuse/core/fill_normal.hpp>
#include <diffuse/core/space_buffer.hpp>
#include <diffuse/cuda/graph.hpp>
#include <diffuse/cuda/memory.hpp>
#include <diffuse/cuda/primitives.hpp>
#include <diffuse/cuda/unet2d.hpp>
#include <diffuse/guidance/cfg.hpp>
#include <diffuse/io/diffusers.hpp>
#include <diffuse/io/image_grid.hpp>
#include <diffuse/io/png.hpp>
#include <diffuse/samplers/ddim.hpp>
#include <diffuse/samplers/model.hpp>
#include <diffuse/schedules/beta.hpp>
#include <diffuse/schedules/timesteps.hpp>

#ifndef DIFFUSE_SOURCE_DIR
#define DIFFUSE_SOURCE_DIR "."
#endif
#ifndef DIFFUSE_OUTPUT_DIR
#define DIFFUSE_OUTPUT_DIR "."
#endif

namespace {

namespace fs = std::filesystem;
constexpr std::int64_t classes = 10, null_class = 10;
constexpr const char* program = "example_device_sample";

struct options {
    std::size_t steps = 20, per_class = 4, seed = 0, size = 32;
    double guidance = 3.0, tolerance = 1e-3;
    bool compare = false, tolerance_given = false, graph = false;
    diffuse::device_precision precision = diffuse::device_precision::fp32;
    std::string out = (fs::path(DIFFUSE_OUTPUT_DIR) / "fashion_mnist_device.png").string();
    fs::path model = fs::path(DIFFUSE_SOURCE_DIR) / "examples" / "fashion_mnist";
    std::vector<std::int64_t> classes_shown = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "%s: %s\n", program, why.c_str());
    std::exit(2);
}

double number(const std::string& name, const std::string& v) {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(d)) usage(name + " = " + v + " is not a finite number");
    return d;
}

std::size_t count(const std::string& name, const std::string& v, double lo, double hi) {
    const double d = number(name, v);
    if (d != std::floor(d) || d < lo || d > hi)
        usage(name + " = " + v + " is outside the accepted range [" + std::to_string(long(lo)) + ", " + std::to_string(long(hi)) + "]");
    return std::size_t(d);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        auto value = [&]() -> std::string {
            if (!has_value) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--steps") o.steps = count(a, value(), 1, 1000);
        else if (a == "--per-class") o.per_class = count(a, value(), 1, 100);
        else if (a == "--seed") o.seed = count(a, value(), 0, 1e15);
        else if (a == "--size") {
            o.size = count(a, value(), 4, 256);
            if (o.size % 4 != 0) usage("--size = " + std::to_string(o.size) + " is not a multiple of 4");
        } else if (a == "--guidance") o.guidance = number(a, value());
        else if (a == "--out") o.out = value();
        else if (a == "--model") o.model = value();
        else if (a == "--graph") o.graph = true;
        else if (a == "--precision") {
            const std::string p = value();
            if (p == "fp32") o.precision = diffuse::device_precision::fp32;
            else if (p == "tf32") o.precision = diffuse::device_precision::tf32;
            else if (p == "bf16") o.precision = diffuse::device_precision::bf16;
            else if (p == "fp16") o.precision = diffuse::device_precision::fp16;
            else usage("--precision = " + p + " is not one of fp32, tf32, bf16, fp16");
        }
        else if (a == "--classes") {
            o.classes_shown.clear();
            const std::string list = value();
            for (std::size_t p = 0; p <= list.size();) {
                const std::size_t q = std::min(list.find(',', p), list.size());
                o.classes_shown.push_back(std::int64_t(count("--classes", list.substr(p, q - p), 0, classes - 1)));
                p = q + 1;
            }
        } else if (a == "--compare") {
            o.compare = true;
            if (has_value && argv[i + 1][0] != '-') {
                o.tolerance = number(a, argv[++i]);
                o.tolerance_given = true;
                if (!(o.tolerance > 0)) usage("--compare: the tolerance must be positive");
            }
        } else usage("unknown argument " + a);
    }
    if (!o.tolerance_given && o.precision != diffuse::device_precision::fp32)
        o.tolerance = 16 * std::ldexp(1.0, -diffuse::fraction_bits(o.precision));
    return o;
}

// The sampling run shared by both networks: model over `network` (ε prediction, the folder's discrete
// schedule), classifier-free guidance when w ≠ 1, DDIM over `timesteps`; x holds the initial noise on entry.
template <class Network, class X>
void sample(Network& network, X&& x, const diffuse::io::scheduler_config& sched, std::span<const double> alphas_cumprod,
            std::span<const std::int64_t> timesteps, double guidance) {
    diffuse::model md(network, sched.prediction_type, diffuse::discrete_time(alphas_cumprod));
    diffuse::ddim_options opt;
    opt.clip_sample = sched.clip_sample;
    opt.clip_sample_range = sched.clip_sample_range;
    opt.set_alpha_to_one = sched.set_alpha_to_one;
    const diffuse::time_grid grid = diffuse::discrete_grid(timesteps);
    if (guidance != 1.0) {
        diffuse::cfg_model guided(md, guidance);
        diffuse::sample_ddim(guided, std::forward<X>(x), alphas_cumprod, grid, opt);
    } else {
        diffuse::sample_ddim(md, std::forward<X>(x), alphas_cumprod, grid, opt);
    }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    try {
        const fs::path dir = o.model / "unet";
        diffuse::nn::unet2d cpu = diffuse::io::load_unet2d(dir);
        const auto sched = diffuse::io::read_scheduler_config(dir / "scheduler_config.json");
        const auto schedule = diffuse::discrete_schedule::from_config(sched.schedule);
        const std::vector<std::int64_t> timesteps = diffuse::discrete_timesteps(
            sched.schedule.num_train_timesteps, o.steps, sched.spacing, sched.steps_offset);
        const std::size_t side = o.size, C = cpu.config().in_channels, per = C * side * side;
        std::vector<std::int64_t> labels;
        for (auto c : o.classes_shown) labels.insert(labels.end(), o.per_class, c);
        const std::size_t n = labels.size();

        std::vector<float> noise(n * per);
        diffuse::fill_normal(diffuse::batched(noise, n), o.seed, 0);

        const auto t_upload = std::chrono::steady_clock::now();
        diffuse::nn::device_unet2d dnet(cpu, o.precision);
        diffuse::space_buffer<float, diffuse::memory_space::device> x(n * per);
        diffuse::copy(x, noise);
        const double upload = seconds_since(t_upload);
        diffuse::nn::device_unet2d_network dnetwork(dnet, side, side);
        dnetwork.set_class_labels(labels, null_class);
        const auto run = [&] { sample(dnetwork, x.view(n, per), sched, schedule.alphas_cumprod, timesteps, o.guidance); };
        std::string how = "directly";
        auto t_sample = std::chrono::steady_clock::now();
        if (o.graph) {
            auto graph = diffuse::capture_graph(run);
            char line[96];
            std::snprintf(line, sizeof line, "as one CUDA graph (%zu operations, captured in %.4f s)", graph.size(),
                          seconds_since(t_sample));
            how = line;
            t_sample = std::chrono::steady_clock::now();
            graph.replay();
        } else {
            run();
        }
        std::vector<float> images(n * per);
        diffuse::copy(images, x);  // waits for the device
        const double sampling = seconds_since(t_sample);
        std::printf("device DDIM (%s), %zu steps, guidance %g, %s: %zu images of %zux%zu in %.3f s (upload %.3f s)\n",
                    diffuse::precision_name(o.precision), o.steps, o.guidance, how.c_str(), n, side, side, sampling, upload);

        const auto grid = diffuse::io::image_grid(images.data(), n, C, side, side, o.per_class);
        diffuse::io::write_png(o.out, grid.width, grid.height, grid.rgb);
        std::printf("wrote %s (%zu x %zu)\n", o.out.c_str(), grid.width, grid.height);

        if (o.compare) {
            std::vector<float> host = noise;
            diffuse::nn::unet2d_network network(cpu, side, side);
            network.set_class_labels(labels, null_class);
            const auto t_cpu = std::chrono::steady_clock::now();
            sample(network, diffuse::batched(host, n), sched, schedule.alphas_cumprod, timesteps, o.guidance);
            const double cpu_seconds = seconds_since(t_cpu);
            double diff = 0, scale = 0;
            bool finite = true;
            for (std::size_t i = 0; i < host.size(); ++i) {
                finite = finite && std::isfinite(images[i]) && std::isfinite(host[i]);
                diff = std::max(diff, std::abs(double(images[i]) - double(host[i])));
                scale = std::max(scale, std::abs(double(host[i])));
            }
            const double relative = scale > 0 ? diff / scale : diff;
            const bool ok = finite && host != noise && relative <= o.tolerance;
            std::printf("CPU model: %.3f s; max |device - cpu| = %.3g, / max |cpu| (%.3g) = %.3g <= %.3g: %s\n", cpu_seconds, diff,
                        scale, relative, o.tolerance, ok ? "ok" : "FAILED");
            return ok ? 0 : 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
    return 0;
}
