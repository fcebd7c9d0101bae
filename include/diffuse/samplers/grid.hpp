#pragma once
// time_grid: the times a sampler visits, shared by the batch or one row per sample.
//
// A grid has steps+1 points t_0 … t_steps (σ for σ-space samplers, continuous t for SDE samplers,
// timesteps for discrete samplers). A shared grid applies to every sample; a per-sample grid has one row
// per sample, all of the same length, so one batch can mix strengths and start times (img2img with a
// different strength per sample, say). Samplers read grid(i, b) and never care which kind it is.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "diffuse/core/error.hpp"

namespace diffuse {

class time_grid {
public:
    time_grid() = default;
    // One grid for the whole batch.
    explicit time_grid(std::vector<double> points) : points_(std::move(points)), rows_(1) { validate(); }
    // rows × (steps+1) points, row b for sample b, row-major.
    time_grid(std::vector<double> points, std::size_t rows) : points_(std::move(points)), rows_(rows) {
        detail::require(rows >= 1 && points_.size() % rows == 0, "time_grid", "rows", rows,
                        "a positive divisor of the number of points " + std::to_string(points_.size()));
        validate();
    }
    // Stacks per-sample grids (all of one length).
    static time_grid per_sample(const std::vector<std::vector<double>>& rows) {
        detail::require(!rows.empty(), "time_grid::per_sample", "rows.size()", rows.size(), ">= 1");
        std::vector<double> p;
        for (const auto& r : rows) {
            detail::require(r.size() == rows[0].size(), "time_grid::per_sample", "row length", r.size(),
                            "equal to the first row's length " + std::to_string(rows[0].size()));
            p.insert(p.end(), r.begin(), r.end());
        }
        return time_grid(std::move(p), rows.size());
    }

    [[nodiscard]] std::size_t steps() const noexcept { return points_.size() / rows_ - 1; }
    [[nodiscard]] bool shared() const noexcept { return rows_ == 1; }
    [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
    // Point i of sample b's grid.
    [[nodiscard]] double operator()(std::size_t i, std::size_t b) const noexcept {
        return points_[(rows_ == 1 ? 0 : b) * (steps() + 1) + i];
    }
    // Point i for every sample, into out (size batch).
    void column(std::size_t i, std::span<double> out) const noexcept {
        for (std::size_t b = 0; b < out.size(); ++b) out[b] = (*this)(i, b);
    }
    // Throws unless the grid can drive a batch of this size.
    void check_batch(std::size_t batch, const char* where) const {
        if (rows_ != 1 && rows_ != batch)
            detail::fail(where, "the time grid has " + std::to_string(rows_) + " rows but the batch has " +
                                    std::to_string(batch) + " samples (use one shared row or one per sample)");
    }

private:
    void validate() const {
        detail::require(points_.size() / rows_ >= 2, "time_grid", "points per row", points_.size() / rows_, ">= 2");
    }
    std::vector<double> points_;
    std::size_t rows_ = 1;
};

}  // namespace diffuse
