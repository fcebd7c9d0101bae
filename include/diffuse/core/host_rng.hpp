#pragma once
// host_rng: a seeded stream of random numbers for host-side decisions of training and evaluation:
// timesteps, log-normal σ, Hutchinson probes, random projections, demo data sets.
//
// It is the project's one generator, Philox4x32-10 (core/philox.hpp), read as a stream: key = seed,
// counter = (block index, stream tag). Normals by the Box–Muller transform (Box & Muller 1958). Results
// are identical on every platform: no std:: distribution (their algorithms are implementation-defined)
// is used. Tensor-sized noise should come from diffuse::fill_normal, whose values do not depend on
// batch composition or thread count.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>

#include "diffuse/core/error.hpp"
#include "diffuse/core/philox.hpp"

namespace diffuse {

class host_rng {
public:
    explicit host_rng(std::uint64_t seed = 0) noexcept : key0_(std::uint32_t(seed)), key1_(std::uint32_t(seed >> 32)) {}

    // 64 uniformly distributed bits: the next half of the current Philox block.
    std::uint64_t next() noexcept {
        if (half_ == 0) {
            block_ = detail::philox4x32_10_words(std::uint32_t(counter_), std::uint32_t(counter_ >> 32), stream_tag, 0,
                                                 key0_, key1_);
            ++counter_;
        }
        const std::uint64_t r = half_ == 0 ? (std::uint64_t(block_.w1) << 32 | block_.w0)
                                           : (std::uint64_t(block_.w3) << 32 | block_.w2);
        half_ ^= 1;
        return r;
    }
    // Uniform on [0, 1) with 53 random bits.
    double uniform() noexcept { return double(next() >> 11) * 0x1.0p-53; }

    // Uniform on (0, 1]: safe to take the logarithm of.
    double uniform_open0() noexcept { return double((next() >> 11) + 1) * 0x1.0p-53; }

    // Uniform integer in [0, n) without modulo bias (Lemire's rejection on the 128-bit product).
    std::uint64_t below(std::uint64_t n) {
        detail::require(n > 0, "host_rng::below", "n", n, ">= 1");
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
    static constexpr std::uint32_t stream_tag = 0x686f7374u;  // "host"

    std::uint32_t key0_, key1_;
    std::uint64_t counter_ = 0;
    philox4x32_block block_{};
    int half_ = 0;
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace diffuse
