#pragma once
// The reference U-Net: diffusers' UNet2DModel (Ho et al. 2020's DDPM network and its descendants), built
// from nn/'s layers and run on NHWC activations with the kernels of nn/conv2d.hpp and nn/gemm.hpp.
//
//   diffuse::nn::unet2d net = diffuse::io::load_unet2d("ddpm-cifar10-32");   // io/diffusers.hpp
//   net.forward(x, batch, h, w, t, {}, out);        // x, out: NCHW [batch, C, h, w]; t: one time per sample
//   diffuse::model m(std::ref(net) ...)             // or use it as a network for diffuse::model (below)
//
// The forward pass is UNet2DModel.forward:
//   e = TimestepEmbedding(time_proj(t)) (+ class embedding);     h = conv_in(x) (x ← 2x − 1 if center_input_sample)
//   down blocks: (resnet [→ attention]) × layers_per_block, then a downsampler (not on the last level);
//                every output is kept as a skip
//   mid block:   resnet → attention → resnet
//   up blocks:   (concat(h, newest skip) → resnet [→ attention]) × (layers_per_block + 1), then an upsampler
//   y = conv_out(SiLU(GroupNorm(h)))  (÷ t per sample for Fourier time features)
// A resnet block (ResnetBlock2D) is
//   h = conv1(act(GN₁(x))) + W_t·act(e);  h = conv2(act(GN₂(h)));  y = (shortcut(x) + h) / output_scale_factor
// and with resnet_time_scale_shift = scale_shift, W_t·act(e) = (s, b) enters as GN₂(h)·(1 + s) + b instead.
//
// Weights come from a tensor_source (io/diffusers.hpp reads safetensors): every tensor is requested by its
// diffusers name and shape. Workspaces are owned by the network: the first forward of a batch shape sizes them and
// later calls of that shape (or smaller) allocate nothing. Work is split over outputs only, so the result
// has the same bits for any thread count (diffuse::set_num_threads).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/nn/activation.hpp"
#include "diffuse/nn/attention.hpp"
#include "diffuse/nn/conv2d.hpp"
#include "diffuse/nn/embedding.hpp"
#include "diffuse/nn/group_norm.hpp"
#include "diffuse/nn/layout.hpp"
#include "diffuse/nn/linear.hpp"
#include "diffuse/nn/resample.hpp"
#include "diffuse/nn/unet2d_config.hpp"
#include "diffuse/nn/unet2d_walk.hpp"
#include "diffuse/samplers/model.hpp"

