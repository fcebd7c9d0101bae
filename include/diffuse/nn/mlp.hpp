#pragma once
// A small residual MLP denoiser for low-dimensional data, trainable entirely in C++.
//
//   e      = [sin(c·f_i), cos(c·f_i)],  f_i = exp(−ln(10000)·i/half), c = time_scale·cond
//            (the sinusoidal embedding of Vaswani et al. 2017 as used by Ho et al. 2020)
//   h₀     = W_in·[x, e] + b_in
//   h_{k+1}= h_k + W2_k·silu(W1_k·silu(h_k) + b1_k + Wt_k·e) + b2_k      k = 0 … blocks−1
//   y      = W_out·silu(h_L) + b_out
//
// forward() keeps the activations; backward() back-propagates ∂L/∂y (from any diffuse loss) into the
// parameter gradients, and optionally into ∂L/∂x. adam implements Kingma & Ba 2015 (Algorithm 1) with
// torch.optim.Adam's conventions (bias correction; ε added to √v̂) and optional decoupled weight
// decay (AdamW, Loshchilov & Hutter 2019).
//
// The denoiser interface: model(x, cond, out) with one conditioning scalar per sample (a timestep,
// a continuous t, or c_noise(σ)); it predicts whatever it was trained on (ε, x₀, v, …).
// Weights are stored as float in a flat vector; save()/load() use safetensors with torch's Linear
// layout ([out, in]) and the configuration in the metadata.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/io/safetensors.hpp"
#include "diffuse/core/host_rng.hpp"
#include "diffuse/nn/activation.hpp"
#include "diffuse/nn/gemm.hpp"

namespace diffuse {

struct mlp_config {
    std::size_t data_dim = 2;     // D: elements per sample
    std::size_t hidden = 128;     // H
    std::size_t blocks = 3;       // residual blocks
    std::size_t time_embed = 32;  // E (even)
    double time_scale = 1.0;      // multiplies cond before the embedding

