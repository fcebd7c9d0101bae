// The reference U-Net against diffusers' UNet2DModel: every folder under tests/golden/unet/ (written by
// tools/gen_unet_golden.py with random weights) is loaded and run on its inputs; the output must match
// PyTorch's within the case's tolerance. Also: thread-count invariance, both kernel paths, float and
// double tensors, the model wrapper, and the errors of bad folders and inputs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/parallel.hpp"
#include "diffuse/io/diffusers.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/io/safetensors.hpp"
#include "diffuse/nn/cpu.hpp"
#include "diffuse/nn/unet2d.hpp"
#include "diffuse/samplers/model.hpp"
#include "../../tools/diffuse/run_spec.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const fs::path golden = fs::path(DIFFUSE_GOLDEN_DIR) / "unet";

struct unet_case {
    std::string name;
    std::vector<float> x, expected, class_vectors;
    std::vector<double> t;
    std::vector<std::int64_t> labels;
    std::size_t batch = 0, channels = 0, h = 0, w = 0, out_channels = 0;
    double rtol = 1e-5, atol = 1e-5;
};

unet_case read_case(const fs::path& dir) {
    unet_case c;
    c.name = dir.filename().string();
    const auto x = diffuse::io::read_npy((dir / "x.npy").string());
    REQUIRE(x.shape.size() == 4);
    c.batch = x.shape[0], c.channels = x.shape[1], c.h = x.shape[2], c.w = x.shape[3];
    c.x = x.as<float>();
    c.t = diffuse::io::read_npy((dir / "t.npy").string()).as<double>();
    const auto out = diffuse::io::read_npy((dir / "out.npy").string());
    c.out_channels = out.shape.at(1);
    c.expected = out.as<float>();
    if (fs::exists(dir / "class.npy")) {
        const auto cl = diffuse::io::read_npy((dir / "class.npy").string());
        if (cl.dtype == "<f4") c.class_vectors = cl.as<float>();
        else c.labels = cl.as<std::int64_t>();
    }
    const auto meta = diffuse::io::parse_json(diffuse::io::read_text_file(dir / "case.json"));
    if (const auto* r = meta.find("rtol")) c.rtol = r->as_number();
    if (const auto* a = meta.find("atol")) c.atol = a->as_number();
    return c;
}

template <class T = float>
std::vector<T> run_case(diffuse::nn::unet2d& net, const unet_case& c) {
    std::vector<T> x(c.x.begin(), c.x.end()), out(c.batch * c.out_channels * c.h * c.w);
    net.forward(x.data(), c.batch, c.h, c.w, c.t, c.labels, out.data(), c.class_vectors);
    return out;
}

// max over elements of |a − b| / (atol + rtol·|b|): ≤ 1 passes.
template <class T>
double tolerance_ratio(const std::vector<T>& got, const std::vector<float>& want, double rtol, double atol) {
    REQUIRE(got.size() == want.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double d = std::abs(double(got[i]) - double(want[i]));
        worst = std::max(worst, d / (atol + rtol * std::abs(double(want[i]))));
        if (!std::isfinite(double(got[i]))) return INFINITY;
    }
    return worst;
}

std::vector<fs::path> case_dirs() {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(golden))
        if (e.is_directory() && fs::exists(e.path() / "out.npy")) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

struct isa_guard {
    diffuse::nn::kernel_isa saved = diffuse::nn::active_isa();
    ~isa_guard() { diffuse::nn::set_kernel_isa(saved); }
};
struct thread_guard {
    ~thread_guard() { diffuse::set_num_threads(1); }
};

