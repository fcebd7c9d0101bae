// Block moments: merging blocks (Chan, Golub & LeVeque) gives feature_statistics of all rows to rounding,
// the same blocks merged in the same order give the same bits, and bad input is a named error.
#include <catch2/catch.hpp>
#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <cmath>
#include <limits>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/metrics/feature_moments.hpp"
#include "diffuse/metrics/frechet.hpp"

using namespace diffuse;

TEST_CASE("feature_moments: two rows, closed form", "[mpi][moments]") {
    // rows (0, 1) and (2, 5): mean (1, 3), covariance [[2, 4], [4, 8]]
    feature_moments m = block_moments(batched(std::vector<double>{0, 1}, 1));
    m.merge(block_moments(batched(std::vector<double>{2, 5}, 1)));
    const auto s = m.statistics();
    CHECK(s.mean == std::vector<double>{1, 3});
    CHECK(s.cov == std::vector<double>{2, 4, 4, 8});
}

TEST_CASE("feature_moments: random blocks merge to feature_statistics", "[mpi][moments]") {
    rc::prop("blocks", [] {
        const auto n = *rc::gen::inRange<std::size_t>(2, 60);
        const auto d = *rc::gen::inRange<std::size_t>(1, 7);
        const auto block = *rc::gen::inRange<std::size_t>(1, 20);
        const auto seed = *rc::gen::inRange<std::uint64_t>(0, 1000);
        const double scale = *rc::gen::element(1e-3, 1.0, 1e3);
        const double offset = *rc::gen::element(0.0, 10.0, -1e4);
        std::vector<double> x(n * d);
        fill_normal(batched(x, n), seed, 0);
        for (auto& v : x) v = offset + scale * v;
        feature_moments total, again;
        for (std::size_t i = 0; i < n; i += block) {
            const std::size_t c = std::min(block, n - i);
            const auto m = block_moments(tensor_view<const double>{x.data() + i * d, c, d});
            total.merge(m);
            std::vector<double> packed(feature_moments::packed_size(d));
            m.pack(packed);
            again.merge(feature_moments::unpack(packed, d));
        }
        const auto s = total.statistics(), r = feature_statistics(batched(x, n)), s2 = again.statistics();
        RC_ASSERT(s.mean == s2.mean);
        RC_ASSERT(s.cov == s2.cov);
        for (std::size_t j = 0; j < d; ++j) RC_ASSERT(std::abs(s.mean[j] - r.mean[j]) <= 1e-12 * (std::abs(offset) + scale));
        for (std::size_t j = 0; j < d * d; ++j) RC_ASSERT(std::abs(s.cov[j] - r.cov[j]) <= 1e-10 * scale * scale + 1e-13 * std::abs(offset) * scale);  // rounding of x − μ
    });
}

TEST_CASE("feature_moments: errors", "[mpi][moments]") {
    std::vector<double> bad{1.0, std::numeric_limits<double>::quiet_NaN()};
    CHECK_THROWS_WITH(block_moments(batched(bad, 1)), Catch::Contains("feature 1 of sample 0 is not finite"));
    feature_moments one = block_moments(batched(std::vector<double>{1, 2}, 1));
    CHECK_THROWS_WITH(one.statistics(), Catch::Contains("number of samples"));
    CHECK_THROWS_WITH(one.merge(block_moments(batched(std::vector<double>{1, 2, 3}, 1))), Catch::Contains("dimensions differ"));
    std::vector<double> packed(3, 0.0);
    CHECK_THROWS(feature_moments::unpack(packed, 2));
    packed.assign(feature_moments::packed_size(1), 0.0);
    packed[0] = -1;
    CHECK_THROWS_WITH(feature_moments::unpack(packed, 1), Catch::Contains("count"));
}
