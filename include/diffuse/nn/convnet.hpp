#pragma once
// A small convolutional classifier for sample-quality metrics (class fidelity, Fréchet distance of its
// penultimate features), built from nn/'s layers and loaded from a PyTorch state dict in safetensors:
//
//   for i = 1..S:   x ← avg_pool2x(ReLU(conv_i(x)))          conv_i: 3×3, padding 1 ("conv{i}.weight/bias")
//   x ← flatten(x) in PyTorch's NCHW order (C, H, W)
//   for j = 1..F−1: x ← ReLU(fc_j(x))                        fc_j: Linear ("fc{j}.weight/bias")
//   features = x (the last hidden layer),  logits = fc_F(x)
//
//   auto clf = diffuse::nn::convnet::load("classifier.safetensors");
//   clf.forward(x /* [batch, C, H, W] */, batch, h, w, features /* [batch, feature_dim()] */, logits /* [batch, classes()] */);

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/safetensors.hpp"
#include "diffuse/nn/activation.hpp"
#include "diffuse/nn/conv2d.hpp"
#include "diffuse/nn/layout.hpp"
#include "diffuse/nn/linear.hpp"
#include "diffuse/nn/resample.hpp"

namespace diffuse::nn {

class convnet {
public:
    // Reads conv1, conv2, … and fc1, fc2, … (consecutive numbers, at least one conv and two fc layers) from a
    // safetensors file; any other tensor, a gap in the numbering or a shape that does not chain is an error.
    [[nodiscard]] static convnet load(const std::string& path) {
        constexpr std::string_view where = "convnet::load";
        const auto st = io::read_safetensors(path);
        convnet net;
        std::size_t used = 0;
        auto tensor = [&](const std::string& name, std::size_t dims) -> const io::safetensors_entry* {
            const auto* e = st.find(name);
            if (e && e->shape.size() != dims)
                diffuse::detail::fail(where, path + ": tensor " + name + " has " + std::to_string(e->shape.size()) +
                                                 " dimensions, expected " + std::to_string(dims));
            return e;
        };
        auto values = [&](const io::safetensors_entry& e) {
            std::vector<float> v(std::size_t(e.numel()));
            st.read_into(e, v);
            ++used;
            return v;
        };
        for (std::size_t i = 1;; ++i) {
            const auto* w = tensor("conv" + std::to_string(i) + ".weight", 4);
            const auto* b = tensor("conv" + std::to_string(i) + ".bias", 1);
            if (!w) break;
            if (!b) diffuse::detail::fail(where, path + ": conv" + std::to_string(i) + ".bias is missing");
            const std::size_t out = std::size_t(w->shape[0]), in = std::size_t(w->shape[1]);
            if (w->shape[2] != 3 || w->shape[3] != 3)
                diffuse::detail::fail(where, path + ": conv" + std::to_string(i) + " is not a 3x3 convolution");
            if (!net.convs_.empty() && in != net.convs_.back().out_channels())
                diffuse::detail::fail(where, path + ": conv" + std::to_string(i) + " takes " + std::to_string(in) +
                                                 " channels, the previous layer gives " +
                                                 std::to_string(net.convs_.back().out_channels()));
            const auto wv = values(*w), bv = values(*b);
            net.convs_.emplace_back(in, out, 3, 1, padding2d{1, 1, 1, 1}, wv, bv);
        }
        for (std::size_t j = 1;; ++j) {
            const auto* w = tensor("fc" + std::to_string(j) + ".weight", 2);
            const auto* b = tensor("fc" + std::to_string(j) + ".bias", 1);
            if (!w) break;
            if (!b) diffuse::detail::fail(where, path + ": fc" + std::to_string(j) + ".bias is missing");
            const std::size_t out = std::size_t(w->shape[0]), in = std::size_t(w->shape[1]);
            if (!net.fcs_.empty() && in != net.fcs_.back().out_features())
                diffuse::detail::fail(where, path + ": fc" + std::to_string(j) + " takes " + std::to_string(in) +
                                                 " features, the previous layer gives " +
                                                 std::to_string(net.fcs_.back().out_features()));
            const auto wv = values(*w), bv = values(*b);
            net.fcs_.emplace_back(in, out, wv, bv);
        }
        if (net.convs_.empty() || net.fcs_.size() < 2)
            diffuse::detail::fail(where, path + ": expected conv1.. and at least fc1, fc2 (a classifier with a feature layer)");
        if (used != st.entries().size())
            diffuse::detail::fail(where, path + ": holds " + std::to_string(st.entries().size() - used) +
                                             " tensors that are not conv{i} / fc{j} weights and biases");
        return net;
    }

    [[nodiscard]] std::size_t in_channels() const { return convs_.front().in_channels(); }
    [[nodiscard]] std::size_t feature_dim() const { return fcs_[fcs_.size() - 2].out_features(); }
    [[nodiscard]] std::size_t classes() const { return fcs_.back().out_features(); }

    // x: [batch, C, h, w] (NCHW) -> features [batch, feature_dim()] and logits [batch, classes()]; either
    // output may be null. h and w must halve cleanly S times and flatten to fc1's input width.
    void forward(const float* x, std::size_t batch, std::size_t h, std::size_t w, float* features, float* logits) {
        constexpr std::string_view where = "convnet::forward";
        std::size_t hh = h, ww = w;
        for (std::size_t i = 0; i < convs_.size(); ++i) {
            if (hh < 2 || ww < 2) diffuse::detail::fail(where, "the input is too small for the pooling stages");
            hh /= 2, ww /= 2;
        }
        if (hh * ww * convs_.back().out_channels() != fcs_.front().in_features())
            diffuse::detail::fail(where, "a " + std::to_string(h) + " x " + std::to_string(w) + " input flattens to " +
                                             std::to_string(hh * ww * convs_.back().out_channels()) + " values, fc1 takes " +
                                             std::to_string(fcs_.front().in_features()));
        a_.resize(std::max(a_.size(), batch * h * w * std::max(in_channels(), max_channels())));
        b_.resize(a_.size());
        to_nhwc(x, batch, in_channels(), h * w, a_.data());
        hh = h, ww = w;
        for (const auto& c : convs_) {
            scratch_.resize(std::max(scratch_.size(), c.scratch_floats(batch, hh, ww)));
            c.forward(a_.data(), batch, hh, ww, b_.data(), scratch_.data());
            activate(activation::relu, b_.data(), batch * hh * ww * c.out_channels());
            avg_pool2x(b_.data(), batch, hh, ww, c.out_channels(), a_.data());
            hh /= 2, ww /= 2;
        }
        // flatten in NCHW order, then the fully connected layers
        from_nhwc(a_.data(), batch, convs_.back().out_channels(), hh * ww, b_.data());
        float* cur = b_.data();
        float* next = a_.data();
        for (std::size_t j = 0; j + 1 < fcs_.size(); ++j) {
            fcs_[j].forward(cur, batch, next);
            activate(activation::relu, next, batch * fcs_[j].out_features());
            std::swap(cur, next);
        }
        if (features) std::copy_n(cur, batch * feature_dim(), features);
        if (logits) fcs_.back().forward(cur, batch, logits);
    }

private:
    [[nodiscard]] std::size_t max_channels() const {
        std::size_t m = 0;
        for (const auto& c : convs_) m = std::max(m, c.out_channels());
        for (const auto& f : fcs_) m = std::max(m, f.out_features());
        return m;
    }
    std::vector<conv2d> convs_;
    std::vector<linear> fcs_;
    std::vector<float> a_, b_, scratch_;
};

}  // namespace diffuse::nn