namespace diffuse::nn {

// Where a network's weights come from: get() returns the named tensor's values in row-major order for the
// given shape, or throws. io::load_unet2d checks a file against unet2d::expected_tensors first, so that one
// error lists every missing, unexpected and mis-shaped tensor.
class tensor_source {
public:
    virtual ~tensor_source() = default;
    virtual std::vector<float> get(const std::string& name, const std::vector<std::size_t>& shape) = 0;
};

// Where a forward pass spends its time (wall seconds, accumulated over calls while attached with
// unet2d::set_profile); `other` is the rest: embeddings, layout changes, concatenation, resampling.
struct unet2d_profile {
    double total = 0, conv = 0, conv_flops = 0, norm = 0, attention = 0;
    std::size_t forwards = 0;
    [[nodiscard]] double other() const noexcept { return total - conv - norm - attention; }
};

// The input checks of a U-Net forward (this one and the device one): channels and image size against the
// configuration (h and w multiples of config.downsampling_factor()), then batch, times, labels, class vectors.
inline void check_unet2d_input(const unet2d_config& cfg, std::size_t channels, std::size_t h, std::size_t w,
                               std::string_view where = "unet2d::forward") {
    if (channels != cfg.in_channels)
        diffuse::detail::fail(where, "the input has " + std::to_string(channels) + " channels, the network takes " +
                                         std::to_string(cfg.in_channels));
    const std::size_t f = cfg.downsampling_factor();
    if (h == 0 || w == 0 || h % f != 0 || w % f != 0)
        diffuse::detail::fail(where, "input size " + std::to_string(h) + " x " + std::to_string(w) +
                                         " is not a positive multiple of the downsampling factor " + std::to_string(f));
    if (h > (1u << 14) || w > (1u << 14)) diffuse::detail::fail(where, "input size above 16384 pixels per side");
}
inline void check_unet2d_call(const unet2d_config& cfg, std::string_view where, std::size_t batch, std::size_t h,
                              std::size_t w, std::span<const double> t, std::span<const std::int64_t> class_labels,
                              std::span<const float> class_vectors) {
    check_unet2d_input(cfg, cfg.in_channels, h, w, where);
    diffuse::detail::require(batch >= 1 && batch <= (1u << 16), where, "batch", batch, "[1, 65536]");
    if (t.size() != batch)
        diffuse::detail::fail(where, "t has " + std::to_string(t.size()) + " values for a batch of " + std::to_string(batch));
    for (double v : t) diffuse::detail::require(std::isfinite(v), where, "t", v, "finite");
    const bool identity = cfg.class_embed_type == class_embedding_kind::identity;
    const bool labelled = cfg.class_conditional() && !identity;
    if (labelled != !class_labels.empty() || (!class_labels.empty() && class_labels.size() != batch))
        diffuse::detail::fail(where, labelled ? "the model is class-conditional: give one class label per sample"
                                              : "the model takes no class labels: class_labels must be empty");
    if (identity != !class_vectors.empty() || (identity && class_vectors.size() != batch * cfg.time_embed_dim()))
        diffuse::detail::fail(where, identity ? "class_embed_type \"identity\": give batch x time_embed_dim = " +
                                                    std::to_string(batch * cfg.time_embed_dim()) + " class vector values"
                                              : "class vectors are only for class_embed_type \"identity\"");
    if (labelled && cfg.class_embed_type == class_embedding_kind::table)
        for (auto l : class_labels)
            diffuse::detail::require(l >= 0 && std::uint64_t(l) < *cfg.num_class_embeds, where, "class label", l,
                                     "[0, num_class_embeds = " + std::to_string(*cfg.num_class_embeds) + ")");
}

template <class Float>
class basic_device_unet2d;  // diffuse/cuda/unet2d.hpp (device_unet2d): the same network on device memory, built from this one

class unet2d {
    template <class Float>
    friend class basic_device_unet2d;

public:
    // Builds the network of `config`, reading every weight from `weights`.
    unet2d(const unet2d_config& config, tensor_source& weights) : cfg_(config) { build(weights); }

    struct tensor_spec {
        std::string name;
        std::vector<std::size_t> shape;
    };
    // Every tensor the architecture of `config` reads, with its shape, in reading order; nothing is allocated
    // for the weights (a loader checks a file against this list before reading it).
    [[nodiscard]] static std::vector<tensor_spec> expected_tensors(const unet2d_config& config) {
        return unet2d(config, shape_walk{}).expected_;
    }

    [[nodiscard]] const unet2d_config& config() const noexcept { return cfg_; }
    [[nodiscard]] std::size_t parameter_count() const noexcept { return parameters_; }
    // Accumulate per-layer timings into *p (null: stop).
    void set_profile(unet2d_profile* p) noexcept { profile_ = p; }

    static constexpr memory_space space = memory_space::host;  // where forward's tensors live

    // Network input sizes: h and w must be multiples of config().downsampling_factor().
    void check_input(std::size_t channels, std::size_t h, std::size_t w) const { check_unet2d_input(cfg_, channels, h, w); }

