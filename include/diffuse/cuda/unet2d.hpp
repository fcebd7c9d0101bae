#pragma once
// nn::unet2d on device memory (float32 activations): the same network, its parameters uploaded once from a loaded
// host unet2d, its forward a sequence of the device kernels of cuda/nn_kernels.hpp and the GEMMs of cuda/gemm.hpp on
// NHWC activations.
//
//   diffuse::nn::unet2d host = diffuse::io::load_unet2d("ddpm-cifar10-32");
//   diffuse::nn::device_unet2d net(host);                 // uploads every weight
//   diffuse::nn::device_unet2d fast(host, diffuse::device_precision::bf16);  // GEMM operands in bfloat16
//   net.forward(x, h, w, t, labels, out);                 // x, out: device NCHW views [batch, C·h·w]
//   diffuse::nn::device_unet2d_network f(net, h, w);      // a network for diffuse::model on device states
//
// The forward mirrors unet2d::run block by block (see nn/unet2d.hpp for the equations); the time (and
// class-timestep) features are computed on the host by nn/embedding.hpp, as the CPU model computes them, and
// reach the device in one copy per call with the per-sample class rows, times and class vectors (class_embed_type
// "identity"); everything after that
// runs on the device. The group norms are fused into the convolution that follows them (its input prologue,
// applied while forming the im2col columns) where the CPU model fuses them. Activation workspaces are owned by
// the network and grown, never shrunk: the first forward of a (batch, size) allocates, later ones of that shape
// or smaller allocate nothing.
// Results agree with the CPU model to float rounding (different summation order and exp): see nn_kernels.hpp.
// Convolutions (im2col + GEMM), linear layers and attention's two products are cuBLAS GEMMs (cuda/gemm.hpp's
// device_gemm_ex, or device_gemm_bias — cuBLASLt with the bias epilogue — where the epilogue is a bias alone;
// the host loop of the same contract under DIFFUSE_CUDA_ON_HOST); the im2col columns live in a network-owned
// workspace of at most 2²⁶ elements (output rows in chunks).
// Precision (the constructor's device_precision, cuda/reduced_precision.hpp): fp32 (default) multiplies in plain
// float32; tf32 passes the same float operands to tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32); bf16 / fp16 store
// the GEMM operands in 16 bits — the weights converted once at upload, the im2col columns written in 16 bits by
// im2col itself, a linear layer's input and attention's q, k, v and probabilities converted by one kernel each —
// and accumulate in float. Everything else (activations between layers, group norms, softmax, epilogues,
// embeddings' features) stays float in every precision, so the error is the operands' rounding (relative 2⁻⁸
// bf16, 2⁻¹¹ fp16 / tf32) carried through the network: measured in tests/cuda/unet2d_device.cpp. fp16 operands
// keep fp16's range: an activation of magnitude ≥ 65520 becomes ±Inf there (bf16 and tf32 have float's range).
// Convolution engines (cuda/conv_engine.hpp): set_conv_engine hands the k×k and strided convolutions to one —
// cuDNN's (cuda/cudnn_conv.hpp) or the user's — the prologue and epilogue staying this network's kernels.
// Not done: implicit-GEMM convolutions of our own, fused epilogues (cuBLASLt), 16-bit activations between
// layers (half the memory traffic), fused attention; not timed on a GPU yet.
//
// device_unet2d is basic_device_unet2d<float>: a class template (float its only element type) so that its
// kernel launches are instantiated only where the network is used — in a .cu file, or a host build with
// DIFFUSE_CUDA_ON_HOST; a plain .cpp that only includes this header (or names the type) compiles.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/space_buffer.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/cuda/conv_engine.hpp"
#include "diffuse/cuda/gemm.hpp"
#include "diffuse/cuda/memory.hpp"
#include "diffuse/cuda/nn_kernels.hpp"
#include "diffuse/cuda/primitives.hpp"
#include "diffuse/nn/embedding.hpp"
#include "diffuse/nn/unet2d.hpp"
#include "diffuse/nn/unet2d_walk.hpp"

namespace diffuse::nn {

template <class Float>
class basic_device_unet2d {
    static_assert(std::is_same_v<Float, float>, "diffuse: the device U-Net runs in float32 (device_unet2d)");
    using buffer = space_buffer<float, memory_space::device>;
    using dbuffer = space_buffer<double, memory_space::device>;
    using buffer16 = space_buffer<std::uint16_t, memory_space::device>;  // bf16 / fp16 operand bits

public:
    static constexpr memory_space space = memory_space::device;

