#pragma once
// Philox4x32-10, the counter-based generator of
//   J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3",
//   SC'11 (2011), section 4 ("Philox").
// A bijection of a 128-bit counter under a 64-bit key: out = philox4x32_10(counter, key).
//
// Everything here is integer arithmetic, constexpr and DIFFUSE_HD, so the same bits come out on the
// host, in constant evaluation and (later) in CUDA device code. The core works on four plain
// std::uint32_t values (detail::philox4x32_10_words), which is what device kernels and vectorised
// loops use; the std::array interface below is a convenience over it.

#include <array>
#include <cstdint>

#include "diffuse/core/config.hpp"

namespace diffuse {

// The four output (or counter) words of one Philox4x32 block, as a plain aggregate usable in device
// code without std::array.
struct philox4x32_block {
    std::uint32_t w0, w1, w2, w3;
};

namespace detail {

// Round multipliers and Weyl key increments (Salmon et al. 2011, table 2 and section 4.2).
inline constexpr std::uint32_t philox_m0 = 0xD2511F53u;
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;  // sqrt(3) - 1

// One Philox S-box round on (c0, c1, c2, c3) with key (k0, k1):
//   (hi0, lo0) = m0 * c0, (hi1, lo1) = m1 * c2 (full 64-bit products)
//   c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
DIFFUSE_HD constexpr void philox_round(std::uint32_t& c0, std::uint32_t& c1, std::uint32_t& c2, std::uint32_t& c3,
                                       std::uint32_t k0, std::uint32_t k1) noexcept {
    const std::uint64_t p0 = static_cast<std::uint64_t>(philox_m0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(philox_m1) * c2;
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
}

// Ten rounds; the key is bumped by the Weyl increments between rounds.
DIFFUSE_HD constexpr philox4x32_block philox4x32_10_words(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                                                          std::uint32_t c3, std::uint32_t k0,
                                                          std::uint32_t k1) noexcept {
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += philox_w0;
            k1 += philox_w1;
        }
        philox_round(c0, c1, c2, c3, k0, k1);
    }
    return {c0, c1, c2, c3};
}

}  // namespace detail

// Philox4x32-10 of `counter` under `key`.
DIFFUSE_HD constexpr std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                                                std::array<std::uint32_t, 2> key) noexcept {
    const philox4x32_block b =
        detail::philox4x32_10_words(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
    return {b.w0, b.w1, b.w2, b.w3};
}

}  // namespace diffuse
