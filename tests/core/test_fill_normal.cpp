#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/fill_normal.hpp"
#include "diffuse/core/reduce.hpp"

TEST_CASE("fill_normal gives the same bits for any batch split and thread count") {
    const std::size_t B = 6, D = (std::size_t(1) << 16) + 77;
    std::vector<float> whole(B * D);
    diffuse::fill_normal(diffuse::batched(whole, B), 42, 3);
    // the batch split in two calls, the second naming its first sample
    std::vector<float> head(2 * D), tail(4 * D);
    diffuse::fill_normal(diffuse::batched(head, 2), 42, 3, 0);
    diffuse::fill_normal(diffuse::batched(tail, 4), 42, 3, 2);
    CHECK(std::memcmp(whole.data(), head.data(), head.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(whole.data() + head.size(), tail.data(), tail.size() * sizeof(float)) == 0);
    // explicit sample ids, in another order
    std::vector<float> picked(2 * D);
    const std::vector<std::uint64_t> ids = {5, 1};
    diffuse::fill_normal(diffuse::batched(picked, 2), 42, 3, std::span<const std::uint64_t>(ids));
    CHECK(std::memcmp(picked.data(), whole.data() + 5 * D, D * sizeof(float)) == 0);
    CHECK(std::memcmp(picked.data() + D, whole.data() + 1 * D, D * sizeof(float)) == 0);
    // several threads
    diffuse::set_num_threads(3);
    std::vector<float> threaded(B * D);
    diffuse::fill_normal(diffuse::batched(threaded, B), 42, 3);
    diffuse::set_num_threads(1);
    CHECK(std::memcmp(whole.data(), threaded.data(), whole.size() * sizeof(float)) == 0);
    // draws and seeds differ
    std::vector<float> other(B * D);
    diffuse::fill_normal(diffuse::batched(other, B), 42, 4);
    CHECK(std::memcmp(whole.data(), other.data(), D * sizeof(float)) != 0);
    // plausible moments per sample
    std::vector<double> m(B), ss(B);
    diffuse::mean(diffuse::batched(whole, B), m);
    diffuse::sum_squares(diffuse::batched(whole, B), ss);
    for (std::size_t b = 0; b < B; ++b) {
        CHECK(std::abs(m[b]) < 5.0 / std::sqrt(double(D)));
        CHECK(std::abs(ss[b] / double(D) - 1.0) < 5.0 * std::sqrt(2.0 / double(D)));
    }
    const std::vector<std::uint64_t> bad = {1};
    CHECK_THROWS_WITH(diffuse::fill_normal(diffuse::batched(picked, 2), 1, 0, std::span<const std::uint64_t>(bad)),
                      Catch::Contains("sample_ids has 1 values but the batch has 2"));
}