    // Uploads net's parameters; `precision` is the GEMM operands' (a value outside the enumeration: diffuse::error).
    explicit basic_device_unet2d(const unet2d& net, device_precision precision = device_precision::fp32)
        : cfg_(net.cfg_), precision_(precision), host_freqs_(net.freqs_), host_time_table_(net.time_table_) {
        diffuse::detail::with_operand(precision_, "device_unet2d", [](auto) {});
        if (cfg_.num_class_embeds && *cfg_.num_class_embeds > (std::size_t(1) << 24))
            diffuse::detail::fail("device_unet2d", "num_class_embeds above 2^24 is not supported on the device");
        conv_in_ = upload(net.conv_in_);
        conv_out_ = upload(net.conv_out_);
        norm_out_ = upload(net.norm_out_);
        time_1_ = upload(net.time_1_);
        time_2_ = upload(net.time_2_);
        if (cfg_.class_embed_type == class_embedding_kind::table) class_table_ = upload_values(net.class_table_);
        if (cfg_.class_embed_type == class_embedding_kind::timestep) {
            class_1_ = upload(net.class_1_);
            class_2_ = upload(net.class_2_);
        }
        for (const auto& b : net.down_) down_.push_back(upload(b));
        mid_ = upload(net.mid_);
        for (const auto& b : net.up_) up_.push_back(upload(b));
    }

    [[nodiscard]] const unet2d_config& config() const noexcept { return cfg_; }
    [[nodiscard]] device_precision precision() const noexcept { return precision_; }
    void check_input(std::size_t channels, std::size_t h, std::size_t w) const {
        check_unet2d_input(cfg_, channels, h, w, "device_unet2d::forward");
    }

    // out = UNet2DModel(x, t, class_labels).sample with x, out device NCHW views [batch, in/out_channels·h·w]
    // (unet2d::forward's arguments otherwise: t, class_labels, class_vectors are host values).
    void forward(tensor_view<const float, memory_space::device> x, std::size_t h, std::size_t w, std::span<const double> t,
                 std::span<const std::int64_t> class_labels, tensor_view<float, memory_space::device> out,
                 std::span<const float> class_vectors = {}) {
        constexpr std::string_view where = "device_unet2d::forward";
        const std::size_t hw = h * w;
        check_unet2d_call(cfg_, where, x.batch, h, w, t, class_labels, class_vectors);
        if (x.per_sample != cfg_.in_channels * hw)
            diffuse::detail::fail(where, "x has " + std::to_string(x.per_sample) + " values per sample, not in_channels x h x w = " +
                                             std::to_string(cfg_.in_channels * hw));
        if (out.batch != x.batch || out.per_sample != cfg_.out_channels * hw)
            diffuse::detail::fail(where, "out must hold " + std::to_string(x.batch) + " samples of out_channels x h x w = " +
                                             std::to_string(cfg_.out_channels * hw) + " values");
        forward(x.data, x.batch, h, w, t, class_labels, out.data, class_vectors);
    }

    // Hands the network's convolutions to `engine` (cuda/conv_engine.hpp; null: im2col + GEMM for all): every one
    // but the 1×1 stride-1 unpadded ones without a prologue, which are one GEMM over the NHWC rows. The engine
    // gets KRSC copies of their weights, made on the device by the first forward that offers it each layer, and
    // the network's own kernels do the group-norm prologue and the epilogue; a problem the engine declines
    // (supports() false) runs through im2col. One engine may serve several networks.
    void set_conv_engine(std::shared_ptr<device_conv_engine> engine) { engine_ = std::move(engine); }
    [[nodiscard]] const std::shared_ptr<device_conv_engine>& conv_engine() const noexcept { return engine_; }
    // How many convolutions the engine ran and declined since this network was made.
    [[nodiscard]] conv_engine_use engine_use() const noexcept { return engine_use_; }

