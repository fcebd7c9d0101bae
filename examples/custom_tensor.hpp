#pragma once
// A user-defined tensor type taught to diffuse (built by examples/custom_tensor.cpp and used by
// tests/adapt/test_adapters.cpp).
//
// diffuse never sees your container: it sees a flat view (data pointer, batch, elements per sample).
// To adapt a type you specialise diffuse::tensor_traits for it — in namespace diffuse, next to your
// type, without touching the type itself. The view requires the storage to be contiguous and sample
// major: sample b occupies elements [b * per_sample, (b + 1) * per_sample).

#include <cstddef>
#include <stdexcept>
#include <vector>

#include "diffuse/core/tensor.hpp"

namespace app {

// A batch of n images, each of c channels of h x w pixels, stored NCHW in one vector.
struct image_batch {
    std::vector<float> pixels;
    std::size_t n = 0, c = 0, h = 0, w = 0;

    image_batch() = default;
    image_batch(std::size_t n_, std::size_t c_, std::size_t h_, std::size_t w_)
        : pixels(n_ * c_ * h_ * w_), n(n_), c(c_), h(h_), w(w_) {}

    float& at(std::size_t i, std::size_t ch, std::size_t y, std::size_t x) {
        return pixels[((i * c + ch) * h + y) * w + x];
    }
};

}  // namespace app

template <>
struct diffuse::tensor_traits<app::image_batch> {
    using value_type = float;                                         // float or double
    static constexpr diffuse::memory_space space = diffuse::memory_space::host;

    // Contiguous storage. The fields are public, so check they still agree before handing memory out.
    static float* data(app::image_batch& t) {
        if (t.pixels.size() != t.n * t.c * t.h * t.w) {
            throw std::invalid_argument("image_batch: pixels.size() does not match n * c * h * w");
        }
        return t.pixels.data();
    }
    static std::size_t batch(const app::image_batch& t) { return t.n; }                    // samples
    static std::size_t per_sample(const app::image_batch& t) { return t.c * t.h * t.w; }  // one image
};