// A scratch copy of a golden folder that a test may damage.
fs::path scratch_copy(const std::string& name, const std::string& tag) {
    const fs::path dst = fs::temp_directory_path() / ("diffuse_unet_" + tag);
    fs::remove_all(dst);
    fs::copy(golden / name, dst, fs::copy_options::recursive);
    return dst;
}

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << s;
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
    const auto pos = s.find(from);
    REQUIRE(pos != std::string::npos);
    return s.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("unet2d matches diffusers' UNet2DModel on every golden folder", "[unet2d]") {
    const auto dirs = case_dirs();
    REQUIRE(dirs.size() >= 12);
    for (const auto& dir : dirs) {
        const auto c = read_case(dir);
        INFO("case " << c.name);
        auto net = diffuse::io::load_unet2d(dir);
        CHECK(net.config().in_channels == c.channels);
        CHECK(net.config().out_channels == c.out_channels);
        const auto out = run_case(net, c);
        CHECK(tolerance_ratio(out, c.expected, c.rtol, c.atol) <= 1.0);
        // A second call on the same workspace gives the same bits.
        CHECK(run_case(net, c) == out);
    }
}

TEST_CASE("unet2d: the same bits for any thread count, double tensors, and the portable kernels", "[unet2d]") {
    thread_guard tg;
    for (const char* name : {"cifar10_tiny", "multihead", "scale_shift", "resnet_sampling"}) {
        INFO("case " << name);
        const auto c = read_case(golden / name);
        auto net = diffuse::io::load_unet2d(golden / name);
        diffuse::set_num_threads(1);
        const auto one = run_case(net, c);
        for (unsigned n : {2u, 3u}) {
            diffuse::set_num_threads(n);
            CHECK(run_case(net, c) == one);
        }
        diffuse::set_num_threads(1);
        const auto d = run_case<double>(net, c);
        CHECK(tolerance_ratio(d, c.expected, c.rtol, c.atol) <= 1.0);
        isa_guard ig;
        diffuse::nn::set_kernel_isa(diffuse::nn::kernel_isa::portable);
        CHECK(tolerance_ratio(run_case(net, c), c.expected, c.rtol, c.atol) <= 1.0);
    }
}

TEST_CASE("unet2d: the exact google/ddpm-cifar10-32 architecture, when tools/gen_unet_golden.py --large wrote it",
          "[unet2d][large]") {
    const fs::path dir = fs::path(DIFFUSE_GOLDEN_DIR) / "unet-large" / "cifar10";
    if (!fs::exists(dir / "out.npy")) {
        WARN("skipped: " << dir.string() << " not generated (python3 tools/gen_unet_golden.py --large)");
        return;
    }
    const auto c = read_case(dir);
    auto net = diffuse::io::load_unet2d(dir);
    CHECK(net.parameter_count() == 35746307);
    CHECK(tolerance_ratio(run_case(net, c), c.expected, c.rtol, c.atol) <= 1.0);
}

TEST_CASE("unet2d_network drives diffuse::model; class labels and the null class for guidance", "[unet2d]") {
    const auto c = read_case(golden / "class_cond");
    auto net = diffuse::io::load_unet2d(golden / "class_cond");
    diffuse::nn::unet2d_network f(net, c.h, c.w);
    f.set_class_labels(c.labels, 10);
    std::vector<float> out(c.expected.size());
    const diffuse::model_cond cond{c.t};
    f(diffuse::tensor_view<const float>{c.x.data(), c.batch, c.x.size() / c.batch},
      cond, diffuse::tensor_view<float>{out.data(), c.batch, out.size() / c.batch});
    CHECK(tolerance_ratio(out, c.expected, c.rtol, c.atol) <= 1.0);

    // Unconditional rows use the null class: the same as asking for label 10 directly.
    std::vector<std::uint8_t> uncond(c.batch, 1);
    diffuse::model_cond ucond{c.t, uncond};
    std::vector<float> u(out.size()), direct(out.size());
    f(diffuse::tensor_view<const float>{c.x.data(), c.batch, c.x.size() / c.batch},
      ucond, diffuse::tensor_view<float>{u.data(), c.batch, u.size() / c.batch});
    std::vector<std::int64_t> tens(c.batch, 10);
    net.forward(c.x.data(), c.batch, c.h, c.w, c.t, tens, direct.data());
    CHECK(u == direct);
    CHECK(u != out);

    // Wrong sizes are errors, not overflows.
    std::vector<float> small(out.size() - 1);
    CHECK_THROWS_WITH(f(diffuse::tensor_view<const float>{c.x.data(), c.batch, c.x.size() / c.batch}, cond,
                        diffuse::tensor_view<float>{small.data(), c.batch, small.size() / c.batch}),
                      Contains("out must hold"));
    f.set_class_labels({}, std::nullopt);
    CHECK_THROWS_WITH(f(diffuse::tensor_view<const float>{c.x.data(), c.batch, c.x.size() / c.batch}, cond,
                        diffuse::tensor_view<float>{out.data(), c.batch, out.size() / c.batch}),
                      Contains("no class label"));
}