    // The raw form unet2d_network_of calls (unet2d::forward's signature; x and out are device pointers).
    template <class T>
    void forward(const T* x, std::size_t batch, std::size_t h, std::size_t w, std::span<const double> t,
                 std::span<const std::int64_t> class_labels, T* out, std::span<const float> class_vectors = {}) {
        static_assert(std::is_same_v<T, float>, "diffuse: the device U-Net runs in float32: give it float tensors");
        constexpr std::string_view where = "device_unet2d::forward";
        check_unet2d_call(cfg_, where, batch, h, w, t, class_labels, class_vectors);
        if (x == nullptr || out == nullptr) diffuse::detail::fail(where, "x and out must not be null");
        const std::size_t hw = h * w;
        auto* in = grow(ws_.input, batch * hw * cfg_.in_channels);
        launch(batch * hw * cfg_.in_channels,
               device_kernels::nchw_nhwc_body{x, in, cfg_.in_channels, hw, true, cfg_.center_input_sample, nullptr});
        embed(batch, t, class_labels, class_vectors);
        auto* y = grow(ws_.output, batch * hw * cfg_.out_channels);
        run(in, batch, h, w, y);
        const bool fourier = cfg_.time_embedding_type == time_embedding_kind::fourier;
        launch(batch * hw * cfg_.out_channels, device_kernels::nchw_nhwc_body{y, out, cfg_.out_channels, hw, false, false,
                                                                              fourier ? ws_.cond.data() + cond_times_ : nullptr});
    }

private:
    // ---- parameters on the device ---------------------------------------------------------------------------
    // a GEMM's weight matrix in the network's operand storage: float (fp32, tf32) or 16-bit bits (bf16, fp16)
    struct weights {
        buffer f32;
        buffer16 bits16;
        template <class Storage>
        [[nodiscard]] const Storage* data() const {
            if constexpr (std::is_same_v<Storage, float>) return f32.data();
            else return bits16.data();
        }
    };
    struct conv_layer {
        weights w;
        buffer b;
        std::size_t cin = 0, cout = 0, k = 0, stride = 1;
        padding2d pad{};
        mutable weights krsc;  // w transposed to [Cout, k·k·Cin] for a convolution engine, made at its first use
        [[nodiscard]] std::size_t out_size(std::size_t n, std::size_t lo, std::size_t hi) const {
            return (n + lo + hi - k) / stride + 1;
        }
    };
    struct linear_layer {
        weights w;
        buffer b;
        std::size_t in = 0, out = 0;
    };
    struct norm_layer {
        buffer gamma, beta;
        std::size_t C = 0, G = 1;
        double eps = 1e-5;
    };
    struct resnet_layer {
        norm_layer norm1, norm2;
        conv_layer conv1, conv2;
        std::optional<conv_layer> shortcut;
        linear_layer time_proj;
        std::size_t in_c = 0, out_c = 0;
        unet2d::resnet_block::resample rs = unet2d::resnet_block::resample::none;
        float output_scale = 1.0f;
    };
    struct attention_layer {
        std::optional<norm_layer> norm;
        linear_layer qkv, out;
        std::size_t C = 0, heads = 1, d = 1;
        float rescale = 1.0f;
    };
    struct level {
        std::vector<resnet_layer> resnets;
        std::vector<attention_layer> attentions;
        std::optional<conv_layer> resample_conv;
        std::optional<resnet_layer> resample_resnet;
    };

    static buffer upload_values(std::span<const float> v) {
        buffer b(v.size());
        if (!v.empty()) diffuse::copy(b, std::vector<float>(v.begin(), v.end()));
        return b;
    }
    // the weights in the operand storage of precision_, converted once here (Operand::encode)
    weights upload_weights(std::span<const float> v) const {
        weights w;
        diffuse::detail::with_operand(precision_, "device_unet2d", [&](auto operand) {
            using Operand = decltype(operand);
            if constexpr (std::is_same_v<typename Operand::storage, float>) {
                w.f32 = upload_values(v);
            } else {
                std::vector<std::uint16_t> bits(v.size());
                std::transform(v.begin(), v.end(), bits.begin(), [](float x) { return Operand::encode(x); });
                w.bits16 = buffer16(bits.size());
                diffuse::detail::device_copy(w.bits16.data(), bits.data(), bits.size() * sizeof(std::uint16_t),
                                             diffuse::detail::copy_direction::host_to_device, "device_unet2d");
            }
        });
        return w;
    }
    conv_layer upload(const conv2d& c) const {
        conv_layer l{upload_weights(c.weight_matrix()), upload_values(c.bias()), c.in_channels(), c.out_channels(),
                     c.kernel(), c.stride(), c.padding(), {}};
        return l;
    }
    linear_layer upload(const linear& c) const {
        return {upload_weights(c.weight_matrix()), upload_values(c.bias()), c.in_features(), c.out_features()};
    }
    static norm_layer upload(const group_norm& n) {
        return {upload_values(n.gamma()), upload_values(n.beta()), n.channels(), n.groups(), n.eps()};
    }
    resnet_layer upload(const unet2d::resnet_block& r) const {
        resnet_layer l;
        l.norm1 = upload(r.norm1);
        l.norm2 = upload(r.norm2);
        l.conv1 = upload(r.conv1);
        l.conv2 = upload(r.conv2);
        if (r.shortcut) l.shortcut = upload(*r.shortcut);
        l.time_proj = upload(r.time_proj);
        l.in_c = r.in_c;
        l.out_c = r.out_c;
        l.rs = r.rs;
        l.output_scale = r.output_scale;
        return l;
    }
    attention_layer upload(const spatial_attention& a) const {
        attention_layer l;
        if (a.norm()) l.norm = upload(*a.norm());
        l.qkv = upload(a.qkv());
        l.out = upload(a.out());
        l.C = a.channels();
        l.heads = a.heads();
        l.d = a.dim_head();
        l.rescale = a.rescale_output_factor();
        return l;
    }
    level upload(const unet2d::level_block& b) const {
        level l;
        for (const auto& r : b.resnets) l.resnets.push_back(upload(r));
        for (const auto& a : b.attentions) l.attentions.push_back(upload(a));
        if (b.resample_conv) l.resample_conv = upload(*b.resample_conv);
        if (b.resample_resnet) l.resample_resnet = upload(*b.resample_resnet);
        return l;
    }