    // out = UNet2DModel(x, t, class_labels).sample. x: [batch, in_channels, h, w], out: [batch, out_channels, h, w]
    // (NCHW, float or double); t: batch times (the network's own unit: discrete timesteps, or σ-like values for
    // Fourier features); class_labels: batch labels when the model is class-conditional, else empty;
    // class_vectors: for class_embed_type "identity" only, batch × time_embed_dim values added to the time
    // embedding as they are.
    template <class T>
    void forward(const T* x, std::size_t batch, std::size_t h, std::size_t w, std::span<const double> t,
                 std::span<const std::int64_t> class_labels, T* out, std::span<const float> class_vectors = {}) {
        check_unet2d_call(cfg_, "unet2d::forward", batch, h, w, t, class_labels, class_vectors);
        class_vectors_ = class_vectors;
        const scoped_time timed(profile_slot(&unet2d_profile::total));
        if (profile_) ++profile_->forwards;
        const std::size_t hw = h * w, n_in = batch * hw * cfg_.in_channels;
        auto& in = grow(ws_.input, n_in);
        to_nhwc(x, batch, cfg_.in_channels, hw, in.data());
        if (cfg_.center_input_sample)
            for (std::size_t i = 0; i < n_in; ++i) in[i] = 2.0f * in[i] - 1.0f;
        embed_time(batch, t, class_labels);
        auto& y = grow(ws_.output, batch * hw * cfg_.out_channels);
        run(in.data(), batch, h, w, y.data());
        if (cfg_.time_embedding_type == time_embedding_kind::fourier)
            for (std::size_t b = 0; b < batch; ++b) {
                const float tb = static_cast<float>(t[b]);
                for (std::size_t i = 0; i < hw * cfg_.out_channels; ++i) y[b * hw * cfg_.out_channels + i] /= tb;
            }
        from_nhwc(y.data(), batch, cfg_.out_channels, hw, out);
    }

private:
    // ---- layers -------------------------------------------------------------------------------------------
    struct resnet_block {
        enum class resample { none, up, down };
        group_norm norm1, norm2;
        conv2d conv1, conv2;
        std::optional<conv2d> shortcut;
        linear time_proj;
        std::size_t in_c = 0, out_c = 0;
        resample rs = resample::none;
        float output_scale = 1.0f;
    };
    struct level_block {  // a down or up block
        std::vector<resnet_block> resnets;
        std::vector<spatial_attention> attentions;   // empty, or one after each resnet
        std::optional<conv2d> resample_conv;         // Downsample2D / Upsample2D with a conv
        std::optional<resnet_block> resample_resnet; // ResnetBlock2D(down=True / up=True)
        bool upsample = false;                       // the resampler doubles (up) or halves (down) the size
    };

    // ---- workspace ----------------------------------------------------------------------------------------
    struct workspace {
        std::vector<float> input, output, h0, h1, cat, s0, s1, s2, s3, conv;
        std::vector<std::vector<float>> skips;
        std::vector<double> norm_stats;
        std::vector<float> norm_coef, t_in, t_hidden, emb, emb_act, class_in, class_hidden, class_emb, proj;
        attention_workspace attn;
    };
    template <class V>
    static V& grow(V& v, std::size_t n) {
        if (v.size() < n) v.resize(n);
        return v;
    }

    // ---- building -----------------------------------------------------------------------------------------
    // The shape walk: build() runs with every layer left empty and only the tensors' names and shapes recorded.
    struct shape_walk {};
    struct no_source final : tensor_source {
        std::vector<float> get(const std::string&, const std::vector<std::size_t>&) override { return {}; }
    };
    unet2d(const unet2d_config& config, shape_walk) : cfg_(config), shapes_only_(true) {
        no_source none;
        build(none);
    }

    std::vector<float> take(tensor_source& src, const std::string& name, std::vector<std::size_t> shape) {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        parameters_ += n;
        if (shapes_only_) {
            expected_.push_back({name, std::move(shape)});
            return {};
        }
        return src.get(name, shape);
    }
    conv2d make_conv(tensor_source& src, const std::string& name, std::size_t in, std::size_t out, std::size_t k,
                     std::size_t stride, padding2d pad) {
        const auto wt = take(src, name + ".weight", {out, in, k, k});
        const auto bs = take(src, name + ".bias", {out});
        if (shapes_only_) return {};
        return conv2d(in, out, k, stride, pad, wt, bs);
    }
    group_norm make_norm(tensor_source& src, const std::string& name, std::size_t channels, std::size_t groups) {
        const auto g = take(src, name + ".weight", {channels});
        const auto b = take(src, name + ".bias", {channels});
        if (shapes_only_) return {};
        return group_norm(channels, groups, cfg_.norm_eps, g, b);
    }
    linear make_linear(tensor_source& src, const std::string& name, std::size_t in, std::size_t out) {
        const auto wt = take(src, name + ".weight", {out, in});
        const auto bs = take(src, name + ".bias", {out});
        if (shapes_only_) return {};
        return linear(in, out, wt, bs);
    }
    resnet_block make_resnet(tensor_source& src, const std::string& name, std::size_t in, std::size_t out, float scale,
                             resnet_block::resample rs = resnet_block::resample::none) {
        const std::size_t G = cfg_.norm_num_groups;
        resnet_block r;
        r.in_c = in;
        r.out_c = out;
        r.rs = rs;
        r.output_scale = scale;
        r.norm1 = make_norm(src, name + ".norm1", in, G);
        r.conv1 = make_conv(src, name + ".conv1", in, out, 3, 1, {1, 1, 1, 1});
        r.time_proj = make_linear(src, name + ".time_emb_proj", cfg_.time_embed_dim(), cfg_.scale_shift ? 2 * out : out);
        r.norm2 = make_norm(src, name + ".norm2", out, G);
        r.conv2 = make_conv(src, name + ".conv2", out, out, 3, 1, {1, 1, 1, 1});
        if (in != out) r.shortcut = make_conv(src, name + ".conv_shortcut", in, out, 1, 1, {});
        return r;
    }
    spatial_attention make_attention(tensor_source& src, const std::string& name, std::size_t channels,
                                     std::optional<std::size_t> groups, double rescale) {
        const std::size_t dim_head = cfg_.attention_head_dim.value_or(channels);
        const std::size_t heads = channels / dim_head, inner = heads * dim_head;
        std::optional<group_norm> norm;
        if (groups) norm = make_norm(src, name + ".group_norm", channels, *groups);
        const auto qw = take(src, name + ".to_q.weight", {inner, channels}), qb = take(src, name + ".to_q.bias", {inner});
        const auto kw = take(src, name + ".to_k.weight", {inner, channels}), kb = take(src, name + ".to_k.bias", {inner});
        const auto vw = take(src, name + ".to_v.weight", {inner, channels}), vb = take(src, name + ".to_v.bias", {inner});
        const auto ow = take(src, name + ".to_out.0.weight", {channels, inner}), ob = take(src, name + ".to_out.0.bias", {channels});
        if (shapes_only_) return {};
        return spatial_attention(channels, heads, dim_head, std::move(norm), {qw, qb}, {kw, kb}, {vw, vb}, {ow, ob}, rescale);
    }

