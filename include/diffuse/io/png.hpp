#pragma once
// A minimal PNG writer (8-bit RGB, no compression): the image data is wrapped in zlib "stored"
// deflate blocks (RFC 1950/1951) with the Adler-32 checksum, chunks carry CRC-32 (ISO 3309), as the
// PNG specification (ISO/IEC 15948) requires. No dependency; files are larger than compressed PNGs.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"

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
    std::vector<unsigned char> raw;  // filter byte 0 + row
    raw.reserve(height * (width * 3 + 1));
    for (std::size_t y = 0; y < height; ++y) {
        raw.push_back(0);
        raw.insert(raw.end(), rgb.begin() + std::ptrdiff_t(y * width * 3), rgb.begin() + std::ptrdiff_t((y + 1) * width * 3));
    }
    std::vector<unsigned char> z{0x78, 0x01};
    std::uint32_t a = 1, b = 0;
    for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;  // Adler-32
    for (std::size_t pos = 0; pos < raw.size() || pos == 0; pos += 65535) {
        const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
        const bool last = pos + n >= raw.size();
        z.push_back(last ? 1 : 0);  // BFINAL, BTYPE = 00 (stored)
        z.push_back(static_cast<unsigned char>(n & 0xFF));
        z.push_back(static_cast<unsigned char>(n >> 8));
        z.push_back(static_cast<unsigned char>(~n & 0xFF));
        z.push_back(static_cast<unsigned char>((~n >> 8) & 0xFF));
        z.insert(z.end(), raw.begin() + std::ptrdiff_t(pos), raw.begin() + std::ptrdiff_t(pos + n));
        if (last) break;
    }
    detail::put32(z, (b << 16) | a);
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

inline void write_png(const std::string& path, std::size_t width, std::size_t height, std::span<const unsigned char> rgb) {
    const auto bytes = encode_png(width, height, rgb);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) diffuse::detail::fail("write_png", "cannot open " + path + " for writing");
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) diffuse::detail::fail("write_png", "cannot write " + path);
}

}  // namespace diffuse::io
