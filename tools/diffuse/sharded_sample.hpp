#pragma once
// `diffuse sample SPEC.json OUT --samples N [--shards] [--layout contiguous|round_robin]` under mpirun
// (docs/mpi.md): N samples in chunks of the spec's batch (shape[0]) over the ranks (mpi/shard_plan.hpp). Each
// chunk is the spec run with shape[0] = the chunk's size, first_sample = its first global id and class labels
// cut to the chunk, so its initial state, step noise, Brownian tree and prior are those of its global ids.
// Rank 0 writes OUT.npy with all N samples in id order (the same bytes for any rank count, and — for
// samplers whose rows do not interact — for any batch), or with --shards each rank writes its part next to
// the manifest OUT (mpi::write_shards). The progress bar shows rank 0's share.
// A spec whose randomness comes from files (init_noise, step_noise) or that records a trajectory cannot be
// sharded: those files hold one batch.

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "diffuse/io/image_grid.hpp"
#include "diffuse/io/json.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/io/png.hpp"
#include "diffuse/mpi/communicator.hpp"
#include "diffuse/mpi/sharded_sampling.hpp"
#include "run_spec.hpp"

namespace diffuse::cli {

struct sharded_options {
    std::uint64_t samples = 0;
    bool shards = false;
    mpi::shard_layout layout = mpi::shard_layout::contiguous;
    std::string png;
    bool quiet = false;
};

namespace detail {
// The spec of one chunk: shape[0] = count, first_sample = first, class_labels[0 … count).
inline io::json_value chunk_spec(const io::json_value& root, const mpi::shard_chunk& c) {
    auto o = root.as_object();
    for (auto& [key, value] : o) {
        if (key == "shape" && value.is_array() && !value.as_array().empty()) {
            auto dims = value.as_array();
            dims[0] = io::json_value::make_number(double(c.count), std::to_string(c.count));
            value = io::json_value::make_array(std::move(dims));
        } else if (key == "denoiser" && value.is_object()) {
            auto dn = value.as_object();
            for (auto& [k, v] : dn)
                if (k == "class_labels" && v.is_array() && v.as_array().size() >= c.count) {
                    auto labels = v.as_array();
                    labels.resize(c.count);
                    v = io::json_value::make_array(std::move(labels));
                }
            value = io::json_value::make_object(std::move(dn));
        }
    }
    o.emplace_back("first_sample", io::json_value::make_number(double(c.first_sample), std::to_string(c.first_sample)));
    return io::json_value::make_object(std::move(o));
}
}  // namespace detail

inline int sample_sharded(const io::json_value& root, const std::filesystem::path& dir, const std::string& out,
                          const sharded_options& opt, const run_settings& settings = {}) {
    if (!root.is_object()) throw spec_error("spec: expected an object");
    for (const char* key : {"init_noise", "step_noise", "trajectory", "first_sample"})
        if (root.find(key))
            throw spec_error(std::string("spec.") + key + ": --samples draws every sample from the seed by its global id (" +
                             key + " is not allowed)");
    const auto* shape = root.find("shape");
    if (!shape || !shape->is_array() || shape->as_array().empty() || !shape->as_array()[0].is_number())
        throw spec_error("spec.shape: expected [batch, dims...]");
    const std::uint64_t batch = shape->as_array()[0].as_uint64();
    if (batch == 0) throw spec_error("spec.shape: the batch must be positive");

    static mpi::environment env;  // finalised at exit, after every rank has agreed
    const mpi::communicator comm;
    const mpi::shard_plan plan(opt.samples, std::size_t(batch), comm.size(), opt.layout);
    const auto mine = plan.chunks_of(comm.rank());

    std::string dtype = "float64";
    std::vector<std::size_t> sample_shape;
    std::size_t done = 0;
    auto run_chunk = [&](const mpi::shard_chunk& c, tensor_view<double> x) {
        const bool bar = comm.rank() == 0 && !opt.quiet;
        const auto r = run_spec(detail::chunk_spec(root, c), dir, false,
                                bar ? std::function<void(std::size_t, std::size_t)>([&](std::size_t step, std::size_t steps) {
                                    progress_bar(done * steps + step, mine.size() * steps);
                                })
                                    : std::function<void(std::size_t, std::size_t)>{},
                                settings);
        if (r.x.size() != x.size()) throw spec_error("spec: a chunk produced " + std::to_string(r.x.size()) + " values");
        std::copy(r.x.begin(), r.x.end(), x.data);
        dtype = r.dtype;
        sample_shape.assign(r.shape.begin() + 1, r.shape.end());
        ++done;
    };
    std::size_t per_sample = 1;
    for (std::size_t i = 1; i < shape->as_array().size(); ++i) per_sample *= std::size_t(shape->as_array()[i].as_uint64());
    const auto local = mpi::sample_shard<double>(comm, plan, per_sample, run_chunk);
    // ranks without chunks learn the spec's dtype and sample shape from the spec itself
    if (mine.empty()) {
        const auto* d = root.find("dtype");
        if (d && d->is_string()) dtype = d->as_string();
        for (std::size_t i = 1; i < shape->as_array().size(); ++i) sample_shape.push_back(std::size_t(shape->as_array()[i].as_uint64()));
    }

    auto as_float = [](const mpi::local_samples<double>& l) {
        mpi::local_samples<float> f{l.per_sample, l.chunks, std::vector<float>(l.values.begin(), l.values.end())};
        return f;
    };
    if (opt.shards) {
        if (dtype == "float32") mpi::write_shards(comm, plan, as_float(local), out, sample_shape);
        else mpi::write_shards(comm, plan, local, out, sample_shape);
        return 0;
    }
    const auto all = mpi::gather_samples(comm, plan, local);
    std::optional<std::string> failure;
    if (comm.rank() == 0) {
        try {
            std::vector<std::size_t> dims{std::size_t(opt.samples)};
            dims.insert(dims.end(), sample_shape.begin(), sample_shape.end());
            if (dtype == "float32") io::write_npy<float>(out, std::vector<float>(all.begin(), all.end()), dims);
            else io::write_npy<double>(out, all, dims);
            if (!opt.png.empty()) {
                if (dims.size() != 4) throw diffuse::error("diffuse: --png: the samples are not images (shape [batch, C, H, W])");
                const auto g = io::image_grid(all.data(), dims[0], dims[1], dims[2], dims[3]);
                io::write_png(opt.png, g.width, g.height, g.rgb);
            }
        } catch (...) {
            failure = mpi::current_failure();
        }
    }
    comm.agree(failure);
    return 0;
}

}  // namespace diffuse::cli