    void build(tensor_source& src) {
        const auto& ch = cfg_.block_out_channels;
        const std::size_t levels = ch.size(), L = cfg_.layers_per_block, temb = cfg_.time_embed_dim();
        conv_in_ = make_conv(src, "conv_in", cfg_.in_channels, ch[0], 3, 1, {1, 1, 1, 1});
        switch (cfg_.time_embedding_type) {
            case time_embedding_kind::positional: freqs_ = sinusoidal_frequencies(ch[0], cfg_.freq_shift); break;
            case time_embedding_kind::fourier: time_table_ = take(src, "time_proj.weight", {ch[0]}); break;
            case time_embedding_kind::learned:
                time_table_ = take(src, "time_proj.weight", {*cfg_.num_train_timesteps, ch[0]});
                break;
        }
        time_1_ = make_linear(src, "time_embedding.linear_1", cfg_.time_input_dim(), temb);
        time_2_ = make_linear(src, "time_embedding.linear_2", temb, temb);
        switch (cfg_.class_embed_type) {
            case class_embedding_kind::none: break;
            case class_embedding_kind::table:
                class_table_ = take(src, "class_embedding.weight", {*cfg_.num_class_embeds, temb});
                break;
            case class_embedding_kind::timestep:
                class_1_ = make_linear(src, "class_embedding.linear_1", cfg_.time_input_dim(), temb);
                class_2_ = make_linear(src, "class_embedding.linear_2", temb, temb);
                break;
            case class_embedding_kind::identity: break;  // the caller's vectors are added as they are
        }
        // Down path.
        std::size_t out_c = ch[0];
        for (std::size_t i = 0; i < levels; ++i) {
            const std::size_t in_c = out_c;
            out_c = ch[i];
            const bool last = i + 1 == levels;
            const std::string p = "down_blocks." + std::to_string(i);
            level_block blk;
            const auto kind = cfg_.down_blocks[i];
            for (std::size_t j = 0; j < L; ++j) {
                blk.resnets.push_back(make_resnet(src, p + ".resnets." + std::to_string(j), j == 0 ? in_c : out_c, out_c, 1.0f));
                if (kind == down_block_kind::attention)
                    blk.attentions.push_back(make_attention(src, p + ".attentions." + std::to_string(j), out_c,
                                                            cfg_.norm_num_groups, 1.0));
            }
            if (!last) {
                const bool resnet_down = kind == down_block_kind::resnet_downsample ||
                                         (kind == down_block_kind::attention && cfg_.downsample_type == resample_kind::resnet);
                if (resnet_down)
                    blk.resample_resnet = make_resnet(src, p + ".downsamplers.0", out_c, out_c, 1.0f, resnet_block::resample::down);
                else
                    blk.resample_conv = make_conv(src, p + ".downsamplers.0.conv", out_c, out_c, 3, 2,
                                                  cfg_.downsample_padding == 1 ? padding2d{1, 1, 1, 1} : padding2d{0, 0, 1, 1});
            }
            down_.push_back(std::move(blk));
        }
        // Mid block: resnet, attention, resnet.
        if (cfg_.mid_block) {
            const std::size_t c = ch.back();
            const float s = static_cast<float>(cfg_.mid_block_scale_factor);
            mid_.resnets.push_back(make_resnet(src, "mid_block.resnets.0", c, c, s));
            if (cfg_.add_attention) {
                std::optional<std::size_t> groups = cfg_.attn_norm_num_groups;
                if (!groups && !cfg_.scale_shift) groups = cfg_.norm_num_groups;  // diffusers: attn_groups default
                mid_.attentions.push_back(make_attention(src, "mid_block.attentions.0", c, groups, cfg_.mid_block_scale_factor));
            }
            mid_.resnets.push_back(make_resnet(src, "mid_block.resnets.1", c, c, s));
        }
        // Up path.
        std::vector<std::size_t> rev(ch.rbegin(), ch.rend());
        out_c = rev[0];
        for (std::size_t i = 0; i < levels; ++i) {
            const std::size_t prev_c = out_c;
            out_c = rev[i];
            const std::size_t in_c = rev[std::min(i + 1, levels - 1)];
            const bool last = i + 1 == levels;
            const std::string p = "up_blocks." + std::to_string(i);
            level_block blk;
            blk.upsample = true;
            const auto kind = cfg_.up_blocks[i];
            for (std::size_t j = 0; j <= L; ++j) {
                const std::size_t skip_c = j == L ? in_c : out_c;
                const std::size_t res_in = j == 0 ? prev_c : out_c;
                blk.resnets.push_back(make_resnet(src, p + ".resnets." + std::to_string(j), res_in + skip_c, out_c, 1.0f));
                if (kind == up_block_kind::attention)
                    blk.attentions.push_back(make_attention(src, p + ".attentions." + std::to_string(j), out_c,
                                                            cfg_.norm_num_groups, 1.0));
            }
            if (!last) {
                const bool resnet_up = kind == up_block_kind::resnet_upsample ||
                                       (kind == up_block_kind::attention && cfg_.upsample_type == resample_kind::resnet);
                if (resnet_up)
                    blk.resample_resnet = make_resnet(src, p + ".upsamplers.0", out_c, out_c, 1.0f, resnet_block::resample::up);
                else
                    blk.resample_conv = make_conv(src, p + ".upsamplers.0.conv", out_c, out_c, 3, 1, {1, 1, 1, 1});
            }
            up_.push_back(std::move(blk));
        }
        norm_out_ = make_norm(src, "conv_norm_out", ch[0], cfg_.norm_num_groups);
        conv_out_ = make_conv(src, "conv_out", ch[0], cfg_.out_channels, 3, 1, {1, 1, 1, 1});
    }

