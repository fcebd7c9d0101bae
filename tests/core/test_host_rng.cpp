#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "diffuse/core/host_rng.hpp"

TEST_CASE("host_rng is a seeded, platform-independent stream with the right moments") {
    diffuse::host_rng a(7), b(7), c(8);
    std::vector<std::uint64_t> va, vc;
    for (int i = 0; i < 8; ++i) {
        const auto x = a.next();
        CHECK(x == b.next());
        va.push_back(x);
        vc.push_back(c.next());
    }
    CHECK(va != vc);
    // The stream is Philox4x32-10 keyed by the seed: the first value is the first block's low half.
    const auto blk = diffuse::detail::philox4x32_10_words(0, 0, 0x686f7374u, 0, 7, 0);
    CHECK(va[0] == (std::uint64_t(blk.w1) << 32 | blk.w0));
    CHECK(va[1] == (std::uint64_t(blk.w3) << 32 | blk.w2));

    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    std::vector<int> counts(7, 0);
    for (int i = 0; i < n; ++i) {
        const double u = a.uniform();
        REQUIRE((u >= 0.0 && u < 1.0));
        su += u;
        const double z = a.normal();
        sn += z;
        sn2 += z * z;
        ++counts[a.below(7)];
        REQUIRE(a.uniform_open0() > 0.0);
    }
    CHECK(std::abs(su / n - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
    CHECK(std::abs(sn / n) < 5 / std::sqrt(double(n)));
    CHECK(std::abs(sn2 / n - 1) < 5 * std::sqrt(2.0 / n));
    for (int k : counts) CHECK(std::abs(k - n / 7.0) < 5 * std::sqrt(n / 7.0));
    CHECK_THROWS_WITH(a.below(0), Catch::Contains("n = 0"));
}
