#include <catch2/catch.hpp>

#include <vector>

#include "diffuse/adapt/std.hpp"

TEST_CASE("std::vector adapts into a one-sample view and batched splits it") {
    std::vector<float> v(12, 1.0f);
    auto a = diffuse::view(v);
    CHECK(a.data == v.data());
    CHECK(a.batch == 1);
    CHECK(a.per_sample == 12);
    auto b = diffuse::batched(v, 3);
    CHECK(b.batch == 3);
    CHECK(b.per_sample == 4);
    const auto& cv = v;
    auto c = diffuse::view(cv);
    STATIC_REQUIRE(std::is_same_v<decltype(c), diffuse::tensor_view<const float>>);
    CHECK_THROWS_AS(diffuse::batched(v, 5), diffuse::error);
    CHECK_THROWS_WITH(diffuse::batched(v, 5), Catch::Contains("batch = 5"));
}