    // ---- forward ------------------------------------------------------------------------------------------
    // ws_.emb = TimestepEmbedding(time_proj(t)) + class embedding; ws_.emb_act = act_fn(emb) for the resnets.
    void embed_time(std::size_t batch, std::span<const double> t, std::span<const std::int64_t> labels) {
        const std::size_t C0 = cfg_.block_out_channels[0], din = cfg_.time_input_dim(), temb = cfg_.time_embed_dim();
        auto features = [&](std::span<const double> v, float* dst) {
            switch (cfg_.time_embedding_type) {
                case time_embedding_kind::positional: sinusoidal_embedding(v, freqs_, C0, cfg_.flip_sin_to_cos, dst); break;
                case time_embedding_kind::fourier: fourier_embedding(v, time_table_, dst); break;
                case time_embedding_kind::learned: learned_embedding(v, time_table_, C0, dst); break;
            }
        };
        auto mlp = [&](const linear& l1, const linear& l2, const float* in, float* hidden, float* out) {
            l1.forward(in, batch, hidden);
            activate(activation::silu, hidden, batch * temb);
            l2.forward(hidden, batch, out);
        };
        features(t, grow(ws_.t_in, batch * din).data());
        mlp(time_1_, time_2_, ws_.t_in.data(), grow(ws_.t_hidden, batch * temb).data(), grow(ws_.emb, batch * temb).data());
        if (cfg_.class_embed_type == class_embedding_kind::table) {
            const std::size_t n = *cfg_.num_class_embeds;
            for (std::size_t b = 0; b < batch; ++b) {
                diffuse::detail::require(labels[b] >= 0 && std::uint64_t(labels[b]) < n, "unet2d::forward", "class label",
                                         labels[b], "[0, num_class_embeds = " + std::to_string(n) + ")");
                for (std::size_t i = 0; i < temb; ++i) ws_.emb[b * temb + i] += class_table_[std::size_t(labels[b]) * temb + i];
            }
        } else if (cfg_.class_embed_type == class_embedding_kind::timestep) {
            auto& lab = grow(ws_.class_in, batch * din);
            std::vector<double>& lt = label_times_;
            lt.resize(batch);
            for (std::size_t b = 0; b < batch; ++b) lt[b] = double(labels[b]);
            features(lt, lab.data());
            mlp(class_1_, class_2_, lab.data(), grow(ws_.class_hidden, batch * temb).data(),
                grow(ws_.class_emb, batch * temb).data());
            for (std::size_t i = 0; i < batch * temb; ++i) ws_.emb[i] += ws_.class_emb[i];
        } else if (cfg_.class_embed_type == class_embedding_kind::identity) {
            for (std::size_t i = 0; i < batch * temb; ++i) ws_.emb[i] += class_vectors_[i];
        }
        auto& ea = grow(ws_.emb_act, batch * temb);
        std::copy_n(ws_.emb.data(), batch * temb, ea.data());
        activate(cfg_.act_fn, ea.data(), batch * temb);
    }

