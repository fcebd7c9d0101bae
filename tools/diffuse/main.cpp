// diffuse — the command-line program (docs/cli.md).
//   diffuse sample SPEC.json OUT.npy [--png GRID.png] [--quiet] [--max-memory BYTES] [--max-work N]
//                 [--max-output BYTES] [--allow-paths-outside-spec]
//       runs one sampler on the spec's denoiser and writes the final sample (and, when the spec names
//       "trajectory", every step's state, streamed to disk) as .npy; --png also writes the samples as an
//       image grid (values in [-1, 1]); a progress bar goes to stderr unless --quiet. The spec's memory,
//       work and output are checked against the limits before the run (tools/diffuse/spec_limits.hpp), and
//       the files it names must lie in its folder unless --allow-paths-outside-spec (spec_files.hpp).
//   diffuse sample SPEC.json OUT [--samples N [--shards] [--layout contiguous|round_robin]] ...
//       under mpirun: N samples in chunks of the spec's batch over the ranks (docs/mpi.md); OUT.npy on rank 0,
//       or with --shards one .npy per rank next to the manifest OUT (sharded_sample.hpp).
//   diffuse forward MODEL_DIR X.npy T.npy OUT.npy [--class C.npy]
//       one forward pass of a diffusers UNet2DModel folder: X [batch, C, H, W], T [batch] (or one value for
//       all), C the class labels (int) or, for class_embed_type "identity", the class vectors (float).
// Errors print one line naming the spec field or file and exit with status 1 (2 for usage errors).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "diffuse/io/diffusers.hpp"
#include "diffuse/io/image_grid.hpp"
#include "diffuse/io/npy.hpp"
#include "diffuse/io/png.hpp"
#include "run_spec.hpp"
#if DIFFUSE_CLI_MPI
#include "sharded_sample.hpp"
#endif

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: diffuse sample SPEC.json OUT.npy [--png GRID.png] [--quiet] [--max-memory BYTES]\n"
                 "                      [--max-work N] [--max-output BYTES] [--allow-paths-outside-spec]\n"
                 "                      [--samples N [--shards] [--layout contiguous|round_robin]]  (under mpirun)\n"
                 "       diffuse forward MODEL_DIR X.npy T.npy OUT.npy [--class C.npy]\n"
                 "BYTES: a number of bytes or NNKiB, NNMiB, NNGiB, NNTiB\n");
    return 2;
}

// The final sample as .npy in the run's dtype, written and synced but not yet in place (publish()).
template <class T>
std::unique_ptr<diffuse::io::npy_writer<T>> prepare_npy(const std::string& path, const std::vector<double>& v,
                                                        const std::vector<std::size_t>& shape) {
    auto out = std::make_unique<diffuse::io::npy_writer<T>>(path, shape);
    const std::vector<T> typed(v.begin(), v.end());
    out->append(typed);
    out->finish();
    return out;
}