    // ---- workspace (unet2d::workspace's buffers, on the device) ---------------------------------------------
    struct workspace {
        buffer input, output, h0, h1, cat, s0, s1, s2, s3, cond, t_hidden, emb, emb_act, class_hidden, class_emb, proj;
        buffer norm_coef, normed, qkv, heads_out, scores, cols;
        dbuffer norm_partial, norm_stats;
        buffer16 x16, cols16, qkv16, probs16;  // 16-bit GEMM operands (bf16 / fp16)
        buffer engine_in, engine_out;           // a convolution engine's input (float storage) and separate output
        buffer16 engine_in16;                   // its input in 16-bit storage
        std::vector<buffer> skips;
    };
    template <class B>
    static auto* grow(B& b, std::size_t n) {
        grow_buffer(b, n);  // (a buffer a CUDA graph captured stays alive while the graph does: cuda/memory.hpp)
        return b.data();
    }
    template <class T>
    static tensor_view<T, memory_space::device> device_span(T* p, std::size_t n) {
        return {p, 1, n};
    }
    template <class Body>
    static void launch(std::size_t n, const Body& body) {
        diffuse::detail::launch(n, body, "device_unet2d");
    }

    // ---- forward --------------------------------------------------------------------------------------------
    // ws_.cond on the device: [time features (batch × din) | class-timestep features (batch × din) |
    // class rows (batch) | times (batch) | class vectors (batch × temb, "identity" only)], from one host copy;
    // then emb = MLP(features) (+ class embedding) and emb_act = act_fn(emb).
    void embed(std::size_t batch, std::span<const double> t, std::span<const std::int64_t> labels,
               std::span<const float> class_vectors) {
        const std::size_t C0 = cfg_.block_out_channels[0], din = cfg_.time_input_dim(), temb = cfg_.time_embed_dim();
        auto features = [&](std::span<const double> v, float* dst) {
            switch (cfg_.time_embedding_type) {
                case time_embedding_kind::positional: sinusoidal_embedding(v, host_freqs_, C0, cfg_.flip_sin_to_cos, dst); break;
                case time_embedding_kind::fourier: fourier_embedding(v, host_time_table_, dst); break;
                case time_embedding_kind::learned: learned_embedding(v, host_time_table_, C0, dst); break;
            }
        };
        host_cond_.assign(2 * batch * din + 2 * batch + class_vectors.size(), 0.0f);
        features(t, host_cond_.data());
        const bool timestep_class = cfg_.class_embed_type == class_embedding_kind::timestep;
        if (timestep_class) {
            label_times_.assign(labels.begin(), labels.end());
            features(std::span<const double>(label_times_), host_cond_.data() + batch * din);
        }
        cond_rows_ = 2 * batch * din;
        cond_times_ = cond_rows_ + batch;
        for (std::size_t b = 0; b < labels.size(); ++b) host_cond_[cond_rows_ + b] = float(labels[b]);
        for (std::size_t b = 0; b < batch; ++b) host_cond_[cond_times_ + b] = static_cast<float>(t[b]);
        std::copy(class_vectors.begin(), class_vectors.end(), host_cond_.begin() + std::ptrdiff_t(cond_times_ + batch));
        float* cond = grow(ws_.cond, host_cond_.size());
        diffuse::copy(device_span(cond, host_cond_.size()), host_cond_);

        auto mlp = [&](const linear_layer& l1, const linear_layer& l2, const float* in, float* hidden, float* out) {
            linear(l1, in, batch, hidden);
            launch(batch * temb, device_kernels::add_activate_body{hidden, nullptr, activation::silu});
            linear(l2, hidden, batch, out);
        };
        float* emb = grow(ws_.emb, batch * temb);
        mlp(time_1_, time_2_, cond, grow(ws_.t_hidden, batch * temb), emb);
        if (cfg_.class_embed_type == class_embedding_kind::table) {
            launch(batch * temb, device_kernels::gather_add_body{emb, class_table_.data(), cond + cond_rows_, temb});
        } else if (timestep_class) {
            float* ce = grow(ws_.class_emb, batch * temb);
            mlp(class_1_, class_2_, cond + batch * din, grow(ws_.class_hidden, batch * temb), ce);
            launch(batch * temb, device_kernels::add_activate_body{emb, ce, activation::none});
        } else if (cfg_.class_embed_type == class_embedding_kind::identity) {
            launch(batch * temb, device_kernels::add_activate_body{emb, cond + cond_times_ + batch, activation::none});
        }
        float* ea = grow(ws_.emb_act, batch * temb);
        diffuse::copy(device_span(ea, batch * temb), device_span(static_cast<const float*>(emb), batch * temb));
        launch(batch * temb, device_kernels::add_activate_body{ea, nullptr, cfg_.act_fn});
    }