    // Adds the wall time of its scope to *slot; does nothing (reads no clock) when slot is null.
    class scoped_time {
    public:
        explicit scoped_time(double* slot) : slot_(slot) {
            if (slot_) t0_ = std::chrono::steady_clock::now();
        }
        ~scoped_time() {
            if (slot_) *slot_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        }
        scoped_time(const scoped_time&) = delete;
        scoped_time& operator=(const scoped_time&) = delete;

    private:
        double* slot_;
        std::chrono::steady_clock::time_point t0_{};
    };
    [[nodiscard]] double* profile_slot(double unet2d_profile::*member) noexcept {
        return profile_ ? &(profile_->*member) : nullptr;
    }
    // A convolution into `out`, with the workspace's padded-input scratch.
    void conv(const conv2d& c, const float* x, std::size_t batch, std::size_t h, std::size_t w, float* out,
              const conv_epilogue& e = {}, const conv_prologue& p = {}) {
        const scoped_time timed(profile_slot(&unet2d_profile::conv));
        auto& s = grow(ws_.conv, std::max<std::size_t>(1, c.scratch_floats(batch, h, w, p.enabled())));
        c.forward(x, batch, h, w, out, s.data(), e, p);
        if (profile_) {
            profile_->conv_flops += 2.0 * double(batch * c.out_height(h) * c.out_width(w)) * double(c.out_channels()) *
                                    double(c.in_channels() * c.kernel() * c.kernel());
        }
    }
    void norm(const group_norm& n, const float* x, std::size_t batch, std::size_t pixels, float* out, activation act,
              const float* scale_shift = nullptr) {
        const scoped_time timed(profile_slot(&unet2d_profile::norm));
        auto& st = grow(ws_.norm_stats, n.stats_doubles(batch, pixels));
        auto& co = grow(ws_.norm_coef, n.coef_floats(batch));
        n.forward(x, batch, pixels, out, act, st.data(), co.data(), scale_shift);
    }
    // The group norm + activation as the prologue of the convolution that follows (only the statistics are
    // computed here; the coefficients go to ws_.norm_coef).
    conv_prologue norm_prologue(const group_norm& n, const float* x, std::size_t batch, std::size_t pixels, activation act,
                                const float* scale_shift = nullptr) {
        const scoped_time timed(profile_slot(&unet2d_profile::norm));
        auto& st = grow(ws_.norm_stats, n.stats_doubles(batch, pixels));
        auto& co = grow(ws_.norm_coef, n.coef_floats(batch));
        n.coefficients(x, batch, pixels, st.data(), co.data(), scale_shift);
        return {co.data(), co.data() + n.channels(), 2 * n.channels(), act};
    }
    void attend(const spatial_attention& a, const float* x, std::size_t batch, std::size_t tokens, float* y) {
        const scoped_time timed(profile_slot(&unet2d_profile::attention));
        a.forward(x, batch, tokens, y, ws_.attn);
    }

