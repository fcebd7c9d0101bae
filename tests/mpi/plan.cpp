// The shard plan: every chunk belongs to exactly one rank, chunks tile the ids in batch-sized runs that do
// not depend on the rank count, owner() agrees with chunks_of(), and bad arguments are named errors.
#include <catch2/catch.hpp>
#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "diffuse/mpi/shard_plan.hpp"
#include "diffuse/mpi/sharded_likelihood.hpp"

using diffuse::mpi::shard_layout;
using diffuse::mpi::shard_plan;

namespace {
void check_plan(std::uint64_t n, std::size_t batch, std::size_t ranks, shard_layout layout) {
    const shard_plan p(n, batch, ranks, layout);
    RC_ASSERT(p.chunks() == std::size_t((n + batch - 1) / batch));
    std::vector<int> seen(p.chunks(), 0);
    std::uint64_t total = 0;
    for (std::size_t r = 0; r < ranks; ++r) {
        std::size_t prev = 0;
        bool first = true;
        const auto chunks = p.chunks_of(r);
        for (const auto& c : chunks) {
            RC_ASSERT(c.index < p.chunks());
            RC_ASSERT(first || c.index > prev);  // increasing
            RC_ASSERT(p.owner(c.index) == r);
            RC_ASSERT(c.first_sample == std::uint64_t(c.index) * batch);  // the same chunks for any rank count
            RC_ASSERT(c.count == (c.index + 1 < p.chunks() ? batch : std::size_t(n - c.first_sample)));
            if (layout == shard_layout::contiguous && !first) RC_ASSERT(c.index == prev + 1);
            if (layout == shard_layout::round_robin) RC_ASSERT(c.index % ranks == r);
            ++seen[c.index];
            total += c.count;
            prev = c.index;
            first = false;
        }
        RC_ASSERT(p.samples_of(r) == [&] { std::uint64_t s = 0; for (const auto& c : chunks) s += c.count; return s; }());
        // contiguous shares differ by at most one chunk
        if (layout == shard_layout::contiguous)
            RC_ASSERT(chunks.size() + 1 >= p.chunks() / ranks && chunks.size() <= p.chunks() / ranks + 1);
    }
    for (int s : seen) RC_ASSERT(s == 1);
    RC_ASSERT(total == n);
}
}  // namespace

TEST_CASE("shard_plan: closed-form cases", "[mpi][plan]") {
    const shard_plan c(23, 4, 3, shard_layout::contiguous);  // 6 chunks, the last of 3
    REQUIRE(c.chunks() == 6);
    CHECK(c.chunk(5).count == 3);
    CHECK(c.chunks_of(0).size() == 2);
    CHECK(c.chunks_of(2)[1].index == 5);
    const shard_plan rr(23, 4, 4, shard_layout::round_robin);
    CHECK(rr.chunks_of(1).size() == 2);
    CHECK(rr.chunks_of(1)[1].first_sample == 20);
    CHECK(rr.samples_of(1) == 7);
    const shard_plan more(3, 2, 5);  // more ranks than chunks: ranks without work
    CHECK(more.chunks_of(0).empty());
    CHECK(more.samples_of(4) == 1);
}

TEST_CASE("shard_plan: arguments outside their range are named errors", "[mpi][plan]") {
    CHECK_THROWS_WITH(shard_plan(0, 4, 1), Catch::Contains("samples = 0"));
    CHECK_THROWS_WITH(shard_plan(10, 0, 1), Catch::Contains("batch = 0"));
    CHECK_THROWS_WITH(shard_plan(10, 4, 0), Catch::Contains("ranks = 0"));
    CHECK_THROWS_WITH(shard_plan(std::uint64_t{1} << 41, 4, 1), Catch::Contains("samples"));
    CHECK_THROWS_WITH(shard_plan(10, 4, 2, static_cast<shard_layout>(7)), Catch::Contains("layout"));
    const shard_plan p(10, 4, 2);
    CHECK_THROWS_WITH(p.chunk(3), Catch::Contains("c = 3"));
    CHECK_THROWS_WITH(p.owner(3), Catch::Contains("c = 3"));
    CHECK_THROWS_WITH(p.chunks_of(2), Catch::Contains("rank = 2"));
}

TEST_CASE("shard_plan: random plans tile the ids, one owner per chunk", "[mpi][plan]") {
    rc::prop("plan", [] {
        const auto n = *rc::gen::inRange<std::uint64_t>(1, 400);
        const auto batch = *rc::gen::inRange<std::size_t>(1, 40);
        const auto ranks = *rc::gen::inRange<std::size_t>(1, 12);
        const auto layout = *rc::gen::element(shard_layout::contiguous, shard_layout::round_robin);
        check_plan(n, batch, ranks, layout);
    });
    // large counts: no overflow in the contiguous split
    check_plan((std::uint64_t{1} << 40) - 3, std::size_t{1} << 30, std::size_t{1} << 10, shard_layout::contiguous);
}

TEST_CASE("chunk_seed: distinct streams for neighbouring seeds and chunks", "[mpi][plan]") {
    std::vector<std::uint64_t> s;
    for (std::uint64_t seed = 0; seed < 20; ++seed)
        for (std::uint64_t c = 0; c < 20; ++c) s.push_back(diffuse::mpi::chunk_seed(seed, c));
    std::sort(s.begin(), s.end());
    CHECK(std::adjacent_find(s.begin(), s.end()) == s.end());
    CHECK(diffuse::mpi::chunk_seed(3, 1) == diffuse::mpi::chunk_seed(3, 1));
}
