#pragma once
// A convolution engine the device U-Net hands its convolutions to (cuda/unet2d.hpp's set_conv_engine): an
// implementation outside the network — cuDNN through its frontend (cuda/cudnn_conv.hpp, the optional component
// diffuse::cudnn, whose header costs minutes of compile time and so lives in a translation unit of its own) or
// the user's — behind a small virtual interface, so that the network's header needs none of it.
//
//   auto engine = std::make_shared<diffuse::nn::cudnn_conv_engine>();   // in the one .cu that includes cudnn_conv.hpp
//   net.set_conv_engine(engine);                                         // the network's k×k / strided convolutions
//
// The contract: one convolution, NHWC activations and KRSC weights (the layouts cuDNN runs fastest on tensor
// cores), no bias, no dilation, one group —
//   y[b, oy, ox, co] = Σ_{ky, kx, ci} w[co, ky, kx, ci] · x[b, oy·s + ky − top, ox·s + kx − left, ci]
// with x zero outside the image (zero padding: top/left before, bottom/right after the image, possibly unequal,
// as diffusers' Downsample2D pads (0, 1, 0, 1)); Ho = (h + top + bottom − k)/s + 1, Wo likewise. x and w are in
// the storage of the problem's precision (cuda/reduced_precision.hpp: float for fp32 and tf32, bfloat16 / IEEE
// half bits for bf16 / fp16), y is float and every product is accumulated in float. fp32 means float products
// (an engine must not run it on TF32 tensor cores); tf32 allows them.
// The network applies the group norm + activation prologue and the bias / time-embedding / residual / divisor
// epilogue itself around the engine's call (cuda/nn_kernels.hpp), and convolves with im2col + GEMM whatever the
// engine declines (supports() false).

#include <cstddef>
#include <string>

#include "diffuse/cuda/reduced_precision.hpp"
#include "diffuse/nn/conv2d.hpp"

namespace diffuse::nn {

struct conv_problem {
    std::size_t batch = 0, h = 0, w = 0, cin = 0, cout = 0, k = 1, stride = 1;
    padding2d pad{};
    device_precision precision = device_precision::fp32;
    [[nodiscard]] std::size_t out_h() const { return (h + pad.top + pad.bottom - k) / stride + 1; }
    [[nodiscard]] std::size_t out_w() const { return (w + pad.left + pad.right - k) / stride + 1; }
    [[nodiscard]] bool operator==(const conv_problem& o) const {
        return batch == o.batch && h == o.h && w == o.w && cin == o.cin && cout == o.cout && k == o.k &&
               stride == o.stride && pad.top == o.pad.top && pad.left == o.pad.left && pad.bottom == o.pad.bottom &&
               pad.right == o.pad.right && precision == o.precision;
    }
};

class device_conv_engine {
public:
    device_conv_engine() = default;
    device_conv_engine(const device_conv_engine&) = delete;
    device_conv_engine& operator=(const device_conv_engine&) = delete;
    virtual ~device_conv_engine() = default;

    // Whether convolve(p, …) will run: an engine prepares (and keeps) what it needs for p here — cuDNN builds its
    // plan — and answers false for a problem it cannot run. While a CUDA graph is being captured on the calling
    // thread an engine must answer from what it prepared before (no plan is built inside a capture): the
    // network's first, uncaptured forward of a shape prepares every problem of that shape.
    [[nodiscard]] virtual bool supports(const conv_problem& p) = 0;
    // y = conv(x, w) as above, on the calling thread's current stream (diffuse::detail::current_stream(): the
    // capture's stream while capture_graph records); x, w, y device pointers. Precondition: supports(p). A
    // failure is a diffuse::error.
    virtual void convolve(const conv_problem& p, const void* x, const void* w, float* y) = 0;
    [[nodiscard]] virtual std::string name() const = 0;
};

// How a network's convolutions ran since it was made (or reset): by its engine, or by im2col + GEMM because the
// engine declined them (1×1 stride-1 unpadded convolutions without a prologue are one GEMM and never offered).
struct conv_engine_use {
    std::size_t engine = 0, declined = 0;
};

}  // namespace diffuse::nn
