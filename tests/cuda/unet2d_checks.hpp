#pragma once
// The device U-Net against the CPU U-Net on a random small configuration (Catch-free: test_cuda_host's
// property and test_cuda_gpu's check share it). Every block kind, resampler kind, activation, head split,
// time scale-shift, input centring, time-feature kind (positional, Fourier, learned) and class embedding
// (none, table, timestep, identity vectors) is drawn; the weights uniform in [−0.3, 0.3] (norm
// gains 1 ± 0.3) so that the activations stay of order 1.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "diffuse/cuda/graph.hpp"
#include "diffuse/cuda/unet2d.hpp"

namespace diffuse_device_checks {

// max_i |a_i − b_i| / max_i |b_i|: the error relative to the output's scale (an elementwise relative error
// means nothing for the outputs near zero); infinity when the sizes differ or b is all zero.
inline double max_relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return INFINITY;
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::abs(double(b[i])));
    }
    return scale > 0 ? worst / scale : INFINITY;
}

struct random_weights final : diffuse::nn::tensor_source {
    std::mt19937_64 rng;
    explicit random_weights(std::uint64_t seed) : rng(seed) {}
    std::vector<float> get(const std::string& name, const std::vector<std::size_t>& shape) override {
        std::size_t n = 1;
        for (auto d : shape) n *= d;
        std::uniform_real_distribution<float> u(-0.3f, 0.3f);
        std::vector<float> v(n);
        const bool gain = name.find("norm") != std::string::npos && name.ends_with(".weight");
        for (auto& x : v) x = gain ? 1.0f + u(rng) : u(rng);
        return v;
    }
};

// The convolution of cuda/conv_engine.hpp's contract in double over float operands (already decoded from
// their storage): y NHWC [batch, Ho, Wo, Cout] from x NHWC and w KRSC — the reference a convolution engine is
// checked against.
inline void reference_convolution(const diffuse::nn::conv_problem& p, const float* x, const float* w, float* y) {
    const std::size_t ho = p.out_h(), wo = p.out_w();
    for (std::size_t b = 0; b < p.batch; ++b)
        for (std::size_t oy = 0; oy < ho; ++oy)
            for (std::size_t ox = 0; ox < wo; ++ox)
                for (std::size_t co = 0; co < p.cout; ++co) {
                    double sum = 0;
                    for (std::size_t ky = 0; ky < p.k; ++ky)
                        for (std::size_t kx = 0; kx < p.k; ++kx) {
                            const std::size_t iy = oy * p.stride + ky, ix = ox * p.stride + kx;  // padded coordinates
                            if (iy < p.pad.top || iy - p.pad.top >= p.h || ix < p.pad.left || ix - p.pad.left >= p.w) continue;
                            const float* xp = x + ((b * p.h + iy - p.pad.top) * p.w + ix - p.pad.left) * p.cin;
                            const float* wp = w + ((co * p.k + ky) * p.k + kx) * p.cin;
                            for (std::size_t ci = 0; ci < p.cin; ++ci) sum += double(xp[ci]) * double(wp[ci]);
                        }
                    y[((b * ho + oy) * wo + ox) * p.cout + co] = static_cast<float>(sum);
                }
}

struct unet2d_comparison {
    std::string description;
    double max_relative_error;  // the device model in `precision` against the CPU model
    double vs_fp32 = 0;         // against the device model in fp32 (0 when precision is fp32)
    bool graph_replay_same_bits = false;  // the forward captured as a CUDA graph replays with the direct forward's bits
    diffuse::nn::conv_engine_use engine_use{};  // the direct forward's convolutions: by the engine, declined by it
};

// The tolerance of a device U-Net in `precision` against the CPU float model, relative to the output's scale:
// 1e-5 in fp32 (float rounding: tests/cuda/unet2d_device.cpp), else 8·2^-p (p fraction bits: bf16 7, fp16 and
// tf32 10). Each GEMM operand carries a relative rounding error up to 2^-(p+1), two operands a product, and the
// network's chain of products and norms carries them to the output: measured (host-run, g++ -O3) 0.66 … 2.1·2^-p
// on the nine golden folders and 0.52 … 2.8·2^-p on the random configurations (the small random ones amplify
// most); the bound is 2.8x the worst measurement and, for bf16 (0.0625), still far under a wrong layer's O(1).
[[nodiscard]] inline double unet2d_tolerance(diffuse::device_precision precision) {
    return precision == diffuse::device_precision::fp32 ? 1e-5 : 8.0 * std::ldexp(1.0, -diffuse::fraction_bits(precision));
}
// That the lower precision is applied: its distance from the fp32 device model is at least 2^-p/64 of the scale
// (measured ≥ 0.5·2^-p; a model that kept float operands would be within float rounding, ~1e-6).
[[nodiscard]] inline double unet2d_min_deviation(diffuse::device_precision precision) {
    return std::ldexp(1.0, -diffuse::fraction_bits(precision)) / 64;
}