TEST_CASE("unet2d rejects bad inputs with errors naming them", "[unet2d]") {
    const auto c = read_case(golden / "cifar10_tiny");
    auto net = diffuse::io::load_unet2d(golden / "cifar10_tiny");
    std::vector<float> out(c.expected.size());
    // spatial size not divisible by the downsampling factor (8 for four levels)
    std::vector<float> x12(c.batch * 3 * 12 * 12);
    CHECK_THROWS_WITH(net.forward(x12.data(), c.batch, 12, 12, c.t, {}, out.data()),
                      Contains("not a positive multiple of the downsampling factor 8"));
    // channel count
    CHECK_THROWS_WITH(diffuse::nn::unet2d_network(net, 16, 16)(
                          diffuse::tensor_view<const float>{c.x.data(), c.batch, 2 * 16 * 16}, diffuse::model_cond{c.t},
                          diffuse::tensor_view<float>{out.data(), c.batch, 3 * 16 * 16}),
                      Contains("values per sample"));
    // times and labels
    std::vector<double> t2(c.batch - 1, 10.0);
    CHECK_THROWS_WITH(net.forward(c.x.data(), c.batch, c.h, c.w, t2, {}, out.data()), Contains("t has"));
    std::vector<double> tnan(c.batch, std::nan(""));
    CHECK_THROWS_WITH(net.forward(c.x.data(), c.batch, c.h, c.w, tnan, {}, out.data()), Contains("t = nan"));
    std::vector<std::int64_t> labels(c.batch, 1);
    CHECK_THROWS_WITH(net.forward(c.x.data(), c.batch, c.h, c.w, c.t, labels, out.data()), Contains("class_labels must be empty"));

    const auto cc = read_case(golden / "class_cond");
    auto cnet = diffuse::io::load_unet2d(golden / "class_cond");
    std::vector<std::int64_t> bad(cc.batch, 11);
    std::vector<float> cout(cc.expected.size());
    CHECK_THROWS_WITH(cnet.forward(cc.x.data(), cc.batch, cc.h, cc.w, cc.t, bad, cout.data()), Contains("class label = 11"));
    CHECK_THROWS_WITH(cnet.forward(cc.x.data(), cc.batch, cc.h, cc.w, cc.t, {}, cout.data()), Contains("class-conditional"));
}

