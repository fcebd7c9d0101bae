// first_non_finite_sample (core/reduce.hpp): the first sample with a NaN or ±Inf, over random shapes with
// non-finite values (NaN of any payload and sign, ±Inf) and extreme finite values (max, -max, the smallest
// subnormal, -0) planted at random places; float and double; the baseline and AVX2 loops of the check agree.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/reduce.hpp"

namespace {

template <class T>
void check_random_planting() {
    using L = std::numeric_limits<T>;
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    std::mt19937_64 rng(sizeof(T) * 977);
    const T finite_edges[] = {L::max(), -L::max(), L::denorm_min(), -L::denorm_min(), T(-0.0), L::min(), T(1)};
    for (int trial = 0; trial < 300; ++trial) {
        const std::size_t B = 1 + rng() % 5, D = 1 + rng() % (trial % 3 == 0 ? 5000 : 40);
        std::vector<T> x(B * D);
        std::normal_distribution<T> normal;
        for (auto& v : x) v = normal(rng);
        for (int k = 0; k < 5; ++k) x[rng() % x.size()] = finite_edges[rng() % 7];
        std::size_t expected = B;
        if (trial % 4 != 0) {  // plant non-finite values in some samples
            const int count = 1 + int(rng() % 3);
            for (int k = 0; k < count; ++k) {
                const std::size_t b = rng() % B, j = rng() % D;
                T bad;
                switch (rng() % 3) {
                    case 0: bad = L::infinity(); break;
                    case 1: bad = -L::infinity(); break;
                    default: {  // a NaN with a random payload and sign
                        const U exponent = sizeof(T) == 4 ? U(0x7F800000u) : U(0x7FF0000000000000ull);
                        const U mantissa = (sizeof(T) == 4 ? U(0x007FFFFFu) : U(0x000FFFFFFFFFFFFFull)) & (U(rng()) | 1u);
                        const U sign = (rng() % 2) ? U(1) << (8 * sizeof(T) - 1) : U(0);
                        bad = std::bit_cast<T>(sign | exponent | mantissa);
                    }
                }
                REQUIRE(!std::isfinite(bad));
                x[b * D + j] = bad;
                expected = std::min(expected, b);
            }
        }
        INFO("trial " << trial << " B " << B << " D " << D);
        CHECK(diffuse::first_non_finite_sample(diffuse::batched(x, B)) == expected);
        // the baseline loop and the AVX2 one (chosen at run time where the CPU has it) agree on every sample
        for (std::size_t b = 0; b < B; ++b) {
            const bool baseline = diffuse::detail::any_non_finite_loop(x.data() + b * D, D);
            if (b < expected) CHECK_FALSE(baseline);  // the samples before the first non-finite one are finite
            CHECK(diffuse::detail::any_non_finite(x.data() + b * D, D) == baseline);
#if DIFFUSE_HOST_X86_DISPATCH
            if (diffuse::detail::host_has_avx2()) CHECK(diffuse::detail::any_non_finite_avx2(x.data() + b * D, D) == baseline);
#endif
        }
        if (expected < B) CHECK(diffuse::detail::any_non_finite_loop(x.data() + expected * D, D));
    }
}

}  // namespace

TEMPLATE_TEST_CASE("first_non_finite_sample finds the first sample holding NaN or Inf", "[core][reduce][finite]", float,
                   double) {
    check_random_planting<TestType>();
    std::vector<TestType> empty;
    CHECK(diffuse::first_non_finite_sample(diffuse::tensor_view<TestType>{empty.data(), 3, 0}) == 3);
}
