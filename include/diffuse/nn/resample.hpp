#pragma once
// Resolution changes of the U-Net on NHWC activations [batch, h, w, c]:
//   upsample_nearest2x:  y[b, i, j, c] = x[b, ⌊i/2⌋, ⌊j/2⌋, c]               (F.interpolate, nearest, ×2)
//   avg_pool2x:          y[b, i, j, c] = ¼ Σ_{di,dj ∈ {0,1}} x[b, 2i+di, 2j+dj, c]   (F.avg_pool2d(2, 2); odd edges dropped)
// The strided 3×3 convolution that also halves the resolution is nn/conv2d.hpp's.

#include <cstddef>
#include <cstring>


namespace diffuse::nn {

// out: [batch, 2h, 2w, c].
inline void upsample_nearest2x(const float* x, std::size_t batch, std::size_t h, std::size_t w, std::size_t c, float* out) {
    for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t i = 0; i < 2 * h; ++i) {
            const float* src = x + ((b * h + i / 2) * w) * c;
            float* dst = out + ((b * 2 * h + i) * 2 * w) * c;
            for (std::size_t j = 0; j < w; ++j) {
                std::memcpy(dst + (2 * j) * c, src + j * c, c * sizeof(float));
                std::memcpy(dst + (2 * j + 1) * c, src + j * c, c * sizeof(float));
            }
        }
}

// out: [batch, h/2, w/2, c] (integer division, as PyTorch without ceil_mode).
inline void avg_pool2x(const float* x, std::size_t batch, std::size_t h, std::size_t w, std::size_t c, float* out) {
    const std::size_t ho = h / 2, wo = w / 2;
    for (std::size_t b = 0; b < batch; ++b)
        for (std::size_t i = 0; i < ho; ++i)
            for (std::size_t j = 0; j < wo; ++j) {
                const float* p00 = x + ((b * h + 2 * i) * w + 2 * j) * c;
                const float* p01 = p00 + c;
                const float* p10 = p00 + w * c;
                const float* p11 = p10 + c;
                float* dst = out + ((b * ho + i) * wo + j) * c;
                for (std::size_t k = 0; k < c; ++k) dst[k] = (((p00[k] + p01[k]) + p10[k]) + p11[k]) / 4.0f;
            }
}

}  // namespace diffuse::nn