    // y[R, N] = x[R, K]·B[K, N] row-major as the column-major GEMM Yᵀ = Bᵀ·Xᵀ (cuda/gemm.hpp), then the epilogue
    // (ep's terms; ep.y, ep.N set here); a residual that is y itself is y's old value, added through β = 1. x is in
    // Operand's storage already.
    template <class Operand>
    void product_rows(const typename Operand::storage* x, std::size_t ldx, const weights& w, std::size_t rows, std::size_t K,
                      std::size_t N, float* y, device_kernels::bias_epilogue_body ep) {
        const bool accumulate = ep.residual != nullptr && ep.residual == y;
        // a bias-only epilogue goes into the GEMM itself (cuBLASLt's, cuda/gemm.hpp) when cuBLASLt has an algorithm
        if (ep.bias != nullptr && ep.sample_bias == nullptr && (ep.residual == nullptr || accumulate) && ep.divisor == 1.0f &&
            device_gemm_bias(Operand::precision, gemm_op::none, gemm_op::none, N, rows, K, 1.0f,
                             w.template data<typename Operand::storage>(), N, x, ldx, accumulate ? 1.0f : 0.0f, y, N, ep.bias,
                             "device_unet2d"))
            return;
        device_gemm_ex(Operand::precision, gemm_op::none, gemm_op::none, N, rows, K, 1.0f,
                       w.template data<typename Operand::storage>(), N, 0, x, ldx, 0, accumulate ? 1.0f : 0.0f, y, N, 0, 1,
                       "device_unet2d");
        ep.y = y;
        ep.N = N;
        if (accumulate) ep.residual = nullptr;
        if (ep.needed()) launch(rows * N, ep);
    }
    // the same from float rows x: converted to the 16-bit operand first (bf16, fp16), else passed as they are
    void gemm_rows(const float* x, std::size_t ldx, const weights& w, std::size_t rows, std::size_t K, std::size_t N, float* y,
                   device_kernels::bias_epilogue_body ep) {
        diffuse::detail::with_operand(precision_, "device_unet2d", [&](auto operand) {
            using Operand = decltype(operand);
            if constexpr (std::is_same_v<typename Operand::storage, float>) {
                product_rows<Operand>(x, ldx, w, rows, K, N, y, ep);
            } else {
                auto* x16 = grow(ws_.x16, rows * ldx);
                launch(rows * ldx, device_kernels::convert_body<Operand>{x, x16});
                product_rows<Operand>(x16, ldx, w, rows, K, N, y, ep);
            }
        });
    }
    void linear(const linear_layer& l, const float* x, std::size_t rows, float* y, const float* residual = nullptr,
                float divisor = 1.0f) {
        device_kernels::bias_epilogue_body ep;
        ep.bias = l.b.size() ? l.b.data() : nullptr;
        ep.residual = residual;
        ep.divisor = divisor;
        gemm_rows(x, l.in, l.w, rows, l.in, l.out, y, ep);
    }
    // A 1×1 stride-1 unpadded convolution without an input prologue is one GEMM over the NHWC rows; any other
    // is im2col into ws_.cols (at most cols_budget floats: output rows in chunks) + one GEMM a chunk.
    void conv(const conv_layer& c, const float* x, std::size_t batch, std::size_t h, std::size_t w, float* y,
              const device_kernels::affine_input& input = {}, const float* sample_bias = nullptr, std::size_t sb_ld = 0,
              const float* residual = nullptr, float divisor = 1.0f) {
        const std::size_t ho = c.out_size(h, c.pad.top, c.pad.bottom), wo = c.out_size(w, c.pad.left, c.pad.right);
        const std::size_t rows = batch * ho * wo, K = c.k * c.k * c.cin;
        device_kernels::bias_epilogue_body ep;
        ep.bias = c.b.size() ? c.b.data() : nullptr;
        ep.sample_bias = sample_bias;
        ep.sb_ld = sb_ld;
        ep.rows_per_sample = ho * wo;
        ep.divisor = divisor;
        const bool direct = c.k == 1 && c.stride == 1 && c.pad.top == 0 && c.pad.bottom == 0 && c.pad.left == 0 &&
                            c.pad.right == 0 && input.scale == nullptr;
        if (direct) {
            ep.residual = residual;
            gemm_rows(x, c.cin, c.w, rows, K, c.cout, y, ep);
            return;
        }
        if (engine_ && engine_conv(c, x, batch, h, w, y, input, ep, residual)) return;
        constexpr std::size_t cols_budget = std::size_t(1) << 26;
        const std::size_t chunk = std::max<std::size_t>(1, cols_budget / K);
        diffuse::detail::with_operand(precision_, "device_unet2d", [&](auto operand) {
            using Operand = decltype(operand);
            auto* cols = grow(operand_workspace<Operand>(ws_.cols, ws_.cols16), std::min(rows, chunk) * K);
            for (std::size_t r0 = 0; r0 < rows; r0 += chunk) {
                const std::size_t nr = std::min(chunk, rows - r0);
                launch(nr * K, device_kernels::im2col_body<Operand>{x, cols, input, r0, h, w, c.cin, ho, wo, c.k, c.stride,
                                                                    c.pad.top, c.pad.left});
                ep.first_row = r0;
                ep.residual = residual ? residual + r0 * c.cout : nullptr;
                product_rows<Operand>(cols, K, c.w, nr, K, c.cout, y + r0 * c.cout, ep);
            }
        });
    }
    // The convolution through engine_ (cuda/conv_engine.hpp), when it supports the problem: x' = input(x) into the
    // engine's input in the operand storage (x itself when there is no prologue and the storage is float), the
    // engine's result into y — or beside it when the residual is y's old value — then ep over it.
    bool engine_conv(const conv_layer& c, const float* x, std::size_t batch, std::size_t h, std::size_t w, float* y,
                     const device_kernels::affine_input& input, device_kernels::bias_epilogue_body ep, const float* residual) {
        const conv_problem p{batch, h, w, c.cin, c.cout, c.k, c.stride, c.pad, precision_};
        if (!engine_->supports(p)) {
            ++engine_use_.declined;
            return false;
        }
        diffuse::detail::with_operand(precision_, "device_unet2d", [&](auto operand) {
            using Operand = decltype(operand);
            using storage = typename Operand::storage;
            const std::size_t K = c.k * c.k * c.cin, in_size = batch * h * w * c.cin;
            if (operand_workspace<Operand>(c.krsc.f32, c.krsc.bits16).size() == 0)
                launch(K * c.cout, device_kernels::transpose_body<storage>{c.w.template data<storage>(),
                                                                           grow(operand_workspace<Operand>(c.krsc.f32, c.krsc.bits16), K * c.cout),
                                                                           K, c.cout});
            const storage* xin = nullptr;
            if constexpr (std::is_same_v<storage, float>) xin = x;
            if (input.scale != nullptr || !std::is_same_v<storage, float>) {
                storage* xe = grow(operand_workspace<Operand>(ws_.engine_in, ws_.engine_in16), in_size);
                launch(in_size, device_kernels::affine_body<Operand>{x, xe, input, h * w * c.cin, c.cin});
                xin = xe;
            }
            const std::size_t out_size = batch * p.out_h() * p.out_w() * c.cout;
            float* result = residual == y ? grow(ws_.engine_out, out_size) : y;
            engine_->convolve(p, xin, c.krsc.template data<storage>(), result);
            ep.y = y;
            ep.N = c.cout;
            ep.source = result == y ? nullptr : result;
            ep.residual = residual;
            if (ep.needed()) launch(out_size, ep);
        });
        ++engine_use_.engine;
        return true;
    }
    // the workspace holding Operand's storage: the float one or the 16-bit one
    template <class Operand>
    static auto& operand_workspace(buffer& f32, buffer16& bits16) {
        if constexpr (std::is_same_v<typename Operand::storage, float>) return f32;
        else return bits16;
    }
    // The group norm's per-sample coefficients into ws_.norm_coef (two-pass statistics over fixed pixel blocks),
    // returned as the input map of the layer that follows.
    device_kernels::affine_input norm_coefficients(const norm_layer& n, const float* x, std::size_t batch, std::size_t pixels,
                                                   activation act, const float* scale_shift = nullptr) {
        const std::size_t nb = (pixels + device_kernels::norm_pixel_block - 1) / device_kernels::norm_pixel_block;
        double* partial = grow(ws_.norm_partial, batch * n.G * nb);
        double* stats = grow(ws_.norm_stats, batch * n.G * 2);
        float* coef = grow(ws_.norm_coef, batch * 2 * n.C);
        const double count = double(pixels) * double(n.C / n.G);
        for (bool variance : {false, true}) {
            launch(batch * n.G * nb, device_kernels::group_partial_body{x, variance ? stats : nullptr, partial, pixels, n.C, n.G, nb});
            launch(batch * n.G, device_kernels::group_stats_body{partial, stats, nb, count, n.eps, variance});
        }
        launch(batch * n.C, device_kernels::group_coef_body{stats, n.gamma.data(), n.beta.data(), scale_shift, coef, n.C, n.G});
        return {coef, coef + n.C, 2 * n.C, act};
    }
    void norm(const norm_layer& n, const float* x, std::size_t batch, std::size_t pixels, float* y, activation act) {
        const auto input = norm_coefficients(n, x, batch, pixels, act);
        launch(batch * pixels * n.C, device_kernels::affine_body<fp32_operand>{x, y, input, pixels * n.C, n.C});
    }

