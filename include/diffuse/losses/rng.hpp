#pragma once
// A small seeded generator for the host-side randomness of training and evaluation: timesteps,
// log-normal σ, Hutchinson probes, random projections, data sets of the demos.
//
// xoshiro256** (Blackman & Vigna 2018, "Scrambled linear pseudorandom number generators") seeded by
// splitmix64; normals by the Box–Muller transform (Box & Muller 1958). Results are identical on every
// platform: no std:: distribution (their algorithms are implementation-defined) is used.
// Image-sized noise should come from diffuse::fill_normal, which is counter-based.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>

#include "diffuse/core/error.hpp"

namespace diffuse {

class train_rng {
public:
    explicit train_rng(std::uint64_t seed = 0) noexcept {
        std::uint64_t z = seed;
        for (auto& s : s_) s = splitmix64(z);
    }

    // 64 uniformly distributed bits.
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform on [0, 1) with 53 random bits.
    double uniform() noexcept { return double(next() >> 11) * 0x1.0p-53; }

    // Uniform on (0, 1]: safe to take the logarithm of.
    double uniform_open0() noexcept { return double((next() >> 11) + 1) * 0x1.0p-53; }

    // Uniform integer in [0, n) without modulo bias (Lemire's rejection on the 128-bit product).
    std::uint64_t below(std::uint64_t n) {
        detail::require(n > 0, "train_rng::below", "n", n, ">= 1");
        for (;;) {
            const unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
            const auto low = static_cast<std::uint64_t>(m);
            if (low >= n || low >= (-n) % n) return static_cast<std::uint64_t>(m >> 64);
        }
    }

    // Standard normal (Box–Muller; the second value of each pair is kept for the next call).
    double normal() noexcept {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        const double r = std::sqrt(-2.0 * std::log(uniform_open0()));
        const double a = 2.0 * std::numbers::pi * uniform();
        spare_ = r * std::sin(a);
        has_spare_ = true;
        return r * std::cos(a);
    }

    // ±1 with equal probability (Rademacher).
    double rademacher() noexcept { return (next() >> 63) ? 1.0 : -1.0; }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& z) noexcept {
        std::uint64_t r = (z += 0x9E3779B97F4A7C15ull);
        r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9ull;
        r = (r ^ (r >> 27)) * 0x94D049BB133111EBull;
        return r ^ (r >> 31);
    }

    std::uint64_t s_[4]{};
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace diffuse