    void validate(std::string_view where) const {
        detail::require(data_dim >= 1 && data_dim <= 1'000'000, where, "data_dim", data_dim, "[1, 1000000]");
        detail::require(hidden >= 1 && hidden <= 65'536, where, "hidden", hidden, "[1, 65536]");
        detail::require(blocks <= 1'000, where, "blocks", blocks, "[0, 1000]");
        detail::require(time_embed >= 2 && time_embed <= 65'536 && time_embed % 2 == 0, where, "time_embed",
                        time_embed, "an even number in [2, 65536]");
        detail::require(std::isfinite(time_scale) && time_scale > 0.0, where, "time_scale", time_scale, "(0, inf)");
        // total parameter count must stay reasonable (at most 2^31 floats)
        const double n = double(hidden) * double(data_dim + time_embed + 1) +
                         double(blocks) * double(hidden) * double(2 * hidden + time_embed + 2) +
                         double(data_dim) * double(hidden + 1);
        detail::require(n <= 2147483648.0, where, "parameter count", n, "<= 2^31");
    }
};

namespace detail {

// The three products of a linear layer y = W·x + b (W [O, I], torch's Linear layout) over a batch of B
// rows, as packed GEMMs (nn/gemm.hpp); `pack` is scratch reused by every call, so nothing allocates once
// the largest layer has been seen.
//   forward   Y = X·Wᵀ + bias (+ residual)      X [B, I], Y [B, O]; residual [B, O] may be Y
//   input     dX = dY·W (+ dX)                   dY [B, O], dX [B, I]
//   weights   dW += dYᵀ·X,  db += Σ_b dY          dW [O, I], db [O]; dYt is scratch for dYᵀ [O, B]
inline void mlp_linear(nn::packed_matrix& pack, const float* X, std::size_t B, std::size_t I, const float* W,
                       const float* bias, std::size_t O, float* Y, const float* residual) {
    pack.pack(W, I, O, 1, std::ptrdiff_t(I));  // B(i, o) = W[o, i]
    nn::matmul(B, X, I, pack, Y, O, {bias, residual});
}

inline void mlp_linear_dx(nn::packed_matrix& pack, const float* dY, std::size_t B, std::size_t O, const float* W,
                          std::size_t I, float* dX, bool accumulate) {
    pack.pack(W, O, I, std::ptrdiff_t(I), 1);  // B(o, i) = W[o, i]
    nn::matmul(B, dY, O, pack, dX, I, {nullptr, accumulate ? dX : nullptr});
}

inline void mlp_linear_dw(nn::packed_matrix& pack, std::vector<float>& dYt, const float* dY, std::size_t B,
                          std::size_t O, const float* X, std::size_t I, float* dW, float* db) {
    dYt.resize(B * O);
    constexpr std::size_t tile = 16;  // the transpose in 16 × 16 tiles, so that reads and writes stay in cache lines
    for (std::size_t b0 = 0; b0 < B; b0 += tile)
        for (std::size_t o0 = 0; o0 < O; o0 += tile)
            for (std::size_t b = b0; b < std::min(B, b0 + tile); ++b)
                for (std::size_t o = o0; o < std::min(O, o0 + tile); ++o) dYt[o * B + b] = dY[b * O + o];
    pack.pack(X, B, I, std::ptrdiff_t(I), 1);  // B(b, i) = X[b, i]
    nn::matmul(O, dYt.data(), B, pack, dW, I, {nullptr, dW});
    if (db)
        for (std::size_t o = 0; o < O; ++o) {
            float s = db[o];
            for (std::size_t b = 0; b < B; ++b) s += dYt[o * B + b];
            db[o] = s;
        }
}

// silu(x) = x·σ(x) and its derivative σ(x)·(1 + x·(1 − σ(x))), with the U-Net's vectorisable e^x
// (nn/activation.hpp); the loops over a layer's B×H values run as AVX2 code where the CPU has it.
[[nodiscard]] DIFFUSE_ALWAYS_INLINE float sigmoid(float x) noexcept { return 1.0f / (1.0f + nn::detail::exp_approx(-x)); }
[[nodiscard]] DIFFUSE_ALWAYS_INLINE float silu_grad(float x) noexcept {
    const float s = sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}
// Each loop is written out in its kernel (see nn/activation.hpp: gcc vectorises only loops in the body).
#if defined(__x86_64__) || defined(__i386__)
DIFFUSE_NN_AVX2_SELECTS inline void silu_avx2(const float* DIFFUSE_RESTRICT x, float* DIFFUSE_RESTRICT y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}
DIFFUSE_NN_AVX2_SELECTS inline void silu_grad_avx2(const float* DIFFUSE_RESTRICT x, float* DIFFUSE_RESTRICT g, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) g[i] *= silu_grad(x[i]);
}
#endif
// y[i] = silu(x[i])
inline void silu(const float* x, float* y, std::size_t n) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    if (nn::active_isa() == nn::kernel_isa::avx2_fma) return silu_avx2(x, y, n);
#endif
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}
// g[i] ·= silu′(x[i])
inline void scale_by_silu_grad(const float* x, float* g, std::size_t n) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    if (nn::active_isa() == nn::kernel_isa::avx2_fma) return silu_grad_avx2(x, g, n);
#endif
    for (std::size_t i = 0; i < n; ++i) g[i] *= silu_grad(x[i]);
}

}  // namespace detail

class mlp_denoiser {
public:
    struct parameter {
        std::string name;
        std::vector<std::uint64_t> shape;
        std::size_t offset, size;
    };

    explicit mlp_denoiser(const mlp_config& cfg = {}, std::uint64_t seed = 0) : cfg_(cfg) {
        cfg_.validate("mlp_denoiser");
        layout();
        init(seed);
    }

    [[nodiscard]] const mlp_config& config() const noexcept { return cfg_; }
    [[nodiscard]] std::size_t num_parameters() const noexcept { return params_.size(); }
    [[nodiscard]] std::span<float> parameters() noexcept { return params_; }
    [[nodiscard]] std::span<const float> parameters() const noexcept { return params_; }
    [[nodiscard]] std::span<float> gradients() noexcept { return grads_; }
    [[nodiscard]] std::span<const float> gradients() const noexcept { return grads_; }
    [[nodiscard]] const std::vector<parameter>& named_parameters() const noexcept { return named_; }
    void zero_grad() noexcept { std::fill(grads_.begin(), grads_.end(), 0.0f); }

