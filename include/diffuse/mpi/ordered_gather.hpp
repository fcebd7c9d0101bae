#pragma once
// The one reduction pattern of the sharded algorithms: rank 0 visits every chunk of a shard_plan in global
// id order, whichever rank computed it, so whatever rank 0 does with the chunks (concatenate them, sum
// them, merge moments) happens in the same order — and gives the same bits — for any number of ranks.
// (MPI_Reduce / MPI_Allreduce do not promise an order of summation, so they are not used for results.)
//
//   gather_in_order(comm, plan, size_of, local, visit)
//     size_of(chunk)  how many values of T chunk carries (the same function on every rank);
//     local           this rank's values: its chunks (plan.chunks_of(rank), increasing ids) concatenated;
//     visit(chunk, span<const T>)   called on rank 0 only, once per chunk, in increasing chunk order.
// Collective. A wrong local size on any rank, or an exception thrown by visit, is agreed on (every rank
// throws, communicator::agree); rank 0 keeps receiving after a failing visit so no sender is left blocked.
// Rank 0 holds one received chunk at a time.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/shard_plan.hpp"

namespace diffuse::mpi {

inline constexpr int gather_tag = 7301;

template <class T, class SizeOf, class Visit>
void gather_in_order(const communicator& comm, const shard_plan& plan, SizeOf&& size_of, std::span<const T> local,
                     Visit&& visit) {
    std::optional<std::string> failure;
    if (plan.ranks() != comm.size())
        failure = "gather_in_order: the plan is for " + std::to_string(plan.ranks()) + " ranks but the communicator has " +
                  std::to_string(comm.size());
    std::vector<shard_chunk> mine;
    if (!failure) {
        mine = plan.chunks_of(comm.rank());
        std::size_t expected = 0;
        for (const auto& c : mine) expected += std::size_t(size_of(c));
        if (expected != local.size())
            failure = "gather_in_order: rank " + std::to_string(comm.rank()) + " holds " + std::to_string(local.size()) +
                      " values but its chunks carry " + std::to_string(expected);
    }
    comm.agree(failure);

    if (comm.rank() != 0) {
        std::size_t at = 0;
        for (const auto& c : mine) {
            const std::size_t n = std::size_t(size_of(c));
            comm.send(local.subspan(at, n), 0, gather_tag);
            at += n;
        }
        comm.agree(std::nullopt);  // rank 0's visits
        return;
    }
    std::vector<T> buffer;
    std::size_t at = 0;  // in rank 0's own values
    for (std::size_t k = 0; k < plan.chunks(); ++k) {
        const auto c = plan.chunk(k);
        const std::size_t n = std::size_t(size_of(c));
        const std::size_t from = plan.owner(k);
        std::span<const T> values;
        if (from == 0) {
            values = local.subspan(at, n);
            at += n;
        } else {
            buffer.resize(n);
            comm.recv(std::span<T>(buffer), from, gather_tag);
            values = buffer;
        }
        if (failure) continue;  // keep draining the senders
        try {
            visit(c, values);
        } catch (...) {
            failure = current_failure();
        }
    }
    comm.agree(failure);
}

}  // namespace diffuse::mpi
