#pragma once
// Likelihood metrics (metrics/likelihood.hpp) over samples held in shards (mpi/shard_plan.hpp): each chunk is
// measured as one batch, with its randomness (the VLB's x_t draws, the ODE's Hutchinson probes) seeded by
// chunk_seed(seed, chunk index), so a chunk's numbers depend on the chunk alone; rank 0 gathers the
// per-sample values in global id order and sums them in that order. Every number is therefore the same
// bits on 1, 2 or 3 ranks (and equals measuring the chunks one after the other in one process).
//
//   auto r = diffuse::mpi::sharded_vlb_bits_per_dim(comm, plan, model, schedule, my_x0, seed);
//   auto r = diffuse::mpi::sharded_ode_bits_per_dim(comm, plan, drift, prior_logp, my_x0, options);
//   r.mean (every rank), r.per_sample (rank 0: all N values in id order)
// my_x0: this rank's rows (its chunks in increasing order), row-major doubles. The general form,
// sharded_per_sample(comm, plan, per_chunk), takes per_chunk(chunk, rank-local row offset) returning the
// chunk's per-sample values. Collective.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "diffuse/metrics/likelihood.hpp"
#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/ordered_gather.hpp"
#include "diffuse/mpi/shard_plan.hpp"

namespace diffuse::mpi {

// The seed of chunk `index` for a job seeded `seed`: SplitMix64's finaliser (Steele, Lea & Flood 2014) of
// seed + (index + 1)·φ·2^64, so neighbouring seeds do not share chunk streams.
[[nodiscard]] constexpr std::uint64_t chunk_seed(std::uint64_t seed, std::uint64_t index) noexcept {
    std::uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct sharded_per_sample_result {
    double mean = 0;                 // every rank
    std::vector<double> per_sample;  // rank 0: N values in global id order; empty elsewhere
};

// per_chunk(chunk, first_local_row) -> std::vector<double> of chunk.count values.
template <class PerChunk>
[[nodiscard]] sharded_per_sample_result sharded_per_sample(const communicator& comm, const shard_plan& plan, PerChunk&& per_chunk) {
    std::optional<std::string> failure;
    std::vector<double> mine;
    try {
        if (plan.ranks() != comm.size())
            diffuse::detail::fail("sharded_per_sample", "the plan is for " + std::to_string(plan.ranks()) +
                                                            " ranks but the communicator has " + std::to_string(comm.size()));
        std::size_t row = 0;
        for (const auto& c : plan.chunks_of(comm.rank())) {
            const std::vector<double> v = per_chunk(c, row);
            if (v.size() != c.count)
                diffuse::detail::fail("sharded_per_sample", "chunk " + std::to_string(c.index) + " gave " + std::to_string(v.size()) +
                                                                " values for " + std::to_string(c.count) + " samples");
            mine.insert(mine.end(), v.begin(), v.end());
            row += c.count;
        }
    } catch (...) {
        failure = current_failure();
    }
    comm.agree(failure);
    sharded_per_sample_result r;
    double sum = 0;
    gather_in_order<double>(comm, plan, [](const shard_chunk& c) { return c.count; }, std::span<const double>(mine),
                            [&](const shard_chunk&, std::span<const double> v) {
                                for (double x : v) sum += x;  // id order
                                r.per_sample.insert(r.per_sample.end(), v.begin(), v.end());
                            });
    r.mean = sum / double(plan.samples());
    comm.broadcast(r.mean, 0);
    return r;
}

namespace detail {
// The rows of chunk c in this rank's x0 (dim values each), checked against the rank's share.
inline std::span<const double> chunk_rows(std::span<const double> x0, std::size_t dim, std::size_t first_row, std::size_t count,
                                          const char* where) {
    if (dim == 0 || (first_row + count) * dim > x0.size())
        diffuse::detail::fail(where, "x0 holds " + std::to_string(x0.size()) + " values, too few for this rank's chunks of " +
                                         std::to_string(dim) + " values per sample");
    return x0.subspan(first_row * dim, count * dim);
}
inline void check_share(const communicator& comm, const shard_plan& plan, std::span<const double> x0, std::size_t dim,
                        const char* where) {
    diffuse::detail::require(dim >= 1, where, "dim", dim, ">= 1");
    const std::uint64_t n = plan.samples_of(comm.rank());
    if (x0.size() != n * dim)
        diffuse::detail::fail(where, "rank " + std::to_string(comm.rank()) + " holds " + std::to_string(x0.size()) +
                                         " values but its chunks have " + std::to_string(n) + " samples of " + std::to_string(dim));
}
}  // namespace detail

// vlb_bits_per_dim's total bits/dim, chunk by chunk (seed chunk_seed(seed, c)).
template <class Model>
[[nodiscard]] sharded_per_sample_result sharded_vlb_bits_per_dim(const communicator& comm, const shard_plan& plan, Model&& model,
                                                                 const vlb_schedule& schedule, std::span<const double> local_x0,
                                                                 std::size_t dim, std::uint64_t seed,
                                                                 std::span<const double> fixed_log_variance = {}) {
    constexpr const char* where = "sharded_vlb_bits_per_dim";
    return sharded_per_sample(comm, plan, [&](const shard_chunk& c, std::size_t row) {
        if (row == 0) detail::check_share(comm, plan, local_x0, dim, where);
        const auto x0 = detail::chunk_rows(local_x0, dim, row, c.count, where);
        return vlb_bits_per_dim(model, schedule, x0, c.count, chunk_seed(seed, c.index), fixed_log_variance).total_bpd;
    });
}

// ode_log_likelihood's bits/dim, chunk by chunk (probe seed chunk_seed(options.seed, c)).
template <class Drift, class Prior>
[[nodiscard]] sharded_per_sample_result sharded_ode_bits_per_dim(const communicator& comm, const shard_plan& plan, Drift&& drift,
                                                                 Prior&& prior_logp, std::span<const double> local_x0,
                                                                 std::size_t dim, const ode_likelihood_options& options = {}) {
    constexpr const char* where = "sharded_ode_bits_per_dim";
    return sharded_per_sample(comm, plan, [&](const shard_chunk& c, std::size_t row) {
        if (row == 0) detail::check_share(comm, plan, local_x0, dim, where);
        const auto x0 = detail::chunk_rows(local_x0, dim, row, c.count, where);
        auto o = options;
        o.seed = chunk_seed(options.seed, c.index);
        return ode_log_likelihood(drift, prior_logp, x0, c.count, o).bits_per_dim;
    });
}

}  // namespace diffuse::mpi
