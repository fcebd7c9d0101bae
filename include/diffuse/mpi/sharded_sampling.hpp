#pragma once
// Sharded sampling: N samples with global ids 0 … N−1 over the ranks of a communicator, identical — byte for
// byte — to one process sampling the same chunks (mpi/shard_plan.hpp) one after the other.
//
//   auto plan = diffuse::mpi::shard_plan(N, batch, comm.size(), diffuse::mpi::shard_layout::round_robin);
//   auto sample = [&](const diffuse::mpi::shard_chunk& c, diffuse::tensor_view<float> x) {
//       diffuse::fill_normal(x, seed, init_draw, c.first_sample);            // ids c.first_sample + b
//       x *= sigma_max …;
//       diffuse::sample_euler_ancestral(model, x, grid, opt, diffuse::counter_noise{seed, c.first_sample});
//   };
//   auto local = diffuse::mpi::sample_shard<float>(comm, plan, per_sample, sample);   // this rank's chunks
//   auto all = diffuse::mpi::gather_samples(comm, plan, local);                      // rank 0: N × per_sample
//   diffuse::mpi::write_shards(comm, plan, local, "out.json", {C, H, W});           // or: shards + manifest
//
// The sampler is the callable: any sampler, guidance or conditioning, as long as what it writes for chunk c
// depends on c's ids only — which holds when its noise is counter_noise{seed, c.first_sample} (noise a pure
// function of (seed, sample id, draw, element)) and per-sample conditioning is looked up by global id.
// A batch is one chunk, the same chunks for any rank count, so even samplers that couple the rows of a
// batch (one step size for the batch) give the same bits on 1, 2 or 3 ranks.
//
// Failure: an exception on one rank (the callable's, a full disk) is caught there; every rank then throws
// diffuse::error with that rank's message at the next agreement point (communicator::agree). Outputs are
// all or nothing: write_npy and the manifest are written through io/file.hpp's atomic writer, the manifest
// last and only once every shard is on disk. A run that fails before write_shards leaves the target as it
// was; one that fails inside it removes its shards and any earlier manifest, so nothing looks complete.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "diffuse/core/tensor.hpp"
#include "diffuse/io/file.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/ordered_gather.hpp"
#include "diffuse/mpi/shard_plan.hpp"

namespace diffuse::mpi {

// The samples one rank produced: its chunks (increasing ids) and their values concatenated, per_sample each.
template <class T>
struct local_samples {
    std::size_t per_sample = 0;
    std::vector<shard_chunk> chunks;
    std::vector<T> values;
};

// Collective. Runs sample(chunk, x) for each of this rank's chunks, x a tensor_view<T> of chunk.count ×
// per_sample values (zero on entry); progress(done, total), if given, after each chunk of this rank.
template <class T, class Sample>
[[nodiscard]] local_samples<T> sample_shard(const communicator& comm, const shard_plan& plan, std::size_t per_sample,
                                            Sample&& sample,
                                            const std::function<void(std::size_t, std::size_t)>& progress = {}) {
    local_samples<T> out;
    out.per_sample = per_sample;
    std::optional<std::string> failure;
    try {
        diffuse::detail::require(per_sample >= 1 && per_sample <= (std::size_t{1} << 40), "sample_shard", "per_sample",
                                 per_sample, "[1, 2^40]");
        if (plan.ranks() != comm.size())
            diffuse::detail::fail("sample_shard", "the plan is for " + std::to_string(plan.ranks()) +
                                                      " ranks but the communicator has " + std::to_string(comm.size()));
        out.chunks = plan.chunks_of(comm.rank());
        const std::uint64_t n = plan.samples_of(comm.rank());
        if (n > (std::uint64_t{1} << 40) / per_sample)
            diffuse::detail::fail("sample_shard", "this rank's share (" + std::to_string(n) + " samples of " +
                                                      std::to_string(per_sample) + " values) exceeds 2^40 values");
        out.values.assign(std::size_t(n) * per_sample, T(0));
        std::size_t at = 0;
        for (std::size_t i = 0; i < out.chunks.size(); ++i) {
            const auto& c = out.chunks[i];
            sample(c, tensor_view<T>{out.values.data() + at, c.count, per_sample});
            at += c.count * per_sample;
            if (progress) progress(i + 1, out.chunks.size());
        }
    } catch (...) {
        failure = current_failure();
    }
    comm.agree(failure);
    return out;
}

// Collective. Rank 0 gets all N × per_sample values in global id order; the other ranks get an empty vector.
template <class T>
[[nodiscard]] std::vector<T> gather_samples(const communicator& comm, const shard_plan& plan, const local_samples<T>& local) {
    std::vector<T> all;
    const std::size_t per = local.per_sample;
    gather_in_order<T>(comm, plan, [per](const shard_chunk& c) { return c.count * per; }, std::span<const T>(local.values),
                       [&](const shard_chunk& c, std::span<const T> v) {
                           if (c.index == 0) all.reserve(std::size_t(plan.samples()) * per);  // a failure is agreed on
                           all.insert(all.end(), v.begin(), v.end());
                       });
    return all;
}

// The shard file of `rank` next to the manifest: "<folder>/<manifest stem>.shard-<rank>-of-<ranks>.npy".
[[nodiscard]] inline std::filesystem::path shard_path(const std::filesystem::path& manifest, std::size_t rank, std::size_t ranks) {
    auto p = manifest;
    p.replace_filename(manifest.stem().string() + ".shard-" + std::to_string(rank) + "-of-" + std::to_string(ranks) + ".npy");
    return p;
}

namespace detail {
inline std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char ch : s) {
        if (ch == '"' || ch == '\\') out += '\\', out += char(ch);
        else if (ch < 0x20) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[ch >> 4];
            out += hex[ch & 15];
        } else out += char(ch);
    }
    return out + "\"";
}