    // y = resnet(x); x is [batch, h, w, in_c]; y (≠ x, not a scratch buffer) gets the output; h, w are updated
    // when the block resamples.
    void resnet(const resnet_block& r, const float* x, std::size_t batch, std::size_t& h, std::size_t& w, float* y) {
        const std::size_t hw = h * w;
        const float* a = x;   // conv1's input: x with norm1 + act as its prologue, or act(GN₁(x)) resampled
        conv_prologue p1;
        const float* xr = x;  // the residual branch's input
        std::size_t h2 = h, w2 = w;
        if (r.rs == resnet_block::resample::none) {
            p1 = norm_prologue(r.norm1, x, batch, hw, cfg_.act_fn);
        } else {
            float* an = grow(ws_.s0, batch * hw * r.in_c).data();
            norm(r.norm1, x, batch, hw, an, cfg_.act_fn);
            const bool up = r.rs == resnet_block::resample::up;
            h2 = up ? 2 * h : h / 2;
            w2 = up ? 2 * w : w / 2;
            float* a2 = grow(ws_.s1, batch * h2 * w2 * r.in_c).data();
            float* x2 = grow(ws_.s2, batch * h2 * w2 * r.in_c).data();
            if (up) upsample_nearest2x(an, batch, h, w, r.in_c, a2), upsample_nearest2x(x, batch, h, w, r.in_c, x2);
            else avg_pool2x(an, batch, h, w, r.in_c, a2), avg_pool2x(x, batch, h, w, r.in_c, x2);
            a = a2;
            xr = x2;
        }
        const std::size_t hw2 = h2 * w2;
        auto& proj = grow(ws_.proj, batch * 2 * r.out_c);
        r.time_proj.forward(ws_.emb_act.data(), batch, proj.data());
        float* d = grow(ws_.s3, batch * hw2 * r.out_c).data();
        conv_epilogue e1;
        if (!cfg_.scale_shift) e1.sample_bias = proj.data();
        conv(r.conv1, a, batch, h2, w2, d, e1, p1);
        const conv_prologue p2 = norm_prologue(r.norm2, d, batch, hw2, cfg_.act_fn, cfg_.scale_shift ? proj.data() : nullptr);
        if (r.shortcut) {
            conv(*r.shortcut, xr, batch, h2, w2, y);
            xr = y;
        }
        conv_epilogue e2;
        e2.residual = xr;
        e2.output_divisor = r.output_scale;
        conv(r.conv2, d, batch, h2, w2, y, e2, p2);
        h = h2;
        w = w2;
    }

    // The stream buffer that is not `x`, holding at least n floats (only the returned one may grow, so a
    // pointer into the other stays valid).
    float* other(const float* x, std::size_t n) {
        return x == ws_.h0.data() && !ws_.h0.empty() ? grow(ws_.h1, n).data() : grow(ws_.h0, n).data();
    }

    // The layer operations of unet2d_walk (nn/unet2d_walk.hpp) on host NHWC activations.
    float* skip(std::size_t k, std::size_t n) {
        if (ws_.skips.size() <= k) ws_.skips.resize(k + 1);  // moves keep each buffer
        return grow(ws_.skips[k], n).data();
    }
    const float* skip(std::size_t k) { return ws_.skips[k].data(); }
    const float* concat(const float* x, std::size_t c, const float* s, std::size_t sc, std::size_t batch, std::size_t hw) {
        float* cat = grow(ws_.cat, batch * hw * (c + sc)).data();
        for (std::size_t b = 0; b < batch; ++b) concat_channels(x + b * hw * c, c, s + b * hw * sc, sc, hw, cat + b * hw * (c + sc));
        return cat;
    }
    const float* upsample(const float* x, std::size_t batch, std::size_t h, std::size_t w, std::size_t c) {
        float* u = grow(ws_.s1, batch * 4 * h * w * c).data();
        upsample_nearest2x(x, batch, h, w, c, u);
        return u;
    }
    // y = conv_out(SiLU(GroupNorm(x))): conv_act is SiLU whatever act_fn is
    void output_head(const float* x, std::size_t batch, std::size_t h, std::size_t w, std::size_t c, float* y) {
        float* a = grow(ws_.s0, batch * h * w * c).data();
        norm(norm_out_, x, batch, h * w, a, activation::silu);
        conv(conv_out_, a, batch, h, w, y);
    }
    template <class Ops, class Conv, class Level>
    friend void detail::unet2d_walk(Ops&, const Conv&, const std::vector<Level>&, const Level&, const std::vector<Level>&,
                                    std::size_t, std::vector<std::size_t>&, const float*, std::size_t, std::size_t,
                                    std::size_t, float*);