    // The denoiser interface: out = model(x, cond). Any float or double host tensor with data_dim
    // elements per sample; cond holds one value per sample.
    template <tensor X, class Out>
    void operator()(const X& x, std::span<const double> cond, Out&& out) {
        const auto vx = view(x);
        auto vo = view(std::forward<Out>(out));
        static_assert(!std::is_const_v<typename decltype(vo)::value_type>, "diffuse: the output tensor must be writable");
        check_io(vx.batch, vx.per_sample, vo.batch, vo.per_sample, cond.size(), "mlp_denoiser");
        using TX = std::remove_const_t<typename decltype(vx)::value_type>;
        using TO = typename decltype(vo)::value_type;
        if constexpr (std::is_same_v<TX, float> && std::is_same_v<TO, float>) {
            forward(vx.data, cond, vx.batch, vo.data);
        } else {
            xin_.assign(vx.data, vx.data + vx.size());
            yout_.resize(vo.size());
            forward(xin_.data(), cond, vx.batch, yout_.data());
            for (std::size_t i = 0; i < vo.size(); ++i) vo.data[i] = static_cast<TO>(yout_[i]);
        }
    }

    // Forward pass over B samples (x: B×D floats, out: B×D floats), keeping activations for backward.
    void forward(const float* x, std::span<const double> cond, std::size_t B, float* out) {
        const std::size_t D = cfg_.data_dim, H = cfg_.hidden, E = cfg_.time_embed, L = cfg_.blocks;
        if (cond.size() != B)
            detail::fail("mlp_denoiser::forward", "cond has " + std::to_string(cond.size()) +
                                                      " values but the batch has " + std::to_string(B));
        for (std::size_t b = 0; b < B; ++b)
            detail::require(std::isfinite(cond[b]), "mlp_denoiser::forward", "cond[" + std::to_string(b) + "]", cond[b],
                            "finite");
        B_ = B;
        const std::size_t Z = D + E;
        z0_.resize(B * Z);
        emb_.resize(B * E);
        const std::size_t half = E / 2;
        for (std::size_t b = 0; b < B; ++b) {
            float* z = z0_.data() + b * Z;
            std::copy(x + b * D, x + (b + 1) * D, z);
            const double c = cond[b] * cfg_.time_scale;
            for (std::size_t i = 0; i < half; ++i) {
                const double f = std::exp(-std::log(10000.0) * double(i) / double(half));
                emb_[b * E + i] = z[D + i] = static_cast<float>(std::sin(c * f));
                emb_[b * E + half + i] = z[D + half + i] = static_cast<float>(std::cos(c * f));
            }
        }
        h_.resize((L + 1) * B * H);
        a_.resize((L + 1) * B * H);
        u_.resize(L * B * H);
        c_.resize(L * B * H);
        detail::mlp_linear(pack_, z0_.data(), B, Z, p(in_w_), p(in_b_), H, h_.data(), nullptr);
        for (std::size_t k = 0; k < L; ++k) {
            float* h = h_.data() + k * B * H;
            float* a = a_.data() + k * B * H;
            float* u = u_.data() + k * B * H;
            float* c = c_.data() + k * B * H;
            float* hn = h_.data() + (k + 1) * B * H;
            detail::silu(h, a, B * H);
            detail::mlp_linear(pack_, a, B, H, p(blk_[k].w1), p(blk_[k].b1), H, u, nullptr);
            detail::mlp_linear(pack_, emb_.data(), B, E, p(blk_[k].wt), nullptr, H, u, u);
            detail::silu(u, c, B * H);
            detail::mlp_linear(pack_, c, B, H, p(blk_[k].w2), p(blk_[k].b2), H, hn, h);  // + residual h
        }
        float* hl = h_.data() + L * B * H;
        float* al = a_.data() + L * B * H;
        detail::silu(hl, al, B * H);
        detail::mlp_linear(pack_, al, B, H, p(out_w_), p(out_b_), D, out, nullptr);
    }

