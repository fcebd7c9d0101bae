#pragma once
// Which rank handles which samples of a sharded job. Pure arithmetic, no MPI.
//
// N samples have global ids 0 … N−1. They are cut into chunks of `batch` consecutive ids (chunk c holds
// ids [c·batch, min((c+1)·batch, N)), the last one possibly shorter); a chunk is one batch of one sampler
// call, so the batches — and therefore the results of samplers that couple a batch (a batch-norm step
// size) — never depend on the number of ranks. The chunks are dealt to R ranks
//   shard_layout::contiguous   rank r takes chunks [⌊r·C/R⌋, ⌊(r+1)·C/R⌋) (C chunks): one run of ids
//   shard_layout::round_robin  rank r takes chunks r, r+R, r+2R, … (balances a job whose cost grows
//                              with the id, and shows each rank's output early)
// Every chunk goes to exactly one rank; a rank may get none (more ranks than chunks).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse::mpi {

enum class shard_layout { contiguous, round_robin };

// A chunk: `count` consecutive global ids from `first_sample`, chunk number `index`.
struct shard_chunk {
    std::size_t index = 0;
    std::uint64_t first_sample = 0;
    std::size_t count = 0;
};

class shard_plan {
public:
    // 1 ≤ samples ≤ 2^40, 1 ≤ batch ≤ 2^30, 1 ≤ ranks ≤ 2^20 (so chunk·ranks never overflows).
    shard_plan(std::uint64_t samples, std::size_t batch, std::size_t ranks, shard_layout layout = shard_layout::contiguous)
        : samples_(samples), batch_(batch), ranks_(ranks), layout_(layout) {
        diffuse::detail::require(samples >= 1 && samples <= (std::uint64_t{1} << 40), "shard_plan", "samples", samples,
                                 "[1, 2^40]");
        diffuse::detail::require(batch >= 1 && batch <= (std::size_t{1} << 30), "shard_plan", "batch", batch, "[1, 2^30]");
        diffuse::detail::require(ranks >= 1 && ranks <= (std::size_t{1} << 20), "shard_plan", "ranks", ranks, "[1, 2^20]");
        diffuse::detail::require(layout == shard_layout::contiguous || layout == shard_layout::round_robin, "shard_plan",
                                 "layout", int(layout), "contiguous or round_robin");
        chunks_ = std::size_t((samples + batch - 1) / batch);
    }

    [[nodiscard]] std::uint64_t samples() const noexcept { return samples_; }
    [[nodiscard]] std::size_t batch() const noexcept { return batch_; }
    [[nodiscard]] std::size_t ranks() const noexcept { return ranks_; }
    [[nodiscard]] shard_layout layout() const noexcept { return layout_; }
    [[nodiscard]] std::size_t chunks() const noexcept { return chunks_; }

    [[nodiscard]] shard_chunk chunk(std::size_t c) const {
        diffuse::detail::require(c < chunks_, "shard_plan::chunk", "c", c, "< " + std::to_string(chunks_));
        const std::uint64_t first = std::uint64_t(c) * batch_;
        const std::uint64_t left = samples_ - first;
        return {c, first, std::size_t(left < batch_ ? left : batch_)};
    }

    // The rank that handles chunk c.
    [[nodiscard]] std::size_t owner(std::size_t c) const {
        diffuse::detail::require(c < chunks_, "shard_plan::owner", "c", c, "< " + std::to_string(chunks_));
        if (layout_ == shard_layout::round_robin) return c % ranks_;
        // the r with ⌊r·C/R⌋ ≤ c < ⌊(r+1)·C/R⌋
        std::size_t r = std::size_t((std::uint64_t(c) * ranks_ + ranks_ - 1) / chunks_);
        while (r > 0 && begin_of(r) > c) --r;
        while (r + 1 < ranks_ && begin_of(r + 1) <= c) ++r;
        return r;
    }

    // The chunks of `rank`, in increasing id order.
    [[nodiscard]] std::vector<shard_chunk> chunks_of(std::size_t rank) const {
        diffuse::detail::require(rank < ranks_, "shard_plan::chunks_of", "rank", rank, "< " + std::to_string(ranks_));
        std::vector<shard_chunk> out;
        if (layout_ == shard_layout::round_robin) {
            for (std::size_t c = rank; c < chunks_; c += ranks_) out.push_back(chunk(c));
        } else {
            for (std::size_t c = begin_of(rank); c < begin_of(rank + 1); ++c) out.push_back(chunk(c));
        }
        return out;
    }

    // The number of samples `rank` handles.
    [[nodiscard]] std::uint64_t samples_of(std::size_t rank) const {
        std::uint64_t n = 0;
        for (const auto& c : chunks_of(rank)) n += c.count;
        return n;
    }

private:
    [[nodiscard]] std::size_t begin_of(std::size_t r) const noexcept {
        return std::size_t(std::uint64_t(r) * chunks_ / ranks_);
    }

    std::uint64_t samples_;
    std::size_t batch_, ranks_;
    shard_layout layout_;
    std::size_t chunks_ = 0;
};

}  // namespace diffuse::mpi