TEST_CASE("load_unet2d rejects bad folders with errors naming the key, value or tensor", "[unet2d][io]") {
    const std::string config = diffuse::io::read_text_file(golden / "cifar10_tiny" / "config.json");
    auto with_config = [&](const std::string& text) {
        const auto d = scratch_copy("cifar10_tiny", "config");
        write_text(d / "config.json", text);
        return d;
    };
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(replace_once(config, "\"AttnDownBlock2D\"", "\"CrossAttnDownBlock2D\""))),
                      Contains("CrossAttnDownBlock2D"));
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(replace_once(config, "\"norm_num_groups\": 4", "\"norm_num_groups\": 3"))),
                      Contains("not divisible by norm_num_groups = 3"));
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(replace_once(config, "\"layers_per_block\": 2", "\"layers_per_block\": -2"))),
                      Contains("layers_per_block = -2"));
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(replace_once(config, "\"act_fn\": \"silu\"", "\"act_fn\": \"tanh\""))),
                      Contains("act_fn = \"tanh\""));
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(replace_once(config, "\"act_fn\"", "\"activation\""))),
                      Contains("activation = \"silu\": not a key of UNet2DModel's config"));
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(replace_once(config, "\"in_channels\": 3", "\"in_channels\": 3.5"))),
                      Contains("in_channels = 3.5"));
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(replace_once(config, "\"UNet2DModel\"", "\"UNet2DConditionModel\""))),
                      Contains("UNet2DModel folders only"));
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(with_config(config.substr(0, config.size() / 2))), Contains("config.json"));
    // The architecture disagrees with the weights: every disagreeing tensor is named in one message.
    const auto wider = replace_once(config, "\"block_out_channels\": [\n    8,", "\"block_out_channels\": [\n    12,");
    try {
        (void)diffuse::io::load_unet2d(with_config(wider));
        FAIL("expected an error");
    } catch (const diffuse::error& e) {
        const std::string msg = e.what();
        CHECK_THAT(msg, Contains("tensor conv_in.weight has shape [8, 3, 3, 3], the architecture needs [12, 3, 3, 3]"));
        CHECK_THAT(msg, Contains("down_blocks.0.resnets.0.norm1.weight"));
        CHECK_THAT(msg, Contains("disagree with the architecture"));
    }
    // A missing and an unexpected tensor.
    {
        const auto d = scratch_copy("cifar10_tiny", "weights");
        auto st = diffuse::io::read_safetensors((d / "diffusion_pytorch_model.safetensors").string());
        diffuse::io::safetensors_writer w;
        for (const auto& e : st.entries()) {
            if (e.name == "conv_out.bias") continue;
            const auto v = st.as<float>(e.name);
            w.add(e.name == "conv_in.bias" ? std::string("conv_in.extra") : e.name, e.shape, std::span<const float>(v));
        }
        w.write((d / "diffusion_pytorch_model.safetensors").string());
        try {
            (void)diffuse::io::load_unet2d(d);
            FAIL("expected an error");
        } catch (const diffuse::error& e) {
            const std::string msg = e.what();
            CHECK_THAT(msg, Contains("missing tensor conv_out.bias [3]"));
            CHECK_THAT(msg, Contains("missing tensor conv_in.bias [8]"));
            CHECK_THAT(msg, Contains("unexpected tensor conv_in.extra"));
        }
    }
    // No weights file, a truncated one, and not a folder.
    {
        const auto d = scratch_copy("cifar10_tiny", "noweights");
        fs::remove(d / "diffusion_pytorch_model.safetensors");
        CHECK_THROWS_AS(diffuse::io::load_unet2d(d), diffuse::error);
        const auto d2 = scratch_copy("cifar10_tiny", "truncated");
        fs::resize_file(d2 / "diffusion_pytorch_model.safetensors", fs::file_size(d2 / "diffusion_pytorch_model.safetensors") - 7);
        CHECK_THROWS_AS(diffuse::io::load_unet2d(d2), diffuse::error);
    }
    CHECK_THROWS_WITH(diffuse::io::load_unet2d(golden / "does-not-exist"), Contains("is not a folder"));
}

TEST_CASE("scheduler_config.json is read with the names diffusers writes", "[unet2d][io]") {
    const auto s = diffuse::io::read_scheduler_config(golden / "cifar10_tiny" / "scheduler_config.json");
    CHECK(s.class_name == "DDPMScheduler");
    CHECK(s.schedule.num_train_timesteps == 1000);
    CHECK(s.schedule.beta_schedule == "linear");
    CHECK(s.variance_type == "fixed_large");
    CHECK(s.clip_sample);
    CHECK(s.prediction_type == diffuse::prediction::epsilon);
    CHECK_THROWS_WITH(diffuse::io::parse_scheduler_config(diffuse::io::parse_json(R"({"prediction_type": "noise"})")),
                      Contains("prediction_type"));
    CHECK_THROWS_WITH(diffuse::io::parse_scheduler_config(diffuse::io::parse_json(R"({"num_train_timesteps": -5})")),
                      Contains("num_train_timesteps"));
}