    // attention_layer's forward (spatial_attention::forward): y = (out(softmax(q·kᵀ/√d)·v) + x) / rescale.
    void attend(const attention_layer& a, const float* x, std::size_t batch, std::size_t T, float* y) {
        const std::size_t C = a.C, inner = a.heads * a.d;
        const float* xn = x;
        if (a.norm) {
            float* nx = grow(ws_.normed, batch * T * C);
            norm(*a.norm, x, batch, T, nx, activation::none);
            xn = nx;
        }
        float* qkv = grow(ws_.qkv, batch * T * 3 * inner);
        linear(a.qkv, xn, batch * T, qkv);
        float* heads_out = grow(ws_.heads_out, batch * T * inner);
        // the scores of at most score_budget floats at a time: samples in chunks
        constexpr std::size_t score_budget = std::size_t(1) << 26;
        const std::size_t per_sample = a.heads * T * T, chunk = std::max<std::size_t>(1, score_budget / per_sample);
        float* scores = grow(ws_.scores, std::min(batch, chunk) * per_sample);
        const float scale = static_cast<float>(1.0 / std::sqrt(double(a.d)));
        const std::size_t ld = 3 * inner, TT = T * T;
        diffuse::detail::with_operand(precision_, "device_unet2d", [&](auto operand) {
            using Operand = decltype(operand);
            using storage = typename Operand::storage;
            // q, k, v and the probabilities as GEMM operands: in place (float storage) or converted to 16 bits
            const storage* qkv_op = nullptr;
            storage* probs = nullptr;
            if constexpr (std::is_same_v<storage, float>) {
                qkv_op = qkv;
                probs = scores;
            } else {
                storage* q16 = grow(ws_.qkv16, batch * T * ld);
                launch(batch * T * ld, device_kernels::convert_body<Operand>{qkv, q16});
                qkv_op = q16;
                probs = grow(ws_.probs16, std::min(batch, chunk) * per_sample);
            }
            for (std::size_t b0 = 0; b0 < batch; b0 += chunk) {
                const std::size_t nb = std::min(chunk, batch - b0);
                const storage* q = qkv_op + b0 * T * ld;
                float* o = heads_out + b0 * T * inner;
                // per head h, batched over the chunk's samples (column-major views of the row-major rows of width ld):
                //   scores[b, h](j, i) = scale·Σ_e K[b, j, h, e]·Q[b, i, h, e]   (m = n = T, k = d; Kᵀ stored: op T)
                //   softmax over j (one row i of scores[b, h] each), written as the probabilities P
                //   out[b](e, i) at h·d = Σ_j V[b, j, h, e]·P[b, h](j, i)      (m = d, n = T, k = T)
                for (std::size_t hd = 0; hd < a.heads; ++hd)
                    device_gemm_ex(Operand::precision, gemm_op::transpose, gemm_op::none, T, T, a.d, scale, q + inner + hd * a.d,
                                   ld, T * ld, q + hd * a.d, ld, T * ld, 0.0f, scores + hd * TT, T, a.heads * TT, nb,
                                   "device_unet2d");
                launch(nb * a.heads * T, device_kernels::softmax_row_body<Operand>{scores, probs, T});
                for (std::size_t hd = 0; hd < a.heads; ++hd)
                    device_gemm_ex(Operand::precision, gemm_op::none, gemm_op::none, a.d, T, T, 1.0f, q + 2 * inner + hd * a.d, ld,
                                   T * ld, static_cast<const storage*>(probs + hd * TT), T, a.heads * TT, 0.0f, o + hd * a.d,
                                   inner, T * inner, nb, "device_unet2d");
            }
        });
        linear(a.out, heads_out, batch * T, y, x, a.rescale);
    }