// The manifest: which file holds which global ids (runs of consecutive ids, in the file's order).
template <class T>
std::string shard_manifest(const shard_plan& plan, const std::vector<std::size_t>& sample_shape,
                           const std::filesystem::path& manifest) {
    std::string m = "{\n  \"format\": \"diffuse-shards\",\n  \"version\": 1,\n";
    m += "  \"samples\": " + std::to_string(plan.samples()) + ",\n  \"batch\": " + std::to_string(plan.batch()) + ",\n";
    m += "  \"ranks\": " + std::to_string(plan.ranks()) + ",\n  \"layout\": \"" +
         std::string(plan.layout() == shard_layout::contiguous ? "contiguous" : "round_robin") + "\",\n";
    m += std::string("  \"dtype\": \"") + (sizeof(T) == 4 ? "<f4" : "<f8") + "\",\n  \"sample_shape\": [";
    for (std::size_t i = 0; i < sample_shape.size(); ++i) m += (i ? ", " : "") + std::to_string(sample_shape[i]);
    m += "],\n  \"shards\": [";
    bool first_shard = true;
    for (std::size_t r = 0; r < plan.ranks(); ++r) {
        const auto chunks = plan.chunks_of(r);
        if (chunks.empty()) continue;
        m += std::string(first_shard ? "\n" : ",\n") + "    {\"rank\": " + std::to_string(r) + ", \"file\": " +
             json_string(shard_path(manifest, r, plan.ranks()).filename().string()) + ", \"samples\": " +
             std::to_string(plan.samples_of(r)) + ", \"ids\": [";
        first_shard = false;
        std::uint64_t run_first = chunks[0].first_sample, run_count = 0;
        bool first_run = true;
        auto flush = [&] {
            m += std::string(first_run ? "" : ", ") + "[" + std::to_string(run_first) + ", " + std::to_string(run_count) + "]";
            first_run = false;
        };
        for (const auto& c : chunks) {
            if (c.first_sample != run_first + run_count) {
                flush();
                run_first = c.first_sample;
                run_count = 0;
            }
            run_count += c.count;
        }
        flush();
        m += "]}";
    }
    return m + "\n  ]\n}\n";
}

inline void remove_quietly(const std::filesystem::path& p) noexcept {
    std::error_code ec;
    std::filesystem::remove(p, ec);
}
}  // namespace detail

// Collective. Writes this rank's samples as the .npy shard_path(manifest, rank, ranks) of shape
// [samples of the rank, sample_shape...] (ranks without chunks write none), then rank 0 writes the manifest
// (JSON: samples, batch, ranks, layout, dtype, sample_shape, and per shard its rank, file name relative to
// the manifest, sample count and "ids": the runs [first, count] of global ids it holds, in file order).
// The manifest appears only when every shard is complete; a failure here leaves no manifest and no shards.
template <class T>
void write_shards(const communicator& comm, const shard_plan& plan, const local_samples<T>& local,
                  const std::filesystem::path& manifest, const std::vector<std::size_t>& sample_shape) {
    std::optional<std::string> failure;
    std::size_t per = 1;
    for (auto d : sample_shape) per *= d;
    if (sample_shape.empty() || per != local.per_sample)
        failure = "write_shards: sample_shape does not hold per_sample = " + std::to_string(local.per_sample) + " values";
    if (!failure && comm.rank() == 0) {
        std::error_code ec;
        std::filesystem::remove(manifest, ec);  // an earlier run's manifest must not vouch for this run's shards
        if (ec) failure = "write_shards: cannot remove the old manifest " + manifest.string() + ": " + ec.message();
    }
    comm.agree(failure);

    const auto mine = shard_path(manifest, comm.rank(), comm.size());
    try {
        if (!local.chunks.empty()) {
            std::vector<std::size_t> shape{std::size_t(plan.samples_of(comm.rank()))};
            shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
            io::write_npy<T>(mine.string(), std::span<const T>(local.values), shape);
        }
    } catch (...) {
        failure = current_failure();
    }
    try {
        comm.agree(failure);
        failure.reset();
        if (comm.rank() == 0) {
            try {
                const auto text = detail::shard_manifest<T>(plan, sample_shape, manifest);
                io::write_file(manifest.string(),
                               std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()),
                               "write_shards");
            } catch (...) {
                failure = current_failure();
            }
        }
        comm.agree(failure);
    } catch (...) {
        detail::remove_quietly(mine);
        throw;
    }
}

}  // namespace diffuse::mpi