    void run(const float* in, std::size_t batch, std::size_t h, std::size_t w, float* out) {
        detail::unet2d_walk(*this, conv_in_, down_, mid_, up_, cfg_.block_out_channels[0], skip_channels_, in, batch, h, w, out);
    }

    unet2d_config cfg_;
    std::size_t parameters_ = 0;
    conv2d conv_in_, conv_out_;
    std::vector<float> freqs_, time_table_, class_table_;
    linear time_1_, time_2_, class_1_, class_2_;
    std::vector<level_block> down_, up_;
    level_block mid_;
    group_norm norm_out_;
    workspace ws_;
    std::vector<std::size_t> skip_channels_;
    std::vector<double> label_times_;
    std::span<const float> class_vectors_;
    unet2d_profile* profile_ = nullptr;
    bool shapes_only_ = false;
    std::vector<tensor_spec> expected_;
};

// unet2d as a network for diffuse::model: net(x, cond, out) with x NCHW flattened per sample. The image
// shape is fixed at construction; class labels (for class-conditional models) are set per batch row, and
// rows that classifier-free guidance marks unconditional use `null_class`.
//
//   diffuse::nn::unet2d_network net(unet, channels, h, w);
//   net.set_class_labels(labels, /*null_class=*/10);
//   auto m = diffuse::model(std::ref(net)... )   // see io/diffusers.hpp's make_model
// unet2d_network_of<Net>: the same for any network with unet2d's forward and config() (device_unet2d:
// diffuse/cuda/unet2d.hpp, whose tensors are in device memory).
template <class Net>
class unet2d_network_of {
public:
    unet2d_network_of(Net& net, std::size_t h, std::size_t w) : net_(&net), h_(h), w_(w) {
        net.check_input(net.config().in_channels, h, w);
    }

    void set_class_labels(std::span<const std::int64_t> labels, std::optional<std::int64_t> null_class = std::nullopt) {
        labels_.assign(labels.begin(), labels.end());
        null_class_ = null_class;
    }

    template <class T, memory_space S>
    void operator()(tensor_view<const T, S> x, const model_cond& c, tensor_view<T, S> out) {
        static_assert(S == Net::space, "diffuse: the network's tensors live in another memory space than the state's");
        constexpr std::string_view where = "unet2d_network";
        const auto& cfg = net_->config();
        const std::size_t in_per = cfg.in_channels * h_ * w_, out_per = cfg.out_channels * h_ * w_;
        if (x.per_sample != in_per)
            diffuse::detail::fail(where, "x has " + std::to_string(x.per_sample) + " values per sample, the network takes " +
                                             std::to_string(cfg.in_channels) + " x " + std::to_string(h_) + " x " +
                                             std::to_string(w_) + " = " + std::to_string(in_per));
        if (out.batch != x.batch || out.per_sample != out_per)
            diffuse::detail::fail(where, "out must hold " + std::to_string(x.batch) + " samples of " + std::to_string(out_per) +
                                             " values (out_channels x h x w)");
        if (c.t.size() != x.batch) diffuse::detail::fail(where, "cond.t needs one time per sample");
        std::span<const std::int64_t> labels;
        if (cfg.class_conditional()) {
            rows_.resize(x.batch);
            for (std::size_t b = 0; b < x.batch; ++b) {
                const bool uncond = !c.unconditional.empty() && c.unconditional[b];
                if (uncond) {
                    if (!null_class_)
                        diffuse::detail::fail(where, "classifier-free guidance needs a null class (set_class_labels)");
                    rows_[b] = *null_class_;
                } else {
                    if (b >= labels_.size())
                        diffuse::detail::fail(where, "no class label for batch row " + std::to_string(b) + " (" +
                                                         std::to_string(labels_.size()) + " labels set)");
                    rows_[b] = labels_[b];
                }
            }
            labels = rows_;
        } else if (!c.unconditional.empty()) {
            for (auto u : c.unconditional)
                if (u) diffuse::detail::fail(where, "classifier-free guidance needs a class-conditional model");
        }
        net_->forward(x.data, x.batch, h_, w_, c.t, labels, out.data);
    }

private:
    Net* net_;
    std::size_t h_, w_;
    std::vector<std::int64_t> labels_, rows_;
    std::optional<std::int64_t> null_class_;
};
using unet2d_network = unet2d_network_of<unet2d>;

}  // namespace diffuse::nn
