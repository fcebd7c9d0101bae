#pragma once
// A libtorch module — or any callable on tensors — as a diffuse network (samplers/model.hpp), part of the
// diffuse::torch component:
//
//   auto module = torch::jit::load("eps_net.pt");                       // forward(x [B, …], t [B]) -> [B, …]
//   auto net = diffuse::torch_network(diffuse::torch_module_call{module}, {3, 32, 32});
//   auto m = diffuse::model(net, diffuse::prediction::epsilon, diffuse::discrete_time(alphas_cumprod));
//   diffuse::sample_dpmpp_2m(m, x, grid);                                // any sampler
//
// Each call hands the module the batch as a tensor over the sampler's memory (torch::from_blob, no copy) of
// shape [B, sample_shape…] and the network times as a [B] tensor of the same dtype, under
// torch::NoGradGuard; the module's output must have B × per_sample values of the same dtype (any layout: a
// non-contiguous result is made contiguous) and is copied into the sampler's output. A wrong shape or dtype
// is a diffuse::error naming it. The unconditional mask and first_sample of model_cond are not passed on: a
// module that needs them is wrapped in a callable of the three-argument form
// fn(x, t, const model_cond&) (see torch_network's operator()).

#include <torch/script.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "diffuse/adapt/torch.hpp"
#include "diffuse/core/error.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/samplers/model.hpp"

namespace diffuse {

// forward(x, t) of a TorchScript module.
struct torch_module_call {
    torch::jit::script::Module module;
    at::Tensor operator()(const at::Tensor& x, const at::Tensor& t) { return module.forward({x, t}).toTensor(); }
};

template <class Fn>
class torch_network {
public:
    torch_network(Fn fn, std::vector<std::int64_t> sample_shape) : fn_(std::move(fn)), sample_shape_(std::move(sample_shape)) {
        std::int64_t n = 1;
        for (auto d : sample_shape_) {
            detail::require(d >= 1 && d <= (std::int64_t{1} << 31), "torch_network", "sample_shape entry", d, "[1, 2^31]");
            n *= d;
            detail::require(n <= (std::int64_t{1} << 40), "torch_network", "values per sample", n, "<= 2^40");
        }
        per_sample_ = std::size_t(n);
    }

    [[nodiscard]] std::size_t per_sample() const noexcept { return per_sample_; }
    [[nodiscard]] Fn& callable() noexcept { return fn_; }

    template <class T>
    void operator()(tensor_view<const T> x, const model_cond& c, tensor_view<T> out) {
        constexpr const char* where = "torch_network";
        if (x.per_sample != per_sample_)
            detail::fail(where, "x has " + std::to_string(x.per_sample) + " values per sample, the module takes " +
                                    std::to_string(per_sample_));
        if (out.batch != x.batch || out.per_sample != per_sample_)
            detail::fail(where, "out must hold " + std::to_string(x.batch) + " samples of " + std::to_string(per_sample_) + " values");
        if (c.t.size() != x.batch) detail::fail(where, "cond.t needs one time per sample");
        torch::NoGradGuard no_grad;
        shape_.assign(1, std::int64_t(x.batch));
        shape_.insert(shape_.end(), sample_shape_.begin(), sample_shape_.end());
        const auto dtype = detail::torch_dtype<T>();
        // the sampler's memory, not copied; the module must not write into its input
        const at::Tensor xt = torch::from_blob(const_cast<T*>(x.data), shape_, torch::TensorOptions().dtype(dtype));
        const at::Tensor tt = torch::from_blob(const_cast<double*>(c.t.data()), {std::int64_t(x.batch)},
                                               torch::TensorOptions().dtype(torch::kFloat64))
                                  .to(dtype);
        at::Tensor y;
        if constexpr (std::is_invocable_v<Fn&, const at::Tensor&, const at::Tensor&, const model_cond&>) y = fn_(xt, tt, c);
        else y = fn_(xt, tt);
        if (!y.defined()) detail::fail(where, "the module returned an undefined tensor");
        if (!y.device().is_cpu()) y = y.to(torch::kCPU);
        if (y.scalar_type() != dtype)
            detail::fail(where, std::string("the module returned ") + c10::toString(y.scalar_type()) + ", not " + c10::toString(dtype));
        if (std::size_t(y.numel()) != out.size() || y.dim() < 1 || y.size(0) != std::int64_t(x.batch))
            detail::fail(where, "the module returned " + std::to_string(y.numel()) + " values of shape " + shape_text(y) +
                                    "; expected " + std::to_string(x.batch) + " samples of " + std::to_string(per_sample_));
        y = y.contiguous();
        std::memcpy(out.data, y.data_ptr<T>(), out.size() * sizeof(T));
    }

private:
    static std::string shape_text(const at::Tensor& y) {
        std::string s = "[";
        for (std::int64_t i = 0; i < y.dim(); ++i) s += (i ? ", " : "") + std::to_string(y.size(i));
        return s + "]";
    }

    Fn fn_;
    std::vector<std::int64_t> sample_shape_;
    std::size_t per_sample_ = 0;
    std::vector<std::int64_t> shape_;
};

}  // namespace diffuse