// Outputs appear only when the whole run succeeded: the trajectory streams to a temporary during the run,
// the final sample and the PNG are written to temporaries after it, all are synced, and only then are they
// renamed into place — the trajectory, the PNG, and OUT.npy last (so an OUT.npy means every output is there).
int sample(const std::vector<std::string>& args) {
    if (args.size() < 2) return usage();
    std::string png;
    bool quiet = false;
    std::string samples, layout;
    bool shards = false;
    diffuse::cli::run_settings settings;
    settings.stream_trajectory = true;
    for (std::size_t i = 2; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        auto limit = [&](std::uint64_t& field, bool bytes) {
            const auto v = diffuse::cli::parse_byte_size(args[i + 1]);
            const bool plain = bytes || args[i + 1].find_first_not_of("0123456789") == std::string::npos;
            if (!v || !plain) throw diffuse::error("diffuse: " + args[i] + ": \"" + args[i + 1] + "\" is not " +
                                                   (bytes ? "a byte size (e.g. 4GiB, 512MiB, 1000000)" : "a non-negative integer"));
            field = *v;
            ++i;
        };
        if (args[i] == "--png" && has_value) png = args[++i];
        else if (args[i] == "--quiet") quiet = true;
        else if (args[i] == "--max-memory" && has_value) limit(settings.limits.max_memory, true);
        else if (args[i] == "--max-work" && has_value) limit(settings.limits.max_work, false);
        else if (args[i] == "--max-output" && has_value) limit(settings.limits.max_output, true);
        else if (args[i] == "--allow-paths-outside-spec") settings.allow_paths_outside_spec = true;
        else if (args[i] == "--samples" && has_value) samples = args[++i];
        else if (args[i] == "--layout" && has_value) layout = args[++i];
        else if (args[i] == "--shards") shards = true;
        else return usage();
    }
    if (samples.empty() && (shards || !layout.empty())) return usage();
    const std::filesystem::path spec_path = args[0];
    const auto root = diffuse::cli::load_json(spec_path);
    const auto dir = spec_path.parent_path();
    if (!samples.empty()) {
#if DIFFUSE_CLI_MPI
        diffuse::cli::sharded_options o;
        if (samples.find_first_not_of("0123456789") != std::string::npos || samples.size() > 13 || std::stoull(samples) == 0)
            throw diffuse::error("diffuse: --samples: expected a positive integer below 2^40, not \"" + samples + "\"");
        o.samples = std::stoull(samples);
        o.shards = shards;
        if (layout == "round_robin") o.layout = diffuse::mpi::shard_layout::round_robin;
        else if (!layout.empty() && layout != "contiguous")
            throw diffuse::error("diffuse: --layout: expected contiguous or round_robin, not \"" + layout + "\"");
        o.png = png;
        o.quiet = quiet;
        return diffuse::cli::sample_sharded(root, dir, args[1], o, settings);
#else
        throw diffuse::error("diffuse: --samples: this diffuse was built without MPI (DIFFUSE_ENABLE_MPI)");
#endif
    }
    auto r = diffuse::cli::run_spec(root, dir, false, quiet ? std::function<void(std::size_t, std::size_t)>{} : diffuse::cli::progress_bar,
                                    settings);
    std::unique_ptr<diffuse::io::npy_writer<float>> out_f32;
    std::unique_ptr<diffuse::io::npy_writer<double>> out_f64;
    if (r.dtype == "float32") out_f32 = prepare_npy<float>(args[1], r.x, r.shape);
    else out_f64 = prepare_npy<double>(args[1], r.x, r.shape);
    std::unique_ptr<diffuse::io::file_writer> png_out;
    if (!png.empty()) {
        if (r.shape.size() != 4) throw diffuse::error("diffuse: --png: the samples are not images (shape [batch, C, H, W])");
        const auto g = diffuse::io::image_grid(r.x.data(), r.shape[0], r.shape[1], r.shape[2], r.shape[3]);
        png_out = std::make_unique<diffuse::io::file_writer>(png, "write_png");
        png_out->write(diffuse::io::encode_png(g.width, g.height, g.rgb));
        png_out->finish();
    }
    r.publish_trajectory();
    if (png_out) png_out->publish();
    if (out_f32) out_f32->publish();
    if (out_f64) out_f64->publish();
    return 0;
}

int forward(const std::vector<std::string>& args) {
    if (args.size() != 4 && !(args.size() == 6 && args[4] == "--class")) return usage();
    auto net = diffuse::io::load_unet2d(args[0]);
    const auto x = diffuse::io::read_npy(args[1]);
    if (x.shape.size() != 4 || (x.dtype != "<f4" && x.dtype != "<f8"))
        throw diffuse::error("diffuse: forward: " + args[1] + " must hold a float [batch, C, H, W] array");
    const std::size_t batch = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
    net.check_input(c, h, w);
    const auto tn = diffuse::io::read_npy(args[2]);
    if (tn.dtype != "<f4" && tn.dtype != "<f8" && tn.dtype != "<i4" && tn.dtype != "<i8")
        throw diffuse::error("diffuse: forward: " + args[2] + " must hold float or integer times");
    std::vector<double> t = tn.as<double>();
    if (t.empty() || (t.size() != 1 && t.size() != batch))
        throw diffuse::error("diffuse: forward: " + args[2] + " must hold one time per sample (or one for all)");
    if (t.size() == 1) t.assign(batch, t[0]);
    std::vector<std::int64_t> labels;
    std::vector<float> vectors;
    if (args.size() == 6) {
        const auto cl = diffuse::io::read_npy(args[5]);
        if (cl.dtype == "<f4" || cl.dtype == "<f8") vectors = cl.as<float>();
        else if (cl.dtype == "<i8" || cl.dtype == "<i4") labels = cl.as<std::int64_t>();
        else throw diffuse::error("diffuse: forward: " + args[5] + " must hold int64/int32 labels or float class vectors");
    }
    const auto xs = x.as<float>();
    std::vector<float> out(batch * net.config().out_channels * h * w);
    net.forward(xs.data(), batch, h, w, t, labels, out.data(), vectors);
    diffuse::io::write_npy<float>(args[3], out, {batch, net.config().out_channels, h, w});
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string cmd = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    try {
        if (cmd == "sample") return sample(args);
        if (cmd == "forward") return forward(args);
        return usage();
    } catch (const std::exception& e) {
        std::string msg = e.what();
        for (auto& c : msg)
            if (c == '\n') c = ' ';
        if (msg.rfind("diffuse: ", 0) == 0) msg = msg.substr(9);
        std::fprintf(stderr, "diffuse: %s\n", msg.c_str());
        return 1;
    }
}
