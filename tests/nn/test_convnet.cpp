// The small CNN classifier against the PyTorch model it was exported from (tools/train_fashion_mnist.py):
// features and logits of four Fashion-MNIST test images, and the errors of bad state dicts.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "diffuse/io/npy.hpp"
#include "diffuse/io/safetensors.hpp"
#include "diffuse/nn/convnet.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
const fs::path model_dir = fs::path(DIFFUSE_GOLDEN_DIR).parent_path().parent_path() / "examples" / "fashion_mnist";

std::vector<float> npy(const std::string& name) { return diffuse::io::read_npy((model_dir / name).string()).as<float>(); }
}  // namespace

TEST_CASE("convnet reproduces the exported PyTorch classifier", "[convnet]") {
    auto clf = diffuse::nn::convnet::load((model_dir / "classifier.safetensors").string());
    CHECK(clf.in_channels() == 1);
    CHECK(clf.feature_dim() == 128);
    CHECK(clf.classes() == 10);
    const auto x = npy("classifier_check_x.npy"), want_f = npy("classifier_check_features.npy"),
               want_l = npy("classifier_check_logits.npy");
    const std::size_t batch = 4;
    std::vector<float> f(batch * 128), l(batch * 10);
    clf.forward(x.data(), batch, 32, 32, f.data(), l.data());
    for (std::size_t i = 0; i < f.size(); ++i) CHECK(std::abs(f[i] - want_f[i]) <= 1e-5 + 1e-5 * std::abs(want_f[i]));
    for (std::size_t i = 0; i < l.size(); ++i) CHECK(std::abs(l[i] - want_l[i]) <= 1e-5 + 1e-5 * std::abs(want_l[i]));
    // One image at a time gives the same answer (the batch does not leak between samples).
    std::vector<float> l1(10);
    clf.forward(x.data() + 3 * 32 * 32, 1, 32, 32, nullptr, l1.data());
    for (std::size_t k = 0; k < 10; ++k) CHECK(std::abs(l1[k] - l[30 + k]) <= 1e-6f * (1 + std::abs(l[30 + k])));
    // A 28×28 input does not flatten to fc1's width.
    CHECK_THROWS_WITH(clf.forward(x.data(), 1, 28, 28, f.data(), l.data()), Contains("fc1 takes 2048"));
}

TEST_CASE("convnet::load rejects state dicts that are not a classifier", "[convnet]") {
    const auto src = diffuse::io::read_safetensors((model_dir / "classifier.safetensors").string());
    auto write_without = [&](const std::string& skip, const std::string& extra) {
        diffuse::io::safetensors_writer w;
        for (const auto& e : src.entries()) {
            if (e.name == skip) continue;
            const auto v = src.as<float>(e.name);
            w.add(e.name, e.shape, std::span<const float>(v));
        }
        if (!extra.empty()) {
            const std::vector<float> one{1.0f};
            w.add(extra, {1}, std::span<const float>(one));
        }
        const auto p = fs::temp_directory_path() / "diffuse_convnet_bad.safetensors";
        w.write(p.string());
        return p.string();
    };
    CHECK_THROWS_WITH(diffuse::nn::convnet::load(write_without("conv2.bias", "")), Contains("conv2.bias is missing"));
    CHECK_THROWS_WITH(diffuse::nn::convnet::load(write_without("", "head.scale")), Contains("not conv{i} / fc{j}"));
    CHECK_THROWS_WITH(diffuse::nn::convnet::load(write_without("conv2.weight", "")), Contains("not conv{i} / fc{j}"));
    CHECK_THROWS_WITH(diffuse::nn::convnet::load(write_without("fc2.weight", "")), Contains("at least fc1, fc2"));
}
