// Philox4x32-10 known-answer tests (Salmon et al. 2011; vectors from the Random123 distribution,
// listed in PARITY.md).
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>

#include "diffuse/core/philox.hpp"

namespace {
using ctr = std::array<std::uint32_t, 4>;
using key = std::array<std::uint32_t, 2>;

constexpr ctr kat_zero = diffuse::philox4x32_10({0, 0, 0, 0}, {0, 0});
constexpr ctr kat_ones = diffuse::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                                {0xffffffffu, 0xffffffffu});
constexpr ctr kat_pi = diffuse::philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                                              {0xa4093822u, 0x299f31d0u});
// Usable in constant evaluation.
static_assert(kat_zero == ctr{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
}  // namespace

TEST_CASE("philox4x32_10 reproduces the three known-answer vectors", "[noise][philox]") {
    CHECK(kat_zero == ctr{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
    CHECK(kat_ones == ctr{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
    CHECK(kat_pi == ctr{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("philox4x32_10 at run time equals the word interface and is a function of its inputs",
          "[noise][philox]") {
    // Volatile inputs force run-time evaluation.
    volatile std::uint32_t a = 0x243f6a88u, b = 0x85a308d3u, c = 0x13198a2eu, d = 0x03707344u;
    volatile std::uint32_t k0 = 0xa4093822u, k1 = 0x299f31d0u;
    const ctr r = diffuse::philox4x32_10({a, b, c, d}, {k0, k1});
    CHECK(r == ctr{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
    const diffuse::philox4x32_block w = diffuse::detail::philox4x32_10_words(a, b, c, d, k0, k1);
    CHECK(ctr{w.w0, w.w1, w.w2, w.w3} == r);

    // Changing any single counter or key bit changes the output (avalanche on a few examples).
    for (int bit = 0; bit < 32; bit += 7) {
        const std::uint32_t m = 1u << bit;
        CHECK(diffuse::philox4x32_10({m, 0, 0, 0}, {0, 0}) != kat_zero);
        CHECK(diffuse::philox4x32_10({0, 0, 0, m}, {0, 0}) != kat_zero);
        CHECK(diffuse::philox4x32_10({0, 0, 0, 0}, {0, m}) != kat_zero);
    }
}
