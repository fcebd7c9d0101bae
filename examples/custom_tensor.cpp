// Teaching diffuse a tensor type of your own: see custom_tensor.hpp for the whole adapter (one
// tensor_traits specialisation). Here the adapted type is used through diffuse::view, exactly as a
// std::vector, an Eigen::Matrix or an xt::xarray would be.
//
// Build and run: cmake --build <build> --target example_custom_tensor && <build>/examples/example_custom_tensor

#include <cstdio>

#include "custom_tensor.hpp"

int main() {
    app::image_batch images(2, 3, 4, 4);  // two RGB images of 4 x 4 pixels
    for (std::size_t y = 0; y < 4; ++y) {
        for (std::size_t x = 0; x < 4; ++x) images.at(1, 0, y, x) = 1.0f;  // image 1: red channel on
    }

    // The view sees 2 samples of 48 values, in the image's own memory (no copy).
    diffuse::tensor_view<float> v = diffuse::view(images);
    std::printf("batch = %zu, per_sample = %zu, zero-copy = %s\n", v.batch, v.per_sample,
                v.data == images.pixels.data() ? "yes" : "no");

    // Each sample is a contiguous block; a const image_batch gives a view of const floats.
    const app::image_batch& readonly = images;
    diffuse::tensor_view<const float> cv = diffuse::view(readonly);
    for (std::size_t b = 0; b < cv.batch; ++b) {
        double sum = 0.0;
        for (std::size_t i = 0; i < cv.per_sample; ++i) sum += cv.sample(b)[i];
        std::printf("image %zu: mean = %.4f\n", b, sum / static_cast<double>(cv.per_sample));
    }
    return 0;
}
