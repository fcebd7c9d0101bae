// The image demo (tools/demo.sh, the README's first command): the bundled class-conditional Fashion-MNIST
// U-Net (examples/fashion_mnist/unet, trained by tools/train_fashion_mnist.py) draws one row of images per
// class with classifier-free guidance, writes them as a PNG grid and reports the model evaluations, the
// time, the Fréchet distance of the bundled classifier's features to the 10k test images and the
// classifier's accuracy on the asked classes.
//
//   example_image_demo [--sampler dpmpp_2m] [--steps 20] [--guidance 3] [--seed 0] [--per-class 8]
//                      [--classes 0,1,...,9] [--out PNG] [--threads 0] [--table] [--check]
// --out: default fashion_mnist.png in the build folder (DIFFUSE_OUTPUT_DIR), not the working directory.
// --table: the quality table (README, benchmarks/RESULTS.md) over several samplers, --per-class images each.
// --check: exit with 1 unless accuracy and FD are within the thresholds derived from real test images at
//          the same sample count (the CTest run below).
// ctest-args: --steps 10 --per-class 3 --threads 0 --check --out image_demo_test.png
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <diffuse/adapt/std.hpp>
#include <diffuse/core/parallel.hpp>
#include <diffuse/io/image_grid.hpp>
#include <diffuse/io/json.hpp>
#include <diffuse/io/npy.hpp>
#include <diffuse/io/png.hpp>
#include <diffuse/metrics/frechet.hpp>
#include <diffuse/nn/convnet.hpp>

#include "../tools/diffuse/run_spec.hpp"

#ifndef DIFFUSE_SOURCE_DIR
#define DIFFUSE_SOURCE_DIR "."
#endif
#ifndef DIFFUSE_OUTPUT_DIR
#define DIFFUSE_OUTPUT_DIR "."
#endif

namespace {

namespace fs = std::filesystem;
constexpr std::size_t classes = 10, side = 32, null_class = 10;
const char* const class_names[classes] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct options {
    std::string sampler = "dpmpp_2m", out = (fs::path(DIFFUSE_OUTPUT_DIR) / "fashion_mnist.png").string();
    std::size_t steps = 20, per_class = 8, seed = 0;
    double guidance = 3.0;
    unsigned threads = 0;
    bool table = false, check = false;
    std::vector<std::int64_t> classes_shown = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    fs::path model = fs::path(DIFFUSE_SOURCE_DIR) / "examples" / "fashion_mnist";
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "example_image_demo: %s\n", why.c_str());
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    auto number = [&](int& i, const char* name) {
        if (i + 1 >= argc) usage(std::string(name) + " needs a value");
        const std::string v = argv[++i];
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end != '\0' || !std::isfinite(d)) usage(std::string(name) + " = " + v + " is not a finite number");
        return d;
    };
    auto count = [&](int& i, const char* name, double lo, double hi) {
        const double d = number(i, name);
        if (d != std::floor(d) || d < lo || d > hi)
            usage(std::string(name) + " = " + argv[i] + " is outside the accepted range [" + std::to_string(long(lo)) + ", " +
                  std::to_string(long(hi)) + "]");
        return std::size_t(d);
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--sampler" && i + 1 < argc) o.sampler = argv[++i];
        else if (a == "--out" && i + 1 < argc) o.out = argv[++i];
        else if (a == "--model" && i + 1 < argc) o.model = argv[++i];
        else if (a == "--steps") o.steps = count(i, "--steps", 1, 1000);
        else if (a == "--per-class") o.per_class = count(i, "--per-class", 1, 1000);
        else if (a == "--seed") o.seed = count(i, "--seed", 0, 1e15);
        else if (a == "--threads") o.threads = unsigned(count(i, "--threads", 0, 256));
        else if (a == "--guidance") o.guidance = number(i, "--guidance");
        else if (a == "--classes" && i + 1 < argc) {
            o.classes_shown.clear();
            const std::string list = argv[++i];
            for (std::size_t p = 0; p <= list.size();) {
                const std::size_t q = std::min(list.find(',', p), list.size());
                const std::string item = list.substr(p, q - p);
                char* end = nullptr;
                const long c = std::strtol(item.c_str(), &end, 10);
                if (item.empty() || *end != '\0' || c < 0 || c >= long(classes))
                    usage("--classes: class \"" + item + "\" is outside the accepted range [0, 9]");
                o.classes_shown.push_back(c);
                p = q + 1;
            }
        } else if (a == "--table") o.table = true;
        else if (a == "--check") o.check = true;
        else usage("unknown argument " + a);
    }
    return o;
}

