#pragma once
// A fully connected layer, torch.nn.Linear: y = x·Wᵀ + b for every row of x, on the GEMM kernel of
// nn/gemm.hpp (Wᵀ packed once). The U-Net uses it for the time embedding and the attention projections.
//
//   diffuse::nn::linear fc(in, out, weight /* [out, in] */, bias /* [out] or empty */);
//   fc.forward(x /* [rows, in] */, rows, y /* [rows, out] */);

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/nn/gemm.hpp"

namespace diffuse::nn {

class linear {
public:
    linear() = default;
    linear(std::size_t in_features, std::size_t out_features, std::span<const float> weight, std::span<const float> bias)
        : in_(in_features), out_(out_features), bias_(bias.begin(), bias.end()) {
        if (in_features == 0 || out_features == 0 || weight.size() / in_features != out_features ||
            weight.size() % in_features != 0)
            diffuse::detail::fail("linear", "weight has " + std::to_string(weight.size()) + " values, not out × in = " +
                                                std::to_string(out_features) + " × " + std::to_string(in_features));
        if (!bias.empty() && bias.size() != out_features)
            diffuse::detail::fail("linear", "bias has " + std::to_string(bias.size()) + " values, not " + std::to_string(out_features));
        // B = Wᵀ (in × out): element (k, n) = W[n, k].
        w_.pack(weight.data(), in_features, out_features, 1, std::ptrdiff_t(in_features));
    }

    [[nodiscard]] std::size_t in_features() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_features() const noexcept { return out_; }
    // Wᵀ row-major (in × out) and the bias (empty: none).
    [[nodiscard]] std::vector<float> weight_matrix() const { return w_.unpacked(); }
    [[nodiscard]] std::span<const float> bias() const noexcept { return bias_; }

    // y[r, :] = x[r, :]·Wᵀ + b (+ residual[r, :], which may be y) for r < rows; row strides in_ and out_.
    void forward(const float* x, std::size_t rows, float* y, const float* residual = nullptr) const {
        matmul_epilogue e;
        e.bias = bias_.empty() ? nullptr : bias_.data();
        e.residual = residual;
        matmul(rows, x, in_, w_, y, out_, e);
    }

private:
    std::size_t in_ = 0, out_ = 0;
    packed_matrix w_;
    std::vector<float> bias_;
};

}  // namespace diffuse::nn