TEST_CASE("diffusers' DDPMPipeline and DDIMPipeline against `diffuse sample` on the same folder and noise", "[unet2d][pipeline]") {
    const fs::path dir = golden / "pipeline";
    for (const char* name : {"ddpm", "ddim_eta0", "ddim_eta05"}) {
        INFO("spec " << name);
        const auto spec = diffuse::cli::load_json(dir / (std::string(name) + ".json"));
        std::size_t steps_seen = 0;
        const auto r = diffuse::cli::run_spec(spec, dir, false, [&](std::size_t done, std::size_t) { steps_seen = done; });
        const auto& t = spec.at("test");
        const auto want = diffuse::io::read_npy((dir / t.at("expected").as_string()).string()).as<float>();
        CHECK(steps_seen == std::size_t(spec.at("num_inference_steps").as_number()));
        std::vector<float> got(r.x.begin(), r.x.end());
        CHECK(tolerance_ratio(got, want, t.at("rtol").as_number(), t.at("atol").as_number()) <= 1.0);
    }
}

TEST_CASE("a unet2d spec takes its defaults from the folder's scheduler_config.json; guidance needs a null class", "[unet2d][pipeline]") {
    const fs::path dir = golden / "pipeline";
    // No sampler, schedule or options: DDPMScheduler's config gives ddpm, linear betas, fixed_large, clipping.
    const auto minimal = diffuse::io::parse_json(R"({"dtype": "float32", "shape": [2, 3, 16, 16], "num_inference_steps": 20,
        "denoiser": {"type": "unet2d", "path": "../cifar10_tiny"}, "init_noise": "ddpm_init.npy", "step_noise": "ddpm_noise.npy"})");
    const auto r = diffuse::cli::run_spec(minimal, dir);
    const auto want = diffuse::io::read_npy((dir / "ddpm_expected.npy").string()).as<float>();
    std::vector<float> got(r.x.begin(), r.x.end());
    CHECK(tolerance_ratio(got, want, 1e-4, 1e-4) <= 1.0);

    auto fails = [&](const std::string& text, const std::string& what) {
        INFO(what);
        CHECK_THROWS_WITH(diffuse::cli::run_spec(diffuse::io::parse_json(text), golden / "class_cond"), Contains(what));
    };
    const std::string head = R"({"sampler": "ddim", "dtype": "float32", "num_inference_steps": 3, )";
    fails(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": "."}})", "class-conditional");
    fails(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 2], "guidance_scale": 3}})",
          "null_class");
    fails(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 12]}})", "label 12");
    fails(head + R"("shape": [2, 3, 7, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 2]}})", "downsampling factor 2");
    fails(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": "no-such-folder"}})", "spec.denoiser.path");
    // Guided sampling runs: conditional and null-class rows in one batch.
    const auto guided = diffuse::cli::run_spec(
        diffuse::io::parse_json(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 2],
            "null_class": 10, "guidance_scale": 3}})"), golden / "class_cond");
    const auto plain = diffuse::cli::run_spec(
        diffuse::io::parse_json(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 2]}})"),
        golden / "class_cond");
    REQUIRE(guided.x.size() == plain.x.size());
    CHECK(guided.x != plain.x);
    for (double v : guided.x) CHECK(std::isfinite(v));
    const auto rescaled = diffuse::cli::run_spec(
        diffuse::io::parse_json(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 2],
            "null_class": 10, "guidance_scale": 3, "guidance_rescale": 0.7}})"), golden / "class_cond");
    CHECK(rescaled.x != guided.x);
    CHECK(rescaled.nfe == std::optional<std::size_t>(3));  // one network call per DDIM step, both halves in it
    fails(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 2], "null_class": 11,
          "guidance_scale": 3}})", "not below num_class_embeds = 11");
    fails(head + R"("shape": [2, 3, 8, 8], "denoiser": {"type": "unet2d", "path": ".", "class_labels": [1, 2], "null_class": 10,
          "guidance_scale": 3, "guidance_rescale": 1.5}})", "guidance_rescale");
}