    // y = resnet(x), unet2d::resnet on the device.
    void resnet(const resnet_layer& r, const float* x, std::size_t batch, std::size_t& h, std::size_t& w, float* y) {
        const std::size_t hw = h * w;
        const float* a = x;
        device_kernels::affine_input p1;
        const float* xr = x;
        std::size_t h2 = h, w2 = w;
        if (r.rs == unet2d::resnet_block::resample::none) {
            p1 = norm_coefficients(r.norm1, x, batch, hw, cfg_.act_fn);
        } else {
            float* an = grow(ws_.s0, batch * hw * r.in_c);
            norm(r.norm1, x, batch, hw, an, cfg_.act_fn);
            const bool up = r.rs == unet2d::resnet_block::resample::up;
            h2 = up ? 2 * h : h / 2;
            w2 = up ? 2 * w : w / 2;
            float* a2 = grow(ws_.s1, batch * h2 * w2 * r.in_c);
            float* x2 = grow(ws_.s2, batch * h2 * w2 * r.in_c);
            resample(up, an, batch, h, w, r.in_c, a2);
            resample(up, x, batch, h, w, r.in_c, x2);
            a = a2;
            xr = x2;
        }
        const std::size_t hw2 = h2 * w2;
        float* proj = grow(ws_.proj, batch * 2 * r.out_c);
        linear(r.time_proj, ws_.emb_act.data(), batch, proj);
        float* d = grow(ws_.s3, batch * hw2 * r.out_c);
        conv(r.conv1, a, batch, h2, w2, d, p1, cfg_.scale_shift ? nullptr : proj, r.out_c);
        // p2 reads ws_.norm_coef, which p1 no longer needs
        const auto p2 = norm_coefficients(r.norm2, d, batch, hw2, cfg_.act_fn, cfg_.scale_shift ? proj : nullptr);
        if (r.shortcut) {
            conv(*r.shortcut, xr, batch, h2, w2, y);
            xr = y;
        }
        conv(r.conv2, d, batch, h2, w2, y, p2, nullptr, 0, xr, r.output_scale);
        h = h2;
        w = w2;
    }
    void resample(bool up, const float* x, std::size_t batch, std::size_t h, std::size_t w, std::size_t c, float* y) {
        if (up) launch(batch * 4 * h * w * c, device_kernels::upsample_body{x, y, h, w, c});
        else launch(batch * (h / 2) * (w / 2) * c, device_kernels::avg_pool_body{x, y, h, w, c});
    }