// engine: the device networks' convolution engine (cuda/conv_engine.hpp; null: im2col + GEMM), the fp32 one too.
inline unet2d_comparison random_unet2d_forward(std::mt19937_64& rng,
                                               diffuse::device_precision precision = diffuse::device_precision::fp32,
                                               const std::shared_ptr<diffuse::nn::device_conv_engine>& engine = nullptr) {
    using namespace diffuse::nn;
    auto pick = [&](std::size_t n) { return std::size_t(rng() % n); };
    unet2d_config c;
    const std::size_t levels = 1 + pick(3);
    c.in_channels = 1 + pick(3);
    c.out_channels = 1 + pick(3);
    c.norm_num_groups = pick(2) ? 2 : 4;
    c.block_out_channels.clear();
    c.down_blocks.clear();
    c.up_blocks.clear();
    for (std::size_t i = 0; i < levels; ++i) {
        c.block_out_channels.push_back(c.norm_num_groups * (2 + pick(2)));
        c.down_blocks.push_back(down_block_kind(pick(3)));
        c.up_blocks.push_back(up_block_kind(pick(3)));
    }
    c.layers_per_block = 1 + pick(2);
    c.attention_head_dim = pick(2) ? std::optional<std::size_t>{} : std::optional<std::size_t>{c.norm_num_groups};
    c.downsample_padding = pick(2);
    c.downsample_type = resample_kind(pick(2));
    c.upsample_type = resample_kind(pick(2));
    c.mid_block = pick(3) != 0;
    c.add_attention = pick(2) != 0;
    c.mid_block_scale_factor = pick(2) ? 1.0 : 1.414;
    c.scale_shift = pick(2) != 0;
    c.center_input_sample = pick(2) != 0;
    c.act_fn = std::array{activation::silu, activation::mish, activation::gelu, activation::relu}[pick(4)];
    c.flip_sin_to_cos = pick(2) != 0;
    c.freq_shift = double(pick(2));
    c.time_embedding_type = time_embedding_kind(pick(3));
    if (c.time_embedding_type == time_embedding_kind::learned) c.num_train_timesteps = 1000;
    c.class_embed_type = class_embedding_kind(pick(4));
    if (c.class_embed_type == class_embedding_kind::timestep && c.time_embedding_type == time_embedding_kind::learned)
        c.class_embed_type = class_embedding_kind::table;  // not a diffusers combination (unet2d_config refuses it)
    if (c.class_embed_type == class_embedding_kind::table) c.num_class_embeds = 5;
    // at least 2 x 2 pixels on the deepest level: a group norm over one pixel of a 2-channel group maps the two
    // values to ±γ + β whatever their difference, so rounding-level changes there move the output by O(1)
    // (measured: the CPU model's output moves by 3e-3 of its scale when x moves by one ulp)
    const std::size_t batch = 1 + pick(3), f = c.downsampling_factor(), h = f * (2 + pick(2)), w = f * (2 + pick(2));
    random_weights weights(rng());
    unet2d cpu(c, weights);
    std::vector<float> x(batch * c.in_channels * h * w);
    std::normal_distribution<float> normal;
    for (auto& v : x) v = normal(rng);
    // times: integer timesteps in [0, 1000), or σ-like values in [0.05, 100) for Fourier features (which take ln t)
    const bool fourier = c.time_embedding_type == time_embedding_kind::fourier;
    std::vector<double> t(batch);
    for (auto& v : t) v = fourier ? 0.05 + double(pick(1000)) / 10.0 : double(pick(1000));
    // class labels: rows of the 5-entry table, or times of the class-timestep features (positive: Fourier's ln);
    // class_embed_type identity takes one time_embed_dim vector per sample instead
    std::vector<std::int64_t> labels;
    std::vector<float> class_vectors;
    if (c.class_embed_type == class_embedding_kind::table || c.class_embed_type == class_embedding_kind::timestep)
        for (std::size_t b = 0; b < batch; ++b)
            labels.push_back(c.class_embed_type == class_embedding_kind::table ? std::int64_t(pick(5)) : std::int64_t(1 + pick(999)));
    if (c.class_embed_type == class_embedding_kind::identity) {
        class_vectors.resize(batch * c.time_embed_dim());
        for (auto& v : class_vectors) v = normal(rng);
    }
    std::vector<float> expected(batch * c.out_channels * h * w), got(expected.size());
    cpu.forward(x.data(), batch, h, w, t, labels, expected.data(), class_vectors);

    diffuse::space_buffer<float, diffuse::memory_space::device> dx(x.size()), dout(expected.size());
    diffuse::copy(dx, x);
    const auto device_forward = [&](diffuse::device_precision p, std::vector<float>& result) {
        device_unet2d net(cpu, p);
        net.set_conv_engine(engine);
        net.forward(dx.view(batch, x.size() / batch), h, w, t, labels, dout.view(batch, expected.size() / batch), class_vectors);
        diffuse::copy(result, dout);
        return net.engine_use();
    };
    const auto use = device_forward(precision, got);
    // the same forward captured as a CUDA graph by a fresh network (its workspace grows inside the capture, its
    // embedding's host values become the graph's constants), replayed
    std::vector<float> replayed(expected.size());
    {
        device_unet2d net(cpu, precision);
        net.set_conv_engine(engine);
        diffuse::space_buffer<float, diffuse::memory_space::device> gout(expected.size());
        auto graph = diffuse::capture_graph([&] {
            net.forward(dx.view(batch, x.size() / batch), h, w, t, labels, gout.view(batch, expected.size() / batch),
                        class_vectors);
        });
        graph.replay();
        diffuse::copy(replayed, gout);
    }
    const bool graph_same = std::memcmp(replayed.data(), got.data(), got.size() * sizeof(float)) == 0;
    double vs_fp32 = 0;
    if (precision != diffuse::device_precision::fp32) {
        std::vector<float> fp32(expected.size());
        device_forward(diffuse::device_precision::fp32, fp32);
        vs_fp32 = max_relative_error(got, fp32);
    }
    constexpr std::array time_names{"positional", "fourier", "learned"};
    constexpr std::array class_names{"none", "table", "timestep", "identity"};
    return {std::to_string(levels) + " levels, batch " + std::to_string(batch) + ", " + std::to_string(h) + " x " +
                std::to_string(w) + ", time " + time_names[std::size_t(c.time_embedding_type)] + ", class " +
                class_names[std::size_t(c.class_embed_type)] + ", " + diffuse::precision_name(precision),
            max_relative_error(got, expected), vs_fp32, graph_same, use};
}

}  // namespace diffuse_device_checks