struct result {
    std::string name;
    std::size_t nfe = 0;
    double seconds = 0, fd = 0, accuracy = 0;
    std::vector<float> images;  // [10·per_class, 1, 32, 32] in [-1, 1]
};

struct evaluator {
    diffuse::nn::convnet classifier;
    diffuse::gaussian_statistics test;

    explicit evaluator(const fs::path& dir) : classifier(diffuse::nn::convnet::load((dir / "classifier.safetensors").string())) {
        test.dim = classifier.feature_dim();
        test.mean = diffuse::io::read_npy((dir / "test_features_mean.npy").string()).as<double>();
        test.cov = diffuse::io::read_npy((dir / "test_features_cov.npy").string()).as<double>();
    }
    // FD of the images' features to the test set and the share classified as `labels`.
    void score(const std::vector<float>& images, const std::vector<std::int64_t>& labels, result& r) {
        const std::size_t n = labels.size(), d = classifier.feature_dim();
        std::vector<double> feat(n * d);
        std::vector<float> f(d), logits(classes);
        std::size_t correct = 0;
        for (std::size_t b = 0; b < n; ++b) {
            classifier.forward(images.data() + b * side * side, 1, side, side, f.data(), logits.data());
            std::copy(f.begin(), f.end(), feat.begin() + std::ptrdiff_t(b * d));
            std::size_t best = 0;
            for (std::size_t k = 1; k < classes; ++k)
                if (logits[k] > logits[best]) best = k;
            correct += best == std::size_t(labels[b]);
        }
        r.accuracy = double(correct) / double(n);
        r.fd = diffuse::frechet_distance(diffuse::feature_statistics(diffuse::batched(feat, n)), test);
    }
};

std::vector<std::int64_t> class_rows(const options& o) {
    std::vector<std::int64_t> labels;
    for (auto c : o.classes_shown) labels.insert(labels.end(), o.per_class, c);
    return labels;
}

// One sampler run through the CLI's spec runner (the same code path as `diffuse sample`).
result generate(const options& o, const std::string& sampler, std::size_t steps, double guidance, bool progress) {
    const auto labels = class_rows(o);
    std::string list;
    for (auto l : labels) list += (list.empty() ? "" : ", ") + std::to_string(l);
    std::string spec = "{\"sampler\": \"" + sampler + "\", \"dtype\": \"float32\", \"shape\": [" + std::to_string(labels.size()) +
                       ", 1, 32, 32], \"num_inference_steps\": " + std::to_string(steps) + ", \"seed\": " + std::to_string(o.seed) +
                       ", \"denoiser\": {\"type\": \"unet2d\", \"path\": \"unet\", \"class_labels\": [" + list +
                       "], \"null_class\": " + std::to_string(null_class);
    if (guidance != 1.0) {
        char g[64];
        std::snprintf(g, sizeof g, "%.17g", guidance);
        spec += std::string(", \"guidance_scale\": ") + g;
    }
    spec += "}}";
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = diffuse::cli::run_spec(diffuse::io::parse_json(spec), o.model, false,
                                          progress ? std::function<void(std::size_t, std::size_t)>(diffuse::cli::progress_bar) : nullptr);
    result out;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.nfe = r.nfe.value_or(0);
    out.images.assign(r.x.begin(), r.x.end());
    char name[96];
    std::snprintf(name, sizeof name, "%s (%zu steps, w = %g)", sampler.c_str(), steps, guidance);
    out.name = name;
    return out;
}

