// The PNG writer and its DEFLATE compressor, decoded by an independent implementation (zlib): random,
// flat, striped and gradient images come back byte for byte after inflating and undoing the filters.
#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "diffuse/io/deflate.hpp"
#include "diffuse/io/png.hpp"

namespace {

std::uint32_t be32(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

std::vector<unsigned char> inflate_all(const std::vector<unsigned char>& z, std::size_t expected) {
    std::vector<unsigned char> out(expected + 16);
    uLongf n = uLongf(out.size());
    REQUIRE(uncompress(out.data(), &n, z.data(), uLong(z.size())) == Z_OK);
    out.resize(n);
    return out;
}

// Decodes our own PNG output (one IDAT, RGB8) back into pixels.
std::vector<unsigned char> decode(const std::vector<unsigned char>& png, std::size_t& w, std::size_t& h) {
    REQUIRE(png.size() > 8 + 25);
    w = be32(&png[16]);
    h = be32(&png[20]);
    std::size_t pos = 8;
    std::vector<unsigned char> z;
    while (pos + 12 <= png.size()) {
        const std::size_t len = be32(&png[pos]);
        const std::string type(png.begin() + std::ptrdiff_t(pos + 4), png.begin() + std::ptrdiff_t(pos + 8));
        const std::uint32_t crc = be32(&png[pos + 8 + len]);
        CHECK(crc == std::uint32_t(crc32(0, png.data() + pos + 4, uInt(len + 4))));
        if (type == "IDAT") z.insert(z.end(), png.begin() + std::ptrdiff_t(pos + 8), png.begin() + std::ptrdiff_t(pos + 8 + len));
        pos += 12 + len;
    }
    const std::size_t stride = w * 3;
    const auto raw = inflate_all(z, h * (stride + 1));
    REQUIRE(raw.size() == h * (stride + 1));
    std::vector<unsigned char> img(h * stride);
    for (std::size_t y = 0; y < h; ++y) {
        const unsigned char f = raw[y * (stride + 1)];
        REQUIRE((f == 0 || f == 1 || f == 2 || f == 4));
        for (std::size_t i = 0; i < stride; ++i) {
            const int a = i >= 3 ? img[y * stride + i - 3] : 0, b = y ? img[(y - 1) * stride + i] : 0,
                      c = (y && i >= 3) ? img[(y - 1) * stride + i - 3] : 0;
            int pred = 0;
            if (f == 1) pred = a;
            if (f == 2) pred = b;
            if (f == 4) {
                const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
                pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
            }
            img[y * stride + i] = static_cast<unsigned char>(raw[y * (stride + 1) + 1 + i] + pred);
        }
    }
    return img;
}

}  // namespace

TEST_CASE("zlib_compress output inflates to its input with zlib", "[io][png]") {
    rc::prop("random byte strings, with repeats", [](const std::vector<unsigned char>& bytes, std::uint8_t repeat) {
        std::vector<unsigned char> data = bytes;
        for (std::size_t r = 0; r < repeat % 8; ++r) data.insert(data.end(), bytes.begin(), bytes.end());
        const auto z = diffuse::io::zlib_compress(data);
        RC_ASSERT(inflate_all(z, data.size()) == data);
    });
    std::vector<unsigned char> flat(200000, 7);
    const auto z = diffuse::io::zlib_compress(flat);
    CHECK(z.size() < flat.size() / 50);  // long runs become back-references
    CHECK(inflate_all(z, flat.size()) == flat);
    CHECK(inflate_all(diffuse::io::zlib_compress({}), 0).empty());
}

TEST_CASE("encode_png round-trips random, flat and gradient images", "[io][png]") {
    std::mt19937 rng(3);
    for (const auto& [w, h, kind] : {std::tuple{1, 1, 0}, {7, 5, 0}, {64, 48, 1}, {33, 17, 2}, {300, 200, 3}}) {
        std::vector<unsigned char> rgb(std::size_t(w) * h * 3);
        for (std::size_t i = 0; i < rgb.size(); ++i) {
            const std::size_t px = i / 3, x = px % std::size_t(w), y = px / std::size_t(w);
            rgb[i] = kind == 0   ? static_cast<unsigned char>(rng())
                     : kind == 1 ? 128
                     : kind == 2 ? static_cast<unsigned char>((x / 4 + y) % 2 ? 255 : 0)
                                 : static_cast<unsigned char>(x + 2 * y + i % 3);
        }
        const auto png = diffuse::io::encode_png(std::size_t(w), std::size_t(h), rgb);
        std::size_t dw = 0, dh = 0;
        CHECK(decode(png, dw, dh) == rgb);
        CHECK(dw == std::size_t(w));
        CHECK(dh == std::size_t(h));
        if (kind == 1 || kind == 3) CHECK(png.size() < rgb.size() / 10);  // compressed, not stored
    }
}
