#pragma once
// A minimal PNG writer (8-bit RGB): each row gets the PNG filter (None, Sub, Up or Paeth) with the
// smallest sum of absolute residuals, the filtered data is compressed with io/deflate.hpp (LZ77 + fixed
// Huffman codes in a zlib stream), chunks carry CRC-32 (ISO 3309), as the PNG specification
// (ISO/IEC 15948) requires. No dependency.

#include <algorithm>
#include <cstdlib>
#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"
#include "diffuse/io/deflate.hpp"
#include "diffuse/io/file.hpp"

namespace diffuse::io {

namespace detail {
[[nodiscard]] inline std::uint32_t crc32(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
inline void put32(std::vector<unsigned char>& o, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<unsigned char>(v >> s));
}
inline void chunk(std::vector<unsigned char>& o, const char* type, const std::vector<unsigned char>& data) {
    put32(o, static_cast<std::uint32_t>(data.size()));
    const std::size_t start = o.size();
    for (int i = 0; i < 4; ++i) o.push_back(static_cast<unsigned char>(type[i]));
    o.insert(o.end(), data.begin(), data.end());
    put32(o, crc32(o.data() + start, o.size() - start));
}
}  // namespace detail

// rgb: width·height·3 bytes, rows top to bottom.
[[nodiscard]] inline std::vector<unsigned char> encode_png(std::size_t width, std::size_t height,
                                                           std::span<const unsigned char> rgb) {
    diffuse::detail::require(width >= 1 && width <= 100000, "encode_png", "width", width, "[1, 100000]");
    diffuse::detail::require(height >= 1 && height <= 100000, "encode_png", "height", height, "[1, 100000]");
    if (rgb.size() != width * height * 3)
        diffuse::detail::fail("encode_png", "rgb has " + std::to_string(rgb.size()) + " bytes but " +
                                                std::to_string(width) + "x" + std::to_string(height) + " RGB needs " +
                                                std::to_string(width * height * 3));
    // Each row: a filter byte, then the row's residuals against its left (a), upper (b) and upper-left (c)
    // neighbours: None x, Sub x − a, Up x − b, Paeth x − paeth(a, b, c) (ISO/IEC 15948 §9).
    const std::size_t stride = width * 3;
    std::vector<unsigned char> raw;
    raw.reserve(height * (stride + 1));
    std::vector<unsigned char> best(stride), trial(stride);
    for (std::size_t y = 0; y < height; ++y) {
        const unsigned char* row = rgb.data() + y * stride;
        const unsigned char* up = y ? row - stride : nullptr;
        std::uint64_t best_cost = ~std::uint64_t(0);
        unsigned char best_filter = 0;
        for (unsigned char f = 0; f < 4; ++f) {
            std::uint64_t cost = 0;
            for (std::size_t i = 0; i < stride; ++i) {
                const int a = i >= 3 ? row[i - 3] : 0, b = up ? up[i] : 0, c = (up && i >= 3) ? up[i - 3] : 0;
                int pred = 0;
                if (f == 1) pred = a;
                else if (f == 2) pred = b;
                else if (f == 3) {
                    const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
                    pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
                }
                trial[i] = static_cast<unsigned char>(row[i] - pred);
                cost += std::uint64_t(std::abs(static_cast<signed char>(trial[i])));
            }
            if (cost < best_cost) best_cost = cost, best_filter = f, best.swap(trial);
        }
        raw.push_back(best_filter == 3 ? 4 : best_filter);  // PNG's filter numbers: 0 None, 1 Sub, 2 Up, 4 Paeth
        raw.insert(raw.end(), best.begin(), best.end());
    }
    const std::vector<unsigned char> z = zlib_compress(raw);
    std::vector<unsigned char> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    std::vector<unsigned char> ihdr;
    detail::put32(ihdr, static_cast<std::uint32_t>(width));
    detail::put32(ihdr, static_cast<std::uint32_t>(height));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit, RGB, deflate, adaptive filtering, no interlace
    detail::chunk(out, "IHDR", ihdr);
    detail::chunk(out, "IDAT", z);
    detail::chunk(out, "IEND", {});
    return out;
}

// Writes the image through io/file.hpp's write_file: the file is complete or left as it was.
inline void write_png(const std::string& path, std::size_t width, std::size_t height, std::span<const unsigned char> rgb) {
    write_file(path, encode_png(width, height, rgb), "write_png");
}

}  // namespace diffuse::io