    // Back-propagates ∂L/∂y (B×D, the batch of the last forward) into gradients() (accumulating) and,
    // when grad_x is non-null, writes ∂L/∂x (B×D).
    void backward(const float* grad_out, float* grad_x = nullptr) {
        const std::size_t D = cfg_.data_dim, H = cfg_.hidden, E = cfg_.time_embed, L = cfg_.blocks, B = B_;
        if (h_.empty()) detail::fail("mlp_denoiser::backward", "call forward before backward");
        const std::size_t Z = D + E;
        dh_.resize(B * H);
        tmp_.resize(B * H);
        du_.resize(B * H);
        const float* al = a_.data() + L * B * H;
        const float* hl = h_.data() + L * B * H;
        detail::mlp_linear_dw(pack_, dyt_, grad_out, B, D, al, H, g(out_w_), g(out_b_));
        detail::mlp_linear_dx(pack_, grad_out, B, D, p(out_w_), H, dh_.data(), false);
        detail::scale_by_silu_grad(hl, dh_.data(), B * H);
        for (std::size_t kk = L; kk-- > 0;) {
            const float* h = h_.data() + kk * B * H;
            const float* a = a_.data() + kk * B * H;
            const float* u = u_.data() + kk * B * H;
            const float* c = c_.data() + kk * B * H;
            const auto& bl = blk_[kk];
            detail::mlp_linear_dw(pack_, dyt_, dh_.data(), B, H, c, H, g(bl.w2), g(bl.b2));
            detail::mlp_linear_dx(pack_, dh_.data(), B, H, p(bl.w2), H, du_.data(), false);
            detail::scale_by_silu_grad(u, du_.data(), B * H);
            detail::mlp_linear_dw(pack_, dyt_, du_.data(), B, H, a, H, g(bl.w1), g(bl.b1));
            detail::mlp_linear_dw(pack_, dyt_, du_.data(), B, H, emb_.data(), E, g(bl.wt), nullptr);
            detail::mlp_linear_dx(pack_, du_.data(), B, H, p(bl.w1), H, tmp_.data(), false);
            detail::scale_by_silu_grad(h, tmp_.data(), B * H);
            for (std::size_t i = 0; i < B * H; ++i) dh_[i] += tmp_[i];  // residual + branch
        }
        detail::mlp_linear_dw(pack_, dyt_, dh_.data(), B, H, z0_.data(), Z, g(in_w_), g(in_b_));
        if (grad_x) {
            dz_.resize(B * Z);
            detail::mlp_linear_dx(pack_, dh_.data(), B, H, p(in_w_), Z, dz_.data(), false);
            for (std::size_t b = 0; b < B; ++b) std::copy(dz_.data() + b * Z, dz_.data() + b * Z + D, grad_x + b * D);
        }
    }

    // safetensors with torch Linear names and layout; the configuration goes into the metadata.
    [[nodiscard]] io::safetensors_writer to_safetensors() const {
        io::safetensors_writer w;
        w.set_metadata("format", "diffuse.mlp_denoiser");
        w.set_metadata("data_dim", std::to_string(cfg_.data_dim));
        w.set_metadata("hidden", std::to_string(cfg_.hidden));
        w.set_metadata("blocks", std::to_string(cfg_.blocks));
        w.set_metadata("time_embed", std::to_string(cfg_.time_embed));
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", cfg_.time_scale);
        w.set_metadata("time_scale", buf);
        for (const auto& prm : named_)
            w.add(prm.name, prm.shape, std::span<const float>(params_.data() + prm.offset, prm.size));
        return w;
    }
    void save(const std::string& path) const { to_safetensors().write(path); }