// The same scores for n real test images per class: the floor a perfect sampler would reach at this n.
result real_floor(evaluator& ev, const fs::path& dir, const std::vector<std::int64_t>& shown, std::size_t per_class) {
    const auto imgs = diffuse::io::read_npy((dir / "test_images_1000.npy").string()).as<float>();
    const auto labs = diffuse::io::read_npy((dir / "test_labels_1000.npy").string()).as<std::int64_t>();
    std::vector<float> x;
    std::vector<std::int64_t> chosen;
    for (const auto cl : shown) {
        const std::size_t c = std::size_t(cl);
        std::size_t taken = 0;
        for (std::size_t i = 0; i < labs.size() && taken < per_class; ++i) {
            if (std::size_t(labs[i]) != c) continue;
            for (std::size_t y = 0; y < side; ++y)  // 28×28 in [0, 255] → 32×32 in [−1, 1], background −1
                for (std::size_t xx = 0; xx < side; ++xx) {
                    const bool in = y >= 2 && y < 30 && xx >= 2 && xx < 30;
                    x.push_back(in ? imgs[i * 784 + (y - 2) * 28 + (xx - 2)] / 127.5f - 1.0f : -1.0f);
                }
            chosen.push_back(std::int64_t(c));
            ++taken;
        }
    }
    result r;
    r.name = "(real test images)";
    ev.score(x, chosen, r);
    return r;
}

void print_row(const result& r) {
    std::printf("%-36s %6zu %9.2f %9.2f %9.1f%%\n", r.name.c_str(), r.nfe, r.seconds, r.fd, 100.0 * r.accuracy);
}

}  // namespace

int main(int argc, char** argv) {
    const auto o = parse(argc, argv);
    if (o.steps == 0) usage("--steps must be positive");
    try {
        diffuse::set_num_threads(o.threads);
        evaluator ev(o.model);
        const std::size_t n = o.classes_shown.size() * o.per_class;
        std::printf("Fashion-MNIST U-Net (%s), %zu images (%zu per class), %u threads\n\n", (o.model / "unet").string().c_str(), n,
                    o.per_class, diffuse::num_threads());
        std::printf("%-36s %6s %9s %9s %10s\n", "sampler", "NFE", "time [s]", "FD", "accuracy");
        const auto floor = real_floor(ev, o.model, o.classes_shown, std::min<std::size_t>(o.per_class, 87));
        print_row(floor);
        if (o.table) {
            struct cfg {
                const char* sampler;
                std::size_t steps;
            };
            const cfg rows[] = {{"ddpm", 1000}, {"ddim", 10},  {"ddim", 20},     {"ddim", 50}, {"euler_ancestral", 30},
                                {"dpmpp_2m", 10}, {"dpmpp_2m", 20}, {"unipc", 10}, {"heun", 20}};
            for (double w : {1.0, o.guidance})
                for (const auto& c : rows) {
                    auto r = generate(o, c.sampler, c.steps, w, false);
                    ev.score(r.images, class_rows(o), r);
                    print_row(r);
                    std::fflush(stdout);
                }
            return 0;
        }
        auto r = generate(o, o.sampler, o.steps, o.guidance, true);
        ev.score(r.images, class_rows(o), r);
        print_row(r);
        const auto grid = diffuse::io::image_grid(r.images.data(), n, 1, side, side, o.per_class);
        diffuse::io::write_png(o.out, grid.width, grid.height, grid.rgb);
        std::printf("\nrows, top to bottom:");
        for (std::size_t k = 0; k < o.classes_shown.size(); ++k)
            std::printf("%s %s", k ? "," : "", class_names[o.classes_shown[k]]);
        std::printf("\nwrote %s (%zu x %zu)\n", o.out.c_str(), grid.width, grid.height);
        if (o.check) {
            // A broken sampler or network gives chance accuracy (10%) and an FD far above the real images'.
            const bool ok = r.accuracy >= 0.7 && r.fd <= 2.0 * floor.fd + 5.0;
            std::printf("check: accuracy %.2f >= 0.70, FD %.2f <= 2 x %.2f + 5: %s\n", r.accuracy, r.fd, floor.fd, ok ? "ok" : "FAILED");
            return ok ? 0 : 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "example_image_demo: %s\n", e.what());
        return 1;
    }
    return 0;
}
