#pragma once
// A batch of images as one RGB picture: image b of an NCHW batch [batch, channels, h, w] with values in
// [lo, hi] goes to cell (b / columns, b % columns) of a grid with `gap` pixels of grey between cells.
// One channel is shown as grey, three as RGB (others: the first channel as grey). Values are mapped
// linearly to 0..255 and clamped.
//
//   auto g = diffuse::io::image_grid(x.data(), 16, 1, 32, 32, /*columns=*/4);   // then io::write_png(path, g.width, g.height, g.rgb)

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse::io {

struct rgb_image {
    std::size_t width = 0, height = 0;
    std::vector<unsigned char> rgb;  // width·height·3, rows top to bottom
};

template <class T>
[[nodiscard]] rgb_image image_grid(const T* x, std::size_t batch, std::size_t channels, std::size_t h, std::size_t w,
                                   std::size_t columns = 0, double lo = -1.0, double hi = 1.0, std::size_t gap = 2) {
    constexpr std::string_view where = "image_grid";
    diffuse::detail::require(batch >= 1 && channels >= 1 && h >= 1 && w >= 1, where, "batch x channels x h x w",
                             batch * channels * h * w, ">= 1 each");
    diffuse::detail::require(hi > lo, where, "hi", hi, "> lo");
    if (columns == 0) columns = std::size_t(std::ceil(std::sqrt(double(batch))));
    const std::size_t rows = (batch + columns - 1) / columns;
    rgb_image g;
    g.width = columns * w + (columns + 1) * gap;
    g.height = rows * h + (rows + 1) * gap;
    if (g.width > 100000 || g.height > 100000) diffuse::detail::fail(where, "the grid would exceed 100000 pixels per side");
    g.rgb.assign(g.width * g.height * 3, 128);
    auto byte = [&](double v) {
        const double u = std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
        return static_cast<unsigned char>(std::lround(u * 255.0));
    };
    for (std::size_t b = 0; b < batch; ++b) {
        const std::size_t x0 = gap + (b % columns) * (w + gap), y0 = gap + (b / columns) * (h + gap);
        const T* img = x + b * channels * h * w;
        for (std::size_t i = 0; i < h; ++i)
            for (std::size_t j = 0; j < w; ++j) {
                unsigned char* px = g.rgb.data() + ((y0 + i) * g.width + x0 + j) * 3;
                for (std::size_t k = 0; k < 3; ++k) {
                    const std::size_t c = channels == 3 ? k : 0;
                    px[k] = byte(double(img[(c * h + i) * w + j]));
                }
            }
    }
    return g;
}

}  // namespace diffuse::io
