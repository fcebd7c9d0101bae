#pragma once
// The sliced Wasserstein distance (metrics/sample_distance.hpp) between points held in shards
// (mpi/shard_plan.hpp) and a reference set on rank 0. Each rank projects its own rows on the K directions;
// rank 0 gathers the projections in global id order (mpi/ordered_gather.hpp: K values per sample instead
// of D), projects the reference and sorts exactly as sliced_wasserstein does, so the result is the same
// bits as sliced_wasserstein(all rows, reference, directions, p) in one process, for any rank count.
//
//   double sw = diffuse::mpi::sharded_sliced_wasserstein(comm, plan, batched(mine, my_rows), reference, dirs);
// mine: this rank's rows (its chunks in increasing order); reference: read on rank 0 only (other ranks may
// pass an empty view of the right dimension); directions: rank 0's are used on every rank. Collective;
// every rank gets the result.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/metrics/sample_distance.hpp"
#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/ordered_gather.hpp"
#include "diffuse/mpi/shard_plan.hpp"

namespace diffuse::mpi {

template <tensor X, tensor Y>
[[nodiscard]] double sharded_sliced_wasserstein(const communicator& comm, const shard_plan& plan, const X& local_x,
                                                const Y& reference, std::span<const double> directions, double p = 2.0) {
    constexpr const char* where = "sharded_sliced_wasserstein";
    const auto vx = diffuse::detail::host_input(local_x);
    const auto vy = diffuse::detail::host_input(reference);
    std::vector<double> dirs(directions.begin(), directions.end());
    comm.broadcast(dirs, 0);
    std::uint64_t dim = comm.rank() == 0 ? vy.per_sample : 0;
    comm.broadcast(dim, 0);
    std::optional<std::string> failure;
    std::vector<double> projected;  // per chunk: K rows of chunk.count projections
    std::size_t K = 0;
    std::vector<double> inv;
    try {
        const std::size_t D = std::size_t(dim);
        diffuse::detail::require(p >= 1.0 && std::isfinite(p), where, "p", p, "[1, inf)");
        diffuse::detail::require(D >= 1 && !dirs.empty() && dirs.size() % D == 0, where, "directions.size()", dirs.size(),
                                 "a positive multiple of the dimension " + std::to_string(D));
        if (comm.rank() == 0) diffuse::detail::check_points(vy, where, "y");
        if (vx.batch > 0) {
            diffuse::detail::check_points(vx, where, "x");
            if (vx.per_sample != D)
                diffuse::detail::fail(where, "rank " + std::to_string(comm.rank()) + ": x has dimension " +
                                                 std::to_string(vx.per_sample) + " but y has " + std::to_string(D));
        }
        K = dirs.size() / D;
        for (std::size_t k = 0; k < K; ++k) inv.push_back(diffuse::detail::inverse_norm(dirs.data() + k * D, D, k, where));
        const auto chunks = plan.chunks_of(comm.rank());
        std::size_t rows = 0;
        for (const auto& c : chunks) rows += c.count;
        if (rows != vx.batch)
            diffuse::detail::fail(where, "rank " + std::to_string(comm.rank()) + " holds " + std::to_string(vx.batch) +
                                             " rows but its chunks have " + std::to_string(rows));
        projected.resize(rows * K);
        std::size_t row = 0;
        for (const auto& c : chunks) {
            auto block = vx;
            block.data = vx.sample(row);
            block.batch = c.count;
            for (std::size_t k = 0; k < K; ++k)
                diffuse::detail::project(block, dirs.data() + k * D, inv[k], projected.data() + row * K + k * c.count);
            row += c.count;
        }
    } catch (...) {
        failure = current_failure();
    }
    comm.agree(failure);

    std::vector<std::vector<double>> a(K);
    if (comm.rank() == 0)
        for (auto& ak : a) ak.reserve(std::size_t(plan.samples()));
    gather_in_order<double>(comm, plan, [K](const shard_chunk& c) { return c.count * K; }, std::span<const double>(projected),
                            [&](const shard_chunk& c, std::span<const double> v) {
                                for (std::size_t k = 0; k < K; ++k)
                                    a[k].insert(a[k].end(), v.begin() + std::ptrdiff_t(k * c.count),
                                                v.begin() + std::ptrdiff_t((k + 1) * c.count));
                            });
    double result = 0;
    if (comm.rank() == 0) {
        // sliced_wasserstein's loop, on the gathered projections
        const std::size_t D = std::size_t(dim);
        std::vector<double> b(vy.batch);
        double total = 0.0;
        for (std::size_t k = 0; k < K; ++k) {
            diffuse::detail::project(vy, dirs.data() + k * D, inv[k], b.data());
            std::sort(a[k].begin(), a[k].end());
            std::sort(b.begin(), b.end());
            total += diffuse::detail::wasserstein_1d_pow(a[k], b, p);
        }
        result = std::pow(total / double(K), 1.0 / p);
    }
    comm.broadcast(result, 0);
    return result;
}

}  // namespace diffuse::mpi
