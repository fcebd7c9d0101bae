#pragma once
// Layout changes at the edges of the networks: the library's samplers hold images as NCHW (PyTorch's
// layout, what diffusers pipelines and .npy files use), the convolution kernels work on NHWC.
//   to_nhwc:        y[b, i, j, c] = x[b, c, i, j]   (any floating type in, float out)
//   from_nhwc:      y[b, c, i, j] = x[b, i, j, c]
//   concat_channels: y[p, 0:ca] = a[p, :], y[p, ca:ca+cb] = b[p, :]   (torch.cat(dim=1) in NHWC)

#include <cstddef>
#include <cstring>

namespace diffuse::nn {

template <class T>
void to_nhwc(const T* x, std::size_t batch, std::size_t c, std::size_t hw, float* out) {
    for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t k = 0; k < c; ++k) {
            const T* src = x + (b * c + k) * hw;
            float* dst = out + b * hw * c + k;
            for (std::size_t p = 0; p < hw; ++p) dst[p * c] = static_cast<float>(src[p]);
        }
}

template <class T>
void from_nhwc(const float* x, std::size_t batch, std::size_t c, std::size_t hw, T* out) {
    for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t k = 0; k < c; ++k) {
            const float* src = x + b * hw * c + k;
            T* dst = out + (b * c + k) * hw;
            for (std::size_t p = 0; p < hw; ++p) dst[p] = static_cast<T>(src[p * c]);
        }
}

// a: [pixels, ca], b: [pixels, cb] -> out: [pixels, ca + cb].
inline void concat_channels(const float* a, std::size_t ca, const float* b, std::size_t cb, std::size_t pixels, float* out) {
    for (std::size_t p = 0; p < pixels; ++p) {
        std::memcpy(out + p * (ca + cb), a + p * ca, ca * sizeof(float));
        std::memcpy(out + p * (ca + cb) + ca, b + p * cb, cb * sizeof(float));
    }
}

}  // namespace diffuse::nn
