#pragma once
// The Fréchet distance (metrics/frechet.hpp) of features held in shards (mpi/shard_plan.hpp): each rank
// computes the moments (n, μ, M₂) of each of its chunks (metrics/feature_moments.hpp); rank 0 merges them in
// global chunk order (mpi/ordered_gather.hpp) and broadcasts the statistics. The chunks and their order do
// not depend on the rank count, so the statistics — and the distance — have the same bits on 1, 2 or 3
// ranks. (They equal feature_statistics of all rows to rounding, not bit for bit: that sums differently.)
//
//   auto s = diffuse::mpi::sharded_feature_statistics(comm, plan, batched(my_features, my_rows));
//   double fd = diffuse::mpi::sharded_frechet_distance(comm, plan, batched(my_features, my_rows), reference);
// my_features: this rank's rows, its chunks (plan.chunks_of(rank)) in increasing order. Collective; every
// rank gets the result. Part of the diffuse::mpi and diffuse::eigen components.

#include <Eigen/Dense>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/reduce.hpp"
#include "diffuse/core/tensor.hpp"
#include "diffuse/metrics/feature_moments.hpp"
#include "diffuse/metrics/frechet.hpp"
#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/ordered_gather.hpp"
#include "diffuse/mpi/shard_plan.hpp"

namespace diffuse::mpi {

template <tensor F>
[[nodiscard]] gaussian_statistics sharded_feature_statistics(const communicator& comm, const shard_plan& plan,
                                                             const F& local_features) {
    const auto v = diffuse::detail::host_input(local_features);
    // The dimension must agree everywhere; a rank without chunks (even rank 0, with more ranks than chunks)
    // has no rows to tell it, so it is the largest any rank has, and every rank with rows must match it.
    const std::uint64_t dim = comm.max(v.batch > 0 ? v.per_sample : 0);
    std::optional<std::string> failure;
    std::vector<double> packed;
    try {
        diffuse::detail::require(dim >= 1 && dim <= 65536, "sharded_feature_statistics", "feature dimension", dim, "[1, 65536]");
        if (v.batch > 0 && v.per_sample != dim)
            diffuse::detail::fail("sharded_feature_statistics", "rank " + std::to_string(comm.rank()) + " has features of dimension " +
                                                                    std::to_string(v.per_sample) + ", another rank of " + std::to_string(dim));
        const auto chunks = plan.chunks_of(comm.rank());
        std::size_t rows = 0;
        for (const auto& c : chunks) rows += c.count;
        if (rows != v.batch)
            diffuse::detail::fail("sharded_feature_statistics", "rank " + std::to_string(comm.rank()) + " holds " +
                                                                    std::to_string(v.batch) + " rows but its chunks have " + std::to_string(rows));
        const std::size_t P = feature_moments::packed_size(std::size_t(dim));
        packed.resize(chunks.size() * P);
        std::size_t row = 0;
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            auto block = v;
            block.data = v.sample(row);
            block.batch = chunks[i].count;
            const auto m = block_moments(block);
            m.pack(std::span<double>(packed).subspan(i * P, P));
            row += chunks[i].count;
        }
    } catch (...) {
        failure = current_failure();
    }
    comm.agree(failure);
    const std::size_t D = std::size_t(dim), P = feature_moments::packed_size(D);
    feature_moments total;
    gather_in_order<double>(comm, plan, [P](const shard_chunk&) { return P; }, std::span<const double>(packed),
                            [&](const shard_chunk&, std::span<const double> m) { total.merge(feature_moments::unpack(m, D)); });
    // rank 0 holds the total; everyone gets the statistics
    std::vector<double> flat(D + D * D);
    try {
        if (comm.rank() == 0) {
            const auto s = total.statistics();
            std::copy(s.mean.begin(), s.mean.end(), flat.begin());
            std::copy(s.cov.begin(), s.cov.end(), flat.begin() + std::ptrdiff_t(D));
        }
    } catch (...) {
        failure = current_failure();
    }
    comm.agree(failure);
    comm.broadcast(flat, 0);
    gaussian_statistics s;
    s.dim = D;
    s.mean.assign(flat.begin(), flat.begin() + std::ptrdiff_t(D));
    s.cov.assign(flat.begin() + std::ptrdiff_t(D), flat.end());
    return s;
}

// d² between the sharded features' Gaussian and `reference` (the same on every rank), on every rank.
template <tensor F>
[[nodiscard]] double sharded_frechet_distance(const communicator& comm, const shard_plan& plan, const F& local_features,
                                              const gaussian_statistics& reference) {
    const auto s = sharded_feature_statistics(comm, plan, local_features);
    double d = 0;
    std::optional<std::string> failure;
    try {
        d = frechet_distance(s, reference);
    } catch (...) {
        failure = current_failure();
    }
    comm.agree(failure);
    return d;
}

}  // namespace diffuse::mpi