    [[nodiscard]] static mlp_denoiser from_safetensors(const io::safetensors_file& st) {
        constexpr std::string_view where = "mlp_denoiser::load";
        const auto& md = st.metadata();
        auto get = [&](const std::string& k) -> const std::string& {
            const auto it = md.find(k);
            if (it == md.end()) detail::fail(where, "metadata entry \"" + k + "\" is missing");
            return it->second;
        };
        if (get("format") != "diffuse.mlp_denoiser")
            detail::fail(where, "metadata format is \"" + get("format") + "\", not diffuse.mlp_denoiser");
        auto to_size = [&](const std::string& k) {
            const std::string& s = get(k);
            std::size_t v = 0;
            const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
            if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || s.empty())
                detail::fail(where, "metadata " + k + " = \"" + s + "\" is not a non-negative integer");
            return v;
        };
        mlp_config cfg;
        cfg.data_dim = to_size("data_dim");
        cfg.hidden = to_size("hidden");
        cfg.blocks = to_size("blocks");
        cfg.time_embed = to_size("time_embed");
        {
            const std::string& s = get("time_scale");
            double v = 0;
            const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
            if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || s.empty())
                detail::fail(where, "metadata time_scale = \"" + s + "\" is not a number");
            cfg.time_scale = v;
        }
        cfg.validate(where);
        mlp_denoiser m(cfg, 0);
        if (st.entries().size() != m.named_.size())
            detail::fail(where, "the file holds " + std::to_string(st.entries().size()) + " tensors but the model has " +
                                    std::to_string(m.named_.size()));
        for (const auto& prm : m.named_) {
            const auto* e = st.find(prm.name);
            if (!e) detail::fail(where, "tensor \"" + prm.name + "\" is missing");
            if (e->shape != prm.shape) {
                auto shp = [](const std::vector<std::uint64_t>& s) {
                    std::string r = "[";
                    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
                    return r + "]";
                };
                detail::fail(where, "tensor \"" + prm.name + "\" has shape " + shp(e->shape) + " but the model needs " +
                                        shp(prm.shape));
            }
            const auto v = st.as<float>(prm.name);
            for (std::size_t i = 0; i < v.size(); ++i)
                if (!std::isfinite(v[i]))
                    detail::fail(where, "tensor \"" + prm.name + "\" holds a non-finite value at index " + std::to_string(i));
            std::copy(v.begin(), v.end(), m.params_.begin() + std::ptrdiff_t(prm.offset));
        }
        return m;
    }
    [[nodiscard]] static mlp_denoiser load(const std::string& path) { return from_safetensors(io::read_safetensors(path)); }

private:
    struct block_offsets {
        std::size_t w1, b1, wt, w2, b2;
    };

    std::size_t add(const std::string& name, std::vector<std::uint64_t> shape) {
        std::size_t n = 1;
        for (auto s : shape) n *= std::size_t(s);
        named_.push_back({name, std::move(shape), total_, n});
        total_ += n;
        return named_.back().offset;
    }

    void layout() {
        const std::size_t D = cfg_.data_dim, H = cfg_.hidden, E = cfg_.time_embed;
        in_w_ = add("input.weight", {H, D + E});
        in_b_ = add("input.bias", {H});
        for (std::size_t k = 0; k < cfg_.blocks; ++k) {
            const std::string pre = "blocks." + std::to_string(k) + ".";
            block_offsets b{};
            b.w1 = add(pre + "fc1.weight", {H, H});
            b.b1 = add(pre + "fc1.bias", {H});
            b.wt = add(pre + "time.weight", {H, E});
            b.w2 = add(pre + "fc2.weight", {H, H});
            b.b2 = add(pre + "fc2.bias", {H});
            blk_.push_back(b);
        }
        out_w_ = add("output.weight", {D, H});
        out_b_ = add("output.bias", {D});
        params_.assign(total_, 0.0f);
        grads_.assign(total_, 0.0f);
    }

    // torch.nn.Linear's default initialisation U(−1/√in, 1/√in); the residual branch outputs start
    // small (×0.1) so that the network begins close to an identity-plus-linear map.
    void init(std::uint64_t seed) {
        host_rng rng(seed);
        for (const auto& prm : named_) {
            const bool is_weight = prm.shape.size() == 2;
            const double fan_in = is_weight ? double(prm.shape[1]) : double(fan_in_of_bias(prm));
            double bound = 1.0 / std::sqrt(fan_in);
            if (prm.name.find("fc2") != std::string::npos || prm.name.find("output") != std::string::npos) bound *= 0.1;
            for (std::size_t i = 0; i < prm.size; ++i)
                params_[prm.offset + i] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
        }
    }
    [[nodiscard]] std::size_t fan_in_of_bias(const parameter& bias) const {
        for (std::size_t i = 0; i < named_.size(); ++i)
            if (&named_[i] == &bias && i > 0) return std::size_t(named_[i - 1].shape[1]);
        return 1;
    }

    void check_io(std::size_t xb, std::size_t xd, std::size_t ob, std::size_t od, std::size_t nc,
                  const char* where) const {
        if (xd != cfg_.data_dim)
            detail::fail(where, "x has " + std::to_string(xd) + " elements per sample but the model has data_dim " +
                                    std::to_string(cfg_.data_dim));
        if (ob != xb || od != xd)
            detail::fail(where, "out has shape " + std::to_string(ob) + "x" + std::to_string(od) + " but x has " +
                                    std::to_string(xb) + "x" + std::to_string(xd));
        if (nc != xb)
            detail::fail(where, "cond has " + std::to_string(nc) + " values but the batch has " + std::to_string(xb));
    }

    float* p(std::size_t off) noexcept { return params_.data() + off; }
    float* g(std::size_t off) noexcept { return grads_.data() + off; }

    mlp_config cfg_;
    std::vector<parameter> named_;
    std::size_t total_ = 0, in_w_ = 0, in_b_ = 0, out_w_ = 0, out_b_ = 0;
    std::vector<block_offsets> blk_;
    std::vector<float> params_, grads_;
    std::size_t B_ = 0;
    std::vector<float> z0_, emb_, h_, a_, u_, c_, dh_, du_, tmp_, dz_, xin_, yout_, dyt_;
    nn::packed_matrix pack_;  // scratch for the layer products
};

