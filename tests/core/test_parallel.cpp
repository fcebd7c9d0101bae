#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "diffuse/adapt/std.hpp"
#include "diffuse/core/elementwise.hpp"
#include "diffuse/core/parallel.hpp"

using Catch::Contains;

namespace {
struct restore_one_thread {
    ~restore_one_thread() { diffuse::set_num_threads(1); }
};
}  // namespace

TEST_CASE("set_num_threads rejects absurd counts and keeps the current one", "[parallel]") {
    restore_one_thread guard;
    const unsigned bound = diffuse::max_num_threads();
    CHECK(bound >= 1024);
    CHECK(bound >= 64 * std::thread::hardware_concurrency());
    diffuse::set_num_threads(3);
    REQUIRE(diffuse::num_threads() == 3);
    // -1 converted to unsigned: 4294967295 threads.
    CHECK_THROWS_WITH(diffuse::set_num_threads(static_cast<unsigned>(-1)),
                      Contains("set_num_threads") && Contains("n = 4294967295") &&
                          Contains("[0, " + std::to_string(bound) + "]") && Contains("64 x hardware threads"));
    CHECK(diffuse::num_threads() == 3);
    CHECK_THROWS_AS(diffuse::set_num_threads(bound + 1), diffuse::error);
    CHECK(diffuse::num_threads() == 3);
    CHECK_THROWS_AS(diffuse::set_num_threads(std::numeric_limits<unsigned>::max() / 2), diffuse::error);
    CHECK(diffuse::num_threads() == 3);

    // The pool still works with the kept count (a tensor large enough to be split across threads).
    const std::size_t n = diffuse::detail::parallel_threshold * 2;
    std::vector<float> a(n, 1.0f), out(n);
    diffuse::lincomb(diffuse::batched(out, 2), 2.0, diffuse::batched(a, 2));
    for (std::size_t i = 0; i < n; i += 4099) CHECK(out[i] == 2.0f);

    diffuse::set_num_threads(0);  // all hardware threads is still accepted
    CHECK(diffuse::num_threads() == std::max(1u, std::thread::hardware_concurrency()));
}