    float* other(const float* x, std::size_t n) {
        return x == ws_.h0.data() && ws_.h0.size() != 0 ? grow(ws_.h1, n) : grow(ws_.h0, n);
    }

    // The layer operations of unet2d_walk (nn/unet2d_walk.hpp) on device NHWC activations.
    float* skip(std::size_t k, std::size_t n) {
        if (ws_.skips.size() <= k) ws_.skips.resize(k + 1);
        return grow(ws_.skips[k], n);
    }
    const float* skip(std::size_t k) { return ws_.skips[k].data(); }
    const float* concat(const float* x, std::size_t c, const float* s, std::size_t sc, std::size_t batch, std::size_t hw) {
        float* cat = grow(ws_.cat, batch * hw * (c + sc));
        launch(batch * hw * (c + sc), device_kernels::concat_body{x, s, cat, c, sc});
        return cat;
    }
    const float* upsample(const float* x, std::size_t batch, std::size_t h, std::size_t w, std::size_t c) {
        float* u = grow(ws_.s1, batch * 4 * h * w * c);
        resample(true, x, batch, h, w, c, u);
        return u;
    }
    // y = conv_out(SiLU(GroupNorm(x))): conv_act is SiLU whatever act_fn is; fused as conv_out's input
    void output_head(const float* x, std::size_t batch, std::size_t h, std::size_t w, std::size_t /*c*/, float* y) {
        const auto p = norm_coefficients(norm_out_, x, batch, h * w, activation::silu);
        conv(conv_out_, x, batch, h, w, y, p);
    }
    template <class Ops, class Conv, class Level>
    friend void detail::unet2d_walk(Ops&, const Conv&, const std::vector<Level>&, const Level&, const std::vector<Level>&,
                                    std::size_t, std::vector<std::size_t>&, const float*, std::size_t, std::size_t,
                                    std::size_t, float*);

    void run(const float* in, std::size_t batch, std::size_t h, std::size_t w, float* out) {
        detail::unet2d_walk(*this, conv_in_, down_, mid_, up_, cfg_.block_out_channels[0], skip_c_, in, batch, h, w, out);
    }

    unet2d_config cfg_;
    device_precision precision_ = device_precision::fp32;
    std::vector<float> host_freqs_, host_time_table_;
    conv_layer conv_in_, conv_out_;
    norm_layer norm_out_;
    linear_layer time_1_, time_2_, class_1_, class_2_;
    buffer class_table_;
    std::vector<level> down_, up_;
    level mid_;
    workspace ws_;
    std::vector<std::size_t> skip_c_;
    std::vector<float> host_cond_;
    std::vector<double> label_times_;
    std::size_t cond_rows_ = 0, cond_times_ = 0;
    std::shared_ptr<device_conv_engine> engine_;
    conv_engine_use engine_use_;
};

using device_unet2d = basic_device_unet2d<float>;

// device_unet2d as a network for diffuse::model on device states (unet2d_network's class-label handling).
using device_unet2d_network = unet2d_network_of<device_unet2d>;

}  // namespace diffuse::nn