// Adam (Kingma & Ba 2015, Algorithm 1) with torch.optim.Adam's update:
//   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  θ ← θ − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
// weight_decay > 0 applies decoupled decay θ ← θ(1 − lr·wd) first (AdamW).
class adam {
public:
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;

    adam() = default;
    explicit adam(double learning_rate, double b1 = 0.9, double b2 = 0.999, double epsilon = 1e-8, double wd = 0.0)
        : lr(learning_rate), beta1(b1), beta2(b2), eps(epsilon), weight_decay(wd) {}

    [[nodiscard]] std::uint64_t steps() const noexcept { return t_; }

    void step(std::span<float> params, std::span<const float> grads) {
        constexpr std::string_view where = "adam::step";
        detail::require(std::isfinite(lr) && lr >= 0.0, where, "lr", lr, "[0, inf)");
        detail::require(beta1 >= 0.0 && beta1 < 1.0, where, "beta1", beta1, "[0, 1)");
        detail::require(beta2 >= 0.0 && beta2 < 1.0, where, "beta2", beta2, "[0, 1)");
        detail::require(eps > 0.0, where, "eps", eps, "(0, inf)");
        detail::require(weight_decay >= 0.0, where, "weight_decay", weight_decay, "[0, inf)");
        if (grads.size() != params.size())
            detail::fail(where, "grads has " + std::to_string(grads.size()) + " values but params has " +
                                    std::to_string(params.size()));
        if (m_.empty()) m_.assign(params.size(), 0.0f), v_.assign(params.size(), 0.0f);
        if (m_.size() != params.size())
            detail::fail(where, "params has " + std::to_string(params.size()) + " values but this optimizer was used with " +
                                    std::to_string(m_.size()));
        ++t_;
        const float b1 = float(beta1), b2 = float(beta2);
        const float c1 = float(1.0 / (1.0 - std::pow(beta1, double(t_))));
        const float c2 = float(1.0 / (1.0 - std::pow(beta2, double(t_))));
        const float step = float(lr), e = float(eps), decay = float(1.0 - lr * weight_decay);
        for (std::size_t i = 0; i < params.size(); ++i) {
            const float gi = grads[i];
            m_[i] = b1 * m_[i] + (1.0f - b1) * gi;
            v_[i] = b2 * v_[i] + (1.0f - b2) * gi * gi;
            params[i] = params[i] * decay - step * (m_[i] * c1) / (std::sqrt(v_[i] * c2) + e);
        }
    }

private:
    std::uint64_t t_ = 0;
    std::vector<float> m_, v_;
};

// Scales grads so that their global L2 norm is at most max_norm; returns the norm before clipping.
inline double clip_grad_norm(std::span<float> grads, double max_norm) {
    detail::require(max_norm > 0.0, "clip_grad_norm", "max_norm", max_norm, "(0, inf)");
    double s = 0.0;
    for (float g : grads) s += double(g) * double(g);
    const double n = std::sqrt(s);
    if (n > max_norm) {
        const float c = float(max_norm / (n + 1e-6));
        for (auto& g : grads) g *= c;
    }
    return n;
}

}  // namespace diffuse
